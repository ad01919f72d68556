/**
 * A client's subscriptions: where each lives (a subscriber connection per backend, or per primary
 * for shard channels), their confirmations, and their repair. ./commands.ts decides which commands
 * reach here.
 *
 * slotgate answers the confirmations itself, counting as Redis counts for this client (channels
 * plus patterns; shard channels apart). A subscribe's confirmations take their place among the
 * client's replies and are released once the node confirmed, so a message published after the
 * client saw its confirmation reaches it. Unsubscribes answer at once: from then on the client's
 * messages for that name are dropped here. Messages go out as they arrive (after any reply still
 * owed, never in its place).
 *
 * A connection that is lost, a shard channel whose slot moves (a new slot map, a MOVED, or Redis
 * dropping it with an unasked `sunsubscribe`) is subscribed again on a live node, with backoff,
 * and nothing of it is shown to the client. Messages published in between are lost: Redis
 * pub/sub delivers at most once. If a subscription cannot be restored within `GIVE_UP_MS`, the
 * client's connection is closed, as a lost Redis server would close it, so that its library
 * subscribes again. A subscription stays with the backend its name routed to when the client
 * subscribed, until that backend is retired (its cluster replaced or removed by a config change):
 * then it follows the routing table in force, to the backend that serves its name now. Once the
 * client is subscribed to nothing, its subscriber connections are closed.
 */
import type { Scope, ScopedTimer } from "../../scope/scope.ts";
import type { Logger } from "../../log.ts";
import type { Pending } from "../../backend/request.ts";
import { Unavailable, type Backend, type NodeHandle } from "../../backend/contract.ts";
import type { RouteTable } from "../routing/routes.ts";
import { EMPTY_BULK, NULL_BULK, NULL_RESP3, concatBytes, encodeArray, encodeBulk, encodeInteger } from "../../resp/encode.ts";
import { isRedirect } from "../../resp/reply-reader.ts";
import { Kind, Link, SUBSCRIBE_WORDS, UNSUBSCRIBE_WORDS, type LinkEvents, type Sub } from "./link.ts";
import { keyOf } from "../../util/binary-key.ts";
import { PUSH } from "../../resp/bytes.ts";

/** The client side of pub/sub (a `ClientSession`). */
export interface PubSubClient {
  readonly id: number;
  protocol: 2 | 3;
  clientName: string | null;
  /** Set from the first subscribe until the client is subscribed to nothing. */
  pubsub: PubSub | null;
  /** Append to the reply queue; filled in later, then `complete`. */
  expect(pending: Pending): void;
  complete(pending: Pending): void;
  /** Answer now, in order. */
  reply(frame: Uint8Array): void;
  /** A message: out now, or right after the replies still owed. */
  push(frame: Uint8Array): void;
}

/** What pub/sub needs from the server: the routing table in force, and a log. */
export interface PubSubHost {
  readonly router: { routes(): RouteTable };
  readonly log: Logger;
}

const decoder = new TextDecoder();

/** First retry delay after a failed (re)subscription, in milliseconds (the first retry is immediate). */
const RETRY_BASE_MS = 100;
/** Longest delay between retries, in milliseconds. */
const RETRY_MAX_MS = 2000;
/** How long subscriptions may stay unrestored before the client is disconnected, in milliseconds. */
const GIVE_UP_MS = 30_000;

/** `subscribe`-style frame: `[word, name, count]`, an array in RESP2, a push in RESP3. */
export function confirmation(protocol: 2 | 3, word: string, name: Uint8Array | null, count: number): Uint8Array {
  const frame = encodeArray([encodeBulk(word), name === null ? (protocol === 3 ? NULL_RESP3 : NULL_BULK) : encodeBulk(name), encodeInteger(count)]);
  if (protocol === 3) frame[0] = PUSH;
  return frame;
}

export function join(frames: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const frame of frames) total += frame.length;
  return concatBytes(frames, total);
}

/** The confirmations of one client command, released once every subscription it added is confirmed. */
class Confirmation implements Pending {
  reply: Uint8Array | null = null;
  frames: Uint8Array = EMPTY_BULK;
  remaining = 0;

  constructor(readonly client: PubSubClient) {}

