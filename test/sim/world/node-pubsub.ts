/**
 * Pub/sub on one simulated Redis node, with Redis 7's frames: SUBSCRIBE / UNSUBSCRIBE answer one
 * `[subscribe|unsubscribe, channel, count]` per channel (count: the client's channels plus
 * patterns; an UNSUBSCRIBE of nothing with nothing subscribed answers `[unsubscribe, nil, 0]`),
 * PSUBSCRIBE / PUNSUBSCRIBE the same for glob patterns (counted with channels), SSUBSCRIBE /
 * SUNSUBSCRIBE the same with shard channels counted apart. A message is `[message, channel,
 * payload]` (`smessage` for a shard channel), and `[pmessage, pattern, channel, payload]` for each
 * pattern of the client's that matches a published (not shard) channel. A shard channel whose slot
 * the node stops serving is dropped with an unasked `[sunsubscribe, channel, count]`. For a RESP3
 * client every one of these frames is a push (`>`), and a nil is `_` (the node's writer, see
 * ./resp3.ts).
 *
 * PUBLISH's propagation over the cluster bus (to every node) and SPUBLISH's (to the shard's
 * replicas) is the node's business; this registry only delivers to its own subscribers.
 */
import { encodeArray, encodeBulk, encodeInteger, NULL_BULK } from "../../../src/resp/encode.ts";
import { PUSH } from "../../../src/resp/bytes.ts";
import type { ClientState } from "./client-state.ts";
import { fromLatin1 } from "./keyspace.ts";

/** What a subscription names. */
export type SubKind = "channel" | "pattern" | "shard";
const WORDS: Record<SubKind, [string, string]> = {
  channel: ["subscribe", "unsubscribe"],
  pattern: ["psubscribe", "punsubscribe"],
  shard: ["ssubscribe", "sunsubscribe"],
};

