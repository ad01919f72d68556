/**
 * Rate-limited log lines on a manual clock: the first occurrence of a key is logged at once, the
 * repeats within the window are one line `repeated=N` when it ends, a steady stream is one line a
 * window, keys are counted apart, and what is counted when the owner's scope goes is logged then.
 * Also what a slot map change is made of, for its log line: slots moved, primaries, failovers.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger, LogLimiter, REPEAT_WINDOW_MS } from "../../src/log.ts";
import { Scope } from "../../src/scope/scope.ts";
import { mapChanges } from "../../src/backends/cluster/map-changes.ts";
import type { Topology } from "../../src/backends/cluster/topology.ts";
import { ClientsMemory } from "../../src/proxy/session/clients-memory.ts";
import { ManualRuntime } from "../support/manual-runtime.ts";

function setup() {
  const rt = new ManualRuntime();
  const root = Scope.root(rt);
  const scope = root.child("owner");
  const lines: string[] = [];
  const limiter = new LogLimiter(scope, createLogger("debug", (line) => lines.push(line)));
  return { rt, root, scope, lines, limiter };
}

describe("LogLimiter", () => {
  it("logs the first occurrence at once and the repeats of its window as one line with their count", async () => {
    const { rt, root, lines, limiter } = setup();
    for (let i = 0; i < 50; i++) {
      limiter.warn("refresh", "refresh failed", { cluster: "a", attempt: i });
      await rt.advance(100);
    }
    assert.deepEqual(lines, ["WARN refresh failed cluster=a attempt=0"]);
    assert.equal(limiter.pending("refresh"), 49);
    await rt.advance(REPEAT_WINDOW_MS);
    // The last occurrence's fields, and how many lines it stands for.
    assert.deepEqual(lines, ["WARN refresh failed cluster=a attempt=0", "WARN refresh failed cluster=a attempt=49 repeated=49"]);
    // A quiet window ends the run: the next occurrence is logged at once.
    await rt.advance(REPEAT_WINDOW_MS);
    limiter.warn("refresh", "refresh failed", { cluster: "a", attempt: 50 });
    assert.equal(lines.at(-1), "WARN refresh failed cluster=a attempt=50");
    assert.equal(lines.length, 3);
    await root.close();
  });

  it("a steady stream is one line a window, whatever its rate", async () => {
    const { rt, root, lines, limiter } = setup();
    const windows = 5;
    for (let t = 0; t < windows * REPEAT_WINDOW_MS; t += 10) {
      limiter.warn("maxClients", "client refused", { limit: "maxClients" });
      await rt.advance(10);
    }
    await rt.advance(REPEAT_WINDOW_MS * 2);
    assert.equal(lines.length, windows + 1, lines.join("\n"));
    const counted = lines.slice(1).map((line) => Number(/repeated=(\d+)$/.exec(line)![1]));
    assert.equal(1 + counted.reduce((a, b) => a + b, 0), windows * REPEAT_WINDOW_MS / 10, "every occurrence is counted once");
    await root.close();
  });

  it("counts keys apart, and a single occurrence needs no second line", async () => {
    const { rt, root, lines, limiter } = setup();
    limiter.warn("maxClients", "client refused", { limit: "maxClients" });
    limiter.warn("maxQueryBufferBytes", "Closing client that reached max query buffer length", { limit: "maxQueryBufferBytes" });
    limiter.warn("maxClients", "client refused", { limit: "maxClients" });
    await rt.advance(REPEAT_WINDOW_MS);
    assert.deepEqual(lines, [
      "WARN client refused limit=maxClients",
      "WARN Closing client that reached max query buffer length limit=maxQueryBufferBytes",
      "WARN client refused limit=maxClients repeated=1",
    ]);
    await root.close();
  });

  it("flush logs the count now and ends the run; forget drops it", async () => {
    const { rt, root, lines, limiter } = setup();
    limiter.warn("k", "refresh failed", { cause: "a" });
    limiter.warn("k", "refresh failed", { cause: "a" });
    limiter.flush("k");
    limiter.warn("k", "refresh failed", { cause: "b" });
    limiter.warn("k", "refresh failed", { cause: "b" });
    limiter.forget("k");
    await rt.advance(REPEAT_WINDOW_MS * 3);
    assert.deepEqual(lines, ["WARN refresh failed cause=a", "WARN refresh failed cause=a repeated=1", "WARN refresh failed cause=b"]);
    await root.close();
  });

  it("logs what it counted when its owner's scope is torn down, and leaves no timer behind", async () => {
    const { rt, root, scope, lines, limiter } = setup();
    const logger = limiter.logger("maxClientsMemoryBytes");
    logger.warn("client disconnected: maxmemory-clients reached", { id: 1 });
    logger.warn("client disconnected: maxmemory-clients reached", { id: 2 });
    logger.warn("client disconnected: maxmemory-clients reached", { id: 3 });
    await scope.close();
    assert.deepEqual(lines, ["WARN client disconnected: maxmemory-clients reached id=1", "WARN client disconnected: maxmemory-clients reached id=3 repeated=2"]);
    assert.equal(scope.liveCount(), 0);
    // Once the owner is gone every occurrence is a line of its own (no window to count in).
    limiter.warn("late", "late event");
    limiter.warn("late", "late event");
    await rt.advance(REPEAT_WINDOW_MS);
    assert.equal(lines.filter((l) => l === "WARN late event").length, 2);
    await root.close();
  });
});

describe("clients evicted by maxClientsMemoryBytes", () => {
  it("are one line with the client's address, then a count", async () => {
    const { rt, root, lines, limiter } = setup();
    const memory = new ClientsMemory(() => 100, limiter.logger("maxClientsMemoryBytes"));
    const users = [1, 2, 3].map((id) => ({ id, addr: `127.0.0.1:${50_000 + id}`, evict: () => memory.remove(users[id - 1]!) }));
    for (const user of users) memory.set(user, 150);
    assert.equal(memory.evicted, 3);
    await rt.advance(REPEAT_WINDOW_MS);
    assert.deepEqual(lines, [
      "WARN client disconnected: maxmemory-clients reached limit=maxClientsMemoryBytes id=1 bytes=150 totalBytes=150 maxBytes=100 addr=127.0.0.1:50001",
      "WARN client disconnected: maxmemory-clients reached limit=maxClientsMemoryBytes id=3 bytes=150 totalBytes=150 maxBytes=100 addr=127.0.0.1:50003 repeated=2",
    ]);
    await root.close();
  });
});

const node = (port: number) => ({ host: "127.0.0.1", port });
const range = (start: number, end: number, primary: number, ...replicas: number[]) => ({ start, end, primary: node(primary), replicas: replicas.map(node) });

describe("mapChanges", () => {
  const before: Topology = { ranges: [range(0, 5460, 7000, 7003), range(5461, 10922, 7001, 7004), range(10923, 16383, 7002, 7005)] };

  it("counts the slots that changed owner", () => {
    const migrated: Topology = { ranges: [range(0, 5459, 7000, 7003), range(5460, 5460, 7001, 7004), range(5461, 10922, 7001, 7004), range(10923, 16383, 7002, 7005)] };
    assert.deepEqual(mapChanges(before, migrated), { moved: 1, previousPrimaries: 3, primaries: 3, failovers: [] });
    assert.equal(mapChanges(before, before).moved, 0);
  });

  it("sees a failover: a replica of the previous map owns its primary's slots", () => {
    const failedOver: Topology = { ranges: [range(0, 5460, 7003), range(5461, 10922, 7001, 7004), range(10923, 16383, 7002, 7005)] };
    assert.deepEqual(mapChanges(before, failedOver), { moved: 5461, previousPrimaries: 3, primaries: 3, failovers: [{ primary: "127.0.0.1:7003", was: "127.0.0.1:7000", slots: 5461 }] });
  });

  it("counts slots that lost or gained their only owner, and is no failover when a primary takes them", () => {
    const lost: Topology = { ranges: [range(0, 5460, 7000, 7003), range(5461, 10922, 7001, 7004)] };
    assert.deepEqual(mapChanges(before, lost), { moved: 5461, previousPrimaries: 3, primaries: 2, failovers: [] });
    const takenByPrimary: Topology = { ranges: [range(0, 10922, 7000, 7003), range(10923, 16383, 7002, 7005)] };
    assert.deepEqual(mapChanges(before, takenByPrimary), { moved: 5462, previousPrimaries: 3, primaries: 2, failovers: [] });
  });
});
