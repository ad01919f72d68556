/**
 * MULTI / EXEC / DISCARD / WATCH / UNWATCH through slotgate, in front of a real cluster: Redis's
 * own replies and errors (compared byte for byte with a standalone Redis), the one-slot rule,
 * WATCH conflicts, the client's order across connections, a slot that moves under a transaction,
 * and no connection left behind by a client that leaves mid-transaction.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { startLocalCluster, startStandaloneRedis } from "../../scripts/local-cluster.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { lazy } from "../support/lazy.ts";
import { startProxy } from "../support/proxy.ts";
import { Exchange } from "../support/exchange.ts";
import { until } from "../support/within.ts";

const SLOW = { timeout: 120_000 };
const encoder = new TextEncoder();
const slotOf = (key: string) => keySlot(encoder.encode(key));

describe("transactions through slotgate", () => {
  const cluster = lazy(() => startLocalCluster({ replicasPerPrimary: 0 }));
  const standalone = lazy(() => startStandaloneRedis());
  const proxy = lazy(async () => startProxy((await cluster.get()).seeds));
  after(async () => {
    await proxy.stop();
    await cluster.stop();
    await standalone.stop();
  });

  it("answers every transaction sequence exactly as a single Redis does", SLOW, async () => {
    const sequences: (string | number)[][][] = [
      [["MULTI"], ["SET", "{t1}a", "1"], ["INCR", "{t1}b"], ["GET", "{t1}a"], ["EXEC"]],
      [["MULTI"], ["SET", "{t2}a", "1"], ["FOO", "x"], ["EXEC"], ["GET", "{t2}a"]],
      [["EXEC"], ["DISCARD"], ["MULTI"], ["MULTI"], ["SET", "{t3}a", "x"], ["EXEC"]],
      [["WATCH", "{t4}a"], ["MULTI"], ["WATCH", "{t4}b"], ["SET", "{t4}a", "1"], ["EXEC"]],
      [["MULTI"], ["GET"], ["SET", "{t5}a", "1"], ["EXEC"], ["EXISTS", "{t5}a"]],
      [["MULTI"], ["PING"], ["ECHO", "hi"], ["EXEC"]],
      [["MULTI"], ["EXEC"]],
      [["MULTI"], ["PING"], ["SET", "{t6}a", "v"], ["LPUSH", "{t6}a", "x"], ["GET", "{t6}a"], ["EXEC"]],
      [["MULTI"], ["SET", "{t7}a", "1"], ["DISCARD"], ["GET", "{t7}a"], ["DISCARD"]],
      [["WATCH", "{t8}a", "{t8}b"], ["UNWATCH"], ["UNWATCH"], ["MULTI"], ["UNWATCH"], ["INCR", "{t8}a"], ["EXEC"]],
      [["MULTI"], ["INCR", "{t9}a"], ["BLPOP", "{t9}l", "0"], ["EXEC"]],
      [["WATCH", "{t10}a"], ["MULTI"], ["SET", "{t10}a", "1"], ["RESET"], ["EXEC"], ["GET", "{t10}a"], ["UNWATCH"]],
    ];
    const direct = await Exchange.connect((await standalone.get()).port);
    const through = await Exchange.connect((await proxy.get()).port);
    try {
      for (const sequence of sequences) {
        const expected = [];
        for (const command of sequence) expected.push(...(await direct.send(command)));
        const got = [];
        for (const command of sequence) got.push(...(await through.send(command)));
        assert.deepEqual(got, expected, `replies to ${JSON.stringify(sequence)}`);
        // Pipelined in one write, the same replies.
        const pipelined = await through.send(...sequence.map((c) => c.map((a) => (typeof a === "string" ? a.replace("{t", "{p") : a))));
        const directPipelined = await direct.send(...sequence.map((c) => c.map((a) => (typeof a === "string" ? a.replace("{t", "{p") : a))));
        assert.deepEqual(pipelined, directPipelined, `pipelined replies to ${JSON.stringify(sequence)}`);
      }
    } finally {
      direct.close();
      through.close();
    }
  });

  it("refuses pub/sub inside a transaction (a subscription cannot share the transaction's connection)", SLOW, async () => {
    const client = await Exchange.connect((await proxy.get()).port);
    try {
      assert.deepEqual(await client.send(["MULTI"], ["SET", "{ps}k", "v"], ["SUBSCRIBE", "ch"], ["EXEC"], ["EXISTS", "{ps}k"]), [
        "+OK\r\n",
        "+QUEUED\r\n",
        "-ERR unsupported command 'SUBSCRIBE' inside a transaction\r\n",
        "-EXECABORT Transaction discarded because of previous errors.\r\n",
        ":0\r\n",
      ]);
    } finally {
      client.close();
    }
  });

  it("keeps a transaction to one slot: CROSSSLOT, then EXECABORT, and nothing runs", SLOW, async () => {
    assert.notEqual(slotOf("{x1}k"), slotOf("{x2}k"), "two slots");
    const client = await Exchange.connect((await proxy.get()).port);
    try {
      const replies = await client.send(["MULTI"], ["SET", "{x1}k", "1"], ["SET", "{x2}k", "2"], ["EXEC"], ["MGET", "{x1}k", "{x2}k"]);
      assert.deepEqual(replies, [
        "+OK\r\n",
        "+QUEUED\r\n",
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n",
        "-EXECABORT Transaction discarded because of previous errors.\r\n",
        "*2\r\n$-1\r\n$-1\r\n",
      ]);
      // WATCH on two slots at once, and a queued command across two slots.
      assert.deepEqual(await client.send(["WATCH", "{x1}k", "{x2}k"]), ["-CROSSSLOT Keys in request don't hash to the same slot\r\n"]);
      assert.deepEqual(await client.send(["MULTI"], ["MSET", "{x1}k", "1", "{x2}k", "2"], ["EXEC"]), [
        "+OK\r\n",
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n",
        "-EXECABORT Transaction discarded because of previous errors.\r\n",
      ]);
    } finally {
      client.close();
    }
  });

  it("WATCH: a conflicting write from another client aborts EXEC; no conflict executes", SLOW, async () => {
    const { port } = await proxy.get();
    const a = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0 });
    const b = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await a.connect();
      await b.connect();
      await a.set("{w}balance", "10");
      await a.watch("{w}balance");
      const balance = Number(await a.get("{w}balance"));
      await b.set("{w}balance", "100");
      assert.equal(await a.multi().set("{w}balance", String(balance - 1)).exec(), null, "EXEC aborted by the conflicting write");
      assert.equal(await a.get("{w}balance"), "100");
      await a.watch("{w}balance");
      const now = Number(await a.get("{w}balance"));
      assert.deepEqual(await a.multi().set("{w}balance", String(now - 1)).get("{w}balance").exec(), [
        [null, "OK"],
        [null, "99"],
      ]);
      // Reads of other slots while watching go their usual way.
      await a.watch("{w}balance");
      await a.set("{other}k", "v");
      assert.equal(await a.get("{other}k"), "v");
      assert.deepEqual(await a.multi().incr("{w}balance").exec(), [[null, 100]]);
    } finally {
      a.disconnect();
      b.disconnect();
    }
  });

  it("keeps the client's order across connections: pipelined writes before WATCH do not dirty it", SLOW, async () => {
    const client = await Exchange.connect((await proxy.get()).port);
    try {
      const replies = await client.send(["SET", "{o}k", "1"], ["WATCH", "{o}k"], ["MULTI"], ["INCR", "{o}k"], ["EXEC"], ["INCR", "{o}k"], ["GET", "{o}k"]);
      assert.deepEqual(replies, ["+OK\r\n", "+OK\r\n", "+OK\r\n", "+QUEUED\r\n", "*1\r\n:2\r\n", ":3\r\n", "$1\r\n3\r\n"]);
    } finally {
      client.close();
    }
  });

  it("ioredis and node-redis transactions on keys of every node", SLOW, async () => {
    const { port } = await proxy.get();
    const io = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0 });
    const node = createClient({ url: `redis://127.0.0.1:${port}` });
    node.on("error", () => {});
    try {
      await io.connect();
      await node.connect();
      for (let i = 0; i < 30; i++) {
        const tag = `{tx${i}}`;
        assert.deepEqual(await io.multi().set(`${tag}a`, "1").incrby(`${tag}a`, 5).lpush(`${tag}l`, "x", "y").lrange(`${tag}l`, 0, -1).exec(), [
          [null, "OK"],
          [null, 6],
          [null, 2],
          [null, ["y", "x"]],
        ]);
        const [set, get, hset, hash] = await node.multi().set(`${tag}n`, "v").get(`${tag}n`).hSet(`${tag}h`, "f", "1").hGetAll(`${tag}h`).exec();
        assert.deepEqual([set, get, hset, { ...(hash as object) }], ["OK", "v", 1, { f: "1" }]);
      }
      // A queued command that fails at EXEC time is reported inside EXEC's reply, as Redis does.
      const results = await io.multi().set("{e}k", "v").lpush("{e}k", "x").get("{e}k").exec();
      assert.equal(results![0]![1], "OK");
      assert.match(String(results![1]![0]), /WRONGTYPE/);
      assert.equal(results![2]![1], "v");
    } finally {
      io.disconnect();
      await node.close().catch(() => {});
    }
  });

  it("RESP3 clients (node-redis RESP: 3): transactions, WATCH and blocking commands in RESP3", SLOW, async () => {
    const { port } = await proxy.get();
    const client = createClient({ url: `redis://127.0.0.1:${port}`, RESP: 3 });
    const raw = await Exchange.connect(port);
    client.on("error", () => {});
    try {
      await client.connect();
      const [set, hset, hash, score] = await client.multi().set("{r3}k", "v").hSet("{r3}h", "f", "1").hGetAll("{r3}h").zAdd("{r3}z", { score: 1.5, value: "m" }).exec();
      assert.deepEqual([set, hset, { ...(hash as object) }, score], ["OK", 1, { f: "1" }, 1]);
      await client.rPush("{r3}l", "x");
      assert.deepEqual({ ...(await client.blPop("{r3}l", 1)) }, { key: "{r3}l", element: "x" });
      // The raw bytes: EXEC's array carries RESP3 types, and a timed-out BLPOP is RESP3's null.
      assert.equal((await raw.send(["HELLO", "3"]))[0]![0], "%");
      assert.deepEqual(await raw.send(["MULTI"], ["HGETALL", "{r3}h"], ["ZSCORE", "{r3}z", "m"], ["EXEC"], ["BLPOP", "{r3}empty", "0.1"]), [
        "+OK\r\n",
        "+QUEUED\r\n",
        "+QUEUED\r\n",
        "*2\r\n%1\r\n$1\r\nf\r\n$1\r\n1\r\n,1.5\r\n",
        "_\r\n",
      ]);
    } finally {
      raw.close();
      await client.close().catch(() => {});
    }
  });

  it("a slot that moves under a transaction aborts it with a clear error; the next one runs on the new owner", SLOW, async () => {
    const local = await cluster.get();
    const { port } = await proxy.get();
    const key = "{moving}k";
    const slot = slotOf(key);
    const owner = await local.ownerOfSlot(slot);
    const other = (await local.primaries()).find((n) => n.port !== owner.port)!;
    const client = await Exchange.connect(port);
    try {
      assert.deepEqual(await client.send(["MULTI"], ["SET", key, "1"]), ["+OK\r\n", "+QUEUED\r\n"]);
      await local.migrateSlot(slot, owner.port, other.port);
      const [queued] = await client.send(["SET", key, "2"]);
      assert.match(queued!, new RegExp(`^-ERR transaction aborted: slot ${slot} moved to 127\\.0\\.0\\.1:${other.port} \\(MOVED\\); retry it\\r\\n$`));
      assert.deepEqual(await client.send(["EXEC"]), ["-EXECABORT Transaction discarded because of previous errors.\r\n"]);
      assert.deepEqual(await client.send(["EXISTS", key]), [":0\r\n"], "nothing of the aborted transaction ran");
      assert.deepEqual(await client.send(["MULTI"], ["SET", key, "3"], ["EXEC"], ["GET", key]), ["+OK\r\n", "+QUEUED\r\n", "*1\r\n+OK\r\n", "$1\r\n3\r\n"]);
    } finally {
      client.close();
    }
  });

  it("a client that leaves mid-transaction leaves no connection behind; the budget bounds them", SLOW, async () => {
    const local = await cluster.get();
    const limited = await startProxy(local.seeds, { SLOTGATE_MAX_DEDICATED_CONNECTIONS: "2" });
    const clients: Exchange[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const client = await Exchange.connect(limited.port);
        clients.push(client);
        assert.deepEqual(await client.send(["WATCH", `{leave${i}}k`]), ["+OK\r\n"]);
      }
      assert.equal(limited.app.server.dedicated.open, 2);
      const third = await Exchange.connect(limited.port);
      clients.push(third);
      assert.deepEqual(await third.send(["MULTI"], ["SET", "{leave3}k", "v"], ["EXEC"]), [
        "+OK\r\n",
        "-ERR max number of dedicated upstream connections reached (2)\r\n",
        "-EXECABORT Transaction discarded because of previous errors.\r\n",
      ]);
      for (const client of clients.splice(0)) client.close();
      await until("dedicated connections closed", () => limited.app.server.dedicated.open === 0);
      const again = await Exchange.connect(limited.port);
      clients.push(again);
      assert.deepEqual(await again.send(["MULTI"], ["SET", "{leave3}k", "v"], ["EXEC"]), ["+OK\r\n", "+QUEUED\r\n", "*1\r\n+OK\r\n"]);
      await until("the finished transaction's connection closed", () => limited.app.server.dedicated.open === 0);
    } finally {
      for (const client of clients) client.close();
      await limited.stop();
    }
  });
});
