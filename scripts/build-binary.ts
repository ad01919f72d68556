/**
 * `npm run build:binary`: slotgate as one self-contained executable, `bun build --compile` of the
 * Bun entry point (Bun's runtime and every dependency inside; nothing to install beside it).
 *
 *   npm run build:binary                                  → dist/slotgate for this machine
 *   npm run build:binary -- --outfile /tmp/slotgate       → somewhere else
 *   npm run build:binary -- --target bun-linux-arm64      → another platform (Bun fetches that
 *                                                           platform's runtime from the npm registry)
 *
 * Arguments other than --outfile go to `bun build` unchanged. `deno compile` is not offered: it
 * downloads its base binary (denort) from Deno's release server and no npm package ships one, so
 * it cannot work offline (README, "Install").
 */
import { execFileSync } from "node:child_process";
import { statSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * Compile the Bun entry point to `outfile` (extra `bun build` flags in `args`); returns its size in
 * bytes. The worker threads' entry (SLOTGATE_WORKERS) goes in as a second entry point: a compiled
 * executable loads `new Worker(...)` files only from what was compiled into it.
 */
export function buildBinary(outfile: string, args: readonly string[] = []): number {
  execFileSync(join(ROOT, "node_modules/.bin/bun"), ["build", "--compile", ...args, join(ROOT, "adapters/bun/main.ts"), join(ROOT, "adapters/bun/worker.ts"), "--outfile", outfile], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
  });
  return statSync(outfile).size;
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const args = process.argv.slice(2);
  const at = args.indexOf("--outfile");
  const outfile = at >= 0 ? resolve(args.splice(at, 2)[1] ?? "") : join(ROOT, "dist/slotgate");
  const bytes = buildBinary(outfile, args);
  console.log(`${outfile}: ${(bytes / 1024 / 1024).toFixed(1)} MiB`);
}
