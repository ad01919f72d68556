/**
 * Cluster churn (issue 3 §5), shared by test/integration/churn.test.ts and `npm run churn`: add,
 * replace and remove a cluster ("churned", behind the route `churn:`) in a tight loop while steady
 * SET/GET traffic runs against the catch-all cluster ("main"), and check
 *
 * - every steady reply (the value read is the value written; no error, no disconnect);
 * - every churned request gets exactly one reply (an error such as `cluster 'churned' was
 *   removed` is fine and counted, a missing or extra reply is not);
 * - after each cycle, `liveCount()` outside the main cluster is exactly what it was before the
 *   first cycle, so is the whole tree's count of live resources less the transient ones (timers,
 *   which come and go with every request, and discovery rounds), and no scope path names the
 *   churned cluster;
 * - the heap after the run against the heap after the warm-up cycles (both after a forced GC),
 *   and how many of the churned cluster objects are still reachable after the last GC (held by
 *   weak references: it should be none).
 *
 * A cycle is: add (`replaceConfig` with the cluster and its route), replace (`putCluster` with a
 * different `opTimeoutMs`, which waits for the new one's readiness), remove (`deleteCluster` with
 * force, which drops the route too). The first and every `adminEvery`-th cycle go through the
 * admin HTTP API instead. Runs unchanged on Node (tsx), Bun and Deno; loopback only, bounded by
 * `cycles`.
 */
import net from "node:net";
import process from "node:process";
import v8 from "node:v8";
import vm from "node:vm";
import { Redis } from "ioredis";
import { currentRuntime, detectRuntime } from "../../adapters/current.ts";
import { startSlotgate, type Slotgate } from "../../src/app.ts";
import { validateConfig } from "../../src/config/load.ts";
import { createLogger } from "../../src/log.ts";
import { lateCallbacks, type ScopeInfo } from "../../src/scope/scope.ts";
import { ReplyReader } from "../../src/resp/reply-reader.ts";
import type { ChangeResult } from "../../src/control/types.ts";

export const MAIN = "main";
export const CHURNED = "churned";
export const CHURN_PREFIX = "churn:";

export interface ChurnProxy {
  app: Slotgate;
  port: number;
  /** `http://127.0.0.1:PORT` of the admin API. */
  adminBase: string;
  /** WARN and ERROR lines slotgate logged (counted; the first few kept). */
  logs: { errors: number; warnings: number; samples: string[] };
  stop(): Promise<void>;
}

/** Start slotgate in this process with one cluster, "main", as the catch-all; logs are captured. */
export async function startChurnProxy(seeds: string[]): Promise<ChurnProxy> {
  const runtime = await currentRuntime();
  const config = validateConfig({
    listen: "127.0.0.1:0",
    logLevel: "warn",
    admin: { listen: "127.0.0.1:0" },
    clusters: { [MAIN]: { seeds } },
    catchAll: MAIN,
  });
  const logs = { errors: 0, warnings: 0, samples: [] as string[] };
  const log = createLogger("warn", (line) => {
    if (line.startsWith("ERROR")) logs.errors++;
    else logs.warnings++;
    if (logs.samples.length < 10) logs.samples.push(line);
  });
  const app = await startSlotgate(runtime, config, log);
  await app.ready();
  return { app, port: app.port, adminBase: `http://${app.admin!.host}:${app.admin!.port}`, logs, stop: () => app.close() };
}

export interface ChurnOptions {
  cycles: number;
  /** Cycles before the "after warm-up" heap figure (default min(50, cycles / 10)). */
  warmupCycles?: number;
  /** Every N-th cycle goes through the admin HTTP API (0: never; default 100). */
  adminEvery?: number;
  /** ioredis clients doing SET/GET pairs against the main cluster (default 4). */
  steadyClients?: number;
  /** SET/GET pairs each steady client keeps in one pipeline (default 4). */
  steadyDepth?: number;
  /** Commands the raw client keeps in flight on the `churn:` prefix (default 8). */
  churnDepth?: number;
  /** Knobs of the churned cluster (defaults: readyTimeoutMs 2000, drainTimeoutMs 500). */
  readyTimeoutMs?: number;
  drainTimeoutMs?: number;
  /** Heap samples (after GC) taken this many times over the run, for the report (default 0). */
  heapSamples?: number;
  /** Called every `progressEvery` cycles (default 100). */
  onProgress?: (cycle: number, elapsedMs: number) => void;
  progressEvery?: number;
}

