/**
 * The registry's pieces on their own: the exposition text in both formats (checked line by
 * line, and by promtool when it is installed), the latency buckets, the slow log's Redis
 * truncation and order, SLOWLOG's replies, the INFO lines, and the event-loop lag probe.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { MetricsWriter, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, wantsOpenMetrics } from "../../src/metrics/exposition.ts";
import { CommandStats, CommandStatsTable, LATENCY_BOUNDS_US } from "../../src/metrics/commands.ts";
import { Slowlog, truncateArgs } from "../../src/metrics/slowlog.ts";
import { LoopLag, ProxyMetrics, probeLoopLag } from "../../src/metrics/proxy-metrics.ts";
import { commandstatsLines, statsLines } from "../../src/metrics/info.ts";
import { countScope, scrape } from "../../src/metrics/scrape.ts";
import { slowlogCommand } from "../../src/proxy/session/local/slowlog-command.ts";
import { decode } from "../../src/resp/decode.ts";
import type { LocalContext } from "../../src/proxy/session/local/context.ts";

const encoder = new TextEncoder();
const bytes = (s: string) => encoder.encode(s);

/** promtool's verdict on `text`, or null when promtool is not installed. */
function promtool(text: string): { status: number; output: string } | null {
  const run = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  if (run.error) return null;
  return { status: run.status ?? -1, output: `${run.stdout}${run.stderr}` };
}

describe("metrics exposition", () => {
  it("text 0.0.4: HELP and TYPE once per family, escaped labels, cumulative buckets", () => {
    const w = new MetricsWriter();
    w.counter("slotgate_x_total", "Things\ncounted", [{ labels: { node: 'a"b\\c\nd' }, value: 3 }]);
    w.gauge("slotgate_g", "A gauge", 1.5);
    w.histogram("slotgate_h_seconds", "Latency", [{ labels: { command: "get" }, bounds: [0.1, 1], counts: [2, 1, 4], sum: 9.5 }]);
    assert.equal(w.contentType, TEXT_CONTENT_TYPE);
    assert.equal(
      w.text(),
      [
        "# HELP slotgate_x_total Things\\ncounted",
        "# TYPE slotgate_x_total counter",
        'slotgate_x_total{node="a\\"b\\\\c\\nd"} 3',
        "# HELP slotgate_g A gauge",
        "# TYPE slotgate_g gauge",
        "slotgate_g 1.5",
        "# HELP slotgate_h_seconds Latency",
        "# TYPE slotgate_h_seconds histogram",
        'slotgate_h_seconds_bucket{command="get",le="0.1"} 2',
        'slotgate_h_seconds_bucket{command="get",le="1"} 3',
        'slotgate_h_seconds_bucket{command="get",le="+Inf"} 7',
        'slotgate_h_seconds_sum{command="get"} 9.5',
        'slotgate_h_seconds_count{command="get"} 7',
        "",
      ].join("\n"),
    );
    assert.throws(() => w.gauge("slotgate_g", "again", 1), /written twice/);
    assert.throws(() => w.counter("slotgate_no_suffix", "bad", 1), /_total/);
  });

  it("OpenMetrics: a counter's family drops _total, the text ends with # EOF", () => {
    const w = new MetricsWriter(true);
    w.counter("slotgate_x_total", "Things", 2);
    assert.equal(w.contentType, OPENMETRICS_CONTENT_TYPE);
    assert.equal(w.text(), "# HELP slotgate_x Things\n# TYPE slotgate_x counter\nslotgate_x_total 2\n# EOF\n");
    assert.equal(wantsOpenMetrics("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"), true);
    assert.equal(wantsOpenMetrics("text/plain"), false);
    assert.equal(wantsOpenMetrics(null), false);
  });

  it("a whole scrape passes promtool check metrics", (t) => {
    const metrics = new ProxyMetrics({ slowlogThresholdUs: 10_000, slowlogMaxLen: 128 });
    metrics.command("GET").record(120, false);
    metrics.command("NOSUCHCOMMAND").record(5_000_000, true);
    metrics.upstream.node("main", "127.0.0.1:7000").rqTotal = 4;
    const { body } = scrape(metrics, {
      version: "0.0.0",
      runtime: "test",
      clientsConnected: 1,
      dedicatedConnections: 0,
      clientsMemoryBytes: 10,
      evictedClients: 0,
      clusters: [{ name: "main", type: "cluster", ready: true, coveredSlots: 16384, moved: 1, ask: 0, refreshes: 2, refreshFailures: 0, lastRefreshMs: 1_700_000_000_000, nodes: [{ address: "127.0.0.1:7000", pending: 0, health: "up" }], scope: { resources: [{ kind: "timer" }], children: [] } }],
      memory: { rss: 100, heapUsed: 50 },
    }, false);
    assert.match(body, /^slotgate_command_total\{command="get"\} 1$/m);
    assert.match(body, /^slotgate_command_error_total\{command="other"\} 1$/m);
    assert.match(body, /^slotgate_command_latency_seconds_bucket\{command="get",le="0.00025"\} 1$/m);
    assert.match(body, /^slotgate_cluster_redirects_total\{cluster="main",type="moved"\} 1$/m);
    assert.match(body, /^slotgate_discovery_last_success_timestamp_seconds\{cluster="main"\} 1700000000$/m);
    const verdict = promtool(body);
    if (verdict === null) return t.skip("promtool is not installed (npm run setup installs it): the exposition was not checked by a real parser");
    assert.equal(verdict.status, 0, verdict.output);
  });
});

