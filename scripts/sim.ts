/**
 * Deterministic simulation explorer CLI (test/sim/explorer.ts).
 *
 * Usage: npx tsx scripts/sim.ts [--seeds N] [--start S] [--seed S] [--fault NAME]
 *   --seeds N     random scenarios to run (default 100), seeds S, S+1, ... (S from --start, default
 *                 a wall-clock-derived number, printed so a run can be repeated)
 *   --seed S      replay exactly one seed (prints its full event list)
 *   --fault NAME  turn on a planted fault of src/testing/faults.ts (to see the explorer catch it)
 * Prints every failing seed with its invariant and the last 20 trace lines, then a summary line
 * with scenarios per minute and what the scenarios exercised. Exit 1 on any violation.
 */
import process from "node:process";
import { describeFailure, explore, runSeed, type Coverage } from "../test/sim/explorer.ts";
import { faults } from "../src/testing/faults.ts";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const fault = arg("--fault");
if (fault !== undefined) {
  if (!Object.hasOwn(faults, fault)) {
    console.error(`no fault '${fault}' (known: ${Object.keys(faults).join(", ")})`);
    process.exit(2);
  }
  (faults as Record<string, boolean>)[fault] = true;
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
const covered: Partial<Coverage> = {};
const result = await explore(start, count, {
  onResult: (r) => {
    if (r.violations.length > 0) console.log(describeFailure(r));
    for (const [k, v] of Object.entries(r.coverage) as [keyof Coverage, number][]) covered[k] = (covered[k] ?? 0) + v;
  },
});
const perMinute = Math.round((result.ran / result.elapsedMs) * 60_000);
console.log(
  `sim: ${result.ran} scenarios (seeds ${start}..${start + result.ran - 1}), ${result.failures.length} failed, ${result.requests} requests, ${(result.elapsedMs / 1000).toFixed(1)} s, ${perMinute} scenarios/min`,
);
console.log(`covered: ${Object.entries(covered).map(([k, v]) => `${k} ${v}`).join(", ")}`);
if (result.failures.length > 0) console.log(`failing seeds: ${result.failures.map((f) => f.seed).join(" ")}`);
process.exit(result.failures.length > 0 ? 1 : 0);