  settle(): void {
    if (--this.remaining > 0) return;
    this.reply = this.frames;
    this.client.complete(this);
  }
}

/** Release whatever waits for `sub` to be confirmed. */
function release(sub: Sub): void {
  const waiters = sub.waiters;
  if (waiters.length === 0) return;
  sub.waiters = [];
  for (const waiter of waiters) waiter.settle();
}

export class PubSub {
  readonly #client: PubSubClient;
  /** The session's scope: closed to disconnect the client. */
  readonly #session: Scope;
  readonly #scope: Scope;
  readonly #log: Logger;
  readonly #router: PubSubHost["router"];
  /** The client's subscriptions by kind, then by name. */
  readonly #subs: [Map<string, Sub>, Map<string, Sub>, Map<string, Sub>] = [new Map(), new Map(), new Map()];
  readonly #links = new Set<Link>();
  /** Subscriptions waiting for a connection to carry them. */
  readonly #homeless = new Set<Sub>();
  readonly #topology = new Map<Backend, () => void>();
  #retry: ScopedTimer | null = null;
  #attempt = 0;
  /** When subscriptions began waiting to be restored; null while all are confirmed. */
  #troubleSince: number | null = null;
  #closed = false;

  constructor(client: PubSubClient, session: Scope, host: PubSubHost) {
    this.#client = client;
    this.#session = session;
    this.#log = host.log;
    this.#router = host.router;
    this.#scope = session.child("pubsub");
    // The client went away: its subscriber connections are closed with the scope.
    this.#scope.defer(() => this.#shutdown(false));
  }

