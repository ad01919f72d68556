/**
 * PUBSUB CHANNELS, NUMSUB, NUMPAT, SHARDCHANNELS and SHARDNUMSUB through slotgate. A Redis node
 * answers for the subscribers connected to it alone, and a client's subscriptions may sit on any
 * primary (slotgate's own subscriber connections included), so the question goes to every primary
 * of every backend concerned and the answers are merged: channel lists are united, counts summed
 * (NUMSUB and SHARDNUMSUB per channel, in the order asked; NUMPAT over all nodes, so a pattern
 * subscribed on two nodes counts twice). A channel routes to its backend by name, as PUBLISH does.
 * Subscribers connected directly to a replica are not counted.
 */
import type { Backend } from "../../backend/contract.ts";
import { UpstreamRequest } from "../../backend/request.ts";
import { FanOut, firstError, type FanOutClient } from "./fanout.ts";
import { decode } from "../../resp/decode.ts";
import { encodeArray, encodeBulk, encodeCommand, encodeInteger } from "../../resp/encode.ts";
import { keyOf } from "../../util/binary-key.ts";

/** The PUBSUB subcommands merged here, by their table name. */
export const MERGED_PUBSUB = new Set(["PUBSUB|CHANNELS", "PUBSUB|NUMSUB", "PUBSUB|NUMPAT", "PUBSUB|SHARDCHANNELS", "PUBSUB|SHARDNUMSUB"]);


/** Where channels live: the routing table, as far as PUBSUB needs it (a `RouteTable` is one). */
export interface ChannelRoutes {
  match(name: Uint8Array): { readonly backend: Backend } | null;
  backends(): Iterable<Backend>;
}

/** Answer `PUBSUB <sub> ...` (`sub` upper-case, one of MERGED_PUBSUB) from every primary concerned. */
export function pubsubIntrospect(client: FanOutClient, table: ChannelRoutes, sub: string, args: Uint8Array[], frame: Uint8Array): void {
  const parts: { backend: Backend; frame: Uint8Array }[] = [];
  let merge: (replies: unknown[]) => Uint8Array;
  if (sub === "NUMSUB" || sub === "SHARDNUMSUB") {
    const channels = args.slice(2);
    const byBackend = new Map<Backend, Map<string, Uint8Array>>();
    for (const channel of channels) {
      const backend = table.match(channel)?.backend;
      if (!backend) continue;
      let names = byBackend.get(backend);
      if (!names) byBackend.set(backend, (names = new Map()));
      names.set(keyOf(channel), channel);
    }
    for (const [backend, names] of byBackend) parts.push({ backend, frame: encodeCommand([args[0]!, args[1]!, ...names.values()]) });
    merge = (replies) => {
      const counts = new Map<string, number>();
      for (const reply of replies) {
        const flat = reply as (Uint8Array | number)[];
        for (let i = 0; i + 1 < flat.length; i += 2) {
          const key = keyOf(flat[i] as Uint8Array);
          counts.set(key, (counts.get(key) ?? 0) + Number(flat[i + 1]));
        }
      }
      return encodeArray(channels.flatMap((channel) => [encodeBulk(channel), encodeInteger(counts.get(keyOf(channel)) ?? 0)]));
    };
  } else {
    for (const backend of table.backends()) parts.push({ backend, frame });
    merge =
      sub === "NUMPAT"
        ? (replies) => encodeInteger(replies.reduce<number>((sum, reply) => sum + Number(reply), 0))
        : (replies) => {
            const union = new Map<string, Uint8Array>();
            for (const reply of replies) for (const name of reply as Uint8Array[]) union.set(keyOf(name), name);
            return encodeArray([...union.values()].map((name) => encodeBulk(name)));
          };
  }
  const sends: { backend: Backend; frame: Uint8Array; shard: number }[] = [];
  for (const { backend, frame } of parts) for (const shard of backend.primaries()) sends.push({ backend, frame, shard });
  if (sends.length === 0) return client.reply(merge([]));
  // The first error wins; otherwise the replies are decoded and merged.
  const fan = new FanOut(client, sends.length, (replies) => firstError(replies) ?? merge(replies.map((reply) => decode(reply))));
  // RESP2 whatever the client speaks: the merged reply is encoded here, valid in both.
  const requests = sends.map(({ frame, shard }, part) => new UpstreamRequest(frame, shard, fan, client.id, part));
  client.expect(fan);
  for (let i = 0; i < sends.length; i++) sends[i]!.backend.dispatch(requests[i]!);
}