export interface HeapFigure {
  cycle: number;
  heapUsed: number;
  rss: number;
  /** V8's used bytes per heap space (Node, Deno), to tell data from compiled code. */
  spaces: Record<string, number>;
}

export interface ChurnReport {
  runtime: string;
  cycles: number;
  warmupCycles: number;
  elapsedMs: number;
  cyclesPerSecond: number;
  /** Milliseconds per phase: mean and max. */
  phases: Record<"add" | "replace" | "remove", { meanMs: number; maxMs: number }>;
  /** Control-plane writes that did not apply, or applied something else than expected. */
  controlFailures: string[];
  adminCycles: number;
  steady: { clients: number; ops: number; opsPerSecond: number; errors: number; samples: string[] };
  churned: {
    sent: number;
    replies: number;
    /** Replies beyond one per request (must be 0), and requests left unanswered (must be 0). */
    extra: number;
    missing: number;
    ok: number;
    removed: number;
    replaced: number;
    notConfigured: number;
    clusterDown: number;
    other: number;
    samples: string[];
  };
  live: {
    /** `liveCount()` outside the main cluster (whose timers come and go with traffic): before the first cycle, after the last. */
    baseline: number;
    final: number;
    /** The whole tree's live resources without the transient ones (timers, discovery rounds): before the first cycle, after the last. */
    stableBaseline: number;
    stableFinal: number;
    /** `app.scope.liveCount()` of the whole tree before the first cycle and after the last (for information: timers included). */
    wholeBefore: number;
    wholeAfter: number;
    /** Cycles after which either count was off, or a scope path still named the churned cluster. */
    violations: number;
    firstViolation: string | null;
  };
  heap: {
    gc: string;
    /** Churned cluster objects (two per cycle) still reachable after the run's final GC. */
    retainedClusters: number;
    /** The cycle the "after warm-up" figure was taken at. */
    warmupCycle: number;
    afterWarmup: number;
    afterRun: number;
    growthBytes: number;
    growthPct: number;
    rssAfterWarmup: number;
    rssAfterRun: number;
    samples: HeapFigure[];
  };
  lateCallbacks: number;
  logs: { errors: number; warnings: number; samples: string[] };
}

