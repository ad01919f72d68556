/**
 * slotgate in front of a real 3+3 Redis Cluster, used through real clients as a plain
 * single-endpoint Redis: redis-cli, ioredis and node-redis. Runs on Node, Bun and Deno.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp, startProxy } from "../support/proxy.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";

const SLOW = { timeout: 120_000 };
const run = promisify(execFile);
const encoder = new TextEncoder();

describe("slotgate in front of a real cluster", () => {
  const cluster = lazy(() => startLocalCluster());
  const proxy = lazy(async () => startProxy((await cluster.get()).seeds));
  after(async () => {
    await proxy.stop();
    await cluster.stop();
  });

  it("answers redis-cli: PING, SET/GET, split MSET/MGET, CROSSSLOT, unsupported and unknown commands", SLOW, async () => {
    const { port } = await proxy.get();
    const cli = async (...args: string[]) => (await run("redis-cli", ["-p", String(port), ...args])).stdout.trim();
    assert.equal(await cli("PING"), "PONG");
    assert.equal(await cli("SET", "cli:key", "hello world"), "OK");
    assert.equal(await cli("GET", "cli:key"), "hello world");
    assert.equal(await cli("MSET", "cli:a", "1", "cli:b", "2", "cli:c", "3"), "OK");
    assert.equal(await cli("MGET", "cli:a", "cli:b", "cli:missing", "cli:c"), "1\n2\n\n3");
    assert.match(await cli("SUNION", "cli:a", "cli:b"), /^CROSSSLOT Keys in request don't hash to the same slot/);
    assert.equal(await cli("SADD", "{cli}:s1", "x"), "1");
    assert.equal(await cli("SADD", "{cli}:s2", "y"), "1");
    assert.equal((await cli("SUNION", "{cli}:s1", "{cli}:s2")).split("\n").sort().join(","), "x,y");
    assert.equal(await cli("RPUSH", "cli:list", "x"), "1");
    assert.equal(await cli("BLPOP", "cli:list", "0"), "cli:list\nx");
    assert.equal(await cli("LATENCY", "LATEST"), "ERR unsupported command 'LATENCY'");
    const [seconds, micros] = (await cli("TIME")).split("\n").map(Number);
    assert.ok(Math.abs(seconds! - Date.now() / 1000) < 60 && micros! >= 0 && micros! < 1e6, "TIME from a node");
    assert.match(await cli("NOSUCHCOMMAND", "x"), /^ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x'/);
    assert.equal(await cli("GET"), "ERR wrong number of arguments for 'get' command");
    assert.equal(await cli("ECHO", "hi"), "hi");
    assert.equal(await cli("SELECT", "0"), "OK");
    assert.equal(await cli("SELECT", "1"), "ERR SELECT is not allowed in cluster mode");
    assert.equal(await cli("DEL", "cli:a", "cli:b", "cli:c", "cli:missing"), "3");
  });

  it("ioredis: thousands of keys across every primary, pipelined, with the split commands", SLOW, async () => {
    const { port } = await proxy.get();
    const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await client.connect();
      const keys = Array.from({ length: 3000 }, (_, i) => `io:key:${i}`);
      const slots = new Set(keys.map((k) => keySlot(encoder.encode(k))));
      assert.ok(slots.size > 2000, "keys spread over many slots");
      const pipeline = client.pipeline();
      keys.forEach((k, i) => pipeline.set(k, `value-${i}`));
      keys.forEach((k) => pipeline.get(k));
      keys.forEach((k) => pipeline.incr(`${k}:n`));
      const results = (await pipeline.exec())!;
      assert.equal(results.length, keys.length * 3);
      for (let i = 0; i < keys.length; i++) {
        assert.deepEqual(results[i], [null, "OK"]);
        assert.deepEqual(results[keys.length + i], [null, `value-${i}`]);
        assert.deepEqual(results[2 * keys.length + i], [null, 1]);
      }
      const some = keys.slice(0, 200);
      assert.deepEqual(await client.mget(...some, "io:absent"), [...some.map((_, i) => `value-${i}`), null]);
      await client.mset(Object.fromEntries(some.map((k) => [k, `new-${k}`])));
      assert.deepEqual(await client.mget(...some), some.map((k) => `new-${k}`));
      assert.equal(await client.exists(...some, "io:absent", some[0]!), 201);
      assert.equal(await client.touch(...some.slice(0, 50)), 50);
      assert.equal(await client.del(...some.slice(0, 100)), 100);
      assert.equal(await client.unlink(...some.slice(100, 200), "io:absent"), 100);
      assert.equal(await client.exists(...some), 0);
      await client.hset("io:hash", "f", "v");
      // MGET answers nil for a key of another type, as Redis does.
      assert.deepEqual(await client.mget("io:hash", keys[500]!), [null, "value-500"]);
      await assert.rejects(client.get("io:hash"), /WRONGTYPE/);
    } finally {
      client.disconnect();
    }
  });

  it("node-redis: commands of several types and a concurrent burst", SLOW, async () => {
    const { port } = await proxy.get();
    const client = createClient({ url: `redis://127.0.0.1:${port}` });
    client.on("error", () => {});
    await client.connect();
    try {
      assert.equal(await client.ping(), "PONG");
      await client.set("nr:s", "1");
      assert.equal(await client.incrBy("nr:s", 41), 42);
      await client.hSet("nr:h", { a: "1", b: "2" });
      assert.deepEqual({ ...(await client.hGetAll("nr:h")) }, { a: "1", b: "2" });
      await client.rPush("nr:l", ["x", "y", "z"]);
      assert.deepEqual(await client.lRange("nr:l", 0, -1), ["x", "y", "z"]);
      await client.zAdd("nr:z", [{ score: 2, value: "b" }, { score: 1, value: "a" }]);
      assert.deepEqual(await client.zRange("nr:z", 0, -1), ["a", "b"]);
      await client.set("nr:ttl", "v", { PX: 60_000 });
      assert.ok((await client.pTTL("nr:ttl")) > 0, "(await client.pTTL(\"nr:ttl\")) > 0");
      const burst = await Promise.all(Array.from({ length: 2000 }, (_, i) => client.set(`nr:burst:${i}`, String(i))));
      assert.ok(burst.every((r) => r === "OK"), "burst.every((r) => r === \"OK\")");
      const values = await Promise.all(Array.from({ length: 2000 }, (_, i) => client.get(`nr:burst:${i}`)));
      values.forEach((v, i) => assert.equal(v, String(i)));
      assert.equal(await client.del(["nr:s", "nr:h", "nr:l", "nr:z", "nr:ttl"]), 5);
    } finally {
      await client.quit().catch(() => {});
    }
  });

  it("a pipeline of mixed commands to different nodes gets its replies in request order", SLOW, async () => {
    const { port } = await proxy.get();
    const client = await RawClient.connect(port);
    try {
      let batch = "";
      const expected: string[] = [];
      for (let i = 0; i < 500; i++) {
        batch += resp("SET", `order:${i}`, String(i)) + resp("GET", `order:${i}`) + "PING\r\n";
        expected.push("+OK\r\n", `$${String(i).length}\r\n${i}\r\n`, "+PONG\r\n");
      }
      batch += resp("MGET", "order:1", "order:2", "order:3");
      expected.push("*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");
      client.send(batch);
      const want = expected.join("");
      const got = await client.waitFor((text) => text.length >= want.length);
      assert.equal(got, want);
    } finally {
      client.close();
    }
  });

  it("QUIT answers +OK and closes after earlier replies", SLOW, async () => {
    const { port } = await proxy.get();
    const client = await RawClient.connect(port);
    client.send(resp("SET", "quit:k", "v") + resp("GET", "quit:k") + resp("QUIT") + resp("GET", "quit:k"));
    await client.waitClosed();
    assert.equal(client.received.toString(), "+OK\r\n$1\r\nv\r\n+OK\r\n");
  });
});
