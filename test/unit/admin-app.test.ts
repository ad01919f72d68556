/**
 * The admin HTTP API (src/admin/app.ts), driven through `app.fetch(new Request(...))` with a fake
 * ControlPlane: routes, auth, body handling, status mapping, 404/405/413 and write serialisation.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createAdminApp, isLoopbackHost, timingSafeEqual, type AdminAppOptions } from "../../src/admin/app.ts";
import type { ChangeResult, ClusterView, ControlPlane } from "../../src/control/types.ts";
import type { ScopeInfo } from "../../src/scope/scope.ts";
import { deferred, type Deferred } from "../support/manual-runtime.ts";

const TOKEN = "s3cret-token";
const BASE = "http://127.0.0.1:6390";


function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` on timers until it holds (fails after 5 s rather than hang). */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !condition(); waited += 2) {
    if (waited > 5000) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

const SCOPES: ScopeInfo = { path: "root", state: "open", resources: [{ kind: "listener", name: "127.0.0.1:6380" }], children: [] };

function view(name: string): ClusterView {
  return {
    name,
    type: "cluster",
    ready: true,
    coveredSlots: 16384,
    nodes: [{ address: "127.0.0.1:7000", pending: 0 }],
    lastRefreshAt: null,
    lastError: null,
    redirects: { moved: 0, ask: 0 },
    refreshes: 1,
    refreshFailures: 0,
    partialMaps: { refused: 0, keptSlots: 0, from: null },
    unknownNodes: { open: 0, refused: 0 },
    scope: { path: `root/clusters/${name}`, state: "open", resources: [], children: [] },
  };
}

/** A ControlPlane whose answers the test sets, recording every write. */
class FakeControl implements ControlPlane {
  document: unknown = { listen: "127.0.0.1:6380", clusters: { a: { seeds: ["127.0.0.1:7000"] } } };
  views: ClusterView[] = [view("a")];
  readiness = { ready: true, notReady: [] as string[] };
  /** Next result of any write; a function is called with the write's arguments. */
  result: ChangeResult = { ok: true, changes: ["replaced cluster 'a'"] };
  calls: unknown[][] = [];
  /** When set, each write logs start/end and waits on the next gate. */
  gates: Deferred<void>[] | null = null;
  log: string[] = [];
  #seq = 0;

  config(): unknown {
    return this.document;
  }
  async #write(call: unknown[]): Promise<ChangeResult> {
    this.calls.push(call);
    const id = ++this.#seq;
    this.log.push(`start ${id}`);
    const gate = this.gates?.shift();
    if (gate) await gate.promise;
    this.log.push(`end ${id}`);
    if (call[1] === "explode") throw new Error("control plane exploded");
    return this.result;
  }
  replaceConfig(document: unknown): Promise<ChangeResult> {
    return this.#write(["replaceConfig", document]);
  }
  putCluster(name: string, document: unknown): Promise<ChangeResult> {
    return this.#write(["putCluster", name, document]);
  }
  deleteCluster(name: string, force: boolean): Promise<ChangeResult> {
    return this.#write(["deleteCluster", name, force]);
  }
  clusters(): ClusterView[] {
    return this.views;
  }
  cluster(name: string): ClusterView | null {
    return this.views.find((v) => v.name === name) ?? null;
  }
  scopes(): ScopeInfo {
    return SCOPES;
  }
  ready(): { ready: boolean; notReady: string[] } {
    return this.readiness;
  }
}

function setup(options: Partial<AdminAppOptions> = {}) {
  const control = new FakeControl();
  const app = createAdminApp(control, { token: TOKEN, version: "1.2.3", ...options });
  const call = (method: string, path: string, init: { body?: BodyInit; headers?: Record<string, string>; auth?: string | null } = {}) => {
    const headers = new Headers(init.headers);
    const auth = init.auth === undefined ? `Bearer ${TOKEN}` : init.auth;
    if (auth !== null) headers.set("authorization", auth);
    return Promise.resolve(app.fetch(new Request(`${BASE}${path}`, { method, headers, body: init.body })));
  };
  return { control, app, call };
}

async function expectJson(response: Response, status: number, body?: unknown): Promise<unknown> {
  const text = await response.text();
  assert.equal(response.status, status, `status of ${text}`);
  assert.equal(response.headers.get("content-type"), "application/json");
  const parsed: unknown = JSON.parse(text);
  if (body !== undefined) assert.deepEqual(parsed, body);
  return parsed;
}

