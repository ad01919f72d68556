/**
 * Cluster churn (issue 3 §5): add, replace and remove a cluster 1,000 times in a tight loop while
 * steady SET/GET traffic runs against another one, behind one slotgate in front of a real local
 * cluster (both configured clusters use its seeds: "main" as the catch-all, "churned" behind the
 * `churn:` prefix). Every 100th cycle goes through the admin HTTP API. The logic is shared with
 * `npm run churn -- --cycles N` (test/support/churn.ts), which prints the same figures for
 * longer runs. Runs on Node, Bun and Deno.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { lazy } from "../support/lazy.ts";
import { formatReport, mib, runChurn, startChurnProxy } from "../support/churn.ts";

const CYCLES = 1000;
const WARMUP = 50;
/** Generous: JIT-compiled code alone grows the heap by 1-2 MiB after 50 cycles (measured). A leaked cluster per cycle would be over 100 MiB. */
const MAX_GROWTH_PCT = 20;
const MAX_GROWTH_BYTES = 10 * 1024 * 1024;
const SLOW = { timeout: 240_000 };

describe("cluster churn under steady traffic", () => {
  const cluster = lazy(() => startLocalCluster({ replicasPerPrimary: 0 }));
  const proxy = lazy(async () => startChurnProxy((await cluster.get()).seeds));
  after(async () => {
    await proxy.stop();
    await cluster.stop();
  });

  it(`adds, replaces and removes a cluster ${CYCLES} times: no steady error, one reply per request, no leak`, SLOW, async () => {
    const { seeds } = await cluster.get();
    const running = await proxy.get();
    const report = await runChurn(running, seeds, { cycles: CYCLES, warmupCycles: WARMUP, adminEvery: 100 });
    console.log(formatReport(report));

    // The steady cluster never noticed.
    assert.equal(report.steady.errors, 0, `errors on the steady cluster: ${report.steady.samples.join(" | ")}`);
    assert.ok(report.steady.ops > 1000, `steady traffic ran throughout (${report.steady.ops} commands)`);
    assert.deepEqual(report.controlFailures, [], "every add, replace and remove applied as expected");
    assert.equal(report.adminCycles, 1 + CYCLES / 100, "the first and every 100th cycle went through the admin API");

    // Churned requests: any answer will do, but exactly one each.
    const c = report.churned;
    assert.ok(c.sent > 0, "requests were sent on the churned prefix");
    assert.equal(c.extra, 0, "no churned request got a second reply");
    assert.equal(c.missing, 0, "every churned request got a reply");
    assert.equal(c.replies, c.sent, "one reply per churned request");
    assert.equal(c.ok + c.removed + c.replaced + c.notConfigured + c.clusterDown + c.other, c.replies, "every churned reply was classified once");

    // Live resources back to the baseline after every cycle, and nothing of the churned cluster left.
    assert.equal(report.live.violations, 0, `live resources after every cycle: ${report.live.firstViolation}`);
    assert.equal(report.live.final, report.live.baseline, "live resources outside the main cluster after the run");
    assert.equal(report.live.stableFinal, report.live.stableBaseline, "stable live resources of the whole tree after the run");
    assert.notEqual(report.heap.gc, "none", "a full GC could be forced on this runtime");
    assert.ok(report.heap.retainedClusters <= 4, `${report.heap.retainedClusters} of ${2 * CYCLES} churned cluster objects survived GC`);

    // Memory after the run against memory after warm-up (both after a forced GC).
    const allowed = Math.max((report.heap.afterWarmup * MAX_GROWTH_PCT) / 100, MAX_GROWTH_BYTES);
    assert.ok(
      report.heap.growthBytes <= allowed,
      `heap grew from ${mib(report.heap.afterWarmup)} to ${mib(report.heap.afterRun)} (allowed ${mib(allowed)})`,
    );
    assert.equal(report.logs.errors, 0, `slotgate logged errors: ${report.logs.samples.join(" | ")}`);

    // And it still shuts down to nothing.
    await running.stop();
    assert.equal(running.app.scope.state, "closed", "the root scope closed");
    assert.equal(running.app.scope.liveCount(), 0, "nothing left running after close");
  });
});