/** Run the churn against a started proxy; resolves with the figures (it does not judge them: see `churnProblems`). */
export async function runChurn(proxy: ChurnProxy, seeds: string[], options: ChurnOptions): Promise<ChurnReport> {
  const { app } = proxy;
  const cycles = options.cycles;
  const warmupCycles = Math.min(cycles, options.warmupCycles ?? Math.max(1, Math.min(50, Math.floor(cycles / 10))));
  const adminEvery = options.adminEvery ?? 100;
  const progressEvery = options.progressEvery ?? 100;
  const heapEvery = options.heapSamples ? Math.max(1, Math.floor(cycles / options.heapSamples)) : 0;
  const churned = (opTimeoutMs: number) => ({
    seeds,
    opTimeoutMs,
    readyTimeoutMs: options.readyTimeoutMs ?? 2000,
    drainTimeoutMs: options.drainTimeoutMs ?? 500,
  });
  const main = app.control.redisCluster(MAIN)!;
  const collect = garbageCollector();
  const lateBefore = lateCallbacks();

  const steady = await SteadyTraffic.connect(proxy.port, options.steadyClients ?? 4, options.steadyDepth ?? 4);
  const churn = await ChurnTraffic.connect(proxy.port, options.churnDepth ?? 8);
  const outsideMain = () => app.scope.liveCount() - 1 - main.scope.liveCount();

  const phases = { add: new Phase(), replace: new Phase(), remove: new Phase() };
  const controlFailures: string[] = [];
  const live = { baseline: 0, stableBaseline: 0, wholeBefore: 0, violations: 0, firstViolation: null as string | null };
  let baselineTree: Map<string, number> = new Map();
  const heapSamples: HeapFigure[] = [];
  let afterWarmup: HeapFigure | null = null;
  let adminCycles = 0;
  let started = 0;
  let cycle = 0;

  // Every churned backend object, held weakly: after the final GC none should be left. Refs to
  // collected ones are dropped every 100 cycles, so that the list itself does not grow the heap.
  let backends: WeakRef<object>[] = [];
  const track = (backend: object | undefined) => backend && backends.push(new WeakRef(backend));
  const expect = (what: string, result: ChangeResult, change: string) => {
    if (!result.ok) controlFailures.push(`cycle ${cycle} ${what}: ${result.status} ${result.problems.join("; ")}`);
    else if (!result.changes.includes(change)) controlFailures.push(`cycle ${cycle} ${what}: changes ${JSON.stringify(result.changes)}, expected '${change}'`);
  };

  steady.start();
  churn.start();
  let elapsedMs = 0;
  let afterRun: HeapFigure;
  let liveFinal = 0;
  let retainedClusters = 0;
  let stableFinal = 0;
  let wholeAfter = 0;
  try {
    // Let traffic flow before the first change, then take the baseline outside the main cluster.
    await sleep(100);
    live.baseline = outsideMain();
    live.wholeBefore = app.scope.liveCount();
    baselineTree = stableEntries(app.scope.inspect());
    live.stableBaseline = total(baselineTree);
    started = performance.now();
    for (cycle = 1; cycle <= cycles; cycle++) {
      // The first cycle goes through the admin API too, so that the warm-up covers its one-time
      // costs (the HTTP client and server code paths) before the reference heap figure.
      const viaAdmin = adminEvery > 0 && (cycle === 1 || cycle % adminEvery === 0);
      if (viaAdmin) adminCycles++;
      const current = app.control.config();
      const added = { ...current, clusters: { ...current.clusters, [CHURNED]: churned(1000) }, routes: [{ prefix: CHURN_PREFIX, cluster: CHURNED }] };
      let t = performance.now();
      expect("add", viaAdmin ? await adminWrite(proxy, "PUT", "/config", added) : await app.control.replaceConfig(added), `added cluster '${CHURNED}'`);
      phases.add.record(performance.now() - t);
      track(app.control.backend(CHURNED));
      t = performance.now();
      expect(
        "replace",
        viaAdmin ? await adminWrite(proxy, "PUT", `/clusters/${CHURNED}`, churned(1500)) : await app.control.putCluster(CHURNED, churned(1500)),
        `replaced cluster '${CHURNED}'`,
      );
      phases.replace.record(performance.now() - t);
      track(app.control.backend(CHURNED));
      t = performance.now();
      expect("remove", viaAdmin ? await adminWrite(proxy, "DELETE", `/clusters/${CHURNED}?force=true`) : await app.control.deleteCluster(CHURNED, true), `removed cluster '${CHURNED}'`);
      phases.remove.record(performance.now() - t);

      // Back to the baseline: cheap enough for every cycle (a count, and one walk of a tree of
      // a few dozen entries).
      const count = outsideMain();
      const tree = app.scope.inspect();
      const entries = stableEntries(tree);
      const leftovers = churnedPaths(tree);
      if (app.control.cluster(CHURNED) !== null || app.control.table.backends().size !== 1) leftovers.push(`'${CHURNED}' still configured or routed`);
      if (count !== live.baseline || total(entries) !== live.stableBaseline || leftovers.length > 0) {
        live.violations++;
        live.firstViolation ??= `after cycle ${cycle}: ${count} live resources outside '${MAIN}' (baseline ${live.baseline}), ${total(entries)} stable ones in the tree (baseline ${
          live.stableBaseline
        })${leftovers.length > 0 ? `, churned scopes left: ${leftovers.join(", ")}` : ""}; diff: ${treeDiff(baselineTree, entries) || "(only transient entries)"}`;
      }

      if (cycle % 100 === 0) backends = backends.filter((ref) => ref.deref() !== undefined);
      if (cycle === warmupCycles) afterWarmup = await collect.measure(cycle);
      if (heapEvery > 0 && cycle % heapEvery === 0) heapSamples.push(await collect.measure(cycle));
      if (progressEvery > 0 && cycle % progressEvery === 0) options.onProgress?.(cycle, performance.now() - started);
    }
    elapsedMs = performance.now() - started;
    // Measured like the warm-up figure: after a forced GC, with steady traffic still running.
    afterRun = await collect.measure(cycles);
    liveFinal = outsideMain();
    retainedClusters = backends.filter((ref) => ref.deref() !== undefined).length;
    stableFinal = total(stableEntries(app.scope.inspect()));
    wholeAfter = app.scope.liveCount();
  } catch (error) {
    await Promise.all([steady.stop(), churn.stop()]);
    steady.disconnect();
    churn.disconnect();
    throw error;
  }
  await Promise.all([steady.stop(), churn.stop()]);

  steady.disconnect();
  churn.disconnect();

  const warm = afterWarmup ?? afterRun;
  return {
    runtime: detectRuntime(),
    cycles,
    warmupCycles,
    elapsedMs,
    cyclesPerSecond: cycles / (elapsedMs / 1000),
    phases: { add: phases.add.summary(), replace: phases.replace.summary(), remove: phases.remove.summary() },
    controlFailures,
    adminCycles,
    steady: { clients: steady.clients.length, ops: steady.ops, opsPerSecond: steady.ops / (elapsedMs / 1000), errors: steady.errors, samples: steady.samples },
    churned: {
      sent: churn.sent,
      replies: churn.replies,
      extra: churn.extra,
      missing: churn.missing,
      ok: churn.ok,
      removed: churn.removed,
      replaced: churn.replaced,
      notConfigured: churn.notConfigured,
      clusterDown: churn.clusterDown,
      other: churn.other,
      samples: churn.samples,
    },
    live: { ...live, final: liveFinal, stableFinal, wholeAfter },
    heap: {
      gc: collect.how,
      retainedClusters,
      warmupCycle: warm.cycle,
      afterWarmup: warm.heapUsed,
      afterRun: afterRun.heapUsed,
      growthBytes: afterRun.heapUsed - warm.heapUsed,
      growthPct: ((afterRun.heapUsed - warm.heapUsed) / warm.heapUsed) * 100,
      rssAfterWarmup: warm.rss,
      rssAfterRun: afterRun.rss,
      samples: heapSamples,
    },
    lateCallbacks: lateCallbacks() - lateBefore,
    logs: { ...proxy.logs, samples: [...proxy.logs.samples] },
  };
}

