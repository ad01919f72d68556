/**
 * slotgate authenticating to a real Redis Cluster that wants a password (`requirepass`, with
 * `masterauth` for its replicas) and has ACL users. With the right credentials every kind of
 * upstream connection works — shared ones (RESP2 and RESP3), replicas (`readFrom`), a client's own
 * (MULTI/EXEC, BLPOP), subscribers, discovery and COMMAND learning — so no NOAUTH anywhere; with
 * wrong ones the cluster is not ready, `/readyz` says why, clients read slotgate's own error, the
 * log has one line per node, and fixing them through `PUT /config` makes it ready. A password
 * rotation through `PUT /clusters/:name` under steady load loses no request.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { currentRuntime } from "../../adapters/current.ts";
import { startLocalCluster, startStandaloneRedis } from "../../scripts/local-cluster.ts";
import { startSlotgate, type Slotgate } from "../../src/app.ts";
import { loadConfig } from "../../src/config/load.ts";
import { createLogger } from "../../src/log.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { connectIoredis, launchProxy } from "../support/launch.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp, type RunningProxy } from "../support/proxy.ts";
import { sleep, until, within } from "../support/within.ts";

const SLOW = { timeout: 240_000 };
const DEFAULT_PASSWORD = "default-pw-0f3a";
const APP_PASSWORD = "app-pw-7c21";
const WRONG_PASSWORD = "wrong-pw-9d44";
const REFUSED = "-ERR upstream authentication failed for cluster 'default'\r\n";

describe("slotgate authenticates to Redis", () => {
  const cluster = lazy(() => startLocalCluster({ auth: { password: DEFAULT_PASSWORD, user: { name: "app", passwords: [APP_PASSWORD] } } }));
  const proxies: RunningProxy[] = [];
  const apps: Slotgate[] = [];
  const clients: Redis[] = [];
  after(async () => {
    for (const client of clients) client.disconnect();
    await Promise.all([...proxies.map((p) => p.stop().catch(() => {})), ...apps.map((a) => a.close().catch(() => {}))]);
    await cluster.stop();
  });

  /** Every kind of upstream connection, through `proxy`: none may meet NOAUTH. */
  async function exercise(proxy: RunningProxy, tag: string): Promise<void> {
    const client = await connectIoredis(proxy, clients);
    // Shared pipelined connections (and replica ones, when reads go there).
    assert.equal(await client.set(`${tag}:k`, "v"), "OK");
    assert.equal(await client.get(`${tag}:k`), "v");
    // A transaction, on a connection of the client's own.
    assert.deepEqual(await client.multi().incr(`{${tag}}:n`).incr(`{${tag}}:n`).exec(), [[null, 1], [null, 2]]);
    // A blocking command, on a connection of the client's own.
    const blocker = await connectIoredis(proxy, clients);
    const popped = blocker.blpop(`${tag}:list`, 10);
    await sleep(100);
    await client.rpush(`${tag}:list`, "x");
    assert.deepEqual(await within(popped, "BLPOP to get the pushed element"), [`${tag}:list`, "x"]);
    // A subscriber connection.
    const subscriber = await connectIoredis(proxy, clients);
    let received: string | null = null;
    subscriber.on("message", (_channel, text) => (received ??= text));
    await subscriber.subscribe(`${tag}:ch`);
    // PUBLISH counts the receivers of the node it ran on only: wait for the message itself.
    await client.publish(`${tag}:ch`, "hello");
    await until("the published message to arrive", () => received !== null, 20_000);
    assert.equal(received, "hello");
    // A RESP3 connection (HELLO 3 AUTH upstream).
    const raw = await RawClient.connect(proxy.port);
    raw.send(resp("HELLO", "3") + resp("GET", `${tag}:k`));
    const text = await raw.waitFor((t) => t.endsWith("$1\r\nv\r\n"));
    assert.doesNotMatch(text, /NOAUTH|WRONGPASS|authentication failed/);
    raw.close();
    // Discovery and COMMAND learning.
    const redisCluster = proxy.app.cluster;
    assert.equal(redisCluster.stats.lastError, null);
    await until("COMMAND to be learned", () => redisCluster.commands?.learned === true, 20_000);
    assert.equal(redisCluster.commands?.lastError, null);
  }

  it("with the default user's password (SLOTGATE_UPSTREAM_PASSWORD) and replica reads, every upstream connection authenticates", SLOW, async () => {
    const c = await cluster.get();
    const proxy = await launchProxy(proxies, c.seeds, { SLOTGATE_UPSTREAM_PASSWORD: DEFAULT_PASSWORD, SLOTGATE_READ_FROM: "replica", SLOTGATE_REFRESH_INTERVAL_MS: "500" });
    // A fresh cluster lists its replicas in CLUSTER SLOTS once they have synced.
    await until("the slot map to list replicas", () => proxy.app.cluster.topology.ranges.every((range) => range.replicas.length > 0), 30_000);
    await exercise(proxy, "default");
    const stats = proxy.app.cluster.stats;
    assert.ok(stats.replicaReads > 0, "reads went to replicas");
    assert.equal(stats.replicaFallbacks, 0, "no replica refused a read (a refused AUTH would send it to the primary)");
    assert.ok(proxy.app.cluster.nodes().every((node) => node.health === "up"), JSON.stringify(proxy.app.cluster.nodes()));

    // GET /config never shows the password.
    const config = await (await fetch(`http://127.0.0.1:${proxy.app.admin!.port}/config`)).json();
    assert.equal(config.clusterDefaults.password, "[redacted]");
    assert.doesNotMatch(JSON.stringify(config), new RegExp(DEFAULT_PASSWORD));
  });

  it("with an ACL user (SLOTGATE_UPSTREAM_USERNAME and SLOTGATE_UPSTREAM_PASSWORD), every upstream connection authenticates", SLOW, async () => {
    const c = await cluster.get();
    const proxy = await launchProxy(proxies, c.seeds, { SLOTGATE_UPSTREAM_USERNAME: "app", SLOTGATE_UPSTREAM_PASSWORD: APP_PASSWORD, SLOTGATE_READ_FROM: "replica" });
    await exercise(proxy, "acl");
    assert.equal(proxy.app.cluster.stats.replicaFallbacks, 0);
    // The connections really are the ACL user's.
    const primary = (await c.primaries())[0]!;
    assert.match(await c.command(primary.port, "CLIENT", "LIST"), /user=app/);
  });

  it("with wrong credentials: not ready, /readyz says why, clients read slotgate's error, one log line per node; PUT /config with the right ones makes it ready", SLOW, async () => {
    const c = await cluster.get();
    const lines: string[] = [];
    const config = loadConfig({
      env: {
        SLOTGATE_SEEDS: c.seeds.join(","),
        SLOTGATE_LISTEN: "127.0.0.1:0",
        SLOTGATE_ADMIN_LISTEN: "127.0.0.1:0",
        SLOTGATE_SHUTDOWN_TIMEOUT_MS: "1000",
        SLOTGATE_UPSTREAM_USERNAME: "app",
        SLOTGATE_UPSTREAM_PASSWORD: WRONG_PASSWORD,
        SLOTGATE_REFRESH_INTERVAL_MS: "300",
        SLOTGATE_REFRESH_TIMEOUT_MS: "1000",
      },
      readFile: () => {
        throw new Error("no config file in tests");
      },
    });
    const app = await startSlotgate(await currentRuntime(), config, createLogger("debug", (line) => lines.push(line)));
    apps.push(app);
    const admin = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`http://127.0.0.1:${app.admin!.port}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: response.status, body: await response.json() };
    };
    // Several refresh rounds, each of them asking every seed.
    await until("every seed to have refused the credentials", () => c.seeds.every((seed) => lines.some((l) => l.includes(`address=${seed}`))), 30_000);
    await sleep(1500);

    const readyz = await admin("GET", "/readyz");
    assert.equal(readyz.status, 503);
    assert.deepEqual(readyz.body.notReady, ["default"]);
    assert.match(readyz.body.reasons.default, /^upstream authentication failed for cluster 'default': 127\.0\.0\.1:\d+ answered WRONGPASS/);

    const raw = await RawClient.connect(app.port);
    // A shared connection's command, and one that needs a connection of its own.
    raw.send(resp("GET", "k") + resp("BLPOP", "list", "1"));
    const text = await raw.waitFor((t) => t.length >= 2 * REFUSED.length);
    assert.equal(text, REFUSED + REFUSED, "exactly slotgate's error, not WRONGPASS or NOAUTH");
    raw.close();

    // One line per node however many rounds, connections and probes met the refusal.
    const refusals = lines.filter((line) => line.startsWith("WARN upstream authentication failed"));
    assert.equal(refusals.length, c.seeds.length, refusals.join("\n"));
    for (const seed of c.seeds) assert.equal(refusals.filter((l) => l.includes(`address=${seed} `)).length, 1, seed);
    assert.ok(refusals.every((l) => l.includes("WRONGPASS")));
    assert.ok(!lines.some((line) => line.includes(WRONG_PASSWORD)), "no log line holds the password");
    assert.equal(app.cluster.isReady, false);

    // Fix them: GET /config, put the right password in, PUT it back.
    const current = (await admin("GET", "/config")).body;
    assert.equal(current.clusterDefaults.password, "[redacted]");
    const put = await admin("PUT", "/config", { ...current, clusterDefaults: { ...current.clusterDefaults, password: APP_PASSWORD } });
    assert.deepEqual([put.status, put.body], [200, { changes: ["replaced cluster 'default'", "updated clusterDefaults"] }]);
    await until("the cluster to be ready", async () => (await admin("GET", "/readyz")).status === 200, 30_000);
    const fixed = await RawClient.connect(app.port);
    fixed.send(resp("SET", "fixed", "yes") + resp("GET", "fixed"));
    assert.equal(await fixed.waitFor((t) => t.endsWith("$3\r\nyes\r\n")), "+OK\r\n$3\r\nyes\r\n");
    fixed.close();
    assert.ok(!lines.some((line) => line.includes(APP_PASSWORD) || line.includes(WRONG_PASSWORD)), "no log line holds a password");
  });

  it("rotating the password of an ACL user with two passwords through PUT /clusters/:name under steady load loses no request", SLOW, async () => {
    const c = await cluster.get();
    const everyNode = (...args: string[]) => Promise.all(c.nodes.map((node) => c.command(node.port, ...args)));
    await everyNode("ACL", "SETUSER", "rot", "on", ">rot-old", "~*", "&*", "+@all");
    const document = { seeds: c.seeds, username: "rot", password: "rot-old" };
    const config = loadConfig({
      env: { SLOTGATE_CONFIG: "rotation.json" },
      readFile: () => JSON.stringify({ listen: "127.0.0.1:0", logLevel: "warn", shutdownTimeoutMs: 1000, admin: { listen: "127.0.0.1:0" }, clusters: { default: document } }),
    });
    const app = await startSlotgate(await currentRuntime(), config);
    apps.push(app);
    await within(app.ready(), "slotgate to be ready", 30_000);
    const admin = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`http://127.0.0.1:${app.admin!.port}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: response.status, body: await response.json() };
    };

    // Steady load: each worker INCRs its own counter, one request after another.
    const workers = 4;
    let running = true;
    const errors: string[] = [];
    const done: number[] = new Array(workers).fill(0);
    const loads = Array.from({ length: workers }, async (_, index) => {
      const client = await connectIoredis({ app, port: app.port, stop: () => app.close() }, clients);
      while (running) {
        try {
          const value = await client.incr(`rot:${index}`);
          done[index]!++;
          if (value !== done[index]) errors.push(`worker ${index}: INCR answered ${value} after ${done[index]} successes`);
        } catch (error) {
          errors.push(`worker ${index}: ${(error as Error).message}`);
        }
      }
    });
    await sleep(500);
    // Add the new password, switch slotgate to it, then remove the old one.
    await everyNode("ACL", "SETUSER", "rot", ">rot-new");
    const put = await admin("PUT", "/clusters/default", { ...document, password: "rot-new" });
    assert.deepEqual([put.status, put.body], [200, { changes: ["replaced cluster 'default'"] }]);
    await sleep(500);
    await everyNode("ACL", "SETUSER", "rot", "<rot-old");
    await sleep(1000);
    running = false;
    await Promise.all(loads);

    assert.deepEqual(errors, []);
    assert.ok(done.every((n) => n > 10), `each worker made progress: ${done.join(", ")}`);
    for (let index = 0; index < workers; index++) {
      const owner = await c.ownerOfSlot(keySlot(new TextEncoder().encode(`rot:${index}`)));
      assert.equal(Number(await c.command(owner.port, "GET", `rot:${index}`)), done[index], "every INCR counted once");
    }
    // The new connections use the new password: a fresh client works once the old one is gone.
    const fresh = await RawClient.connect(app.port);
    fresh.send(resp("GET", "rot:0"));
    assert.match(await fresh.waitFor((t) => t.endsWith("\r\n") && t.length > 4), /^\$\d+\r\n\d+\r\n$/);
    fresh.close();
    const shown = (await admin("GET", "/config")).body;
    assert.equal(shown.clusters.default.password, "[redacted]");
    assert.equal(shown.clusters.default.username, "rot");
  });
});

