/**
 * One scrape of `GET /metrics`: what `ProxyMetrics` counted, and the gauges read now (clients,
 * clusters, nodes, scopes, memory), written as Prometheus families (./exposition.ts). Names take
 * a `slotgate_` prefix and Envoy's redis_proxy and cluster statistic names where Envoy has one
 * (`downstream_cx_total`, `downstream_rq_total`, `upstream_cx_active`, `upstream_rq_timeout`,
 * `command.<cmd>.success` as `slotgate_command_success_total{command="<cmd>"}`...). The README's
 * "Observe" section lists them all.
 *
 * Label sets are bounded: `command` by the built-in command table (./commands.ts), `cluster` by
 * the configuration, `node` by the nodes slotgate has connected to.
 */
import { MetricsWriter, type HistogramSample } from "./exposition.ts";
import { LATENCY_BOUNDS_US } from "./commands.ts";
import type { ProxyMetrics } from "./proxy-metrics.ts";

/** A scope subtree, as `Scope.inspect()` gives it. */
export interface ScopeTree {
  resources: readonly { kind: string }[];
  children: readonly ScopeTree[];
}

/** One configured cluster (or standalone pool), read at scrape time. */
export interface ClusterSample {
  name: string;
  type: string;
  ready: boolean;
  coveredSlots: number;
  moved: number;
  ask: number;
  refreshes: number;
  refreshFailures: number;
  /** Wall-clock ms of the last slot map applied; null: none yet (or a pool, which has none). */
  lastRefreshMs: number | null;
  nodes: readonly { address: string; pending: number; health?: string }[];
  scope: ScopeTree;
}

export interface ScrapeSources {
  version: string;
  runtime: string;
  clientsConnected: number;
  dedicatedConnections: number;
  clientsMemoryBytes: number;
  evictedClients: number;
  clusters: readonly ClusterSample[];
  memory: { rss: number; heapUsed: number } | null;
}

const SECONDS_BOUNDS = LATENCY_BOUNDS_US.map((us) => us / 1e6);
const RESOURCE_KINDS = ["task", "timer", "socket", "lookup", "listener", "resource"] as const;

/** Scopes and resources of each kind in a subtree. */
export function countScope(tree: ScopeTree): { scopes: number; resources: Record<string, number> } {
  const resources: Record<string, number> = Object.fromEntries(RESOURCE_KINDS.map((k) => [k, 0]));
  let scopes = 0;
  const walk = (node: ScopeTree) => {
    scopes++;
    for (const r of node.resources) resources[r.kind] = (resources[r.kind] ?? 0) + 1;
    for (const child of node.children) walk(child);
  };
  walk(tree);
  return { scopes, resources };
}

