/**
 * The contract between the proxy and an upstream: a Redis Cluster (slot map learnt by discovery)
 * or a pool of standalone servers sharded by ketama. The proxy routes through `Backend` alone and
 * never asks which kind it holds: what differs is said by `capabilities`. Keys go together in one
 * command only when they map to the same shard (hash slot, or server).
 *
 * A backend has a lifecycle, as undici's Dispatcher does: `ready` resolves once it can route
 * every key; `close(deadlineMs, reason)` stops taking work, lets in-flight requests finish until
 * the deadline, then cancels the rest, which is answered `-ERR <reason>`; `destroy(reason)` is a
 * close with no grace. Both are idempotent. Work offered after close is refused as a value
 * (`Unavailable`), never thrown.
 */
import type { ScopeInfo } from "../scope/scope.ts";
import type { UpstreamRequest } from "./request.ts";
import { errorReply } from "../resp/replies.ts";

/** Why a backend, node or budget cannot take a request now. */
export type UnavailableKind =
  /** The backend or node is closing (removed, replaced, leaving the topology, shutting down). */
  | "closing"
  /** No node serves the shard: Redis Cluster's `CLUSTERDOWN`. */
  | "clusterDown"
  /** The node is marked down after a failed connect, until a probe is answered. */
  | "nodeDown"
  /** A request to the node timed out: it is suspect until a probe is answered. */
  | "nodeSuspect"
  /** The node refused slotgate's credentials (./auth.ts): down until a probe is let in. */
  | "auth"
  /** A standalone pool has no server at that index. */
  | "noServer"
  /** A limit is reached (dedicated connections). */
  | "limit"
  /** The backend has nothing of the kind asked (a standalone server does not redirect). */
  | "unsupported"
  /** No backend is configured for the command (no catch-all, several clusters). */
  | "unrouted";

/** A refusal as a value: what kind, and the text a client reads. */
export class Unavailable {
  #reply: Uint8Array | null = null;

  constructor(
    readonly kind: UnavailableKind,
    /** The error text without its code, e.g. "cluster 'main' was removed". */
    readonly message: string,
  ) {}

