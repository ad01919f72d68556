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
import { formatAddress } from "../../util/address.ts";
import { SLOT_COUNT } from "./slot.ts";
import type { Topology } from "./topology.ts";

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

const NO_REPLICAS: readonly Replica[] = [];

/** What a cluster's replica set needs from the cluster. */
export interface ReplicaHost {
  /** Open a node for a replica: its connections say READONLY, its replies come back as reads. */
  open(host: string, port: number): UpstreamNode;
  /** Let a replica that left the slot map finish its reads in flight, then close it. */
  retire(address: string, node: UpstreamNode): void;
}

/**
 * The replicas of every slot of one cluster, per its `readFrom`: which replica serves a read,
 * and the replica nodes, kept in step with each applied slot map. With `primary` it holds nothing
 * and no replica connection is ever opened.
 */
export class ReplicaSet {
  /** The replicas of each slot; null when reads go to primaries only. */
  readonly #bySlot: (readonly Replica[])[] | null;
  /** Replica nodes by address: separate from the primaries' nodes, their connections said READONLY. */
  readonly #byAddress = new Map<string, Replica>();

  constructor(
    readonly readFrom: ReadFrom,
    readonly host: ReplicaHost,
  ) {
    this.#bySlot = readFrom === "primary" ? null : new Array<readonly Replica[]>(SLOT_COUNT).fill(NO_REPLICAS);
  }

  /** The replica a read-only `request` goes to, or null: the primary serves it. */
  pick(request: UpstreamRequest): Replica | null {
    if (!request.readOnly || !this.#bySlot) return null;
    return pickReplica(this.readFrom, this.#bySlot[request.slot]!, request.affinity);
  }

  /** The replica nodes open now. */
  nodes(): UpstreamNode[] {
    return [...this.#byAddress.values()].map((replica) => replica.node);
  }

  /**
   * The replicas of each slot from a new topology. A node listed as a primary is never used as a
   * replica (one promoted by a failover serves through its primary node from now on); replicas
   * that are no longer listed are retired as primaries are.
   */
  apply(topology: Topology): void {
    const slots = this.#bySlot;
    if (!slots) return;
    const primaries = new Set(topology.ranges.map((range) => formatAddress(range.primary.host, range.primary.port)));
    const used = new Set<Replica>();
    slots.fill(NO_REPLICAS);
    for (const range of topology.ranges) {
      const replicas: Replica[] = [];
      for (const address of range.replicas) {
        if (primaries.has(formatAddress(address.host, address.port))) continue;
        const replica = this.#replica(address.host, address.port);
        replicas.push(replica);
        used.add(replica);
      }
      if (replicas.length > 0) for (let slot = range.start; slot <= range.end; slot++) slots[slot] = replicas;
    }
    for (const [address, replica] of this.#byAddress) {
      if (used.has(replica)) continue;
      this.#byAddress.delete(address);
      this.host.retire(address, replica.node);
    }
  }

  #replica(host: string, port: number): Replica {
    const address = formatAddress(host, port);
    let replica = this.#byAddress.get(address);
    if (!replica) {
      replica = new Replica(this.host.open(host, port));
      this.#byAddress.set(address, replica);
    }
    return replica;
  }
}
