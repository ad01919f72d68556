/**
 * Deterministic simulation explorer CLI (test/sim/explorer.ts).
 *
 * Usage: npx tsx scripts/sim.ts [--seeds N] [--start S] [--seed S] [--quiet]
 *   --seeds N   random scenarios to run (default 100), seeds S, S+1, ... (S from --start, default
 *               a wall-clock-derived number, printed so a run can be repeated)
 *   --seed S    replay exactly one seed (prints its full event list)
 * Prints every failing seed with its invariant and the last 20 trace lines, then a summary line
 * with scenarios per minute. Exit 1 on any violation.
 */
import process from "node:process";
import { describeFailure, explore, runSeed } from "../test/sim/explorer.ts";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const one = arg("--seed");
if (one !== undefined) {
  const r = await runSeed(Number(one) >>> 0);
  console.log(`seed ${r.seed}: ${r.requests} requests, ${r.errors} error replies, trace ${r.traceHash}, events: ${r.events.join("; ")}`);
  if (r.violations.length > 0) {
    console.log(describeFailure(r));
    process.exit(1);
  }
  console.log("ok");
  process.exit(0);
}
const count = Number(arg("--seeds") ?? 100);
const start = Number(arg("--start") ?? Math.floor(Date.now() % 1_000_000_000));
const result = await explore(start, count, {
  onResult: (r) => {
    if (r.violations.length > 0) console.log(describeFailure(r));
  },
});
const perMinute = Math.round((result.ran / result.elapsedMs) * 60_000);
console.log(
  `sim: ${result.ran} scenarios (seeds ${start}..${start + result.ran - 1}), ${result.failures.length} failed, ${result.requests} requests, ${(result.elapsedMs / 1000).toFixed(1)} s, ${perMinute} scenarios/min`,
);
if (result.failures.length > 0) console.log(`failing seeds: ${result.failures.map((f) => f.seed).join(" ")}`);
process.exit(result.failures.length > 0 ? 1 : 0);
