/**
 * The composition root: given a runtime and a configuration, start the clusters, the client
 * listener and the admin API under one root scope. `close()` stops accepting, drains in-flight
 * requests for up to `shutdownTimeoutMs` (blocked commands and subscribers are answered
 * `-ERR slotgate is shutting down` at once), then cancels everything; it resolves when nothing is
 * left running. `shutdown()`, what a signal starts, first turns `/readyz` to 503 and keeps serving
 * for `shutdownDelayMs`, so load balancers withdraw the endpoint before the port closes.
 */
import type { ListenTls, Runtime } from "./runtime.ts";
import { Scope } from "./scope/scope.ts";
import type { Config, DownstreamTlsConfig } from "./config/schema.ts";
import { createLogger, withStack, type LogFields, type Logger } from "./log.ts";
import { isoTime } from "./util/iso-time.ts";
import type { Cluster } from "./backends/cluster/cluster.ts";
import { parseAddress } from "./util/address.ts";
import { Router } from "./proxy/routing/router.ts";
import { denyListOf } from "./proxy/routing/deny-list.ts";
import { ProxyServer } from "./proxy/server.ts";
import { LiveConfig } from "./control/control-plane.ts";
import { startAdminServer, type AdminServer } from "./admin/server.ts";
import { CommandTable } from "./commands/keys.ts";
import { ClientAuth } from "./acl/client-auth.ts";
import { ProxyMetrics, probeLoopLag } from "./metrics/proxy-metrics.ts";
import { scrape, type ClusterSample } from "./metrics/scrape.ts";
import { commandstatsLines, statsLines } from "./metrics/info.ts";
import { sleep } from "./scope/time.ts";
import type { ControlPlane } from "./control/types.ts";
import type { WorkerChannel } from "./workers/channel.ts";
import type { WorkerIdentity } from "./workers/protocol.ts";
import { GroupControl } from "./workers/group-control.ts";
import type { TopologyExchange } from "./backends/cluster/topology-exchange.ts";
import { mergeExpositions } from "./metrics/merge.ts";

export const VERSION = "0.2.0";

/** How long the leader waits for another worker's metrics before answering a scrape without them. */
const SCRAPE_TIMEOUT_MS = 5000;

export interface Slotgate {
  readonly scope: Scope;
  readonly control: LiveConfig;
  /**
   * Where configuration changes go (the admin API, SIGHUP, the config file): `control` itself,
   * or for the leader of a group of workers, `control` and then every other worker.
   */
  readonly configure: ControlPlane;
  readonly server: ProxyServer;
  readonly admin: AdminServer | null;
  /** The catch-all Redis Cluster (or the first one): what a single-cluster setup serves. */
  readonly cluster: Cluster;
  /** The port clients connect to (the real one when configured as 0). */
  readonly port: number;
  /** The TLS port clients connect to (the real one when configured as 0), or null without `tls`. */
  readonly tlsPort: number | null;
  /**
   * Read the TLS port's certificate files again and present them to new connections; connected
   * clients stay. A file that cannot be read, or material that does not work, is refused with a
   * log line and the certificate in force stays. Resolves true when the new one is in force.
   */
  reloadTls(): Promise<boolean>;
  /** The commands this slotgate knows: the built-in table, plus what its clusters taught it. */
  readonly commands: CommandTable;
  /** Resolves once every routed backend is ready (a complete slot map; every server of a pool answered PING). */
  ready(): Promise<void>;
  /** What the proxy counts; null when `metrics` is off. */
  readonly metrics: ProxyMetrics | null;
  /** One Prometheus scrape (`GET /metrics`): the text and its content type; null when metrics are off. */
  scrape(openMetrics: boolean): { body: string; contentType: string } | null;
  /** True once `shutdown()` or `close()` began: `/readyz` answers 503 from then on. */
  readonly shuttingDown: boolean;
  /**
   * The graceful shutdown (SIGTERM, SIGINT): `/readyz` answers 503 at once; clients are still
   * served, new ones accepted, for `shutdownDelayMs` (read now: it may have changed live); then
   * `close()`. Each step is logged at info. Idempotent: a second call returns the same promise.
   */
  shutdown(why: string): Promise<void>;
  close(): Promise<void>;
}

/** Optional parts of a slotgate, for tests. */
export interface SlotgateOptions {
  /**
   * The command table to start from (and teach): tests give one built from fewer rows to show a
   * command being learned. Default: a new table of the built-in Redis 7 commands.
   */
  commands?: CommandTable;
  /**
   * This slotgate is one worker of several (`SLOTGATE_WORKERS`, src/workers/): it shares its
   * ports, and worker 0 serves the admin API for the whole group. Absent: it runs alone.
   */
  worker?: { channel: WorkerChannel; identity: WorkerIdentity; processes: boolean };
}