describe("admin API: routes", () => {
  it("GET /healthz answers ok", async () => {
    const { call } = setup();
    await expectJson(await call("GET", "/healthz"), 200, { status: "ok" });
  });

  it("GET /readyz answers 200 when ready and 503 with the clusters not ready", async () => {
    const { control, call } = setup();
    await expectJson(await call("GET", "/readyz"), 200, { ready: true, notReady: [] });
    control.readiness = { ready: false, notReady: ["a", "b"] };
    await expectJson(await call("GET", "/readyz"), 503, { ready: false, notReady: ["a", "b"] });
  });

  it("GET /version answers the name and version", async () => {
    const { call } = setup();
    await expectJson(await call("GET", "/version"), 200, { name: "slotgate", version: "1.2.3" });
  });

  it("GET /config answers the document in force", async () => {
    const { control, call } = setup();
    await expectJson(await call("GET", "/config"), 200, control.document);
    control.document = undefined;
    await expectJson(await call("GET", "/config"), 200, null);
  });

  it("GET /config never shows a secret: the admin token reads [redacted], and the document in force keeps it", async () => {
    const { control, call } = setup();
    control.document = { listen: "127.0.0.1:6380", admin: { listen: "127.0.0.1:6390", token: TOKEN }, clusters: {} };
    const response = await call("GET", "/config");
    const text = await response.clone().text();
    assert.doesNotMatch(text, new RegExp(TOKEN));
    await expectJson(response, 200, { listen: "127.0.0.1:6380", admin: { listen: "127.0.0.1:6390", token: "[redacted]" }, clusters: {} });
    assert.deepEqual(control.document, { listen: "127.0.0.1:6380", admin: { listen: "127.0.0.1:6390", token: TOKEN }, clusters: {} });
  });

  it("PUT /config replaces the document and answers the changes", async () => {
    const { control, call } = setup();
    const document = { clusters: { b: { seeds: ["10.0.0.1:6379"] } } };
    control.result = { ok: true, changes: ["added cluster 'b'", "removed cluster 'a'"] };
    const response = await call("PUT", "/config", { body: JSON.stringify(document), headers: { "content-type": "application/json" } });
    await expectJson(response, 200, { changes: ["added cluster 'b'", "removed cluster 'a'"] });
    assert.deepEqual(control.calls, [["replaceConfig", document]]);
  });

  it("a refused change answers its status with the problems", async () => {
    const { control, call } = setup();
    for (const status of [400, 404, 409] as const) {
      control.result = { ok: false, status, problems: [`problem ${status}`, "another"] };
      await expectJson(await call("PUT", "/config", { body: "{}" }), status, { errors: [`problem ${status}`, "another"] });
    }
  });

  it("GET /clusters lists every cluster", async () => {
    const { control, call } = setup();
    control.views = [view("a"), view("b")];
    await expectJson(await call("GET", "/clusters"), 200, { clusters: [view("a"), view("b")] });
  });

  it("GET /clusters/:name answers one cluster or 404", async () => {
    const { call } = setup();
    await expectJson(await call("GET", "/clusters/a"), 200, view("a"));
    await expectJson(await call("GET", "/clusters/x"), 404, { error: "cluster 'x' is not configured" });
  });

  it("PUT /clusters/:name passes the name (decoded) and the body", async () => {
    const { control, call } = setup();
    control.result = { ok: true, changes: ["added cluster 'my cluster'"] };
    const document = { type: "cluster", seeds: ["127.0.0.1:7000"] };
    await expectJson(await call("PUT", "/clusters/my%20cluster", { body: JSON.stringify(document) }), 200, {
      changes: ["added cluster 'my cluster'"],
    });
    assert.deepEqual(control.calls, [["putCluster", "my cluster", document]]);
    control.result = { ok: false, status: 400, problems: ["cluster.seeds: expected at least one host:port"] };
    await expectJson(await call("PUT", "/clusters/b", { body: "{}" }), 400, {
      errors: ["cluster.seeds: expected at least one host:port"],
    });
  });

  it("DELETE /clusters/:name maps force and the control plane's 404 and 409", async () => {
    const { control, call } = setup();
    control.result = { ok: true, changes: ["removed cluster 'a'"] };
    await expectJson(await call("DELETE", "/clusters/a"), 200, { changes: ["removed cluster 'a'"] });
    await expectJson(await call("DELETE", "/clusters/a?force=true"), 200);
    await expectJson(await call("DELETE", "/clusters/a?force"), 200);
    await expectJson(await call("DELETE", "/clusters/a?force=1"), 200);
    await expectJson(await call("DELETE", "/clusters/a?force=false"), 200);
    assert.deepEqual(control.calls, [
      ["deleteCluster", "a", false],
      ["deleteCluster", "a", true],
      ["deleteCluster", "a", true],
      ["deleteCluster", "a", true],
      ["deleteCluster", "a", false],
    ]);
    control.result = { ok: false, status: 404, problems: ["cluster 'x' is not configured"] };
    await expectJson(await call("DELETE", "/clusters/x"), 404, { errors: ["cluster 'x' is not configured"] });
    control.result = { ok: false, status: 409, problems: ["route 'users:*' points at cluster 'a'"] };
    await expectJson(await call("DELETE", "/clusters/a"), 409, { errors: ["route 'users:*' points at cluster 'a'"] });
  });

  it("DELETE with a malformed force answers 400 without calling the control plane", async () => {
    const { control, call } = setup();
    const body = (await expectJson(await call("DELETE", "/clusters/a?force=yes"), 400)) as { error: string };
    assert.match(body.error, /force must be true or false, got 'yes'/);
    assert.deepEqual(control.calls, []);
  });

  it("GET /debug/scopes answers the scope tree", async () => {
    const { call } = setup();
    await expectJson(await call("GET", "/debug/scopes"), 200, SCOPES);
  });

  it("HEAD works where GET does, without a body", async () => {
    const { call } = setup();
    const response = await call("HEAD", "/config");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/json");
    assert.equal(await response.text(), "");
  });

  it("every answer is JSON and not cacheable", async () => {
    const { call } = setup();
    for (const [method, path] of [["GET", "/healthz"], ["GET", "/nope"], ["POST", "/config"], ["GET", "/config"]] as const) {
      const response = await call(method, path);
      assert.equal(response.headers.get("content-type"), "application/json", `${method} ${path}`);
      assert.equal(response.headers.get("cache-control"), "no-store", `${method} ${path}`);
      await response.body?.cancel();
    }
  });
});

