/** What slotgate's program (src/main.ts) gets from a Bun process, or from one of its worker threads. */
import { readFileSync, watch } from "node:fs";
import { availableParallelism } from "node:os";
import { basename, dirname } from "node:path";
import type { ProcessHost } from "../../src/main.ts";
import { threadWorkers } from "../shared/thread-workers.ts";
import { bunRuntime } from "./index.ts";

/** Workers are threads running ./worker.ts (./worker.js once compiled). */
const WORKER_ENTRY = new URL(import.meta.url.endsWith(".ts") ? "./worker.ts" : "./worker.js", import.meta.url);

export function bunHost(env: Record<string, string | undefined>): ProcessHost {
  return {
    runtime: bunRuntime,
    args: Bun.argv.slice(2),
    env,
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
    workers: threadWorkers(WORKER_ENTRY, availableParallelism(), (line) => console.error(line)),
  };
}
