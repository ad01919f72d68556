/**
 * A standalone pool is ready only once every one of its servers has answered a PING: `/readyz`,
 * `GET /clusters/:name` and the readiness wait of a config change all see it. Real redis-server
 * processes; one is stopped (SIGSTOP) to play a server that accepts connections and never answers,
 * and a free port plays one that refuses them.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { currentRuntime } from "../../adapters/current.ts";
import { startStandaloneRedis } from "../../scripts/local-cluster.ts";
import { freePort } from "../../scripts/free-port.ts";
import { startSlotgate, type Slotgate } from "../../src/app.ts";
import { loadConfig } from "../../src/config/load.ts";
import { createLogger } from "../../src/log.ts";
import { lazy } from "../support/lazy.ts";
import { until, within } from "../support/within.ts";

const SLOW = { timeout: 120_000 };
const TOKEN = "pool-readiness-token";
/** Short enough that a probe of a stopped server fails and is retried within the test. */
const FAST = { connectTimeoutMs: 500, opTimeoutMs: 500, refreshIntervalMs: 500 };

describe("standalone pool readiness", () => {
  const live = lazy(() => startStandaloneRedis());
  const stopped = lazy(() => startStandaloneRedis());
  const started: Slotgate[] = [];
  const paused = new Set<number>();
  after(async () => {
    for (const pid of paused) process.kill(pid, "SIGCONT");
    await Promise.all(started.map((app) => app.close().catch(() => {})));
    await Promise.all([live.stop(), stopped.stop()]);
  });

  async function launch(clusters: Record<string, unknown>, lines?: string[]): Promise<{ app: Slotgate; admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> }> {
    const document = { listen: "127.0.0.1:0", logLevel: "silent", shutdownTimeoutMs: 500, admin: { listen: "127.0.0.1:0", token: TOKEN }, clusters, catchAll: Object.keys(clusters)[0] };
    const config = loadConfig({ env: { SLOTGATE_CONFIG: "pool.json" }, readFile: () => JSON.stringify(document) });
    const app = await startSlotgate(await currentRuntime(), config, lines ? createLogger("info", (line) => lines.push(line)) : createLogger(config.logLevel));
    started.push(app);
    const base = `http://127.0.0.1:${app.admin!.port}`;
    return {
      app,
      async admin(method, path, body) {
        const response = await within(
          fetch(base + path, { method, headers: { authorization: `Bearer ${TOKEN}` }, body: body === undefined ? undefined : JSON.stringify(body) }),
          `${method} ${path}`,
        );
        return { status: response.status, body: await response.json() };
      },
    };
  }

  it("a pool with a server that refuses connections is not ready, and says which server", SLOW, async () => {
    const server = await live.get();
    const dead = await freePort();
    const { admin } = await launch({ pool: { type: "standalone", servers: [`127.0.0.1:${server.port}`, `127.0.0.1:${dead}`], ...FAST } });
    // Wait until a probe has failed, so the answer is not just "not probed yet".
    await until("a failed probe of the dead server", async () => (await admin("GET", "/clusters/pool")).body.lastError !== null);
    const view = (await admin("GET", "/clusters/pool")).body;
    assert.equal(view.ready, false);
    assert.match(view.lastError, new RegExp(`^127\\.0\\.0\\.1:${dead} did not answer PING: `));
    const readyz = await admin("GET", "/readyz");
    assert.deepEqual([readyz.status, readyz.body.ready, readyz.body.notReady], [503, false, ["pool"]]);
    assert.match(readyz.body.reasons.pool, new RegExp(`^127\\.0\\.0\\.1:${dead} did not answer PING: `), "/readyz says why");
  });

  it("a pool becomes ready once every server answers, probed again after failures", SLOW, async () => {
    const [a, b] = await Promise.all([live.get(), stopped.get()]);
    process.kill(b.pid, "SIGSTOP");
    paused.add(b.pid);
    const lines: string[] = [];
    const { app, admin } = await launch({ pool: { type: "standalone", servers: [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`], ...FAST } }, lines);
    await until("a probe of the stopped server to time out", async () => (await admin("GET", "/clusters/pool")).body.lastError !== null);
    assert.equal((await admin("GET", "/readyz")).status, 503);
    // The first probe times out; once the server is suspect, later probes fail at once saying so.
    assert.match((await admin("GET", "/clusters/pool")).body.lastError, new RegExp(`^127\\.0\\.0\\.1:${b.port} did not answer PING: .*(did not answer within 500 ms|is suspect \\(a request got no reply within 500 ms\\))`));
    process.kill(b.pid, "SIGCONT");
    paused.delete(b.pid);
    await within(app.ready(), "the pool to become ready once the server answers", 60_000);
    assert.deepEqual(await admin("GET", "/readyz"), { status: 200, body: { ready: true, notReady: [] } });
    const view = (await admin("GET", "/clusters/pool")).body;
    assert.deepEqual([view.ready, view.lastError], [true, null]);
    assert.doesNotMatch(JSON.stringify(view.scope), /readiness probe/, "the probe is over");
    // Logged once each, however many probes failed in between.
    const notReady = lines.filter((line) => line.startsWith("WARN cluster not ready cluster=pool"));
    assert.equal(notReady.length, 1, lines.join("\n"));
    assert.match(notReady[0]!, new RegExp(`cause="127\\.0\\.0\\.1:${b.port} did not answer PING`));
    assert.equal(lines.filter((line) => line.startsWith("INFO cluster ready cluster=pool servers=2")).length, 1, lines.join("\n"));
  });

  it("a routed pool whose server never answers holds a config change for readyTimeoutMs at most, and its removal is not held by the probe", SLOW, async () => {
    const [a, b] = await Promise.all([live.get(), stopped.get()]);
    const { admin } = await launch({ main: { type: "standalone", servers: [`127.0.0.1:${a.port}`] } });
    await until("the first pool to be ready", async () => (await admin("GET", "/readyz")).status === 200);
    process.kill(b.pid, "SIGSTOP");
    paused.add(b.pid);
    const current = (await admin("GET", "/config")).body;
    const put = await admin("PUT", "/config", {
      ...current,
      // An hour to drain: the removal below finishes only because the probe never holds a drain.
      clusters: { ...current.clusters, hung: { type: "standalone", servers: [`127.0.0.1:${b.port}`], readyTimeoutMs: 300, drainTimeoutMs: 3_600_000, ...FAST } },
      routes: [{ prefix: "hung:", cluster: "hung" }],
    });
    assert.deepEqual([put.status, put.body], [200, { changes: ["added cluster 'hung'", "updated routes"] }]);
    const readyz = await admin("GET", "/readyz");
    assert.deepEqual([readyz.status, readyz.body.ready, readyz.body.notReady], [503, false, ["hung"]]);
    assert.match(JSON.stringify((await admin("GET", "/clusters/hung")).body.scope), /readiness probe/);
    const removed = await admin("DELETE", "/clusters/hung?force=true");
    assert.equal(removed.status, 200, JSON.stringify(removed.body));
    assert.doesNotMatch(JSON.stringify((await admin("GET", "/debug/scopes")).body), /cluster hung/);
    assert.equal((await admin("GET", "/readyz")).status, 200);
  });
});
