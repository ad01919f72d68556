/**
 * The benchmark's figures as data: the report `npm run bench -- --json FILE` writes, the medians
 * its summaries print, and `--compare OLD.json`, which sets the figures of two runs (two commits)
 * side by side. No I/O but what `compareWith` prints.
 */
import { readFileSync } from "node:fs";

/** One redis-benchmark run. CPU is in µs per request (= ms per 1,000 requests), from /proc. */
export interface BenchRow {
  round: number;
  target: string;
  test: string;
  pipeline: number;
  rps: number;
  /** Every serving process: the Redis servers that answered, plus the proxy when there is one. */
  cpuAll: number;
  /** The proxy alone (slotgate or nutcracker); null for a run straight to Redis. */
  cpuProxy: number | null;
}

export interface IdleFigure {
  target: string;
  clients: number;
  rssBefore: number;
  rssAfter: number;
  kibPerClient: number;
}

export interface LatencyFigure {
  /** What the proxied run went through (slotgate/node, ..., twemproxy). */
  target: string;
  /** What the direct run went to (one cluster primary, or the one Redis). */
  direct: string;
  rate: number;
  connections: number;
  seconds: number;
  /** Milliseconds: [direct, proxied, added = proxied − direct]. */
  p50: [number, number, number];
  p99: [number, number, number];
  p999: [number, number, number];
  /** GETs counted per side, and any lost or answered with an error. */
  counts: [number, number];
  lost: [number, number];
  errors: [number, number];
}

/** The metrics' cost on one runtime and test: medians of on/off ratios over pairs of runs. */
export interface MetricsCostFigure {
  runtime: string;
  test: string;
  pipeline: number;
  pairs: number;
  rpsOnOff: number;
  cpuOnOff: number;
  rpsRatios: number[];
  cpuRatios: number[];
}

export interface BenchReport {
  commit: string;
  date: string;
  cores: number;
  cpuModel: string;
  options: Record<string, string | number | string[]>;
  notes: string[];
  rows: BenchRow[];
  idle: IdleFigure[];
  latency: LatencyFigure[];
  /** Absent in reports written before the metrics section existed. */
  metricsCost?: MetricsCostFigure[];
  /** "not available yet", or the targets measured with SLOTGATE_WORKERS (rows named "+workers"). */
  workers: string;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The median over rounds of one target's test at one pipeline depth, or undefined if never run. */
export function medianRow(rows: readonly BenchRow[], target: string, test: string, pipeline: number): { rps: number; cpuAll: number; cpuProxy: number | null } | undefined {
  const matching = rows.filter((r) => r.target === target && r.test === test && r.pipeline === pipeline);
  if (matching.length === 0) return undefined;
  const proxies = matching.map((r) => r.cpuProxy).filter((c): c is number => c !== null);
  return { rps: median(matching.map((r) => r.rps)), cpuAll: median(matching.map((r) => r.cpuAll)), cpuProxy: proxies.length === 0 ? null : median(proxies) };
}

/** Every figure of a report by name, with whether higher is better. */
export function figures(report: BenchReport): Map<string, { value: number; higherIsBetter: boolean }> {
  const out = new Map<string, { value: number; higherIsBetter: boolean }>();
  const seen = new Set<string>();
  for (const row of report.rows) {
    const id = `${row.target} ${row.test} P${row.pipeline}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const m = medianRow(report.rows, row.target, row.test, row.pipeline)!;
    out.set(`rps ${id}`, { value: m.rps, higherIsBetter: true });
    out.set(`CPU µs/req all ${id}`, { value: m.cpuAll, higherIsBetter: false });
    if (m.cpuProxy !== null) out.set(`CPU µs/req proxy ${id}`, { value: m.cpuProxy, higherIsBetter: false });
  }
  for (const idle of report.idle) out.set(`idle KiB/client ${idle.target}`, { value: idle.kibPerClient, higherIsBetter: false });
  for (const l of report.latency) {
    out.set(`latency p50 added ms ${l.target}`, { value: l.p50[2], higherIsBetter: false });
    out.set(`latency p99 added ms ${l.target}`, { value: l.p99[2], higherIsBetter: false });
  }
  for (const m of report.metricsCost ?? []) out.set(`metrics rps on/off ${m.runtime} ${m.test} P${m.pipeline}`, { value: m.rpsOnOff, higherIsBetter: true });
  return out;
}

/**
 * Print every figure both reports have, new/old: one line per redis-benchmark row (requests/s,
 * CPU all, CPU proxy: old → new and the ratio), then idle memory and added latency.
 */
export function compareWith(oldFile: string, current: BenchReport): void {
  const old = JSON.parse(readFileSync(oldFile, "utf8")) as BenchReport;
  const before = figures(old);
  const after = figures(current);
  console.log(`\ncompared with ${oldFile} (commit ${old.commit}, ${old.date}) → now (commit ${current.commit})`);
  const differ = Object.keys({ ...old.options, ...current.options }).filter((k) => JSON.stringify(old.options[k]) !== JSON.stringify(current.options[k]));
  if (differ.length > 0) console.log(`note: the runs' options differ (${differ.map((k) => `${k}: ${JSON.stringify(old.options[k])} → ${JSON.stringify(current.options[k])}`).join(", ")}); compare with care`);
  if (old.cores !== current.cores || old.cpuModel !== current.cpuModel) console.log(`note: different machines (${old.cores} × ${old.cpuModel} → ${current.cores} × ${current.cpuModel})`);
  const change = (name: string): string => {
    const was = before.get(name);
    const now = after.get(name);
    if (!was || !now) return "";
    return `${fmt(was.value)} → ${fmt(now.value)} (${(now.value / was.value).toFixed(2)})`;
  };
  const ids = [...new Set(current.rows.map((r) => `${r.target} ${r.test} P${r.pipeline}`))].filter((id) => before.has(`rps ${id}`));
  if (ids.length > 0) {
    console.log(`${"row".padEnd(32)} ${"requests/s".padEnd(26)} ${"CPU µs/req all".padEnd(22)} CPU µs/req proxy`);
    for (const id of ids) console.log(`${id.padEnd(32)} ${change(`rps ${id}`).padEnd(26)} ${change(`CPU µs/req all ${id}`).padEnd(22)} ${change(`CPU µs/req proxy ${id}`)}`);
  }
  for (const name of after.keys()) {
    if (!name.startsWith("idle") && !name.startsWith("latency") && !name.startsWith("metrics")) continue;
    const line = change(name);
    if (line) console.log(`${name.padEnd(40)} ${line}`);
  }
  const gone = [...before.keys()].filter((name) => !after.has(name));
  if (gone.length > 0) console.log(`(${gone.length} figures of the old run were not measured now)`);
}

const fmt = (value: number) => (Math.abs(value) >= 1000 ? value.toFixed(0) : value.toFixed(2));
