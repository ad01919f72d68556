/**
 * One subscriber connection of one client to one Redis node, and the subscriptions it carries.
 * slotgate writes `(P|S)(UN)SUBSCRIBE` commands on it and reads the node's frames: a confirmation
 * is matched to the command that asked for it (Redis answers one per channel, in order, or one
 * error for the whole command), a message is handed on, and a `sunsubscribe` that no command asked
 * for is Redis dropping a shard channel whose slot left the node. The connection speaks RESP2
 * whatever the client speaks: pub/sub frames are arrays of bulk strings in RESP2 and pushes of the
 * same bulk strings in RESP3, so a frame is converted by its first byte alone.
 */
import type { Scope, Owned } from "../../scope/scope.ts";
import { Unavailable, type Backend, type DedicatedConn, type NodeHandle } from "../../backend/contract.ts";
import { Fifo } from "../../util/fifo.ts";
import { encodeCommand } from "../../resp/encode.ts";
import { parseRedirect } from "../../resp/reply-reader.ts";
import { MINUS, PUSH, STAR } from "../../resp/bytes.ts";
import { keyOf } from "../../util/binary-key.ts";

/** What a subscription names: a channel, a pattern or a shard channel. */
export const Kind = { Channel: 0, Pattern: 1, Shard: 2 } as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

/** Redis's words for subscribing and unsubscribing, by kind. */
export const SUBSCRIBE_WORDS = ["subscribe", "psubscribe", "ssubscribe"] as const;
export const UNSUBSCRIBE_WORDS = ["unsubscribe", "punsubscribe", "sunsubscribe"] as const;

/** A confirmation the client waits for; `settle` once per subscription it waits on. */
export interface Waiter {
  settle(): void;
}

/** One subscription of the client, wherever it is carried. */
export interface Sub {
  readonly kind: Kind;
  readonly name: Uint8Array;
  /** `name` as a string of byte values, for maps (binary-safe). */
  readonly key: string;
  backend: Backend;
  /** The shard of `name` in `backend` (its hash slot in a cluster). */
  slot: number;
  /** The connection carrying it, or null while it waits to be (re)subscribed. */
  link: Link | null;
  /** The node confirmed it on `link`. */
  confirmed: boolean;
  /** Client confirmations released once the node confirms it (or the client drops it first). */
  waiters: Waiter[];
}

/** What a link tells the client's pub/sub state. */
export interface LinkEvents {
  /** The node confirmed `sub` on `link`. */
  confirmed(link: Link, sub: Sub): void;
  /** The node answered an error to the command that subscribed `subs`. */
  refused(link: Link, subs: Sub[], error: Uint8Array): void;
  /** A `message`, `pmessage` or `smessage` frame for `name` (the channel, or the pattern). */
  message(link: Link, kind: Kind, name: Uint8Array, frame: Uint8Array): void;
  /** The node dropped shard channel `name` on its own: its slot moved away. */
  dropped(link: Link, name: Uint8Array): void;
  /** A frame was handled: the link may have nothing left to do. */
  settled(link: Link): void;
  /** The connection went away (not closed by `close`). */
  lost(link: Link, reason: string): void;
}

/** A confirmation owed by the node for one channel of one command. */
interface Expected {
  unsubscribe: boolean;
  kind: Kind;
  key: string;
  slot: number;
  /** The subscription a subscribe is for (null for an unsubscribe). */
  sub: Sub | null;
  /** Which command it belongs to: an error answers all of that command's channels at once. */
  command: number;
}

const SUBSCRIBE_COMMANDS = ["SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"];
const UNSUBSCRIBE_COMMANDS = ["UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"];
const MESSAGE_KINDS: Record<string, Kind> = { message: Kind.Channel, pmessage: Kind.Pattern, smessage: Kind.Shard };

export class Link {
  /** The subscriptions placed on this connection (the client still wants each of them). */
  readonly carried = new Set<Sub>();
  readonly #expected = new Fifo<Expected>();
  /** Subscribes and unsubscribes queued by the current operation, written by `flush`. */
  #batch: { unsubscribe: boolean; sub: Sub }[] = [];
  #commands = 0;
  #conn!: DedicatedConn;
  #owned!: Owned;
  #closed = false;

  private constructor(
    readonly node: NodeHandle,
    /** Carries shard channels (SSUBSCRIBE), else channels and patterns. */
    readonly shard: boolean,
    readonly backend: Backend,
    readonly events: LinkEvents,
  ) {}

