/**
 * What the router needs from an upstream: a Redis Cluster (slot map learnt by discovery) or a
 * pool of standalone servers sharded by ketama. Keys go together in one command only when they
 * map to the same shard (hash slot, or server).
 */
import type { UpstreamRequest } from "./request.ts";

export interface Backend {
  readonly name: string;
  /** The shard `key` belongs to: its hash slot for a cluster, its server index for a ketama pool. */
  shardOf(key: Uint8Array): number;
  /** Send a request whose `slot` holds `shardOf(key)`; its reply comes back through its sink. */
  dispatch(request: UpstreamRequest): void;
  /** Some shard, for keyless commands that any node can answer. */
  anyShard(): number;
}
