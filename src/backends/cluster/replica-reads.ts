/**
 * Reads served by replicas, as a cluster's `readFrom` allows: `primary` (replicas unused),
 * `preferReplica` and `replica` (a replica of the slot that is up, else the primary), `any` (the
 * primary or a replica that is up). Only commands the command table flags READONLY qualify.
 *
 * A replica is an `UpstreamNode` whose connections say `READONLY` first. A read sent to one
 * travels as a `ReplicaRead`: a copy of the client's request whose sink is the cluster's, so that
 * a read the replica cannot serve — unreachable, connection lost, timed out, or answered
 * `-LOADING`, `-MASTERDOWN` or `-CLUSTERDOWN` — is sent once more, to the primary, before the
 * client hears of it. Reads only: running one twice changes nothing.
 *
 * The replica is chosen by the request's affinity (its client), so one client's reads of one slot
 * keep to one replica and one connection, and run in the order they were sent.
 */
import { UpstreamRequest, type ReplySink } from "../../backend/request.ts";
import type { UpstreamNode } from "../../upstream/node.ts";
import { MINUS } from "../../resp/bytes.ts";

export const READ_FROM = ["primary", "preferReplica", "replica", "any"] as const;
export type ReadFrom = (typeof READ_FROM)[number];

/** Backoff after a replica fails a read, doubled per failure in a row (milliseconds). */
const MIN_AVOID_MS = 100;
const MAX_AVOID_MS = 2000;

/** A replica node, and how long reads keep away from it after it failed one. */
export class Replica {
  #avoidUntil = 0;
  #avoidMs = 0;

  constructor(readonly node: UpstreamNode) {}

  /**
   * Neither marked down by its node (a failed connect) nor avoided after a failed read. The node
   * alone would not see a replica that accepts connections but never answers (a stopped process):
   * each read would wait for its timeout.
   */
  get usable(): boolean {
    return this.node.isUp && this.node.scope.runtime.now() >= this.#avoidUntil;
  }

  /** A read failed here: keep reads away for a while, longer after each failure in a row. */
  failed(): void {
    const now = this.node.scope.runtime.now();
    // Reads that were in flight together fail together: one incident, one step of backoff.
    if (now < this.#avoidUntil) return;
    this.#avoidMs = Math.min(MAX_AVOID_MS, Math.max(MIN_AVOID_MS, this.#avoidMs * 2));
    this.#avoidUntil = now + this.#avoidMs;
  }

  /** It served a read: failures in a row start over. */
  served(): void {
    this.#avoidMs = 0;
  }
}

/** A client's read on its way to a replica; `original` is what the client waits for. */
export class ReplicaRead extends UpstreamRequest {
  constructor(
    readonly original: UpstreamRequest,
    readonly replica: Replica,
    /** Hears only failures the proxy produced (the node's reply event carries Redis's replies). */
    failures: ReplySink,
  ) {
    super(original.frame, original.slot, failures, original.affinity, original.part);
    this.resp3 = original.resp3;
    this.readOnly = true;
    this.blocking = original.blocking;
  }
}

/**
 * The replica that serves a read under `policy`, or null for the primary. `replicas` are the
 * slot's; the choice among the usable ones follows `affinity`. `any` counts the primary as one
 * more choice.
 */
export function pickReplica(policy: ReadFrom, replicas: readonly Replica[], affinity: number): Replica | null {
  if (policy === "primary" || replicas.length === 0) return null;
  let usable = 0;
  for (const replica of replicas) if (replica.usable) usable++;
  if (usable === 0) return null;
  let index = affinity % (policy === "any" ? usable + 1 : usable);
  for (const replica of replicas) {
    if (replica.usable && index-- === 0) return replica;
  }
  return null;
}

/** A replica's error reply that says it cannot serve reads now, though the primary may. */
export function fallsAway(frame: Uint8Array): boolean {
  return frame[0] === MINUS && (startsWith(frame, "LOADING") || startsWith(frame, "MASTERDOWN") || startsWith(frame, "CLUSTERDOWN"));
}


function startsWith(frame: Uint8Array, word: string): boolean {
  if (frame.length < word.length + 1) return false;
  for (let i = 0; i < word.length; i++) if (frame[i + 1] !== word.charCodeAt(i)) return false;
  return true;
}
