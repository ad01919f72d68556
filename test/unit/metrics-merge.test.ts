/**
 * Merging the /metrics scrapes of several workers (src/metrics/merge.ts): real scrapes from
 * `ProxyMetrics` + `scrape()` for two or three workers with known counts, merged in both formats,
 * checked series by series with exact values; the merge of one text is that text; the result is
 * a valid exposition (and promtool accepts it when installed); garbage lines are skipped.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { MetricsWriter } from "../../src/metrics/exposition.ts";
import { MERGE_RULES, SHARED_PROCESS_RULES, mergeExpositions, mergeRule } from "../../src/metrics/merge.ts";
import { ProxyMetrics } from "../../src/metrics/proxy-metrics.ts";
import { scrape, type ClusterSample } from "../../src/metrics/scrape.ts";

/** What one worker counted and reads at scrape time; every field has a default. */
interface Worker {
  /** Calls per command: microseconds of each call, and whether it failed. */
  calls?: Record<string, readonly (readonly [usec: number, failed: boolean])[]>;
  accepted?: number;
  clients?: number;
  /** Requests per upstream node address of the cluster (the node's counters). */
  upstream?: Record<string, number>;
  ready?: boolean;
  covered?: number;
  /** Node addresses of the topology and whether each is up. */
  nodes?: Record<string, boolean>;
  lastRefreshMs?: number | null;
  lagMs?: number;
  memory?: { rss: number; heapUsed: number } | null;
  cluster?: string;
}

/** One worker's exposition text, from a real `ProxyMetrics` and `scrape()`. */
function workerText(worker: Worker, openMetrics: boolean): string {
  const metrics = new ProxyMetrics({ slowlogThresholdUs: 10_000, slowlogMaxLen: 128 });
  for (const [command, calls] of Object.entries(worker.calls ?? {})) {
    for (const [usec, failed] of calls) metrics.command(command).record(usec, failed);
  }
  metrics.downstreamCxTotal = worker.accepted ?? 0;
  const clusterName = worker.cluster ?? "main";
  for (const [node, requests] of Object.entries(worker.upstream ?? {})) metrics.upstream.node(clusterName, node).rqTotal = requests;
  metrics.loopLag.sample(0, worker.lagMs ?? 0);
  const cluster: ClusterSample = {
    name: clusterName,
    type: "cluster",
    ready: worker.ready ?? true,
    coveredSlots: worker.covered ?? 16384,
    moved: 1,
    ask: 0,
    refreshes: 2,
    refreshFailures: 0,
    lastRefreshMs: worker.lastRefreshMs === undefined ? 1_700_000_000_000 : worker.lastRefreshMs,
    nodes: Object.entries(worker.nodes ?? { "127.0.0.1:7000": true }).map(([address, up]) => ({ address, pending: 1, health: up ? "up" : "down" })),
    scope: { resources: [{ kind: "timer" }, { kind: "socket" }], children: [] },
  };
  const sources = {
    version: "1.2.3",
    runtime: "test",
    clientsConnected: worker.clients ?? 0,
    dedicatedConnections: 0,
    clientsMemoryBytes: 10,
    evictedClients: 0,
    clusters: [cluster],
    memory: worker.memory === undefined ? { rss: 1000, heapUsed: 500 } : worker.memory,
  };
  return scrape(metrics, sources, openMetrics).body;
}

/** Three workers with different counts; the leader first. */
const WORKERS: readonly Worker[] = [
  {
    calls: { GET: [[120, false], [120, false]], SET: [[40, true]] },
    accepted: 5,
    clients: 3,
    upstream: { "127.0.0.1:7000": 4 },
    lagMs: 10,
    lastRefreshMs: 1_700_000_000_000,
    memory: { rss: 1000, heapUsed: 500 },
  },
  {
    calls: { GET: [[120, false], [5000, true]], DEL: [[60, false]] },
    accepted: 7,
    clients: 4,
    upstream: { "127.0.0.1:7000": 6, "127.0.0.1:7001": 2 },
    ready: false,
    covered: 16000,
    nodes: { "127.0.0.1:7000": false },
    lagMs: 30,
    lastRefreshMs: 1_700_000_005_000,
    memory: { rss: 1100, heapUsed: 700 },
  },
  {
    calls: { GET: [[120, false]] },
    accepted: 1,
    clients: 2,
    upstream: { "127.0.0.1:7000": 1 },
    lagMs: 20,
    lastRefreshMs: null,
    memory: { rss: 1200, heapUsed: 300 },
  },
];

