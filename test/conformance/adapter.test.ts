/**
 * Conformance suite for the `Runtime` adapters. The same file runs under `npx tsx --test` (Node),
 * `bun test` and `deno test -A`, each time against the adapter `currentRuntime()` picks. Everything
 * runs on 127.0.0.1 with port 0; time bounds exist only to turn a hang into a failure.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { currentRuntime } from "../../adapters/current.ts";
import type { Conn, ConnHandlers, Listener, Runtime } from "../../src/runtime.ts";
import { pattern, within as boundedWait } from "../support/within.ts";
import { deferred } from "../support/manual-runtime.ts";
import { canReadTcpTimers, tcpTimer, type TcpTimer } from "../support/tcp-timers.ts";

const within = <T>(promise: Promise<T>, what: string, ms = HANG) => boundedWait(promise, what, ms);

const HOST = "127.0.0.1";
const HIGH_WATER_MARK = 64 * 1024;
const MIB = 1024 * 1024;
/** How long anything that should happen "soon" may take before the test fails as hung. */
const HANG = 20_000;
const TEST = { timeout: 60_000 };

let rt: Runtime;

// ---- helpers -------------------------------------------------------------------------------



function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` (cheaply, on timers) until it holds. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + HANG;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string) => encoder.encode(text);

/** Deterministic pseudo-random bytes (xorshift32), so corruption or reordering cannot hide. */

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/** Index of the first differing byte, or -1 (assert.deepEqual on MiBs is slow and unreadable). */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.byteLength === b.byteLength ? -1 : n;
}

/** Every recorder handed to an adapter for a live connection; `after` checks each closed once. */
const connected = new Set<Recorder>();

/** Handlers that record every call and note contract violations as they happen. */
class Recorder implements ConnHandlers {
  readonly chunks: Uint8Array[] = [];
  received = 0;
  drains = 0;
  closeCalls = 0;
  closeError: Error | undefined;
  readonly violations: string[] = [];
  onData: ((chunk: Uint8Array) => void) | undefined;
  onDrain: (() => void) | undefined;
  private readonly closedSignal = deferred<Error | undefined>();
  private readonly drainedSignal = deferred<void>();
  private readonly byteWaiters: { count: number; done: () => void }[] = [];

  constructor(readonly label: string) {}

  data(chunk: Uint8Array): void {
    if (this.closeCalls > 0) this.violations.push("data after close");
    this.chunks.push(chunk);
    this.received += chunk.byteLength;
    this.onData?.(chunk);
    for (let i = this.byteWaiters.length - 1; i >= 0; i--) {
      if (this.received >= this.byteWaiters[i]!.count) this.byteWaiters.splice(i, 1)[0]!.done();
    }
  }

  drain(): void {
    if (this.closeCalls > 0) this.violations.push("drain after close");
    this.drains++;
    this.onDrain?.();
    this.drainedSignal.resolve();
  }

  close(error?: Error): void {
    this.closeCalls++;
    if (this.closeCalls > 1) this.violations.push("close called twice");
    this.closeError = error;
    this.closedSignal.resolve(error);
  }

  closed(): Promise<Error | undefined> {
    return within(this.closedSignal.promise, `${this.label}: close`);
  }

  drained(): Promise<void> {
    return within(this.drainedSignal.promise, `${this.label}: drain`);
  }

  bytes(count: number): Promise<void> {
    if (this.received >= count) return Promise.resolve();
    const d = deferred<void>();
    this.byteWaiters.push({ count, done: () => d.resolve() });
    return within(d.promise, `${this.label}: ${count} bytes (have ${this.received})`);
  }

  text(): string {
    return decoder.decode(concat(this.chunks));
  }
}

/** Collects teardown steps; they run in reverse even when the test body throws. */
class Cleanup {
  private readonly steps: (() => unknown)[] = [];

  add(step: () => unknown): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    let firstError: unknown;
    for (const step of this.steps.reverse()) {
      try {
        await step();
      } catch (e) {
        firstError ??= e;
      }
    }
    if (firstError !== undefined) throw firstError;
  }
}

async function withCleanup(body: (cleanup: Cleanup) => Promise<void>): Promise<void> {
  const cleanup = new Cleanup();
  try {
    await body(cleanup);
  } catch (e) {
    await cleanup.run().catch(() => {}); // the body's failure is the one worth reporting
    throw e;
  }
  await cleanup.run();
}

/** Destroys `conn` and waits for its close, so no socket or pending op outlives the test. */
function closeOnCleanup(cleanup: Cleanup, conn: Conn, rec: Recorder): void {
  cleanup.add(async () => {
    conn.destroy();
    await rec.closed();
  });
}

interface Accepted {
  conn: Conn;
  rec: Recorder;
}

interface TestServer {
  listener: Listener;
  accepted: Accepted[];
  /** The next accepted connection not yet taken. */
  next(): Promise<Accepted>;
}

async function serve(cleanup: Cleanup, setup?: (conn: Conn, rec: Recorder) => void): Promise<TestServer> {
  const accepted: Accepted[] = [];
  const listener = await rt.listen({ host: HOST, port: 0 }, (conn) => {
    const rec = new Recorder(`server#${accepted.length}`);
    connected.add(rec);
    accepted.push({ conn, rec });
    closeOnCleanup(cleanup, conn, rec);
    setup?.(conn, rec);
    return rec;
  });
  cleanup.add(() => listener.close());
  let taken = 0;
  return {
    listener,
    accepted,
    async next() {
      await until(() => accepted.length > taken, "an accepted connection");
      return accepted[taken++]!;
    },
  };
}

