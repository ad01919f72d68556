/**
 * Replica reads (`readFrom`) against a real Redis Cluster of 3 primaries with one replica each,
 * with ioredis and node-redis as clients. Where a command ran is read from the nodes' own counters
 * (`INFO commandstats`, reset with `CONFIG RESETSTAT`) and `CLIENT LIST` flags, never inferred
 * from timing. Replication is asynchronous: before reads are checked, every replica is polled
 * until its replication offset has caught up with its primary's.
 *
 * The tests share one cluster and run in order; the last ones change it (a slot moved, a replica
 * restarted, a failover), so each looks up the roles it needs when it starts.
 */
import assert from "node:assert/strict";
import process from "node:process";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { startLocalCluster, type LocalCluster, type RespValue } from "../../scripts/local-cluster.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import type { Topology } from "../../src/backends/cluster/topology.ts";
import { splitFrames } from "../support/exchange.ts";
import { connectIoredis as connectIoredisTo, launchProxy } from "../support/launch.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp, type RunningProxy } from "../support/proxy.ts";
import { sleep, until } from "../support/within.ts";

const SLOW = { timeout: 180_000 };
const encoder = new TextEncoder();

type NodeRedis = ReturnType<typeof createClient>;

/** Primary and replica ports, from the nodes' own `ROLE`. */
interface Roles {
  primaries: number[];
  replicas: number[];
  /** Replica port → its primary's port. */
  primaryOf: Map<number, number>;
}

async function roles(cluster: LocalCluster): Promise<Roles> {
  const out: Roles = { primaries: [], replicas: [], primaryOf: new Map() };
  for (const node of cluster.nodes.filter((n) => n.running)) {
    const role = (await cluster.reply(node.port, "ROLE")) as RespValue[];
    if (role[0] === "master") out.primaries.push(node.port);
    else {
      out.replicas.push(node.port);
      out.primaryOf.set(node.port, Number(role[2]));
    }
  }
  return out;
}

/** `INFO commandstats` of a node: calls (and rejected calls) per command. */
async function commandStats(cluster: LocalCluster, port: number): Promise<Map<string, { calls: number; rejected: number }>> {
  const stats = new Map<string, { calls: number; rejected: number }>();
  for (const line of (await cluster.command(port, "INFO", "commandstats")).split("\n")) {
    const match = /^cmdstat_([^:]+):calls=(\d+),.*rejected_calls=(\d+)/.exec(line.trim());
    if (match) stats.set(match[1]!, { calls: Number(match[2]), rejected: Number(match[3]) });
  }
  return stats;
}

async function calls(cluster: LocalCluster, port: number, command: string): Promise<number> {
  return (await commandStats(cluster, port)).get(command)?.calls ?? 0;
}

async function sumCalls(cluster: LocalCluster, ports: number[], command: string): Promise<number> {
  let sum = 0;
  for (const port of ports) sum += await calls(cluster, port, command);
  return sum;
}

async function resetStats(cluster: LocalCluster): Promise<void> {
  for (const node of cluster.nodes.filter((n) => n.running)) await cluster.command(node.port, "CONFIG", "RESETSTAT");
}

/** Wait until every running replica has applied everything its primary has written. */
async function replicated(cluster: LocalCluster): Promise<void> {
  const { primaryOf } = await roles(cluster);
  for (const [replica, primary] of primaryOf) {
    const target = Number(((await cluster.reply(primary, "ROLE")) as RespValue[])[1]);
    await until(`replica ${replica} to catch up with ${primary}`, async () => {
      const role = (await cluster.reply(replica, "ROLE")) as RespValue[];
      return role[3] === "connected" && Number(role[4]) >= target;
    });
  }
}

/** `CLIENT LIST` of a node: the flags of each connection. */
async function clientFlags(cluster: LocalCluster, port: number): Promise<string[]> {
  const list = await cluster.command(port, "CLIENT", "LIST");
  return list
    .split("\n")
    .map((line) => / flags=(\S+)/.exec(line)?.[1])
    .filter((flags): flags is string => flags !== undefined);
}

function ownerPort(topology: Topology, key: string): number {
  const slot = keySlot(encoder.encode(key));
  return topology.ranges.find((range) => range.start <= slot && slot <= range.end)!.primary.port;
}

