/**
 * Multi-key commands whose keys span slots, split into one single-key command per key and merged
 * back into the reply Redis would have given: MGET (values in key order), MSET (+OK unless a part
 * failed), DEL, UNLINK, EXISTS, TOUCH (integer replies summed). Part replies are merged from
 * their raw bytes, nothing is decoded but an integer.
 *
 * A split command runs in bounded steps, so that one MGET of a million keys cannot stall every
 * other client for seconds: each step routes or sends at most a chunk of parts
 * (`splitChunkParts`), and the next step runs on a later turn of the event loop, after other
 * clients' I/O. At most two chunks of parts are sent and not yet merged; part replies are merged
 * in key order as they arrive, and the merged bytes packed, so what the command holds stays
 * close to the size of its reply. Every key is routed before the first part is sent: a key with
 * no route fails the command with nothing sent, as before.
 */
import type { FanOutClient } from "./fanout.ts";
import type { Pending, ReplySink } from "../../backend/request.ts";
import { UpstreamRequest } from "../../backend/request.ts";
import type { Backend } from "../../backend/contract.ts";
import { InvariantError, asError } from "../../errors.ts";
import { readInteger } from "../../resp/reply-reader.ts";
import { errorKind, ErrorKind } from "../../resp/replies.ts";
import { OK, concatBytes, encodeArrayHeader, encodeCommand, encodeInteger, nullReply } from "../../resp/encode.ts";
import { MINUS } from "../../resp/bytes.ts";

export const SplitKind = { Values: 0, Ok: 1, Sum: 2 } as const;
export type SplitKind = (typeof SplitKind)[keyof typeof SplitKind];

/** How one splittable command is split: the single-key command, keys per part, and the merge. */
export interface SplitSpec {
  readonly partName: string;
  readonly part: Uint8Array;
  readonly stride: number;
  readonly kind: SplitKind;
}

export const SPLIT_COMMANDS: ReadonlyMap<string, SplitSpec> = new Map([
  ["MGET", { partName: "GET", part: bytes("GET"), stride: 1, kind: SplitKind.Values }],
  ["MSET", { partName: "SET", part: bytes("SET"), stride: 2, kind: SplitKind.Ok }],
  ["DEL", { partName: "DEL", part: bytes("DEL"), stride: 1, kind: SplitKind.Sum }],
  ["UNLINK", { partName: "UNLINK", part: bytes("UNLINK"), stride: 1, kind: SplitKind.Sum }],
  ["EXISTS", { partName: "EXISTS", part: bytes("EXISTS"), stride: 1, kind: SplitKind.Sum }],
  ["TOUCH", { partName: "TOUCH", part: bytes("TOUCH"), stride: 1, kind: SplitKind.Sum }],
]);

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** The client side of a split command: it queues the merged reply and lends turns of its event loop. */
export interface SplitClient extends FanOutClient {
  /** Parts routed or sent per step. */
  readonly splitChunkParts: number;
  /** Run `step` on a later turn of the event loop, unless the client is gone by then. */
  later(step: () => void): void;
  /** The command now holds `bytes` more (negative: fewer) bytes of part replies for the client. */
  holding(bytes: number): void;
}

/** Where one key goes: its backend, and the bytes of its prefix to strip (a route of the routing table). */
export interface SplitRoute {
  readonly backend: Backend;
  readonly strip: number;
}

/** How the router places keys: a key's route, or null; and the error for a key with none. */
export interface SplitRouting {
  /** The route of every key when there is only one (no need to look at each key); else null. */
  readonly only: SplitRoute | null;
  match(key: Uint8Array): SplitRoute | null;
  noRoute(key: Uint8Array): Uint8Array;
}

/** Routing is cheaper than sending: this many chunks of keys are routed per step. */
const ROUTE_CHUNKS_PER_STEP = 2;
/** Merged MGET values are packed into one buffer every this many parts. */
const PACK_PARTS = 1024;
/** Bytes of merged parts reported to the client at once (fewer reports on the per-reply path). */
const REPORT_BYTES = 64 * 1024;