  /** How many subscriptions Redis would count for a confirmation of `kind`. */
  #count(kind: Kind): number {
    return kind === Kind.Shard ? this.#subs[Kind.Shard].size : this.#subs[Kind.Channel].size + this.#subs[Kind.Pattern].size;
  }

  subscribe(kind: Kind, names: Uint8Array[], targets: { backend: Backend; slot: number }[]): void {
    const owed = new Confirmation(this.#client);
    const frames: Uint8Array[] = [];
    const map = this.#subs[kind];
    const added: Sub[] = [];
    names.forEach((name, i) => {
      const key = keyOf(name);
      if (!map.has(key)) {
        const { backend, slot } = targets[i]!;
        const sub: Sub = { kind, name: name.slice(), key, backend, slot, link: null, confirmed: false, waiters: [owed] };
        owed.remaining++;
        map.set(key, sub);
        added.push(sub);
      }
      frames.push(confirmation(this.#client.protocol, SUBSCRIBE_WORDS[kind], name, this.#count(kind)));
    });
    owed.frames = join(frames);
    if (owed.remaining === 0) this.#client.reply(owed.frames);
    else this.#client.expect(owed);
    for (const sub of added) {
      this.#listen(sub.backend);
      this.#homeless.add(sub);
    }
    this.#place();
  }

  unsubscribe(kind: Kind, names: Uint8Array[]): void {
    const map = this.#subs[kind];
    const word = UNSUBSCRIBE_WORDS[kind];
    const list = names.length > 0 ? names : [...map.values()].map((sub) => sub.name);
    const frames: Uint8Array[] = [];
    if (list.length === 0) frames.push(confirmation(this.#client.protocol, word, null, this.#count(kind)));
    const touched = new Set<Link>();
    for (const name of list) {
      const sub = map.get(keyOf(name));
      if (sub) {
        map.delete(sub.key);
        release(sub);
        this.#homeless.delete(sub);
        const link = sub.link;
        if (link) {
          link.remove(sub, true);
          touched.add(link);
        }
      }
      frames.push(confirmation(this.#client.protocol, word, name, this.#count(kind)));
    }
    this.#client.reply(join(frames));
    if (this.#count(Kind.Channel) + this.#count(Kind.Shard) === 0) return this.close();
    for (const link of touched) {
      link.flush();
      this.#settled(link);
    }
    this.#checkHealth();
  }

  /** Leave subscribed mode: close every subscriber connection, release owed confirmations. */
  close(): void {
    if (this.#closed) return;
    this.#shutdown(true);
    this.#scope.close().catch((error) => this.#log.debug("pubsub scope teardown failed", { id: this.#client.id, error: String(error) }));
  }

  /** `answer`: release confirmations still owed (not when the client is gone: nobody reads them). */
  #shutdown(answer: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#client.pubsub === this) this.#client.pubsub = null;
    for (const map of this.#subs) {
      if (answer) for (const sub of map.values()) release(sub);
      map.clear();
    }
    this.#homeless.clear();
    this.#retry?.cancel();
    this.#retry = null;
    for (const stop of this.#topology.values()) stop();
    this.#topology.clear();
    for (const link of this.#links) link.close("the client left subscribed mode");
    this.#links.clear();
  }

  #wants(sub: Sub): boolean {
    return this.#subs[sub.kind].get(sub.key) === sub;
  }

  // --- placement --------------------------------------------------------------------------------

  /** Put every homeless subscription on a connection; retry later for those that found none. */
  #place(): void {
    // A client going away opens nothing more (its scope admits nothing new).
    if (this.#closed || !this.#scope.isOpen) return;
    const touched = new Set<Link>();
    let why = "";
    let moved = false;
    for (const sub of this.#homeless) {
      let link = this.#linkFor(sub);
      if (link instanceof Unavailable && link.kind === "closing" && this.#reroute(sub)) {
        moved = true;
        link = this.#linkFor(sub);
      }
      if (link instanceof Unavailable) {
        why = link.message;
        continue;
      }
      this.#homeless.delete(sub);
      link.add(sub);
      touched.add(link);
    }
    for (const link of touched) link.flush();
    if (moved) this.#forgetUnused();
    if (this.#homeless.size > 0) this.#retryLater(why);
  }

  /**
   * The connection for `sub`. A channel lives on the node that owns its slot (a shard channel must;
   * a classic one is placed so too): Redis Cluster delivers a PUBLISH to subscribers on every node,
   * but answers it with the count of the node it ran on, the slot's owner — so only there does a
   * subscriber made through slotgate count, as on one Redis. A pattern has no slot: it shares any
   * non-shard connection of its backend (a PUBLISH counts it only when that is the owner's node).
   */
  #linkFor(sub: Sub): Link | Unavailable {
    const backend = sub.backend;
    const shard = sub.kind === Kind.Shard;
    if (sub.kind === Kind.Pattern && backend.capabilities.publishReachesEveryNode) {
      for (const link of this.#links) if (!link.shard && link.backend === backend) return link;
      const node = backend.nodeFor(backend.anyShard());
      return node instanceof Unavailable ? node : this.#open(node, false, backend);
    }
    const node = backend.nodeFor(sub.slot);
    if (node instanceof Unavailable) return node;
    for (const link of this.#links) if (link.shard === shard && link.node === node) return link;
    return this.#open(node, shard, backend);
  }

  /**
   * `sub`'s backend takes no more work: move it to the backend its name routes to now, if that
   * is another one (a cluster replaced or removed by a config change). False: it stays.
   */
  #reroute(sub: Sub): boolean {
    const backend = this.#router.routes().match(sub.name)?.backend;
    if (!backend || backend === sub.backend) return false;
    if (sub.kind === Kind.Pattern && !backend.capabilities.publishReachesEveryNode) return false;
    this.#log.debug("subscription moved to the backend its name routes to now", { id: this.#client.id, from: sub.backend.name, to: backend.name });
    sub.backend = backend;
    sub.slot = backend.shardOf(sub.name);
    this.#listen(backend);
    return true;
  }

  /** Stop listening to the topology of backends none of the client's subscriptions is on. */
  #forgetUnused(): void {
    const used = new Set<Backend>();
    for (const map of this.#subs) for (const sub of map.values()) used.add(sub.backend);
    for (const [backend, stop] of this.#topology) {
      if (used.has(backend)) continue;
      stop();
      this.#topology.delete(backend);
    }
  }

  #open(node: NodeHandle, shard: boolean, backend: Backend): Link | Unavailable {
    const link = Link.open(this.#scope, node, shard, backend, this.#events);
    if (link instanceof Link) this.#links.add(link);
    return link;
  }

  #retryLater(why: string): void {
    if (this.#closed || this.#retry || !this.#scope.isOpen) return;
    const now = this.#scope.runtime.now();
    this.#troubleSince ??= now;
    if (now - this.#troubleSince >= GIVE_UP_MS) {
      this.#log.warn("subscriptions could not be restored: closing the client", { id: this.#client.id, reason: why });
      this.#shutdown(false);
      this.#session.close().catch(() => {});
      return;
    }
    const delayMs = this.#attempt === 0 ? 0 : Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (this.#attempt - 1)) * (0.5 + this.#scope.runtime.random() / 2);
    this.#attempt++;
    this.#retry = this.#scope.timer("resubscribe", delayMs, () => {
      this.#retry = null;
      this.#place();
    });
  }

  /** End a spell of trouble once every subscription is on a connection and confirmed there. */
  #checkHealth(): void {
    if (this.#troubleSince === null || this.#homeless.size > 0) return;
    for (const map of this.#subs) for (const sub of map.values()) if (!sub.confirmed) return;
    this.#troubleSince = null;
    this.#attempt = 0;
  }

  #listen(backend: Backend): void {
    if (this.#topology.has(backend)) return;
    this.#topology.set(backend, backend.onTopology(this.#scope.guard(() => this.#onTopology(backend), false)));
  }

  /** A new slot map: channels (shard and classic) whose slot has another owner now move there. */
  #onTopology(backend: Backend): void {
    if (this.#closed) return;
    const touched = new Set<Link>();
    for (const kind of [Kind.Shard, Kind.Channel]) {
      for (const sub of this.#subs[kind].values()) {
        const link = sub.link;
        if (!link || sub.backend !== backend) continue;
        const node = backend.nodeFor(sub.slot);
        if (node instanceof Unavailable || node === link.node) continue;
        // No SUNSUBSCRIBE: the old owner drops the shard channels of a slot it loses by itself.
        // A classic channel stays subscribed there until told: UNSUBSCRIBE, or PUBLISH counts it twice.
        link.remove(sub, kind === Kind.Channel);
        sub.confirmed = false;
        this.#homeless.add(sub);
        touched.add(link);
      }
    }
    for (const link of touched) {
      link.flush();
      this.#settled(link);
    }
    if (this.#homeless.size > 0) this.#place();
  }

  /** Close a connection that carries nothing and owes nothing. */
  #settled(link: Link): void {
    if (link.isIdle) link.close("no subscriptions left on it");
    if (link.isClosed) this.#links.delete(link);
  }

  /** Take a subscription off its connection, to be subscribed again elsewhere. */
  #rehome(link: Link, sub: Sub): void {
    link.remove(sub, false);
    sub.confirmed = false;
    this.#homeless.add(sub);
  }

  readonly #events: LinkEvents = {
    confirmed: (link, sub) => {
      if (sub.link !== link || !this.#wants(sub)) return;
      sub.confirmed = true;
      release(sub);
      this.#checkHealth();
    },
    refused: (link, subs, error) => {
      // A MOVED teaches the backend where the slot went; placement then follows it.
      if (isRedirect(error)) subs[0]!.backend.redirect(error, link.node);
      for (const sub of subs) if (sub.link === link && this.#wants(sub)) this.#rehome(link, sub);
      const why = decoder.decode(error.subarray(1, error.length - 2));
      this.#log.debug("upstream refused a subscription", { id: this.#client.id, node: link.node.address, error: why });
      if (this.#homeless.size > 0) this.#retryLater(why);
    },
    message: (link, kind, name, frame) => {
      const sub = this.#subs[kind].get(keyOf(name));
      if (sub?.link !== link) return;
      if (this.#client.protocol === 3) {
        frame = frame.slice();
        frame[0] = 62; // the same bulk strings, as a push
      }
      this.#client.push(frame);
    },
    dropped: (link, name) => {
      const sub = this.#subs[Kind.Shard].get(keyOf(name));
      if (sub?.link !== link) return;
      this.#rehome(link, sub);
      this.#retryLater(`${link.node.address} dropped a shard channel`);
    },
    settled: (link) => this.#settled(link),
    lost: (link, reason) => {
      this.#links.delete(link);
      for (const sub of [...link.carried]) this.#rehome(link, sub);
      this.#log.debug("subscriber connection lost", { id: this.#client.id, node: link.node.address, reason });
      if (this.#homeless.size > 0) this.#retryLater(reason);
    },
  };
}
