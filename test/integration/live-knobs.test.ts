/**
 * Every knob `PUT /config` accepts applies live, as README's "Live changes" table says, or is
 * refused with 409 and the reason; and `GET /config` never shows the admin token. Each test runs
 * its own slotgate (on this runtime's adapter) in front of one standalone Redis server, changed
 * through the admin API over real HTTP, with real client connections.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { currentRuntime } from "../../adapters/current.ts";
import { startStandaloneRedis, type StandaloneRedis } from "../../scripts/local-cluster.ts";
import { startSlotgate, type Slotgate } from "../../src/app.ts";
import { loadConfig } from "../../src/config/load.ts";
import { createLogger } from "../../src/log.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp } from "../support/proxy.ts";
import { within } from "../support/within.ts";

const SLOW = { timeout: 120_000 };
const TOKEN = "live-knobs-token";

interface Proxy {
  app: Slotgate;
  /** Log lines written so far. */
  lines: string[];
  admin(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: any }>;
  /** GET /config, changed by `edit`, PUT back: the change's answer. */
  change(edit: (document: any) => void): Promise<{ status: number; body: any }>;
  connect(): Promise<RawClient>;
}

describe("live knobs", () => {
  const redis = lazy(() => startStandaloneRedis());
  const started: Slotgate[] = [];
  const clients: RawClient[] = [];
  after(async () => {
    for (const client of clients) client.close();
    await Promise.all(started.map((app) => app.close().catch(() => {})));
    await redis.stop();
  });

  async function launch(extra: Record<string, unknown> = {}): Promise<Proxy> {
    const server: StandaloneRedis = await redis.get();
    const document = {
      listen: "127.0.0.1:0",
      logLevel: "warn",
      shutdownTimeoutMs: 1000,
      admin: { listen: "127.0.0.1:0", token: TOKEN },
      clusters: { pool: { type: "standalone", servers: [`127.0.0.1:${server.port}`] } },
      catchAll: "pool",
      ...extra,
    };
    const config = loadConfig({ env: { SLOTGATE_CONFIG: "live.json" }, readFile: () => JSON.stringify(document) });
    const lines: string[] = [];
    const app = await startSlotgate(await currentRuntime(), config, createLogger(config.logLevel, (line) => lines.push(line)));
    started.push(app);
    const base = `http://127.0.0.1:${app.admin!.port}`;
    const admin = async (method: string, path: string, body?: unknown, token = TOKEN) => {
      const response = await within(
        fetch(base + path, { method, headers: { authorization: `Bearer ${token}` }, body: body === undefined ? undefined : JSON.stringify(body) }),
        `${method} ${path}`,
      );
      return { status: response.status, body: await response.json() };
    };
    return {
      app,
      lines,
      admin,
      async change(edit) {
        const current = await admin("GET", "/config");
        assert.equal(current.status, 200);
        edit(current.body);
        return admin("PUT", "/config", current.body);
      },
      async connect() {
        const client = await RawClient.connect(app.port);
        clients.push(client);
        return client;
      },
    };
  }

  /** Send PING and wait for the answer (or the connection to close). */
  async function ping(client: RawClient): Promise<string> {
    const before = client.received.length;
    client.send(resp("PING"));
    const text = await client.waitFor((t) => t.length > before);
    return text.slice(before);
  }

  it("a live maxClients change applies to the next connection; clients already connected stay", SLOW, async () => {
    const proxy = await launch();
    const first = await proxy.connect();
    const second = await proxy.connect();
    assert.equal(await ping(first), "+PONG\r\n");
    assert.equal(await ping(second), "+PONG\r\n");
    const lowered = await proxy.change((d) => (d.limits.maxClients = 1));
    assert.deepEqual([lowered.status, lowered.body], [200, { changes: ["updated limits.maxClients (10000 → 1)"] }]);
    const refused = await proxy.connect();
    assert.equal(await refused.waitFor((t) => t.length > 0), "-ERR max number of clients reached\r\n");
    await refused.waitClosed();
    assert.equal(await ping(first), "+PONG\r\n", "connected clients stay, even over the lowered limit");
    assert.equal(await ping(second), "+PONG\r\n");
    second.close();
    first.close();
    const raised = await proxy.change((d) => (d.limits.maxClients = 3));
    assert.equal(raised.status, 200);
    assert.equal(await ping(await proxy.connect()), "+PONG\r\n");
  });

  it("maxDedicatedConnections applies at once, to clients already connected", SLOW, async () => {
    const proxy = await launch();
    const client = await proxy.connect();
    assert.equal(await ping(client), "+PONG\r\n");
    const changed = await proxy.change((d) => (d.limits.maxDedicatedConnections = 0));
    assert.deepEqual(changed.body, { changes: ["updated limits.maxDedicatedConnections (1024 → 0)"] });
    client.send(resp("BLPOP", "live:list", "1"));
    assert.equal(await client.waitFor((t) => t.endsWith("\r\n") && t.length > 7), "+PONG\r\n-ERR max number of dedicated upstream connections reached (0)\r\n");
  });

  it("maxBulkBytes applies to clients that connect afterwards, and replaces every cluster", SLOW, async () => {
    const proxy = await launch();
    const old = await proxy.connect();
    assert.equal(await ping(old), "+PONG\r\n");
    const changed = await proxy.change((d) => (d.limits.maxBulkBytes = 100));
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.deepEqual(changed.body.changes.sort(), ["replaced cluster 'pool'", "updated limits.maxBulkBytes (536870912 → 100)"]);
    const value = "v".repeat(200);
    old.send(resp("SET", "live:big", value));
    assert.equal(await old.waitFor((t) => t.length > 7), "+PONG\r\n+OK\r\n", "a client connected before keeps its limit");
    const fresh = await proxy.connect();
    fresh.send(resp("SET", "live:big", value));
    assert.match(await fresh.waitFor((t) => t.length > 0), /^-ERR Protocol error: invalid bulk length/);
    await fresh.waitClosed();
  });

  it("logLevel applies at once: the change's own line is logged at the new level", SLOW, async () => {
    const proxy = await launch();
    const changed = await proxy.change((d) => (d.logLevel = "info"));
    assert.deepEqual(changed.body, { changes: ["updated logLevel (warn → info)"] });
    assert.ok(proxy.lines.includes("INFO updated logLevel (warn → info)"), proxy.lines.join("\n"));
  });

  it("shutdownTimeoutMs changed live bounds the next shutdown", SLOW, async () => {
    // Started with an hour to drain: only the live value lets close finish while a request is in
    // flight. The request is a SET held by Redis itself (CLIENT PAUSE WRITE), not a blocking
    // command: those are interrupted at once on shutdown, whatever the timeout. The cluster's own
    // drain is an hour too: the shutdown's budget bounds it as well.
    const proxy = await launch({ shutdownTimeoutMs: 3_600_000, clusterDefaults: { drainTimeoutMs: 3_600_000 } });
    const changed = await proxy.change((d) => (d.shutdownTimeoutMs = 200));
    assert.deepEqual(changed.body, { changes: ["updated shutdownTimeoutMs (3600000 → 200)"] });
    const server = await redis.get();
    const held = await proxy.connect();
    await server.command("CLIENT", "PAUSE", "120000", "WRITE");
    try {
      held.send(resp("SET", "live:held", "1"));
      // The proxy has sent it once Redis holds a client blocked on it.
      for (let i = 0; i < 200 && !(await server.command("CLIENT", "LIST")).includes("cmd=set"); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(await server.command("CLIENT", "LIST"), /flags=b .*cmd=set/);
      await within(proxy.app.close(), "a shutdown bounded by the live shutdownTimeoutMs", 60_000);
      await held.waitClosed();
      assert.equal(String(await server.command("EXISTS", "live:held")).trim(), "0", "closed while Redis still held the SET: the drain did not wait for it");
    } finally {
      await server.command("CLIENT", "UNPAUSE");
    }
  });

  it("listen and admin cannot change while running: 409 with the field and the reason, and nothing changes", SLOW, async () => {
    const proxy = await launch();
    const before = await proxy.admin("GET", "/config");
    const listen = await proxy.change((d) => {
      d.listen = "127.0.0.1:1";
      d.logLevel = "debug";
    });
    assert.equal(listen.status, 409);
    assert.deepEqual(listen.body.errors, ["listen: cannot change while running (127.0.0.1:0 → 127.0.0.1:1): the client listener is bound once, at start; restart slotgate to change it"]);
    const admin = await proxy.change((d) => (d.admin.listen = "127.0.0.1:2"));
    assert.equal(admin.status, 409);
    assert.match(admin.body.errors[0], /^admin\.listen: cannot change while running \(127\.0\.0\.1:0 → 127\.0\.0\.1:2\): /);
    const token = await proxy.change((d) => (d.admin.token = "another-token-123"));
    assert.equal(token.status, 409);
    assert.deepEqual(token.body.errors, ["admin.token: cannot change while running: the admin API's token is fixed at start; restart slotgate to change it"]);
    assert.deepEqual(await proxy.admin("GET", "/config"), before, "nothing changed, the log level included");
    assert.equal(proxy.app.control.config().logLevel, "warn");
  });

  it("GET /config shows the token redacted; the document sent back keeps it; the literal is never a token", SLOW, async () => {
    const proxy = await launch();
    const shown = await proxy.admin("GET", "/config");
    assert.equal(shown.body.admin.token, "[redacted]");
    assert.doesNotMatch(JSON.stringify(shown.body), new RegExp(TOKEN));
    const changed = await proxy.change((d) => (d.denyCommands = ["FLUSHALL"]));
    assert.deepEqual([changed.status, changed.body], [200, { changes: ["updated denyCommands"] }]);
    assert.equal(proxy.app.control.config().admin.token, TOKEN, "the secret in force is kept");
    assert.equal((await proxy.admin("GET", "/version", undefined, "[redacted]")).status, 401);
    assert.equal((await proxy.admin("GET", "/version")).status, 200);
    const none = await proxy.change((d) => delete d.admin.token);
    assert.equal(none.status, 409, "removing the token is a change to admin.token");
  });
});