export interface ChurnLimits {
  /** Heap growth allowed after warm-up: the larger of this percentage and `maxHeapGrowthBytes`. */
  maxHeapGrowthPct: number;
  maxHeapGrowthBytes: number;
  /** Churned cluster objects allowed to survive the final GC (a conservative stack scan may keep one or two). */
  maxRetainedClusters: number;
}

/** What is wrong with a run: empty when it passed. */
export function churnProblems(report: ChurnReport, limits: ChurnLimits): string[] {
  const problems: string[] = [];
  const { steady, churned, live, heap } = report;
  if (steady.errors > 0) problems.push(`${steady.errors} errors on the steady cluster: ${steady.samples.join(" | ")}`);
  if (steady.ops === 0) problems.push("no steady traffic ran");
  if (report.controlFailures.length > 0) problems.push(`${report.controlFailures.length} control-plane writes failed: ${report.controlFailures.slice(0, 5).join(" | ")}`);
  if (churned.extra > 0 || churned.missing > 0) problems.push(`churned requests: ${churned.extra} extra and ${churned.missing} missing replies (${churned.sent} sent)`);
  if (live.violations > 0) problems.push(`${live.violations} cycles left live resources behind; first: ${live.firstViolation}`);
  if (live.final !== live.baseline) problems.push(`live resources outside '${MAIN}' after the run: ${live.final}, baseline ${live.baseline}`);
  if (live.stableFinal !== live.stableBaseline) problems.push(`stable live resources of the whole tree after the run: ${live.stableFinal}, baseline ${live.stableBaseline}`);
  const allowed = Math.max((heap.afterWarmup * limits.maxHeapGrowthPct) / 100, limits.maxHeapGrowthBytes);
  if (heap.growthBytes > allowed) {
    problems.push(`heap grew by ${mib(heap.growthBytes)} (${heap.growthPct.toFixed(1)}%) after warm-up: ${mib(heap.afterWarmup)} → ${mib(heap.afterRun)} (allowed ${mib(allowed)})`);
  }
  if (heap.gc !== "none" && heap.retainedClusters > limits.maxRetainedClusters) {
    problems.push(`${heap.retainedClusters} of the ${2 * report.cycles} churned cluster objects are still reachable after GC`);
  }
  if (report.logs.errors > 0) problems.push(`slotgate logged ${report.logs.errors} errors: ${report.logs.samples.join(" | ")}`);
  return problems;
}

