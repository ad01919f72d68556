/**
 * Parsing `CLUSTER NODES` output into one node's view of the cluster, and comparing views.
 * The local-cluster helpers use these to decide when a cluster is "stable": every live node says
 * cluster_state:ok and all of them report the same slot-to-primary assignment.
 */

/** One line of `CLUSTER NODES`. Slot ranges that are importing/migrating (`[..]`) are dropped. */
export interface ViewEntry {
  id: string;
  host: string;
  port: number;
  flags: string[];
  /** Id of the primary this node replicates, or undefined for a primary. */
  primaryId: string | undefined;
  /** Owned slot ranges, inclusive. */
  slots: Array<[number, number]>;
}

export { SLOT_COUNT } from "../src/backends/cluster/slot.ts";
import { SLOT_COUNT } from "../src/backends/cluster/slot.ts";

/** Parse the text of `CLUSTER NODES`. */
export function parseClusterNodes(text: string): ViewEntry[] {
  const entries: ViewEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(" ");
    if (fields.length < 8) continue;
    const [id, address, flags, primary, , , , , ...slotFields] = fields as [string, string, string, string, ...string[]];
    // address is "ip:port@cport[,hostname]"; ip may be empty for a node that lost its address.
    const hostPort = address.split("@")[0]!;
    const colon = hostPort.lastIndexOf(":");
    const slots: Array<[number, number]> = [];
    for (const field of slotFields) {
      if (field.startsWith("[")) continue;
      const [start, end] = field.split("-");
      slots.push([Number(start), Number(end ?? start)]);
    }
    entries.push({
      id,
      host: hostPort.slice(0, colon),
      port: Number(hostPort.slice(colon + 1)),
      flags: flags.split(","),
      primaryId: primary === "-" ? undefined : primary,
      slots,
    });
  }
  return entries;
}

/**
 * A canonical string for the slot assignment in a view ("0-5460:7000 5461-10922:7001 ...");
 * two nodes agree on the slot map exactly when their signatures are equal.
 */
export function slotSignature(view: ViewEntry[]): string {
  const ranges: Array<[number, number, number]> = [];
  for (const entry of view) for (const [start, end] of entry.slots) ranges.push([start, end, entry.port]);
  ranges.sort((a, b) => a[0] - b[0]);
  return ranges.map(([start, end, port]) => `${start}-${end}:${port}`).join(" ");
}

/** Number of slots that some primary owns in this view. */
export function coveredSlots(view: ViewEntry[]): number {
  let count = 0;
  for (const entry of view) for (const [start, end] of entry.slots) count += end - start + 1;
  return count;
}

/** Port of the node that owns `slot` in this view, or undefined. */
export function ownerOfSlot(view: ViewEntry[], slot: number): number | undefined {
  for (const entry of view) {
    for (const [start, end] of entry.slots) if (slot >= start && slot <= end) return entry.port;
  }
  return undefined;
}

/** Parse `key:value` lines (CLUSTER INFO, INFO sections) into a map. */
export function parseInfo(text: string): Map<string, string> {
  const info = new Map<string, string>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0 && !line.startsWith("#")) info.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return info;
}