/** One split command: a client's reply-queue entry, filled in once every part is merged. */
export class SplitCommand implements Pending, ReplySink {
  reply: Uint8Array | null = null;
  readonly #spec: SplitSpec;
  readonly #client: SplitClient;
  readonly #args: readonly Uint8Array[];
  readonly #routing: SplitRouting;
  readonly #readOnly: boolean;
  readonly #count: number;
  readonly #chunk: number;
  /** MGET's nil, in the protocol the client had when the command was split (a later HELLO does not change it). */
  readonly #nil: Uint8Array;
  /** Keys routed so far; the route all of them share, or each one's once two differ. */
  #routed = 0;
  #route: SplitRoute | null = null;
  #routes: SplitRoute[] | null = null;
  /** Parts sent, and parts merged (in key order). */
  #sent = 0;
  #merged = 0;
  /** Replies of parts sent and not merged yet: part `i` at `i % #replies.length` (a ring). */
  readonly #replies: (Uint8Array | undefined)[];
  #stepping = false;
  #scheduled = false;
  // The merge: packed blocks and loose parts of MGET's values; the first error, and the sum.
  readonly #blocks: Uint8Array[] = [];
  #loose: Uint8Array[] = [];
  #looseBytes = 0;
  #firstError: Uint8Array | null = null;
  #sum = 0;
  /** Bytes reported to the client through `holding`, and merged since the last report. */
  #reported = 0;
  #unreported = 0;
  readonly #step = () => this.#run();

  /** `args`: the command's name, then its keys (or key-value pairs); `readOnly`: parts may go to replicas. */
  constructor(spec: SplitSpec, client: SplitClient, args: readonly Uint8Array[], routing: SplitRouting, readOnly: boolean) {
    this.#spec = spec;
    this.#client = client;
    this.#args = args;
    this.#routing = routing;
    this.#readOnly = readOnly;
    this.#count = (args.length - 1) / spec.stride;
    this.#chunk = Math.max(1, client.splitChunkParts);
    this.#nil = nullReply(client.protocol);
    // At most two chunks are sent and not merged, so a ring of that size holds them.
    this.#replies = new Array(Math.min(this.#count, 2 * this.#chunk));
    if (routing.only !== null) {
      this.#route = routing.only;
      this.#routed = this.#count;
    }
  }

