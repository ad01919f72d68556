/**
 * The discovery session on a manual clock: periodic (jittered) refresh, rate-limited early refresh,
 * backoff after failure, hedging past a hanging node, and teardown while work is in flight.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Discovery, type DiscoveryOptions } from "../../src/backends/cluster/discovery.ts";
import type { Topology } from "../../src/backends/cluster/topology.ts";
import { Scope, lateCallbacks } from "../../src/scope/scope.ts";
import { ManualRuntime, settle, type FakeConn } from "../support/manual-runtime.ts";

const SLOTS_REPLY = "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$4\r\nid-1\r\n";

const OPTIONS: DiscoveryOptions = {
  seeds: [{ host: "127.0.0.1", port: 7000 }],
  refreshIntervalMs: 5000,
  refreshTimeoutMs: 3000,
  redirectRefreshIntervalMs: 1000,
};

function setup(options: Partial<DiscoveryOptions> = {}) {
  const rt = new ManualRuntime({ seed: 7 });
  const root = Scope.root(rt);
  const scope = root.child("cluster test");
  const applied: Topology[] = [];
  const from: string[] = [];
  const failures: string[] = [];
  const causes: string[] = [];
  const discovery = new Discovery(scope, { ...OPTIONS, ...options }, {
    knownNodes: () => [],
    apply: (t, f) => {
      applied.push(t);
      from.push(f);
    },
    failed: (e) => {
      failures.push(e.message);
      causes.push(e.summary);
    },
  });
  const answered = new Set<FakeConn>();
  /** Play every node that is asked: accept connects, answer CLUSTER SLOTS (or refuse). */
  const serve = async (mode: "answer" | "refuse" | "ignore" = "answer", port?: number) => {
    await settle();
    for (const pending of [...rt.pendingConnects]) {
      if (pending.settled || (port !== undefined && pending.options.port !== port)) continue;
      if (mode === "refuse") pending.reject(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }));
      else pending.resolve();
    }
    await rt.flush();
    for (const conn of rt.conns) {
      if (mode !== "answer" || conn.destroyed || answered.has(conn) || conn.written.length === 0) continue;
      if (port !== undefined && conn.remotePort !== port) continue;
      answered.add(conn);
      conn.receive(SLOTS_REPLY);
    }
    await settle();
  };
  return { rt, root, scope, discovery, applied, from, failures, causes, serve };
}

