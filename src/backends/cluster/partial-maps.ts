/**
 * A second opinion on partial slot maps. A node that has just restarted, or is cut off from the
 * others, can answer `CLUSTER SLOTS` with a well-formed map of the few slots it knows; applying it
 * as it is would leave every other slot without an owner (coverage once fell from 16384 to 101).
 * So a slot the applied map gives an owner, and a reported map leaves out, keeps that owner until
 * a second node — not the one that left it out first — leaves it out too, or a map names a new
 * owner.
 */
import { SLOT_COUNT } from "./slot.ts";
import { coveredSlots, withKeptSlots, type Topology } from "./topology.ts";

/** What to make of one reported map. */
export interface Verdict {
  /** The map to apply: the reported one, plus the slots kept from the applied one. */
  readonly topology: Topology;
  /** Slots kept from the applied map until a second node agrees they have no owner. */
  readonly kept: number;
  /** Slots left without an owner now that a second node agrees, and the node that said so first. */
  readonly confirmed: number;
  readonly firstFrom: string | null;
  /** A partial map not seen just before (another node, or other slots): worth a log line. */
  readonly isNew: boolean;
}

export class PartialMaps {
  /** The slots the last partial map left out, and who reported it. */
  #pending: { from: string; slots: Uint8Array; count: number } | null = null;

  /** The node whose partial map waits for a second opinion, or null. */
  get from(): string | null {
    return this.#pending?.from ?? null;
  }

  /** Judge `reported`, answered by `from`, against the `applied` map. */
  judge(applied: Topology, reported: Topology, from: string): Verdict {
    const had = coveredSlots(applied);
    const has = coveredSlots(reported);
    const before = this.#pending;
    const slots = new Uint8Array(SLOT_COUNT);
    let kept = 0;
    let confirmed = 0;
    for (let slot = 0; slot < SLOT_COUNT; slot++) {
      if (had[slot] === 0 || has[slot] === 1) continue;
      if (before !== null && before.from !== from && before.slots[slot] === 1) confirmed++;
      else {
        slots[slot] = 1;
        kept++;
      }
    }
    this.#pending = kept > 0 ? { from, slots, count: kept } : null;
    return {
      topology: kept > 0 ? withKeptSlots(reported, applied, slots) : reported,
      kept,
      confirmed,
      firstFrom: confirmed > 0 ? before!.from : null,
      // The same node repeating the same partial map is not news.
      isNew: kept > 0 && (before === null || before.from !== from || before.count !== kept),
    };
  }
}
