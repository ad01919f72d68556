/** Entry point on Node: `node --import tsx adapters/node/main.ts` (or `npm run serve:node`). */
import { readFileSync, watch } from "node:fs";
import { basename, dirname } from "node:path";
import { main } from "../../src/main.ts";
import { nodeRuntime } from "./index.ts";

await main({
  runtime: nodeRuntime,
  args: process.argv.slice(2),
  env: process.env,
  readFile: (path) => readFileSync(path, "utf8"),
  onShutdownSignal(handler) {
    process.on("SIGINT", () => handler("SIGINT"));
    process.on("SIGTERM", () => handler("SIGTERM"));
  },
  onReloadSignal(handler) {
    process.on("SIGHUP", handler);
  },
  watchFile(path, handler) {
    // fs.watch follows the file's inode; watching its directory also sees editors' rename-into-place.
    const watcher = watch(dirname(path), (_event, name) => {
      if (name === null || name === basename(path)) handler();
    });
    return () => watcher.close();
  },
  print: (line) => console.log(line),
  printError: (line) => console.error(line),
  exit: (code) => process.exit(code),
});
