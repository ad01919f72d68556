/**
 * `npx tsx scripts/profile.ts`: where slotgate's CPU goes on Node, as a table of self-times.
 * Starts a throwaway local cluster and slotgate on Node with `--cpu-prof`, runs redis-benchmark
 * (GET and SET, 50 clients, random keys) against it, stops slotgate so the profile is written,
 * and prints the functions with the most self time (and the share of a few groups: metrics,
 * parsing, sockets). Loopback only; every load is bounded; everything is stopped at the end.
 *
 * Options: --requests N (default 400000)   --pipeline P (default 16)   --top N (default 40)
 *          --env NAME=VALUE (repeatable; added to slotgate's environment, e.g. SLOTGATE_METRICS=off)
 *          --keep DIR (keep the .cpuprofile files there)
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { startLocalCluster } from "./local-cluster.ts";
import { envOptions, option, startProxyProcess } from "./proxy-process.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function (name + file:line), in microseconds, and the profile's total. */
export function selfTimes(profile: Profile): { total: number; byFunction: Map<string, number> } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const byFunction = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    const delta = profile.timeDeltas[i] ?? 0;
    if (node === undefined) continue;
    const frame = node.callFrame;
    const file = frame.url.replace(/^.*\/(src|adapters|node_modules)\//, "$1/");
    const key = `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + delta);
    total += delta;
  }
  return { total, byFunction };
}

async function main(): Promise<void> {
  const requests = Number(option("requests", "400000"));
  const pipeline = Number(option("pipeline", "16"));
  const top = Number(option("top", "40"));
  const env = envOptions();
  const dir = mkdtempSync(join(tmpdir(), "slotgate-profile-"));
  const cluster = await startLocalCluster({ replicasPerPrimary: 0 });
  try {
    const proxy = await startProxyProcess("node", ".", cluster.seeds, env, ["--cpu-prof", `--cpu-prof-dir=${dir}`]);
    try {
      execFileSync("redis-benchmark", ["-p", String(proxy.port), "-n", String(requests), "-c", "50", "-P", String(pipeline), "-r", "100000", "-t", "get,set", "-q"], { stdio: "inherit" });
    } finally {
      await proxy.stop();
    }
    // The main thread's profile is the one with the most samples (tsx's loader thread has its own).
    const profiles = readdirSync(dir)
      .filter((f) => f.endsWith(".cpuprofile"))
      .map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as Profile)
      .sort((a, b) => b.samples.length - a.samples.length);
    if (profiles.length === 0) throw new Error("no profile written (did slotgate exit cleanly?)");
    const { total, byFunction } = selfTimes(profiles[0]!);
    const idle = [...byFunction].filter(([k]) => k.startsWith("(idle)")).reduce((s, [, v]) => s + v, 0);
    const busy = total - idle;
    console.log(`busy ${(busy / 1000).toFixed(0)} ms of ${(total / 1000).toFixed(0)} ms profiled; self time, share of busy:`);
    const rows = [...byFunction].filter(([k]) => !k.startsWith("(idle)")).sort((a, b) => b[1] - a[1]);
    for (const [key, us] of rows.slice(0, top)) console.log(`${((100 * us) / busy).toFixed(1).padStart(5)}%  ${key}`);
    const groups: Record<string, RegExp> = {
      metrics: /src\/metrics\/|Timings|#timeAnswered|#statsOf|record |mark /,
      "resp parsing": /src\/resp\/|redis-parser/,
      "garbage collection": /^\(garbage collector\)/,
      "node streams/net": /^\S+ node:/,
    };
    for (const [name, re] of Object.entries(groups)) {
      const sum = rows.filter(([k]) => re.test(k)).reduce((s, [, v]) => s + v, 0);
      console.log(`group ${name}: ${((100 * sum) / busy).toFixed(1)}%`);
    }
    if (option("keep", "") !== "") execFileSync("cp", ["-r", ...readdirSync(dir).map((f) => join(dir, f)), option("keep", "")]);
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