describe("admin API: errors", () => {
  it("an unknown route answers 404 JSON", async () => {
    const { call } = setup();
    const body = (await expectJson(await call("GET", "/nope"), 404)) as { error: string };
    assert.match(body.error, /no route for GET \/nope/);
    await expectJson(await call("GET", "/clusters/a/b"), 404);
    await expectJson(await call("GET", "/healthz/"), 404);
  });

  it("a wrong method answers 405 JSON with Allow", async () => {
    const { control, call } = setup();
    const cases: [string, string, string][] = [
      ["POST", "/config", "GET, HEAD, PUT"],
      ["DELETE", "/config", "GET, HEAD, PUT"],
      ["PUT", "/healthz", "GET, HEAD"],
      ["POST", "/readyz", "GET, HEAD"],
      ["PUT", "/clusters", "GET, HEAD"],
      ["POST", "/clusters/a", "GET, HEAD, PUT, DELETE"],
      ["PATCH", "/debug/scopes", "GET, HEAD"],
      ["OPTIONS", "/version", "GET, HEAD"],
    ];
    for (const [method, path, allow] of cases) {
      const response = await call(method, path, { body: method === "OPTIONS" ? undefined : "{}" });
      assert.equal(response.headers.get("allow"), allow, `Allow of ${method} ${path}`);
      const body = (await expectJson(response, 405)) as { error: string };
      assert.match(body.error, new RegExp(`method ${method} is not allowed`));
    }
    assert.deepEqual(control.calls, []);
  });

  it("a body that is not JSON answers 400 'invalid JSON body'", async () => {
    const { control, call } = setup();
    for (const body of ["{not json", "", "{\"a\": 1} trailing", new Uint8Array([0x22, 0xff, 0x22])]) {
      const response = await call("PUT", "/config", { body });
      const parsed = (await expectJson(response, 400)) as { error: string };
      assert.match(parsed.error, /^invalid JSON body: /, `error for ${String(body)}`);
    }
    const response = await call("PUT", "/clusters/a", { body: "nope" });
    assert.match(((await expectJson(response, 400)) as { error: string }).error, /^invalid JSON body: /);
    assert.deepEqual(control.calls, []);
  });

  it("JSON that is not an object is passed on for the control plane to judge", async () => {
    const { control, call } = setup();
    control.result = { ok: false, status: 400, problems: ["(root): expected an object, got 42"] };
    await expectJson(await call("PUT", "/config", { body: "42" }), 400, { errors: ["(root): expected an object, got 42"] });
    assert.deepEqual(control.calls, [["replaceConfig", 42]]);
  });

  it("a body over the limit answers 413, by content-length or as read", async () => {
    const { control, call } = setup({ maxBodyBytes: 64 });
    const big = JSON.stringify({ pad: "x".repeat(100) });
    const declared = await call("PUT", "/config", { body: big, headers: { "content-length": String(big.length) } });
    assert.match(((await expectJson(declared, 413)) as { error: string }).error, /exceeds 64 bytes/);
    // A streamed body has no content-length: it is counted as it is read.
    const encoder = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 10; i++) controller.enqueue(encoder.encode("          "));
        controller.close();
      },
    });
    const request = new Request(`${BASE}/clusters/a`, {
      method: "PUT",
      headers: { authorization: `Bearer ${TOKEN}` },
      body: stream,
      duplex: "half",
    } as RequestInit);
    await expectJson(await setupApp(control, { maxBodyBytes: 64 }).fetch(request), 413);
    // At the limit is fine.
    const exact = JSON.stringify({ pad: "x".repeat(64 - 10) });
    assert.equal(exact.length, 64);
    await expectJson(await call("PUT", "/config", { body: exact }), 200);
    assert.deepEqual(control.calls, [["replaceConfig", { pad: "x".repeat(54) }]]);
  });

  it("the default limit is 1 MiB", async () => {
    const { control, call } = setup();
    const body = new Uint8Array(1024 * 1024 + 1).fill(0x20);
    await expectJson(await call("PUT", "/config", { body }), 413);
    assert.deepEqual(control.calls, []);
  });

  it("a control plane that throws answers 500 JSON, and later writes still run", async () => {
    const { control, call } = setup();
    const failed = (await expectJson(await call("PUT", "/clusters/explode", { body: "{}" }), 500)) as { error: string };
    assert.match(failed.error, /control plane exploded/);
    await expectJson(await call("PUT", "/clusters/a", { body: "{}" }), 200);
  });
});