/** Every figure, one line per area (run, phases, steady, churned, live, heap, the rest). */
export function formatReport(r: ChurnReport): string {
  const c = r.churned;
  return [
    `churn runtime=${r.runtime} cycles=${r.cycles} (admin API: ${r.adminCycles}) elapsed=${(r.elapsedMs / 1000).toFixed(1)}s rate=${r.cyclesPerSecond.toFixed(1)} cycles/s`,
    `phases add=${fmtPhase(r.phases.add)} replace=${fmtPhase(r.phases.replace)} remove=${fmtPhase(r.phases.remove)}`,
    `steady clients=${r.steady.clients} ops=${r.steady.ops} (${Math.round(r.steady.opsPerSecond)}/s) errors=${r.steady.errors}`,
    `churned sent=${c.sent} replies=${c.replies} extra=${c.extra} missing=${c.missing} ok=${c.ok} removed=${c.removed} replaced=${c.replaced} not_configured=${c.notConfigured} clusterdown=${c.clusterDown} other=${c.other}`,
    `live outside_main=${r.live.baseline}→${r.live.final} stable_tree=${r.live.stableBaseline}→${r.live.stableFinal} whole_tree=${r.live.wholeBefore}→${r.live.wholeAfter} violations=${r.live.violations}`,
    `heap after_warmup(${r.heap.warmupCycle})=${mib(r.heap.afterWarmup)} after_run=${mib(r.heap.afterRun)} growth=${r.heap.growthBytes >= 0 ? "+" : ""}${mib(r.heap.growthBytes)} (${r.heap.growthPct >= 0 ? "+" : ""}${r.heap.growthPct.toFixed(2)}%) rss=${mib(r.heap.rssAfterWarmup)}→${mib(r.heap.rssAfterRun)} gc=${r.heap.gc} retained_clusters=${r.heap.retainedClusters}/${2 * r.cycles}`,
    `control_failures=${r.controlFailures.length} late_callbacks=${r.lateCallbacks} log_errors=${r.logs.errors} log_warnings=${r.logs.warnings}`,
  ].join("\n  ");
}

/** The one-line verdict `npm run churn` ends with. */
export function summaryLine(r: ChurnReport, problems: string[]): string {
  const pct = `${r.heap.growthPct >= 0 ? "+" : ""}${r.heap.growthPct.toFixed(1)}%`;
  return (
    `churn: ${problems.length === 0 ? "PASS" : `FAIL (${problems.length} problems)`} runtime=${r.runtime} cycles=${r.cycles} ` +
    `rate=${r.cyclesPerSecond.toFixed(1)}/s steady_ops=${r.steady.ops} steady_errors=${r.steady.errors} ` +
    `churned=${r.churned.sent}/${r.churned.replies} live=${r.live.baseline}→${r.live.final} violations=${r.live.violations} ` +
    `heap=${mib(r.heap.afterWarmup)}→${mib(r.heap.afterRun)} (${pct}, warm-up ${r.heap.warmupCycle}) retained=${r.heap.retainedClusters}`
  );
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
}

function fmtPhase(p: { meanMs: number; maxMs: number }): string {
  return `${p.meanMs.toFixed(2)}/${p.maxMs.toFixed(0)}ms`;
}

