/**
 * What each kind of explorer client does, one decision per tick of the traffic loop:
 *
 * - kv: pipelines SET/GET on string keys, and now and then INCRs a counter (a writer of the keys
 *   transactions WATCH), RPUSHes to a list (waking blocked clients), PUBLISHes a message; a
 *   steady one sends every tick, mostly on cluster b's keys: the bystander whose requests share
 *   the connections of transaction clients;
 * - txn: WATCH k, thinks for up to four op timeouts (long enough, often, for its connection's
 *   timer to run out and for k's cluster to be replaced), then pipelines [GET, MULTI, INCR k,
 *   EXEC or DISCARD] — the GET on a shared connection, the rest on the transaction's own; or the
 *   same without WATCH; waits for every reply, rests, and starts again;
 * - blocker: BLPOP on a list with a short timeout, or a long one that holds its cluster's drain
 *   open when the cluster is replaced; waits for the reply, rests, and starts again;
 * - subscriber: SUBSCRIBEs to a channel, PSUBSCRIBEs to a glob pattern or SSUBSCRIBEs to a
 *   shard channel (one per command, never twice the same), and PINGs now and then;
 * - waiter: SETs a string key (mostly cluster b's) and WAITs for 0 to 2 replicas in the same write
 *   (WAIT runs on a connection of its own, to where the SET went), with a short timeout or a long
 *   one that holds a retired cluster's drain open; waits for both replies, rests, starts again.
 *
 * Any of them may speak RESP3 (./client.ts: its first request is `HELLO 3`).
 *
 * Every value, element and payload is unique (client id and a counter), so the checks can tell
 * who wrote what. Clients of cluster b's keys make their own connections belong to clusters that
 * are replaced and removed.
 */
import type { SimRandom } from "../../../adapters/sim/random.ts";
import type { SimClient, SubKind, Txn } from "./client.ts";
import type { Oracle } from "./oracle.ts";

export interface RoleContext {
  readonly rnd: SimRandom;
  readonly oracle: Oracle;
  now(): number;
  /** The op timeout slotgate runs with (ms): a transaction thinks up to four times as long. */
  readonly opTimeoutMs: number;
}

export interface Behaviour {
  /** One decision: send something, or wait. */
  tick(): void;
}

/** A value nobody else will write: `<prefix><client>.<n>`. */
function fresh(oracle: Oracle, prefix: string, client: SimClient): string {
  return `${prefix}${client.id}.${oracle.unique++}`;
}

export function behaviour(client: SimClient, ctx: RoleContext): Behaviour {
  switch (client.role) {
    case "kv":
      return new KeyValue(client, ctx);
    case "txn":
      return new Transactions(client, ctx);
    case "blocker":
      return new Blocker(client, ctx);
    case "subscriber":
      return new Subscriber(client, ctx);
    case "waiter":
      return new Waiter(client, ctx);
  }
}

class KeyValue implements Behaviour {
  #published = 0;
  /** A steady bystander: pipelines every tick, mostly on cluster b's keys (the shared connections a retirement touches). */
  readonly #steady: boolean;
  constructor(readonly client: SimClient, readonly ctx: RoleContext) {
    this.#steady = ctx.rnd.chance(0.4);
  }

