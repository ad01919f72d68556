/**
 * The client libraries applications use, through slotgate, over every section of command
 * coverage at once: node-redis 5 in RESP3 (`RESP: 3`) and ioredis in RESP2, each as a plain
 * single-endpoint client of a real 3+3 cluster. Commands whose keys come from key specs, a
 * transaction with WATCH, a blocking command, whole-cluster commands (SCAN, KEYS, DBSIZE, SCRIPT,
 * FUNCTION, INFO) and per-client commands, all with real values asserted. Pub/sub and replica
 * reads have suites of their own, with both libraries.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { createClient, RESP_TYPES } from "redis";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { lazy } from "../support/lazy.ts";
import { startProxy } from "../support/proxy.ts";
import { sleep, within } from "../support/within.ts";

const SLOW = { timeout: 120_000 };
const LIBRARY = "#!lua name=clientslib\nredis.register_function('getset2', function(keys, args) local old = redis.call('GET', keys[1]); redis.call('SET', keys[1], args[1]); return old end)";

describe("client libraries through slotgate, every section", () => {
  const cluster = lazy(() => startLocalCluster());
  // Reads from the primaries: replica reads (eventually consistent) have their own suite.
  const proxy = lazy(async () => startProxy((await cluster.get()).seeds));
  after(async () => {
    await proxy.stop();
    await cluster.stop();
  });

  it("node-redis 5 in RESP3", SLOW, async () => {
    const { port } = await proxy.get();
    const client = createClient({ url: `redis://127.0.0.1:${port}`, RESP: 3, unstableResp3: true });
    const pusher = createClient({ url: `redis://127.0.0.1:${port}`, RESP: 3 });
    client.on("error", () => {});
    pusher.on("error", () => {});
    try {
      await client.connect();
      await pusher.connect();
      await client.flushAll();
      // Key specs: keyword search, key counts, ranges with a step.
      await client.xAdd("{n}s", "1-1", { f: "v" });
      const streams = await client.xRead({ key: "{n}s", id: "0" });
      // RESP3: XREAD answers a map of stream name to entries.
      assert.equal(JSON.stringify(streams), '{"{n}s":[["1-1",["f","v"]]]}');
      await client.zAdd("{n}z1", [{ score: 1, value: "a" }]);
      await client.zAdd("{n}z2", [{ score: 2, value: "b" }]);
      assert.deepEqual(await client.zUnion(["{n}z1", "{n}z2"]), ["a", "b"]);
      assert.equal(await client.eval("return redis.call('GET', KEYS[1])", { keys: ["{n}missing"] }), null);
      await client.mSet({ "k:1": "1", "k:2": "2", "k:3": "3" });
      assert.deepEqual(await client.mGet(["k:1", "k:2", "k:3", "k:none"]), ["1", "2", "3", null]);
      // RESP3 types: a map, a set, a double.
      await client.hSet("{n}h", { a: "1", b: "2" });
      assert.deepEqual({ ...(await client.hGetAll("{n}h")) }, { a: "1", b: "2" });
      await client.sAdd("{n}set", ["x", "y"]);
      assert.deepEqual([...(await client.sMembers("{n}set"))].sort(), ["x", "y"]);
      assert.equal(await client.withTypeMapping({ [RESP_TYPES.DOUBLE]: Number }).zScore("{n}z1", "a"), 1);
      // A transaction with WATCH.
      await client.set("{n}counter", "1");
      await client.watch("{n}counter");
      const [incr, get] = await client.multi().incr("{n}counter").get("{n}counter").exec();
      assert.deepEqual([incr, get], [2, "2"]);
      // A blocking command woken by another client.
      const popped = client.blPop("{n}queue", 0);
      await sleep(100);
      await pusher.rPush("{n}queue", "job");
      assert.deepEqual({ ...(await within(popped, "BLPOP")) }, { key: "{n}queue", element: "job" });
      // Whole-cluster commands.
      // {n}s, {n}z1, {n}z2, k:1..3, {n}h, {n}set, {n}counter (the queue was emptied).
      assert.equal(await client.dbSize(), 9);
      const scanned = new Set<string>();
      for await (const keys of client.scanIterator({ COUNT: 3 })) for (const key of keys) scanned.add(key);
      assert.equal(scanned.size, 9);
      assert.deepEqual((await client.keys("k:*")).sort(), ["k:1", "k:2", "k:3"]);
      const sha = await client.scriptLoad("return redis.call('INCR', KEYS[1])");
      for (const key of ["k:1", "k:2", "k:3"]) assert.equal(await client.evalSha(sha, { keys: [key] }), Number(key.slice(2)) + 1);
      assert.deepEqual(await client.scriptExists(sha), [1]);
      assert.equal(await client.functionLoad(LIBRARY, { REPLACE: true }), "clientslib");
      assert.equal(await client.fCall("getset2", { keys: ["k:1"], arguments: ["new"] }), "2");
      assert.equal(await client.get("k:1"), "new");
      assert.match(String(await client.info("keyspace")), /db0:keys=9,/);
      // Per-client commands.
      await client.clientSetName("resp3-client");
      assert.equal(await client.clientGetName(), "resp3-client");
      assert.match(String(await client.clientInfo().then((info) => JSON.stringify(info))), /resp3-client/);
      assert.equal(await client.sendCommand(["SELECT", "0"]), "OK");
      await assert.rejects(client.sendCommand(["SELECT", "1"]), /SELECT is not allowed in cluster mode/);
      assert.equal(await client.get("k:3"), "4");
    } finally {
      await client.close().catch(() => {});
      await pusher.close().catch(() => {});
    }
  });

  it("ioredis in RESP2", SLOW, async () => {
    const { port } = await proxy.get();
    const client = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0 });
    const pusher = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await client.connect();
      await pusher.connect();
      await client.flushall();
      await client.xadd("{i}s", "1-1", "f", "v");
      assert.deepEqual(await client.xread("STREAMS", "{i}s", "0"), [["{i}s", [["1-1", ["f", "v"]]]]]);
      await client.lpush("{i}l1", "a");
      assert.deepEqual(await client.lmpop(2, "{i}l0", "{i}l1", "LEFT"), ["{i}l1", ["a"]]);
      await client.sadd("{i}s1", "a", "b");
      await client.sadd("{i}s2", "b", "c");
      assert.equal(await client.sintercard(2, "{i}s1", "{i}s2"), 1);
      await client.mset("i:1", "1", "i:2", "2");
      assert.deepEqual(await client.mget("i:1", "i:2"), ["1", "2"]);
      await client.set("{i}counter", "1");
      await client.watch("{i}counter");
      assert.deepEqual(await client.multi().incr("{i}counter").exec(), [[null, 2]]);
      const popped = client.bzpopmax("{i}zq", 0);
      await sleep(100);
      await pusher.zadd("{i}zq", 3, "top");
      assert.deepEqual(await within(popped, "BZPOPMAX"), ["{i}zq", "top", "3"]);
      // {i}s, {i}s1, {i}s2, i:1, i:2, {i}counter (the popped list and sorted set are gone).
      assert.equal(await client.dbsize(), 6);
      const keys: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const stream = client.scanStream({ count: 2 });
        stream.on("data", (batch: string[]) => keys.push(...batch));
        stream.on("end", resolve);
        stream.on("error", reject);
      });
      assert.equal(new Set(keys).size, 6);
      const sha = await client.script("LOAD", "return KEYS[1]");
      assert.equal(await client.evalsha(sha as string, 1, "i:1"), "i:1");
      assert.equal(await client.call("FUNCTION", "LOAD", "REPLACE", LIBRARY), "clientslib");
      assert.equal(await client.call("FCALL", "getset2", "1", "i:2", "two"), "2");
      assert.match(await client.info("keyspace"), /db0:keys=6,/);
      await client.client("SETNAME", "resp2-client");
      assert.equal(await client.client("GETNAME"), "resp2-client");
      assert.equal(await client.get("i:2"), "two");
    } finally {
      client.disconnect();
      pusher.disconnect();
    }
  });
});