class Phase {
  #total = 0;
  #count = 0;
  #max = 0;
  record(ms: number): void {
    this.#total += ms;
    this.#count++;
    this.#max = Math.max(this.#max, ms);
  }
  summary(): { meanMs: number; maxMs: number } {
    return { meanMs: this.#count ? this.#total / this.#count : 0, maxMs: this.#max };
  }
}

async function adminWrite(proxy: ChurnProxy, method: string, path: string, body?: unknown): Promise<ChangeResult> {
  const response = await fetch(proxy.adminBase + path, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = (await response.json()) as { changes?: string[]; errors?: string[] };
  return response.ok ? { ok: true, changes: json.changes ?? [] } : { ok: false, status: response.status as 400, problems: json.errors ?? [JSON.stringify(json)] };
}

function churnedPaths(info: ScopeInfo, out: string[] = []): string[] {
  if (info.path.includes(`cluster ${CHURNED}`)) out.push(info.path);
  for (const child of info.children) churnedPaths(child, out);
  return out;
}

/**
 * The tree as a multiset of "path: kind name" (one per scope too), without what comes and goes on
 * its own while traffic runs: timers (request deadlines, discovery's sleep) and discovery rounds.
 */
function stableEntries(info: ScopeInfo, out: Map<string, number> = new Map()): Map<string, number> {
  if (/\/refresh \d+$/.test(info.path)) return out;
  const add = (key: string) => out.set(key, (out.get(key) ?? 0) + 1);
  add(`scope ${info.path}`);
  for (const r of info.resources) if (r.kind !== "timer") add(`${info.path}: ${r.kind} ${r.name}`);
  for (const child of info.children) stableEntries(child, out);
  return out;
}

function total(entries: Map<string, number>): number {
  let sum = 0;
  for (const n of entries.values()) sum += n;
  return sum;
}

/** What `now` has more of than `before` (+) and less of (-). */
function treeDiff(before: Map<string, number>, now: Map<string, number>): string {
  const lines: string[] = [];
  for (const [key, n] of now) if (n > (before.get(key) ?? 0)) lines.push(`+${n - (before.get(key) ?? 0)} ${key}`);
  for (const [key, n] of before) if (n > (now.get(key) ?? 0)) lines.push(`-${n - (now.get(key) ?? 0)} ${key}`);
  return lines.slice(0, 20).join("; ");
}

/**
 * A forced full GC where the runtime allows it: `globalThis.gc` when exposed, `Bun.gc(true)` on
 * Bun, else V8's `--expose-gc` set at run time and `gc` taken from a fresh context (Node, Deno).
 */
function garbageCollector(): { how: string; measure(cycle: number): Promise<HeapFigure> } {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  let gc: (() => void) | null = null;
  let how = "none";
  if (typeof g.gc === "function") {
    gc = g.gc;
    how = "globalThis.gc";
  } else if (g.Bun) {
    gc = () => g.Bun!.gc(true);
    how = "Bun.gc(true)";
  } else {
    try {
      v8.setFlagsFromString("--expose-gc");
      gc = vm.runInNewContext("gc") as () => void;
      how = "v8 --expose-gc";
    } catch {
      gc = null;
    }
  }
  return {
    how,
    async measure(cycle) {
      // A few rounds with turns of the event loop between them, so that finalizers and weak
      // references (closed sockets, dropped promises) let go of what they hold.
      for (let i = 0; i < 3; i++) {
        gc?.();
        await sleep(10);
      }
      gc?.();
      const usage = process.memoryUsage();
      const spaces: Record<string, number> = {};
      try {
        for (const space of v8.getHeapSpaceStatistics()) spaces[space.space_name] = space.space_used_size;
      } catch {
        // not V8 (Bun)
      }
      return { cycle, heapUsed: usage.heapUsed, rss: usage.rss, spaces };
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** ioredis clients writing and reading back their own keys in the main cluster, continuously. */
class SteadyTraffic {
  ops = 0;
  errors = 0;
  readonly samples: string[] = [];
  #running = false;
  #loops: Promise<void>[] = [];
  readonly #tag = Math.random().toString(36).slice(2, 8);

  private constructor(
    readonly clients: Redis[],
    readonly depth: number,
  ) {
    clients.forEach((client, i) => {
      client.on("error", (error: Error) => this.#fail(`client ${i} error event: ${error.message}`));
      client.on("close", () => this.#running && this.#fail(`client ${i} connection closed`));
    });
  }

  static async connect(port: number, count: number, depth: number): Promise<SteadyTraffic> {
    const clients = Array.from(
      { length: count },
      () => new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false }),
    );
    await Promise.all(clients.map((client) => client.connect()));
    return new SteadyTraffic(clients, depth);
  }

  #fail(what: string): void {
    this.errors++;
    if (this.samples.length < 10) this.samples.push(what);
  }

  start(): void {
    this.#running = true;
    this.#loops = this.clients.map((client, i) => this.#loop(client, i));
  }

  async #loop(client: Redis, index: number): Promise<void> {
    for (let n = 0; this.#running; n++) {
      const pipeline = client.pipeline();
      const expected: string[] = [];
      for (let d = 0; d < this.depth; d++) {
        const key = `steady:${this.#tag}:${index}:${(n * this.depth + d) % 512}`;
        const value = `${index}-${n}-${d}-${this.#tag}`;
        pipeline.set(key, value).get(key);
        expected.push(value);
      }
      try {
        const results = (await pipeline.exec()) ?? [];
        if (results.length !== 2 * this.depth) this.#fail(`client ${index}: ${results.length} replies for ${2 * this.depth} commands`);
        for (let d = 0; d < this.depth; d++) {
          const [setError, set] = results[2 * d] ?? [new Error("no reply")];
          const [getError, got] = results[2 * d + 1] ?? [new Error("no reply")];
          if (setError || set !== "OK") this.#fail(`client ${index} SET: ${setError?.message ?? JSON.stringify(set)}`);
          else if (getError || got !== expected[d]) this.#fail(`client ${index} GET: ${getError?.message ?? `${JSON.stringify(got)} instead of ${expected[d]}`}`);
          else this.ops += 2;
        }
      } catch (error) {
        this.#fail(`client ${index}: ${error instanceof Error ? error.message : String(error)}`);
        await sleep(10);
      }
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  disconnect(): void {
    for (const client of this.clients) {
      client.removeAllListeners("close");
      client.removeAllListeners("error");
      client.on("error", () => {});
      client.disconnect();
    }
  }
}

/**
 * One raw connection keeping `depth` SET/GET commands on the `churn:` prefix in flight. Replies
 * are framed (not decoded) and counted: each request must get exactly one, whatever it says.
 */
class ChurnTraffic {
  sent = 0;
  replies = 0;
  extra = 0;
  missing = 0;
  ok = 0;
  removed = 0;
  replaced = 0;
  notConfigured = 0;
  clusterDown = 0;
  other = 0;
  readonly samples: string[] = [];
  #running = false;
  #loop: Promise<void> = Promise.resolve();
  #waiting: { count: number; wake: () => void } | null = null;
  #closed = false;
  readonly #reader: ReplyReader;
  readonly #decoder = new TextDecoder();

  private constructor(
    readonly socket: net.Socket,
    readonly depth: number,
  ) {
    this.#reader = new ReplyReader((frame) => this.#onReply(frame));
    socket.on("data", (chunk: Uint8Array) => {
      try {
        this.#reader.push(chunk);
      } catch (error) {
        this.#sample(`protocol error: ${String(error)}`);
        this.other++;
      }
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on("error", () => {});
  }

  static connect(port: number, depth: number): Promise<ChurnTraffic> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port }, () => resolve(new ChurnTraffic(socket, depth)));
      socket.once("error", reject);
    });
  }

  #onReply(frame: Uint8Array): void {
    this.replies++;
    if (this.replies > this.sent) this.extra++;
    if (frame[0] !== 45 /* - */) {
      this.ok++;
    } else {
      const text = this.#decoder.decode(frame.subarray(0, Math.min(frame.length, 200))).trimEnd();
      if (text.includes(`cluster '${CHURNED}' was removed`)) this.removed++;
      else if (text.includes(`cluster '${CHURNED}' was replaced`)) this.replaced++;
      else if (text.includes(`cluster '${CHURNED}' is not configured`)) this.notConfigured++;
      else if (text.startsWith("-CLUSTERDOWN")) this.clusterDown++;
      else {
        this.other++;
        this.#sample(text);
      }
    }
    if (this.#waiting && this.replies >= this.#waiting.count) this.#wake();
  }

  #sample(text: string): void {
    if (this.samples.length < 10) this.samples.push(text);
  }

  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.wake();
  }