  tick(): void {
    const { rnd } = this.ctx;
    if (!this.client.usable || !rnd.chance(this.#steady ? 0.8 : 0.35)) return;
    for (let n = rnd.int(this.#steady ? 4 : 3); n >= 0; n--) this.#one();
  }

  #pick(keys: string[]): string {
    return this.#steady ? pickPreferringB(this.ctx.rnd, keys) : this.ctx.rnd.pick(keys);
  }

  #one(): void {
    const { rnd, oracle } = this.ctx;
    const { keys } = oracle;
    const c = this.client;
    const r = rnd.float();
    const now = this.ctx.now();
    if (r < 0.4) {
      const key = this.#pick(keys.strings);
      const value = fresh(oracle, "v", c);
      oracle.written.get(key)!.add(value);
      oracle.valueSentAt.set(value, now);
      c.send(["SET", key, value], { kind: "set", key, value });
    } else if (r < 0.75) {
      const key = this.#pick(keys.strings);
      c.send(["GET", key], { kind: "get", key });
    } else if (r < 0.87) {
      const key = this.#pick(keys.counters);
      const at = c.send(["INCR", key], { kind: "incr", key });
      trackIncr(oracle, c, key, at);
    } else if (r < 0.91) {
      const key = rnd.pick(keys.lists);
      const value = fresh(oracle, "e", c);
      oracle.pushed.set(value, { key, sentAt: now });
      c.send([rnd.chance(0.5) ? "RPUSH" : "LPUSH", key, value], { kind: "push", key, value });
    } else {
      const shard = rnd.chance(0.3);
      const channel = rnd.pick(shard ? keys.shardChannels : keys.channels);
      const payload = fresh(oracle, "m", c);
      const at = c.send([shard ? "SPUBLISH" : "PUBLISH", channel, payload], { kind: "publish", channel, payload });
      oracle.published.set(payload, { channel, publisher: c.id, seq: this.#published++, sentAt: now, repliedAt: () => c.replies[at]?.at ?? Number.POSITIVE_INFINITY, reply: () => c.replies[at]?.text });
    }
  }
}

/** Cluster b's keys three times in four when there are some: their connections are the ones retired. */
function pickPreferringB(rnd: SimRandom, keys: string[]): string {
  const onB = keys.filter((k) => k.startsWith("b:"));
  return onB.length > 0 && rnd.chance(0.75) ? rnd.pick(onB) : rnd.pick(keys);
}

function trackIncr(oracle: Oracle, c: SimClient, key: string, at: number): void {
  let list = oracle.incrs.get(key);
  if (!list) oracle.incrs.set(key, (list = []));
  list.push({ client: c.id, from: c.reqs[at]!.sentAt, until: () => c.replies[at]?.at ?? Number.POSITIVE_INFINITY });
}

type TxnState = { at: "idle"; next: number } | { at: "watching"; txn: Txn } | { at: "thinking"; txn: Txn; until: number } | { at: "waiting" };

class Transactions implements Behaviour {
  #state: TxnState = { at: "idle", next: 0 };
  constructor(readonly client: SimClient, readonly ctx: RoleContext) {}

  tick(): void {
    const c = this.client;
    const { rnd } = this.ctx;
    const now = this.ctx.now();
    if (!c.usable) return;
    const state = this.#state;
    switch (state.at) {
      case "idle": {
        if (now < state.next) return;
        const key = pickPreferringB(rnd, this.ctx.oracle.keys.counters);
        const txn: Txn = { key, watch: rnd.chance(0.8), watchAt: -1, getAt: -1, getKey: null, multiAt: -1, incrAt: -1, endAt: -1, discard: rnd.chance(0.1) };
        if (!txn.watch) return this.#pipeline(txn);
        txn.watchAt = c.send(["WATCH", key], { kind: "watch", txn });
        this.#state = { at: "watching", txn };
        return;
      }
      case "watching":
        if (c.owed > 0) return;
        // Thinking past the op timeout lets the connection's timer run out while it idles.
        this.#state = { at: "thinking", txn: state.txn, until: now + rnd.int(4 * this.ctx.opTimeoutMs) };
        return;
      case "thinking":
        if (now >= state.until) this.#pipeline(state.txn);
        return;
      case "waiting":
        if (c.owed === 0) this.#state = { at: "idle", next: now + rnd.int(30) };
        return;
    }
  }

  /** [GET], MULTI, INCR, EXEC or DISCARD, in one write: the GET's reply releases the MULTI. */
  #pipeline(txn: Txn): void {
    const c = this.client;
    const { rnd, oracle } = this.ctx;
    if (rnd.chance(0.5)) {
      txn.getKey = rnd.chance(0.7) ? txn.key : rnd.pick(oracle.keys.strings);
      txn.getAt = c.send(["GET", txn.getKey], { kind: "read", txn });
    }
    txn.multiAt = c.send(["MULTI"], { kind: "multi", txn });
    txn.incrAt = c.send(["INCR", txn.key], { kind: "queued", txn });
    trackIncr(oracle, c, txn.key, txn.incrAt);
    txn.endAt = txn.discard ? c.send(["DISCARD"], { kind: "discard", txn }) : c.send(["EXEC"], { kind: "exec", txn });
    this.#state = { at: "waiting" };
  }
}

class Blocker implements Behaviour {
  #next = 0;
  #waiting = false;
  constructor(readonly client: SimClient, readonly ctx: RoleContext) {}

  tick(): void {
    const c = this.client;
    const { rnd } = this.ctx;
    const now = this.ctx.now();
    if (!c.usable) return;
    if (this.#waiting) {
      if (c.owed > 0) return;
      this.#waiting = false;
      this.#next = now + rnd.int(20);
    }
    if (now < this.#next) return;
    const key = pickPreferringB(rnd, this.ctx.oracle.keys.lists);
    // Short timeouts time out; long ones are still blocked when their cluster is replaced.
    const timeoutMs = rnd.chance(0.35) ? 20 + rnd.int(280) : 300 + rnd.int(1200);
    c.send(["BLPOP", key, (timeoutMs / 1000).toFixed(3)], { kind: "blpop", key, timeoutMs });
    this.#waiting = true;
  }
}

class Subscriber implements Behaviour {
  readonly #names: Record<SubKind, Set<string>> = { channel: new Set(), pattern: new Set(), shard: new Set() };
  constructor(readonly client: SimClient, readonly ctx: RoleContext) {}

  tick(): void {
    const c = this.client;
    const { rnd, oracle } = this.ctx;
    if (!c.usable) return;
    const { channel, pattern, shard } = this.#names;
    const total = channel.size + pattern.size + shard.size;
    const r = rnd.float();
    if (total === 0 ? r < 0.05 : r < 0.004) {
      const kind = rnd.pick(["channel", "channel", "pattern", "pattern", "shard"] as const);
      const mine = this.#names[kind];
      const names = kind === "shard" ? oracle.keys.shardChannels : kind === "pattern" ? oracle.keys.patterns : oracle.keys.channels;
      const left = names.filter((name) => !mine.has(name));
      if (left.length === 0) return;
      const name = rnd.pick(left);
      mine.add(name);
      // Redis counts channels and patterns together, shard channels apart.
      const count = kind === "shard" ? shard.size : channel.size + pattern.size;
      c.send([{ channel: "SUBSCRIBE", pattern: "PSUBSCRIBE", shard: "SSUBSCRIBE" }[kind], name], { kind: "subscribe", channel: name, sub: kind, count });
    } else if (total > 0 && r > 0.99) {
      c.send(["PING"], { kind: "ping" });
    }
  }
}

class Waiter implements Behaviour {
  #next = 0;
  constructor(readonly client: SimClient, readonly ctx: RoleContext) {}

  tick(): void {
    const c = this.client;
    const { rnd, oracle } = this.ctx;
    const now = this.ctx.now();
    if (!c.usable || c.owed > 0) return;
    if (this.#next === 0) this.#next = now + rnd.int(30);
    if (now < this.#next) return;
    this.#next = 0;
    // Mostly after a write of its own; now and then a WAIT alone (where its last write went).
    if (rnd.chance(0.85)) {
      const key = pickPreferringB(rnd, oracle.keys.strings);
      const value = fresh(oracle, "w", c);
      oracle.written.get(key)!.add(value);
      oracle.valueSentAt.set(value, now);
      c.send(["SET", key, value], { kind: "set", key, value });
    }
    const replicas = rnd.pick([0, 1, 1, 2]);
    // Short timeouts run out (no replica on b, two asked on a); long ones outlive a retired b.
    const timeoutMs = rnd.chance(0.7) ? 10 + rnd.int(190) : 300 + rnd.int(900);
    c.send(["WAIT", String(replicas), String(timeoutMs)], { kind: "wait", replicas, timeoutMs });
  }
}