/** `count` keys `prefix:<i>` whose primary (in `topology`) `wanted` accepts. */
function keysWhere(topology: Topology, prefix: string, count: number, wanted: (port: number) => boolean): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) if (wanted(ownerPort(topology, `${prefix}:${i}`))) keys.push(`${prefix}:${i}`);
  return keys;
}

/**
 * Reads in a loop over keys whose values do not change while it runs; every answer is checked.
 * `get` is one client library's GET.
 */
class Reader {
  reads = 0;
  readonly errors: string[] = [];
  readonly mismatches: string[] = [];
  readonly done: Promise<void>;
  #stopped = false;
  static readonly all: Reader[] = [];

  constructor(
    readonly get: (key: string) => Promise<string | null>,
    readonly expected: Map<string, string>,
  ) {
    Reader.all.push(this);
    this.done = this.#run();
  }

  async #run(): Promise<void> {
    const keys = [...this.expected.keys()];
    for (let n = 0; !this.#stopped; n++) {
      const key = keys[(n * 7) % keys.length]!;
      try {
        const value = await this.get(key);
        if (value !== this.expected.get(key)) this.mismatches.push(`GET ${key}: got ${JSON.stringify(value)}, expected ${JSON.stringify(this.expected.get(key))}`);
      } catch (error) {
        this.errors.push(`GET ${key}: ${(error as Error).message}`);
        await sleep(20);
      }
      this.reads++;
    }
  }

  stop(): Promise<void> {
    this.#stopped = true;
    return this.done;
  }
}

const bulk = (value: string) => `$${Buffer.byteLength(value)}\r\n${value}\r\n`;