  /** Wait until `count` replies arrived in total, the connection closed, or `timeoutMs` passed. */
  #until(count: number, timeoutMs: number): Promise<void> {
    if (this.replies >= count || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting = null;
        resolve();
      }, timeoutMs);
      this.#waiting = {
        count,
        wake: () => {
          clearTimeout(timer);
          resolve();
        },
      };
    });
  }

  start(): void {
    this.#running = true;
    this.#loop = (async () => {
      for (let n = 0; this.#running && !this.#closed; n++) {
        let batch = "";
        for (let d = 0; d < this.depth; d++) {
          const key = `${CHURN_PREFIX}${(n * this.depth + d) % 256}`;
          batch += d % 2 === 0 ? command("SET", key, String(n)) : command("GET", key);
        }
        this.sent += this.depth;
        this.socket.write(batch);
        await this.#until(this.sent, 10_000);
        if (this.replies < this.sent) break;
      }
    })();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
    // Anything still owed arrives now; anything beyond would show as extra.
    await this.#until(this.sent, 10_000);
    await sleep(50);
    this.missing = Math.max(0, this.sent - this.replies);
    if (this.#closed) this.#sample("the churn connection was closed by the proxy");
  }

  disconnect(): void {
    this.socket.destroy();
  }
}

function command(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`;
}

