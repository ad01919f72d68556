/**
 * SCAN over a whole cluster, one primary after another, with the cursor the client holds saying
 * where the walk stands — so any slotgate instance can serve the next page, and a topology
 * change between pages is noticed. The cursor packs four numbers (from the low bits):
 *
 * - `slot` (14 bits): the walk's position, a slot of the primary being scanned (a pool's server
 *   index); the next page goes to whoever owns that slot now;
 * - `node` (12 bits): a hash of that primary's address: when the slot's owner has changed since
 *   the last page, the new owner is scanned from its start instead of with a cursor of another
 *   node's table (12 bits, not fewer: two primaries whose tags collide would pass one's cursor to
 *   the other, and keys would be missed);
 * - `topology` (8 bits): 1-255, a hash of the slot map when the scan began; 0 once a page has
 *   seen another slot map (it stays 0 to the end);
 * - `upstream` (the rest): the primary's own SCAN cursor.
 *
 * When a primary's scan ends (its cursor is 0), the walk moves to the first slot after its
 * position owned by another primary. While the slot map is the one the scan began with, that
 * must also be the other primary's lowest slot, so each primary is scanned once. Once it has
 * changed, every run of slots after the position is visited, so a primary that gained slots
 * below the position is not skipped — at the price of scanning it again (duplicates are allowed).
 *
 * The guarantee: a key that stays on the same primary for the whole scan is returned at least
 * once, across slot migrations, failovers and topology refreshes (barring a collision of either
 * hash: 1 in 4096 for two primaries' tags, 1 in 255 for two slot maps). A key whose slot migrates while the scan runs may be missed when it moves to a
 * primary the walk has passed or is scanning; and the walk follows slotgate's slot map, which can
 * lag behind the cluster's until the next refresh. Cursors fit in 64 bits (clients that read them
 * as unsigned 64-bit numbers) while a primary's own cursor is below 2^30, i.e. for tables of up to
 * ~1 billion buckets, and stay below 2^53 (clients that read them as doubles) below 2^19.
 */
import { Unavailable, type Backend } from "../../backend/contract.ts";
import { UpstreamRequest, type Pending, type ReplySink } from "../../backend/request.ts";
import { arrayHeader, isErrorReply, CLUSTER_DOWN, type FanOutClient } from "./fanout.ts";
import { SLOT_COUNT } from "../../backends/cluster/slot.ts";
import { concatBytes, encodeArrayHeader, encodeBulk, encodeCommand } from "../../resp/encode.ts";
import { errorReply } from "../../resp/replies.ts";
import { CR } from "../../resp/bytes.ts";
import { asError } from "../../errors.ts";

/** Where a whole-cluster scan stands, as encoded in its cursor. */
export interface ScanPosition {
  /** The primary's own SCAN cursor. */
  upstream: bigint;
  /** `topologyTag` of the slot map when the scan began, or `CHANGED` once it has changed. */
  topology: number;
  /** `nodeTag` of the primary being scanned. */
  node: number;
  /** The walk's position: a slot owned by the primary being scanned. */
  slot: number;
}

/** What the walk needs of a backend: who serves each slot, and when that changes (a `Backend` is one). */
export interface SlotOwners {
  nodeFor(shard: number): { readonly address: string } | Unavailable;
  onTopology(listener: () => void): () => void;
}

const SLOT_BITS = 14n;
const NODE_BITS = 12n;
const NODE_MASK = (1 << Number(NODE_BITS)) - 1;
const TOPOLOGY_BITS = 8n;
const TOPOLOGY_MASK = (1 << Number(TOPOLOGY_BITS)) - 1;
/** Longest cursor accepted, in digits: well past anything slotgate hands out. */
const MAX_CURSOR_DIGITS = 40;

export const INVALID_CURSOR = errorReply("invalid cursor");

/** The client's cursor as decimal text ("0": the scan is over). */
export function encodeCursor(position: ScanPosition): string {
  const { upstream, topology, node, slot } = position;
  return ((((upstream << TOPOLOGY_BITS) | BigInt(topology)) << NODE_BITS | BigInt(node)) << SLOT_BITS | BigInt(slot)).toString();
}

/** The position a client's cursor names: "start" for 0, null when it is not a decimal number. */
export function decodeCursor(text: Uint8Array): ScanPosition | "start" | null {
  if (text.length === 0 || text.length > MAX_CURSOR_DIGITS) return null;
  for (const c of text) if (c < 48 || c > 57) return null;
  const cursor = BigInt(String.fromCharCode(...text));
  if (cursor === 0n) return "start";
  return {
    slot: Number(cursor & ((1n << SLOT_BITS) - 1n)),
    node: Number((cursor >> SLOT_BITS) & BigInt(NODE_MASK)),
    topology: Number((cursor >> (SLOT_BITS + NODE_BITS)) & BigInt(TOPOLOGY_MASK)),
    upstream: cursor >> (SLOT_BITS + NODE_BITS + TOPOLOGY_BITS),
  };
}

