/**
 * Workers sharing what discovery learns (src/backends/cluster/topology-exchange.ts): the shared
 * form and its checks; one discovery session with an exchange, on a manual clock; then four
 * Clusters on one simulated Redis Cluster, as the four workers of one slotgate, exchanging their
 * maps in memory: the cluster is asked about as often as by one worker. Last, the live
 * configuration hands each Redis Cluster its exchange and key.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Discovery, type DiscoveryOptions, type TopologySource } from "../../src/backends/cluster/discovery.ts";
import { Cluster, type ClusterOptions } from "../../src/backends/cluster/cluster.ts";
import { fromShared, toShared, type SharedTopology, type TopologyExchange } from "../../src/backends/cluster/topology-exchange.ts";
import type { Topology } from "../../src/backends/cluster/topology.ts";
import { Scope, lateCallbacks } from "../../src/scope/scope.ts";
import { createSimRuntime } from "../../adapters/sim/runtime.ts";
import { SimRedisCluster } from "../sim/world/redis-cluster.ts";
import { ManualRuntime, settle, type FakeConn } from "../support/manual-runtime.ts";
import { LiveConfig } from "../../src/control/control-plane.ts";
import { validateConfig } from "../../src/config/load.ts";
import { SILENT_LOGGER } from "../../src/log.ts";

const KEY = "c\n[fingerprint]";

const MAP: Topology = {
  ranges: [
    { start: 0, end: 8191, primary: { host: "10.0.1.1", port: 6379, id: "node-0" }, replicas: [{ host: "10.0.1.3", port: 6379, hostname: "r.example" }] },
    { start: 8192, end: 16383, primary: { host: "10.0.1.2", port: 6379 }, replicas: [] },
  ],
};

/**
 * An in-memory exchange between workers, as the workers' message channel would be: each worker
 * has its own end; a publication reaches every other end subscribed to its key, through
 * `deliver` (later), as JSON text parsed apart for each receiver.
 */
class MemoryHub {
  readonly #subscribers = new Map<string, Set<{ worker: number; receive: (topology: SharedTopology) => void }>>();
  published = 0;

  constructor(readonly deliver: (fn: () => void) => void) {}

  /** Worker `worker`'s end of the exchange. */
  endpoint(worker: number): TopologyExchange {
    return {
      publish: (key, topology) => {
        this.published++;
        this.send(worker, key, JSON.stringify(topology));
      },
      subscribe: (key, receive) => {
        const subscribers = this.#subscribers.get(key) ?? new Set();
        this.#subscribers.set(key, subscribers);
        const subscriber = { worker, receive };
        subscribers.add(subscriber);
        return () => void subscribers.delete(subscriber);
      },
    };
  }