function setupApp(control: ControlPlane, options: Partial<AdminAppOptions> = {}) {
  return createAdminApp(control, { token: TOKEN, version: "1.2.3", ...options });
}

describe("admin API: auth", () => {
  const protectedRoutes: [string, string][] = [
    ["GET", "/config"],
    ["PUT", "/config"],
    ["GET", "/clusters"],
    ["GET", "/clusters/a"],
    ["PUT", "/clusters/a"],
    ["DELETE", "/clusters/a"],
    ["GET", "/debug/scopes"],
    ["GET", "/version"],
    ["GET", "/unknown"],
    ["POST", "/config"],
  ];

  it("protected routes without a token answer 401 with WWW-Authenticate: Bearer", async () => {
    const { control, call } = setup();
    for (const [method, path] of protectedRoutes) {
      const response = await call(method, path, { auth: null, body: method === "PUT" ? "{}" : undefined });
      assert.equal(response.status, 401, `${method} ${path}`);
      assert.match(response.headers.get("www-authenticate") ?? "", /^Bearer\b/, `${method} ${path}`);
      await expectJson(response, 401);
    }
    assert.deepEqual(control.calls, []);
  });

  it("a wrong token, another scheme or a malformed header answers 401", async () => {
    const { control, call } = setup();
    const wrong = [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, "Bearer ", "Bearer", `Basic ${TOKEN}`, TOKEN, `Bearer ${TOKEN} extra`, "Bearer wrong"];
    for (const auth of wrong) {
      const response = await call("PUT", "/config", { auth, body: "{}" });
      assert.equal(response.status, 401, `auth ${JSON.stringify(auth)}`);
      assert.match(response.headers.get("www-authenticate") ?? "", /^Bearer\b/, `auth ${JSON.stringify(auth)}`);
      await response.body?.cancel();
    }
    assert.deepEqual(control.calls, []);
  });

  it("the right token is accepted (scheme case-insensitive)", async () => {
    const { call } = setup();
    await expectJson(await call("GET", "/config", { auth: `Bearer ${TOKEN}` }), 200);
    await expectJson(await call("GET", "/config", { auth: `bearer ${TOKEN}` }), 200);
    await expectJson(await call("GET", "/nope"), 404);
  });

  it("/healthz and /readyz are open even with a token configured", async () => {
    const { control, call } = setup();
    await expectJson(await call("GET", "/healthz", { auth: null }), 200, { status: "ok" });
    await expectJson(await call("GET", "/readyz", { auth: null }), 200);
    control.readiness = { ready: false, notReady: ["a"] };
    await expectJson(await call("GET", "/readyz", { auth: "Bearer wrong" }), 503);
    // A wrong method on an open route is a 405, not a 401.
    await expectJson(await call("POST", "/healthz", { auth: null }), 405);
  });

  it("without a token, protected routes answer only requests addressed to a loopback host", async () => {
    const control = new FakeControl();
    const app = createAdminApp(control, { version: "1.2.3" });
    const get = (url: string, host?: string) =>
      Promise.resolve(app.fetch(new Request(url, { headers: host === undefined ? {} : { host } })));
    await expectJson(await get("http://127.0.0.1:6390/config"), 200, control.document);
    await expectJson(await get("http://localhost:6390/clusters"), 200);
    await expectJson(await get("http://[::1]:6390/clusters/a"), 200);
    await expectJson(await get("http://127.0.0.1:6390/config", "localhost:6390"), 200);
    // DNS rebinding: a hostile name pointing at 127.0.0.1 carries its own Host.
    const rebound = (await expectJson(await get("http://127.0.0.1:6390/config", "evil.example:6390"), 403)) as { error: string };
    assert.match(rebound.error, /not a loopback address/);
    await expectJson(await get("http://evil.example/nope"), 403);
    await expectJson(await get("http://evil.example/healthz"), 200, { status: "ok" });
  });

  it("refuses an unusable token", () => {
    const control = new FakeControl();
    for (const token of ["", "has space", "tab\t", "ünïcode"]) {
      assert.throws(() => createAdminApp(control, { token, version: "1" }), /admin token/, JSON.stringify(token));
    }
  });

  it("timingSafeEqual compares bytes", () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    assert.equal(timingSafeEqual(enc("abc"), enc("abc")), true);
    assert.equal(timingSafeEqual(enc("abd"), enc("abc")), false);
    assert.equal(timingSafeEqual(enc("ab"), enc("abc")), false);
    assert.equal(timingSafeEqual(enc("abcabc"), enc("abc")), false);
    assert.equal(timingSafeEqual(enc(""), enc("abc")), false);
    assert.equal(timingSafeEqual(enc(""), enc("")), true);
  });

  it("isLoopbackHost knows loopback names and addresses", () => {
    for (const host of ["localhost", "LocalHost", "127.0.0.1", "127.9.8.7", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"]) {
      assert.equal(isLoopbackHost(host), true, host);
    }
    for (const host of ["0.0.0.0", "::", "", "10.0.0.1", "128.0.0.1", "127.0.0", "127.0.0.256", "fe80::1", "::ffff:10.0.0.1", "localhost.evil", "example.com"]) {
      assert.equal(isLoopbackHost(host), false, host);
    }
  });
});