describe("command stats", () => {
  it("a call lands in the first bucket whose bound is not below it; failures and usec add up", () => {
    const s = new CommandStats("get");
    s.record(50, false);
    s.record(51, true);
    s.record(LATENCY_BOUNDS_US.at(-1)! + 1, false);
    assert.deepEqual([s.calls, s.failed, s.usec], [3, 1, 101 + LATENCY_BOUNDS_US.at(-1)! + 1]);
    assert.equal(s.buckets[0], 1);
    assert.equal(s.buckets[1], 1);
    assert.equal(s.buckets[LATENCY_BOUNDS_US.length], 1);
  });

  it("the label set is the built-in table's top-level commands and other", () => {
    const table = new CommandStatsTable();
    assert.equal(table.of("GET").name, "get");
    assert.equal(table.of("CLIENT").name, "client");
    assert.equal(table.of("CLIENT|LIST"), table.other);
    assert.equal(table.of("MADEUP"), table.other);
    table.of("SET").rejected++;
    table.of("GET").record(10, false);
    assert.deepEqual(table.used().map((s) => s.name), ["get", "set"]);
  });

  it("INFO's Stats and Commandstats lines use Redis's field names", () => {
    const metrics = new ProxyMetrics({ slowlogThresholdUs: 10_000, slowlogMaxLen: 128 });
    metrics.requests = 3;
    metrics.downstreamRxBytes = 100;
    metrics.downstreamTxBytes = 20;
    metrics.command("GET").record(10, false);
    metrics.command("GET").record(20, true);
    metrics.command("SET").rejected++;
    assert.deepEqual(commandstatsLines(metrics), [
      "cmdstat_get:calls=2,usec=30,usec_per_call=15.00,rejected_calls=0,failed_calls=1",
      "cmdstat_set:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0",
    ]);
    const stats = statsLines(metrics, { totalConnections: 4, evictedClients: 0, now: 1000 });
    for (const line of ["total_connections_received:4", "total_commands_processed:3", "total_net_input_bytes:100", "total_net_output_bytes:20", "total_error_replies:2"]) {
      assert.ok(stats.includes(line), `${line} in ${stats.join(" ")}`);
    }
    assert.deepEqual(commandstatsLines(null), []);
  });
});

