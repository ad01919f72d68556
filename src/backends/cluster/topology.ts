/**
 * The slot map as a node reports it (`CLUSTER SLOTS`), in a form independent of any connection:
 * slot ranges, each with a primary and its replicas. Parsing is strict: a reply that is not a
 * well-formed slot table is rejected, never half-applied.
 */
import { isSlot, SLOT_COUNT } from "./slot.ts";

export interface NodeAddress {
  host: string;
  port: number;
  /** Node id, when the reply carries it. */
  id?: string;
  /** The hostname the node announced, when it announced one (resolved into `host`). */
  hostname?: string;
}

export interface SlotRange {
  start: number;
  end: number;
  primary: NodeAddress;
  replicas: NodeAddress[];
}

export interface Topology {
  ranges: SlotRange[];
}

export class TopologyError extends Error {
  override readonly name = "TopologyError";
}

/**
 * Read a decoded `CLUSTER SLOTS` reply. An empty host means "the address you asked", as Redis
 * sends it for a node that does not know its own IP (`cluster-announce-ip` unset).
 */
export function parseClusterSlots(reply: unknown, askedHost: string): Topology {
  if (!Array.isArray(reply)) throw new TopologyError("CLUSTER SLOTS reply is not an array");
  const ranges: SlotRange[] = [];
  for (const entry of reply) {
    if (!Array.isArray(entry) || entry.length < 3) throw new TopologyError("malformed CLUSTER SLOTS entry");
    const [start, end, primary, ...replicas] = entry;
    if (!isSlot(start) || !isSlot(end) || start > end) throw new TopologyError(`bad slot range ${start}-${end}`);
    ranges.push({
      start,
      end,
      primary: parseNode(primary, askedHost),
      replicas: replicas.map((r) => parseNode(r, askedHost)),
    });
  }
  return { ranges };
}

function parseNode(value: unknown, askedHost: string): NodeAddress {
  if (!Array.isArray(value) || value.length < 2) throw new TopologyError("malformed node in CLUSTER SLOTS");
  const [rawHost, port, id, meta] = value;
  const host = text(rawHost);
  // Not just a number: a RESP3 double (1.5, nan) is one too, and no port.
  if (host === null || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new TopologyError("malformed node address in CLUSTER SLOTS");
  }
  const node: NodeAddress = { host: host === "" || host === "?" ? askedHost : host, port };
  const nodeId = text(id);
  if (nodeId) node.id = nodeId;
  // Redis 7 appends a flat map of metadata (e.g. "hostname", "ip").
  if (Array.isArray(meta)) {
    for (let i = 0; i + 1 < meta.length; i += 2) {
      if (text(meta[i]) === "hostname") node.hostname = text(meta[i + 1]) ?? undefined;
    }
  }
  return node;
}

function text(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  return null;
}

/** One byte per slot: 1 where the topology names a primary. */
export function coveredSlots(topology: Topology): Uint8Array {
  const covered = new Uint8Array(SLOT_COUNT);
  for (const range of topology.ranges) covered.fill(1, range.start, range.end + 1);
  return covered;
}

/** How many slots the topology assigns to a primary. */
export function coverage(topology: Topology): number {
  let count = 0;
  for (const slot of coveredSlots(topology)) count += slot;
  return count;
}

/**
 * `next`, plus the ranges of `previous` cut down to the slots marked in `kept` (1 per slot): the
 * previous owner (with its replicas) keeps each of them. `kept` slots must be ones `next` leaves
 * uncovered. Ranges come out in slot order.
 */
export function withKeptSlots(next: Topology, previous: Topology, kept: Uint8Array): Topology {
  const ranges = [...next.ranges];
  for (const range of previous.ranges) {
    let start = -1;
    for (let slot = range.start; slot <= range.end + 1; slot++) {
      const keep = slot <= range.end && kept[slot] === 1;
      if (keep && start < 0) start = slot;
      if (!keep && start >= 0) {
        ranges.push({ ...range, start, end: slot - 1 });
        start = -1;
      }
    }
  }
  ranges.sort((a, b) => a.start - b.start);
  return { ranges };
}
