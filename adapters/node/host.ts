/**
 * What slotgate's program (src/main.ts) gets from a Node process. Workers (`SLOTGATE_WORKERS`)
 * are `node:cluster` processes: Node 20 has no `reusePort`, and cluster workers share their
 * listeners through the primary (which accepts and hands connections round-robin).
 */
import cluster from "node:cluster";
import { readFileSync, watch } from "node:fs";
import { availableParallelism } from "node:os";
import { basename, dirname } from "node:path";
import type { ProcessHost } from "../../src/main.ts";
import type { FromWorker, ToWorker, WorkerLink, WorkerSpawner } from "../../src/workers/protocol.ts";
import { nodeRuntime } from "./index.ts";

export function nodeHost(): ProcessHost {
  const link = cluster.isWorker ? workerLink() : undefined;
  return {
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
    workers: clusterWorkers,
    ...(link && { workerLink: link }),
  };
}

const clusterWorkers: WorkerSpawner = {
  cores: availableParallelism(),
  kind: "processes",
  spawn(_index, env, events) {
    const worker = cluster.fork(env);
    worker.on("message", (message: FromWorker) => events.message(message));
    worker.on("exit", (code, signal) => events.exit(signal ? null : code));
    return {
      post(message: ToWorker) {
        // A worker that just exited has no channel: what was meant for it is moot.
        if (worker.isConnected()) worker.send(message);
      },
      kill: () => void worker.process.kill("SIGKILL"),
    };
  },
};

/** A cluster worker's line to the primary. */
function workerLink(): WorkerLink {
  // A terminal's Ctrl-C signals the whole process group: the supervisor decides, the workers wait for its word.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => {});
  // Orders may come before the program is ready for them (a shutdown while it loads): kept until then.
  let handler: ((message: ToWorker) => void) | null = null;
  const early: ToWorker[] = [];
  process.on("message", (message: ToWorker) => (handler ? handler(message) : early.push(message)));
  return {
    post: (message) => void (process.connected && process.send!(message)),
    onMessage(next) {
      handler = next;
      for (const message of early.splice(0)) next(message);
    },
    onOrphaned: (handler) => void process.once("disconnect", handler),
  };
}
