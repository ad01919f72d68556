/**
 * Subscriptions through slotgate outlive the connection they ride on: a shard channel whose slot
 * migrates to another primary (through a proxy that refreshes its slot map, and through one that
 * learns only from what Redis tells its subscriber connection: the dropped channel, then MOVED),
 * a subscriber connection killed on its node, and a primary killed and failed over. Each time the
 * client keeps receiving messages published once slotgate has subscribed again, and sees nothing
 * of it: no second confirmation, no `sunsubscribe`. Messages published in between may be lost
 * (Redis pub/sub is at-most-once), so the tests publish until one arrives. A cluster replaced by
 * a config change takes its subscribers' channels with it to the replacement. When the whole cluster
 * is gone, slotgate gives up and closes the client. A real 3+3 cluster; runs on Node, Bun and Deno.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { startLocalCluster, type ClusterNode, type LocalCluster } from "../../scripts/local-cluster.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import type { Cluster } from "../../src/backends/cluster/cluster.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp, startProxy, type RunningProxy } from "../support/proxy.ts";
import { bulks, splitFrames } from "../support/exchange.ts";
import { sleep, until, within } from "../support/within.ts";

const SLOW = { timeout: 180_000 };
const slotOf = (key: string) => keySlot(new TextEncoder().encode(key));

/** A `{tagN}` shard channel whose slot `wanted` accepts. */
function channelWhere(tag: string, wanted: (slot: number) => boolean): string {
  for (let i = 0; ; i++) if (wanted(slotOf(`{${tag}${i}}`))) return `{${tag}${i}}`;
}

/** The frames a raw subscriber has read. */
function framesOf(client: RawClient): string[] {
  return splitFrames(client.received.toString("latin1"));
}

/** Every frame but the first `confirmations` is a message: slotgate showed nothing of its re-subscribing. */
function assertOnlyMessages(client: RawClient, confirmations: number, what: string): void {
  const frames = framesOf(client);
  const extra = frames.slice(confirmations).filter((frame) => !/^\*[34]\r\n\$[78]\r\n[sp]?message\r\n/.test(frame));
  assert.deepEqual(extra, [], `${what}: after the confirmations, messages only`);
}

/** Publish with `publish(n)` (n = 0, 1, ...; failures ignored) until `arrived()` holds. */
async function publishUntil(what: string, arrived: () => boolean, publish: (n: number) => Promise<unknown>): Promise<void> {
  let n = 0;
  await until(what, async () => {
    if (arrived()) return true;
    await publish(n++).catch(() => {});
    await sleep(100);
    return arrived();
  }, 90_000);
}

