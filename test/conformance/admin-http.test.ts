/**
 * The admin API over real HTTP: `startAdminServer` on the adapter `currentRuntime()` picks (Node,
 * Bun or Deno), at 127.0.0.1 port 0, with a fake ControlPlane. Checks a few routes end to end, the
 * refusal of a non-loopback address without a token, and that closing the scope stops the server.
 */
import assert from "node:assert/strict";
import net from "node:net";
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

/** A raw HTTP/1.1 connection, to send a request's head and body in pieces and see what comes back when. */
class RawHttp {
  received = "";
  closed = false;
  readonly #socket: net.Socket;
  #wake: () => void = () => {};

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", (data: Buffer) => {
      this.received += data.toString("latin1");
      this.#wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.#wake();
    });
    socket.on("error", () => {});
  }

  static connect(port: number): Promise<RawHttp> {
    return within(
      new Promise((resolve, reject) => {
        const socket = net.connect({ host: HOST, port }, () => resolve(new RawHttp(socket)));
        socket.once("error", reject);
      }),
      "connect",
    );
  }

  /** Write, and wait until the bytes are handed to the kernel. */
  write(text: string): Promise<void> {
    return within(new Promise<void>((resolve, reject) => this.#socket.write(text, (error) => (error ? reject(error) : resolve()))), "write");
  }

  /** The final (non-1xx) response's status line and headers, once they have arrived. */
  async response(): Promise<{ status: number; interim: string[]; head: string }> {
    const parse = () => {
      const interim: string[] = [];
      let rest = this.received;
      while (/^HTTP\/1\.1 1\d\d /.test(rest) && rest.includes("\r\n\r\n")) {
        interim.push(rest.slice(0, rest.indexOf("\r\n")));
        rest = rest.slice(rest.indexOf("\r\n\r\n") + 4);
      }
      const end = rest.indexOf("\r\n\r\n");
      return end < 0 || /^HTTP\/1\.1 1\d\d /.test(rest) ? null : { status: Number(rest.slice(9, 12)), interim, head: rest.slice(0, end) };
    };
    return within(
      (async () => {
        for (;;) {
          const parsed = parse();
          if (parsed) return parsed;
          if (this.closed) throw new Error(`closed before a response: ${JSON.stringify(this.received)}`);
          await new Promise<void>((resolve) => (this.#wake = resolve));
        }
      })(),
      "a response",
    );
  }

  close(): void {
    this.#socket.destroy();
  }
}

describe("admin API over HTTP", () => {
  before(async () => {
    rt = await currentRuntime();
  });

  let scope: Scope;
  /** Every test's scope, closed after the suite (a test that fails midway leaves its server open). */
  const scopes: Scope[] = [];
  const root = (name: string) => {
    scope = Scope.root(rt, name);
    scopes.push(scope);
    return scope;
  };
  after(async () => {
    for (const s of scopes) await s.close();
  });

  test("serves the routes, with auth, on this runtime", TEST, async () => {
    root("admin-conformance");
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

  test("the token is checked on the headers, before any of the body is read", TEST, async () => {
    root("admin-token-first");
    const control = new FakeControl();
    const server = await startAdminServer(scope, { host: HOST, port: 0, token: TOKEN, control, version: "1" });
    // 400 MB announced and none sent: only an answer given on the headers can arrive.
    const big = await RawHttp.connect(server.port);
    await big.write(`PUT /config HTTP/1.1\r\nhost: ${HOST}\r\nauthorization: Bearer wrong-token\r\ncontent-length: 400000000\r\n\r\n`);
    assert.equal((await big.response()).status, 401);
    big.close();
    // A client that waits for `100 Continue` before sending its body gets the 401 instead.
    const waiting = await RawHttp.connect(server.port);
    await waiting.write(`PUT /config HTTP/1.1\r\nhost: ${HOST}\r\nexpect: 100-continue\r\ncontent-length: 400000000\r\n\r\n`);
    const refused = await waiting.response();
    assert.equal(refused.status, 401);
    // Node's adapter sends `100 Continue` only once the app reads the body; Bun and Deno send it
    // on their own (the body is still never read, see the RSS figures in scripts/admin-body-rss.ts).
    if (rt.name === "node") assert.deepEqual(refused.interim, [], "no 100 Continue for a body nobody will read");
    waiting.close();
    assert.deepEqual(control.writes, []);
  });

  test("a body is read as it streams: over the limit it is refused at once, within it it is whole", TEST, async () => {
    root("admin-streamed-body");
    const control = new FakeControl();
    const limit = 64 * 1024;
    const server = await startAdminServer(scope, { host: HOST, port: 0, token: TOKEN, control, version: "1", maxBodyBytes: limit });
    const head = (extra: string) => `PUT /config HTTP/1.1\r\nhost: ${HOST}\r\nauthorization: Bearer ${TOKEN}\r\n${extra}\r\n`;
    // Chunked, with no length to judge by, and never ended: 413 must come while the upload is open.
    const endless = await RawHttp.connect(server.port);
    await endless.write(head("transfer-encoding: chunked\r\n"));
    const piece = `${(16 * 1024).toString(16)}\r\n${" ".repeat(16 * 1024)}\r\n`;
    for (let sent = 0; sent <= limit; sent += 16 * 1024) await endless.write(piece);
    assert.equal((await endless.response()).status, 413);
    endless.close();
    // The same limit by content-length: refused before any of the body is sent.
    const declared = await RawHttp.connect(server.port);
    await declared.write(head(`content-length: ${limit + 1}\r\n`));
    assert.equal((await declared.response()).status, 413);
    declared.close();
    // A body within the limit, arriving in pieces, reaches the control plane whole.
    const document = { clusters: { streamed: { seeds: ["127.0.0.1:7000"] } }, padding: "x".repeat(limit - 100) };
    const text = JSON.stringify(document);
    const pieces = await RawHttp.connect(server.port);
    await pieces.write(head(`content-length: ${Buffer.byteLength(text)}\r\nexpect: 100-continue\r\n`));
    for (let at = 0; at < text.length; at += 10_000) await pieces.write(text.slice(at, at + 10_000));
    const accepted = await pieces.response();
    assert.equal(accepted.status, 200, accepted.head);
    assert.deepEqual(control.writes, [["replaceConfig", document]]);
    pieces.close();
  });

  test("without a token, only loopback; a non-loopback host is refused before listening", TEST, async () => {
    root("admin-refusal");
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
