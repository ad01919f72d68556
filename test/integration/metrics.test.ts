/**
 * Metrics through a real Redis Cluster: known traffic through slotgate, then exact counts read
 * from `GET /metrics` (checked by promtool, Prometheus's own parser, when it is installed) and
 * from INFO's Stats, Clients and Commandstats sections; a MOVED followed after a real slot
 * migration; connections refused by maxClients and a protocol error; and metrics turned off.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { startLocalCluster, type ClusterNode } from "../../scripts/local-cluster.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { launchProxy } from "../support/launch.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp, type RunningProxy } from "../support/proxy.ts";
import { until, within } from "../support/within.ts";

const SLOW = { timeout: 180_000 };
const encoder = new TextEncoder();

/** Samples of a scrape by their full name with labels, e.g. `slotgate_command_total{command="get"}`. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

/** The sum of every sample of `name` whose labels contain `having`. */
function sum(scraped: Map<string, number>, name: string, having = ""): number {
  let total = 0;
  for (const [key, value] of scraped) if ((key === name || key.startsWith(`${name}{`)) && key.includes(having)) total += value;
  return total;
}

/** One INFO field's value. */
function field(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*)$`, "m").exec(info.replace(/\r/g, ""))?.[1];
}

describe("metrics", () => {
  const fixture = lazy(() => startLocalCluster({ replicasPerPrimary: 0 }));
  const proxies: RunningProxy[] = [];
  const clients: Redis[] = [];
  const raws: RawClient[] = [];
  after(async () => {
    for (const raw of raws) raw.close();
    for (const client of clients) client.disconnect();
    await Promise.all(proxies.map((proxy) => proxy.stop().catch(() => {})));
    await fixture.stop();
  });

  /** An ioredis client that sends nothing of its own (no ready check), so counts are exact. */
  async function connect(proxy: RunningProxy): Promise<Redis> {
    const client = new Redis({ port: proxy.port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, enableReadyCheck: false });
    client.on("error", () => {});
    clients.push(client);
    await client.connect();
    return client;
  }

  async function scrape(proxy: RunningProxy, accept?: string): Promise<{ status: number; type: string | null; text: string }> {
    const response = await within(fetch(`http://127.0.0.1:${proxy.app.admin!.port}/metrics`, { headers: accept ? { accept } : {} }), "GET /metrics");
    return { status: response.status, type: response.headers.get("content-type"), text: await response.text() };
  }

  it("counts known traffic exactly: per command, errors, upstream requests; INFO Stats, Clients, Commandstats; promtool accepts the scrape", SLOW, async (t) => {
    const cluster = await fixture.get();
    const proxy = await launchProxy(proxies, cluster.seeds);
    const client = await connect(proxy);
    const pipeline = client.pipeline();
    for (let i = 0; i < 29; i++) pipeline.set(`m:${i}`, `v${i}`);
    pipeline.set("m:str", "not a number");
    for (let i = 0; i < 20; i++) pipeline.get(`m:${i}`);
    for (let i = 0; i < 5; i++) pipeline.incr("m:str");
    const results = (await pipeline.exec())!;
    assert.equal(results.filter(([error]) => error !== null).length, 5, "the five INCRs fail");

    const { status, type, text } = await scrape(proxy);
    assert.equal(status, 200);
    assert.equal(type, "text/plain; version=0.0.4; charset=utf-8");
    const m = samples(text);
    assert.equal(m.get('slotgate_command_total{command="set"}'), 30);
    assert.equal(m.get('slotgate_command_success_total{command="set"}'), 30);
    assert.equal(m.get('slotgate_command_error_total{command="set"}'), 0);
    assert.equal(m.get('slotgate_command_total{command="get"}'), 20);
    assert.equal(m.get('slotgate_command_total{command="incr"}'), 5);
    assert.equal(m.get('slotgate_command_error_total{command="incr"}'), 5);
    assert.equal(m.get('slotgate_command_latency_seconds_count{command="get"}'), 20);
    assert.equal(m.get('slotgate_command_latency_seconds_bucket{command="get",le="+Inf"}'), 20);
    // ioredis says CLIENT SETINFO twice (lib-name, lib-ver) on connect: answered by slotgate itself.
    assert.equal(m.get('slotgate_command_total{command="client"}'), 2);
    assert.equal(m.get("slotgate_downstream_rq_total"), 57);
    assert.equal(m.get("slotgate_downstream_cx_total"), 1);
    assert.equal(m.get("slotgate_downstream_cx_active"), 1);
    assert.equal(sum(m, "slotgate_upstream_rq_total", 'cluster="default"'), 55, "every request went upstream once");
    assert.ok(sum(m, "slotgate_upstream_cx_active") >= 1);
    assert.equal(sum(m, "slotgate_upstream_cx_connect_fail_total"), 0);
    assert.equal(sum(m, "slotgate_upstream_rq_timeout_total"), 0);
    assert.ok(sum(m, "slotgate_upstream_cx_tx_bytes_total") > 0 && sum(m, "slotgate_upstream_cx_rx_bytes_total") > 0);
    assert.ok(m.get("slotgate_downstream_cx_rx_bytes_total")! > 0 && m.get("slotgate_downstream_cx_tx_bytes_total")! > 0);
    assert.equal(m.get('slotgate_cluster_slots_covered{cluster="default"}'), 16384);
    assert.equal(m.get('slotgate_cluster_ready{cluster="default"}'), 1);
    assert.ok(m.get('slotgate_discovery_refresh_total{cluster="default"}')! >= 1);
    assert.ok(m.get('slotgate_discovery_last_success_timestamp_seconds{cluster="default"}')! > 1_600_000_000);
    assert.ok(m.get('slotgate_cluster_scopes{cluster="default"}')! >= 1);
    assert.ok(m.get("slotgate_process_resident_memory_bytes")! > 0);
    assert.ok(m.has("slotgate_event_loop_lag_seconds"));

    const checked = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    if (checked.error) t.diagnostic("promtool is not installed (npm run setup installs it): the scrape was not checked by Prometheus's parser");
    else assert.equal(checked.status, 0, `promtool check metrics: ${checked.stdout}${checked.stderr}`);

    const open = await scrape(proxy, "application/openmetrics-text; version=1.0.0");
    assert.equal(open.type, "application/openmetrics-text; version=1.0.0; charset=utf-8");
    assert.ok(open.text.endsWith("\n# EOF\n"));
    assert.match(open.text, /^# TYPE slotgate_downstream_rq counter$/m);
    assert.match(open.text, /^slotgate_downstream_rq_total 57$/m);

    const stats = (await client.info("stats")) as string;
    assert.equal(field(stats, "total_commands_processed"), "58", "57 commands and this INFO");
    assert.equal(field(stats, "total_connections_received"), "1");
    assert.equal(field(stats, "rejected_connections"), "0");
    assert.ok(Number(field(stats, "total_net_input_bytes")) > 0);
    assert.equal(field(stats, "total_error_replies"), "5");
    const commandstats = (await client.info("commandstats")) as string;
    assert.match(commandstats, /^# Commandstats\r\n/);
    assert.match(commandstats, /^cmdstat_set:calls=30,usec=\d+,usec_per_call=\d+\.\d\d,rejected_calls=0,failed_calls=0\r$/m);
    assert.match(commandstats, /^cmdstat_incr:calls=5,usec=\d+,usec_per_call=\d+\.\d\d,rejected_calls=0,failed_calls=5\r$/m);
    assert.match(commandstats, /^cmdstat_info:calls=1,/m);
    const clientsInfo = (await client.info("clients")) as string;
    assert.equal(field(clientsInfo, "connected_clients"), "1");
    assert.equal(field(clientsInfo, "blocked_clients"), "0");
    assert.equal(field(clientsInfo, "pubsub_clients"), "0");
    const whole = (await client.info()) as string;
    assert.ok(whole.includes("# Stats\r\n") && !whole.includes("# Commandstats"), "INFO leaves Commandstats out, as Redis does");
    assert.ok(((await client.call("INFO", "all")) as string).includes("# Commandstats\r\ncmdstat_"), "INFO all has it");
  });

  it("a MOVED followed after a real slot migration is counted, and the request reached both nodes", SLOW, async () => {
    const cluster = await fixture.get();
    // Never refreshes on its own, and redirects do not trigger a refresh: only the MOVED tells it.
    const proxy = await launchProxy(proxies, cluster.seeds, { SLOTGATE_REFRESH_INTERVAL_MS: "3600000", SLOTGATE_REDIRECT_REFRESH_THRESHOLD: "0" });
    const client = await connect(proxy);
    const key = "moved:{metrics}";
    const slot = keySlot(encoder.encode(key));
    await client.set(key, "v");
    const source = await cluster.ownerOfSlot(slot);
    const target = ((await cluster.primaries()) as ClusterNode[]).find((n) => n.port !== source.port)!;
    await cluster.migrateSlot(slot, source.port, target.port);
    const before = samples((await scrape(proxy)).text);
    assert.equal(before.get('slotgate_cluster_redirects_total{cluster="default",type="moved"}'), 0);
    assert.equal(await client.get(key), "v");
    const m = samples((await scrape(proxy)).text);
    assert.equal(m.get('slotgate_cluster_redirects_total{cluster="default",type="moved"}'), 1);
    assert.equal(m.get('slotgate_cluster_redirects_total{cluster="default",type="ask"}'), 0);
    const rq = (port: number, s: Map<string, number>) => s.get(`slotgate_upstream_rq_total{cluster="default",node="127.0.0.1:${port}"}`) ?? 0;
    assert.equal(rq(source.port, m) - rq(source.port, before), 1, "sent to the old owner first");
    assert.equal(rq(target.port, m) - rq(target.port, before), 1, "then to the new one");
    assert.equal(m.get('slotgate_command_success_total{command="get"}'), 1, "one GET, answered once");
  });

  it("connections refused by maxClients, and a client closed for a protocol error, are counted", SLOW, async () => {
    const cluster = await fixture.get();
    const proxy = await launchProxy(proxies, cluster.seeds, { SLOTGATE_MAX_CLIENTS: "1" });
    const a = await RawClient.connect(proxy.port);
    raws.push(a);
    a.send(resp("PING"));
    await a.waitFor((text) => text === "+PONG\r\n");
    const b = await RawClient.connect(proxy.port);
    raws.push(b);
    await b.waitFor((text) => text.includes("max number of clients reached"));
    a.send("*1\r\n$x\r\n");
    await a.waitFor((text) => text.includes("Protocol error"));
    await until("the bad client to be gone", () => proxy.app.server.connectedClients === 0);
    const m = samples((await scrape(proxy)).text);
    assert.equal(m.get("slotgate_downstream_cx_total"), 2);
    assert.equal(m.get("slotgate_downstream_cx_rejected_total"), 1);
    assert.equal(m.get("slotgate_downstream_cx_protocol_error_total"), 1);
    assert.equal(m.get("slotgate_downstream_cx_active"), 0);
    assert.equal(m.get('slotgate_command_total{command="ping"}'), 1);
  });

  it("a command refused before running (NOAUTH) is a rejected call, not a call", SLOW, async () => {
    const cluster = await fixture.get();
    const proxy = await launchProxy(proxies, cluster.seeds, { SLOTGATE_REQUIREPASS: "metrics-pw" });
    const raw = await RawClient.connect(proxy.port);
    raws.push(raw);
    raw.send(resp("GET", "r:1") + resp("AUTH", "metrics-pw") + resp("GET", "r:1"));
    await raw.waitFor((text) => text.startsWith("-NOAUTH") && text.endsWith("+OK\r\n$-1\r\n"));
    const m = samples((await scrape(proxy)).text);
    assert.equal(m.get('slotgate_command_rejected_total{command="get"}'), 1);
    assert.equal(m.get('slotgate_command_total{command="get"}'), 1);
    assert.equal(m.get('slotgate_command_total{command="auth"}'), 1);
    assert.equal(m.get("slotgate_downstream_rq_total"), 2, "the refused GET did not run");
    raw.send(resp("INFO", "commandstats"));
    await raw.waitFor((text) => text.includes("cmdstat_get:"));
    assert.match(raw.received.toString(), /cmdstat_get:calls=1,usec=\d+,usec_per_call=[\d.]+,rejected_calls=1,failed_calls=0/);
  });

  it("SLOTGATE_METRICS=off: no /metrics, INFO still answers, SLOWLOG is empty", SLOW, async () => {
    const cluster = await fixture.get();
    const proxy = await launchProxy(proxies, cluster.seeds, { SLOTGATE_METRICS: "off", SLOTGATE_SLOWLOG_THRESHOLD_US: "0" });
    assert.equal(proxy.app.scrape(false), null);
    assert.equal(proxy.app.metrics, null);
    const client = await connect(proxy);
    await client.set("off:1", "v");
    assert.equal((await scrape(proxy)).status, 404);
    const stats = (await client.info("stats")) as string;
    assert.equal(field(stats, "total_connections_received"), "1");
    assert.equal(field(stats, "total_commands_processed"), "0");
    assert.equal(((await client.info("commandstats")) as string).replace(/\r/g, ""), "# Commandstats\n");
    assert.equal(await client.call("SLOWLOG", "LEN"), 0);
  });
});