/** The logger slotgate writes to stderr: the configured level and format, each line stamped with the wall clock. */
export function processLogger(runtime: Runtime, config: Config, sink?: (line: string) => void, fields?: LogFields): Logger {
  return createLogger(config.logLevel, sink, { format: config.logFormat, time: () => isoTime(runtime.wallClock()), ...(fields && { fields }) });
}

export async function startSlotgate(runtime: Runtime, config: Config, log: Logger = processLogger(runtime, config), options: SlotgateOptions = {}): Promise<Slotgate> {
  // One table per slotgate: what one instance learns never leaks into another.
  const commands = options.commands ?? new CommandTable();
  const scope = Scope.root(runtime, "slotgate", (error, path) => log.error("task failed", { scope: path, ...withStack(error) }));
  const worker = options.worker;
  // A follower binds the ports the leader got (a port configured as 0 is picked once, by the leader).
  const shared = worker?.identity.ports;
  const listen = { ...parseAddress(config.listen, true)!, ...(shared && { port: shared.port }) };
  const tlsListen = config.tls && { ...parseAddress(config.tls.listen, true)!, ...(shared?.tlsPort != null && { port: shared.tlsPort }) };
  let tls: ListenTls | undefined;
  try {
    tls = config.tls && (await readListenTls(runtime, config.tls));
  } catch (error) {
    await scope.destroy().catch(() => {});
    throw error;
  }
  let server!: ProxyServer;
  const auth = new ClientAuth(config, () => runtime.now(), log);
  // Metrics are on or off for the life of the process: sessions and connections are built so.
  const metrics = config.metrics ? new ProxyMetrics(config) : null;
  if (metrics) {
    const probes = scope.child("metrics");
    probeLoopLag((ms, fn) => void probes.timer("event loop lag probe", ms, fn), () => runtime.now(), metrics.loopLag);
  }
  const control = new LiveConfig(scope.child("clusters"), config, log, {
    onLimits: (limits) => void (server.options.limits = limits),
    onLogLevel: (level) => log.setLevel?.(level),
    onLogFormat: (format) => log.setFormat?.(format),
    onAuth: (next) => void auth.update(next),
    scopeTree: () => scope.inspect(),
    onMetrics: (next) => metrics?.update(next),
    changed: (applied) => {
      if (metrics && applied) metrics.configApplied++;
      else if (metrics) metrics.configRefused++;
    },
    ...(metrics && { upstreamStats: metrics.upstream }),
    // Workers share the slot maps they learn: one CLUSTER SLOTS per interval for the whole group.
    ...(worker && { topologyExchange: topologyExchangeOf(worker.channel) }),
  }, commands);
  const router = new Router(
    () => control.table,
    {
      random: () => runtime.random(),
      info: () => infoText(runtime, server, control, commands, metrics, worker?.identity),
      denied: denyListOf(() => control.config()),
    },
    commands,
  );
  server = new ProxyServer(
    scope,
    {
      host: listen.host,
      port: listen.port,
      limits: config.limits,
      tls: tlsListen && tls && { host: tlsListen.host, port: tlsListen.port, tls },
      ...(metrics && { metrics }),
      ...(worker && { reusePort: true }),
    },
    router,
    log,
    () => infoText(runtime, server, control, commands, metrics, worker?.identity),
    auth,
  );
  let admin: AdminServer | null = null;
  let shuttingDown = false;
  const group = worker && worker.identity.index === 0 ? new GroupControl(control, worker.channel, log) : null;
  const configure: ControlPlane = group ?? control;
  try {
    await server.start();
    // Only the leader of a group of workers serves the admin API, for them all.
    if (config.admin.listen !== "off" && (!worker || group)) {
      const address = parseAddress(config.admin.listen, true)!;
      admin = await startAdminServer(scope.child("admin"), {
        host: address.host,
        port: address.port,
        token: config.admin.token,
        control: configure,
        version: VERSION,
        shuttingDown: () => shuttingDown,
        log,
        ...(metrics && { metrics: (openMetrics: boolean) => (group ? scrapeGroup(openMetrics) : scrapeNow(openMetrics)!) }),
      });
    }
  } catch (error) {
    await scope.destroy().catch(() => {});
    throw error;
  }
  if (worker) {
    worker.channel.attach(scope.child("workers"), log, {
      request: async (request) => (request.kind === "config" ? control.replaceConfig(request.document) : (scrapeNow(request.openMetrics)?.body ?? "")),
      joined: (index) => group?.joined(index),
    });
    worker.channel.listening(server.port, server.tlsPort);
  }
  log.info("slotgate listening", {
    address: `${listen.host}:${server.port}`,
    ...(tlsListen && { tls: `${tlsListen.host}:${server.tlsPort}` }),
    admin: admin ? `http://${admin.host}:${admin.port}` : "off",
    runtime: runtime.name,
    clusters: Object.keys(config.clusters).join(","),
  });
  let closing: Promise<void> | null = null;
  function scrapeNow(openMetrics: boolean): { body: string; contentType: string } | null {
    if (!metrics) return null;
    return scrape(metrics, {
      version: VERSION,
      runtime: runtime.name,
      clientsConnected: server.connectedClients,
      dedicatedConnections: server.dedicated.open,
      clientsMemoryBytes: server.memory.totalBytes,
      evictedClients: server.memory.evicted,
      clusters: clusterSamples(control),
      memory: runtime.memoryUsage?.() ?? null,
    }, openMetrics);
  }
  /** The leader's scrape: its own and every other worker's, combined (src/metrics/merge.ts). */
  async function scrapeGroup(openMetrics: boolean): Promise<{ body: string; contentType: string }> {
    const own = scrapeNow(openMetrics)!;
    const channel = worker!.channel;
    const others = await Promise.all(
      channel.joined.map((index) =>
        channel.request(index, { kind: "scrape", openMetrics }, SCRAPE_TIMEOUT_MS).then(
          (text) => (typeof text === "string" ? text : null),
          (error: unknown) => {
            log.warn("a worker's metrics are missing from this scrape", { worker: index, error });
            return null;
          },
        ),
      ),
    );
    const texts = [own.body, ...others.filter((t): t is string => t !== null)];
    return { body: mergeExpositions(texts, { openMetrics, sharedProcess: !worker!.processes }), contentType: own.contentType };
  }
  const close = (): Promise<void> => {
    shuttingDown = true;
    // The timeout in force when the shutdown begins: it may have changed live since the start.
    const { shutdownTimeoutMs } = control.config();
    // One budget for the whole shutdown: once the clients are gone, what the clusters still have
    // in flight is owed to nobody, so their drain gets only what is left of it.
    const started = runtime.now();
    const left = () => Math.max(0, shutdownTimeoutMs - (runtime.now() - started));
    // The server drains first, while the clusters still answer its in-flight requests.
    closing ??= server
      .close(shutdownTimeoutMs)
      .catch((error) => log.error("server teardown failed", { error }))
      .then(() => log.info("shutting down: clients drained; closing upstream connections"))
      .then(() => control.closeAll(left()))
      .then(() => scope.close({ deadlineMs: left() }));
    return closing;
  };
  let stopping: Promise<void> | null = null;
  const shutdown = (why: string): Promise<void> => {
    stopping ??= (async () => {
      shuttingDown = true;
      const { shutdownDelayMs } = control.config();
      log.info("shutting down: /readyz answers 503; clients are still served", { why, delayMs: shutdownDelayMs });
      // Rejected when close() begins meanwhile (a test, say): then it is under way already.
      if (shutdownDelayMs > 0 && !closing) await sleep(scope, shutdownDelayMs).catch(() => {});
      log.info("shutting down: no longer accepting clients; draining in-flight requests", { timeoutMs: control.config().shutdownTimeoutMs });
      await close();
      log.info("shut down");
    })();
    return stopping;
  };
  return {
    metrics,
    scrape: scrapeNow,
    scope,
    control,
    configure,
    server,
    admin,
    port: server.port,
    tlsPort: server.tlsPort,
    commands,
    async reloadTls() {
      // The paths are fixed at start (changing them is a restart): only their contents are new.
      if (!config.tls) return false;
      let next: ListenTls;
      try {
        next = await readListenTls(runtime, config.tls);
        await server.setTls(next);
      } catch (error) {
        log.error("TLS certificate reload refused; the certificate in force stays", { error: error instanceof Error ? error.message : String(error) });
        return false;
      }
      log.info("TLS certificate reloaded", { cert: config.tls.cert });
      return true;
    },
    get cluster(): Cluster {
      const table = control.config();
      const names = [table.catchAll, ...Object.keys(table.clusters)];
      for (const name of names) {
        const cluster = name ? control.redisCluster(name) : undefined;
        if (cluster) return cluster;
      }
      throw new Error("no Redis Cluster is configured");
    },
    async ready() {
      for (const backend of control.table.backends()) await backend.ready;
    },
    get shuttingDown() {
      return shuttingDown;
    },
    shutdown,
    close,
  };
}

