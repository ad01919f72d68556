/**
 * Simulated Redis Cluster nodes (test/sim/world/redis-node.ts, redis-cluster.ts): RESP replies and
 * redirections straight from the nodes, then the real proxy (startSlotgate) on the simulator with
 * a simulated client while a slot migrates and a primary fails over. Runs under `npx tsx --test`,
 * `bun test` and `deno test -A`; nothing here uses real time or sockets.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createSimRuntime, type SimRuntime } from "../../adapters/sim/runtime.ts";
import { SimRedisCluster } from "./world/redis-cluster.ts";
import { encodeCommand } from "../../src/resp/encode.ts";
import { ReplyReader } from "../../src/resp/reply-reader.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { startSlotgate } from "../../src/app.ts";
import { validateConfig } from "../../src/config/load.ts";
import type { Conn } from "../../src/runtime.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const CLIENT_HOST = "10.0.0.9";

/** A RESP client on the sim network: pipelined requests, replies kept in arrival order. */
class SimClient {
  readonly replies: string[] = [];
  conn!: Conn;
  closed = false;
  readonly #reader = new ReplyReader((frame) => void this.replies.push(dec.decode(frame)));
  sent = 0;

  static async open(sim: SimRuntime, host: string, port: number): Promise<SimClient> {
    const client = new SimClient();
    const pending = sim.forHost(CLIENT_HOST).connect(
      { host, port },
      { data: (chunk) => client.#reader.push(chunk), drain: () => {}, close: () => void (client.closed = true) },
    );
    let conn: Conn | undefined;
    let failure: unknown;
    pending.then((c) => (conn = c), (e) => (failure = e));
    while (!conn && failure === undefined) await sim.clock.step();
    if (!conn) throw failure;
    client.conn = conn;
    return client;
  }

  send(...args: string[]): void {
    this.sent++;
    this.conn.write(encodeCommand(args));
  }

  /** Send, run the clock until the reply arrives, return it. */
  async call(sim: SimRuntime, ...args: string[]): Promise<string> {
    const want = this.replies.length + 1;
    this.send(...args);
    for (let i = 0; i < 10_000 && this.replies.length < want; i++) await sim.clock.step();
    assert.equal(this.replies.length, want, `a reply to ${args.join(" ")}`);
    return this.replies[want - 1]!;
  }
}

/** A key of `slot`-owner `want`, found deterministically by name. */
function keyOwnedBy(cluster: SimRedisCluster, want: string, prefix = "k"): string {
  for (let i = 0; ; i++) if (cluster.ownerOf(`${prefix}${i}`).id === want) return `${prefix}${i}`;
}

describe("simulated Redis Cluster nodes", () => {
  it("answer PING, ECHO, SET/GET, INCR, DEL/EXISTS, CLUSTER KEYSLOT/SLOTS and unknown commands", async () => {
    const sim = createSimRuntime({ seed: 1 });
    const cluster = await SimRedisCluster.create(sim, { primaries: 3 });
    const key = keyOwnedBy(cluster, "node-0");
    const c = await SimClient.open(sim, cluster.node("node-0").host, 6379);
    assert.equal(await c.call(sim, "PING"), "+PONG\r\n");
    assert.equal(await c.call(sim, "ECHO", "hi"), "$2\r\nhi\r\n");
    assert.equal(await c.call(sim, "SET", key, "v1"), "+OK\r\n");
    assert.equal(await c.call(sim, "GET", key), "$2\r\nv1\r\n");
    assert.equal(await c.call(sim, "INCR", key), "-ERR value is not an integer or out of range\r\n");
    assert.equal(await c.call(sim, "INCR", `{${key}}n`), ":1\r\n");
    assert.equal(await c.call(sim, "EXISTS", key, key), ":2\r\n");
    assert.equal(await c.call(sim, "DEL", key), ":1\r\n");
    assert.equal(await c.call(sim, "GET", key), "$-1\r\n");
    assert.equal(await c.call(sim, "CLUSTER", "KEYSLOT", "foo"), `:${keySlot(enc.encode("foo"))}\r\n`);
    assert.equal(await c.call(sim, "CLUSTER", "KEYSLOT", "foo"), ":12182\r\n");
    const slots = await c.call(sim, "CLUSTER", "SLOTS");
    assert.ok(slots.startsWith("*3\r\n*3\r\n:0\r\n:5460\r\n*3\r\n$8\r\n10.0.1.1\r\n:6379\r\n$6\r\nnode-0\r\n"), `CLUSTER SLOTS: ${JSON.stringify(slots)}`);
    assert.equal(await c.call(sim, "FLUSHALL"), "-ERR unknown command 'FLUSHALL', with args beginning with: \r\n");
    assert.equal(await c.call(sim, "MSET", `{${key}}a`, "1", `{${key}}b`, "2"), "+OK\r\n");
    assert.equal(await c.call(sim, "MGET", `{${key}}a`, `{${key}}b`, `{${key}}c`), "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n");
    assert.equal(dec.decode(cluster.valueOf(`{${key}}b`)!), "2", "the oracle sees the write");
  });

  it("redirect: MOVED from a non-owner, CROSSSLOT across slots, CLUSTERDOWN for an unserved slot", async () => {
    const sim = createSimRuntime({ seed: 2 });
    const cluster = await SimRedisCluster.create(sim, { primaries: 3 });
    const key = keyOwnedBy(cluster, "node-1");
    const slot = keySlot(enc.encode(key));
    const c = await SimClient.open(sim, cluster.node("node-0").host, 6379);
    assert.equal(await c.call(sim, "GET", key), `-MOVED ${slot} 10.0.1.2:6379\r\n`);
    assert.equal(await c.call(sim, "SET", key, "x"), `-MOVED ${slot} 10.0.1.2:6379\r\n`);
    assert.equal(await c.call(sim, "MGET", "a", "b"), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    assert.equal(await c.call(sim, "MSET", "a", "1", "b", "2"), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    cluster.state.owner[slot] = null;
    assert.equal(await c.call(sim, "GET", key), "-CLUSTERDOWN Hash slot not served\r\n");
  });

  it("migration: ASK from the source for a moved key, ASKING+command at the target, then MOVED", async () => {
    const sim = createSimRuntime({ seed: 3 });
    const cluster = await SimRedisCluster.create(sim, { primaries: 3 });
    const a = keyOwnedBy(cluster, "node-0");
    const slot = keySlot(enc.encode(a));
    const b = `{${a}}b`;
    const src = await SimClient.open(sim, "10.0.1.1", 6379);
    const dst = await SimClient.open(sim, "10.0.1.3", 6379);
    await src.call(sim, "SET", a, "va");
    await src.call(sim, "SET", b, "vb");
    const m = cluster.migrateSlot(slot, "node-2", { batchSize: 1 });
    assert.throws(() => cluster.migrateSlot(slot, "node-1"), /already migrating/, "a second migration of the slot, even before the first starts");
    m.step(); // MIGRATING / IMPORTING
    assert.equal(await src.call(sim, "GET", a), "$2\r\nva\r\n", "the source serves keys it still has");
    assert.equal(await dst.call(sim, "GET", a), `-MOVED ${slot} 10.0.1.1:6379\r\n`, "the target without ASKING: MOVED to the owner");
    m.step(); // moves a (keys sorted by name)
    assert.equal(await src.call(sim, "GET", a), `-ASK ${slot} 10.0.1.3:6379\r\n`);
    assert.equal(await src.call(sim, "MGET", a, b), "-TRYAGAIN Multiple keys request during rehashing of slot\r\n");
    assert.equal(await dst.call(sim, "ASKING"), "+OK\r\n");
    assert.equal(await dst.call(sim, "GET", a), "$2\r\nva\r\n", "ASKING + GET served at the target");
    assert.equal(await dst.call(sim, "GET", a), `-MOVED ${slot} 10.0.1.1:6379\r\n`, "ASKING covers one command only");
    assert.equal(await dst.call(sim, "ASKING"), "+OK\r\n");
    assert.equal(await dst.call(sim, "MGET", a, b), "-TRYAGAIN Multiple keys request during rehashing of slot\r\n");
    assert.equal(dec.decode(cluster.valueOf(a)!), "va", "oracle: moved key");
    assert.equal(dec.decode(cluster.valueOf(b)!), "vb", "oracle: not yet moved key");
    m.finish();
    assert.ok(m.done, "migration done");
    assert.equal(await src.call(sim, "GET", b), `-MOVED ${slot} 10.0.1.3:6379\r\n`);
    assert.equal(await dst.call(sim, "MGET", a, b), "*2\r\n$2\r\nva\r\n$2\r\nvb\r\n");
  });

  it("failover promotes the replica; kill refuses connects and resets open ones; restart listens again", async () => {
    const sim = createSimRuntime({ seed: 4 });
    const cluster = await SimRedisCluster.create(sim, { primaries: 3, replicasPerPrimary: 1 });
    const key = keyOwnedBy(cluster, "node-0");
    const slot = keySlot(enc.encode(key));
    const p = await SimClient.open(sim, "10.0.1.1", 6379);
    await p.call(sim, "SET", key, "v");
    assert.equal(dec.decode(cluster.node("node-3").data.get(key)!), "v", "synchronous replication");
    const r = await SimClient.open(sim, "10.0.1.4", 6379);
    assert.equal(await r.call(sim, "GET", key), `-MOVED ${slot} 10.0.1.1:6379\r\n`, "a replica redirects");
    await r.call(sim, "READONLY");
    assert.equal(await r.call(sim, "GET", key), "$1\r\nv\r\n", "READONLY replica serves reads");
    cluster.failover("node-0");
    await sim.clock.advance(10);
    assert.ok(p.closed, "the old primary's connection was reset");
    assert.equal(await r.call(sim, "GET", key), "$1\r\nv\r\n", "the promoted replica serves the slot");
    await assert.rejects(SimClient.open(sim, "10.0.1.1", 6379), (e: unknown) => (e as { code?: string }).code === "ECONNREFUSED");
    await cluster.restart("node-0");
    const again = await SimClient.open(sim, "10.0.1.1", 6379);
    assert.equal(await again.call(sim, "PING"), "+PONG\r\n");
  });
});

describe("simulated Redis Cluster nodes: transactions, BLPOP, pub/sub", () => {
  it("MULTI queues and EXEC runs the queue; a touched WATCH makes EXEC nil; a refused queued command makes it EXECABORT", async () => {
    const sim = createSimRuntime({ seed: 5 });
    const cluster = await SimRedisCluster.create(sim, { primaries: 3 });
    const key = keyOwnedBy(cluster, "node-0");
    const elsewhere = keyOwnedBy(cluster, "node-1");
    const c = await SimClient.open(sim, "10.0.1.1", 6379);
    const other = await SimClient.open(sim, "10.0.1.1", 6379);
    assert.equal(await c.call(sim, "EXEC"), "-ERR EXEC without MULTI\r\n");
    assert.equal(await c.call(sim, "DISCARD"), "-ERR DISCARD without MULTI\r\n");
    assert.equal(await c.call(sim, "WATCH", key), "+OK\r\n");
    assert.equal(await c.call(sim, "MULTI"), "+OK\r\n");
    assert.equal(await c.call(sim, "MULTI"), "-ERR MULTI calls can not be nested\r\n");
    assert.equal(await c.call(sim, "WATCH", key), "-ERR WATCH inside MULTI is not allowed\r\n");
    assert.equal(await c.call(sim, "INCR", key), "+QUEUED\r\n");
    assert.equal(await c.call(sim, "GET", key), "+QUEUED\r\n");
    assert.equal(await other.call(sim, "GET", key), "$-1\r\n", "queued commands have not run");
    assert.equal(await c.call(sim, "EXEC"), "*2\r\n:1\r\n$1\r\n1\r\n");

    assert.equal(await c.call(sim, "WATCH", key), "+OK\r\n");
    assert.equal(await other.call(sim, "INCR", key), ":2\r\n");
    assert.equal(await c.call(sim, "MULTI"), "+OK\r\n");
    assert.equal(await c.call(sim, "INCR", key), "+QUEUED\r\n");
    assert.equal(await c.call(sim, "EXEC"), "*-1\r\n", "a watched key written by another client");
    assert.equal(await c.call(sim, "GET", key), "$1\r\n2\r\n", "the transaction did not run");

    assert.equal(await c.call(sim, "WATCH", key), "+OK\r\n");
    assert.equal(await c.call(sim, "UNWATCH"), "+OK\r\n");
    await other.call(sim, "INCR", key);
    assert.equal(await c.call(sim, "MULTI"), "+OK\r\n");
    assert.equal(await c.call(sim, "INCR", key), "+QUEUED\r\n");
    assert.equal(await c.call(sim, "EXEC"), "*1\r\n:4\r\n", "UNWATCH forgot the key");

    assert.equal(await c.call(sim, "MULTI"), "+OK\r\n");
    assert.equal(await c.call(sim, "GET", elsewhere), `-MOVED ${keySlot(enc.encode(elsewhere))} 10.0.1.2:6379\r\n`);
    assert.equal(await c.call(sim, "NOSUCH"), "-ERR unknown command 'NOSUCH', with args beginning with: \r\n");
    assert.equal(await c.call(sim, "INCR", key), "+QUEUED\r\n");
    assert.equal(await c.call(sim, "EXEC"), "-EXECABORT Transaction discarded because of previous errors.\r\n");
    assert.equal(await c.call(sim, "GET", key), "$1\r\n4\r\n", "nothing of it ran");
    assert.equal(await c.call(sim, "MULTI"), "+OK\r\n");
    assert.equal(await c.call(sim, "DISCARD"), "+OK\r\n");
    assert.equal(await c.call(sim, "EXEC"), "-ERR EXEC without MULTI\r\n");
  });

  it("a slot moving mid-transaction: a watched key migrated away makes EXEC nil; EXEC of keys whose slot moved answers MOVED; queued commands get ASK", async () => {
    const sim = createSimRuntime({ seed: 6 });
    const cluster = await SimRedisCluster.create(sim, { primaries: 3 });
    const key = keyOwnedBy(cluster, "node-0");
    const slot = keySlot(enc.encode(key));
    const c = await SimClient.open(sim, "10.0.1.1", 6379);
    await c.call(sim, "SET", key, "1");
    await c.call(sim, "SET", `{${key}}z`, "1");
    assert.equal(await c.call(sim, "WATCH", key), "+OK\r\n");
    const m = cluster.migrateSlot(slot, "node-2");
    m.step(); // MIGRATING / IMPORTING
    assert.equal(await c.call(sim, "MULTI"), "+OK\r\n");
    assert.equal(await c.call(sim, "INCR", key), "+QUEUED\r\n", "the key is still here");
    m.step(); // moves `key` (names sort before `{key}z`)
    assert.equal(await c.call(sim, "EXEC"), `-ASK ${slot} 10.0.1.3:6379\r\n`, "EXEC is checked against the rules again");
    assert.equal(await c.call(sim, "MULTI"), "+OK\r\n", "the transaction was discarded");
    assert.equal(await c.call(sim, "INCR", key), `-ASK ${slot} 10.0.1.3:6379\r\n`);
    assert.equal(await c.call(sim, "EXEC"), "-EXECABORT Transaction discarded because of previous errors.\r\n");
    assert.equal(await c.call(sim, "WATCH", `{${key}}z`), "+OK\r\n");
    assert.equal(await c.call(sim, "MULTI"), "+OK\r\n");
    assert.equal(await c.call(sim, "GET", `{${key}}z`), "+QUEUED\r\n");
    m.step(); // moves `{key}z`: the watched key was touched
    m.step(); // the slot is handed over
    assert.ok(m.done);
    assert.equal(await c.call(sim, "EXEC"), `-MOVED ${slot} 10.0.1.3:6379\r\n`, "the slot moved: EXEC is redirected");
    const t = await SimClient.open(sim, "10.0.1.3", 6379);
    assert.equal(await t.call(sim, "WATCH", key), "+OK\r\n");
    assert.equal(await t.call(sim, "MULTI"), "+OK\r\n");
    assert.equal(await t.call(sim, "INCR", key), "+QUEUED\r\n");
    cluster.node("node-2").write(key, enc.encode("7"));
    assert.equal(await t.call(sim, "EXEC"), "*-1\r\n", "a watched key rewritten (as by a migration) makes EXEC nil");
  });

  it("BLPOP pops at once, or blocks until a push (answered after the pusher), times out with a nil array, runs later commands once unblocked", async () => {
    const sim = createSimRuntime({ seed: 7 });
    const cluster = await SimRedisCluster.create(sim, { primaries: 3 });
    const list = keyOwnedBy(cluster, "node-0", "list");
    const waiter = await SimClient.open(sim, "10.0.1.1", 6379);
    const pusher = await SimClient.open(sim, "10.0.1.1", 6379);
    assert.equal(await pusher.call(sim, "RPUSH", list, "a"), ":1\r\n");
    assert.equal(await waiter.call(sim, "BLPOP", list, "0"), `*2\r\n$${list.length}\r\n${list}\r\n$1\r\na\r\n`);
    waiter.send("BLPOP", list, "0");
    waiter.send("PING");
    await sim.clock.advance(50);
    assert.equal(waiter.replies.length, 1, "blocked, and PING waits behind it");
    assert.equal(cluster.node("node-0").blockedClients, 1);
    assert.equal(await pusher.call(sim, "RPUSH", list, "b", "c"), ":2\r\n", "the push counts what it pushed");
    await sim.clock.advance(5);
    assert.deepEqual(waiter.replies.slice(1), [`*2\r\n$${list.length}\r\n${list}\r\n$1\r\nb\r\n`, "+PONG\r\n"]);
    assert.equal(await pusher.call(sim, "LRANGE", list, "0", "-1"), "*1\r\n$1\r\nc\r\n");
    const t0 = sim.clock.now();
    assert.equal(await waiter.call(sim, "BLPOP", `{${list}}empty`, "0.1"), "*-1\r\n");
    assert.ok(sim.clock.now() - t0 >= 100, "after the timeout");
    assert.equal(await waiter.call(sim, "BLPOP", list, "x"), "-ERR timeout is not a float or out of range\r\n");
    assert.equal(await waiter.call(sim, "BLPOP", list, "-1"), "-ERR timeout is negative\r\n");
    await pusher.call(sim, "SET", `{${list}}s`, "v");
    assert.equal(await waiter.call(sim, "BLPOP", `{${list}}s`, "0"), "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    assert.equal(await waiter.call(sim, "GET", list), "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    assert.equal(await waiter.call(sim, "MULTI"), "+OK\r\n");
    assert.equal(await waiter.call(sim, "BLPOP", `{${list}}empty`, "0"), "+QUEUED\r\n");
    assert.equal(await waiter.call(sim, "EXEC"), "*1\r\n*-1\r\n", "inside a transaction BLPOP does not block");
    assert.equal(cluster.node("node-0").blockedClients, 0);
  });

  it("a blocked client is redirected when its slot moves, and unblocked when its node becomes a replica", async () => {
    const sim = createSimRuntime({ seed: 8 });
    const cluster = await SimRedisCluster.create(sim, { primaries: 3, replicasPerPrimary: 1 });
    const list = keyOwnedBy(cluster, "node-0", "list");
    const slot = keySlot(enc.encode(list));
    const moved = await SimClient.open(sim, "10.0.1.1", 6379);
    moved.send("BLPOP", list, "0");
    await sim.clock.advance(5);
    cluster.migrateSlot(slot, "node-1").finish();
    await sim.clock.advance(5);
    assert.deepEqual(moved.replies, [`-MOVED ${slot} 10.0.1.2:6379\r\n`]);
    const other = keyOwnedBy(cluster, "node-2", "list");
    const demoted = await SimClient.open(sim, "10.0.1.3", 6379);
    demoted.send("BLPOP", other, "0");
    await sim.clock.advance(5);
    cluster.failover("node-2", { oldPrimary: "demote" });
    await sim.clock.advance(5);
    assert.deepEqual(demoted.replies, ["-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)\r\n"]);
    assert.equal(await demoted.call(sim, "PING"), "+PONG\r\n");
  });

  it("pub/sub: a PUBLISH on any node reaches subscribers on every node; subscribed mode allows only pub/sub and PING; a shard channel is dropped when its slot moves", async () => {
    const sim = createSimRuntime({ seed: 9 });
    const cluster = await SimRedisCluster.create(sim, { primaries: 3 });
    const sub = await SimClient.open(sim, "10.0.1.2", 6379);
    const pub = await SimClient.open(sim, "10.0.1.1", 6379);
    sub.send("SUBSCRIBE", "news", "more");
    await sim.clock.advance(5);
    assert.deepEqual(sub.replies, ["*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n", "*3\r\n$9\r\nsubscribe\r\n$4\r\nmore\r\n:2\r\n"], "one confirmation per channel");
    assert.equal(await pub.call(sim, "PUBLISH", "news", "hello"), ":0\r\n", "the count is the publishing node's");
    await sim.clock.advance(5);
    assert.equal(sub.replies[2], "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
    assert.equal(await sub.call(sim, "PUBLISH", "news", "x"), "-ERR Can't execute 'publish': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n");
    const local = await SimClient.open(sim, "10.0.1.2", 6379);
    assert.equal(await local.call(sim, "PUBLISH", "news", "again"), ":1\r\n");
    await sim.clock.advance(5);
    assert.equal(sub.replies.at(-1), "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nagain\r\n");
    assert.equal(await sub.call(sim, "GET", "x"), "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n");
    assert.equal(await sub.call(sim, "PING"), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    assert.equal(await sub.call(sim, "UNSUBSCRIBE", "more"), "*3\r\n$11\r\nunsubscribe\r\n$4\r\nmore\r\n:1\r\n");
    assert.equal(await sub.call(sim, "UNSUBSCRIBE"), "*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:0\r\n");
    assert.equal(await sub.call(sim, "UNSUBSCRIBE"), "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
    assert.equal(await sub.call(sim, "GET", "x"), `-MOVED ${keySlot(enc.encode("x"))} 10.0.1.3:6379\r\n`, "out of subscribed mode");

    const channel = keyOwnedBy(cluster, "node-1", "ch");
    const slot = keySlot(enc.encode(channel));
    assert.equal(await pub.call(sim, "SSUBSCRIBE", channel), `-MOVED ${slot} 10.0.1.2:6379\r\n`);
    assert.equal(await sub.call(sim, "SSUBSCRIBE", channel), `*3\r\n$10\r\nssubscribe\r\n$${channel.length}\r\n${channel}\r\n:1\r\n`);
    assert.equal(await sub.call(sim, "SPUBLISH", channel, "m1"), "-ERR Can't execute 'spublish': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n");
    const pub2 = await SimClient.open(sim, "10.0.1.2", 6379);
    assert.equal(await pub2.call(sim, "SPUBLISH", channel, "m1"), ":1\r\n");
    await sim.clock.advance(5);
    assert.equal(sub.replies.at(-1), `*3\r\n$8\r\nsmessage\r\n$${channel.length}\r\n${channel}\r\n$2\r\nm1\r\n`);
    cluster.migrateSlot(slot, "node-0").finish();
    await sim.clock.advance(5);
    assert.equal(sub.replies.at(-1), `*3\r\n$12\r\nsunsubscribe\r\n$${channel.length}\r\n${channel}\r\n:0\r\n`, "dropped by the node");
  });

  it("PSUBSCRIBE: glob patterns counted with channels; pmessage per matching pattern, never for SPUBLISH; PUNSUBSCRIBE", async () => {
    const sim = createSimRuntime({ seed: 9 });
    const cluster = await SimRedisCluster.create(sim, { primaries: 3 });
    const sub = await SimClient.open(sim, "10.0.1.2", 6379);
    const pub = await SimClient.open(sim, "10.0.1.1", 6379);
    assert.equal(await sub.call(sim, "SUBSCRIBE", "news"), "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
    sub.send("PSUBSCRIBE", "n?ws", "b:[a-m]*", "x\\*");
    await sim.clock.advance(5);
    assert.deepEqual(sub.replies.slice(1), [
      "*3\r\n$10\r\npsubscribe\r\n$4\r\nn?ws\r\n:2\r\n",
      "*3\r\n$10\r\npsubscribe\r\n$8\r\nb:[a-m]*\r\n:3\r\n",
      "*3\r\n$10\r\npsubscribe\r\n$3\r\nx\\*\r\n:4\r\n",
    ]);
    assert.equal(await pub.call(sim, "PUBLISH", "news", "one"), ":0\r\n");
    await sim.clock.advance(5);
    assert.deepEqual(sub.replies.slice(4), ["*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$3\r\none\r\n", "*4\r\n$8\r\npmessage\r\n$4\r\nn?ws\r\n$4\r\nnews\r\n$3\r\none\r\n"]);
    const local = await SimClient.open(sim, "10.0.1.2", 6379);
    assert.equal(await local.call(sim, "PUBLISH", "b:dog", "two"), ":1\r\n");
    assert.equal(await local.call(sim, "PUBLISH", "b:zebra", "no"), ":0\r\n");
    assert.equal(await local.call(sim, "PUBLISH", "x*", "three"), ":1\r\n");
    assert.equal(await local.call(sim, "PUBLISH", "xy", "no"), ":0\r\n");
    const channel = keyOwnedBy(cluster, "node-1", "n");
    assert.equal(await local.call(sim, "SPUBLISH", channel, "no"), ":0\r\n", "shard messages match no pattern");
    await sim.clock.advance(5);
    assert.deepEqual(sub.replies.slice(6), ["*4\r\n$8\r\npmessage\r\n$8\r\nb:[a-m]*\r\n$5\r\nb:dog\r\n$3\r\ntwo\r\n", "*4\r\n$8\r\npmessage\r\n$3\r\nx\\*\r\n$2\r\nx*\r\n$5\r\nthree\r\n"]);
    assert.equal(await sub.call(sim, "PUNSUBSCRIBE", "n?ws"), "*3\r\n$12\r\npunsubscribe\r\n$4\r\nn?ws\r\n:3\r\n");
    assert.equal(await sub.call(sim, "UNSUBSCRIBE"), "*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:2\r\n");
    assert.equal(await sub.call(sim, "PING"), "*2\r\n$4\r\npong\r\n$0\r\n\r\n", "patterns keep the subscribed context");
  });

  it("HELLO 3: a map, then nils as _, pub/sub frames as pushes, any command while subscribed; HELLO 2 goes back", async () => {
    const sim = createSimRuntime({ seed: 9 });
    const cluster = await SimRedisCluster.create(sim, { primaries: 3 });
    const key = keyOwnedBy(cluster, "node-0");
    const c = await SimClient.open(sim, "10.0.1.1", 6379);
    assert.equal(await c.call(sim, "HELLO", "4"), "-NOPROTO unsupported protocol version\r\n");
    const hello = await c.call(sim, "HELLO", "3");
    assert.ok(hello.startsWith("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n") && hello.includes("$5\r\nproto\r\n:3\r\n"), hello);
    assert.equal(await c.call(sim, "GET", key), "_\r\n");
    assert.equal(await c.call(sim, "MGET", key, key), "*2\r\n_\r\n_\r\n");
    assert.equal(await c.call(sim, "BLPOP", `{${key}}q`, "0.01"), "_\r\n");
    assert.equal(await c.call(sim, "SUBSCRIBE", "news"), ">3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
    assert.equal(await c.call(sim, "PING"), "+PONG\r\n");
    c.send("PUBLISH", "news", "hi");
    await sim.clock.advance(5);
    assert.deepEqual(c.replies.slice(-2), [">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n", ":1\r\n"], "its own message first, as Redis writes it");
    assert.equal(await c.call(sim, "UNSUBSCRIBE"), ">3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:0\r\n");
    assert.equal(await c.call(sim, "UNSUBSCRIBE"), ">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n");
    assert.ok((await c.call(sim, "HELLO", "2")).startsWith("*14\r\n"));
    assert.equal(await c.call(sim, "GET", key), "$-1\r\n");
  });

  it("WAIT: the live replicas at once when enough, else at the timeout; refused on a replica; UNBLOCKED when demoted", async () => {
    const sim = createSimRuntime({ seed: 9 });
    const cluster = await SimRedisCluster.create(sim, { primaries: 3, replicasPerPrimary: 1 });
    const key = keyOwnedBy(cluster, "node-0");
    const c = await SimClient.open(sim, "10.0.1.1", 6379);
    assert.equal(await c.call(sim, "SET", key, "v"), "+OK\r\n");
    assert.equal(await c.call(sim, "WAIT", "0", "0"), ":1\r\n");
    assert.equal(await c.call(sim, "WAIT", "1", "0"), ":1\r\n");
    const t0 = sim.clock.now();
    assert.equal(await c.call(sim, "WAIT", "2", "50"), ":1\r\n");
    assert.ok(sim.clock.now() - t0 >= 50, "answered at its timeout");
    const replica = cluster.node("node-0").replicas()[0]!;
    const r = await SimClient.open(sim, replica.host, 6379);
    assert.match(await r.call(sim, "WAIT", "0", "0"), /^-ERR WAIT cannot be used with replica instances/);
    c.send("WAIT", "2", "0");
    await sim.clock.advance(20);
    assert.equal(c.replies.length, 4, "still blocked");
    cluster.failover("node-0", { oldPrimary: "demote" });
    await sim.clock.advance(5);
    assert.match(c.replies.at(-1)!, /^-UNBLOCKED /);
    const touch = "redis.call('SET', KEYS[1], '1') redis.call('DEL', KEYS[1]) return 1";
    const p = await SimClient.open(sim, replica.host, 6379);
    assert.equal(await p.call(sim, "EVAL", touch, "1", `{${key}}w`), ":1\r\n", "slotgate's WAIT touch runs");
    assert.equal(await p.call(sim, "EXISTS", `{${key}}w`), ":0\r\n", "and leaves nothing behind");
    assert.equal(await p.call(sim, "GET", key), "$1\r\nv\r\n", "nor touches another key");
  });
});

interface RunResult {
  trace: string;
  gets: number;
  errors: string[];
  ask: number;
  moved: number;
}

/**
 * The proxy on the simulator: a client writes and reads many keys while slot `hot` migrates and
 * node-1 fails over (its old primary demoted to a replica, so it answers MOVED; `kill` instead
 * makes the in-flight requests fail).
 */
async function proxyScenario(seed: number, oldPrimary: "demote" | "kill"): Promise<RunResult> {
  const sim = createSimRuntime({ seed });
  const cluster = await SimRedisCluster.create(sim, { primaries: 3, replicasPerPrimary: 1 });
  const config = validateConfig({
    clusters: { sim: { seeds: cluster.seeds.slice(0, 2), refreshIntervalMs: 1000, redirectRefreshIntervalMs: 100 } },
    catchAll: "sim",
    listen: "127.0.0.1:0",
    admin: { listen: "off" },
    logLevel: "silent",
  });
  const app = await startSlotgate(sim, config);
  let ready = false;
  void app.ready().then(() => (ready = true));
  while (!ready) await sim.clock.step();
  const client = await SimClient.open(sim, "127.0.0.1", app.port);
  const rnd = sim.random.stream.fork("client");

  // Keys: half in one hot slot (hash tag), the rest spread.
  const hotKey = keyOwnedBy(cluster, "node-0", "hot");
  const hot = keySlot(enc.encode(hotKey));
  const keys = [...Array.from({ length: 20 }, (_, i) => `{${hotKey}}${i}`), ...Array.from({ length: 20 }, (_, i) => `key:${i}`)];
  const written = new Map<string, Set<string>>(keys.map((k) => [k, new Set<string>()]));
  const expect: { op: "SET" | "GET"; key: string; value?: string }[] = [];
  const send = (op: "SET" | "GET", key: string) => {
    if (op === "SET") {
      const value = `v${expect.length}`;
      written.get(key)!.add(value);
      expect.push({ op, key, value });
      client.send("SET", key, value);
    } else {
      expect.push({ op, key });
      client.send("GET", key);
    }
  };
  for (const k of keys) send("SET", k);

  const migration = cluster.migrateSlot(hot, "node-2", { batchSize: 3 });
  migration.schedule(sim, 7);
  sim.setTimer(40, () => void cluster.failover("node-1", { oldPrimary }));
  for (let t = 0; t < 150; t++) {
    for (let n = rnd.int(4); n >= 0; n--) send(rnd.chance(0.4) ? "SET" : "GET", rnd.pick(keys));
    await sim.clock.advance(1);
  }
  for (let i = 0; i < 100_000 && client.replies.length < client.sent; i++) await sim.clock.step();
  assert.ok(migration.done, `the migration finished (stage ${migration.stage})`);

  // Every request got exactly one reply, in order.
  assert.equal(client.replies.length, expect.length, "one reply per request");
  const errors: string[] = [];
  let gets = 0;
  expect.forEach((req, i) => {
    const reply = client.replies[i]!;
    if (reply.startsWith("-")) {
      errors.push(`${req.op} ${req.key}: ${reply.trim()}`);
      assert.ok(oldPrimary === "kill" && /^-ERR /.test(reply) && !/MOVED|ASK|CROSSSLOT/.test(reply), `request ${i} (${req.op} ${req.key}) failed: ${reply.trim()}`);
      return;
    }
    if (req.op === "SET") assert.equal(reply, "+OK\r\n", `SET ${req.key}`);
    else {
      gets++;
      const m = /^\$(\d+)\r\n(.*)\r\n$/s.exec(reply);
      assert.ok(m, `GET ${req.key} returned a value (${JSON.stringify(reply)})`);
      assert.ok(written.get(req.key)!.has(m[2]!), `GET ${req.key} = ${m[2]} was written by some SET`);
    }
  });
  for (const k of keys) {
    const value = cluster.valueOf(k);
    assert.ok(value && written.get(k)!.has(dec.decode(value)), `the oracle's ${k} was written by some SET`);
  }
  // After the dust settles, the proxy reads what the oracle holds.
  for (const k of keys) {
    const reply = await client.call(sim, "GET", k);
    assert.equal(reply, `$${cluster.valueOf(k)!.length}\r\n${dec.decode(cluster.valueOf(k)!)}\r\n`, `GET ${k} after the run`);
  }
  const { ask, moved } = app.cluster.stats;
  client.conn.end();
  let closed = false;
  void app.close().then(() => (closed = true));
  for (let i = 0; i < 100_000 && !closed; i++) await sim.clock.step();
  assert.ok(closed, "the app closed");
  assert.equal(app.scope.liveCount(), 0, "no live resources in the app's scope");
  await sim.clock.runUntilIdle({ maxSteps: 100_000 });
  assert.equal(sim.clock.pendingTimers(), 0, "no pending timers on the sim clock");
  sim.checkpoint("end");
  // The network trace (connects, resets, closes, nodes and migration events) plus every reply byte.
  return { trace: `${sim.trace.join("\n")}\n${client.replies.join("")}`, gets, errors, ask, moved };
}

describe("slotgate on the simulated cluster", () => {
  it("migration + failover (old primary demoted): exactly one ordered reply each, ASK and MOVED followed, no errors", async () => {
    const r = await proxyScenario(7, "demote");
    assert.ok(r.ask > 0, `ASK redirects were followed (${r.ask})`);
    assert.ok(r.moved > 0, `MOVED redirects were followed (${r.moved})`);
    assert.ok(r.gets > 100, `many GETs checked (${r.gets})`);
    assert.deepEqual(r.errors, [], "no errors");
  });

  it("migration + failover (old primary killed): in-flight failures are proxy errors only", async () => {
    const r = await proxyScenario(8, "kill");
    assert.ok(r.ask > 0, `ASK redirects were followed (${r.ask})`);
    assert.ok(r.gets > 100, `many GETs checked (${r.gets})`);
  });

  it("a RESP2 subscriber's WATCH, MULTI, EXEC, DISCARD and UNWATCH get the subscribed context's refusal, as from Redis (found by the session fuzzer)", async () => {
    const sim = createSimRuntime({ seed: 3 });
    const cluster = await SimRedisCluster.create(sim, { primaries: 3 });
    const app = await startSlotgate(sim, validateConfig({ clusters: { sim: { seeds: cluster.seeds.slice(0, 1) } }, catchAll: "sim", listen: "127.0.0.1:0", admin: { listen: "off" }, logLevel: "silent" }));
    let ready = false;
    void app.ready().then(() => (ready = true));
    while (!ready) await sim.clock.step();
    const client = await SimClient.open(sim, "127.0.0.1", app.port);
    const direct = await SimClient.open(sim, cluster.node("node-0").host, 6379);
    assert.equal(await client.call(sim, "SUBSCRIBE", "news"), "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
    assert.equal(await direct.call(sim, "SUBSCRIBE", "news"), "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
    for (const command of [["WATCH", "k"], ["MULTI"], ["EXEC"], ["DISCARD"], ["UNWATCH"]]) {
      const want = `-ERR Can't execute '${command[0]!.toLowerCase()}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n`;
      assert.equal(await direct.call(sim, ...command), want, `Redis refuses ${command[0]}`);
      assert.equal(await client.call(sim, ...command), want, `slotgate refuses ${command[0]} as Redis does`);
    }
    assert.equal(await client.call(sim, "PING"), "*2\r\n$4\r\npong\r\n$0\r\n\r\n", "still subscribed");
    client.conn.end();
    direct.conn.end();
    let closed = false;
    void app.close().then(() => (closed = true));
    for (let i = 0; i < 100_000 && !closed; i++) await sim.clock.step();
    assert.ok(closed, "the app closed");
  });

  it("the same seed replays the same trace", async () => {
    const a = await proxyScenario(11, "demote");
    const b = await proxyScenario(11, "demote");
    assert.ok(a.trace.split("\n").length > 50, "a non-trivial trace");
    assert.equal(a.trace, b.trace, "identical traces");
    assert.deepEqual([a.ask, a.moved, a.gets], [b.ask, b.moved, b.gets], "identical stats");
  });
});
