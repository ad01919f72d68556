/**
 * Blocking commands through slotgate, in front of a real cluster: each one blocks on a connection
 * of the client's own and wakes with the value another client pushes; a blocked client never
 * delays anyone else (even with one shared connection per node); Redis's timeout applies, not
 * `opTimeoutMs`; a client that disconnects cancels its blocked command; the client's order holds;
 * the number of such connections is bounded.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { lazy } from "../support/lazy.ts";
import { startProxy } from "../support/proxy.ts";
import { Exchange } from "../support/exchange.ts";
import { sleep, until, within } from "../support/within.ts";

const SLOW = { timeout: 120_000 };
const encoder = new TextEncoder();
const slotOf = (key: string) => keySlot(encoder.encode(key));

describe("blocking commands through slotgate", () => {
  const cluster = lazy(() => startLocalCluster({ replicasPerPrimary: 1 }));
  // One shared connection per node, and a short op timeout: a blocked command on a shared
  // connection would stall everyone else, and opTimeoutMs would cut it short.
  const proxy = lazy(async () => startProxy((await cluster.get()).seeds, { SLOTGATE_CONNECTIONS_PER_NODE: "1", SLOTGATE_OP_TIMEOUT_MS: "500" }));
  after(async () => {
    await proxy.stop();
    await cluster.stop();
  });

  const connect = async () => {
    const client = new Redis({ port: (await proxy.get()).port, lazyConnect: true, maxRetriesPerRequest: 0, commandTimeout: 30_000 });
    await client.connect();
    return client;
  };

  it("every blocking command wakes with what another client sends, and nobody waits behind it", SLOW, async () => {
    const waiter = await connect();
    const other = await connect();
    try {
      const cases: [string, () => Promise<unknown>, () => Promise<unknown>, unknown][] = [
        ["BLPOP", () => waiter.blpop("{b1}l", 0), () => other.rpush("{b1}l", "a"), ["{b1}l", "a"]],
        ["BRPOP", () => waiter.brpop("{b2}l", 0), () => other.rpush("{b2}l", "a", "b"), ["{b2}l", "b"]],
        ["BLMOVE", () => waiter.blmove("{b3}src", "{b3}dst", "LEFT", "RIGHT", 0), () => other.rpush("{b3}src", "x"), "x"],
        ["BRPOPLPUSH", () => waiter.brpoplpush("{b4}src", "{b4}dst", 0), () => other.rpush("{b4}src", "y"), "y"],
        ["BLMPOP", () => waiter.call("BLMPOP", "0", "2", "{b5}a", "{b5}b", "LEFT"), () => other.rpush("{b5}b", "z"), ["{b5}b", ["z"]]],
        ["BZPOPMIN", () => waiter.bzpopmin("{b6}z", 0), () => other.zadd("{b6}z", 2, "two", 1, "one"), ["{b6}z", "one", "1"]],
        ["BZPOPMAX", () => waiter.bzpopmax("{b7}z", 0), () => other.zadd("{b7}z", 2, "two", 1, "one"), ["{b7}z", "two", "2"]],
        ["BZMPOP", () => waiter.call("BZMPOP", "0", "1", "{b8}z", "MIN"), () => other.zadd("{b8}z", 5, "m"), ["{b8}z", [["m", "5"]]]],
        ["XREAD BLOCK", () => waiter.xread("BLOCK", 0, "STREAMS", "{b9}s", "$"), () => other.xadd("{b9}s", "1-1", "f", "v"), [["{b9}s", [["1-1", ["f", "v"]]]]]],
      ];
      for (const [name, block, wake, expected] of cases) {
        const blocked = block();
        // The shared connection to every node stays free while the command is blocked.
        await sleep(100);
        for (const key of ["{b1}l", "{b5}a", "{b9}s", "free"]) await within(other.exists(key), `${name}: EXISTS while blocked`, 10_000);
        await wake();
        assert.deepEqual(await within(blocked, `${name} to wake`), expected, name);
      }
      await other.xgroup("CREATE", "{b10}s", "g", "$", "MKSTREAM");
      const group = waiter.xreadgroup("GROUP", "g", "c", "BLOCK", 0, "STREAMS", "{b10}s", ">");
      await sleep(100);
      await other.xadd("{b10}s", "5-1", "k", "v");
      assert.deepEqual(await within(group, "XREADGROUP BLOCK to wake"), [["{b10}s", [["5-1", ["k", "v"]]]]]);
    } finally {
      waiter.disconnect();
      other.disconnect();
    }
  });

  it("Redis's timeout applies, not opTimeoutMs; BLPOP on keys of two slots is CROSSSLOT", SLOW, async () => {
    const client = await Exchange.connect((await proxy.get()).port);
    try {
      // 1.5 s is three times the proxy's op timeout: Redis's own timeout answers nil.
      assert.deepEqual(await client.send(["BLPOP", "{t}nothing", "1.5"]), ["*-1\r\n"]);
      assert.deepEqual(await client.send(["XREAD", "BLOCK", "1200", "STREAMS", "{t}stream", "$"]), ["*-1\r\n"]);
      assert.notEqual(slotOf("{s1}l"), slotOf("{s2}l"));
      assert.deepEqual(await client.send(["BLPOP", "{s1}l", "{s2}l", "0"]), ["-CROSSSLOT Keys in request don't hash to the same slot\r\n"]);
      assert.deepEqual(await client.send(["BLPOP", "{s1}l", "notanumber"]), ["-ERR timeout is not a float or out of range\r\n"]);
    } finally {
      client.close();
    }
  });

  it("keeps the client's order: pipelined before and after a blocking command", SLOW, async () => {
    const client = await Exchange.connect((await proxy.get()).port);
    try {
      const replies = await client.send(["DEL", "{o}l"], ["RPUSH", "{o}l", "a", "b"], ["BLPOP", "{o}l", "0"], ["LRANGE", "{o}l", "0", "-1"], ["BLPOP", "{o}l", "0"], ["SET", "{p}k", "v"], ["GET", "{p}k"]);
      assert.deepEqual(replies, [":0\r\n", ":2\r\n", "*2\r\n$4\r\n{o}l\r\n$1\r\na\r\n", "*1\r\n$1\r\nb\r\n", "*2\r\n$4\r\n{o}l\r\n$1\r\nb\r\n", "+OK\r\n", "$1\r\nv\r\n"]);
    } finally {
      client.close();
    }
  });

  it("a client that disconnects cancels its blocked command: the value stays for others", SLOW, async () => {
    const local = await cluster.get();
    const { app, port } = await proxy.get();
    const key = "{cancel}l";
    const owner = await local.ownerOfSlot(slotOf(key));
    const blocked = async () => Number(/blocked_clients:(\d+)/.exec(await local.command(owner.port, "INFO", "clients"))![1]);
    const client = await Exchange.connect(port);
    const pending = client.send(["BLPOP", key, "0"]).catch(() => null);
    await until("the BLPOP blocked on its node", async () => (await blocked()) === 1);
    assert.equal(app.server.dedicated.open, 1);
    client.close();
    await pending;
    await until("the node forgot the blocked command", async () => (await blocked()) === 0);
    await until("the connection was given back", () => app.server.dedicated.open === 0);
    const other = await connect();
    try {
      await other.rpush(key, "kept");
      assert.deepEqual(await other.lrange(key, 0, -1), ["kept"]);
    } finally {
      other.disconnect();
    }
  });

  it("WAIT counts the replicas that have the client's writes", SLOW, async () => {
    const client = await connect();
    try {
      for (let i = 0; i < 5; i++) {
        await client.set(`{wait${i}}k`, "v");
        assert.equal(await client.call("WAIT", "1", "5000"), 1, "one replica acknowledged the write");
      }
      assert.equal(await client.call("WAIT", "2", "200"), 1, "there is one replica per primary");
      // With the key's replica stopped, the write cannot be acknowledged: WAIT times out with 0
      // (a WAIT that did not cover the client's writes would count the stopped replica at once).
      const local = await cluster.get();
      const key = "{waitstop}k";
      const owner = await local.ownerOfSlot(slotOf(key));
      let replica: number | undefined;
      for (const node of await local.replicas()) {
        const role = (await local.reply(node.port, "ROLE")) as unknown[];
        if (Number(role[2]) === owner.port) replica = node.pid;
      }
      assert.ok(replica !== undefined, "the owner has a replica");
      process.kill(replica, "SIGSTOP");
      try {
        await client.set(key, "while-stopped");
        assert.equal(await client.call("WAIT", "1", "300"), 0, "nobody acknowledged the write yet");
      } finally {
        process.kill(replica, "SIGCONT");
      }
      assert.equal(await client.call("WAIT", "1", "10000"), 1, "acknowledged once the replica runs again");
    } finally {
      client.disconnect();
    }
  });

  it("follows a slot that moved to another node while the map was stale", SLOW, async () => {
    const local = await cluster.get();
    const key = "{moved}l";
    const slot = slotOf(key);
    const owner = await local.ownerOfSlot(slot);
    const target = (await local.primaries()).find((n) => n.port !== owner.port)!;
    const waiter = await connect();
    const other = await connect();
    try {
      await local.migrateSlot(slot, owner.port, target.port);
      const blocked = waiter.blpop(key, 0);
      await sleep(200);
      await other.rpush(key, "after-move");
      assert.deepEqual(await within(blocked, "BLPOP after the slot moved"), [key, "after-move"]);
    } finally {
      waiter.disconnect();
      other.disconnect();
    }
  });

  it("replacing the cluster answers a blocked client and a transaction in progress, and frees their connections", SLOW, async () => {
    const local = await cluster.get();
    const live = await startProxy(local.seeds, { SLOTGATE_DRAIN_TIMEOUT_MS: "300" });
    const blocked = await Exchange.connect(live.port);
    const inTransaction = await Exchange.connect(live.port);
    try {
      const waiting = blocked.send(["BLPOP", "{gone}l", "0"]).catch((error: Error) => [error.message]);
      assert.deepEqual(await inTransaction.send(["WATCH", "{gone}k"], ["MULTI"], ["SET", "{gone}k", "v"]), ["+OK\r\n", "+OK\r\n", "+QUEUED\r\n"]);
      await until("both hold a connection of their own", () => live.app.server.dedicated.open === 2);
      const replaced = await live.app.control.putCluster("default", { seeds: local.seeds, refreshIntervalMs: 12_345 });
      assert.equal(replaced.ok, true, `cluster replaced: ${JSON.stringify(replaced)}`);
      assert.deepEqual(await within(waiting, "the blocked client's answer"), ["-ERR cluster 'default' was replaced\r\n"]);
      await until("connections given back", () => live.app.server.dedicated.open === 0);
      const [exec] = await inTransaction.send(["EXEC"]);
      assert.equal(exec, "-EXECABORT Transaction discarded because of previous errors.\r\n");
      // Both clients carry on with the new cluster.
      assert.deepEqual(await blocked.send(["BLPOP", "{gone}l", "0.1"]), ["*-1\r\n"]);
      assert.deepEqual(await inTransaction.send(["MULTI"], ["SET", "{gone}k", "v"], ["EXEC"]), ["+OK\r\n", "+QUEUED\r\n", "*1\r\n+OK\r\n"]);
    } finally {
      blocked.close();
      inTransaction.close();
      await live.stop();
    }
  });

  it("bounds the connections blocked clients hold; node-redis blocking works", SLOW, async () => {
    const local = await cluster.get();
    const limited = await startProxy(local.seeds, { SLOTGATE_MAX_DEDICATED_CONNECTIONS: "1" });
    const first = await Exchange.connect(limited.port);
    const second = await Exchange.connect(limited.port);
    const node = createClient({ url: `redis://127.0.0.1:${limited.port}` });
    node.on("error", () => {});
    try {
      const blocked = first.send(["BLPOP", "{limit}l", "0"]);
      await until("first client blocked", () => limited.app.server.dedicated.open === 1);
      assert.deepEqual(await second.send(["BLPOP", "{limit}l", "0"]), ["-ERR max number of dedicated upstream connections reached (1)\r\n"]);
      assert.deepEqual(await second.send(["RPUSH", "{limit}l", "x"]), [":1\r\n"]);
      assert.deepEqual(await blocked, ["*2\r\n$8\r\n{limit}l\r\n$1\r\nx\r\n"]);
      first.close();
      await until("budget given back", () => limited.app.server.dedicated.open === 0);
      await node.connect();
      const popped = node.blPop("{limit}n", 0);
      await sleep(100);
      await node.duplicate().connect().then(async (pusher) => {
        await pusher.rPush("{limit}n", "from-node-redis");
        await pusher.close();
      });
      assert.deepEqual({ ...(await within(popped, "node-redis BLPOP")) }, { key: "{limit}n", element: "from-node-redis" });
    } finally {
      first.close();
      second.close();
      await node.close().catch(() => {});
      await limited.stop();
    }
  });
});
