/**
 * The admin API over real HTTP: `startAdminServer` on the adapter `currentRuntime()` picks (Node,
 * Bun or Deno), at 127.0.0.1 port 0, with a fake ControlPlane. Checks a few routes end to end, the
 * refusal of a non-loopback address without a token, and that closing the scope stops the server.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { currentRuntime } from "../../adapters/current.ts";
import { startAdminServer } from "../../src/admin/server.ts";
import type { ChangeResult, ClusterView, ControlPlane } from "../../src/control/types.ts";
import { Scope } from "../../src/scope/scope.ts";
import type { Runtime } from "../../src/runtime.ts";
import { within as boundedWait } from "../support/within.ts";

const within = <T>(promise: Promise<T>, what: string, ms = HANG) => boundedWait(promise, what, ms);

const HOST = "127.0.0.1";
const TOKEN = "conformance-token";
const HANG = 20_000;
const TEST = { timeout: 60_000 };

let rt: Runtime;


class FakeControl implements ControlPlane {
  document: unknown = { clusters: { a: { seeds: ["127.0.0.1:7000"] } } };
  writes: unknown[][] = [];
  config(): unknown {
    return this.document;
  }
  async replaceConfig(document: unknown): Promise<ChangeResult> {
    this.writes.push(["replaceConfig", document]);
    this.document = document;
    return { ok: true, changes: ["replaced the configuration"] };
  }
  async putCluster(name: string, document: unknown): Promise<ChangeResult> {
    this.writes.push(["putCluster", name, document]);
    return { ok: false, status: 400, problems: [`clusters.${name}.seeds: expected at least one host:port`] };
  }
  async deleteCluster(name: string, force: boolean): Promise<ChangeResult> {
    this.writes.push(["deleteCluster", name, force]);
    return force ? { ok: true, changes: [`removed cluster '${name}'`] } : { ok: false, status: 409, problems: ["a route points at it"] };
  }
  clusters(): ClusterView[] {
    return [];
  }
  cluster(): ClusterView | null {
    return null;
  }
  scopes() {
    return { path: "root", state: "open" as const, resources: [], children: [] };
  }
  ready() {
    return { ready: false, notReady: ["a"] };
  }
}

async function fetchJson(url: string, init: RequestInit = {}): Promise<{ status: number; type: string | null; body: unknown; headers: Headers }> {
  const response = await within(fetch(url, init), `${init.method ?? "GET"} ${url}`);
  const text = await response.text();
  return { status: response.status, type: response.headers.get("content-type"), body: JSON.parse(text) as unknown, headers: response.headers };
}

describe("admin API over HTTP", () => {
  before(async () => {
    rt = await currentRuntime();
  });

  let scope: Scope;
  after(async () => {
    await scope?.close();
  });

  test("serves the routes, with auth, on this runtime", TEST, async () => {
    scope = Scope.root(rt, "admin-conformance");
    const control = new FakeControl();
    const server = await startAdminServer(scope, { host: HOST, port: 0, token: TOKEN, control, version: "9.9.9" });
    assert.equal(server.host, HOST);
    assert.ok(server.port > 0, `a real port, got ${server.port}`);
    const base = `http://${HOST}:${server.port}`;
    const auth = { authorization: `Bearer ${TOKEN}` };

    const health = await fetchJson(`${base}/healthz`);
    assert.deepEqual([health.status, health.type, health.body], [200, "application/json", { status: "ok" }]);
    const ready = await fetchJson(`${base}/readyz`);
    assert.deepEqual([ready.status, ready.body], [503, { ready: false, notReady: ["a"] }]);

    const denied = await fetchJson(`${base}/config`);
    assert.equal(denied.status, 401);
    assert.match(denied.headers.get("www-authenticate") ?? "", /^Bearer\b/);

    const config = await fetchJson(`${base}/config`, { headers: auth });
    assert.deepEqual([config.status, config.body], [200, control.document]);

    const document = { clusters: { b: { seeds: ["10.0.0.1:6379"] } } };
    const put = await fetchJson(`${base}/config`, {
      method: "PUT",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify(document),
    });
    assert.deepEqual([put.status, put.body], [200, { changes: ["replaced the configuration"] }]);
    assert.deepEqual(control.writes, [["replaceConfig", document]]);

    const invalid = await fetchJson(`${base}/config`, { method: "PUT", headers: auth, body: "{oops" });
    assert.equal(invalid.status, 400);
    assert.match((invalid.body as { error: string }).error, /^invalid JSON body: /);

    const refused = await fetchJson(`${base}/clusters/b`, { method: "PUT", headers: auth, body: "{}" });
    assert.deepEqual([refused.status, refused.body], [400, { errors: ["clusters.b.seeds: expected at least one host:port"] }]);
    const conflict = await fetchJson(`${base}/clusters/a`, { method: "DELETE", headers: auth });
    assert.equal(conflict.status, 409);
    const forced = await fetchJson(`${base}/clusters/a?force=true`, { method: "DELETE", headers: auth });
    assert.deepEqual([forced.status, forced.body], [200, { changes: ["removed cluster 'a'"] }]);

    const missing = await fetchJson(`${base}/clusters/zz`, { headers: auth });
    assert.deepEqual([missing.status, missing.body], [404, { error: "cluster 'zz' is not configured" }]);
    const wrongMethod = await fetchJson(`${base}/config`, { method: "POST", headers: auth, body: "{}" });
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.get("allow"), "GET, HEAD, PUT");

    const tooBig = await fetchJson(`${base}/config`, { method: "PUT", headers: auth, body: " ".repeat(1024 * 1024 + 1) });
    assert.equal(tooBig.status, 413);

    const scopes = await fetchJson(`${base}/debug/scopes`, { headers: auth });
    assert.equal(scopes.status, 200);

    // The server is listed in its scope, then stops with it.
    const listed = scope.inspect().resources;
    assert.ok(
      listed.some((r) => r.kind === "listener" && r.name === `admin http://${HOST}:${server.port}`),
      `the admin listener is owned by the scope: ${JSON.stringify(listed)}`,
    );
    await within(scope.close(), "scope close");
    await assert.rejects(within(fetch(`${base}/healthz`), "fetch after close"), "a fetch after the scope closed fails");
  });

  test("without a token, only loopback; a non-loopback host is refused before listening", TEST, async () => {
    scope = Scope.root(rt, "admin-refusal");
    const control = new FakeControl();
    for (const host of ["0.0.0.0", "::", "10.1.2.3", "example.com"]) {
      await assert.rejects(
        startAdminServer(scope, { host, port: 6390, control, version: "1" }),
        (error: Error) => {
          assert.match(error.message, /is not a loopback address: set SLOTGATE_ADMIN_TOKEN to expose the admin API/);
          return true;
        },
        host,
      );
      await assert.rejects(startAdminServer(scope, { host, port: 6390, token: "", control, version: "1" }), /not a loopback address/);
    }
    assert.equal(scope.liveCount(), 0, "nothing was started");

    const open = await startAdminServer(scope, { host: HOST, port: 0, control, version: "1" });
    const config = await fetchJson(`http://${HOST}:${open.port}/config`);
    assert.deepEqual([config.status, config.body], [200, control.document]);
    // Closing the server itself releases it from the scope.
    await within(open.close(), "server close");
    assert.equal(scope.liveCount(), 0, "the closed server is no longer owned");
    await assert.rejects(within(fetch(`http://${HOST}:${open.port}/healthz`), "fetch after close"), "a fetch after close fails");

    await scope.close();
    await assert.rejects(startAdminServer(scope, { host: HOST, port: 0, control, version: "1" }), /is closed/);
  });
});
