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
import type { RouteTable } from "../routing/routes.ts";
import type { RouteClient } from "../routing/router.ts";
import type { SplitOwner } from "./split.ts";
import { UpstreamRequest, type Pending, type ReplySink } from "../../backend/request.ts";
import { decode } from "../../resp/decode.ts";
import { encodeArray, encodeBulk, encodeCommand, encodeInteger } from "../../resp/encode.ts";
import { keyOf } from "../pubsub/link.ts";
import { MINUS } from "../../resp/bytes.ts";

/** The PUBSUB subcommands merged here, by their table name. */
export const MERGED_PUBSUB = new Set(["PUBSUB|CHANNELS", "PUBSUB|NUMSUB", "PUBSUB|NUMPAT", "PUBSUB|SHARDCHANNELS", "PUBSUB|SHARDNUMSUB"]);


/** Answer `PUBSUB <sub> ...` (`sub` upper-case, one of MERGED_PUBSUB) from every primary concerned. */
export function pubsubIntrospect(client: RouteClient, table: RouteTable, sub: string, args: Uint8Array[], frame: Uint8Array): void {
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
  const merged = new MergedReply(client, merge);
  const sends: { backend: Backend; request: UpstreamRequest }[] = [];
  for (const { backend, frame } of parts) {
    for (const shard of backend.primaries()) {
      // RESP2 whatever the client speaks: the merged reply is encoded here, valid in both.
      sends.push({ backend, request: new UpstreamRequest(frame, shard, merged, client.id, sends.length) });
    }
  }
  merged.expect(sends.length);
  client.expect(merged);
  if (sends.length === 0) client.complete(merged);
  for (const { backend, request } of sends) backend.dispatch(request);
}

/** Collects one reply per primary and answers their merge, or the first error among them. */
class MergedReply implements Pending, ReplySink {
  reply: Uint8Array | null = null;
  #replies: Uint8Array[] = [];
  #remaining = 0;

  constructor(
    readonly owner: SplitOwner,
    readonly merge: (replies: unknown[]) => Uint8Array,
  ) {}

  expect(count: number): void {
    this.#replies = new Array(count);
    this.#remaining = count;
    if (count === 0) this.reply = this.merge([]);
  }

  deliver(request: UpstreamRequest, reply: Uint8Array): void {
    this.#replies[request.part] = reply;
    if (--this.#remaining > 0) return;
    const error = this.#replies.find((r) => r[0] === MINUS);
    this.reply = error ?? this.merge(this.#replies.map((r) => decode(r)));
    this.owner.complete(this);
  }
}
