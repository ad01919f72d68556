/**
 * Channels route like keys: by name, longest prefix first, to a Redis Cluster or a standalone pool,
 * and never stripped of a route's prefix. One client subscribes to channels of two clusters and of
 * a ketama pool at once; messages published through slotgate and straight to each backend reach
 * it, the nodes of the right backend count it, and PUBSUB NUMSUB adds up across backends. Patterns
 * on a pool are refused (a pool has no message broadcast). Real processes; Node, Bun and Deno.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { startLocalCluster, startStandaloneRedis, type LocalCluster, type StandaloneRedis } from "../../scripts/local-cluster.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp, startProxy, type RunningProxy } from "../support/proxy.ts";
import { bulks, splitFrames } from "../support/exchange.ts";
import { until } from "../support/within.ts";

const SLOW = { timeout: 120_000 };
const TOKEN = "pubsub-routes-token";

interface World {
  main: LocalCluster;
  events: LocalCluster;
  servers: StandaloneRedis[];
  proxy: RunningProxy;
  stop(): Promise<void>;
}

describe("channels route by name to clusters and pools", () => {
  const world = lazy(async (): Promise<World> => {
    const started = await Promise.allSettled([
      startLocalCluster({ replicasPerPrimary: 0 }),
      startLocalCluster({ replicasPerPrimary: 0 }),
      startStandaloneRedis(),
      startStandaloneRedis(),
    ]);
    const running = started.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
    const failed = started.find((result) => result.status === "rejected");
    if (failed) {
      await Promise.all(running.map((r) => r.stop()));
      throw failed.reason;
    }
    const [main, events, ...servers] = running as [LocalCluster, LocalCluster, ...StandaloneRedis[]];
    const proxy = await startProxy(main.seeds, { SLOTGATE_ADMIN_TOKEN: TOKEN }).catch(async (error) => {
      await Promise.all(running.map((r) => r.stop()));
      throw error;
    });
    const w: World = {
      main,
      events,
      servers,
      proxy,
      async stop() {
        await proxy.stop();
        await Promise.all(running.map((r) => r.stop()));
      },
    };
    try {
      await configure(w);
    } catch (error) {
      await w.stop();
      throw error;
    }
    return w;
  });
  const raws: RawClient[] = [];
  after(async () => {
    for (const raw of raws) raw.close();
    await world.stop();
  });

  /** Add the events cluster (prefix `ev:`, stripped for keys) and the pool (prefix `cache:`). */
  async function configure(w: World): Promise<void> {
    const { proxy } = w;
    const admin = `http://${proxy.app.admin!.host}:${proxy.app.admin!.port}`;
    const headers = { authorization: `Bearer ${TOKEN}` };
    const current = await (await fetch(`${admin}/config`, { headers })).json();
    const put = await fetch(`${admin}/config`, {
      method: "PUT",
      headers,
      body: JSON.stringify({
        ...current,
        clusters: {
          ...current.clusters,
          events: { seeds: [w.events.seeds[0]] },
          cache: { type: "standalone", servers: w.servers.map((s) => `127.0.0.1:${s.port}`) },
        },
        routes: [
          { prefix: "ev:", cluster: "events", removePrefix: true },
          { prefix: "cache:", cluster: "cache" },
        ],
        catchAll: "default",
      }),
    });
    assert.equal(put.status, 200, await put.text());
    await until("the events cluster to be ready", async () => (await fetch(`${admin}/readyz`, { headers })).status === 200);
  }

  async function connect(port: number): Promise<RawClient> {
    const raw = await RawClient.connect(port);
    raws.push(raw);
    return raw;
  }

  /** Sum of `PUBSUB NUMSUB channel` over some Redis servers. */
  async function numsub(ports: number[], reply: (port: number, ...args: string[]) => Promise<unknown>, channel: string): Promise<number> {
    let sum = 0;
    for (const port of ports) sum += Number(((await reply(port, "PUBSUB", "NUMSUB", channel)) as unknown[])[1]);
    return sum;
  }

  it("one client subscribes to channels of two clusters and a pool; each message reaches it", SLOW, async () => {
    const w = await world.get();
    const client = await connect(w.proxy.port);
    // Two pool channels, so that (most likely) both servers carry one.
    const poolChannels = ["cache:x", "cache:y", "cache:z", "cache:w"];
    client.send(resp("SUBSCRIBE", "ev:a", "main.a", ...poolChannels) + resp("PSUBSCRIBE", "ev:p*"));
    await client.waitFor((text) => splitFrames(text).length >= 7);
    const mainPorts = w.main.nodes.map((n) => n.port);
    const eventPorts = w.events.nodes.map((n) => n.port);
    const mainReply = (port: number, ...args: string[]) => w.main.reply(port, ...args);
    const eventReply = (port: number, ...args: string[]) => w.events.reply(port, ...args);

    assert.equal(await numsub(eventPorts, eventReply, "ev:a"), 1, "ev:a is subscribed, unstripped, on the events cluster");
    assert.equal(await numsub(mainPorts, mainReply, "ev:a"), 0, "and not on the catch-all");
    assert.equal(await numsub(mainPorts, mainReply, "main.a"), 1, "main.a is on the catch-all");
    for (const channel of poolChannels) {
      const counts = await Promise.all(w.servers.map(async (s) => Number(((await s.reply("PUBSUB", "NUMSUB", channel)) as unknown[])[1])));
      assert.deepEqual(counts.sort(), [0, 1], `${channel} is subscribed on exactly one server of the pool`);
    }

    const publisher = await connect(w.proxy.port);
    publisher.send(resp("PUBLISH", "ev:a", "one") + resp("PUBLISH", "main.a", "two") + resp("PUBLISH", "ev:pq", "three") + poolChannels.map((c) => resp("PUBLISH", c, `pool-${c}`)).join(""));
    await publisher.waitFor((text) => splitFrames(text).length >= 3 + poolChannels.length);
    // Straight to each backend: a cluster node of events, every server of the pool.
    await w.events.command(eventPorts[2]!, "PUBLISH", "ev:a", "direct");
    for (const server of w.servers) for (const channel of poolChannels) await server.command("PUBLISH", channel, `direct-${channel}`);
    const want = [
      bulks(["message", "ev:a", "one"]),
      bulks(["message", "main.a", "two"]),
      bulks(["pmessage", "ev:p*", "ev:pq", "three"]),
      bulks(["message", "ev:a", "direct"]),
      ...poolChannels.flatMap((c) => [bulks(["message", c, `pool-${c}`]), bulks(["message", c, `direct-${c}`])]),
    ];
    await client.waitFor((text) => want.every((frame) => text.includes(frame)));
    assert.equal(splitFrames(client.received.toString("latin1")).length, 7 + want.length, "each message once, nothing else");

    publisher.send(resp("PUBSUB", "NUMSUB", "ev:a", "main.a", "cache:x", "none"));
    const numsubReply = splitFrames(await publisher.waitFor((text) => splitFrames(text).length >= 4 + poolChannels.length)).at(-1);
    assert.equal(numsubReply, bulks(["ev:a", 1, "main.a", 1, "cache:x", 1, "none", 0]), "PUBSUB NUMSUB adds up across backends");
    client.close();
    publisher.close();
  });

  it("patterns on a pool are refused; shard channels on a pool go to the channel's server", SLOW, async () => {
    const w = await world.get();
    const client = await connect(w.proxy.port);
    client.send(resp("PSUBSCRIBE", "cache:*") + resp("SSUBSCRIBE", "cache:s") + resp("PING"));
    const frames = splitFrames(await client.waitFor((text) => splitFrames(text).length >= 3));
    assert.equal(frames[0], "-ERR patterns are not supported on standalone pool 'cache'\r\n");
    assert.equal(frames[1], bulks(["ssubscribe", "cache:s", 1]));
    const publisher = await connect(w.proxy.port);
    publisher.send(resp("SPUBLISH", "cache:s", "shard"));
    await publisher.waitFor((text) => text === ":1\r\n");
    await client.waitFor((text) => text.includes(bulks(["smessage", "cache:s", "shard"])));
    client.close();
    publisher.close();
  });
});
