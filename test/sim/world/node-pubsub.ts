/**
 * Pub/sub on one simulated Redis node, with Redis 7's frames (RESP2): SUBSCRIBE / UNSUBSCRIBE
 * answer one `[subscribe|unsubscribe, channel, count]` array per channel (count: the client's
 * channels; an UNSUBSCRIBE of nothing with nothing subscribed answers `[unsubscribe, nil, 0]`),
 * SSUBSCRIBE / SUNSUBSCRIBE the same with shard channels counted apart. A message is
 * `[message, channel, payload]` (`smessage` for a shard channel). A shard channel whose slot the
 * node stops serving is dropped with an unasked `[sunsubscribe, channel, count]`.
 *
 * PUBLISH's propagation over the cluster bus (to every node) and SPUBLISH's (to the shard's
 * replicas) is the node's business; this registry only delivers to its own subscribers.
 */
import { encodeArray, encodeBulk, encodeInteger, NULL_BULK } from "../../../src/resp/encode.ts";
import type { ClientState } from "./client-state.ts";
import { fromLatin1 } from "./keyspace.ts";

const SUBSCRIBED_COMMANDS = new Set(["SUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "SUNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE", "PING", "QUIT", "RESET"]);

/** RESP2's subscribed context: the commands it allows. */
export function allowedWhenSubscribed(name: string): boolean {
  return SUBSCRIBED_COMMANDS.has(name);
}

export function subscribed(client: ClientState): boolean {
  return client.channels.size + client.shardChannels.size > 0;
}

function frame(word: string, channel: string | null, count: number): Uint8Array {
  return encodeArray([encodeBulk(word), channel === null ? NULL_BULK : encodeBulk(fromLatin1(channel)), encodeInteger(count)]);
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
  /** Subscribers by channel, then by shard channel (latin1 names). */
  readonly #channels = new Map<string, Set<ClientState>>();
  readonly #shard = new Map<string, Set<ClientState>>();

  /** SUBSCRIBE or SSUBSCRIBE `names`: the confirmations. */
  subscribe(client: ClientState, names: string[], shard: boolean): Uint8Array {
    const mine = shard ? client.shardChannels : client.channels;
    const table = shard ? this.#shard : this.#channels;
    const frames = names.map((name) => {
      mine.add(name);
      let set = table.get(name);
      if (!set) table.set(name, (set = new Set()));
      set.add(client);
      return frame(shard ? "ssubscribe" : "subscribe", name, mine.size);
    });
    return concat(frames);
  }

  /** UNSUBSCRIBE or SUNSUBSCRIBE `names` (none: all of them): the confirmations. */
  unsubscribe(client: ClientState, names: string[], shard: boolean): Uint8Array {
    const mine = shard ? client.shardChannels : client.channels;
    const word = shard ? "sunsubscribe" : "unsubscribe";
    const list = names.length > 0 ? names : [...mine];
    if (list.length === 0) return frame(word, null, mine.size);
    return concat(list.map((name) => {
      this.#remove(client, name, shard);
      return frame(word, name, mine.size);
    }));
  }

  /** Deliver to this node's subscribers of `channel`; how many received it. */
  publish(channel: string, message: Uint8Array, shard: boolean): number {
    const set = (shard ? this.#shard : this.#channels).get(channel);
    if (!set) return 0;
    const out = encodeArray([encodeBulk(shard ? "smessage" : "message"), encodeBulk(fromLatin1(channel)), encodeBulk(message)]);
    for (const client of set) client.send(out);
    return set.size;
  }

  /** Drop every shard channel `served` says no longer lives here, telling each subscriber. */
  dropShardChannels(served: (channel: string) => boolean): void {
    for (const [name, set] of [...this.#shard]) {
      if (served(name)) continue;
      for (const client of [...set]) {
        this.#remove(client, name, true);
        client.send(frame("sunsubscribe", name, client.shardChannels.size));
      }
    }
  }

  /** The client's connection closed. */
  forget(client: ClientState): void {
    for (const name of [...client.channels]) this.#remove(client, name, false);
    for (const name of [...client.shardChannels]) this.#remove(client, name, true);
  }

  #remove(client: ClientState, name: string, shard: boolean): void {
    (shard ? client.shardChannels : client.channels).delete(name);
    const table = shard ? this.#shard : this.#channels;
    const set = table.get(name);
    if (!set) return;
    set.delete(client);
    if (set.size === 0) table.delete(name);
  }
}