describe("subscriptions through slotgate across migration and failover", () => {
  // Full coverage off: while a killed primary's slots wait for failover, the others keep serving.
  const fixture = lazy(() => startLocalCluster({ extraConfig: ["cluster-require-full-coverage no"] }));
  const proxies: RunningProxy[] = [];
  const raws: RawClient[] = [];
  const clients: Redis[] = [];
  after(async () => {
    for (const raw of raws) raw.close();
    for (const client of clients) client.disconnect();
    await Promise.all(proxies.map((proxy) => proxy.stop().catch(() => {})));
    await fixture.stop();
  });

  async function launch(seeds: string[], env: Record<string, string>): Promise<RunningProxy> {
    const proxy = await startProxy(seeds, { SLOTGATE_SHUTDOWN_TIMEOUT_MS: "1000", SLOTGATE_LOG_LEVEL: "error", ...env });
    proxies.push(proxy);
    return proxy;
  }

  async function raw(port: number): Promise<RawClient> {
    const client = await RawClient.connect(port);
    raws.push(client);
    return client;
  }

  /** Subscribe a raw client through `port` with `commands` and wait for `confirmations` frames. */
  async function subscriber(port: number, commands: string[][], confirmations: number): Promise<RawClient> {
    const client = await raw(port);
    client.send(commands.map((args) => resp(...args)).join(""));
    await client.waitFor((text) => splitFrames(text).length >= confirmations);
    return client;
  }

  const received = (client: RawClient, frame: string) => () => client.received.toString("latin1").includes(frame);

  /** The running primary whose PUBSUB NUMSUB counts a subscriber of `channel` (where slotgate subscribed it). */
  async function carrierOf(cluster: LocalCluster, channel: string): Promise<ClusterNode> {
    let carrier: ClusterNode | undefined;
    await until(`a node to carry ${channel}`, async () => {
      for (const node of await cluster.primaries()) {
        const reply = (await cluster.reply(node.port, "PUBSUB", "NUMSUB", channel)) as unknown[];
        if (Number(reply[1]) > 0) carrier = node;
      }
      return carrier !== undefined;
    });
    return carrier!;
  }

  it("a shard channel keeps its messages when its slot migrates, whether slotgate refreshes or only hears from Redis", SLOW, async () => {
    const cluster = await fixture.get();
    const refreshing = await launch(cluster.seeds, { SLOTGATE_REFRESH_INTERVAL_MS: "500" });
    // Never refreshes, and redirects do not ask for a refresh: only its subscriber connection
    // tells it (the node drops the channel, then answers MOVED to the new SSUBSCRIBE).
    const deaf = await launch(cluster.seeds, { SLOTGATE_REFRESH_INTERVAL_MS: "3600000", SLOTGATE_REDIRECT_REFRESH_THRESHOLD: "0" });
    const [source, target] = (await cluster.primaries()) as [ClusterNode, ClusterNode];
    const sourceSlots = refreshing.app.cluster.topology.ranges.filter((r) => r.primary.port === source.port);
    const channel = channelWhere("mig", (slot) => sourceSlots.some((r) => r.start <= slot && slot <= r.end));
    const slot = slotOf(channel);

    const subscribers = [];
    for (const proxy of [refreshing, deaf]) {
      subscribers.push(await subscriber(proxy.port, [["SSUBSCRIBE", channel], ["SUBSCRIBE", "mig.plain"]], 2));
    }
    assert.equal(await cluster.command(source.port, "SPUBLISH", channel, "before"), "2", "both proxies subscribed on the owner");
    for (const client of subscribers) await client.waitFor(received(client, bulks(["smessage", channel, "before"])));

    await cluster.migrateSlot(slot, source.port, target.port);
    for (const [i, client] of subscribers.entries()) {
      await publishUntil(
        `subscriber ${i} to get a shard message published on the new owner`,
        received(client, "after-"),
        (n) => cluster.command(target.port, "SPUBLISH", channel, `after-${n}`),
      );
      await publishUntil(`subscriber ${i} to get a channel message`, received(client, "plain-"), (n) => cluster.command(target.port, "PUBLISH", "mig.plain", `plain-${n}`));
      assertOnlyMessages(client, 2, `subscriber ${i}`);
    }
    await until("the old owner to count no shard subscriber", async () => Number(((await cluster.reply(source.port, "PUBSUB", "SHARDNUMSUB", channel)) as unknown[])[1]) === 0);
    assert.equal(Number(((await cluster.reply(target.port, "PUBSUB", "SHARDNUMSUB", channel)) as unknown[])[1]), 2, "both proxies subscribed on the new owner");
    for (const client of subscribers) client.close();
  });

  it("a subscriber connection killed on its node is subscribed again on a live connection", SLOW, async () => {
    const cluster = await fixture.get();
    const proxy = await launch(cluster.seeds, {});
    const channel = channelWhere("kill", () => true);
    const client = await subscriber(proxy.port, [["SUBSCRIBE", "kill.plain"], ["PSUBSCRIBE", "kill.*"], ["SSUBSCRIBE", channel]], 3);
    // Subscriber connections on the nodes: the earlier test's are closing, so wait for these two.
    const subscribed = async () => {
      const found: [number, string][] = [];
      for (const node of await cluster.primaries()) {
        for (const line of (await cluster.command(node.port, "CLIENT", "LIST")).split("\n")) {
          const id = /\bid=(\d+)\b/.exec(line)?.[1];
          if (id && /\b(p|s)?sub=[1-9]/.test(line)) found.push([node.port, id]);
        }
      }
      return found;
    };
    let connections: [number, string][] = [];
    await until("one subscriber connection for channels and patterns, one for the shard channel", async () => (connections = await subscribed()).length === 2);
    for (const [port, id] of connections) assert.equal(await cluster.command(port, "CLIENT", "KILL", "ID", id), "1", `killed client ${id} on ${port}`);
    const anyNode = (await cluster.primaries())[0]!;
    await publishUntil("a channel message after the kill", received(client, "plain-"), (n) => cluster.command(anyNode.port, "PUBLISH", "kill.plain", `plain-${n}`));
    await publishUntil("a pattern message after the kill", received(client, "pattern-"), (n) => cluster.command(anyNode.port, "PUBLISH", "kill.other", `pattern-${n}`));
    const owner = await cluster.ownerOfSlot(slotOf(channel));
    await publishUntil("a shard message after the kill", received(client, "shard-"), (n) => cluster.command(owner.port, "SPUBLISH", channel, `shard-${n}`));
    assertOnlyMessages(client, 3, "after the kill");
    client.close();
  });

  it("a subscriber keeps its channels, patterns and shard channels when their primary is killed and fails over", SLOW, async () => {
    const cluster = await fixture.get();
    const proxy = await launch(cluster.seeds, { SLOTGATE_REFRESH_INTERVAL_MS: "500" });
    const client = await subscriber(proxy.port, [["SUBSCRIBE", "fo.plain"], ["PSUBSCRIBE", "fo.*"]], 2);
    const io = new Redis({ port: proxy.port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 });
    io.on("error", () => {});
    clients.push(io);
    let reconnects = 0;
    io.on("reconnecting", () => reconnects++);
    await io.connect();
    const ioGot: string[] = [];
    io.on("message", (_channel: string, message: string) => ioGot.push(message));
    io.on("smessage", (_channel: string, message: string) => ioGot.push(message));
    await io.subscribe("fo.plain");

    // Kill the primary that carries the raw client's channel connection, with a shard channel
    // owned by that same primary.
    const victim = await carrierOf(cluster, "fo.plain");
    const victimSlots = proxy.app.cluster.topology.ranges.filter((r) => r.primary.port === victim.port);
    const channel = channelWhere("fo", (slot) => victimSlots.some((r) => r.start <= slot && slot <= r.end));
    client.send(resp("SSUBSCRIBE", channel));
    await client.waitFor((text) => splitFrames(text).length >= 3);
    await io.ssubscribe(channel);
    assert.equal(await cluster.command(victim.port, "SPUBLISH", channel, "before"), "2", "both subscribers on the owner");

    await cluster.killNode(victim.port);
    const promoted = await cluster.waitForFailover(victim.port);
    const live = (await cluster.primaries())[0]!;
    await publishUntil("a channel message after the failover", received(client, "plain-"), (n) => cluster.command(live.port, "PUBLISH", "fo.plain", `plain-${n}`));
    await publishUntil("a pattern message after the failover", received(client, "pattern-"), (n) => cluster.command(live.port, "PUBLISH", "fo.x", `pattern-${n}`));
    await publishUntil("a shard message after the failover", received(client, "shard-"), (n) => cluster.command(promoted.port, "SPUBLISH", channel, `shard-${n}`));
    assertOnlyMessages(client, 3, "after the failover");

    await publishUntil("ioredis to get a channel message after the failover", () => ioGot.some((m) => m.startsWith("io-plain-")), (n) => cluster.command(live.port, "PUBLISH", "fo.plain", `io-plain-${n}`));
    await publishUntil("ioredis to get a shard message after the failover", () => ioGot.some((m) => m.startsWith("io-shard-")), (n) => cluster.command(promoted.port, "SPUBLISH", channel, `io-shard-${n}`));
    assert.equal(reconnects, 0, "ioredis never noticed: its connection to slotgate stayed up");

    // Through slotgate too, once it routes to the promoted primary.
    const publisher = await raw(proxy.port);
    await publishUntil("a shard message published through slotgate", received(client, "through-"), (n) => {
      publisher.send(resp("SPUBLISH", channel, `through-${n}`));
      return Promise.resolve();
    });
    client.close();
  });

  it("a subscriber keeps its channels, patterns and shard channels when its cluster is replaced by a config change", SLOW, async () => {
    const cluster = await fixture.get();
    // A short drain: the retired cluster's subscriber connections are closed soon after the change.
    const proxy = await launch(cluster.seeds, { SLOTGATE_DRAIN_TIMEOUT_MS: "300" });
    const channel = channelWhere("rep", () => true);
    const client = await subscriber(proxy.port, [["SUBSCRIBE", "rep.plain"], ["PSUBSCRIBE", "rep.*"], ["SSUBSCRIBE", channel]], 3);
    const old = proxy.app.control.backend("default") as Cluster;
    const changed = await within(proxy.app.control.putCluster("default", { seeds: cluster.seeds, refreshIntervalMs: 12_345 }), "the replacement");
    assert.equal(changed.ok, true, JSON.stringify(changed));
    assert.notEqual(proxy.app.control.backend("default"), old, "replaced");
    await until("the retired cluster is closed, with its subscriber connections", () => old.scope.state === "closed");

    // Published through slotgate, to the replacement: the subscriptions followed it there, well
    // before the 30 s after which slotgate gives up on subscriptions it cannot restore.
    const publisher = await raw(proxy.port);
    const through = (command: string, target: string, tag: string) => (n: number) => {
      publisher.send(resp(command, target, `${tag}-${n}`));
      return Promise.resolve();
    };
    const started = performance.now();
    await publishUntil("a channel message after the replacement", received(client, "plain-"), through("PUBLISH", "rep.plain", "plain"));
    await publishUntil("a pattern message after the replacement", received(client, "pattern-"), through("PUBLISH", "rep.other", "pattern"));
    await publishUntil("a shard message after the replacement", received(client, "shard-"), through("SPUBLISH", channel, "shard"));
    assert.ok(performance.now() - started < 20_000, "restored on the replacement, not left to time out on the retired cluster");
    assert.equal(client.closed, false, "the subscriber stayed connected");
    assertOnlyMessages(client, 3, "after the replacement");
    client.close();
  });

  it("subscriptions that cannot be restored close the client's connection, so that its library subscribes again", SLOW, async () => {
    const cluster = await fixture.get();
    const proxy = await launch(cluster.seeds, {});
    const client = await subscriber(proxy.port, [["SUBSCRIBE", "gone.plain"], ["SSUBSCRIBE", "{gone}"]], 2);
    // Earlier tests' library clients go first: closed by slotgate below, they would reconnect and
    // subscribe again, and ioredis rejects those internal commands unhandled when closed again.
    for (const library of clients.splice(0)) library.disconnect();
    // The whole cluster goes away (this is the file's last test): nothing can carry them any more.
    await cluster.stop();
    await within(client.waitClosed(120_000), "slotgate to give up and close the subscriber", 120_000);
    await until("the client's session to be gone", () => proxy.app.server.connectedClients === 0);
    const holdings = JSON.stringify(proxy.app.scope.inspect());
    assert.ok(!/"subscriber |\/pubsub"/.test(holdings), `no subscriber connection or pub/sub scope is left: ${holdings}`);
  });
});
