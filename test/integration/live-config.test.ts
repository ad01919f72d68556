/**
 * Several clusters behind one slotgate, routed by key prefix and reconfigured live through the
 * admin API: a Redis Cluster as catch-all, a second Redis Cluster behind a stripped prefix, and a
 * pool of standalone Redis servers sharded by ketama. Real processes throughout.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { startLocalCluster, startStandaloneRedis, type LocalCluster, type StandaloneRedis } from "../../scripts/local-cluster.ts";
import { lazy } from "../support/lazy.ts";
import { startProxy, type RunningProxy } from "../support/proxy.ts";
import { KetamaRing, twemproxyServerName } from "../../src/backends/pool/ketama.ts";

const SLOW = { timeout: 120_000 };
const encoder = new TextEncoder();

interface World {
  main: LocalCluster;
  users: LocalCluster;
  servers: StandaloneRedis[];
  proxy: RunningProxy;
  client: Redis;
  admin(method: string, path: string, body?: unknown, raw?: string): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}

describe("live configuration with several clusters", () => {
  const world = lazy(async (): Promise<World> => {
    const main = await startLocalCluster({ replicasPerPrimary: 0 });
    const users = await startLocalCluster({ replicasPerPrimary: 0 });
    const servers = await Promise.all([startStandaloneRedis(), startStandaloneRedis(), startStandaloneRedis()]);
    const proxy = await startProxy(main.seeds, { SLOTGATE_ADMIN_TOKEN: "test-token-123" });
    const client = new Redis({ port: proxy.port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 });
    await client.connect();
    const base = `http://${proxy.app.admin!.host}:${proxy.app.admin!.port}`;
    const admin = async (method: string, path: string, body?: unknown, raw?: string) => {
      const response = await fetch(base + path, {
        method,
        headers: { authorization: "Bearer test-token-123" },
        body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
      });
      return { status: response.status, body: await response.json() };
    };
    return {
      main,
      users,
      servers,
      proxy,
      client,
      admin,
      async stop() {
        client.disconnect();
        await proxy.stop();
        await Promise.all([main.stop(), users.stop(), ...servers.map((s) => s.stop())]);
      },
    };
  });
  after(() => world.stop());

  it("PUT /config adds a cluster, a stripped prefix route and a ketama pool in one atomic change", SLOW, async () => {
    const w = await world.get();
    const current = (await w.admin("GET", "/config")).body;
    const next = {
      ...current,
      clusters: {
        ...current.clusters,
        users: { seeds: [w.users.seeds[0]] },
        cache: { type: "standalone", servers: w.servers.map((s) => `127.0.0.1:${s.port}`) },
      },
      routes: [
        { prefix: "user:", cluster: "users", removePrefix: true },
        { prefix: "user:admin:", cluster: "default" },
        { prefix: "CACHE:", cluster: "cache", caseInsensitive: true },
      ],
      catchAll: "default",
    };
    const put = await w.admin("PUT", "/config", next);
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual(put.body.changes.sort(), ["added cluster 'cache'", "added cluster 'users'", "updated routes"]);
    // The new cluster was added without a readiness wait; routing to it needs its slot map.
    for (let i = 0; i < 100 && (await w.admin("GET", "/readyz")).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal((await w.admin("GET", "/readyz")).status, 200);
    const clusters = (await w.admin("GET", "/clusters")).body.clusters;
    assert.deepEqual(clusters.map((c: { name: string }) => c.name).sort(), ["cache", "default", "users"]);
  });

  it("keys go to the cluster of their longest prefix, with the prefix stripped where asked", SLOW, async () => {
    const w = await world.get();
    await w.client.set("user:42", "alice");
    await w.client.set("user:admin:1", "root");
    await w.client.set("plain", "p");
    assert.equal(await w.client.get("user:42"), "alice");
    // Stored under "42" in the users cluster, not in the catch-all.
    const direct = new Redis.Cluster([{ host: "127.0.0.1", port: w.users.nodes[0]!.port }], { lazyConnect: true });
    const mainDirect = new Redis.Cluster([{ host: "127.0.0.1", port: w.main.nodes[0]!.port }], { lazyConnect: true });
    try {
      await direct.connect();
      await mainDirect.connect();
      assert.equal(await direct.get("42"), "alice");
      assert.equal(await direct.get("user:42"), null);
      assert.equal(await mainDirect.get("user:admin:1"), "root", "the longer prefix wins over user:");
      assert.equal(await mainDirect.get("plain"), "p");
      assert.equal(await mainDirect.get("42"), null);
    } finally {
      direct.disconnect();
      mainDirect.disconnect();
    }
  });

  it("split commands span clusters and merge in order; other multi-key commands across clusters are refused", SLOW, async () => {
    const w = await world.get();
    await w.client.mset({ "user:a": "1", "plain:b": "2", "cache:c": "3" });
    assert.deepEqual(await w.client.mget("cache:c", "user:a", "nothing", "plain:b"), ["3", "1", null, "2"]);
    assert.equal(await w.client.exists("user:a", "plain:b", "cache:c", "nothing"), 3);
    await assert.rejects(w.client.sunion("user:{x}", "{x}"), /keys in request route to different clusters \('users', 'default'\)/);
    assert.equal(await w.client.del("user:a", "plain:b", "cache:c"), 3);
  });

  it("the standalone pool places keys where twemproxy's ketama would, ignoring the prefix's case", SLOW, async () => {
    const w = await world.get();
    const ring = new KetamaRing(w.servers.map((s) => ({ name: twemproxyServerName("127.0.0.1", s.port) })), { hash: "fnv1a_64" });
    // Every other key spells the prefix in capitals: the route matches it all the same.
    const keys = Array.from({ length: 150 }, (_, i) => `${i % 2 === 0 ? "cache" : "CACHE"}:item:${(i * 2654435761) % 1_000_003}`);
    const pipeline = w.client.pipeline();
    for (const key of keys) pipeline.set(key, key);
    await pipeline.exec();
    for (const key of keys) {
      const owner = w.servers[ring.serverFor(encoder.encode(key))]!;
      assert.equal(await owner.command("GET", key), key, `${key} lives on 127.0.0.1:${owner.port}`);
    }
    const used = new Set(keys.map((key) => ring.serverFor(encoder.encode(key))));
    assert.equal(used.size, 3, "150 keys spread over all three servers");
  });

  it("an invalid document is refused with one message per field and changes nothing", SLOW, async () => {
    const w = await world.get();
    const before = (await w.admin("GET", "/config")).body;
    const bad = await w.admin("PUT", "/config", {
      ...before,
      clusters: { ...before.clusters, broken: { seeds: ["not-an-address"], opTimeoutMs: -5 } },
      routes: [...before.routes, { prefix: "z:", cluster: "nowhere" }],
    });
    assert.equal(bad.status, 400);
    const errors: string[] = bad.body.errors;
    assert.ok(errors.some((e) => e.startsWith("clusters.broken.seeds.0") && e.includes("expected host:port")), errors.join("\n"));
    assert.ok(errors.some((e) => e.startsWith("clusters.broken.opTimeoutMs") && e.includes("expected at least 1")), errors.join("\n"));
    assert.ok(errors.some((e) => e.includes("route to unknown cluster 'nowhere'")), errors.join("\n"));
    assert.deepEqual((await w.admin("GET", "/config")).body, before);
    assert.equal((await w.admin("PUT", "/config", undefined, "{oops")).status, 400);
    assert.equal((await w.admin("PUT", "/clusters/x", { seeds: [] })).status, 400);
  });

  it("replacing a cluster keeps serving it: the new scope takes over once ready, the old one is closed", SLOW, async () => {
    const w = await world.get();
    const oldScope = w.proxy.app.control.redisCluster("users")!.scope;
    const writes = (async () => {
      for (let i = 0; i < 200; i++) {
        await w.client.set(`user:r${i}`, String(i));
        assert.equal(await w.client.get(`user:r${i}`), String(i));
      }
    })();
    const put = await w.admin("PUT", "/clusters/users", { seeds: w.users.seeds, opTimeoutMs: 4000 });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual(put.body.changes, ["replaced cluster 'users'"]);
    await writes;
    assert.equal(oldScope.state, "closed");
    const scopes = JSON.stringify((await w.admin("GET", "/debug/scopes")).body);
    assert.equal(scopes.split('"path":"slotgate/clusters/cluster users"').length - 1, 1, "exactly one scope of cluster 'users' remains");
    const view = (await w.admin("GET", "/clusters/users")).body;
    assert.equal(view.ready, true);
    assert.equal(view.coveredSlots, 16384);
  });

  it("DELETE refuses a routed cluster (409) unless forced, 404 for an unknown one, then leaves no trace", SLOW, async () => {
    const w = await world.get();
    assert.equal((await w.admin("DELETE", "/clusters/nope")).status, 404);
    const refused = await w.admin("DELETE", "/clusters/users");
    assert.equal(refused.status, 409);
    assert.match(refused.body.errors[0], /still routed to by route 'user:'/);
    const forced = await w.admin("DELETE", "/clusters/users?force=true");
    assert.equal(forced.status, 200, JSON.stringify(forced.body));
    assert.doesNotMatch(JSON.stringify((await w.admin("GET", "/debug/scopes")).body), /cluster users/);
    assert.equal((await w.admin("GET", "/clusters/users")).status, 404);
    // user:* now falls to the catch-all.
    await w.client.set("user:after", "x");
    assert.equal(await w.client.get("user:after"), "x");
    assert.equal(await w.client.get("user:42"), null);
  });
});