/** The exposition text of one scrape, and its content type. */
export function scrape(metrics: ProxyMetrics, sources: ScrapeSources, openMetrics: boolean): { body: string; contentType: string } {
  const w = new MetricsWriter(openMetrics);
  w.gauge("slotgate_info", "slotgate's version and runtime (always 1)", [{ labels: { version: sources.version, runtime: sources.runtime }, value: 1 }]);

  // Downstream: clients.
  w.counter("slotgate_downstream_cx_total", "Client connections accepted (refused ones included)", metrics.downstreamCxTotal);
  w.gauge("slotgate_downstream_cx_active", "Client connections open now", sources.clientsConnected);
  w.counter("slotgate_downstream_cx_rejected_total", "Client connections refused because maxClients were connected", metrics.downstreamCxRejected);
  w.counter("slotgate_downstream_cx_protocol_error_total", "Clients closed for malformed input (protocol errors)", metrics.downstreamProtocolErrors);
  w.counter("slotgate_downstream_cx_rx_bytes_total", "Bytes read from clients", metrics.downstreamRxBytes);
  w.counter("slotgate_downstream_cx_tx_bytes_total", "Bytes written to clients", metrics.downstreamTxBytes);
  w.counter("slotgate_downstream_rq_total", "Requests run (commands read from clients, refused ones excluded)", metrics.requests);
  w.gauge("slotgate_dedicated_connections", "Upstream connections held by one client each (blocked commands, transactions, subscriptions)", sources.dedicatedConnections);
  w.gauge("slotgate_clients_memory_bytes", "Bytes all clients hold together (query buffers, requests in flight, replies owed)", sources.clientsMemoryBytes);
  w.counter("slotgate_clients_evicted_total", "Clients disconnected by maxClientsMemoryBytes", sources.evictedClients);

  // Per command.
  const used = metrics.commands.used();
  const byCommand = (value: (s: (typeof used)[number]) => number) => used.map((s) => ({ labels: { command: s.name }, value: value(s) }));
  w.counter("slotgate_command_total", "Requests per command whose reply was written", byCommand((s) => s.calls));
  w.counter("slotgate_command_success_total", "Requests per command answered with a reply that is not an error", byCommand((s) => s.calls - s.failed));
  w.counter("slotgate_command_error_total", "Requests per command answered with an error reply", byCommand((s) => s.failed));
  w.counter("slotgate_command_rejected_total", "Requests per command refused before running (not authenticated, no permission)", byCommand((s) => s.rejected));
  const latency: HistogramSample[] = used.filter((s) => s.calls > 0).map((s) => ({ labels: { command: s.name }, bounds: SECONDS_BOUNDS, counts: s.buckets, sum: s.usec / 1e6 }));
  w.histogram("slotgate_command_latency_seconds", "Time through slotgate per command: from reading the request to writing its reply", latency);

  // Upstream nodes.
  const nodes = metrics.upstream.all();
  const byNode = (value: (n: (typeof nodes)[number]) => number) => nodes.map((n) => ({ labels: { cluster: n.cluster, node: n.node }, value: value(n) }));
  w.counter("slotgate_upstream_cx_total", "Upstream connections opened", byNode((n) => n.cxTotal));
  w.gauge("slotgate_upstream_cx_active", "Upstream connections open now", byNode((n) => n.cxActive));
  w.counter("slotgate_upstream_cx_connect_fail_total", "Upstream connects that failed or timed out", byNode((n) => n.cxConnectFail));
  w.counter("slotgate_upstream_rq_total", "Requests sent upstream", byNode((n) => n.rqTotal));
  w.counter("slotgate_upstream_rq_timeout_total", "Upstream requests with no reply within opTimeoutMs", byNode((n) => n.rqTimeout));
  w.counter("slotgate_upstream_cx_rx_bytes_total", "Bytes received from upstream nodes", byNode((n) => n.rxBytes));
  w.counter("slotgate_upstream_cx_tx_bytes_total", "Bytes sent to upstream nodes", byNode((n) => n.txBytes));
  const pending = sources.clusters.flatMap((c) => c.nodes.map((n) => ({ labels: { cluster: c.name, node: n.address }, value: n.pending })));
  w.gauge("slotgate_upstream_rq_pending_active", "Requests written to a node of the current topology and not answered yet", pending);
  const health = sources.clusters.flatMap((c) => c.nodes.map((n) => ({ labels: { cluster: c.name, node: n.address }, value: n.health === undefined || n.health === "up" ? 1 : 0 })));
  w.gauge("slotgate_upstream_node_up", "1 while a node of the current topology is up, 0 while it is down or suspect", health);

  // Clusters: discovery, redirects, coverage, scopes.
  const clusters = sources.clusters;
  const byCluster = (value: (c: ClusterSample) => number) => clusters.map((c) => ({ labels: { cluster: c.name }, value: value(c) }));
  w.gauge("slotgate_cluster_ready", "1 once a cluster can route every key (complete slot map; every server of a pool answered PING)", byCluster((c) => (c.ready ? 1 : 0)));
  w.gauge("slotgate_cluster_slots_covered", "Slots with an owner, of 16384 (a standalone pool: its servers)", byCluster((c) => c.coveredSlots));
  w.counter(
    "slotgate_cluster_redirects_total",
    "MOVED and ASK redirects followed (or refused by maxUnknownNodes)",
    clusters.flatMap((c) => [
      { labels: { cluster: c.name, type: "moved" }, value: c.moved },
      { labels: { cluster: c.name, type: "ask" }, value: c.ask },
    ]),
  );
  w.counter("slotgate_discovery_refresh_total", "Slot maps applied (CLUSTER SLOTS refreshes that succeeded)", byCluster((c) => c.refreshes));
  w.counter("slotgate_discovery_refresh_failure_total", "CLUSTER SLOTS refresh rounds that failed", byCluster((c) => c.refreshFailures));
  w.gauge(
    "slotgate_discovery_last_success_timestamp_seconds",
    "Unix time of the last slot map applied (absent until one is)",
    clusters.filter((c) => c.lastRefreshMs !== null).map((c) => ({ labels: { cluster: c.name }, value: c.lastRefreshMs! / 1000 })),
  );
  const scopes = clusters.map((c) => ({ name: c.name, counts: countScope(c.scope) }));
  w.gauge("slotgate_cluster_scopes", "Live scopes of a cluster (its own, nodes, connections, refresh rounds...)", scopes.map((s) => ({ labels: { cluster: s.name }, value: s.counts.scopes })));
  w.gauge(
    "slotgate_cluster_resources",
    "Live resources of a cluster's scopes, by kind (task, timer, socket, lookup, listener, resource)",
    scopes.flatMap((s) => RESOURCE_KINDS.map((kind) => ({ labels: { cluster: s.name, kind }, value: s.counts.resources[kind]! }))),
  );

  // Configuration.
  w.counter("slotgate_config_apply_total", "Configuration changes applied (admin API or config file)", metrics.configApplied);
  w.counter("slotgate_config_apply_failure_total", "Configuration changes refused (invalid, or a field that cannot change while running)", metrics.configRefused);

  // Process.
  if (sources.memory !== null) {
    w.gauge("slotgate_process_resident_memory_bytes", "Resident memory of the process", sources.memory.rss);
    w.gauge("slotgate_process_heap_used_bytes", "JavaScript heap in use", sources.memory.heapUsed);
  }
  w.gauge("slotgate_event_loop_lag_seconds", "How late the last event-loop probe timer ran", metrics.loopLag.lastMs / 1000);
  w.gauge("slotgate_event_loop_lag_max_seconds", "The latest a probe timer ran since the previous scrape", metrics.loopLag.takeMax() / 1000);
  w.gauge("slotgate_slowlog_length", "Entries in the slow log", metrics.slowlog.length);
  return { body: w.text(), contentType: w.contentType };
}
