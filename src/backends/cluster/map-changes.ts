/**
 * What changed between two applied slot maps, for the log: how many slots changed owner, how many
 * primaries there were and are, and which slots a former replica now owns (a failover: Redis
 * promoted the replica after its primary failed, or an operator ran CLUSTER FAILOVER).
 */
import { formatAddress } from "../../util/address.ts";
import { SLOT_COUNT } from "./slot.ts";
import type { Topology } from "./topology.ts";

export interface Failover {
  /** The former replica that owns the slots now. */
  primary: string;
  /** The primary it replicated in the previous map. */
  was: string;
  slots: number;
}

export interface MapChanges {
  /** Slots whose owner differs, counting slots that gained or lost their only owner. */
  moved: number;
  previousPrimaries: number;
  primaries: number;
  failovers: Failover[];
}

export function mapChanges(previous: Topology, next: Topology): MapChanges {
  const before = owners(previous);
  const after = owners(next);
  // Each replica of the previous map, with the primary it replicated.
  const replicaOf = new Map<string, string>();
  for (const range of previous.ranges) {
    const primary = formatAddress(range.primary.host, range.primary.port);
    for (const replica of range.replicas) replicaOf.set(formatAddress(replica.host, replica.port), primary);
  }
  let moved = 0;
  const failovers = new Map<string, Failover>();
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    const was = before[slot];
    const now = after[slot];
    if (was === now) continue;
    moved++;
    if (was === undefined || now === undefined || replicaOf.get(now) !== was) continue;
    const key = `${was}>${now}`;
    const failover = failovers.get(key);
    if (failover) failover.slots++;
    else failovers.set(key, { primary: now, was, slots: 1 });
  }
  return { moved, previousPrimaries: primaryCount(previous), primaries: primaryCount(next), failovers: [...failovers.values()] };
}

function owners(topology: Topology): (string | undefined)[] {
  const owner: (string | undefined)[] = new Array(SLOT_COUNT);
  for (const range of topology.ranges) {
    const address = formatAddress(range.primary.host, range.primary.port);
    for (let slot = range.start; slot <= range.end; slot++) owner[slot] = address;
  }
  return owner;
}

/** How many distinct primaries own slots. */
export function primaryCount(topology: Topology): number {
  return new Set(topology.ranges.map((range) => formatAddress(range.primary.host, range.primary.port))).size;
}
