/** Entry point on Bun: `bun adapters/bun/main.ts` (or `npm run serve:bun`). */
import { readFileSync, watch } from "node:fs";
import { basename, dirname } from "node:path";
import { main } from "../../src/main.ts";
import { bunRuntime } from "./index.ts";

await main({
  runtime: bunRuntime,
  args: Bun.argv.slice(2),
  env: Bun.env,
  // Bun.file reads asynchronously; the config is read once, synchronously, before anything starts.
  readFile: (path) => readFileSync(path, "utf8"),
  onShutdownSignal(handler) {
    process.on("SIGINT", () => handler("SIGINT"));
    process.on("SIGTERM", () => handler("SIGTERM"));
  },
  onReloadSignal(handler) {
    process.on("SIGHUP", handler);
  },
  watchFile(path, handler) {
    const watcher = watch(dirname(path), (_event, name) => {
      if (name === null || name === basename(path)) handler();
    });
    return () => watcher.close();
  },
  print: (line) => console.log(line),
  printError: (line) => console.error(line),
  exit: (code) => process.exit(code),
});
