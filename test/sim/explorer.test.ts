/**
 * The deterministic-simulation explorer (test/sim/explorer.ts): random seeds and fixed replayed
 * seeds hold every invariant; a seed replays to the same trace; and each planted fault
 * (src/testing/faults.ts) is caught within a bounded number of seeds. Runs under
 * `npx tsx --test`, `bun test` and `deno test -A`.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { describeFailure, explore, runSeed, wallMs } from "./explorer.ts";
import { faults } from "../../src/testing/faults.ts";

/** Seeds replayed on every run (CI regressions go here). */
// 15 and 33: pmessages and a transaction aborted by its cluster's retirement (since the WAIT and RESP3 clients).
const FIXED_SEEDS = [1, 2, 3, 5, 7, 15, 18, 20, 33, 42, 1000, 1234, 99_999];
/** Random seeds per run, bounded by a wall-clock budget (the box may be loaded: few are promised). */
const RANDOM_SEEDS = 100;
const RANDOM_MIN = 15;
const RANDOM_BUDGET_MS = 12_000;
/**
 * Seeds within which the explorer must catch the planted scope leak, from seed 1 (where it takes
 * 11 since the WAIT and RESP3 clients; 24 before). Measured from 20 start seeds (before them) it
 * needs 1 to 99, median ~15: about one seed in 17 plants it (4 of seeds 1 to 60 now).
 */
const LEAK_BOUND = 150;

function report(failures: { seed: number }[], all: Parameters<typeof describeFailure>[0][]): string {
  return all.map((f) => describeFailure(f)).join("\n") || failures.map((f) => f.seed).join(",");
}

describe("deterministic simulation explorer", () => {
  it("fixed seeds hold every invariant, and reach every kind of client, fault and outcome", async () => {
    const failures = [];
    const covered: Record<string, number> = {};
    for (const seed of FIXED_SEEDS) {
      const r = await runSeed(seed);
      assert.ok(r.requests > 20, `seed ${seed} sent traffic (${r.requests} requests)`);
      if (r.violations.length > 0) failures.push(r);
      for (const [k, v] of Object.entries(r.coverage)) covered[k] = (covered[k] ?? 0) + v;
    }
    assert.ok(failures.length === 0, `violations:\n${report(failures, failures)}`);
    // Transactions that ran, saw a touched WATCH, were aborted (one by its cluster's retirement),
    // BLPOPs that got an element or timed out, messages and pmessages, WAITs (some counting fewer
    // replicas than asked), RESP3 clients, faulted client links, retired clusters.
    for (const [what, n] of Object.entries(covered)) {
      if (what !== "droppedFlushes") assert.ok(n > 0, `the fixed seeds reach ${what} (${JSON.stringify(covered)})`);
    }
  });

  it("random seeds hold every invariant", async () => {
    const start = Math.floor(wallMs() * 1000) % 1_000_000_000;
    // The budget bounds the time on a fast machine; a loaded one still runs RANDOM_MIN seeds.
    const r = await explore(start, RANDOM_SEEDS, { budgetMs: RANDOM_BUDGET_MS, minSeeds: RANDOM_MIN });
    assert.ok(r.ran >= RANDOM_MIN, `at least ${RANDOM_MIN} random seeds ran in the budget (${r.ran} from ${start})`);
    assert.ok(r.failures.length === 0, `violations (start ${start}):\n${report(r.failures, r.failures)}`);
  });

  it("the same seed replays the same trace", async () => {
    const a = await runSeed(11);
    const b = await runSeed(11);
    assert.ok(a.trace.length > 50, `a non-trivial trace (${a.trace.length} lines)`);
    assert.equal(a.traceHash, b.traceHash, "identical trace hashes");
    assert.deepEqual(a.trace, b.trace, "identical traces");
  });

  it("a seed's trace is the same on Node, Bun and Deno (golden hashes)", async () => {
    // Recorded on all three runtimes; a deliberate change to the simulated world updates them
    // (last: a classic channel's subscription is placed on the owner of its slot, as shard
    // channels are, and follows it; seed 42 has subscribers on a cluster).
    const golden: Record<number, string> = { 7: "62e4d559", 42: "03c095e7", 1000: "44c66932" };
    for (const [seed, hash] of Object.entries(golden)) {
      assert.equal((await runSeed(Number(seed))).traceHash, hash, `trace hash of seed ${seed}`);
    }
  });

  it("catches a removed cluster that is never closed (faults.skipRemovedClusterClose)", async () => {
    faults.skipRemovedClusterClose = true;
    try {
      const r = await explore(1, 50, { stopAtFirst: true });
      assert.ok(r.failures.length === 1, `a violation within 50 seeds (ran ${r.ran})`);
      const kinds = r.failures[0]!.violations.map((v) => v.invariant);
      assert.ok(kinds.includes("retired-cluster-released"), `the retired-cluster invariant fired (${kinds.join(",")})`);
    } finally {
      faults.skipRemovedClusterClose = false;
    }
  });

  it("catches a closing scope that leaks into shared connections (faults.leakClosingScope)", async () => {
    // Issue 11: a transaction's connection on a cluster that is being replaced (its drain held
    // open by a blocked client) is offered the client's next command; arming its timer on the
    // closing scope throws, into the client's session or into the shared connection that just
    // delivered the client's previous reply, failing every other request on it.
    faults.leakClosingScope = true;
    let found;
    try {
      const r = await explore(1, LEAK_BOUND, { stopAtFirst: true });
      assert.ok(r.failures.length === 1, `a violation within ${LEAK_BOUND} seeds (ran ${r.ran})`);
      found = r.failures[0]!;
    } finally {
      faults.leakClosingScope = false;
    }
    const kinds = found.violations.map((v) => v.invariant);
    assert.ok(
      kinds.some((k) => k === "internal-error" || k === "one-reply-each" || k === "client-closed"),
      `a client got an internal or protocol error, lost a reply or was disconnected:\n${describeFailure(found)}`,
    );
    const again = await runSeed(found.seed);
    assert.deepEqual(again.violations, [], `seed ${found.seed} holds every invariant once the scope is sealed again`);
  });

  it("catches a routing bug that ignores ASK (faults.ignoreAsk)", async () => {
    faults.ignoreAsk = true;
    try {
      const r = await explore(1, 50, { stopAtFirst: true });
      assert.ok(r.failures.length === 1, `a violation within 50 seeds (ran ${r.ran})`);
      const v = r.failures[0]!.violations;
      assert.ok(v.some((x) => x.invariant === "valid-reply" && x.detail.includes("-ASK")), `an -ASK reply reached a client (${JSON.stringify(v[0])})`);
    } finally {
      faults.ignoreAsk = false;
    }
  });
});
