/**
 * Workers (`SLOTGATE_WORKERS=N`): N event loops serving one port. A supervisor (the process the
 * user started) runs no proxy itself: it starts N workers running the same program, relays what
 * they say to each other, and turns signals into messages. Worker 0, the leader, serves the admin
 * API, watches the config file and answers SIGHUP; it applies every configuration change to
 * itself, then to every other worker, before the change is answered. Each worker owns its
 * clusters, slot maps, upstream connections and clients; a client stays on the worker that
 * accepted it, so its order holds.
 *
 * How the workers run is the adapters' business (`WorkerSpawner`): Node forks processes with
 * `node:cluster` (which shares the listening socket: Node 20 has no `reusePort`); Bun and Deno run
 * Web Workers (threads) that each bind the port with `reusePort`, and the kernel spreads new
 * connections over them. Every message is plain JSON data: it crosses a process boundary on Node.
 */

/** What the supervisor says to a worker. */
export type ToWorker =
  /** Shut down gracefully, as on SIGTERM (drain, then exit). */
  | { t: "shutdown"; why: string }
  /** To the leader: re-read the config file and apply it everywhere, as on SIGHUP. */
  | { t: "reload"; why: string }
  /** To the leader: worker `index` is listening; bring it up to date with the configuration in force. */
  | { t: "joined"; index: number }
  /** A message from another worker. */
  | { t: "peer"; from: number; body: PeerMessage };

/** What a worker says to the supervisor. */
export type FromWorker =
  /** The worker serves: its client port and TLS port (the leader's are what the others bind). */
  | { t: "listening"; port: number; tlsPort: number | null }
  /** Relay `body` to worker `to`, or to every other worker that is listening. */
  | { t: "send"; to: number | "others"; body: PeerMessage }
  /** The worker is done and leaves with this exit code (a thread says so before it stops). */
  | { t: "exit"; code: number };

/** Between workers, through the supervisor. */
export type PeerMessage =
  | { t: "request"; id: number; request: PeerRequest }
  | { t: "response"; id: number; ok: true; result: unknown }
  | { t: "response"; id: number; ok: false; error: string }
  /** A slot map one worker learned, for the others to use instead of asking the cluster themselves. */
  | { t: "topology"; key: string; topology: unknown };

/** What the leader asks of the other workers. */
export type PeerRequest =
  /** Apply this whole configuration (the leader's, in force there); answers the change's result. */
  | { kind: "config"; document: unknown }
  /** One metrics scrape; answers the exposition text. */
  | { kind: "scrape"; openMetrics: boolean };

/** A worker's line to its supervisor (the adapters build it from `process.send` or `postMessage`). */
export interface WorkerLink {
  post(message: FromWorker): void;
  /** Messages from the supervisor, from now on. */
  onMessage(handler: (message: ToWorker) => void): void;
  /**
   * Called once if the supervisor is gone (its process died): the worker should shut down.
   * Threads cannot outlive their process, so they never call it.
   */
  onOrphaned?(handler: () => void): void;
}

/** A started worker, as the supervisor holds it. */
export interface SpawnedWorker {
  post(message: ToWorker): void;
  /** Stop it at once (a second signal, or a worker that will not stop). */
  kill(): void;
}

export interface WorkerEvents {
  message(message: FromWorker): void;
  /** The worker is gone: its exit code (null when killed by a signal or terminated). Called once. */
  exit(code: number | null): void;
}

/** How a runtime starts workers: the supervisor's side of the adapters. */
export interface WorkerSpawner {
  /** Logical CPU cores: what `workers: "auto"` means. */
  readonly cores: number;
  /** `processes` (each has its own memory) or `threads` (one process: one RSS for all). */
  readonly kind: "processes" | "threads";
  /** Start worker `index` running this same program with `env` as its environment. */
  spawn(index: number, env: Record<string, string>, events: WorkerEvents): SpawnedWorker;
}

/** The variable that tells a worker who it is: `index/count` (set by the supervisor, never by users). */
export const WORKER_VARIABLE = "SLOTGATE_WORKER";
/** The leader's real client and TLS ports, `port,tlsPort`, for the other workers to bind (port 0 picks one once). */
export const WORKER_PORTS_VARIABLE = "SLOTGATE_WORKER_PORTS";

/** This worker's place in its group, read from `SLOTGATE_WORKER`. */
export interface WorkerIdentity {
  index: number;
  count: number;
  /** The leader's ports, for followers; null for the leader. */
  ports: { port: number; tlsPort: number | null } | null;
}

/** Parse the supervisor's variables; a string says what is wrong with them. */
export function workerIdentity(env: Record<string, string | undefined>): WorkerIdentity | null | string {
  const raw = env[WORKER_VARIABLE];
  if (raw === undefined || raw === "") return null;
  const match = /^(\d+)\/(\d+)$/.exec(raw);
  const index = match ? Number(match[1]) : NaN;
  const count = match ? Number(match[2]) : NaN;
  if (!match || count < 1 || index >= count) return `${WORKER_VARIABLE}=${raw}: set by slotgate for its workers, not by hand`;
  const ports = env[WORKER_PORTS_VARIABLE];
  if (index === 0 || ports === undefined) return { index, count, ports: null };
  const [port, tlsPort] = ports.split(",");
  return { index, count, ports: { port: Number(port), tlsPort: tlsPort ? Number(tlsPort) : null } };
}
