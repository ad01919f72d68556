/**
 * Slot maps shared between the workers of one slotgate (`SLOTGATE_WORKERS=N`). Each worker runs
 * its own clusters, each with its own discovery; if each asked `CLUSTER SLOTS` every refresh
 * interval, the clusters would see N times the load of one slotgate. Instead a worker that learns
 * a map publishes it, and the others apply it as if their own round had fetched it and start
 * their periodic wait over (./discovery.ts), so the group asks about once per interval.
 *
 * What crosses between workers is plain data (`SharedTopology`), fit for structured clone or
 * JSON. A peer is another worker of the same build, but its message is still checked on arrival
 * (`fromShared`): a malformed one is dropped, never thrown, and never half-applied.
 */
import { isSlot, SLOT_COUNT } from "./slot.ts";
import type { NodeAddress, SlotRange, Topology } from "./topology.ts";
import { isIpLiteral } from "../../util/address.ts";

/** How the workers of one slotgate share the slot maps they learn (absent: one worker, nothing shared). */
export interface TopologyExchange {
  /** Tell the other workers: this topology was just learned for the cluster known by `key`. */
  publish(key: string, topology: SharedTopology): void;
  /** Receive what other workers publish under `key` until the returned function is called. */
  subscribe(key: string, receive: (topology: SharedTopology) => void): () => void;
}

/**
 * A slot map as one worker learned it, for the others: the ranges as `CLUSTER SLOTS` reported
 * them (hosts already resolved to IP addresses), and `from`, the `host:port` that answered.
 * Plain data only: no optional field is ever present as `undefined`.
 */
export interface SharedTopology {
  from: string;
  ranges: SlotRange[];
}

/** A copy of `topology` fit to cross to another worker. */
export function toShared(topology: Topology, from: string): SharedTopology {
  return {
    from,
    ranges: topology.ranges.map((range) => ({
      start: range.start,
      end: range.end,
      primary: copyNode(range.primary),
      replicas: range.replicas.map(copyNode),
    })),
  };
}

/**
 * A fresh, checked copy of what a peer sent, or null when it is not a well-formed shared
 * topology: slot ranges within 0..16383, each with a primary, every node at an IP address (a
 * worker publishes only resolved maps) and a valid port, and at least one range (a node that
 * reports no slots is no answer, as in discovery's own rounds).
 */
export function fromShared(data: unknown): SharedTopology | null {
  if (!isRecord(data) || typeof data.from !== "string" || data.from === "") return null;
  const ranges = data.ranges;
  if (!Array.isArray(ranges) || ranges.length === 0 || ranges.length > SLOT_COUNT) return null;
  const copied: SlotRange[] = [];
  for (const range of ranges) {
    const checked = checkRange(range);
    if (checked === null) return null;
    copied.push(checked);
  }
  return { from: data.from, ranges: copied };
}

function checkRange(range: unknown): SlotRange | null {
  if (!isRecord(range) || !isSlot(range.start) || !isSlot(range.end) || range.start > range.end) return null;
  if (!Array.isArray(range.replicas)) return null;
  const primary = checkNode(range.primary);
  if (primary === null) return null;
  const replicas: NodeAddress[] = [];
  for (const replica of range.replicas) {
    const checked = checkNode(replica);
    if (checked === null) return null;
    replicas.push(checked);
  }
  return { start: range.start, end: range.end, primary, replicas };
}

function checkNode(node: unknown): NodeAddress | null {
  if (!isRecord(node) || typeof node.host !== "string" || !isIpLiteral(node.host)) return null;
  const port = node.port;
  if (typeof port !== "number" || !Number.isInteger(port) || port <= 0 || port > 65535) return null;
  if (!isOptionalText(node.id) || !isOptionalText(node.hostname)) return null;
  return copyNode({ host: node.host, port, id: node.id, hostname: node.hostname });
}

/** The node's fields, leaving out the optional ones it does not have. */
function copyNode(node: NodeAddress): NodeAddress {
  const copy: NodeAddress = { host: node.host, port: node.port };
  if (node.id !== undefined) copy.id = node.id;
  if (node.hostname !== undefined) copy.hostname = node.hostname;
  return copy;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isOptionalText(value: unknown): value is string | undefined {
  return value === undefined || typeof value === "string";
}