describe("slow log", () => {
  it("Redis's truncation: 32 arguments at most, arguments cut at 128 bytes", () => {
    const many = Array.from({ length: 40 }, (_, i) => bytes(`a${i}`));
    const kept = truncateArgs(many).map((a) => new TextDecoder().decode(a));
    assert.equal(kept.length, 32);
    assert.equal(kept[30], "a30");
    assert.equal(kept[31], "... (9 more arguments)");
    const long = truncateArgs([bytes("SET"), bytes("k"), new Uint8Array(200).fill(0x78)]).map((a) => new TextDecoder().decode(a));
    assert.equal(long[2], `${"x".repeat(128)}... (72 more bytes)`);
    assert.equal(truncateArgs([new Uint8Array(128).fill(0x79)])[0]!.length, 128);
  });

  it("keeps the newest maxLen entries, newest first; -1 logs nothing, 0 everything", () => {
    const log = new Slowlog(0, 3);
    assert.equal(log.wants(0), true);
    for (let i = 0; i < 5; i++) log.add(i, i, [bytes(`c${i}`)], "c", "", "");
    assert.deepEqual(log.newest(-1).map((e) => e.id), [4, 3, 2]);
    assert.deepEqual(log.newest(2).map((e) => e.id), [4, 3]);
    assert.equal(log.length, 3);
    // Growing keeps what is there and makes room; the ring wraps again after.
    log.maxLen = 4;
    log.add(5, 5, [bytes("c5")], "c", "", "");
    log.add(6, 6, [bytes("c6")], "c", "", "");
    assert.deepEqual(log.newest(-1).map((e) => e.id), [6, 5, 4, 3]);
    assert.deepEqual(log.newest(-1).map((e) => new TextDecoder().decode(e.args[0])), ["c6", "c5", "c4", "c3"]);
    log.maxLen = 1;
    assert.deepEqual(log.newest(10).map((e) => e.id), [6]);
    log.thresholdUs = -1;
    assert.equal(log.wants(1_000_000), false);
    log.thresholdUs = 100;
    assert.deepEqual([log.wants(99), log.wants(100)], [false, true]);
    log.reset();
    assert.equal(log.length, 0);
  });

  it("SLOWLOG GET/LEN/RESET/HELP replies, in Redis's shape with the node last", () => {
    const log = new Slowlog(0, 10);
    log.add(1700000000, 42, [bytes("GET"), bytes("k")], "127.0.0.1:5000", "app", "127.0.0.1:7000");
    log.add(1700000001, 7, [bytes("PING")], "127.0.0.1:5000", "", "");
    const replies: unknown[] = [];
    const context = { reply: (frame: Uint8Array) => replies.push(decode(frame, { strings: true })), slowlog: () => log } as unknown as LocalContext;
    const run = (...args: string[]) => {
      slowlogCommand(context, args.map(bytes));
      return replies.pop();
    };
    assert.deepEqual(run("SLOWLOG", "GET"), [
      [1, 1700000001, 7, ["PING"], "127.0.0.1:5000", "", ""],
      [0, 1700000000, 42, ["GET", "k"], "127.0.0.1:5000", "app", "127.0.0.1:7000"],
    ]);
    assert.deepEqual(run("slowlog", "get", "1"), [[1, 1700000001, 7, ["PING"], "127.0.0.1:5000", "", ""]]);
    assert.equal(run("SLOWLOG", "LEN"), 2);
    assert.match(String((run("SLOWLOG", "GET", "-2") as Error).message), /count should be greater than or equal to -1/);
    assert.match(String((run("SLOWLOG", "GET", "x") as Error).message), /value is not an integer/);
    assert.match(String((run("SLOWLOG", "NOPE") as Error).message), /unknown subcommand 'NOPE'. Try SLOWLOG HELP./);
    assert.ok(Array.isArray(run("SLOWLOG", "HELP")));
    assert.equal(run("SLOWLOG", "RESET"), "OK");
    assert.equal(run("SLOWLOG", "LEN"), 0);
  });
});

describe("event loop lag and scopes", () => {
  it("a probe timer running late is the lag; the largest since the last read is kept", () => {
    let clock = 0;
    const due: (() => void)[] = [];
    const lag = new LoopLag();
    probeLoopLag((_ms, fn) => void due.push(fn), () => clock, lag, 100);
    clock = 130;
    due.shift()!();
    clock = 230;
    due.shift()!();
    assert.equal(lag.samples, 2);
    assert.equal(lag.lastMs, 0);
    assert.equal(lag.takeMax(), 30);
    assert.equal(lag.takeMax(), 0);
  });

  it("scopes and resources are counted through the subtree", () => {
    const counts = countScope({ resources: [{ kind: "timer" }], children: [{ resources: [{ kind: "socket" }, { kind: "socket" }], children: [] }] });
    assert.equal(counts.scopes, 2);
    assert.deepEqual([counts.resources.timer, counts.resources.socket, counts.resources.task], [1, 2, 0]);
  });
});
