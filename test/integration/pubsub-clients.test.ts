/**
 * Pub/sub through slotgate with real client libraries in front of a real 3-primary cluster:
 * ioredis and node-redis 5 subscribers (channels, patterns, shard channels; RESP2, and RESP3 once
 * slotgate speaks it), messages published through slotgate and straight to the cluster's nodes,
 * and every way of leaving (unsubscribing all, RESET, QUIT, disconnecting) closing slotgate's
 * subscriber connections: the nodes count no subscriber left and the app's scopes hold nothing.
 * Runs on Node, Bun and Deno.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import type { ScopeInfo } from "../../src/scope/scope.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp, startProxy, type RunningProxy } from "../support/proxy.ts";
import { splitFrames } from "../support/exchange.ts";
import { until, within } from "../support/within.ts";

const SLOW = { timeout: 120_000 };
const slotOf = (key: string) => keySlot(new TextEncoder().encode(key));

/** Every resource of slotgate's subscriber connections, and every pub/sub scope, in a scope tree. */
function pubsubHoldings(info: ScopeInfo): string[] {
  const found = info.resources.filter((r) => r.name.startsWith("subscriber ")).map((r) => `${info.path}: ${r.name}`);
  if (info.path.endsWith("/pubsub")) found.push(info.path);
  for (const child of info.children) found.push(...pubsubHoldings(child));
  return found;
}

/** How many sockets the node scopes of a cluster's scope tree hold. */
function nodeSockets(info: ScopeInfo): number {
  let count = /\/node [^/]+$/.test(info.path) ? info.resources.filter((r) => r.kind === "socket").length : 0;
  for (const child of info.children) count += nodeSockets(child);
  return count;
}

