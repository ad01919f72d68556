/** Entry point on Node: `node --import tsx adapters/node/main.ts` (or `npm run serve:node`). */
import { readFileSync } from "node:fs";
import { main } from "../../src/main.ts";
import { nodeRuntime } from "./runtime.ts";

await main({
  runtime: nodeRuntime,
  args: process.argv.slice(2),
  env: process.env,
  readFile: (path) => readFileSync(path, "utf8"),
  onShutdownSignal(handler) {
    process.on("SIGINT", () => handler("SIGINT"));
    process.on("SIGTERM", () => handler("SIGTERM"));
  },
  print: (line) => console.log(line),
  printError: (line) => console.error(line),
  exit: (code) => process.exit(code),
});