describe("discovery", () => {
  it("learns the slot map, then refreshes every refreshIntervalMs, jittered down by up to a fifth", async () => {
    const { rt, root, discovery, applied, serve } = setup();
    discovery.start();
    await serve();
    assert.equal(applied.length, 1);
    assert.equal(applied[0]!.ranges[0]!.primary.port, 7000);
    assert.equal(applied[0]!.ranges[0]!.primary.id, "id-1");
    await rt.advance(3999);
    await serve();
    assert.equal(applied.length, 1, "not before 0.8 × the interval");
    await rt.advance(1001);
    await serve();
    assert.equal(applied.length, 2, "by the interval");
    await root.close();
  });

  it("an early refresh is rate-limited by redirectRefreshIntervalMs", async () => {
    const { rt, root, discovery, applied, serve } = setup();
    discovery.start();
    await serve();
    assert.equal(applied.length, 1);
    await rt.advance(200);
    discovery.requestRefresh();
    discovery.requestRefresh();
    await serve();
    assert.equal(applied.length, 1, "less than 1000 ms since the last round");
    await rt.advance(800);
    await serve();
    assert.equal(applied.length, 2, "one early round once the gap has passed");
    await rt.advance(1500);
    await serve();
    assert.equal(applied.length, 2, "requests were coalesced into one round");
    await root.close();
  });

  it("a failed round is retried with backoff well before the refresh interval", async () => {
    const { rt, root, discovery, applied, failures, serve } = setup();
    discovery.start();
    await serve("refuse");
    assert.equal(applied.length, 0);
    assert.equal(failures.length, 1);
    assert.match(failures[0]!, /ECONNREFUSED/);
    await rt.advance(200);
    await serve();
    assert.equal(applied.length, 1, "retried within 200 ms (backoff starts at 100 ms, jittered)");
    await root.close();
  });

  it("a seed that hangs does not hold up the next one (hedged after a third of the timeout)", async () => {
    const { rt, root, discovery, applied, serve } = setup({
      seeds: [
        { host: "127.0.0.1", port: 7001 },
        { host: "127.0.0.1", port: 7000 },
      ],
    });
    discovery.start();
    await serve("ignore", 7001);
    assert.equal(applied.length, 0);
    await rt.advance(1000);
    await serve("answer", 7000);
    assert.equal(applied.length, 1);
    // The round is over: the hanging connection was destroyed with it.
    const hanging = rt.conns.find((c) => c.remotePort === 7001)!;
    assert.equal(hanging.destroyed, true);
    await root.close();
  });

  it("a hostname seed is resolved through the runtime; an unresolvable one is skipped", async () => {
    const { rt, root, discovery, applied, serve } = setup({
      seeds: [
        { host: "gone.invalid", port: 7000 },
        { host: "redis-0.example", port: 7000 },
      ],
    });
    rt.dns.set("gone.invalid", new Error("ENOTFOUND gone.invalid"));
    rt.dns.set("redis-0.example", ["127.0.0.1"]);
    discovery.start();
    await serve();
    await serve();
    assert.equal(applied.length, 1);
    await root.close();
  });

  it("a failed round names each candidate's cause in one word: ENOTFOUND, ECONNREFUSED, timeout", async () => {
    const { rt, root, discovery, failures, causes, serve } = setup({
      seeds: [
        { host: "gone.invalid", port: 7000 },
        { host: "127.0.0.1", port: 7001 },
        { host: "127.0.0.1", port: 7002 },
      ],
    });
    rt.dns.set("gone.invalid", Object.assign(new Error("lookup of 'gone.invalid' failed"), { code: "ENOTFOUND" }));
    discovery.start();
    await serve("refuse", 7001);
    await serve("ignore", 7002);
    await rt.advance(3000);
    await settle();
    assert.equal(failures.length, 1);
    assert.deepEqual(causes, ["ECONNREFUSED,ENOTFOUND,timeout"]);
    await root.close();
  });

  it("reports which candidate answered; one to ask last goes after every other candidate in the next round", async () => {
    const { rt, root, discovery, from, serve } = setup({
      seeds: [
        { host: "127.0.0.1", port: 7000 },
        { host: "127.0.0.1", port: 7001 },
      ],
    });
    discovery.start();
    await serve("answer", 7000);
    assert.deepEqual(from, ["127.0.0.1:7000"]);
    discovery.requestRefresh("127.0.0.1:7000");
    await rt.advance(1000);
    await serve("answer", 7001);
    assert.deepEqual(from, ["127.0.0.1:7000", "127.0.0.1:7001"], "7001 was asked first");
    await root.close();
  });

  for (const moment of ["a DNS lookup", "a TCP connect", "CLUSTER SLOTS", "the refresh timer"] as const) {
    it(`closing the cluster scope while ${moment} is pending leaves nothing alive and runs no callback`, async () => {
      const { rt, root, scope, discovery, applied, serve } = setup(
        moment === "a DNS lookup" ? { seeds: [{ host: "slow.example", port: 7000 }] } : {},
      );
      const late = lateCallbacks();
      discovery.start();
      await settle();
      if (moment === "a DNS lookup") assert.equal(rt.pendingLookups.length, 1);
      if (moment === "a TCP connect") assert.equal(rt.pendingConnects.filter((p) => !p.settled).length, 1);
      if (moment === "CLUSTER SLOTS") await serve("ignore");
      if (moment === "the refresh timer") {
        await serve();
        assert.equal(applied.length, 1);
      }
      assert.ok(scope.liveCount() > 0, "scope.liveCount() > 0");
      await scope.close({ deadlineMs: 0 });
      assert.equal(scope.state, "closed");
      assert.deepEqual(root.inspect().children, [], "no trace of the cluster scope");
      for (const conn of rt.conns) assert.equal(conn.destroyed, true);
      assert.ok(rt.pendingLookups.every((l) => l.settled || l.signal.aborted), "rt.pendingLookups.every((l) => l.settled || l.signal.aborted)");
      const before = applied.length;
      await rt.advance(60_000);
      await serve();
      assert.equal(applied.length, before, "nothing applied after close");
      assert.equal(rt.pendingTimers(), 0);
      assert.equal(lateCallbacks(), late);
      await root.close();
    });
  }
});
