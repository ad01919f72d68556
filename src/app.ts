/**
 * The composition root: given a runtime and a configuration, start the cluster and the client
 * listener under one root scope. `close()` stops accepting, drains in-flight requests for up to
 * `shutdownTimeoutMs`, then cancels everything; it resolves when nothing is left running.
 */
import type { Runtime } from "./runtime.ts";
import { Scope } from "./scope.ts";
import type { Config } from "./config/schema.ts";
import { createLogger, type Logger } from "./log.ts";
import { Cluster } from "./cluster/cluster.ts";
import { parseAddress } from "./cluster/topology.ts";
import { Router } from "./proxy/router.ts";
import { ProxyServer } from "./proxy/server.ts";

export const VERSION = "0.1.0";

export interface Slotgate {
  readonly scope: Scope;
  readonly cluster: Cluster;
  readonly server: ProxyServer;
  /** The port clients connect to (the real one when configured as 0). */
  readonly port: number;
  close(): Promise<void>;
}

export async function startSlotgate(runtime: Runtime, config: Config, log: Logger = createLogger(config.logLevel)): Promise<Slotgate> {
  const scope = Scope.root(runtime, "slotgate", (error, path) => log.error("task failed", { scope: path, error }));
  const seeds = config.cluster.seeds.map((s) => parseAddress(s)!);
  const cluster = new Cluster(scope, "default", { ...config.cluster, ...config.limits, seeds });
  const router = new Router(() => cluster);
  const listen = parseAddress(config.listen, true)!;
  const server: ProxyServer = new ProxyServer(
    scope,
    { host: listen.host, port: listen.port, limits: config.limits, maxClients: config.limits.maxClients },
    router,
    log,
    () => infoText(runtime, server, cluster),
  );
  try {
    await server.start();
  } catch (error) {
    await scope.destroy().catch(() => {});
    throw error;
  }
  log.info("slotgate listening", { address: `${listen.host}:${server.port}`, runtime: runtime.name, seeds: config.cluster.seeds.join(",") });
  let closing: Promise<void> | null = null;
  return {
    scope,
    cluster,
    server,
    port: server.port,
    close() {
      // The server drains first, while the cluster still answers its in-flight requests.
      closing ??= server
        .close(config.shutdownTimeoutMs)
        .catch((error) => log.error("server teardown failed", { error }))
        .then(() => scope.close({ deadlineMs: config.shutdownTimeoutMs }));
      return closing;
    },
  };
}

function infoText(runtime: Runtime, server: ProxyServer, cluster: Cluster): string {
  const lines = [
    "# Server",
    "redis_version:7.0.0",
    "redis_mode:standalone",
    `slotgate_version:${VERSION}`,
    `slotgate_runtime:${runtime.name}`,
    `tcp_port:${server.port}`,
    "",
    "# Clients",
    `connected_clients:${server.connectedClients}`,
    "",
    "# Persistence",
    "loading:0",
    "",
    "# Cluster",
    "cluster_enabled:0",
    `slotgate_cluster_slots_covered:${cluster.stats.coveredSlots}`,
    `slotgate_cluster_nodes:${cluster.nodes().length}`,
    `slotgate_cluster_refreshes:${cluster.stats.refreshes}`,
    `slotgate_cluster_refresh_failures:${cluster.stats.refreshFailures}`,
    `slotgate_redirects_moved:${cluster.stats.moved}`,
    `slotgate_redirects_ask:${cluster.stats.ask}`,
    "",
  ];
  return lines.join("\r\n");
}