/** Every sample of a text: value text by `name{labels}`, in order. */
function samples(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    out.set(line.slice(0, space), line.slice(space + 1));
  }
  return out;
}

/** The family names of a text, in order (from its `# TYPE` lines). */
function families(text: string): string[] {
  return [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
}

/**
 * Checks that `text` is a valid exposition in the shape the writer writes: HELP then TYPE once
 * per family, each sample under its own family's header, newline-terminated, and in OpenMetrics
 * `# EOF` once, last.
 */
function assertValidExposition(text: string, openMetrics: boolean): void {
  assert.ok(text.endsWith("\n"), "newline-terminated");
  const lines = text.slice(0, -1).split("\n");
  if (openMetrics) {
    assert.equal(lines.pop(), "# EOF", "# EOF last");
    assert.ok(!lines.includes("# EOF"), "# EOF once");
  }
  const seen = new Set<string>();
  let family: { name: string; type: string } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const help = /^# HELP (\S+) /.exec(line);
    if (help !== null) {
      const type = new RegExp(`^# TYPE ${help[1]} (counter|gauge|histogram)$`).exec(lines[++i] ?? "");
      assert.ok(type !== null, `TYPE after ${line}`);
      assert.ok(!seen.has(help[1]!), `family ${help[1]} once`);
      seen.add(help[1]!);
      family = { name: help[1]!, type: type[1]! };
      continue;
    }
    assert.ok(family !== undefined, `a header before ${line}`);
    const sample = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    assert.ok(sample !== null, `a sample: ${line}`);
    const suffixes = family.type === "histogram" ? ["_bucket", "_sum", "_count"] : family.type === "counter" && openMetrics ? ["_total"] : [""];
    assert.ok(suffixes.some((s) => sample[1] === family!.name + s), `${sample[1]} under ${family.name}`);
    assert.ok(sample[3] === "+Inf" || sample[3] === "-Inf" || sample[3] === "NaN" || Number.isFinite(Number(sample[3])), `a value: ${line}`);
  }
}

/** promtool's verdict on a text 0.0.4 exposition, or null when promtool is not installed. */
function promtool(text: string): { status: number; output: string } | null {
  const run = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  if (run.error) return null;
  return { status: run.status ?? -1, output: `${run.stdout}${run.stderr}` };
}

const OPTIONS = { openMetrics: false, sharedProcess: false };