  /** Open a subscriber connection to `node`, owned by `scope` (closed with it), or say why not. */
  static open(scope: Scope, node: NodeHandle, shard: boolean, backend: Backend, events: LinkEvents): Link | Unavailable {
    const link = new Link(node, shard, backend, events);
    const conn = node.dedicated({
      protocol: 2,
      subscriber: true,
      events: {
        reply() {},
        push: scope.guard((frame: Uint8Array) => link.#onFrame(frame), false),
        lost: scope.guard((_conn: DedicatedConn, reason: string) => link.#onLost(reason), false),
      },
    });
    if (conn instanceof Unavailable) return conn;
    link.#conn = conn;
    link.#owned = scope.own("resource", `subscriber ${node.address}${shard ? " (shard)" : ""}`, () => link.close("the client is gone"));
    return link;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** Nothing carried and no confirmation owed: the connection can go. */
  get isIdle(): boolean {
    return this.carried.size === 0 && this.#expected.length === 0 && this.#batch.length === 0;
  }

  /** Carry `sub` here; its SUBSCRIBE is written by the next `flush`. */
  add(sub: Sub): void {
    sub.link = this;
    sub.confirmed = false;
    this.carried.add(sub);
    this.#batch.push({ unsubscribe: false, sub });
  }

  /** Stop carrying `sub`; with `unsubscribe`, tell the node (at the next `flush`). */
  remove(sub: Sub, unsubscribe: boolean): void {
    this.carried.delete(sub);
    if (sub.link === this) sub.link = null;
    if (unsubscribe) this.#batch.push({ unsubscribe: true, sub });
  }

  /** Write the queued commands: one per kind (and, for shard channels, per slot, as Redis requires). */
  flush(): void {
    const batch = this.#batch;
    this.#batch = [];
    if (this.#closed || batch.length === 0) return;
    const groups = new Map<string, { unsubscribe: boolean; sub: Sub }[]>();
    for (const entry of batch) {
      const group = `${entry.unsubscribe ? "u" : "s"}${entry.sub.kind}:${entry.sub.kind === Kind.Shard ? entry.sub.slot : 0}`;
      const list = groups.get(group);
      if (list) list.push(entry);
      else groups.set(group, [entry]);
    }
    for (const entries of groups.values()) {
      const { unsubscribe, sub: first } = entries[0]!;
      const command = ++this.#commands;
      const args: (string | Uint8Array)[] = [(unsubscribe ? UNSUBSCRIBE_COMMANDS : SUBSCRIBE_COMMANDS)[first.kind]!];
      for (const { sub } of entries) {
        args.push(sub.name);
        this.#expected.push({ unsubscribe, kind: sub.kind, key: sub.key, slot: sub.slot, sub: unsubscribe ? null : sub, command });
      }
      this.#conn.write(encodeCommand(args));
    }
  }

  /** Close the connection; nothing more is reported. Idempotent. */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#owned.release();
    this.#conn.fail(reason);
  }

  #onLost(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#owned.release();
    this.events.lost(this, reason);
  }

  #onFrame(frame: Uint8Array): void {
    if (this.#closed) return;
    if (frame[0] === MINUS) this.#onError(frame);
    else this.#onPush(frame);
    if (!this.#closed) this.events.settled(this);
  }

  #onPush(frame: Uint8Array): void {
    const head = readHead(frame);
    if (head === null) return this.#fail("an unexpected frame");
    const kind = MESSAGE_KINDS[head.word];
    if (kind !== undefined) {
      if (head.name) this.events.message(this, kind, head.name, frame);
      return;
    }
    const unsubscribe = UNSUBSCRIBE_WORDS.indexOf(head.word as never);
    const confirmed = unsubscribe >= 0 ? unsubscribe : SUBSCRIBE_WORDS.indexOf(head.word as never);
    if (confirmed < 0) return; // e.g. a pong: nothing waits for it
    const expected = this.#expected.peek();
    const key = head.name ? keyOf(head.name) : "";
    if (expected && expected.unsubscribe === (unsubscribe >= 0) && expected.kind === confirmed && expected.key === key) {
      this.#expected.shift();
      if (expected.sub) this.events.confirmed(this, expected.sub);
      return;
    }
    // Redis 7 drops the shard channels of a slot that leaves the node, telling the subscriber.
    if (unsubscribe === Kind.Shard && head.name) return this.events.dropped(this, head.name);
    this.#fail(`a '${head.word}' confirmation nothing asked for`);
  }

  #onError(frame: Uint8Array): void {
    const head = this.#expected.peek();
    // A redirect for another slot answers an SUNSUBSCRIBE whose confirmation was taken by the
    // node's own drop notice of that channel (the slot had just moved): nothing waits for it.
    const redirect = parseRedirect(frame);
    if (redirect && (!head || head.kind !== Kind.Shard || head.slot !== redirect.slot)) return;
    if (!head) return this.#fail("an error nothing asked for");
    const subs: Sub[] = [];
    while (this.#expected.peek()?.command === head.command) {
      const entry = this.#expected.shift()!;
      if (entry.sub) subs.push(entry.sub);
    }
    if (subs.length > 0) this.events.refused(this, subs, frame);
  }

  /** The node said something out of step: start again on a fresh connection. */
  #fail(what: string): void {
    this.#conn.fail(`upstream ${this.node.address} sent ${what} on a subscriber connection`);
  }
}

/**
 * The first two elements of a pub/sub frame (`*N` or `>N` of bulk strings): its kind word in
 * lower case and its channel or pattern (null for `$-1`/`_`). Null when the frame is not one.
 */
export function readHead(frame: Uint8Array): { word: string; name: Uint8Array | null } | null {
  if (frame[0] !== STAR && frame[0] !== PUSH) return null;
  let p = lineEnd(frame, 0);
  const word = readBulk(frame, p);
  if (!word || word.value === null) return null;
  p = word.end;
  let text = "";
  for (const c of word.value) text += String.fromCharCode(c >= 65 && c <= 90 ? c + 32 : c);
  if (frame[p] === 95) return { word: text, name: null }; // RESP3 null
  const name = readBulk(frame, p);
  return name ? { word: text, name: name.value } : null;
}

/** Offset just past the CRLF of the line starting at `p`. */
function lineEnd(frame: Uint8Array, p: number): number {
  while (p < frame.length && frame[p] !== 13) p++;
  return p + 2;
}

function readBulk(frame: Uint8Array, p: number): { value: Uint8Array | null; end: number } | null {
  if (frame[p] !== 36) return null;
  const end = lineEnd(frame, p);
  let length = 0;
  if (frame[p + 1] === MINUS) return { value: null, end };
  for (let i = p + 1; i < end - 2; i++) length = length * 10 + frame[i]! - 48;
  return { value: frame.subarray(end, end + length), end: end + length + 2 };
}