describe("admin API: write serialisation", () => {
  it("two concurrent PUTs never interleave, even when the control plane does not serialise", async () => {
    const { control, call } = setup();
    const first = deferred<void>();
    const second = deferred<void>();
    control.gates = [first, second];
    const one = call("PUT", "/config", { body: JSON.stringify({ n: 1 }) });
    const two = call("PUT", "/clusters/b", { body: JSON.stringify({ n: 2 }) });
    // Let both requests read their bodies and reach the write queue.
    await until(() => control.log.length > 0, "the first write to start");
    await sleep(20);
    assert.deepEqual(control.log, ["start 1"], "the second write waits for the first");
    first.resolve();
    await expectJson(await one, 200);
    second.resolve();
    await expectJson(await two, 200);
    assert.deepEqual(control.log, ["start 1", "end 1", "start 2", "end 2"]);
    assert.deepEqual(control.calls, [
      ["replaceConfig", { n: 1 }],
      ["putCluster", "b", { n: 2 }],
    ]);
  });

  it("writes run in arrival order; a failed one does not block the next; reads never wait", async () => {
    const { control, call } = setup();
    const gate = deferred<void>();
    control.gates = [gate];
    const writes = [call("PUT", "/clusters/explode", { body: "{}" })];
    await until(() => control.log.length > 0, "the first write to start");
    writes.push(call("DELETE", "/clusters/a?force=true"));
    await sleep(10);
    writes.push(call("PUT", "/config", { body: "{}" }));
    await sleep(10);
    // A read answers while the first write is still held.
    await expectJson(await call("GET", "/config"), 200);
    assert.deepEqual(control.log, ["start 1"], "only the first write has started");
    gate.resolve();
    const responses = await Promise.all(writes);
    assert.deepEqual(responses.map((r) => r.status), [500, 200, 200]);
    await Promise.all(responses.map((r) => r.body?.cancel()));
    assert.deepEqual(control.log, ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]);
    assert.deepEqual(control.calls.map((c) => c[0]), ["putCluster", "deleteCluster", "replaceConfig"]);
  });
});