describe("merging workers' scrapes", () => {
  for (const openMetrics of [false, true]) {
    const format = openMetrics ? "OpenMetrics" : "text 0.0.4";

    it(`${format}: counters and histogram buckets are summed per series, exactly`, () => {
      const merged = samples(mergeExpositions(WORKERS.map((w) => workerText(w, openMetrics)), { openMetrics, sharedProcess: false }));
      assert.equal(merged.get("slotgate_downstream_cx_total"), "13");
      assert.equal(merged.get('slotgate_command_total{command="get"}'), "5");
      assert.equal(merged.get('slotgate_command_error_total{command="get"}'), "1");
      assert.equal(merged.get('slotgate_command_success_total{command="get"}'), "4");
      assert.equal(merged.get('slotgate_upstream_rq_total{cluster="main",node="127.0.0.1:7000"}'), "11");
      // GET: 4 calls at 120 µs (bucket 250 µs), 1 at 5 ms (bucket 5 ms); buckets are cumulative.
      const bucket = (le: string) => merged.get(`slotgate_command_latency_seconds_bucket{command="get",le="${le}"}`);
      assert.deepEqual([bucket("0.0001"), bucket("0.00025"), bucket("0.0025"), bucket("0.005"), bucket("+Inf")], ["0", "4", "4", "5", "5"]);
      assert.equal(merged.get('slotgate_command_latency_seconds_count{command="get"}'), "5");
      assert.equal(merged.get('slotgate_command_latency_seconds_sum{command="get"}'), String(240 / 1e6 + 5120 / 1e6 + 120 / 1e6));
      // Gauges of things each worker holds are summed too.
      assert.equal(merged.get("slotgate_downstream_cx_active"), "9");
      assert.equal(merged.get('slotgate_upstream_rq_pending_active{cluster="main",node="127.0.0.1:7000"}'), "3");
      assert.equal(merged.get('slotgate_cluster_resources{cluster="main",kind="timer"}'), "3");
    });

    it(`${format}: min, max and first rules`, () => {
      const merged = samples(mergeExpositions(WORKERS.map((w) => workerText(w, openMetrics)), { openMetrics, sharedProcess: false }));
      assert.equal(merged.get('slotgate_cluster_ready{cluster="main"}'), "0");
      assert.equal(merged.get('slotgate_cluster_slots_covered{cluster="main"}'), "16000");
      assert.equal(merged.get('slotgate_upstream_node_up{cluster="main",node="127.0.0.1:7000"}'), "0");
      assert.equal(merged.get("slotgate_event_loop_lag_seconds"), "0.03");
      assert.equal(merged.get("slotgate_event_loop_lag_max_seconds"), "0.03");
      assert.equal(merged.get('slotgate_discovery_last_success_timestamp_seconds{cluster="main"}'), "1700000005");
      assert.equal(merged.get('slotgate_info{version="1.2.3",runtime="test"}'), "1");
    });

    it(`${format}: resident memory is taken once when the workers share a process; heaps always add up`, () => {
      const texts = WORKERS.map((w) => workerText(w, openMetrics));
      const shared = samples(mergeExpositions(texts, { openMetrics, sharedProcess: true }));
      const apart = samples(mergeExpositions(texts, { openMetrics, sharedProcess: false }));
      assert.equal(shared.get("slotgate_process_resident_memory_bytes"), "1000");
      assert.equal(apart.get("slotgate_process_resident_memory_bytes"), "3300");
      assert.equal(shared.get("slotgate_process_heap_used_bytes"), "1500");
      assert.equal(apart.get("slotgate_process_heap_used_bytes"), "1500");
    });

    it(`${format}: a series only some workers have is kept, after the leader's, with its own value`, () => {
      const merged = samples(mergeExpositions(WORKERS.map((w) => workerText(w, openMetrics)), { openMetrics, sharedProcess: false }));
      assert.equal(merged.get('slotgate_command_total{command="del"}'), "1");
      assert.equal(merged.get('slotgate_command_latency_seconds_bucket{command="del",le="0.0001"}'), "1");
      assert.equal(merged.get('slotgate_upstream_rq_total{cluster="main",node="127.0.0.1:7001"}'), "2");
      // Worker 3 has applied no slot map: the timestamp is the newest of the other two.
      assert.equal(merged.get('slotgate_discovery_last_success_timestamp_seconds{cluster="main"}'), "1700000005");
      const commands = [...merged.keys()].filter((k) => k.startsWith("slotgate_command_total{"));
      assert.deepEqual(commands, ['slotgate_command_total{command="get"}', 'slotgate_command_total{command="set"}', 'slotgate_command_total{command="del"}']);
    });

    it(`${format}: families keep the leader's order; a family the leader lacks comes after, in the order met`, () => {
      const leader = workerText({ ...WORKERS[0]!, memory: null }, openMetrics);
      const worker = workerText(WORKERS[1]!, openMetrics);
      const merged = mergeExpositions([leader, worker], { openMetrics, sharedProcess: false });
      assert.deepEqual(families(merged), [...families(leader), "slotgate_process_resident_memory_bytes", "slotgate_process_heap_used_bytes"]);
      assert.equal(samples(merged).get("slotgate_process_resident_memory_bytes"), "1100");
      assertValidExposition(merged, openMetrics);
    });

    it(`${format}: the merge of one text is that text, byte for byte`, () => {
      for (const worker of WORKERS) {
        const text = workerText(worker, openMetrics);
        assert.equal(mergeExpositions([text], { openMetrics, sharedProcess: true }), text);
        assert.equal(mergeExpositions([text], { openMetrics, sharedProcess: false }), text);
      }
      // Label values the writer escapes (quote, backslash, newline) key their series as written.
      const odd = workerText({ ...WORKERS[1]!, cluster: 'we"ird\\na\nme' }, openMetrics);
      assert.match(odd, /cluster="we\\"ird\\\\na\\nme"/);
      assert.equal(mergeExpositions([odd], { openMetrics, sharedProcess: false }), odd);
      const doubled = samples(mergeExpositions([odd, odd], { openMetrics, sharedProcess: false }));
      assert.equal(doubled.get('slotgate_upstream_rq_total{cluster="we\\"ird\\\\na\\nme",node="127.0.0.1:7000"}'), "12");
      // No workers, or workers with no families: what the writer writes for no families.
      assert.equal(mergeExpositions([], { openMetrics, sharedProcess: false }), new MetricsWriter(openMetrics).text());
    });

    it(`${format}: the merge is a valid exposition, every family's HELP and TYPE once${openMetrics ? ", # EOF once and last" : ""}`, (t) => {
      const merged = mergeExpositions(WORKERS.map((w) => workerText(w, openMetrics)), { openMetrics, sharedProcess: false });
      assertValidExposition(merged, openMetrics);
      assert.deepEqual(families(merged), families(workerText(WORKERS[0]!, openMetrics)));
      assert.equal(merged.match(/# EOF/g)?.length ?? 0, openMetrics ? 1 : 0);
      if (openMetrics) return;
      const verdict = promtool(merged);
      if (verdict === null) return t.skip("promtool is not installed (npm run setup installs it): the merge was not checked by a real parser");
      assert.equal(verdict.status, 0, verdict.output);
    });
  }

  it("garbage lines are skipped and never throw; the rest merges as if they were not there", () => {
    const clean = WORKERS.slice(0, 2).map((w) => workerText(w, false));
    const garbage = [
      "what is this",
      "slotgate_downstream_cx_total{a=\"1\" 3",
      "slotgate_downstream_cx_total abc",
      "slotgate_downstream_cx_total 0x10",
      "slotgate_downstream_cx_total 1 1700000000000",
      'slotgate_downstream_cx_total{a="\\x"} 1',
      "slotgate_downstream_cx_active 99",
      "slotgate_downstream_cx_total 1000",
      "# TYPE",
      "# TYPE slotgate_downstream_cx_total",
      "# TYPE slotgate_downstream_cx_total gauge",
      "# HELP slotgate_downstream_cx_total Another help",
      "# some comment",
      "# EOF",
      "\u0000",
      "",
    ];
    // After the leader's first family header, before its samples: a sample of another family
    // does not fit, and a repeat of a series in the same text is kept once.
    const dirty = clean[0]!.replace("# TYPE slotgate_downstream_cx_total counter\n", (header) => `${header}slotgate_downstream_cx_total 5\n${garbage.join("\n")}\n`);
    // A sample before any header, a type the merge does not combine, a line cut short.
    const summary = '# HELP slotgate_s A summary\n# TYPE slotgate_s summary\nslotgate_s{quantile="0.5"} 1\n';
    assert.notEqual(dirty, clean[0]);
    const orphan = `slotgate_orphan 1\n${summary}${clean[1]!}junk at the end`;
    assert.equal(mergeExpositions([dirty, orphan], OPTIONS), mergeExpositions(clean, OPTIONS));
  });

  it("a text cut anywhere merges without throwing into a valid exposition", () => {
    for (const openMetrics of [false, true]) {
      const [leader, whole] = WORKERS.slice(0, 2).map((w) => workerText(w, openMetrics)) as [string, string];
      for (let cut = 0; cut <= whole.length; cut += 11) {
        const merged = mergeExpositions([leader, whole.slice(0, cut)], { openMetrics, sharedProcess: false });
        assertValidExposition(merged, openMetrics);
      }
    }
  });

  it("the rule table names gauges that scrape() writes; heap is summed even in one process", () => {
    const text = workerText(WORKERS[0]!, false);
    for (const family of [...MERGE_RULES.keys(), ...SHARED_PROCESS_RULES.keys()]) assert.match(text, new RegExp(`^# TYPE ${family} gauge$`, "m"), family);
    assert.equal(mergeRule("slotgate_cluster_ready", false), "min");
    assert.equal(mergeRule("slotgate_event_loop_lag_seconds", true), "max");
    assert.equal(mergeRule("slotgate_info", false), "first");
    assert.equal(mergeRule("slotgate_process_resident_memory_bytes", true), "first");
    assert.equal(mergeRule("slotgate_process_resident_memory_bytes", false), "sum");
    assert.equal(mergeRule("slotgate_process_heap_used_bytes", true), "sum");
    assert.equal(mergeRule("slotgate_downstream_cx_active", true), "sum");
    assert.equal(mergeRule("constructor", false), "sum");
  });
});