describe("pub/sub clients through slotgate", () => {
  const cluster = lazy(() => startLocalCluster({ replicasPerPrimary: 0 }));
  const proxy = lazy(async () => startProxy((await cluster.get()).seeds));
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const cleanup of cleanups) await Promise.resolve(cleanup()).catch(() => {});
    await proxy.stop();
    await cluster.stop();
  });

  async function ioredis(port: number): Promise<Redis> {
    const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 });
    client.on("error", () => {});
    cleanups.push(() => client.disconnect());
    await client.connect();
    return client;
  }

  /** Sum of `PUBSUB <sub> name` over every node, straight from the cluster. */
  async function countOnNodes(sub: "NUMSUB" | "SHARDNUMSUB", name: string): Promise<number> {
    const c = await cluster.get();
    let sum = 0;
    for (const node of c.nodes) sum += Number(((await c.reply(node.port, "PUBSUB", sub, name)) as unknown[])[1]);
    return sum;
  }

  /** Whether `HELLO 3` through slotgate answers -NOPROTO (RESP3 not merged yet). */
  async function noResp3(port: number): Promise<boolean> {
    const probe = await RawClient.connect(port);
    probe.send(resp("HELLO", "3"));
    const reply = await probe.waitFor((text) => splitFrames(text).length >= 1);
    probe.close();
    return reply.startsWith("-NOPROTO");
  }

  it("ioredis: subscribe, psubscribe and ssubscribe get messages published through slotgate and on any node", SLOW, async () => {
    const c = await cluster.get();
    const { port } = await proxy.get();
    const subscriber = await ioredis(port);
    const publisher = await ioredis(port);
    const got = new Set<string>();
    subscriber.on("message", (channel: string, message: string) => got.add(`message ${channel} ${message}`));
    subscriber.on("pmessage", (pattern: string, channel: string, message: string) => got.add(`pmessage ${pattern} ${channel} ${message}`));
    subscriber.on("smessage", (channel: string, message: string) => got.add(`smessage ${channel} ${message}`));
    assert.equal(await subscriber.subscribe("io.a", "io.b"), 2, "two channels");
    assert.equal(await subscriber.psubscribe("io.p.*"), 3, "channels and patterns counted together");
    assert.equal(await subscriber.ssubscribe("{io}.s"), 1, "shard channels counted apart");
    assert.deepEqual(await subscriber.ping(), ["pong", ""], "PING in subscribed mode answers as Redis does");
    assert.deepEqual(await subscriber.ping("hi"), ["pong", "hi"]);

    const want = new Set<string>();
    assert.equal(typeof (await publisher.publish("io.a", "through")), "number", "PUBLISH answers a count");
    want.add("message io.a through");
    await publisher.publish("io.p.x", "pattern");
    want.add("pmessage io.p.* io.p.x pattern");
    assert.equal(await publisher.call("SPUBLISH", "{io}.s", "shard"), 1, "SPUBLISH reaches the one shard subscriber");
    want.add("smessage {io}.s shard");
    for (const node of c.nodes) {
      await c.command(node.port, "PUBLISH", "io.b", `direct-${node.port}`);
      want.add(`message io.b direct-${node.port}`);
    }
    const owner = await c.ownerOfSlot(slotOf("{io}.s"));
    await c.command(owner.port, "SPUBLISH", "{io}.s", "direct");
    want.add("smessage {io}.s direct");
    await until("every message to arrive", () => [...want].every((m) => got.has(m)));
    assert.deepEqual([...got].sort(), [...want].sort(), "nothing else arrived");

    // By name: ioredis's UNSUBSCRIBE without names waits for a count of 0, with Redis too.
    assert.equal(await subscriber.unsubscribe("io.a", "io.b"), 1, "the pattern is left");
    assert.equal(await subscriber.sunsubscribe("{io}.s"), 0, "no shard channel left");
    assert.equal(await subscriber.punsubscribe("io.p.*"), 0, "nothing left");
    assert.equal(await subscriber.set("io:after", "1"), "OK", "out of subscribed mode, commands run again");
    await until("the nodes to count no slotgate subscriber", async () => (await countOnNodes("NUMSUB", "io.b")) === 0 && (await countOnNodes("SHARDNUMSUB", "{io}.s")) === 0);
  });

  it("node-redis 5 (RESP2): subscribe, pSubscribe and sSubscribe with listeners", SLOW, async () => {
    const { port } = await proxy.get();
    const client = createClient({ socket: { host: "127.0.0.1", port, reconnectStrategy: false } });
    client.on("error", () => {});
    cleanups.push(() => client.destroy());
    await client.connect();
    const subscriber = client.duplicate();
    subscriber.on("error", () => {});
    cleanups.push(() => subscriber.destroy());
    await subscriber.connect();
    const got: string[] = [];
    await subscriber.subscribe("nr.a", (message, channel) => got.push(`message ${channel} ${message}`));
    await subscriber.pSubscribe("nr.p.*", (message, channel) => got.push(`pmessage ${channel} ${message}`));
    await subscriber.sSubscribe("{nr}.s", (message, channel) => got.push(`smessage ${channel} ${message}`));
    await client.publish("nr.a", "one");
    await client.publish("nr.p.x", "two");
    assert.equal(await client.sPublish("{nr}.s", "three"), 1, "SPUBLISH reaches the one shard subscriber");
    await until("three messages", () => got.length >= 3);
    assert.deepEqual(got.sort(), ["message nr.a one", "pmessage nr.p.x two", "smessage {nr}.s three"]);
    // By name: node-redis's unsubscribe() without names waits for a count of 0, with Redis too.
    await subscriber.unsubscribe("nr.a");
    await subscriber.pUnsubscribe("nr.p.*");
    await subscriber.sUnsubscribe("{nr}.s");
    // node-redis 5 hands this reply over as a Buffer after pub/sub (with Redis too).
    assert.equal(String(await subscriber.set("nr:after", "1")), "OK", "out of subscribed mode, commands run again");
  });

  it("node-redis 5 (RESP3): pushes, and commands on the same client while subscribed", SLOW, async (t) => {
    const { port } = await proxy.get();
    if (await noResp3(port)) return t.skip("slotgate does not speak RESP3 yet (HELLO 3 answers -NOPROTO)");
    const client = createClient({ RESP: 3, socket: { host: "127.0.0.1", port, reconnectStrategy: false } });
    client.on("error", () => {});
    cleanups.push(() => client.destroy());
    await client.connect();
    const got: string[] = [];
    await client.subscribe("r3c.a", (message, channel) => got.push(`message ${channel} ${message}`));
    await client.pSubscribe("r3c.p.*", (message, channel) => got.push(`pmessage ${channel} ${message}`));
    await client.sSubscribe("{r3c}.s", (message, channel) => got.push(`smessage ${channel} ${message}`));
    assert.equal(await client.set("r3c:key", "v"), "OK", "a RESP3 client runs commands while subscribed");
    assert.equal(await client.get("r3c:key"), "v");
    await client.publish("r3c.a", "one");
    await client.publish("r3c.p.x", "two");
    await client.sPublish("{r3c}.s", "three");
    await until("three messages", () => got.length >= 3);
    assert.deepEqual(got.sort(), ["message r3c.a one", "pmessage r3c.p.x two", "smessage {r3c}.s three"]);
    await client.unsubscribe("r3c.a");
    await client.pUnsubscribe("r3c.p.*");
    await client.sUnsubscribe("{r3c}.s");
    assert.equal(await client.get("r3c:key"), "v", "commands still run after unsubscribing");
  });

  it("unsubscribing all, RESET, QUIT and disconnecting each close slotgate's subscriber connections", SLOW, async () => {
    const c = await cluster.get();
    // A proxy of its own: its scopes hold this test's connections only.
    const own: RunningProxy = await startProxy(c.seeds);
    cleanups.push(() => own.stop());
    const baseline = nodeSockets(own.app.cluster.scope.inspect());
    // Shard channels on every primary, so that there is one shard connection per primary.
    const ownerPort = (key: string) => {
      const slot = slotOf(key);
      return own.app.cluster.topology.ranges.find((range) => range.start <= slot && slot <= range.end)?.primary.port;
    };
    const primaries = await c.primaries();
    const shardChannels = primaries.map((node) => {
      for (let i = 0; ; i++) if (ownerPort(`{leave${i}}`) === node.port) return `{leave${i}}`;
    });

    const ways: [string, (client: RawClient) => void][] = [
      ["unsubscribing from everything", (client) => client.send(resp("UNSUBSCRIBE") + resp("PUNSUBSCRIBE") + resp("SUNSUBSCRIBE"))],
      ["RESET", (client) => client.send(resp("RESET"))],
      ["QUIT", (client) => client.send(resp("QUIT"))],
      ["disconnecting", (client) => client.close()],
    ];
    for (const [way, leave] of ways) {
      const client = await RawClient.connect(own.port);
      cleanups.push(() => client.close());
      client.send(resp("SUBSCRIBE", "leave.a") + resp("PSUBSCRIBE", "leave.*") + shardChannels.map((channel) => resp("SSUBSCRIBE", channel)).join(""));
      await client.waitFor((text) => splitFrames(text).length >= 2 + shardChannels.length);
      const held = pubsubHoldings(own.app.scope.inspect());
      assert.equal(held.filter((name) => name.includes("subscriber ")).length, 1 + primaries.length, `one channel connection and one shard connection per primary (${way}): ${held.join(", ")}`);
      assert.equal(await countOnNodes("NUMSUB", "leave.a"), 1, "the channel is subscribed on one node");
      for (const channel of shardChannels) assert.equal(await countOnNodes("SHARDNUMSUB", channel), 1, `${channel} is subscribed on its owner`);

      leave(client);
      await until(`no pub/sub holding left after ${way}`, () => pubsubHoldings(own.app.scope.inspect()).length === 0);
      await until(`the nodes to count no subscriber after ${way}`, async () => {
        if ((await countOnNodes("NUMSUB", "leave.a")) !== 0) return false;
        for (const channel of shardChannels) if ((await countOnNodes("SHARDNUMSUB", channel)) !== 0) return false;
        return true;
      });
      await until(`the nodes' scopes to hold the sockets they held before (${way})`, () => nodeSockets(own.app.cluster.scope.inspect()) === baseline);
      if (way === "QUIT") await within(client.waitClosed(), "QUIT to close the connection");
      if (way === "unsubscribing from everything" || way === "RESET") {
        client.send(resp("ECHO", "still here"));
        await client.waitFor((text) => text.endsWith("$10\r\nstill here\r\n"));
      }
      client.close();
    }
  });
});
