/**
 * The TypeScript files under a directory, for the lint scripts: recursive, in name order (so
 * findings come out in the same order on every machine), `.ts`/`.mts`/`.cts`/`.tsx` only.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";

/** Every TypeScript file under `dir`, depth first, sorted by name within each folder. */
export function* tsFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* tsFiles(path);
    else if (/\.(m|c)?tsx?$/.test(entry.name)) yield path;
  }
}
