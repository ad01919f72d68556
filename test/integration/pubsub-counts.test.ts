/**
 * PUBLISH through slotgate counts every subscriber connected through slotgate, as one Redis
 * counts them (issue 15 §3): a classic channel's subscription is placed on the owner of the
 * channel's slot — where Redis Cluster runs the PUBLISH and counts — and follows the slot when it
 * moves (unsubscribed from the old owner, or it would count twice). A real 3-primary cluster, raw
 * RESP clients; runs on Node, Bun and Deno.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp, startProxy } from "../support/proxy.ts";
import { until } from "../support/within.ts";

const SLOW = { timeout: 120_000 };
const slotOf = (name: string) => keySlot(new TextEncoder().encode(name));

describe("PUBLISH counts through slotgate", () => {
  const cluster = lazy(() => startLocalCluster({ replicasPerPrimary: 0 }));
  const proxy = lazy(async () => startProxy((await cluster.get()).seeds));
  const clients: RawClient[] = [];
  after(async () => {
    for (const client of clients) client.close();
    await proxy.stop();
    await cluster.stop();
  });

  async function client(): Promise<RawClient> {
    const c = await RawClient.connect((await proxy.get()).port);
    clients.push(c);
    return c;
  }

  /** PUBLISH through slotgate; the count it answers. */
  async function publish(publisher: RawClient, channel: string): Promise<number> {
    publisher.received = Buffer.alloc(0);
    publisher.send(resp("PUBLISH", channel, "hello"));
    const text = await publisher.waitFor((t) => /^:\d+\r\n/.test(t));
    return Number(text.slice(1, text.indexOf("\r")));
  }

  /** Channels whose slots belong to three different primaries. */
  async function channelsOnEveryPrimary(): Promise<string[]> {
    const c = await cluster.get();
    const byOwner = new Map<number, string>();
    for (let i = 0; byOwner.size < 3 && i < 1000; i++) {
      const name = `news:${i}`;
      const owner = (await c.ownerOfSlot(slotOf(name))).port;
      if (!byOwner.has(owner)) byOwner.set(owner, name);
    }
    return [...byOwner.values()];
  }

  it("counts every subscriber made through slotgate, whichever primary owns the channel", SLOW, async () => {
    const channels = await channelsOnEveryPrimary();
    const publisher = await client();
    // Subscriber k subscribes to the first k+1 channels: channel j has 3 - j subscribers.
    for (let k = 0; k < 3; k++) {
      const subscriber = await client();
      subscriber.send(resp("SUBSCRIBE", ...channels.slice(0, k + 1)));
      await subscriber.waitFor((t) => (t.match(/subscribe/g) ?? []).length === k + 1);
    }
    for (const [j, channel] of channels.entries()) assert.equal(await publish(publisher, channel), 3 - j, channel);
    assert.equal(await publish(publisher, "news:nobody"), 0);
  });

  it("still counts once each after the channel's slot moves to another primary", SLOW, async () => {
    const c = await cluster.get();
    const [channel] = await channelsOnEveryPrimary();
    const subscriber = await client();
    subscriber.send(resp("SUBSCRIBE", channel!));
    await subscriber.waitFor((t) => t.includes("subscribe"));
    const publisher = await client();
    const before = await publish(publisher, channel!);
    const slot = slotOf(channel!);
    const from = (await c.ownerOfSlot(slot)).port;
    const to = (await c.primaries()).find((p) => p.port !== from)!.port;
    await c.migrateSlot(slot, from, to);
    // slotgate learns the move at its next refresh (a PUBLISH is never redirected) and moves the
    // subscriptions; the old owner must not keep them, or a PUBLISH there would count them too.
    const numsub = async (port: number) => ((await c.reply(port, "PUBSUB", "NUMSUB", channel!)) as [string, number])[1];
    await until("the subscriptions moved to the new owner", async () => (await numsub(to)) === before && (await numsub(from)) === 0, 30_000);
    assert.equal(await publish(publisher, channel!), before);
  });
});
