/** Entry point on Deno: `deno run -A adapters/deno/main.ts` (or `npm run serve:deno`). */
import { main } from "../../src/main.ts";
import { denoRuntime } from "./runtime.ts";

await main({
  runtime: denoRuntime,
  args: Deno.args,
  env: Deno.env.toObject(),
  readFile: (path) => Deno.readTextFileSync(path),
  onShutdownSignal(handler) {
    Deno.addSignalListener("SIGINT", () => handler("SIGINT"));
    Deno.addSignalListener("SIGTERM", () => handler("SIGTERM"));
  },
  print: (line) => console.log(line),
  printError: (line) => console.error(line),
  exit: (code) => Deno.exit(code),
});