/** The workers' channel as discovery shares slot maps through it (what arrives is validated there). */
function topologyExchangeOf(channel: WorkerChannel): TopologyExchange {
  return {
    publish: (key, topology) => channel.publishTopology(key, topology),
    subscribe: (key, receive) => channel.subscribeTopology(key, receive as (topology: unknown) => void),
  };
}

/** Every configured backend as the scrape reads it. */
function clusterSamples(control: LiveConfig): ClusterSample[] {
  return control.clusters().map((view) => ({
    name: view.name,
    type: view.type,
    ready: view.ready,
    coveredSlots: view.coveredSlots,
    moved: view.redirects.moved,
    ask: view.redirects.ask,
    refreshes: view.refreshes,
    refreshFailures: view.refreshFailures,
    lastRefreshMs: control.redisCluster(view.name)?.stats.lastRefreshAt ?? null,
    nodes: view.nodes,
    scope: view.scope,
  }));
}

function infoText(runtime: Runtime, server: ProxyServer, control: LiveConfig, commands: CommandTable, metrics: ProxyMetrics | null, worker?: WorkerIdentity): string {
  let blocked = 0;
  let pubsub = 0;
  for (const session of server.sessions) {
    if (session.isBlocked) blocked++;
    if (session.pubsub !== null) pubsub++;
  }
  const memory = runtime.memoryUsage?.() ?? null;
  const lines = [
    "# Server",
    "redis_version:7.0.0",
    "redis_mode:standalone",
    `tcp_port:${server.port}`,
    `slotgate_commands:${commands.size}`,
    `slotgate_commands_learned:${commands.learnedCount}`,
    "",
    "# Clients",
    `connected_clients:${server.connectedClients}`,
    `maxclients:${server.options.limits.maxClients}`,
    `blocked_clients:${blocked}`,
    `pubsub_clients:${pubsub}`,
    "",
    ...(memory ? ["# Memory", `used_memory:${memory.heapUsed}`, `used_memory_rss:${memory.rss}`, ""] : []),
    "# Persistence",
    "loading:0",
    "",
    "# Stats",
    ...statsLines(metrics, { totalConnections: server.totalConnections, evictedClients: server.memory.evicted, now: runtime.now() }),
    "",
    "# Commandstats",
    ...commandstatsLines(metrics),
    "",
    "# Cluster",
    "cluster_enabled:0",
    "",
    "# Proxy",
    `slotgate_version:${VERSION}`,
    `slotgate_runtime:${runtime.name}`,
    `slotgate_worker:${worker?.index ?? 0}`,
    `slotgate_workers:${worker?.count ?? 1}`,
    `slotgate_dedicated_connections:${server.dedicated.open}`,
    `slotgate_clients_memory_bytes:${server.memory.totalBytes}`,
    `slotgate_clients_memory_max_bytes:${server.options.limits.maxClientsMemoryBytes}`,
    `slotgate_evicted_clients:${server.memory.evicted}`,
    `slotgate_auth_failures:${server.auth?.throttle.failures ?? 0}`,
    `slotgate_auth_delayed:${server.auth?.throttle.delayed ?? 0}`,
    `slotgate_auth_failing_addresses:${server.auth?.throttle.size ?? 0}`,
  ];
  for (const view of control.clusters()) {
    lines.push(
      `slotgate_cluster:name=${view.name},type=${view.type},ready=${view.ready ? 1 : 0},slots=${view.coveredSlots},nodes=${view.nodes.length},refreshes=${view.refreshes},refresh_failures=${view.refreshFailures},moved=${view.redirects.moved},ask=${view.redirects.ask},nodes_unavailable=${view.nodes.filter((n) => n.health !== undefined && n.health !== "up").length},partial_maps_refused=${view.partialMaps.refused},kept_slots=${view.partialMaps.keptSlots},unknown_redirects_refused=${view.unknownNodes.refused}`,
    );
  }
  lines.push("");
  return lines.join("\r\n");
}

/** The TLS port's certificate, key and CA, read from their files. */
async function readListenTls(runtime: Runtime, files: DownstreamTlsConfig): Promise<ListenTls> {
  const read = (what: string, path: string) =>
    runtime.readTextFile(path).catch((error: unknown) => {
      throw new Error(`cannot read the TLS ${what} ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    });
  const [cert, key, ca] = await Promise.all([read("certificate", files.cert), read("key", files.key), files.ca === undefined ? undefined : read("CA", files.ca)]);
  return { cert, key, ...(ca !== undefined && { ca }), ...(files.minVersion && { minVersion: files.minVersion }) };
}
