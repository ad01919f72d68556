/** Entry point on Bun: `bun adapters/bun/main.ts` (or `npm run serve:bun`). */
import { readFileSync } from "node:fs";
import { main } from "../../src/main.ts";
import { bunRuntime } from "./runtime.ts";

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
  print: (line) => console.log(line),
  printError: (line) => console.error(line),
  exit: (code) => process.exit(code),
});
