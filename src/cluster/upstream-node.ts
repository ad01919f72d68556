/**
 * A Redis node as slotgate sees it: a small, lazily opened set of pipelined connections. A
 * client's requests to one node always use the same connection (by affinity), so they run in the
 * order the client sent them. A node that cannot be reached is marked down for a short backoff,
 * during which its requests fail fast instead of piling up behind connect attempts.
 */
import type { Scope } from "../scope.ts";
import type { UpstreamRequest } from "../proxy/request.ts";
import { UpstreamConn, type UpstreamConnOptions } from "./upstream-conn.ts";
import { errorReply } from "../resp/replies.ts";

export interface NodeEvents {
  reply(node: UpstreamNode, request: UpstreamRequest, frame: Uint8Array): void;
  /** A connection failed or was lost: the topology may have changed. */
  failure(node: UpstreamNode, reason: string): void;
}

export interface UpstreamNodeOptions extends Omit<UpstreamConnOptions, "host" | "port"> {
  connectionsPerNode: number;
}

const MIN_DOWN_MS = 100;
const MAX_DOWN_MS = 2000;

export class UpstreamNode {
  readonly address: string;
  readonly scope: Scope;
  readonly #conns: (UpstreamConn | null)[];
  readonly #connOptions: UpstreamConnOptions;
  readonly #events: NodeEvents;
  #downUntil = 0;
  #downMs = 0;
  #downReason = "";

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
    this.scope = parent.child(`node ${this.address}`);
    this.#conns = new Array(Math.max(1, options.connectionsPerNode)).fill(null);
    this.#connOptions = { ...options, host, port };
    this.#events = events;
    // Teardown destroys the sockets without running their close handlers; answer what they held.
    this.scope.onDrain(() => Promise.all(this.#conns.map((conn) => conn?.whenIdle())).then(() => {}));
    this.scope.defer(() => {
      const reason = closeReason() ?? `upstream ${this.address} was removed from the topology`;
      for (const conn of this.#conns) conn?.fail(reason);
    });
  }

  /** Requests written to this node and not yet answered. */
  get pendingCount(): number {
    let count = 0;
    for (const conn of this.#conns) count += conn?.pendingCount ?? 0;
    return count;
  }

  send(request: UpstreamRequest): void {
    // A node leaving the topology finishes what it has but takes nothing new.
    if (!this.scope.isOpen) {
      request.sink.deliver(request, errorReply(`upstream ${this.address} is shutting down`));
      return;
    }
    const index = request.affinity % this.#conns.length;
    let conn = this.#conns[index];
    if (!conn || conn.isDead) {
      if (this.scope.runtime.now() < this.#downUntil) {
        request.sink.deliver(request, errorReply(this.#downReason));
        return;
      }
      conn = this.#conns[index] = this.#open();
    }
    conn.send(request);
  }

  #open(): UpstreamConn {
    const conn: UpstreamConn = new UpstreamConn(this.scope, this.#connOptions, {
      reply: (request, frame) => this.#events.reply(this, request, frame),
      lost: (lost, reason, wasOpen) => {
        const index = this.#conns.indexOf(lost);
        if (index >= 0) this.#conns[index] = null;
        if (wasOpen) {
          this.#downMs = 0;
        } else {
          this.#downMs = Math.min(MAX_DOWN_MS, Math.max(MIN_DOWN_MS, this.#downMs * 2));
          this.#downUntil = this.scope.runtime.now() + this.#downMs;
          this.#downReason = reason;
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