async function dial(cleanup: Cleanup, port: number, rec = new Recorder("client")): Promise<Conn> {
  const conn = await rt.connect({ host: HOST, port }, rec);
  connected.add(rec);
  closeOnCleanup(cleanup, conn, rec);
  return conn;
}

/**
 * Writes `chunkSize` slices of a pattern until `write` returns false (peer not reading), and at
 * least `minimum` bytes. Returns everything written and the buffered size at the first false.
 */
function writeUntilBackPressure(conn: Conn, minimum: number, chunkSize = MIB) {
  const chunks: Uint8Array[] = [];
  let written = 0;
  let bufferedAtFalse = -1;
  // 256 MiB is far beyond any socket buffer: reaching it means back-pressure never showed.
  while ((written < minimum || bufferedAtFalse < 0) && written < 256 * MIB) {
    const chunk = pattern(chunkSize, chunks.length + 1);
    chunks.push(chunk);
    written += chunk.byteLength;
    if (!conn.write(chunk) && bufferedAtFalse < 0) bufferedAtFalse = conn.bufferedBytes;
  }
  return { payload: concat(chunks), bufferedAtFalse };
}

// ---- the suite -----------------------------------------------------------------------------

describe("Runtime adapter conformance", () => {
  before(async () => {
    rt = await currentRuntime();
  });

  after(() => {
    // Every connection any test opened must have been closed exactly once, cleanly by contract.
    for (const rec of connected) {
      assert.equal(rec.closeCalls, 1, `${rec.label}: close calls`);
      assert.deepEqual(rec.violations, [], `${rec.label}: contract violations`);
    }
  });

  test("the adapter matches the runtime", () => {
    const expected = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
    assert.equal(rt.name, expected);
  });

  test("connect + listen: echo round trip", TEST, () =>
    withCleanup(async (cleanup) => {
      const server = await serve(cleanup, (conn, rec) => {
        rec.onData = (chunk) => conn.write(chunk);
      });
      assert.ok(server.listener.port > 0, "listener port");
      const rec = new Recorder("client");
      const client = await dial(cleanup, server.listener.port, rec);
      assert.equal(client.remoteAddress, HOST);
      assert.equal(client.remotePort, server.listener.port);
      assert.ok(client.localPort > 0, "client local port");
      const peer = await server.next();
      assert.equal(peer.conn.remoteAddress, HOST);
      assert.equal(peer.conn.remotePort, client.localPort);
      assert.equal(peer.conn.localPort, server.listener.port);

      assert.equal(client.write(bytes("hello ")), true);
      assert.equal(client.write(bytes("world")), true);
      await rec.bytes(11);
      assert.equal(rec.text(), "hello world");
      assert.equal(client.bufferedBytes, 0);
    }));

  test("large write to a paused peer: false, then drain after resume, bytes intact and in order", TEST, () =>
    withCleanup(async (cleanup) => {
      const server = await serve(cleanup, (conn) => conn.pause());
      const rec = new Recorder("client");
      let bufferedAtDrain = -1;
      rec.onDrain = () => (bufferedAtDrain = client.bufferedBytes);
      const client = await dial(cleanup, server.listener.port, rec);
      const peer = await server.next();

      const { payload, bufferedAtFalse } = writeUntilBackPressure(client, 8 * MIB);
      assert.ok(bufferedAtFalse > HIGH_WATER_MARK, `buffered ${bufferedAtFalse} when write returned false`);
      assert.ok(client.bufferedBytes > HIGH_WATER_MARK, `buffered ${client.bufferedBytes}`);

      // The peer is paused: nothing may be delivered, however long it stays so.
      await sleep(50);
      assert.equal(peer.rec.received, 0, "data delivered while paused");

      peer.conn.resume();
      await rec.drained();
      assert.ok(bufferedAtDrain <= HIGH_WATER_MARK, `buffered ${bufferedAtDrain} at drain`);
      await peer.rec.bytes(payload.byteLength);
      assert.equal(peer.rec.received, payload.byteLength);
      assert.equal(firstDifference(concat(peer.rec.chunks), payload), -1);
      assert.equal(rec.drains, 1);
      assert.equal(client.bufferedBytes, 0);
    }));

  test("partial writes: thousands of small and large writes queue up and arrive intact", TEST, () =>
    withCleanup(async (cleanup) => {
      const server = await serve(cleanup, (conn) => conn.pause());
      const client = await dial(cleanup, server.listener.port);
      const peer = await server.next();

      // Fill the socket buffers first, so the writes below really queue in user space.
      const { payload: filler } = writeUntilBackPressure(client, 0);
      // Sizes vary so queued chunks are split and joined at arbitrary boundaries.
      const sizes = pattern(6000, 7);
      const writes: Uint8Array[] = [];
      for (let i = 0; i < sizes.length; i++) {
        const size = i % 700 === 0 ? 300_000 + sizes[i]! * 101 : 1 + sizes[i]!;
        const chunk = pattern(size, i + 1);
        writes.push(chunk);
        client.write(chunk);
      }
      const expected = concat([filler, ...writes]);
      assert.ok(client.bufferedBytes > HIGH_WATER_MARK, `buffered ${client.bufferedBytes}`);

      peer.conn.resume();
      await peer.rec.bytes(expected.byteLength);
      assert.equal(peer.rec.received, expected.byteLength);
      // Concatenating the retained chunks only now also checks the adapter never reused them.
      assert.equal(firstDifference(concat(peer.rec.chunks), expected), -1);
      assert.equal(firstDifference(concat([filler, ...writes]), expected), -1, "the adapter mutated a written chunk");
    }));

  test("small and large sends in turn (a quiet connection, then a busy one, and back) arrive intact and in order", TEST, () =>
    withCleanup(async (cleanup) => {
      const server = await serve(cleanup);
      const client = await dial(cleanup, server.listener.port);
      const peer = await server.next();
      const sent: Uint8Array[] = [];
      let total = 0;
      // Each send is received in full before the next: an adapter that reads into a small buffer
      // while quiet (Deno) switches to a large one and back between them.
      for (const [i, size] of [7, 512, MIB, 3, 511, 513, 2 * MIB, 1, 100_000, 9].entries()) {
        const chunk = pattern(size, i + 1);
        sent.push(chunk);
        total += size;
        client.write(chunk);
        await peer.rec.bytes(total);
      }
      assert.equal(peer.rec.received, total);
      assert.equal(firstDifference(concat(peer.rec.chunks), concat(sent)), -1);
    }));

  test("pause and resume gate data delivery", TEST, () =>
    withCleanup(async (cleanup) => {
      const server = await serve(cleanup);
      const client = await dial(cleanup, server.listener.port);
      const peer = await server.next();
      client.write(bytes("one"));
      await peer.rec.bytes(3);
      peer.conn.pause();
      client.write(bytes("two"));
      await sleep(50);
      assert.equal(peer.rec.received, 3, "data delivered while paused");
      peer.conn.resume();
      await peer.rec.bytes(6);
      assert.equal(peer.rec.text(), "onetwo");
    }));

  test("chunks kept by two outgoing connections' handlers never change as later reads arrive", TEST, () =>
    withCleanup(async (cleanup) => {
      const server = await serve(cleanup);
      // Two connections read at once: an adapter reading into one reused buffer must copy each
      // read out before the next, whichever connection it is for.
      const clients = [new Recorder("client-a"), new Recorder("client-b")];
      const snapshots = clients.map((rec) => {
        const copies: Uint8Array[] = [];
        rec.onData = (chunk) => copies.push(chunk.slice());
        return copies;
      });
      const peers: Accepted[] = [];
      for (const rec of clients) {
        await dial(cleanup, server.listener.port, rec);
        peers.push(await server.next());
      }
      // Sizes around the usual read sizes (64 KiB), and far beyond, so reads split and fill.
      const sizes = [1, 7, 512, 65_535, 65_536, 65_537, MIB, 3, 2 * MIB + 5, 100_000, 9];
      const sent = peers.map(() => [] as Uint8Array[]);
      for (const [i, size] of sizes.entries()) {
        for (const [p, peer] of peers.entries()) {
          const chunk = pattern(size, 100 * p + i + 1);
          sent[p]!.push(chunk);
          peer.conn.write(chunk);
        }
      }
      const total = sizes.reduce((n, size) => n + size, 0);
      for (const [c, rec] of clients.entries()) {
        await rec.bytes(total);
        assert.equal(rec.received, total);
        assert.equal(firstDifference(concat(rec.chunks), concat(sent[c]!)), -1, `${rec.label}: bytes`);
        for (const [i, chunk] of rec.chunks.entries()) {
          assert.equal(firstDifference(chunk, snapshots[c]![i]!), -1, `${rec.label}: chunk ${i} changed after it was delivered`);
        }
      }
    }));

  test("an outgoing connection paused from inside its data handler gets nothing until resumed, then everything in order", TEST, () =>
    withCleanup(async (cleanup) => {
      const server = await serve(cleanup);
      const rec = new Recorder("client");
      let paused = false;
      let pauses = 0;
      rec.onData = () => {
        if (paused) rec.violations.push("data while paused");
        // The first pause lasts until the test resumes; then a short pause after every chunk.
        paused = true;
        client.pause();
        if (pauses++ > 0) {
          rt.defer(() => {
            paused = false;
            client.resume();
          });
        }
      };
      const client = await dial(cleanup, server.listener.port, rec);
      const peer = await server.next();

      const { payload } = writeUntilBackPressure(peer.conn, 8 * MIB);
      await rec.bytes(1);
      const receivedAtPause = rec.received;
      await sleep(50);
      assert.equal(rec.received, receivedAtPause, "data delivered while paused");
      assert.ok(peer.conn.bufferedBytes > 0, "the peer's queue emptied while we were paused");

      paused = false;
      client.resume();
      await rec.bytes(payload.byteLength);
      assert.equal(firstDifference(concat(rec.chunks), payload), -1);
      assert.ok(pauses > 2, `only ${pauses} pauses`);
      assert.deepEqual(rec.violations, []);
    }));

  test("peer destroy: close is called once, never synchronously, and nothing follows it", TEST, () =>
    withCleanup(async (cleanup) => {
      const server = await serve(cleanup);
      const rec = new Recorder("client");
      const client = await dial(cleanup, server.listener.port, rec);
      const peer = await server.next();
      client.write(bytes("ping"));
      await peer.rec.bytes(4);

      // Unread bytes in the peer's receive buffer make its close a reset (RST) on most stacks.
      peer.conn.pause();
      writeUntilBackPressure(client, 2 * MIB);
      peer.conn.write(pattern(MIB));
      peer.conn.destroy();
      peer.conn.destroy();
      assert.equal(peer.rec.closeCalls, 0, "close ran inside destroy()");

      const error = await rec.closed();
      assert.ok(error === undefined || error instanceof Error, `close error ${String(error)}`);
      await peer.rec.closed();
      await sleep(50);
      assert.equal(rec.closeCalls, 1);
      assert.equal(peer.rec.closeCalls, 1);
      assert.deepEqual(rec.violations, []);
      assert.equal(client.write(bytes("late")), false, "write after close must be refused");
      client.destroy();
    }));

  test("destroy is idempotent, stops data at once, and keeps its error", TEST, () =>
    withCleanup(async (cleanup) => {
      const flood = pattern(16 * 1024);
      const server = await serve(cleanup, (conn, rec) => {
        // Keep the client busy receiving until it goes away.
        const pump = () => {
          while (rec.closeCalls === 0 && conn.write(flood));
        };
        rec.onDrain = pump;
        rt.defer(pump);
      });
      const rec = new Recorder("client");
      let receivedAtDestroy = -1;
      rec.onData = () => {
        if (receivedAtDestroy >= 0) return;
        receivedAtDestroy = rec.received;
        client.destroy();
        client.destroy(new Error("too late to count"));
        assert.equal(rec.closeCalls, 0, "close ran inside destroy()");
      };
      const client = await dial(cleanup, server.listener.port, rec);
      const error = await rec.closed();
      assert.equal(error, undefined, "the first destroy() had no error");
      await sleep(50);
      assert.equal(rec.received, receivedAtDestroy, "data after destroy()");
      assert.equal(rec.closeCalls, 1);
      client.destroy();

      const rec2 = new Recorder("client2");
      const client2 = await dial(cleanup, server.listener.port, rec2);
      const boom = new Error("boom");
      client2.destroy(boom);
      client2.destroy();
      assert.equal(await rec2.closed(), boom);
      assert.equal(rec2.closeCalls, 1);
    }));

  test("end() flushes queued bytes before closing; close follows without error", TEST, () =>
    withCleanup(async (cleanup) => {
      const server = await serve(cleanup, (conn) => conn.pause());
      const rec = new Recorder("client");
      const client = await dial(cleanup, server.listener.port, rec);
      const peer = await server.next();

      const { payload } = writeUntilBackPressure(client, 4 * MIB);
      assert.ok(client.bufferedBytes > 0, "nothing queued: the test would prove nothing");
      client.end();
      client.end();
      assert.equal(rec.closeCalls, 0, "close ran inside end()");
      assert.equal(client.write(bytes("after end")), false, "write after end() must be refused");

      peer.conn.resume();
      await peer.rec.bytes(payload.byteLength);
      assert.equal(await peer.rec.closed(), undefined);
      assert.equal(await rec.closed(), undefined);
      assert.equal(peer.rec.received, payload.byteLength);
      assert.equal(firstDifference(concat(peer.rec.chunks), payload), -1);
    }));

  test("a peer's clean close (FIN) closes our side after our queued bytes are sent", TEST, () =>
    withCleanup(async (cleanup) => {
      const server = await serve(cleanup);
      const rec = new Recorder("client");
      await dial(cleanup, server.listener.port, rec);
      const peer = await server.next();
      peer.conn.write(bytes("bye"));
      peer.conn.end();
      assert.equal(await rec.closed(), undefined);
      assert.equal(rec.text(), "bye");
      assert.equal(await peer.rec.closed(), undefined);
    }));

  test("connect to a closed port rejects with ECONNREFUSED", TEST, async () => {
    const listener = await rt.listen({ host: HOST, port: 0 }, () => new Recorder("unused"));
    const port = listener.port;
    await listener.close();
    const rec = new Recorder("refused");
    await assert.rejects(
      within(rt.connect({ host: HOST, port }, rec), "refused connect"),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, "ECONNREFUSED", String(e));
        return true;
      },
    );
    assert.equal(rec.closeCalls, 0);
  });

  test("setKeepAlive arms the kernel's keepalive timer on both ends (with the idle time asked, where the runtime can set it) and 0 disarms it", { ...TEST, skip: !canReadTcpTimers() && "no /proc/net/tcp" }, () =>
    withCleanup(async (cleanup) => {
      const server = await serve(cleanup);
      const client = await dial(cleanup, server.listener.port);
      const accepted = (await server.next()).conn;
      /** The kernel's view once no retransmit timer hides the keepalive one. */
      const timerOf = async (conn: Conn): Promise<TcpTimer> => {
        let timer: TcpTimer | null = null;
        await until(() => (timer = tcpTimer(conn.localPort, conn.remotePort)) !== null && timer.timer !== 1, "the connection in /proc/net/tcp");
        return timer!;
      };
      for (const conn of [client, accepted]) {
        assert.equal((await timerOf(conn)).timer, 0, "no keepalive before it is asked for");
        conn.setKeepAlive(60_000);
        const armed = await timerOf(conn);
        assert.equal(armed.timer, 2, "the keepalive timer is armed");
        // Deno cannot set the idle time: it keeps the system's (tcp_keepalive_time, 7200 s by default).
        if (rt.name !== "deno") assert.ok(armed.seconds > 30 && armed.seconds <= 60, `keepalive probes after ${armed.seconds} s, asked 60 s`);
        conn.setKeepAlive(0);
        assert.equal((await timerOf(conn)).timer, 0, "0 turns keepalive off");
      }
      // A connection that is gone ignores it.
      client.destroy();
      client.setKeepAlive(1000);
    }));

  test("listener.close() stops accepting and leaves accepted connections working", TEST, () =>
    withCleanup(async (cleanup) => {
      const server = await serve(cleanup, (conn, rec) => {
        rec.onData = (chunk) => conn.write(chunk);
      });
      const rec = new Recorder("client");
      const client = await dial(cleanup, server.listener.port, rec);
      await server.listener.close();
      await server.listener.close();
      client.write(bytes("still here"));
      await rec.bytes(10);
      assert.equal(rec.text(), "still here");
      const late = new Recorder("late");
      await assert.rejects(within(rt.connect({ host: HOST, port: server.listener.port }, late), "late connect"));
      assert.equal(server.accepted.length, 1);
    }));

  test("connect with an already aborted signal rejects with AbortError and opens nothing", TEST, () =>
    withCleanup(async (cleanup) => {
      const server = await serve(cleanup);
      const controller = new AbortController();
      controller.abort();
      const rec = new Recorder("aborted");
      await assert.rejects(
        rt.connect({ host: HOST, port: server.listener.port, signal: controller.signal }, rec),
        { name: "AbortError" },
      );
      // A later connection is the first and only one the listener sees.
      const client = await dial(cleanup, server.listener.port);
      client.write(bytes("x"));
      const peer = await server.next();
      await peer.rec.bytes(1);
      assert.equal(server.accepted.length, 1);
      assert.equal(rec.closeCalls + rec.received, 0, "handlers of an aborted connect were called");
    }));

  test("connect aborted while pending rejects with AbortError and leaks no socket", TEST, () =>
    withCleanup(async (cleanup) => {
      const server = await serve(cleanup);
      const port = server.listener.port;
      const aborted: Recorder[] = [];
      // Abort at different points of the connect; only the synchronous abort must win for sure.
      const aborters: ((abort: () => void) => void)[] = [
        (abort) => abort(),
        (abort) => queueMicrotask(abort),
        (abort) => rt.defer(abort),
        (abort) => rt.setTimer(0, abort),
      ];
      for (let round = 0; round < 5; round++) {
        for (const [i, schedule] of aborters.entries()) {
          const controller = new AbortController();
          const rec = new Recorder(`abort-${round}-${i}`);
          const pending = rt.connect({ host: HOST, port, signal: controller.signal }, rec);
          schedule(() => controller.abort());
          try {
            // The connect won the race: an ordinary connection, closed right away.
            const conn = await pending;
            assert.notEqual(i, 0, "a synchronous abort must always reject");
            connected.add(rec);
            conn.destroy();
            await rec.closed();
          } catch (e) {
            assert.equal((e as Error).name, "AbortError", String(e));
            aborted.push(rec);
          }
        }
      }

      // Now every server side but the good connection's must close: the adapter may not keep a
      // socket of an aborted connect open.
      const client = await dial(cleanup, port);
      client.write(bytes("x"));
      await until(() => server.accepted.some((a) => a.rec.received > 0), "the good connection");
      const others = server.accepted.filter((a) => a.rec.received === 0);
      await until(() => others.every((a) => a.rec.closeCalls > 0), "server sides of aborted connects to close");
      await sleep(20);
      for (const rec of aborted) assert.equal(rec.closeCalls + rec.received, 0, `${rec.label}: handlers called`);
    }));

  test("setTimer: cancel() prevents firing, even for a timer already due", TEST, async () => {
    let fired = 0;
    const plain = rt.setTimer(5, () => fired++);
    plain.cancel();
    plain.cancel();
    // Same delay, scheduled later: due in the same turn as the canceller, which runs first.
    let victimRan = false;
    let victim: { cancel(): void } | undefined;
    rt.setTimer(10, () => victim!.cancel());
    victim = rt.setTimer(10, () => (victimRan = true));
    await new Promise<void>((resolve) => rt.setTimer(60, resolve));
    assert.equal(fired, 0);
    assert.equal(victimRan, false);
  });

  test("setTimer: timers fire no earlier than their delay, in deadline order", TEST, async () => {
    const start = rt.now();
    const fired: { ms: number; elapsed: number }[] = [];
    const all = deferred<void>();
    for (const ms of [30, 10, 20]) {
      rt.setTimer(ms, () => {
        fired.push({ ms, elapsed: rt.now() - start });
        if (fired.length === 3) all.resolve();
      });
    }
    await within(all.promise, "three timers");
    assert.deepEqual(fired.map((f) => f.ms), [10, 20, 30]);
    // 1 ms of slack: some runtimes round the timer clock to whole milliseconds.
    for (const f of fired) assert.ok(f.elapsed >= f.ms - 1, `${f.ms} ms timer fired after ${f.elapsed} ms`);
  });

  test("defer runs later, in order, and yields to timers and I/O", TEST, async () => {
    const seen: number[] = [];
    rt.defer(() => seen.push(1));
    rt.defer(() => seen.push(2));
    seen.push(0);
    await new Promise<void>((resolve) => rt.defer(resolve));
    assert.deepEqual(seen, [0, 1, 2]);

    // What a deferred callback defers runs on a later turn: after everything deferred before it.
    const order: string[] = [];
    await new Promise<void>((resolve) => {
      rt.defer(() => {
        order.push("a");
        rt.defer(() => {
          order.push("c");
          resolve();
        });
      });
      rt.defer(() => order.push("b"));
    });
    assert.deepEqual(order, ["a", "b", "c"]);

    // A self-rescheduling defer loop must not starve a timer.
    let timerFired = false;
    rt.setTimer(5, () => (timerFired = true));
    let hops = 0;
    await new Promise<void>((resolve) => {
      const hop = () => (timerFired || ++hops > 1_000_000 ? resolve() : rt.defer(hop));
      rt.defer(hop);
    });
    assert.ok(timerFired, `the timer never fired during ${hops} defers`);
  });

  test("clocks and random", () => {
    let last = rt.now();
    for (let i = 0; i < 1000; i++) {
      const now = rt.now();
      assert.ok(now >= last, `now() went back from ${last} to ${now}`);
      last = now;
    }
    assert.ok(Math.abs(rt.wallClock() - Date.now()) < 1000, "wallClock() is not Date.now()");
    for (let i = 0; i < 1000; i++) {
      const r = rt.random();
      assert.ok(r >= 0 && r < 1, `random() gave ${r}`);
    }
  });

  test("lookup: localhost resolves, IP literals resolve to themselves", TEST, async () => {
    const signal = new AbortController().signal;
    const local = await within(rt.lookup("localhost", signal), "lookup of localhost");
    assert.ok(local.length > 0, "no address for localhost");
    assert.ok(local.includes("127.0.0.1") || local.includes("::1"), local.join(","));
    assert.deepEqual(await rt.lookup("127.0.0.1", signal), ["127.0.0.1"]);
    assert.deepEqual(await rt.lookup("10.1.2.3", signal), ["10.1.2.3"]);
    assert.deepEqual(await rt.lookup("::1", signal), ["::1"]);
    assert.deepEqual(await rt.lookup("[::1]", signal), ["::1"]);
  });

  test("lookup: an aborted signal rejects promptly with AbortError", TEST, async () => {
    const pre = new AbortController();
    pre.abort();
    await assert.rejects(rt.lookup("localhost", pre.signal), { name: "AbortError" });

    const controller = new AbortController();
    const pending = rt.lookup("slotgate-conformance.invalid", controller.signal);
    controller.abort();
    await assert.rejects(within(pending, "aborted lookup", 5_000), { name: "AbortError" });
  });

  test("serveHttp: serves a fetch handler (method, path, query, body, status, headers)", TEST, () =>
    withCleanup(async (cleanup) => {
      const server = await rt.serveHttp({ host: HOST, port: 0 }, async (request) => {
        const url = new URL(request.url);
        if (url.pathname === "/fail") throw new Error("handler failure");
        return Response.json(
          {
            method: request.method,
            path: url.pathname,
            search: url.search,
            type: request.headers.get("content-type"),
            body: await request.text(),
          },
          { status: request.method === "PUT" ? 201 : 200, headers: { "x-slotgate": "yes" } },
        );
      });
      cleanup.add(() => server.close());
      assert.ok(server.port > 0, "http port");
      const base = `http://${HOST}:${server.port}`;

      const get = await within(fetch(`${base}/hello?x=1`), "GET");
      assert.equal(get.status, 200);
      assert.equal(get.headers.get("x-slotgate"), "yes");
      assert.deepEqual(await get.json(), { method: "GET", path: "/hello", search: "?x=1", type: null, body: "" });

      const document = { name: "slot", slots: [0, 16383], nested: { ok: true } };
      const put = await within(
        fetch(`${base}/items/7`, {
          method: "PUT",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(document),
        }),
        "PUT",
      );
      assert.equal(put.status, 201);
      const echoed = (await put.json()) as { method: string; path: string; type: string; body: string };
      assert.equal(echoed.method, "PUT");
      assert.equal(echoed.path, "/items/7");
      assert.equal(echoed.type, "application/json");
      assert.deepEqual(JSON.parse(echoed.body), document);

      const failed = await within(fetch(`${base}/fail`), "failing request");
      assert.equal(failed.status, 500);
      await failed.body?.cancel();
    }));
});
