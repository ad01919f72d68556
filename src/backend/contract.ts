/**
 * What the router needs from an upstream: a Redis Cluster (slot map learnt by discovery) or a
 * pool of standalone servers sharded by ketama. Keys go together in one command only when they
 * map to the same shard (hash slot, or server).
 */
import type { UpstreamRequest } from "./request.ts";
import type { UpstreamNode } from "../upstream/node.ts";

/** Where a redirect seen on a client's own connection leads. */
export interface Redirect {
  node: UpstreamNode;
  slot: number;
  /** An ASK: send `ASKING` first, and only for this one command. */
  ask: boolean;
}

export interface Backend {
  readonly name: string;
  /** The shard `key` belongs to: its hash slot for a cluster, its server index for a ketama pool. */
  shardOf(key: Uint8Array): number;
  /** Send a request whose `slot` holds `shardOf(key)`; its reply comes back through its sink. */
  dispatch(request: UpstreamRequest): void;
  /** Some shard, for keyless commands that any node can answer. */
  anyShard(): number;
  /**
   * One shard per primary, in a stable order, for commands sent to every primary: a cluster's
   * primaries by the lowest slot each owns (that slot is the shard), a pool's servers by index.
   */
  primaries(): number[];
  /** The node serving `shard` now (for a client's own connection), or why there is none. */
  nodeFor(shard: number): UpstreamNode | string;
  /** Learn from a MOVED or ASK seen on a client's own connection; the node to retry on, or why not. */
  redirect(frame: Uint8Array, from: UpstreamNode): Redirect | string;
  /** Call `listener` after each new slot map is applied; returns the way to stop. */
  onTopology(listener: () => void): () => void;
}