  /** Send `json` to every end subscribed to `key` when it arrives, but the sender's (-1: a stranger, the test). */
  send(from: number, key: string, json: string): void {
    this.deliver(() => {
      for (const subscriber of [...(this.#subscribers.get(key) ?? [])]) {
        if (subscriber.worker !== from) subscriber.receive(JSON.parse(json) as SharedTopology);
      }
    });
  }
}

describe("shared topologies", () => {
  it("a map crosses as JSON or structured clone and comes back the same, with no undefined fields", () => {
    const shared = toShared({ ranges: [{ ...MAP.ranges[1]!, primary: { host: "10.0.1.2", port: 6379, id: undefined, hostname: undefined } }] }, "10.0.1.2:6379");
    assert.deepEqual(Object.keys(shared.ranges[0]!.primary), ["host", "port"]);
    const full = toShared(MAP, "10.0.1.1:6379");
    assert.deepEqual(fromShared(JSON.parse(JSON.stringify(full))), { from: "10.0.1.1:6379", ranges: MAP.ranges });
    assert.deepEqual(fromShared(structuredClone(full)), { from: "10.0.1.1:6379", ranges: MAP.ranges });
  });

  it("the copy shares nothing with the map it was made from, nor with what it was checked from", () => {
    const shared = toShared(MAP, "10.0.1.1:6379");
    assert.notEqual(shared.ranges[0]!.primary, MAP.ranges[0]!.primary);
    const checked = fromShared(shared)!;
    assert.notEqual(checked.ranges[0]!.replicas, shared.ranges[0]!.replicas);
  });

  it("anything malformed reads as null, never throws", () => {
    const good = toShared(MAP, "10.0.1.1:6379");
    const withRange = (patch: Record<string, unknown>) => ({ ...good, ranges: [{ ...good.ranges[0]!, ...patch }] });
    const withPrimary = (patch: Record<string, unknown>) => withRange({ primary: { ...good.ranges[0]!.primary, ...patch } });
    const cases: Record<string, unknown> = {
      null: null,
      "a string": "10.0.1.1:6379",
      "an array": [good],
      "no from": { ranges: good.ranges },
      "an empty from": { ...good, from: "" },
      "no ranges": { from: good.from },
      "no range at all": { ...good, ranges: [] },
      "ranges not an array": { ...good, ranges: { 0: good.ranges[0] } },
      "a range that is null": { ...good, ranges: [null] },
      "a slot past 16383": withRange({ end: 16384 }),
      "a negative slot": withRange({ start: -1 }),
      "a fractional slot": withRange({ start: 0.5 }),
      "a slot as text": withRange({ start: "0" }),
      "start after end": withRange({ start: 9000 }),
      "no primary": withRange({ primary: undefined }),
      "replicas not an array": withRange({ replicas: null }),
      "a malformed replica": withRange({ replicas: [{ host: "10.0.1.3" }] }),
      "a hostname not resolved": withPrimary({ host: "redis-0.example" }),
      "an empty host": withPrimary({ host: "" }),
      "port 0": withPrimary({ port: 0 }),
      "port 65536": withPrimary({ port: 65536 }),
      "a port as text": withPrimary({ port: "6379" }),
      "an id that is a number": withPrimary({ id: 7 }),
      "a hostname that is null": withPrimary({ hostname: null }),
    };
    for (const [what, data] of Object.entries(cases)) assert.equal(fromShared(data), null, what);
    assert.notEqual(fromShared(good), null, "the map they were made from is fine");
  });
});

const SLOTS_REPLY = "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$4\r\nid-1\r\n";

const DISCOVERY: DiscoveryOptions = {
  seeds: [{ host: "127.0.0.1", port: 7000 }],
  refreshIntervalMs: 5000,
  refreshTimeoutMs: 3000,
  redirectRefreshIntervalMs: 1000,
};

/** One discovery session on a manual clock, with an exchange the test plays: it sees what is published and sends what it likes. */
function setup() {
  const rt = new ManualRuntime({ seed: 7 });
  const root = Scope.root(rt);
  const scope = root.child("cluster test");
  const applied: { topology: Topology; from: string; source: TopologySource }[] = [];
  const published: SharedTopology[] = [];
  let ignored = 0;
  let receive: ((topology: SharedTopology) => void) | null = null;
  let subscribed: ((topology: SharedTopology) => void) | null = null;
  const exchange: TopologyExchange = {
    publish: (key, topology) => {
      assert.equal(key, KEY);
      published.push(topology);
    },
    subscribe: (key, receiver) => {
      assert.equal(key, KEY);
      receive = subscribed = receiver;
      return () => void (receive = null);
    },
  };
  const discovery = new Discovery(scope, { ...DISCOVERY, share: { exchange, key: KEY } }, {
    knownNodes: () => [],
    apply: (topology, from, source) => void applied.push({ topology, from, source }),
    failed: () => {},
    sharedIgnored: () => void ignored++,
  });
  const answered = new Set<FakeConn>();
  /** Play the node: accept connects and answer CLUSTER SLOTS. */
  const serve = async () => {
    await settle();
    for (const pending of [...rt.pendingConnects]) if (!pending.settled) pending.resolve();
    await rt.flush();
    for (const conn of rt.conns) {
      if (conn.destroyed || answered.has(conn) || conn.written.length === 0) continue;
      answered.add(conn);
      conn.receive(SLOTS_REPLY);
    }
    await settle();
  };
  /** Send a map as another worker would (nothing happens once unsubscribed). */
  const share = (data: unknown) => receive?.(data as SharedTopology);
  return {
    rt, root, scope, discovery, applied, published, serve, share,
    ignored: () => ignored,
    subscribed: () => receive !== null,
    /** The receiver as first handed to the exchange, even after it unsubscribed (a late delivery). */
    receiver: () => subscribed!,
  };
}

describe("discovery with a topology exchange", () => {
  it("publishes what its own round fetched, once; applies a received map as shared and does not publish it again", async () => {
    const { root, discovery, applied, published, serve, share } = setup();
    discovery.start();
    await serve();
    assert.deepEqual(applied.map((a) => a.source), ["fetched"]);
    assert.equal(published.length, 1);
    assert.equal(published[0]!.from, "127.0.0.1:7000");
    assert.deepEqual(published[0]!.ranges, [{ start: 0, end: 16383, primary: { host: "127.0.0.1", port: 7000, id: "id-1" }, replicas: [] }]);
    share(toShared(MAP, "10.0.1.2:6379"));
    assert.deepEqual(applied.map((a) => a.source), ["fetched", "shared"]);
    assert.deepEqual(applied[1]!.topology, MAP);
    assert.equal(applied[1]!.from, "10.0.1.2:6379");
    assert.equal(published.length, 1, "a received map is not published again");
    assert.equal(discovery.rounds, 1, "a received map is no round of its own");
    await root.close();
  });

  it("a received map starts the periodic wait over: no round of its own until 0.8 × refreshIntervalMs after it", async () => {
    const { rt, root, discovery, serve, share } = setup();
    discovery.start();
    await serve();
    await rt.advance(3000);
    share(toShared(MAP, "10.0.1.2:6379"));
    // Without it, the next round would come between 4000 and 5000 ms.
    await rt.advance(3999);
    await serve();
    assert.equal(discovery.rounds, 1, "no round before 3000 + 4000 ms");
    await rt.advance(1001);
    await serve();
    assert.equal(discovery.rounds, 2, "one by 3000 + 5000 ms");
    await root.close();
  });

  it("a received map meets a pending wish for an early refresh: no round of its own", async () => {
    const { rt, root, discovery, applied, serve, share } = setup();
    discovery.start();
    await serve();
    await rt.advance(200);
    // Rate-limited: due 1000 ms after the first round.
    discovery.requestRefresh();
    await rt.advance(300);
    share(toShared(MAP, "10.0.1.2:6379"));
    await rt.advance(1500);
    await serve();
    assert.equal(discovery.rounds, 1);
    assert.deepEqual(applied.map((a) => a.source), ["fetched", "shared"]);
    await root.close();
  });

  it("a malformed map from a peer is ignored: nothing applied, the periodic wait goes on", async () => {
    const { rt, root, discovery, applied, serve, share, ignored } = setup();
    discovery.start();
    await serve();
    await rt.advance(3000);
    share(null);
    share({ from: "10.0.1.2:6379", ranges: [{ start: 0, end: 99_999, primary: { host: "10.0.1.2", port: 6379 }, replicas: [] }] });
    assert.equal(ignored(), 2);
    assert.equal(applied.length, 1);
    await rt.advance(2000);
    await serve();
    assert.equal(discovery.rounds, 2, "the wait was not started over");
    await root.close();
  });

  it("closing the scope unsubscribes: a map sent afterwards is not applied, nothing throws", async () => {
    const { rt, root, scope, discovery, applied, serve, share, subscribed, receiver } = setup();
    const late = lateCallbacks();
    discovery.start();
    await serve();
    assert.equal(subscribed(), true);
    await scope.close({ deadlineMs: 0 });
    assert.equal(subscribed(), false, "unsubscribed");
    share(toShared(MAP, "10.0.1.2:6379"));
    // An exchange that delivers a message it already held: dropped by the closed scope.
    receiver()(toShared(MAP, "10.0.1.2:6379"));
    assert.equal(applied.length, 1);
    assert.equal(lateCallbacks(), late + 1, "the late delivery was counted, not run");
    await rt.advance(60_000);
    assert.equal(rt.pendingTimers(), 0);
    await root.close();
  });
});

const INTERVAL_MS = 10_000;

const CLUSTER: Omit<ClusterOptions, "seeds"> = {
  refreshIntervalMs: INTERVAL_MS,
  refreshTimeoutMs: 1000,
  redirectRefreshIntervalMs: 1000,
  redirectRefreshThreshold: 0,
  maxRedirects: 5,
  opTimeoutMs: 1000,
  connectTimeoutMs: 1000,
  maxBulkBytes: 1 << 20,
  connectionsPerNode: 1,
  probeBackoffMinMs: 100,
  probeBackoffMaxMs: 2000,
  maxUnknownNodes: 100,
  maxUpstreamQueueBytes: 1 << 26,
};

/** `count` Clusters on one simulated Redis Cluster, as the workers of one slotgate; `shared`: with an exchange between them. */
async function workers(count: number, shared: boolean, seed = 3) {
  const sim = createSimRuntime({ seed });
  const redis = await SimRedisCluster.create(sim, { primaries: 3 });
  const errors: unknown[] = [];
  const root = Scope.root(sim, "slotgate", (error) => void errors.push(error));
  // A message between workers takes a millisecond.
  const hub = new MemoryHub((fn) => void sim.setTimer(1, fn));
  const seeds = redis.seeds.map((address) => ({ host: address.split(":")[0]!, port: Number(address.split(":")[1]) }));
  const clusters = Array.from({ length: count }, (_, i) => new Cluster(root, "c", { ...CLUSTER, seeds, share: shared ? { exchange: hub.endpoint(i), key: KEY } : undefined }));
  /** CLUSTER SLOTS requests the nodes served (discovery's is the only CLUSTER command slotgate sends). */
  const clusterSlots = () => redis.nodes.reduce((sum, node) => sum + (node.served.get("CLUSTER") ?? 0), 0);
  const close = async () => {
    let closed = false;
    void root.close().then(() => (closed = true));
    for (let i = 0; i < 100_000 && !closed; i++) await sim.clock.step();
    assert.equal(closed, true, "every worker closed");
    assert.equal(root.liveCount(), 0);
    assert.deepEqual(errors, []);
  };
  return { sim, redis, hub, clusters, clusterSlots, close };
}

/** Where `slot` is served in a worker's applied map (`host:port` of its primary). */
function ownerIn(cluster: Cluster, slot: number): string | undefined {
  const range = cluster.topology.ranges.find((r) => r.start <= slot && slot <= r.end);
  return range && `${range.primary.host}:${range.primary.port}`;
}

async function slotsAskedOver(count: number, shared: boolean, intervals: number): Promise<number> {
  const { sim, clusters, clusterSlots, close } = await workers(count, shared);
  await sim.clock.advance(intervals * INTERVAL_MS);
  for (const cluster of clusters) assert.equal(cluster.isReady, true);
  const asked = clusterSlots();
  await close();
  return asked;
}

describe("four workers sharing one simulated cluster's maps", () => {
  it("over 20 refresh intervals they ask CLUSTER SLOTS about as often as one worker; without sharing, four times as often", async () => {
    const one = await slotsAskedOver(1, false, 20);
    const four = await slotsAskedOver(4, true, 20);
    const alone = await slotsAskedOver(4, false, 20);
    // One worker: the first round, then one every 0.8–1.0 intervals.
    assert.ok(one >= 21 && one <= 26, `one worker asked ${one} times`);
    assert.ok(four <= 1.5 * one, `four sharing workers asked ${four} times, one worker ${one}`);
    assert.ok(alone >= 3.5 * one && alone <= 4.5 * one, `four workers alone asked ${alone} times, one worker ${one}`);
  });

  it("a slot moved, learned by one worker, is applied by the others without a round of their own", async () => {
    const { sim, redis, clusters, clusterSlots, close } = await workers(4, true);
    await sim.clock.advance(100);
    for (const cluster of clusters) assert.equal(ownerIn(cluster, 0), redis.node("node-0").address);
    const refreshes = clusters.map((c) => c.stats.refreshes);
    const sharedApplied = clusters.map((c) => c.stats.sharedApplied);
    const asked = clusterSlots();
    redis.migrateSlot(0, "node-1").finish();
    clusters[0]!.requestRefresh();
    await sim.clock.advance(2000);
    assert.equal(clusterSlots() - asked, 1, "one CLUSTER SLOTS for the whole group");
    for (const [i, cluster] of clusters.entries()) {
      assert.equal(ownerIn(cluster, 0), redis.node("node-1").address, `worker ${i} routes slot 0 to its new owner`);
      assert.equal(cluster.stats.refreshes - refreshes[i]!, i === 0 ? 1 : 0, `worker ${i}'s own refreshes`);
      assert.equal(cluster.stats.sharedApplied - sharedApplied[i]!, i === 0 ? 0 : 1, `worker ${i}'s shared maps`);
    }
    await close();
  });

  it("a malformed shared map is ignored by every worker: the slot map stays, nothing throws", async () => {
    const { sim, hub, clusters, close } = await workers(4, true);
    await sim.clock.advance(100);
    const maps = clusters.map((c) => JSON.stringify(c.topology));
    hub.send(-1, KEY, JSON.stringify({ from: "10.0.1.1:6379", ranges: [{ start: 0, end: 16383, primary: { host: "redis-0.example", port: 6379 }, replicas: [] }] }));
    hub.send(-1, KEY, "null");
    await sim.clock.advance(10);
    for (const [i, cluster] of clusters.entries()) {
      assert.equal(cluster.stats.sharedIgnored, 2, `worker ${i} ignored both`);
      assert.equal(JSON.stringify(cluster.topology), maps[i], `worker ${i}'s map is unchanged`);
      assert.equal(cluster.isReady, true);
    }
    await close();
  });

  it("after a worker's cluster is closed, a map published to its key is not applied there, and nothing throws", async () => {
    const { sim, hub, clusters, close } = await workers(4, true);
    await sim.clock.advance(100);
    const late = lateCallbacks();
    const closing = clusters[3]!.close(0);
    await sim.clock.advance(10);
    await closing;
    const sharedApplied = clusters.map((c) => c.stats.sharedApplied);
    hub.send(-1, KEY, JSON.stringify(toShared(clusters[0]!.topology, "10.0.1.2:6379")));
    await sim.clock.advance(10);
    assert.deepEqual(clusters.map((c, i) => c.stats.sharedApplied - sharedApplied[i]!), [1, 1, 1, 0]);
    assert.equal(lateCallbacks(), late);
    await close();
  });
});

describe("the live configuration shares Redis Clusters' maps", () => {
  it("under the cluster's name and what it was built from: a replaced cluster under a new key, the old one unsubscribed; a standalone pool not at all", async () => {
    const sim = createSimRuntime({ seed: 5 });
    const redis = await SimRedisCluster.create(sim, { primaries: 3 });
    const subscribed: string[] = [];
    const live = new Set<string>();
    const exchange: TopologyExchange = {
      publish: () => {},
      subscribe: (key) => {
        subscribed.push(key);
        live.add(key);
        return () => void live.delete(key);
      },
    };
    const root = Scope.root(sim);
    const config = validateConfig({ clusters: { c: { seeds: [redis.seeds[0]] }, p: { type: "standalone", servers: ["10.0.1.1:6379"] } }, catchAll: "c" });
    const control = new LiveConfig(root.child("clusters"), config, SILENT_LOGGER, { onLimits: () => {}, onLogLevel: () => {}, scopeTree: () => root.inspect(), topologyExchange: exchange });
    assert.equal(subscribed.length, 1, "one subscription: the Redis Cluster's");
    assert.ok(subscribed[0]!.startsWith("c\n"), "keyed by the cluster's name first");
    let replaced = false;
    void control.putCluster("c", { seeds: [redis.seeds[1]] }).then((result) => (replaced = result.ok));
    for (let i = 0; i < 100_000 && !replaced; i++) await sim.clock.step();
    assert.equal(replaced, true);
    assert.equal(subscribed.length, 2);
    assert.ok(subscribed[1]!.startsWith("c\n"));
    assert.notEqual(subscribed[1], subscribed[0], "other seeds, another key");
    assert.deepEqual([...live], [subscribed[1]], "the replaced cluster unsubscribed");
    let closed = false;
    void control.closeAll().then(() => root.close()).then(() => (closed = true));
    for (let i = 0; i < 100_000 && !closed; i++) await sim.clock.step();
    assert.equal(closed, true);
    assert.deepEqual([...live], []);
  });
});