  /** The error reply a client gets: `-CLUSTERDOWN ...` for `clusterDown`, `-ERR ...` otherwise. */
  get reply(): Uint8Array {
    return (this.#reply ??= this.kind === "clusterDown" ? errorReply(this.message, "CLUSTERDOWN") : errorReply(this.message));
  }
}

/** What a connection of a client's own reports to whoever holds it. */
export interface ConnEvents {
  /** A reply arrived for `request` (redirects included: the holder decides). */
  reply(request: UpstreamRequest, frame: Uint8Array): void;
  /** The connection is gone; `reason` says why (already used to fail its pending requests). */
  lost(conn: DedicatedConn, reason: string, wasOpen: boolean): void;
  /** A RESP3 push frame, or any frame on a subscriber connection. Dropped when absent. */
  push?(frame: Uint8Array): void;
}

/** How a dedicated connection speaks, and who hears it. */
export interface DedicatedOptions {
  protocol: 2 | 3;
  /** A pub/sub connection: every frame goes to `events.push`, none is matched to a request. */
  subscriber?: boolean;
  events: ConnEvents;
}

/** A connection one client holds alone: for a blocked command, a transaction, a subscription. */
export interface DedicatedConn {
  readonly isDead: boolean;
  /**
   * Queue `request`; its reply comes through the events. Refused as a value (the request is not
   * answered: the caller decides) when the connection is gone or its node is closing.
   */
  send(request: UpstreamRequest): Unavailable | null;
  /** Write a frame no reply is matched to (a subscriber's commands). */
  write(frame: Uint8Array): void;
  /** Close it; requests still pending are answered `-ERR <reason>`. Idempotent. */
  fail(reason: string): void;
}

/** A node a client may open a connection of its own to. */
export interface NodeHandle {
  readonly host: string;
  readonly port: number;
  /** `host:port`. */
  readonly address: string;
  dedicated(options: DedicatedOptions): DedicatedConn | Unavailable;
}

/** Where a redirect seen on a client's own connection leads. */
export interface Redirect {
  node: NodeHandle;
  slot: number;
  /** An ASK: send `ASKING` first, and only for this one command. */
  ask: boolean;
}

/** What the proxy may ask of a backend beyond routing keys. */
export interface BackendCapabilities {
  /** A PUBLISH reaches subscribers on every node (Redis Cluster); a standalone pool's does not. */
  readonly publishReachesEveryNode: boolean;
}

/** One backend as the admin API shows it (`GET /clusters/:name`). */
export interface BackendStatus {
  /** "cluster" (Redis Cluster, slot map learnt by discovery) or "standalone" (ketama over servers). */
  type: "cluster" | "standalone";
  ready: boolean;
  /** Slots (cluster) with an owner, out of 16384; servers (standalone) configured. */
  coveredSlots: number;
  /**
   * Replicas (`role: "replica"`) are listed when the cluster's `readFrom` lets reads use them.
   * `health`: `down` after a failed connect, `suspect` after a timed-out request, until a probe is answered.
   */
  nodes: { address: string; pending: number; role?: "primary" | "replica"; health?: "up" | "down" | "suspect" }[];
  /** ISO 8601 time of the last applied slot map. */
  lastRefreshAt: string | null;
  lastError: string | null;
  redirects: { moved: number; ask: number };
  refreshes: number;
  refreshFailures: number;
  /**
   * Partial slot maps refused (their uncovered slots kept the previous owner), the slots kept now
   * until a second node agrees, and the node whose map left them out.
   */
  partialMaps: { refused: number; keptSlots: number; from: string | null };
  /** Nodes outside the slot map opened for redirects since it was applied, and redirects refused by `maxUnknownNodes`. */
  unknownNodes: { open: number; refused: number };
  /** Live resources of the backend's scope (tasks, timers, sockets, lookups, child scopes). */
  scope: ScopeInfo;
}

export interface Backend {
  readonly name: string;
  readonly capabilities: BackendCapabilities;
  /** Resolves once the backend can route every key (a complete slot map; every server of a pool answered PING). */
  readonly ready: Promise<void>;
  readonly isReady: boolean;
  /** The shard `key` belongs to: its hash slot for a cluster, its server index for a ketama pool. */
  shardOf(key: Uint8Array): number;
  /** Send a request whose `slot` holds `shardOf(key)`; its reply comes back through its sink, exactly once. */
  dispatch(request: UpstreamRequest): void;
  /** Some shard, for keyless commands that any node can answer. */
  anyShard(): number;
  /**
   * One shard per primary, in a stable order, for commands sent to every primary: a cluster's
   * primaries by the lowest slot each owns (that slot is the shard), a pool's servers by index.
   */
  primaries(): number[];
  /** The node serving `shard` now (for a client's own connection), or why there is none. */
  nodeFor(shard: number): NodeHandle | Unavailable;
  /**
   * Learn from a MOVED or ASK seen on a client's own connection to `from`: the node to retry on,
   * why not (closing, or `followed` redirects are more than the backend's `maxRedirects`), or
   * null when `frame` is not a redirect.
   */
  redirect(frame: Uint8Array, from: NodeHandle, followed?: number): Redirect | Unavailable | null;
  /** Call `listener` after each new slot map is applied; returns the way to stop. */
  onTopology(listener: () => void): () => void;
  /** What the admin API shows. */
  status(): BackendStatus;
  /** Stop taking work, let in-flight requests finish until `deadlineMs`, then cancel the rest (answered `-ERR reason`). */
  close(deadlineMs: number, reason: string): Promise<void>;
  /** Close with no grace: everything pending is answered `-ERR reason` now. */
  destroy(reason: string): Promise<void>;
}