/** FNV-1a (32 bits) of `text`, continuing from `hash`. */
function fnv(text: string, hash = 0x811c9dc5): number {
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/** A primary's tag: a hash of its address, 0-4095. */
export function nodeTag(address: string): number {
  return fnv(address) & NODE_MASK;
}

/** `topology` of a cursor whose scan has seen the slot map change. */
export const CHANGED = 0;

/**
 * The slot map's tag per backend, dropped whenever the backend applies a new slot map (a slot
 * learnt from a single MOVED counts once the refresh it triggers is applied).
 */
const tags = new WeakMap<SlotOwners, number>();

/** A hash of the whole slot map, 1-255: each run of slots with its owner's address. */
export function topologyTag(owners: SlotOwners): number {
  const cached = tags.get(owners);
  if (cached !== undefined) return cached;
  const tag = hashSlotMap(owners);
  tags.set(owners, tag);
  const stop = owners.onTopology(() => {
    tags.delete(owners);
    stop();
  });
  return tag;
}

function hashSlotMap(owners: SlotOwners): number {
  let hash = 0x811c9dc5;
  let previous: unknown = undefined;
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    const node = owners.nodeFor(slot);
    const owner = node instanceof Unavailable ? null : node;
    if (slot > 0 && owner === previous) continue;
    previous = owner;
    hash = fnv(`${slot}=${owner === null ? "" : owner.address};`, hash);
  }
  return 1 + (hash % TOPOLOGY_MASK);
}

/**
 * The walk's next position after `finished` (which owned `after`) has been scanned to its end:
 * the first later slot of another primary — with an unchanged slot map (`stable`), only a
 * primary's lowest slot, since a primary owning a lower slot was scanned there. Null: done.
 * `after` -1 gives the first position.
 */
export function nextSlot(owners: SlotOwners, after: number, finished: object | null, stable: boolean): number | null {
  const lowest = new Map<object, number>();
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    const node = owners.nodeFor(slot);
    if (node instanceof Unavailable) continue;
    if (!lowest.has(node)) lowest.set(node, slot);
    if (slot <= after || node === finished) continue;
    if (!stable || lowest.get(node) === slot) return slot;
  }
  return null;
}

/** Serve one `SCAN cursor [MATCH p] [COUNT n] [TYPE t]` page over `backend`'s primaries. */
export function scan(client: FanOutClient, backend: Backend, args: readonly Uint8Array[]): void {
  const position = decodeCursor(args[1]!);
  if (position === null) return client.reply(INVALID_CURSOR);
  let topology: number;
  let slot: number;
  let upstream = 0n;
  if (position === "start") {
    const first = nextSlot(backend, -1, null, true);
    if (first === null) return client.reply(CLUSTER_DOWN);
    topology = topologyTag(backend);
    slot = first;
  } else {
    ({ topology, slot } = position);
    upstream = position.upstream;
    // Noticed on any page, remembered to the end: the walk must then visit every later run.
    if (topology !== CHANGED && topologyTag(backend) !== topology) topology = CHANGED;
  }
  const node = backend.nodeFor(slot);
  if (node instanceof Unavailable) return client.reply(node.reply);
  const tag = nodeTag(node.address);
  // The slot changed hands since the last page: that cursor belongs to another node's table.
  if (position !== "start" && position.node !== tag) upstream = 0n;
  const page = new ScanPage(client, backend, { upstream, topology, node: tag, slot }, node);
  const request = new UpstreamRequest(encodeCommand([args[0]!, upstream.toString(), ...args.slice(2)]), slot, page, client.id);
  request.resp3 = client.protocol === 3;
  client.expect(page);
  backend.dispatch(request);
}

const decoder = new TextDecoder();
const PAIR = encodeArrayHeader(2);

/** One page: the primary's reply with its cursor replaced by the walk's. */
class ScanPage implements Pending, ReplySink {
  reply: Uint8Array | null = null;

  constructor(
    readonly client: FanOutClient,
    readonly backend: Backend,
    readonly position: ScanPosition,
    /** The primary the page was sent to. */
    readonly node: object,
  ) {}

  deliveryFailed(_request: UpstreamRequest, error: unknown): void {
    this.client.fault(asError(error));
  }

  deliver(_request: UpstreamRequest, reply: Uint8Array): void {
    this.reply = isErrorReply(reply) ? reply : this.#rewrite(reply);
    this.client.complete(this);
  }

  #rewrite(reply: Uint8Array): Uint8Array {
    const parsed = parseScanReply(reply);
    if (!parsed) return errorReply("unexpected SCAN reply from a primary");
    const { upstream, keys } = parsed;
    let cursor: string;
    if (upstream !== 0n) {
      cursor = encodeCursor({ ...this.position, upstream });
    } else {
      const stable = this.position.topology !== CHANGED && topologyTag(this.backend) === this.position.topology;
      const next = nextSlot(this.backend, this.position.slot, this.node, stable);
      cursor = next === null ? "0" : encodeCursor({ upstream: 0n, topology: stable ? this.position.topology : CHANGED, node: 0, slot: next });
    }
    const bulk = encodeBulk(cursor);
    return concatBytes([PAIR, bulk, keys], PAIR.length + bulk.length + keys.length);
  }
}

/** A SCAN reply `*2 $cursor *N keys...`: the cursor's value and the raw keys array. */
export function parseScanReply(reply: Uint8Array): { upstream: bigint; keys: Uint8Array } | null {
  const outer = arrayHeader(reply);
  if (!outer || outer.count !== 2 || reply[outer.body] !== 36) return null;
  let i = outer.body + 1;
  let length = 0;
  for (; reply[i] !== CR; i++) length = length * 10 + reply[i]! - 48;
  const start = i + 2;
  const text = decoder.decode(reply.subarray(start, start + length));
  if (!/^\d+$/.test(text)) return null;
  return { upstream: BigInt(text), keys: reply.subarray(start + length + 2) };
}
