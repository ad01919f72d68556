/**
 * Workers as threads (Bun and Deno): each worker is a Web Worker running the runtime's own
 * worker entry (adapters/<runtime>/worker.ts) with its own event loop, binding the client port
 * with `reusePort`. The first message a thread gets is its environment; every later one is the
 * supervisor's (src/workers/protocol.ts). A thread says `exit` when its program would exit the
 * process; the supervisor's side then terminates it.
 */
import type { FromWorker, ToWorker, WorkerEvents, WorkerLink, WorkerSpawner } from "../../src/workers/protocol.ts";

/** The Web Worker API as both runtimes have it (typed here so one file checks under tsc and deno). */
interface WebWorker {
  postMessage(message: unknown): void;
  terminate(): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: ((event: { message?: string; preventDefault?(): void }) => void) | null;
}
type WorkerConstructor = new (url: string, options: { type: "module"; name?: string }) => WebWorker;

/** The first message to a thread. */
interface Init {
  env: Record<string, string>;
}

/** A `WorkerSpawner` that runs each worker as a thread executing `entry`. */
export function threadWorkers(entry: URL, cores: number, report: (line: string) => void): WorkerSpawner {
  const Worker = (globalThis as unknown as { Worker: WorkerConstructor }).Worker;
  return {
    cores,
    kind: "threads",
    spawn(index: number, env: Record<string, string>, events: WorkerEvents) {
      const worker = new Worker(entry.href, { type: "module", name: `slotgate worker ${index}` });
      let done = false;
      const finish = (code: number | null) => {
        if (done) return;
        done = true;
        worker.terminate();
        events.exit(code);
      };
      worker.onmessage = (event) => {
        const message = event.data as FromWorker;
        if (message.t === "exit") finish(message.code);
        else if (!done) events.message(message);
      };
      worker.onerror = (event) => {
        // Not the process's uncaught exception: the thread failed; the supervisor stops the group.
        event.preventDefault?.();
        report(`slotgate: worker ${index} failed: ${event.message ?? "unknown error"}`);
        finish(1);
      };
      worker.postMessage({ env } satisfies Init);
      return {
        post: (message: ToWorker) => void (done || worker.postMessage(message)),
        kill: () => finish(null),
      };
    },
  };
}

/** Inside a thread: wait for its environment, then run `program` with the link to the supervisor. */
export function runThreadWorker(program: (env: Record<string, string>, link: WorkerLink) => Promise<void>): void {
  const self = globalThis as unknown as { onmessage: ((event: { data: unknown }) => void) | null; postMessage(message: unknown): void };
  let handler: ((message: ToWorker) => void) | null = null;
  const early: ToWorker[] = [];
  const link: WorkerLink = {
    post: (message) => self.postMessage(message),
    onMessage(next) {
      handler = next;
      for (const message of early.splice(0)) next(message);
    },
  };
  self.onmessage = (event) => {
    self.onmessage = (later) => {
      const message = later.data as ToWorker;
      if (handler) handler(message);
      else early.push(message);
    };
    void program((event.data as Init).env, link);
  };
}
