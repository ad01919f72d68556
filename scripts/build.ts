/**
 * `npm run build`: compiles src/ and the Node, Bun and Deno adapters to JavaScript in dist/
 * (tsconfig.build.json), what the npm package ships and bin/slotgate.mjs loads from it. The old
 * output is removed first, so a file deleted from the sources never lingers in a package.
 * `npm pack` runs this through `prepack`.
 */
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

const root = fileURLToPath(new URL("..", import.meta.url));
for (const dir of ["dist/src", "dist/adapters"]) rmSync(join(root, dir), { recursive: true, force: true });
execFileSync(join(root, "node_modules/.bin/tsc"), ["-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });
