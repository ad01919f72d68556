/**
 * slotgate facing clients that misbehave: malformed RESP, oversized bulk strings and multibulk
 * headers, a client that pipelines large replies and never reads them, and inline commands with
 * unbalanced quotes. Each bad client gets Redis's `-ERR Protocol error: ...` (or is cut off) while
 * the other clients keep being served. Runs under `npx tsx --test`, `bun test` and `deno test -A`.
 */
import assert from "node:assert/strict";
import net from "node:net";
import process from "node:process";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp, startProxy, type RunningProxy } from "../support/proxy.ts";
import { sleep, until } from "../support/within.ts";

const SLOW = { timeout: 120_000 };
const MIB = 1024 * 1024;


/** Resident memory of this process (where the proxy runs). */
function rss(): number {
  const deno = (globalThis as { Deno?: { memoryUsage(): { rss: number } } }).Deno;
  return deno ? deno.memoryUsage().rss : process.memoryUsage().rss;
}

describe("slotgate with misbehaving clients", () => {
  const cluster = lazy(() => startLocalCluster());
  const proxies = new Map<string, ReturnType<typeof lazy<RunningProxy>>>();
  const clients: Redis[] = [];
  const sockets: net.Socket[] = [];
  const raws: RawClient[] = [];

  /** One proxy per set of limits, started on first use. */
  function proxy(env: Record<string, string> = {}): Promise<RunningProxy> {
    const key = JSON.stringify(env);
    let fixture = proxies.get(key);
    if (!fixture) {
      // Bun gives `after` 5 s whatever its timeout option says: the drain at close must be short.
      fixture = lazy(async () => startProxy((await cluster.get()).seeds, { SLOTGATE_SHUTDOWN_TIMEOUT_MS: "1000", ...env }));
      proxies.set(key, fixture);
    }
    return fixture.get();
  }

  after(async () => {
    for (const socket of sockets) socket.destroy();
    for (const raw of raws) raw.close();
    for (const client of clients) client.disconnect();
    await Promise.all([...proxies.values()].map((fixture) => fixture.stop()));
    await cluster.stop();
  });

  async function ioredis(port: number): Promise<Redis> {
    const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 });
    client.on("error", () => {});
    clients.push(client);
    await client.connect();
    return client;
  }

  async function raw(port: number): Promise<RawClient> {
    const client = await RawClient.connect(port);
    raws.push(client);
    return client;
  }

  /** Send `chunks` (one write each, a turn apart), expect `expected` then the proxy closing. */
  async function expectClosedWith(port: number, chunks: string[], expected: string): Promise<void> {
    const client = await raw(port);
    for (const chunk of chunks) {
      client.send(chunk);
      await sleep(20);
    }
    await client.waitClosed();
    assert.equal(client.received.toString("latin1"), expected, JSON.stringify(chunks));
  }

  it("malformed RESP gets -ERR Protocol error and a close, after the replies owed; a concurrent client is unaffected", SLOW, async () => {
    const { port } = await proxy();
    const other = await ioredis(port);
    assert.equal(await other.set("bad:other", "1"), "OK");
    const cases: [string[], string][] = [
      [["*1\r\n$x\r\n"], "invalid bulk length"],
      [["*2\r\n:1\r\n$1\r\na\r\n"], "expected '$', got ':'"],
      [["*2\r\n$3\r\nGET\r\n+OK\r\n"], "expected '$', got '+'"],
      [["*1\r\n$-5\r\n"], "invalid bulk length"],
      [["*2\r\n$3\r\nGET\r\n$-1\r\n"], "invalid bulk length"],
      [["*x\r\n"], "invalid multibulk length"],
      [["*1\r\n$4\r\nPINGxx"], "invalid bulk terminator"],
      // The same errors when the bad header arrives in pieces.
      [["*2\r\n$3\r\nGET\r\n$", "-3\r\n"], "invalid bulk length"],
      [["*2\r\n$3\r\nGET", "\r\n", ":", "1\r\n"], "expected '$', got ':'"],
      [["*1", "0x\r\n"], "invalid multibulk length"],
    ];
    let count = 1;
    for (const [i, [chunks, message]] of cases.entries()) {
      // Requests before the bad one are answered first, in order.
      const before = resp("SET", "bad:k", `v${i}`) + resp("GET", "bad:k") + "PING\r\n";
      const value = `v${i}`;
      await expectClosedWith(port, [before + chunks[0]!, ...chunks.slice(1)], `+OK\r\n$${value.length}\r\n${value}\r\n+PONG\r\n-ERR Protocol error: ${message}\r\n`);
      assert.equal(await other.incr("bad:other"), ++count);
    }
    assert.equal(await other.get("bad:other"), String(1 + cases.length));
    assert.equal(await other.ping(), "PONG");
  });

  it("a bulk string over SLOTGATE_MAX_BULK_BYTES or a multibulk over SLOTGATE_MAX_ARRAY_LENGTH is refused at its header", SLOW, async () => {
    const { port } = await proxy({ SLOTGATE_MAX_BULK_BYTES: "1024", SLOTGATE_MAX_ARRAY_LENGTH: "16" });
    const other = await ioredis(port);
    // At the limits: accepted.
    const max = "v".repeat(1024);
    assert.equal(await other.set("limit:max", max), "OK");
    assert.equal(await other.get("limit:max"), max);
    const keys = Array.from({ length: 15 }, (_, i) => `limit:${i}`);
    assert.equal(await other.exists(...keys.slice(0, 14), "limit:max"), 1);
    // Over them: the header alone is enough, no body is ever sent.
    await expectClosedWith(port, [`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000\r\n`], "-ERR Protocol error: invalid bulk length\r\n");
    await expectClosedWith(port, [`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1025\r\n`], "-ERR Protocol error: invalid bulk length\r\n");
    await expectClosedWith(port, [resp("PING") + `*17\r\n`], "+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n");
    await expectClosedWith(port, [`*2\r\n$3\r\nGET\r\n$10`, `000000000000`], "-ERR Protocol error: invalid bulk length\r\n");
    assert.equal(await other.get("limit:max"), max);
  });

  it("a client pipelining thousands of GETs of a 1 MiB value without reading is paused or cut off; memory stays bounded and others are served", SLOW, async () => {
    const { port: writerPort } = await proxy();
    const writer = await ioredis(writerPort);
    const big = "b".repeat(MIB);
    assert.equal(await writer.set("flood:big", big), "OK");
    const { app, port } = await proxy({ SLOTGATE_MAX_CLIENT_OUTPUT_BYTES: String(4 * MIB), SLOTGATE_MAX_PENDING_REQUESTS: "16" });
    const others = [await ioredis(port), await ioredis(port)];
    const clientsBefore = app.server.connectedClients;

    const baseline = rss();
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rss())), 20);
    let served = 0;
    const otherErrors: string[] = [];
    let flooding = true;
    const otherTraffic = others.map(async (client, c) => {
      for (let n = 0; flooding; n++) {
        try {
          await client.set(`flood:other:${c}:${n % 50}`, String(n));
          const got = await client.get(`flood:other:${c}:${n % 50}`);
          if (got !== String(n)) otherErrors.push(`client ${c}: GET after SET ${n} returned ${JSON.stringify(got?.slice(0, 40))} (${got?.length} bytes)`);
          served++;
        } catch (error) {
          otherErrors.push((error as Error).message);
          await sleep(20);
        }
      }
    });

    const flood = net.connect({ host: "127.0.0.1", port });
    sockets.push(flood);
    let closed = false;
    flood.on("error", () => {});
    flood.on("close", () => (closed = true));
    await new Promise<void>((resolve) => flood.once("connect", () => resolve()));
    // Never read: the proxy's replies pile up in the kernel, then in the proxy.
    flood.pause();
    const get = resp("GET", "flood:big");
    const batch = get.repeat(5000);
    let sent = 0;
    let refused = false;
    let maxQueued = 0;
    try {
      while (!closed && sent < 2_000_000 && flood.writableLength < MIB) {
        if (!flood.write(batch)) refused = true;
        sent += 5000;
        maxQueued = Math.max(maxQueued, flood.writableLength);
        await sleep(5);
        if (sent === 5000) {
          // Thousands of GETs are out: others must still be served while the flood sits there.
          const at = served;
          await until("other clients to be served during the flood", () => served >= at + 20 || otherErrors.length > 0);
        }
      }
      const paused = flood.writableLength >= MIB;
      assert.ok(paused || closed, `the proxy neither stopped reading nor disconnected (sent ${sent} GETs, queued ${maxQueued} bytes, write refused: ${refused})`);
      const at = served;
      await until("other clients to be served after the flood", () => served >= at + 20 || otherErrors.length > 0);
      assert.deepEqual(otherErrors, [], `peak +${Math.round((peak - baseline) / MIB)} MiB, sent ${sent}, closed ${closed}`);
    } finally {
      flood.destroy();
      flooding = false;
      await Promise.all(otherTraffic);
      clearInterval(sampler);
    }
    const grown = peak - baseline;
    assert.ok(grown < 400 * MIB, `memory grew by ${Math.round(grown / MIB)} MiB (sent ${sent} GETs)`);

    // Healthy again: the flood's session is gone, nothing is stuck upstream, big values flow.
    await until("the flooding client's session to end", () => app.server.connectedClients === clientsBefore);
    await until("no request left in flight", () => app.cluster.nodes().every((node) => node.pending === 0));
    const fresh = createClient({ url: `redis://127.0.0.1:${port}` });
    fresh.on("error", () => {});
    await fresh.connect();
    try {
      assert.equal(await fresh.ping(), "PONG");
      // One at a time: a well-behaved client's unread replies stay under the 4 MiB output limit.
      for (let i = 0; i < 10; i++) assert.equal(await fresh.get("flood:big"), big);
      assert.equal(await others[0]!.get("flood:big"), big);
    } finally {
      await fresh.quit().catch(() => {});
    }
  });

  it("a pipeline far longer than SLOTGATE_MAX_PENDING_REQUESTS is answered in order, and a protocol error or QUIT at its end comes last", SLOW, async () => {
    const { port } = await proxy({ SLOTGATE_MAX_CLIENT_OUTPUT_BYTES: String(4 * MIB), SLOTGATE_MAX_PENDING_REQUESTS: "16" });
    const writer = await ioredis(port);
    const keys = Array.from({ length: 300 }, (_, i) => `long:${i}`);
    await Promise.all(keys.map((key) => writer.set(key, `value of ${key}`)));
    const gets = keys.map((key, i) => (i % 10 === 9 ? "PING\r\n" : resp("GET", key))).join("");
    const replies = keys.map((key, i) => (i % 10 === 9 ? "+PONG\r\n" : `$${`value of ${key}`.length}\r\nvalue of ${key}\r\n`)).join("");
    await expectClosedWith(port, [gets + "*1\r\n$x\r\n" + resp("GET", keys[0]!)], replies + "-ERR Protocol error: invalid bulk length\r\n");
    await expectClosedWith(port, [gets + resp("QUIT") + resp("GET", keys[0]!)], replies + "+OK\r\n");
    // In pieces too: the rest of the pipeline arrives while the first requests are unanswered.
    await expectClosedWith(port, [gets.slice(0, 1001), gets.slice(1001) + resp("SET", "long:0", "x") + "*2\r\n:1\r\n"], replies + "+OK\r\n-ERR Protocol error: expected '$', got ':'\r\n");
    assert.equal(await writer.get("long:0"), "x");
  });

  it("a client that says QUIT is answered, closed and no longer counted, on every runtime", SLOW, async () => {
    const { app, port } = await proxy();
    const before = app.server.connectedClients;
    const client = await raw(port);
    await until("the client is counted", () => app.server.connectedClients === before + 1);
    client.send(resp("QUIT"));
    await client.waitClosed();
    assert.equal(client.received.toString(), "+OK\r\n");
    await until("the session is gone", () => app.server.connectedClients === before);
  });

  it("inline commands work, quotes included; an inline command with unbalanced quotes gets the protocol error", SLOW, async () => {
    const { port } = await proxy();
    const client = await raw(port);
    client.send('PING\r\nSET inline:k "a b"\r\nGET inline:k\r\nSET inline:q \'it\\\'s\' \r\nGET inline:q\nECHO "\\x41\\tz"\r\n\r\n' + resp("GET", "inline:k"));
    const want = "+PONG\r\n+OK\r\n$3\r\na b\r\n+OK\r\n$4\r\nit's\r\n$3\r\nA\tz\r\n$3\r\na b\r\n";
    assert.equal(await client.waitFor((text) => text.length >= want.length), want);
    assert.equal(client.closed, false);
    await expectClosedWith(port, ['SET inline:k "a b\r\n'], "-ERR Protocol error: unbalanced quotes in request\r\n");
    await expectClosedWith(port, ["PING\r\nSET inline:k 'a b\r\nPING\r\n"], "+PONG\r\n-ERR Protocol error: unbalanced quotes in request\r\n");
    await expectClosedWith(port, ['GET "inline:k"x\r\n'], "-ERR Protocol error: unbalanced quotes in request\r\n");
    const other = await ioredis(port);
    assert.equal(await other.get("inline:k"), "a b");
  });
});