describe("replica reads (readFrom)", () => {
  // Full coverage off: while a killed primary waits for its failover, the other shards serve.
  const fixture = lazy(async () => {
    const cluster = await startLocalCluster({ extraConfig: ["cluster-require-full-coverage no"] });
    try {
      // Redis lists a replica in CLUSTER SLOTS only once it has replicated something (offset > 0).
      const { primaries, replicas } = await roles(cluster);
      for (const port of primaries) {
        for (let i = 0; ; i++) {
          const ok = await cluster.command(port, "SET", `warm:${i}`, "1").then(() => true, () => false);
          if (ok) break;
        }
      }
      await until("every node to list every replica in CLUSTER SLOTS", async () => {
        for (const port of [...primaries, ...replicas]) {
          const slots = JSON.stringify(await cluster.reply(port, "CLUSTER", "SLOTS"));
          if (!replicas.every((replica) => slots.includes(`,${replica},`))) return false;
        }
        return true;
      });
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  });
  const proxies: RunningProxy[] = [];
  const ioredis: Redis[] = [];
  const nodeRedis: NodeRedis[] = [];
  const raws: RawClient[] = [];
  const stopped = new Set<number>();

  after(async () => {
    await Promise.all(Reader.all.map((reader) => reader.stop()));
    for (const pid of stopped) {
      try {
        process.kill(pid, "SIGCONT");
      } catch {
        // already gone
      }
    }
    for (const raw of raws) raw.close();
    for (const client of ioredis) client.disconnect();
    for (const client of nodeRedis) {
      try {
        client.destroy();
      } catch {
        // already closed
      }
    }
    await Promise.all(proxies.map((proxy) => proxy.stop().catch(() => {})));
    await fixture.stop();
  });

  /** Start slotgate with `readFrom`, registered for `after` before it is ready. */
  async function launch(cluster: LocalCluster, readFrom: string | null, env: Record<string, string> = {}): Promise<RunningProxy> {
    return launchProxy(proxies, cluster.seeds, {
      SLOTGATE_REFRESH_INTERVAL_MS: "500",
      SLOTGATE_REDIRECT_REFRESH_INTERVAL_MS: "200",
      ...(readFrom === null ? {} : { SLOTGATE_READ_FROM: readFrom }),
      ...env,
    });
  }

  const connectIoredis = (proxy: RunningProxy) => connectIoredisTo(proxy, ioredis);

  async function connectNodeRedis(proxy: RunningProxy): Promise<NodeRedis> {
    const client = createClient({ url: `redis://127.0.0.1:${proxy.port}`, socket: { reconnectStrategy: false } });
    client.on("error", () => {});
    nodeRedis.push(client);
    await client.connect();
    return client;
  }

  async function raw(proxy: RunningProxy): Promise<RawClient> {
    const client = await RawClient.connect(proxy.port);
    raws.push(client);
    return client;
  }

  /** Addresses of the proxy's nodes in `role`. */
  function proxyNodes(proxy: RunningProxy, role: "primary" | "replica"): string[] {
    return proxy.app.cluster
      .nodes()
      .filter((node) => node.role === role)
      .map((node) => node.address)
      .sort();
  }

  /** Wait until the proxy uses exactly the cluster's current replicas (and no other) for reads. */
  async function proxySeesReplicas(cluster: LocalCluster, proxy: RunningProxy): Promise<void> {
    const want = (await roles(cluster)).replicas.map((port) => `127.0.0.1:${port}`).sort();
    await until(`the proxy to read from replicas ${want.join(", ")}`, () => JSON.stringify(proxyNodes(proxy, "replica")) === JSON.stringify(want));
  }

  it("readFrom=replica: GETs and split MGET parts from ioredis and node-redis run on replicas, SETs on primaries; replica connections said READONLY", SLOW, async () => {
    const cluster = await fixture.get();
    const proxy = await launch(cluster, "replica");
    await proxySeesReplicas(cluster, proxy);
    const { primaries, replicas, primaryOf } = await roles(cluster);
    const topology = proxy.app.cluster.topology;
    const keys = keysWhere(topology, "ro", 60, () => true);
    for (const port of primaries) assert.ok(keys.some((key) => ownerPort(topology, key) === port), `some key lives on primary ${port}`);
    const value = (key: string) => `value of ${key}`;
    const io = await connectIoredis(proxy);
    const nr = await connectNodeRedis(proxy);

    await resetStats(cluster);
    for (const [i, key] of keys.entries()) assert.equal(await (i % 2 === 0 ? io.set(key, value(key)) : nr.set(key, value(key))), "OK");
    await replicated(cluster);
    // Without READONLY a replica redirects a read to its primary: that is what the prelude avoids.
    const someReplica = replicas[0]!;
    const foreign = keys.find((key) => ownerPort(topology, key) === primaryOf.get(someReplica))!;
    await assert.rejects(cluster.reply(someReplica, "GET", foreign), /MOVED/, "a plain connection to a replica gets MOVED");

    for (const key of keys) assert.equal(await io.get(key), value(key), `ioredis GET ${key}`);
    for (const key of keys) assert.equal(await nr.get(key), value(key), `node-redis GET ${key}`);
    // MGET across slots is split into one GET per key, each read-only.
    assert.deepEqual(await io.mget(keys), keys.map(value));
    assert.deepEqual(await nr.mGet(keys), keys.map(value));
    const gets = keys.length * 4;

    assert.equal(await sumCalls(cluster, primaries, "set"), keys.length, "every SET ran on a primary");
    assert.equal(await sumCalls(cluster, primaries, "get"), 0, "no GET ran on a primary");
    assert.equal(await sumCalls(cluster, replicas, "get"), gets, "every GET ran on a replica");
    for (const port of replicas) {
      assert.ok((await calls(cluster, port, "get")) > 0, `replica ${port} served reads`);
      assert.ok((await clientFlags(cluster, port)).some((flags) => flags.includes("r")), `replica ${port} has a READONLY connection`);
    }
    const stats = proxy.app.cluster.stats;
    assert.equal(stats.moved, 0, "no read was redirected");
    assert.equal(stats.replicaReads, gets);
    assert.equal(stats.replicaFallbacks, 0);
    await proxy.stop();
  });

  it("readFrom=primary (the default) never touches a replica; a live change of clusterDefaults.readFrom replaces the cluster, and the new one reads from replicas", SLOW, async () => {
    const cluster = await fixture.get();
    const proxy = await launch(cluster, null);
    const { primaries, replicas } = await roles(cluster);
    const keys = keysWhere(proxy.app.cluster.topology, "prim", 30, () => true);
    const io = await connectIoredis(proxy);
    const nr = await connectNodeRedis(proxy);
    for (const key of keys) assert.equal(await io.set(key, key), "OK");
    await resetStats(cluster);
    for (const key of keys) assert.equal(await io.get(key), key);
    for (const key of keys) assert.equal(await nr.get(key), key);
    assert.deepEqual(await nr.mGet(keys), keys);
    assert.equal(await sumCalls(cluster, primaries, "get"), keys.length * 3, "every GET ran on a primary");
    assert.equal(await sumCalls(cluster, replicas, "get"), 0, "no GET ran on a replica");
    assert.equal(await sumCalls(cluster, replicas, "readonly"), 0, "no replica was asked for READONLY");
    for (const port of replicas) assert.ok(!(await clientFlags(cluster, port)).some((flags) => flags.includes("r")), `replica ${port} has no READONLY connection`);
    assert.deepEqual(proxyNodes(proxy, "replica"), [], "the proxy opened no replica node");

    const before = proxy.app.cluster;
    const result = await proxy.app.control.replaceConfig({ ...proxy.app.control.config(), clusterDefaults: { ...proxy.app.control.config().clusterDefaults, readFrom: "replica" } });
    assert.deepEqual(result, { ok: true, changes: ["replaced cluster 'default'", "updated clusterDefaults"] });
    assert.notEqual(proxy.app.cluster, before, "a new cluster instance serves");
    await proxySeesReplicas(cluster, proxy);
    await replicated(cluster);
    await resetStats(cluster);
    for (const key of keys) assert.equal(await io.get(key), key);
    assert.equal(await sumCalls(cluster, replicas, "get"), keys.length, "after the change, every GET ran on a replica");
    await proxy.stop();
  });

  it("readFrom=any spreads reads over primaries and replicas by client; each client keeps its reads of a slot on one node", SLOW, async () => {
    const cluster = await fixture.get();
    const proxy = await launch(cluster, "any");
    await proxySeesReplicas(cluster, proxy);
    const { primaries, replicas } = await roles(cluster);
    const keys = keysWhere(proxy.app.cluster.topology, "any", 30, () => true);
    const writer = await connectIoredis(proxy);
    for (const key of keys) assert.equal(await writer.set(key, key), "OK");
    await replicated(cluster);
    const clients = [...(await Promise.all([0, 1, 2].map(() => connectIoredis(proxy))))];
    const nodeClients = await Promise.all([0, 1, 2].map(() => connectNodeRedis(proxy)));

    await resetStats(cluster);
    let reads = 0;
    for (const client of clients) {
      for (const key of keys) assert.equal(await client.get(key), key);
      reads += keys.length;
    }
    for (const client of nodeClients) {
      for (const key of keys) assert.equal(await client.get(key), key);
      reads += keys.length;
    }
    const onPrimaries = await sumCalls(cluster, primaries, "get");
    const onReplicas = await sumCalls(cluster, replicas, "get");
    assert.equal(onPrimaries + onReplicas, reads, "every GET ran once");
    assert.ok(onPrimaries > 0, `some reads ran on primaries (${onPrimaries})`);
    assert.ok(onReplicas > 0, `some reads ran on replicas (${onReplicas})`);

    // One client, one slot, many reads: all on the same node (one primary or its replica).
    const key = keys[0]!;
    const owner = ownerPort(proxy.app.cluster.topology, key);
    const { primaryOf } = await roles(cluster);
    const shard = [owner, ...[...primaryOf].filter(([, primary]) => primary === owner).map(([replica]) => replica)];
    for (const client of clients) {
      await resetStats(cluster);
      const pipeline = client.pipeline();
      for (let i = 0; i < 50; i++) pipeline.get(key);
      const results = (await pipeline.exec())!;
      assert.deepEqual(results, Array.from({ length: 50 }, () => [null, key]));
      const perNode = await Promise.all(shard.map((port) => calls(cluster, port, "get")));
      assert.deepEqual(perNode.filter((n) => n > 0), [50], `one node of the shard served all 50 reads (${perNode.join(", ")})`);
    }
    await proxy.stop();
  });

  it("a MOVED from a replica whose slot moved is followed to the new primary and triggers a refresh; later reads use the new primary's replica", SLOW, async () => {
    const cluster = await fixture.get();
    // Only the redirect can make this proxy refresh: no periodic refresh.
    const proxy = await launch(cluster, "replica", { SLOTGATE_REFRESH_INTERVAL_MS: "3600000" });
    await proxySeesReplicas(cluster, proxy);
    const { primaries, primaryOf } = await roles(cluster);
    const [from, to] = primaries as [number, number];
    const topology = proxy.app.cluster.topology;
    const key = keysWhere(topology, "moving", 1, (port) => port === from)[0]!;
    const slot = keySlot(encoder.encode(key));
    const io = await connectIoredis(proxy);
    assert.equal(await io.set(key, "moved value"), "OK");
    await replicated(cluster);
    const refreshes = proxy.app.cluster.stats.refreshes;

    await cluster.migrateSlot(slot, from, to);
    await replicated(cluster);
    const fromReplica = [...primaryOf].find(([, primary]) => primary === from)![0];
    const toReplica = [...primaryOf].find(([, primary]) => primary === to)![0];
    // The old primary's replica now redirects the slot (to a READONLY connection too).
    await resetStats(cluster);
    assert.equal(await io.get(key), "moved value");
    assert.equal((await commandStats(cluster, fromReplica)).get("get")?.rejected, 1, "the old replica refused the read (MOVED)");
    assert.equal(await calls(cluster, to, "get"), 1, "the new primary served it");
    assert.equal(proxy.app.cluster.stats.moved, 1);
    await until("the MOVED to trigger a refresh", () => proxy.app.cluster.stats.refreshes > refreshes);

    await resetStats(cluster);
    assert.equal(await io.get(key), "moved value");
    assert.equal(await calls(cluster, toReplica, "get"), 1, "after the refresh the new primary's replica serves the slot");
    await proxy.stop();
  });

  it("a replica answering -MASTERDOWN (link to its primary down, replica-serve-stale-data no): reads are answered by the primary, no client sees the error", SLOW, async () => {
    const cluster = await fixture.get();
    const proxy = await launch(cluster, "preferReplica");
    await proxySeesReplicas(cluster, proxy);
    const { primaryOf } = await roles(cluster);
    const [victim, primary] = [...primaryOf][0]!;
    const keys = keysWhere(proxy.app.cluster.topology, "masterdown", 10, (port) => port === primary);
    const io = await connectIoredis(proxy);
    for (const key of keys) assert.equal(await io.set(key, key), "OK");
    await replicated(cluster);

    try {
      // A wrong masterauth keeps the replica's link down after we cut it.
      await cluster.command(victim, "CONFIG", "SET", "replica-serve-stale-data", "no");
      await cluster.command(victim, "CONFIG", "SET", "masterauth", "not-the-password");
      await cluster.command(victim, "CLIENT", "KILL", "TYPE", "master");
      await until("the replica to answer MASTERDOWN", async () => {
        // DBSIZE: keyless (no redirect), not allowed on a stale replica.
        const answer = await cluster.reply(victim, "DBSIZE").catch((error: Error) => error.message);
        return /MASTERDOWN/.test(String(answer));
      });
      await resetStats(cluster);
      const fallbacks = proxy.app.cluster.stats.replicaFallbacks;
      const nr = await connectNodeRedis(proxy);
      for (const key of keys) assert.equal(await nr.get(key), key);
      for (const key of keys) assert.equal(await io.get(key), key);
      assert.ok(((await commandStats(cluster, victim)).get("get")?.rejected ?? 0) >= 1, "the replica refused reads");
      assert.equal(await calls(cluster, victim, "get"), 0, "the replica served none");
      assert.equal(await calls(cluster, primary, "get"), keys.length * 2, "the primary served every read");
      assert.ok(proxy.app.cluster.stats.replicaFallbacks > fallbacks, "reads fell back to the primary");
    } finally {
      await cluster.command(victim, "CONFIG", "SET", "masterauth", "");
      await cluster.command(victim, "CONFIG", "SET", "replica-serve-stale-data", "yes");
    }
    await cluster.waitForStable();
    await replicated(cluster);
    // The replica serves reads again once its backoff has passed.
    const reader = await connectIoredis(proxy);
    await until("reads to return to the replica", async () => {
      assert.equal(await reader.get(keys[0]!), keys[0]);
      return (await calls(cluster, victim, "get")) > 0;
    });
    await proxy.stop();
  });

  it("preferReplica with a replica that stops answering (SIGSTOP): reads time out there and are answered by the primary; after SIGCONT reads return to it", SLOW, async () => {
    const cluster = await fixture.get();
    const proxy = await launch(cluster, "preferReplica", { SLOTGATE_OP_TIMEOUT_MS: "1000" });
    await proxySeesReplicas(cluster, proxy);
    const { primaryOf } = await roles(cluster);
    const [victim, primary] = [...primaryOf][1]!;
    const victimNode = cluster.nodes.find((node) => node.port === victim)!;
    const keys = keysWhere(proxy.app.cluster.topology, "stopped", 10, (port) => port === primary);
    const io = await connectIoredis(proxy);
    for (const key of keys) assert.equal(await io.set(key, key), "OK");
    await replicated(cluster);
    const client = await raw(proxy);
    const fallbacks = proxy.app.cluster.stats.replicaFallbacks;

    process.kill(victimNode.pid, "SIGSTOP");
    stopped.add(victimNode.pid);
    try {
      client.send(keys.map((key) => resp("GET", key)).join(""));
      const got = splitFrames(await client.waitFor((text) => splitFrames(text).length >= keys.length));
      assert.deepEqual(got, keys.map(bulk), "every read answered with its value (by the primary)");
      assert.ok(proxy.app.cluster.stats.replicaFallbacks >= fallbacks + keys.length, "the reads fell back after the timeout");
      // More reads while it is still stopped: answered too (by the primary, or after a timeout).
      const nr = await connectNodeRedis(proxy);
      for (const key of keys) assert.equal(await nr.get(key), key);
    } finally {
      process.kill(victimNode.pid, "SIGCONT");
      stopped.delete(victimNode.pid);
    }
    await cluster.waitForStable();
    await replicated(cluster);
    await proxySeesReplicas(cluster, proxy);
    await resetStats(cluster);
    await until("reads to return to the resumed replica", async () => {
      assert.equal(await io.get(keys[0]!), keys[0]);
      return (await calls(cluster, victim, "get")) > 0;
    });
    await proxy.stop();
  });

  it("preferReplica with a replica killed under traffic: reads in flight on it and every read after are answered by the primary (no client-visible error); when it returns reads go back to it", SLOW, async () => {
    const cluster = await fixture.get();
    const proxy = await launch(cluster, "preferReplica");
    await proxySeesReplicas(cluster, proxy);
    const { primaryOf } = await roles(cluster);
    const [victim, primary] = [...primaryOf][2]!;
    const victimNode = cluster.nodes.find((node) => node.port === victim)!;
    const address = `127.0.0.1:${victim}`;
    const topology = proxy.app.cluster.topology;
    const victimKeys = keysWhere(topology, "kill", 40, (port) => port === primary);
    const otherKeys = keysWhere(topology, "kill-other", 20, (port) => port !== primary);
    const expected = new Map([...victimKeys, ...otherKeys].map((key) => [key, `value of ${key}`]));
    const writer = await connectIoredis(proxy);
    for (const [key, value] of expected) assert.equal(await writer.set(key, value), "OK");
    await replicated(cluster);

    const io = await connectIoredis(proxy);
    const nr = await connectNodeRedis(proxy);
    const readers = [new Reader((key) => io.get(key), expected), new Reader((key) => nr.get(key), expected)];
    await until("reads to run on the victim", async () => readers.every((r) => r.reads > 20) && (await calls(cluster, victim, "get")) > 0);

    // Freeze it first, so reads are certainly in flight on it when it dies.
    const client = await raw(proxy);
    process.kill(victimNode.pid, "SIGSTOP");
    stopped.add(victimNode.pid);
    client.send(victimKeys.slice(0, 30).map((key) => resp("GET", key)).join(""));
    await until("30 reads in flight on the frozen replica", () => (proxy.app.cluster.nodes().find((n) => n.address === address && n.role === "replica")?.pending ?? 0) >= 30);
    const fallbacks = proxy.app.cluster.stats.replicaFallbacks;
    await cluster.killNode(victim);
    stopped.delete(victimNode.pid);

    // What a read in flight at the kill gets: its value, read again from the primary.
    const got = splitFrames(await client.waitFor((text) => splitFrames(text).length >= 30));
    assert.deepEqual(got, victimKeys.slice(0, 30).map((key) => bulk(expected.get(key)!)));
    assert.ok(proxy.app.cluster.stats.replicaFallbacks >= fallbacks + 30, "the reads in flight were retried on the primary");
    await resetStats(cluster);
    const atKill = readers.map((r) => r.reads);
    await until("traffic to go on without the replica", async () => readers.every((r, i) => r.reads > atKill[i]! + 50) && (await calls(cluster, primary, "get")) > 0);
    await proxySeesReplicas(cluster, proxy);
    await Promise.all(readers.map((r) => r.stop()));
    for (const reader of readers) {
      assert.deepEqual(reader.errors, [], "no read failed");
      assert.deepEqual(reader.mismatches, [], "every read saw its value");
    }

    // A restarted replica serves its own (empty) data until it has synced: restart, let it sync,
    // then read.
    await cluster.restartNode(victim);
    await replicated(cluster);
    await proxySeesReplicas(cluster, proxy);
    const after = [new Reader((key) => io.get(key), expected), new Reader((key) => nr.get(key), expected)];
    await until("reads to return to the restarted replica", async () => (await calls(cluster, victim, "get")) > 0);
    await Promise.all(after.map((r) => r.stop()));
    for (const reader of after) {
      assert.deepEqual(reader.errors, [], "no read failed");
      assert.deepEqual(reader.mismatches, [], "every read saw its value");
    }
    await proxy.stop();
  });

  it("readFrom=replica through a failover: reads of the failed shard keep being answered, the promoted replica then serves as a primary, and the old primary returns as a replica that serves reads", SLOW, async () => {
    const cluster = await fixture.get();
    const proxy = await launch(cluster, "replica");
    await proxySeesReplicas(cluster, proxy);
    const { primaryOf } = await roles(cluster);
    const [replica, victim] = [...primaryOf][0]!;
    const topology = proxy.app.cluster.topology;
    const victimKeys = keysWhere(topology, "failover", 30, (port) => port === victim);
    const otherKeys = keysWhere(topology, "failover-other", 30, (port) => port !== victim);
    const expected = new Map([...victimKeys, ...otherKeys].map((key) => [key, `before: ${key}`]));
    const writer = await connectIoredis(proxy);
    for (const [key, value] of expected) assert.equal(await writer.set(key, value), "OK");
    await replicated(cluster);

    const io = await connectIoredis(proxy);
    const nr = await connectNodeRedis(proxy);
    const readers = [new Reader((key) => io.get(key), expected), new Reader((key) => nr.get(key), expected)];
    await until("reads to run", () => readers.every((r) => r.reads > 20));

    await cluster.killNode(victim);
    const promoted = await cluster.waitForFailover(victim);
    assert.equal(promoted.port, replica, "the victim's replica took over");
    await until("the proxy to use the promoted node as a primary only", () => proxyNodes(proxy, "primary").includes(`127.0.0.1:${replica}`) && !proxyNodes(proxy, "replica").includes(`127.0.0.1:${replica}`));
    const atFailover = readers.map((r) => r.reads);
    await until("reads to go on after the failover", () => readers.every((r, i) => r.reads > atFailover[i]! + 20));
    await Promise.all(readers.map((r) => r.stop()));
    // The shard's replica kept serving its reads while its primary was dead, then as the primary.
    for (const reader of readers) {
      assert.deepEqual(reader.errors, [], "no read failed");
      assert.deepEqual(reader.mismatches, [], "every read saw its value");
    }

    // The promoted node takes writes and serves the shard's reads (it has no replica now).
    await resetStats(cluster);
    for (const key of victimKeys) assert.equal(await writer.set(key, `after: ${key}`), "OK");
    for (const key of victimKeys) assert.equal(await nr.get(key), `after: ${key}`);
    assert.equal(await calls(cluster, replica, "set"), victimKeys.length, "the promoted node took the writes");
    assert.equal(await calls(cluster, replica, "get"), victimKeys.length, "and served the reads");

    // The old primary comes back as its replica, syncs, and serves the shard's reads.
    await cluster.restartNode(victim);
    await replicated(cluster);
    await proxySeesReplicas(cluster, proxy);
    assert.ok(proxyNodes(proxy, "replica").includes(`127.0.0.1:${victim}`), "the old primary is a replica now");
    await resetStats(cluster);
    for (const key of victimKeys) assert.equal(await io.get(key), `after: ${key}`);
    assert.equal(await calls(cluster, victim, "get"), victimKeys.length, "the old primary, now a replica, served the reads");
    assert.equal(await calls(cluster, replica, "get"), 0);
    await proxy.stop();
  });
});
