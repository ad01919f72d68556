/**
 * What every node of one simulated cluster shares — the slot map, as after gossip has converged —
 * and the rules a node applies to it before serving a keyed command (the Redis Cluster
 * specification, https://redis.io/docs/reference/cluster-spec/), plus CLUSTER SLOTS's view of it.
 */
import { encodeArray, encodeBulk, encodeError, encodeInteger } from "../../../src/resp/encode.ts";
import { keySlot } from "../../../src/backends/cluster/slot.ts";
import { latin1 } from "./keyspace.ts";

/** What the rules need to know of a node. */
export interface RoutingNode {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly address: string;
  readonly replicaOf: string | null;
  readonly data: Map<string, unknown>;
  readonly lists: Map<string, unknown>;
  replicas(): RoutingNode[];
}

/** The topology every node of one simulated cluster shares (`N`: the nodes' class). */
export interface ClusterState<N extends RoutingNode = RoutingNode> {
  /** Primary node id owning each slot, or null (unserved). */
  readonly owner: (string | null)[];
  /** slot -> id of the node it is migrating to (set on the source side). */
  readonly migrating: Map<number, string>;
  /** slot -> id of the node it is importing from (set on the target side). */
  readonly importing: Map<number, string>;
  /** Every node by id (dead ones included). */
  readonly nodes: Map<string, N>;
}

/**
 * The redirection rules, for `node` asked a command on `keys`:
 *
 * - a keyed command whose keys hash to different slots: `-CROSSSLOT ...`;
 * - a slot nobody owns: `-CLUSTERDOWN Hash slot not served`;
 * - a slot owned by another node: `-MOVED <slot> <host>:<port>` (a replica of the owner serves
 *   read-only commands after READONLY);
 * - a slot this node owns and is MIGRATING: served when every key is here, `-ASK <slot> <target>`
 *   when none is, `-TRYAGAIN ...` when only some are;
 * - a slot this node is IMPORTING: served only for the command right after ASKING (a multi-key
 *   command with some keys missing gets `-TRYAGAIN`), else MOVED to the owner.
 *
 * Null when it serves the command. `asking`: the command came right after ASKING (or inside a MULTI after it); `readonly`: the
 * connection said READONLY (a replica of the owner then serves reads).
 */
export function redirection(state: ClusterState, node: RoutingNode, keys: Uint8Array[], write: boolean, asking: boolean, readonly: boolean): Uint8Array | null {
  const slot = keySlot(keys[0]!);
  for (const key of keys) if (keySlot(key) !== slot) return encodeError("CROSSSLOT Keys in request don't hash to the same slot");
  const owner = state.owner[slot] ?? null;
  const present = keys.filter((k) => node.data.has(latin1(k)) || node.lists.has(latin1(k))).length;
  if (node.replicaOf === null && owner === node.id) {
    const to = state.migrating.get(slot);
    if (to === undefined || present === keys.length) return null;
    if (present > 0) return encodeError("TRYAGAIN Multiple keys request during rehashing of slot");
    return encodeError(`ASK ${slot} ${state.nodes.get(to)!.address}`);
  }
  if (node.replicaOf === null && asking && state.importing.get(slot) !== undefined) {
    if (keys.length > 1 && present < keys.length) return encodeError("TRYAGAIN Multiple keys request during rehashing of slot");
    return null;
  }
  if (owner === null) return encodeError("CLUSTERDOWN Hash slot not served");
  if (node.replicaOf === owner && readonly && !write) return null;
  return encodeError(`MOVED ${slot} ${state.nodes.get(owner)!.address}`);
}

/** CLUSTER SLOTS: contiguous ranges per owner, each `[start, end, [host, port, id], ...replicas]`. */
export function clusterSlots(state: ClusterState): Uint8Array {
  const entries: Uint8Array[] = [];
  let start = 0;
  for (let slot = 1; slot <= state.owner.length; slot++) {
    const owner = state.owner[start] ?? null;
    if (slot < state.owner.length && (state.owner[slot] ?? null) === owner) continue;
    if (owner !== null) {
      const primary = state.nodes.get(owner)!;
      const nodes = [primary, ...primary.replicas()].map((n) => encodeArray([encodeBulk(n.host), encodeInteger(n.port), encodeBulk(n.id)]));
      entries.push(encodeArray([encodeInteger(start), encodeInteger(slot - 1), ...nodes]));
    }
    start = slot;
  }
  return encodeArray(entries);
}

