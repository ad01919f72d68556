/**
 * A client's memory is bounded, per client and over all clients, on the manual runtime: the
 * query buffer is checked while reading, a client that does not read stops being served once it
 * owes `maxClientOwedBytes`, its window of requests in flight starts small and grows as it keeps
 * up, and past the clients' budget the client holding the most is disconnected first.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { INITIAL_WINDOW } from "../../src/proxy/session/client-flow.ts";
import { ClientsMemory } from "../../src/proxy/session/clients-memory.ts";
import { createLogger } from "../../src/log.ts";
import { sessionHarness } from "../support/session-harness.ts";

const KIB = 1024;
const bulk = (n: number) => "v".repeat(n);

describe("a client's query buffer", () => {
  it("past maxQueryBufferBytes while reading: Redis's protocol error after the replies owed, the connection closed, logged with the limit's name", async () => {
    const { runtime, client, logs, memory } = sessionHarness({ limits: { maxQueryBufferBytes: 64 * KIB } });
    const a = client(1);
    a.send(["PING"]);
    // Three values of 30 KiB, each far under maxBulkBytes; together over the query buffer limit.
    a.sendRaw(`*7\r\n$4\r\nMSET\r\n$1\r\na\r\n$${30 * KIB}\r\n${bulk(30 * KIB)}\r\n$1\r\nb\r\n$${30 * KIB}\r\n${bulk(30 * KIB)}\r\n`);
    assert.equal(a.conn.ended, false, "under the limit: still reading");
    assert.ok(memory.bytesOf(a.session) > 60 * KIB, "the unfinished request is counted");
    a.sendRaw(`$1\r\nc\r\n$${30 * KIB}\r\n${bulk(10 * KIB)}`);
    await runtime.flush();
    assert.equal(a.written(), "+PONG\r\n-ERR Protocol error: query buffer limit reached (maxQueryBufferBytes 65536)\r\n");
    assert.ok(a.conn.ended, "closed");
    assert.ok(memory.bytesOf(a.session) < 1 * KIB, `nothing of the request is held (${memory.bytesOf(a.session)} bytes)`);
    assert.ok(logs.some((line) => line.startsWith("WARN Closing client that reached max query buffer length") && line.includes("limit=maxQueryBufferBytes") && line.includes("id=1")), logs.join("\n"));
    // Bytes after the limit are not read.
    a.sendRaw(bulk(100 * KIB));
    assert.ok(memory.bytesOf(a.session) < 1 * KIB);
  });

  it("a request under the limit is served whole, however many chunks it comes in", async () => {
    const { runtime, client, router, answer } = sessionHarness({ limits: { maxQueryBufferBytes: 64 * KIB } });
    const a = client(1);
    const request = `*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${60 * KIB}\r\n${bulk(60 * KIB)}\r\n`;
    for (let at = 0; at < request.length; at += 4000) a.sendRaw(request.slice(at, at + 4000));
    await runtime.flush();
    assert.equal(router.routed.length, 1);
    answer(0, "+OK\r\n");
    await runtime.flush();
    assert.equal(a.written(), "+OK\r\n");
  });
});

describe("a client that does not read", () => {
  it("stops being sent anything once it owes maxClientOwedBytes; what waited goes once it has read", async () => {
    const { runtime, client, router, answer } = sessionHarness({ limits: { maxClientOwedBytes: 100 * KIB } });
    const a = client(1);
    a.conn.stalled = true;
    const total = INITIAL_WINDOW + 8;
    a.send(...Array.from({ length: total }, (_, i) => ["GET", `k${i}`]));
    assert.equal(router.routed.length, INITIAL_WINDOW, "the first burst is one window");
    for (let i = 0; i < INITIAL_WINDOW; i++) answer(i, `$${10 * KIB}\r\n${bulk(10 * KIB)}\r\n`);
    await runtime.flush();
    assert.ok(a.conn.bufferedBytes > 100 * KIB, "its socket holds what it did not read");
    await runtime.flush();
    assert.equal(router.routed.length, INITIAL_WINDOW, "nothing more is sent while it owes that much");
    assert.ok(a.conn.paused, "and it is not read either");
    // It reads everything.
    a.conn.bufferedBytes = 0;
    a.conn.emitDrain();
    assert.equal(router.routed.length, total, "the held requests go");
    for (let i = INITIAL_WINDOW; i < total; i++) answer(i, `$1\r\n${i % 10}\r\n`);
    await runtime.flush();
    assert.ok(a.written().endsWith(Array.from({ length: 8 }, (_, j) => `$1\r\n${(INITIAL_WINDOW + j) % 10}\r\n`).join("")));
  });

  it("the window of requests in flight grows while the client keeps up, up to maxPendingRequests", async () => {
    const { runtime, client, router, answer } = sessionHarness({ limits: { maxPendingRequests: 200 } });
    const a = client(1);
    a.send(...Array.from({ length: 1000 }, (_, i) => ["GET", `k${i}`]));
    let answered = 0;
    const inFlight: number[] = [];
    while (answered < 1000) {
      inFlight.push(router.routed.length - answered);
      for (; answered < router.routed.length; answered++) answer(answered, ":1\r\n");
      await runtime.flush();
    }
    assert.equal(inFlight[0], INITIAL_WINDOW);
    assert.ok(Math.max(...inFlight) === 200, `in flight per turn: ${inFlight.join(" ")}`);
    assert.equal(a.written(), ":1\r\n".repeat(1000));
  });
});

describe("the clients' memory budget (maxmemory-clients)", () => {
  it("past the budget, the client holding the most is disconnected first, logged with the limit's name; the others go on", async () => {
    const { runtime, client, router, answer, memory, logs } = sessionHarness({ maxClientsMemoryBytes: 100 * KIB });
    const [a, b, c] = [client(1), client(2), client(3)];
    const unfinished = (n: number) => `*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${n + 1}\r\n${bulk(n)}`;
    a.sendRaw(unfinished(30 * KIB));
    b.sendRaw(unfinished(50 * KIB));
    assert.ok(!a.conn.destroyed && !b.conn.destroyed);
    // C tips the total over, but B holds the most.
    c.sendRaw(unfinished(25 * KIB));
    assert.ok(b.conn.destroyed, "the largest client is disconnected");
    assert.ok(!a.conn.destroyed && !c.conn.destroyed, "the others are untouched");
    assert.ok(memory.totalBytes < 60 * KIB && memory.totalBytes > 55 * KIB, `total ${memory.totalBytes}`);
    assert.equal(memory.evicted, 1);
    const line = logs.find((l) => l.includes("maxmemory-clients"));
    assert.ok(line?.startsWith("WARN client disconnected: maxmemory-clients reached limit=maxClientsMemoryBytes id=2 bytes="), logs.join("\n"));
    // A and C finish their requests and are served.
    a.sendRaw("x\r\n");
    c.sendRaw("x\r\n");
    assert.equal(router.routed.length, 2);
    answer(0, "+OK\r\n");
    answer(1, "+OK\r\n");
    await runtime.flush();
    assert.equal(a.written(), "+OK\r\n");
    assert.equal(c.written(), "+OK\r\n");
    assert.ok(memory.totalBytes < 2 * KIB, `what A and C held is released (${memory.totalBytes})`);
  });

  it("replies owed count too: a client that does not read is the one evicted when another pushes the total over", async () => {
    const { runtime, client, answer } = sessionHarness({ maxClientsMemoryBytes: 100 * KIB });
    const [reader, sleeper] = [client(1), client(2)];
    sleeper.conn.stalled = true;
    sleeper.send(["GET", "big"]);
    answer(0, `$${80 * KIB}\r\n${bulk(80 * KIB)}\r\n`);
    await runtime.flush();
    assert.ok(!sleeper.conn.destroyed);
    reader.sendRaw(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${30 * KIB}\r\n${bulk(25 * KIB)}`);
    assert.ok(sleeper.conn.destroyed, "the client owed 80 KiB is evicted");
    assert.ok(!reader.conn.destroyed);
  });

  it("evictions are told once per round, so the runtime can collect what the evicted clients held", () => {
    let told = 0;
    const memory = new ClientsMemory(() => 100, createLogger("silent"), () => told++);
    const users = [1, 2, 3].map((id) => ({ id, evicted: false, evict() {
      this.evicted = true;
    } }));
    memory.set(users[0]!, 40);
    memory.set(users[1]!, 50);
    assert.equal(told, 0);
    memory.set(users[2]!, 120);
    assert.deepEqual(users.map((u) => u.evicted), [false, false, true]);
    memory.set(users[1]!, 70);
    assert.deepEqual(users.map((u) => u.evicted), [false, true, true]);
    assert.equal(told, 2);
    assert.equal(memory.totalBytes, 40);
    assert.equal(memory.evicted, 2);
  });

  it("a budget of 0 evicts nobody, while still counting", () => {
    const { client, memory } = sessionHarness({ maxClientsMemoryBytes: 0 });
    const a = client(1);
    a.sendRaw(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${300 * KIB}\r\n${bulk(200 * KIB)}`);
    assert.ok(!a.conn.destroyed);
    assert.ok(memory.totalBytes >= 200 * KIB);
  });
});
