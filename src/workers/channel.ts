/**
 * A worker's side of its group (./protocol.ts): the supervisor's orders (shutdown, reload), requests
 * to and from the other workers, and the slot maps they share. One `WorkerChannel` per worker; the
 * entry point makes it first (a shutdown may come at any time), the app attaches to it once it runs.
 */
import type { Scope } from "../scope/scope.ts";
import type { Logger } from "../log.ts";
import type { PeerMessage, PeerRequest, ToWorker, WorkerIdentity, WorkerLink } from "./protocol.ts";

/** What the app answers for the group: the requests the leader sends, and workers joining. */
export interface ChannelHandlers {
  request(request: PeerRequest): Promise<unknown>;
  /** The leader only: worker `index` now listens. */
  joined(index: number): void;
}

interface Pending {
  resolve(result: unknown): void;
  reject(error: Error): void;
  timer: { cancel(): void };
}

export class WorkerChannel {
  readonly index: number;
  readonly count: number;
  readonly #link: WorkerLink;
  #log: Logger | null = null;
  #scope: Scope | null = null;
  #handlers: ChannelHandlers | null = null;
  #onShutdown: ((why: string) => void)[] = [];
  #onReload: ((why: string) => void)[] = [];
  /** Why the supervisor ordered a shutdown, once it did (it may come before the program is ready). */
  #shutdownWhy: string | null = null;
  #joined = new Set<number>();
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #topologies = new Map<string, Set<(topology: unknown) => void>>();

  constructor(link: WorkerLink, identity: { index: number; count: number }) {
    this.index = identity.index;
    this.count = identity.count;
    this.#link = link;
    link.onMessage((message) => this.#receive(message));
    link.onOrphaned?.(() => this.#shutdown("the supervisor is gone"));
  }

  get isLeader(): boolean {
    return this.index === 0;
  }

  /** The workers that have joined since the leader started (the leader only). */
  get joined(): readonly number[] {
    return [...this.#joined].sort((a, b) => a - b);
  }

  /** `handler` runs on the supervisor's shutdown order; at once if the order came already. */
  onShutdown(handler: (why: string) => void): void {
    this.#onShutdown.push(handler);
    if (this.#shutdownWhy !== null) handler(this.#shutdownWhy);
  }

  onReload(handler: (why: string) => void): void {
    this.#onReload.push(handler);
  }

  /** The app runs: requests are answered by `handlers`, and timed in `scope`. */
  attach(scope: Scope, log: Logger, handlers: ChannelHandlers): void {
    this.#scope = scope;
    this.#log = log;
    this.#handlers = handlers;
    scope.defer(() => {
      for (const [id, pending] of this.#pending) {
        this.#pending.delete(id);
        pending.timer.cancel();
        pending.reject(new Error("worker shutting down"));
      }
    });
  }

  /** Tell the supervisor this worker serves on these ports. */
  listening(port: number, tlsPort: number | null): void {
    this.#link.post({ t: "listening", port, tlsPort });
  }

  /** Ask worker `to`; rejects after `timeoutMs`, or when this worker shuts down. */
  request(to: number, request: PeerRequest, timeoutMs: number): Promise<unknown> {
    const scope = this.#scope;
    if (!scope) return Promise.reject(new Error("the worker is not running yet"));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = scope.timer("peer request", timeoutMs, () => {
        this.#pending.delete(id);
        reject(new Error(`worker ${to} did not answer within ${timeoutMs} ms`));
      });
      this.#pending.set(id, { resolve, reject, timer });
      this.#send(to, { t: "request", id, request });
    });
  }

  /** Share a slot map with every other worker. */
  publishTopology(key: string, topology: unknown): void {
    this.#send("others", { t: "topology", key, topology });
  }

  /** Receive the slot maps other workers share under `key`, until the returned function is called. */
  subscribeTopology(key: string, receive: (topology: unknown) => void): () => void {
    let set = this.#topologies.get(key);
    if (!set) this.#topologies.set(key, (set = new Set()));
    set.add(receive);
    return () => {
      set.delete(receive);
      if (set.size === 0 && this.#topologies.get(key) === set) this.#topologies.delete(key);
    };
  }

  #send(to: number | "others", body: PeerMessage): void {
    this.#link.post({ t: "send", to, body });
  }

  /** The first order counts; a repeat (the supervisor re-sends it to a worker that started late) is moot. */
  #shutdown(why: string): void {
    if (this.#shutdownWhy !== null) return;
    this.#shutdownWhy = why;
    for (const handler of this.#onShutdown) handler(why);
  }

  #receive(message: ToWorker): void {
    switch (message.t) {
      case "shutdown":
        return this.#shutdown(message.why);
      case "reload":
        for (const handler of this.#onReload) handler(message.why);
        return;
      case "joined":
        this.#joined.add(message.index);
        this.#handlers?.joined(message.index);
        return;
      case "peer":
        return this.#peer(message.from, message.body);
    }
  }

  #peer(from: number, body: PeerMessage): void {
    if (body.t === "topology") {
      for (const receive of this.#topologies.get(body.key) ?? []) receive(body.topology);
    } else if (body.t === "response") {
      const pending = this.#pending.get(body.id);
      if (!pending) return; // timed out already
      this.#pending.delete(body.id);
      pending.timer.cancel();
      if (body.ok) pending.resolve(body.result);
      else pending.reject(new Error(body.error));
    } else {
      const handlers = this.#handlers;
      const answer = handlers ? handlers.request(body.request) : Promise.reject(new Error("the worker is not running yet"));
      answer.then(
        (result) => this.#send(from, { t: "response", id: body.id, ok: true, result }),
        (error: unknown) => {
          this.#log?.error("request from another worker failed", { from, kind: body.request.kind, error });
          this.#send(from, { t: "response", id: body.id, ok: false, error: error instanceof Error ? error.message : String(error) });
        },
      );
    }
  }
}
