/**
 * `npm run churn -- --cycles N`: add, replace and remove a cluster in a tight loop while steady
 * SET/GET traffic runs against another one, on whatever runtime runs this script:
 *
 *   npx tsx scripts/churn.ts --cycles 1000
 *   node_modules/.bin/bun scripts/churn.ts --cycles 1000
 *   node_modules/.bin/deno run -A scripts/churn.ts --cycles 1000
 *
 * Starts its own local Redis Cluster (3 primaries, no replicas, loopback) and slotgate in this
 * process, runs the churn of test/support/churn.ts, prints the figures and exits 1 on any error
 * on the steady cluster, a failed change, a lost or extra reply, live resources left behind, an
 * error logged by slotgate, or heap growth after warm-up beyond the limit; 2 on bad options.
 *
 * Options: --cycles N          cycles to run (default 1000)
 *          --warmup N          cycles before the reference heap figure (default: half of them;
 *                              JIT compilation grows the heap for the first few hundred cycles)
 *          --clients N         steady ioredis clients (default 4)
 *          --admin-every N     every N-th cycle through the admin HTTP API (default 100; 0 never)
 *          --max-growth-pct P  heap growth allowed after warm-up, in percent (default 5) ...
 *          --max-growth-mib M  ... or this many MiB, whichever is larger (default 0.5)
 *          --max-retained N    churned cluster objects allowed to survive GC (default 4: Bun's
 *                              conservative stack scan may keep one or two)
 *          --heap-samples N    heap figures (after GC) to print over the run (default 10)
 *          --json              print the whole report as JSON as well
 */
import process from "node:process";
import { startLocalCluster, type LocalCluster } from "./local-cluster.ts";
import { churnProblems, formatReport, mib, runChurn, startChurnProxy, summaryLine, type ChurnProxy } from "../test/support/churn.ts";

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isFinite(value) || value < 0) {
    console.error(`--${name}: expected a non-negative number, got ${JSON.stringify(process.argv[at + 1])}`);
    process.exit(2);
  }
  return value;
}

const cycles = Math.floor(option("cycles", 1000));
const warmupCycles = Math.floor(option("warmup", Math.max(1, Math.floor(cycles / 2))));
const steadyClients = Math.max(1, Math.floor(option("clients", 4)));
const adminEvery = Math.floor(option("admin-every", 100));
const maxHeapGrowthPct = option("max-growth-pct", 5);
const maxHeapGrowthBytes = option("max-growth-mib", 0.5) * 1024 * 1024;
const maxRetainedClusters = option("max-retained", 4);
const heapSamples = Math.floor(option("heap-samples", 10));
if (cycles < 1 || warmupCycles > cycles) {
  console.error(`--cycles must be at least 1 and at least --warmup (got ${cycles} and ${warmupCycles})`);
  process.exit(2);
}

let cluster: LocalCluster | null = null;
let proxy: ChurnProxy | null = null;
let status = 0;
try {
  cluster = await startLocalCluster({ replicasPerPrimary: 0 });
  proxy = await startChurnProxy(cluster.seeds);
  console.log(`churn: ${cycles} cycles (${warmupCycles} warm-up) against a local cluster on ${cluster.seeds.join(",")}, slotgate on port ${proxy.port}`);
  const report = await runChurn(proxy, cluster.seeds, {
    cycles,
    warmupCycles,
    steadyClients,
    adminEvery,
    heapSamples,
    onProgress: (cycle, ms) => console.log(`  cycle ${cycle}/${cycles} after ${(ms / 1000).toFixed(1)} s`),
  });
  console.log(formatReport(report));
  if (report.heap.samples.length > 0) {
    console.log(`  heap samples: ${report.heap.samples.map((s) => `${s.cycle}:${mib(s.heapUsed)}`).join(" ")}`);
  }
  if (process.argv.includes("--json")) console.log(JSON.stringify(report, null, 2));
  const problems = churnProblems(report, { maxHeapGrowthPct, maxHeapGrowthBytes, maxRetainedClusters });
  for (const problem of problems) console.log(`  PROBLEM: ${problem}`);
  if (report.churned.other > 0) console.log(`  note: other churned replies: ${report.churned.samples.join(" | ")}`);
  console.log(summaryLine(report, problems));
  status = problems.length === 0 ? 0 : 1;
} catch (error) {
  console.error("churn: crashed:", error);
  status = 1;
} finally {
  await proxy?.stop().catch((error) => console.error("slotgate stop failed:", error));
  await cluster?.stop();
}
process.exit(status);
