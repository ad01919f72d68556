/**
 * A Redis node as slotgate sees it: a small, lazily opened set of pipelined connections. A
 * client's requests to one node always use the same connection (by affinity), so they run in the
 * order the client sent them. A node that cannot be reached is marked down for a short backoff,
 * during which its requests fail fast instead of piling up behind connect attempts.
 *
 * Requests of RESP3 clients travel on a second set of connections that said `HELLO 3`. A client
 * may also get a connection of its own (`dedicated`): for a blocked command, a transaction or a
 * subscription. The node owns it (it dies with the node), the client closes it when done.
 *
 * A shared connection holds at most `maxUpstreamQueueBytes` unsent (plus the request that crossed
 * it): past that, a node that does not read fast enough gets its requests refused at once with an
 * error naming the limit, rather than the proxy buffering for it without end. A connection of a
 * client's own is bounded by that client's own limits.
 */
import type { Scope } from "../scope/scope.ts";
import type { UpstreamRequest } from "../backend/request.ts";
import { Unavailable, type DedicatedOptions, type NodeHandle } from "../backend/contract.ts";
import { UpstreamConn, type UpstreamConnOptions } from "./conn.ts";

export interface NodeEvents {
  reply(node: UpstreamNode, request: UpstreamRequest, frame: Uint8Array): void;
  /** A connection failed or was lost: the topology may have changed. */
  failure(node: UpstreamNode, reason: string): void;
}

export interface UpstreamNodeOptions extends Omit<UpstreamConnOptions, "host" | "port" | "protocol" | "subscriber"> {
  connectionsPerNode: number;
  /** Unsent bytes a shared connection may hold; past it, requests for it are refused at once. */
  maxUpstreamQueueBytes: number;
}

const MIN_DOWN_MS = 100;
const MAX_DOWN_MS = 2000;

export class UpstreamNode implements NodeHandle {
  readonly address: string;
  readonly scope: Scope;
  readonly #conns: (UpstreamConn | null)[];
  /** The RESP3 connections, opened on first use. */
  #conns3: (UpstreamConn | null)[] | null = null;
  readonly #dedicated = new Set<UpstreamConn>();
  readonly #connOptions: UpstreamConnOptions;
  readonly #events: NodeEvents;
  #downUntil = 0;
  #downMs = 0;
  #down: Unavailable | null = null;
  readonly #closing: Unavailable;
  readonly #maxQueueBytes: number;
  readonly #full: Unavailable;

  /**
   * `closeReason` says why requests still pending at teardown fail (e.g. "cluster 'a' was
   * removed"); null when the node merely left the topology.
   */
  constructor(
    parent: Scope,
    readonly host: string,
    readonly port: number,
    options: UpstreamNodeOptions,
    events: NodeEvents,
    closeReason: () => string | null = () => null,
  ) {
    this.address = `${host}:${port}`;
    this.#closing = new Unavailable("closing", `upstream ${this.address} is shutting down`);
    this.scope = parent.child(`node ${this.address}`);
    this.#conns = new Array(Math.max(1, options.connectionsPerNode)).fill(null);
    this.#connOptions = { ...options, host, port };
    this.#maxQueueBytes = options.maxUpstreamQueueBytes;
    this.#full = new Unavailable("limit", `upstream ${this.address} is not keeping up: its connection's send queue is full (maxUpstreamQueueBytes ${options.maxUpstreamQueueBytes})`);
    this.#events = events;
    // Teardown destroys the sockets without running their close handlers; answer what they held.
    this.scope.onDrain(() => Promise.all(this.#all().map((conn) => conn.whenIdle())).then(() => {}));
    this.scope.defer(() => {
      const reason = closeReason() ?? `upstream ${this.address} was removed from the topology`;
      for (const conn of this.#all()) conn.fail(reason);
    });
  }

  /** Requests written to this node and not yet answered. */
  get pendingCount(): number {
    let count = 0;
    for (const conn of this.#all()) count += conn.pendingCount;
    return count;
  }

  /** Every open connection: shared, RESP3 and dedicated. */
  #all(): UpstreamConn[] {
    const all: UpstreamConn[] = [];
    for (const conn of this.#conns) if (conn) all.push(conn);
    for (const conn of this.#conns3 ?? []) if (conn) all.push(conn);
    for (const conn of this.#dedicated) all.push(conn);
    return all;
  }

  /** False while the node is marked down after a failed connect. */
  get isUp(): boolean {
    return this.scope.runtime.now() >= this.#downUntil;
  }

  /**
   * A connection for one client alone, or why not (the node is shutting down or marked down).
   * The caller closes it with `fail` when done.
   */
  dedicated(options: DedicatedOptions): UpstreamConn | Unavailable {
    if (!this.scope.isOpen) return this.#closing;
    if (!this.isUp && this.#down) return this.#down;
    const conn = new UpstreamConn(this.scope, { ...this.#connOptions, protocol: options.protocol, subscriber: options.subscriber ?? false }, {
      reply: options.events.reply,
      push: options.events.push,
      lost: (lost, reason, wasOpen) => {
        this.#dedicated.delete(lost);
        options.events.lost(lost, reason, wasOpen);
      },
    });
    this.#dedicated.add(conn);
    return conn;
  }

  send(request: UpstreamRequest): void {
    // A node leaving the topology finishes what it has but takes nothing new.
    if (!this.scope.isOpen) {
      request.sink.deliver(request, this.#closing.reply);
      return;
    }
    const conns = request.resp3 ? (this.#conns3 ??= new Array(this.#conns.length).fill(null)) : this.#conns;
    const index = request.affinity % conns.length;
    let conn = conns[index];
    if (!conn || conn.isDead) {
      if (this.scope.runtime.now() < this.#downUntil && this.#down) {
        request.sink.deliver(request, this.#down.reply);
        return;
      }
      conn = conns[index] = this.#open(conns, request.resp3 ? 3 : 2);
    }
    if (conn.queuedBytes >= this.#maxQueueBytes) {
      request.sink.deliver(request, this.#full.reply);
      return;
    }
    conn.send(request);
  }

  #open(conns: (UpstreamConn | null)[], protocol: 2 | 3): UpstreamConn {
    const conn: UpstreamConn = new UpstreamConn(this.scope, { ...this.#connOptions, protocol }, {
      reply: (request, frame) => this.#events.reply(this, request, frame),
      lost: (lost, reason, wasOpen) => {
        const index = conns.indexOf(lost);
        if (index >= 0) conns[index] = null;
        if (wasOpen) {
          this.#downMs = 0;
        } else {
          this.#downMs = Math.min(MAX_DOWN_MS, Math.max(MIN_DOWN_MS, this.#downMs * 2));
          this.#downUntil = this.scope.runtime.now() + this.#downMs;
          this.#down = new Unavailable("nodeDown", reason);
        }
        this.#events.failure(this, reason);
      },
    });
    return conn;
  }

  /** Let in-flight requests finish for up to `deadlineMs`, then close every connection. */
  close(deadlineMs: number): Promise<void> {
    return this.scope.close({ deadlineMs });
  }
}