  /** Queue the command's reply; a small command runs whole now, a big one from the next turn on. */
  start(): void {
    this.#client.expect(this);
    if (this.#count <= this.#chunk) return this.#run();
    this.#scheduled = true;
    this.#client.later(this.#step);
  }

  deliveryFailed(_request: UpstreamRequest, error: unknown): void {
    this.#client.fault(asError(error));
  }

  deliver(request: UpstreamRequest, reply: Uint8Array): void {
    const part = request.part;
    const ring = this.#replies;
    if (this.reply !== null || part < this.#merged || ring[part % ring.length] !== undefined) {
      return this.#client.fault(new InvariantError(`part ${part} of a split command was answered twice`));
    }
    ring[part % ring.length] = reply;
    if (part !== this.#merged) return;
    this.#mergeReady();
    if (this.#merged === this.#count) return this.#finish();
    // Room for another chunk: send it on a later turn (or in the step running now).
    if (!this.#stepping && !this.#scheduled && this.#sent < this.#count && this.#sent - this.#merged <= this.#chunk) {
      this.#scheduled = true;
      this.#client.later(this.#step);
    }
  }

  /** One step: route a bounded number of keys, or send a bounded number of parts. */
  #run(): void {
    this.#scheduled = false;
    if (this.reply !== null) return;
    this.#stepping = true;
    try {
      if (this.#routed < this.#count && !this.#routeSome(this.#chunk * ROUTE_CHUNKS_PER_STEP)) return;
      // A small command sends every part in its first step; a big one a chunk at a time.
      if (this.#routed === this.#count) this.#sendSome(this.#count <= this.#chunk ? this.#count : this.#chunk);
    } finally {
      this.#stepping = false;
    }
    if (this.reply !== null || this.#scheduled) return;
    const more = this.#routed < this.#count || (this.#sent < this.#count && this.#sent - this.#merged < 2 * this.#chunk);
    if (more) {
      this.#scheduled = true;
      this.#client.later(this.#step);
    }
  }

  /** Route up to `limit` keys; false when one has no route (the command is then answered). */
  #routeSome(limit: number): boolean {
    const args = this.#args;
    const stride = this.#spec.stride;
    const end = Math.min(this.#count, this.#routed + limit);
    for (let i = this.#routed; i < end; i++) {
      const key = args[1 + i * stride]!;
      const route = this.#routing.match(key);
      if (route === null) {
        this.#answer(this.#routing.noRoute(key));
        return false;
      }
      if (this.#routes !== null) this.#routes.push(route);
      else if (this.#route === null) this.#route = route;
      else if (route !== this.#route) {
        // Two routes: from here on each part keeps its own.
        this.#routes = new Array<SplitRoute>(i).fill(this.#route);
        this.#routes.push(route);
      }
    }
    this.#routed = end;
    return true;
  }

  /** Send up to `limit` parts, while fewer than two chunks are sent and not merged. */
  #sendSome(limit: number): void {
    const { part, stride } = this.#spec;
    const args = this.#args;
    const client = this.#client;
    const resp3 = client.protocol === 3;
    const window = this.#replies.length;
    for (let n = 0; n < limit && this.#sent < this.#count && this.#sent - this.#merged < window && this.reply === null; n++) {
      const i = this.#sent++;
      const route = this.#routes !== null ? this.#routes[i]! : this.#route!;
      const at = 1 + i * stride;
      const key = route.strip > 0 ? args[at]!.subarray(route.strip) : args[at]!;
      const frame = stride === 1 ? encodeCommand([part, key]) : encodeCommand([part, key, args[at + 1]!]);
      const request = new UpstreamRequest(frame, route.backend.shardOf(key), this, client.id, i);
      request.resp3 = resp3;
      request.readOnly = this.#readOnly;
      // May answer at once (an error), re-entering `deliver`.
      route.backend.dispatch(request);
    }
  }

  /** Merge the replies that are next in key order. */
  #mergeReady(): void {
    const ring = this.#replies;
    const size = ring.length;
    let i = this.#merged;
    for (let reply = ring[i % size]; reply !== undefined; reply = ring[i % size]) {
      ring[i % size] = undefined;
      this.#merge(reply);
      i++;
    }
    this.#merged = i;
    if (this.#unreported >= REPORT_BYTES) this.#report();
  }

  #merge(reply: Uint8Array): void {
    switch (this.#spec.kind) {
      case SplitKind.Values: {
        // MGET answers nil for a key holding another type, where GET says WRONGTYPE.
        const value = reply[0] === MINUS && startsWithWrongType(reply) ? this.#nil : reply;
        this.#loose.push(value);
        this.#looseBytes += value.length;
        this.#unreported += value.length;
        if (this.#loose.length >= PACK_PARTS) this.#pack();
        return;
      }
      case SplitKind.Ok:
        if (this.#firstError === null && errorKind(reply) !== ErrorKind.None) this.#firstError = reply;
        return;
      case SplitKind.Sum:
        if (reply[0] === MINUS) this.#firstError ??= reply;
        else this.#sum += readInteger(reply) ?? 0;
        return;
    }
  }

  /** Join the loose values into one block: fewer objects held, and the replies' chunks let go. */
  #pack(): void {
    if (this.#loose.length === 0) return;
    this.#blocks.push(concatBytes(this.#loose, this.#looseBytes));
    this.#loose = [];
    this.#looseBytes = 0;
  }

  #report(): void {
    this.#reported += this.#unreported;
    this.#client.holding(this.#unreported);
    this.#unreported = 0;
  }

  #finish(): void {
    switch (this.#spec.kind) {
      case SplitKind.Values: {
        this.#pack();
        const head = encodeArrayHeader(this.#count);
        let total = head.length;
        for (const block of this.#blocks) total += block.length;
        return this.#answer(concatBytes([head, ...this.#blocks], total));
      }
      case SplitKind.Ok:
        return this.#answer(this.#firstError ?? OK);
      case SplitKind.Sum:
        return this.#answer(this.#firstError ?? encodeInteger(this.#sum));
    }
  }

  #answer(reply: Uint8Array): void {
    this.reply = reply;
    this.#blocks.length = 0;
    if (this.#reported !== 0) this.#client.holding(-this.#reported);
    this.#reported = this.#unreported = 0;
    this.#client.complete(this);
  }
}

function startsWithWrongType(frame: Uint8Array): boolean {
  const word = "-WRONGTYPE";
  for (let i = 0; i < word.length; i++) if (frame[i] !== word.charCodeAt(i)) return false;
  return true;
}