describe("slotgate authenticates to standalone Redis servers (a pool)", () => {
  const server = lazy(() => startStandaloneRedis({ extraConfig: ["requirepass pool-pw-51"] }));
  const apps: Slotgate[] = [];
  after(async () => {
    await Promise.all(apps.map((a) => a.close().catch(() => {})));
    await server.stop();
  });

  async function launch(password: string, lines: string[]): Promise<Slotgate> {
    const s = await server.get();
    const document = {
      listen: "127.0.0.1:0",
      shutdownTimeoutMs: 1000,
      admin: { listen: "127.0.0.1:0" },
      clusters: { pool: { type: "standalone", servers: [`127.0.0.1:${s.port}`], password, refreshIntervalMs: 300 } },
    };
    const config = loadConfig({ env: { SLOTGATE_CONFIG: "pool.json" }, readFile: () => JSON.stringify(document) });
    const app = await startSlotgate(await currentRuntime(), config, createLogger("debug", (line) => lines.push(line)));
    apps.push(app);
    return app;
  }

  it("the readiness PING and the pool's connections authenticate; wrong credentials keep it unready, saying why, logged once", SLOW, async () => {
    const good = await launch("pool-pw-51", []);
    await within(good.ready(), "the pool to be ready", 30_000);
    const client = await RawClient.connect(good.port);
    client.send(resp("SET", "p", "1") + resp("GET", "p"));
    assert.equal(await client.waitFor((t) => t.endsWith("$1\r\n1\r\n")), "+OK\r\n$1\r\n1\r\n");
    client.close();

    const lines: string[] = [];
    const bad = await launch("not-the-pw", lines);
    await until("the refusal to be logged", () => lines.some((l) => l.startsWith("WARN upstream authentication failed")), 30_000);
    await sleep(1500);
    const readyz = await fetch(`http://127.0.0.1:${bad.admin!.port}/readyz`);
    assert.equal(readyz.status, 503);
    const body = await readyz.json();
    assert.match(body.reasons.pool, /^upstream authentication failed for cluster 'pool': 127\.0\.0\.1:\d+ answered WRONGPASS/);
    const raw = await RawClient.connect(bad.port);
    raw.send(resp("GET", "p"));
    assert.equal(await raw.waitFor((t) => t.endsWith("\r\n")), "-ERR upstream authentication failed for cluster 'pool'\r\n");
    raw.close();
    assert.equal(lines.filter((l) => l.startsWith("WARN upstream authentication failed")).length, 1, lines.join("\n"));
    assert.ok(!lines.some((l) => l.includes("not-the-pw")));
  });
});
