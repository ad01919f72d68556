/** What slotgate's program (src/main.ts) gets from a Deno process, or from one of its worker threads. */
import type { ProcessHost } from "../../src/main.ts";
import { threadWorkers } from "../shared/thread-workers.ts";
import { denoRuntime } from "./index.ts";

/**
 * Workers are threads running ./worker.ts (./worker.js once compiled), each binding the client
 * port with `reusePort` — an unstable Deno API: deno.json turns it on (`"unstable": ["net"]`),
 * else pass `--unstable-net`.
 */
const WORKER_ENTRY = new URL(import.meta.url.endsWith(".ts") ? "./worker.ts" : "./worker.js", import.meta.url);

export function denoHost(env: Record<string, string | undefined>): ProcessHost {
  return {
    runtime: denoRuntime,
    args: Deno.args,
    env,
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
    workers: threadWorkers(WORKER_ENTRY, navigator.hardwareConcurrency, (line) => console.error(line)),
  };
}
