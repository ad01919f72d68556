/** Entry point on Deno: `deno run -A adapters/deno/main.ts` (or `npm run serve:deno`). */
import { main } from "../../src/main.ts";
import { denoRuntime } from "./index.ts";

await main({
  runtime: denoRuntime,
  args: Deno.args,
  env: Deno.env.toObject(),
  readFile: (path) => Deno.readTextFileSync(path),
  onShutdownSignal(handler) {
    Deno.addSignalListener("SIGINT", () => handler("SIGINT"));
    Deno.addSignalListener("SIGTERM", () => handler("SIGTERM"));
  },
  onReloadSignal(handler) {
    Deno.addSignalListener("SIGHUP", handler);
  },
  watchFile(path, handler) {
    // Watch the directory: editors often replace the file by renaming a new one into place.
    const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".";
    const name = path.slice(path.lastIndexOf("/") + 1);
    const watcher = Deno.watchFs(dir, { recursive: false });
    (async () => {
      try {
        for await (const event of watcher) {
          if (event.paths.some((p) => p.endsWith(`/${name}`) || p === name)) handler();
        }
      } catch {
        // Closed by the returned stop function.
      }
    })();
    return () => watcher.close();
  },
  print: (line) => console.log(line),
  printError: (line) => console.error(line),
  exit: (code) => Deno.exit(code),
});