const SUBSCRIBED_COMMANDS = new Set(["SUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "SUNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE", "PING", "QUIT", "RESET"]);

/** RESP2's subscribed context: the commands it allows (a RESP3 client may run any). */
export function allowedWhenSubscribed(name: string): boolean {
  return SUBSCRIBED_COMMANDS.has(name);
}

export function subscribed(client: ClientState): boolean {
  return client.channels.size + client.patterns.size + client.shardChannels.size > 0;
}

/** An array of bulk strings and integers, a push for a RESP3 client. */
function pubsubFrame(protocol: 2 | 3, parts: Uint8Array[]): Uint8Array {
  const out = encodeArray(parts);
  if (protocol === 3) out[0] = PUSH;
  return out;
}

function frame(client: ClientState, word: string, channel: string | null, count: number): Uint8Array {
  return pubsubFrame(client.protocol, [encodeBulk(word), channel === null ? NULL_BULK : encodeBulk(fromLatin1(channel)), encodeInteger(count)]);
}

/** What Redis counts in a confirmation: shard channels apart, channels and patterns together. */
function countOf(client: ClientState, kind: SubKind): number {
  return kind === "shard" ? client.shardChannels.size : client.channels.size + client.patterns.size;
}

function mineOf(client: ClientState, kind: SubKind): Set<string> {
  return kind === "shard" ? client.shardChannels : kind === "pattern" ? client.patterns : client.channels;
}

/**
 * Redis's glob (stringmatchlen): `*` any run, `?` any byte, `[...]` a class (`^` negates, `a-z`
 * ranges, `\` escapes), `\x` the byte x. Names are latin1 strings (one char per byte).
 */
export function globMatch(pattern: string, text: string): boolean {
  const go = (p: number, t: number): boolean => {
    while (p < pattern.length) {
      const c = pattern[p]!;
      if (c === "*") {
        while (pattern[p + 1] === "*") p++;
        if (p + 1 === pattern.length) return true;
        for (let i = t; i <= text.length; i++) if (go(p + 1, i)) return true;
        return false;
      }
      if (t >= text.length) return false;
      if (c === "?") {
        p++;
        t++;
        continue;
      }
      if (c === "[") {
        let i = p + 1;
        const not = pattern[i] === "^";
        if (not) i++;
        let match = false;
        for (; i < pattern.length && pattern[i] !== "]"; i++) {
          if (pattern[i] === "\\" && i + 1 < pattern.length) {
            if (pattern[++i] === text[t]) match = true;
          } else if (pattern[i + 1] === "-" && i + 2 < pattern.length && pattern[i + 2] !== "]") {
            let lo = pattern.charCodeAt(i);
            let hi = pattern.charCodeAt(i + 2);
            if (lo > hi) [lo, hi] = [hi, lo];
            const x = text.charCodeAt(t);
            if (x >= lo && x <= hi) match = true;
            i += 2;
          } else if (pattern[i] === text[t]) match = true;
        }
        if (not) match = !match;
        if (!match) return false;
        p = Math.min(i, pattern.length - 1) + 1;
        t++;
        continue;
      }
      const want = c === "\\" && p + 1 < pattern.length ? pattern[++p]! : c;
      if (want !== text[t]) return false;
      p++;
      t++;
    }
    return t === text.length;
  };
  return go(0, 0);
}

function concat(frames: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const f of frames) {
    out.set(f, at);
    at += f.length;
  }
  return out;
}

export class NodePubSub {
  /** Subscribers by channel, by pattern, by shard channel (latin1 names). */
  readonly #tables: Record<SubKind, Map<string, Set<ClientState>>> = { channel: new Map(), pattern: new Map(), shard: new Map() };

  /** SUBSCRIBE, PSUBSCRIBE or SSUBSCRIBE `names`: the confirmations. */
  subscribe(client: ClientState, names: string[], kind: SubKind): Uint8Array {
    const mine = mineOf(client, kind);
    const table = this.#tables[kind];
    const frames = names.map((name) => {
      mine.add(name);
      let set = table.get(name);
      if (!set) table.set(name, (set = new Set()));
      set.add(client);
      return frame(client, WORDS[kind][0], name, countOf(client, kind));
    });
    return concat(frames);
  }

  /** UNSUBSCRIBE, PUNSUBSCRIBE or SUNSUBSCRIBE `names` (none: all of them): the confirmations. */
  unsubscribe(client: ClientState, names: string[], kind: SubKind): Uint8Array {
    const mine = mineOf(client, kind);
    const word = WORDS[kind][1];
    const list = names.length > 0 ? names : [...mine];
    if (list.length === 0) return frame(client, word, null, countOf(client, kind));
    return concat(list.map((name) => {
      this.#remove(client, name, kind);
      return frame(client, word, name, countOf(client, kind));
    }));
  }

  /**
   * Deliver to this node's subscribers of `channel` (and, unless `shard`, of every pattern that
   * matches it); how many received it (a client once per channel and once per pattern).
   */
  publish(channel: string, message: Uint8Array, shard: boolean): number {
    let n = 0;
    const set = this.#tables[shard ? "shard" : "channel"].get(channel);
    if (set) {
      const parts = [encodeBulk(shard ? "smessage" : "message"), encodeBulk(fromLatin1(channel)), encodeBulk(message)];
      const frames = [pubsubFrame(2, parts), pubsubFrame(3, parts)];
      for (const client of set) client.send(frames[client.protocol - 2]!);
      n += set.size;
    }
    if (shard) return n;
    for (const [pattern, clients] of this.#tables.pattern) {
      if (!globMatch(pattern, channel)) continue;
      const parts = [encodeBulk("pmessage"), encodeBulk(fromLatin1(pattern)), encodeBulk(fromLatin1(channel)), encodeBulk(message)];
      for (const client of clients) client.send(pubsubFrame(client.protocol, parts));
      n += clients.size;
    }
    return n;
  }

  /** Drop every shard channel `served` says no longer lives here, telling each subscriber. */
  dropShardChannels(served: (channel: string) => boolean): void {
    for (const [name, set] of [...this.#tables.shard]) {
      if (served(name)) continue;
      for (const client of [...set]) {
        this.#remove(client, name, "shard");
        client.send(frame(client, "sunsubscribe", name, client.shardChannels.size));
      }
    }
  }

  /** The client's connection closed. */
  forget(client: ClientState): void {
    for (const kind of ["channel", "pattern", "shard"] as const) for (const name of [...mineOf(client, kind)]) this.#remove(client, name, kind);
  }

  #remove(client: ClientState, name: string, kind: SubKind): void {
    mineOf(client, kind).delete(name);
    const table = this.#tables[kind];
    const set = table.get(name);
    if (!set) return;
    set.delete(client);
    if (set.size === 0) table.delete(name);
  }
}
