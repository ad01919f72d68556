/**
 * Serves the admin API (src/admin/app.ts) over HTTP through the scope's runtime. The server is
 * owned by the scope: closing the scope stops it. Without a token it only listens on loopback.
 */
import type { ChangeResult, ControlPlane } from "../control/types.ts";
import type { Logger } from "../log.ts";
import { ScopeClosedError } from "../errors.ts";
import type { Scope } from "../scope/scope.ts";
import { createAdminApp, isLoopbackHost, type MetricsScrape } from "./app.ts";

export interface AdminServerOptions {
  /** Address to listen on; without `token` it must be loopback (127.0.0.0/8, ::1, localhost). */
  host: string;
  /** 0 picks a free port; read the real one from the result. */
  port: number;
  /** Bearer token protecting every route but /healthz and /readyz. */
  token?: string;
  control: ControlPlane;
  version: string;
  /** Largest accepted request body (default 1 MiB). */
  maxBodyBytes?: number;
  /** True once slotgate began shutting down (`/readyz` answers 503). */
  shuttingDown?: () => boolean;
  /** Where a refused change is logged, with why (an applied one is logged by the control plane). */
  log?: Logger;
  /** One Prometheus scrape for `GET /metrics`; absent: metrics are off (404). */
  metrics?: MetricsScrape;
}

export interface AdminServer {
  readonly host: string;
  readonly port: number;
  /** Stop serving (requests in flight finish). Idempotent; closing the scope does it too. */
  close(): Promise<void>;
}

function address(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Start the admin API on `host:port`. Throws, before listening, when `host` is not loopback and
 * no token is set (or the token is unusable), and when `scope` is no longer open.
 */
export async function startAdminServer(scope: Scope, options: AdminServerOptions): Promise<AdminServer> {
  const wanted = address(options.host, options.port);
  if (!options.token && !isLoopbackHost(options.host)) {
    throw new Error(
      `SLOTGATE_ADMIN_LISTEN=${wanted} is not a loopback address: set SLOTGATE_ADMIN_TOKEN to expose the admin API`,
    );
  }
  const control = options.log ? loggingRefusals(options.control, options.log) : options.control;
  const app = createAdminApp(control, {
    token: options.token || undefined,
    version: options.version,
    maxBodyBytes: options.maxBodyBytes,
    shuttingDown: options.shuttingDown,
    metrics: options.metrics,
  });
  if (!scope.isOpen) throw new ScopeClosedError(scope.path, `serve the admin API on ${wanted}`);
  const server = await scope.runtime.serveHttp({ host: options.host, port: options.port }, (request) => app.fetch(request));
  if (!scope.isOpen) {
    // Close began while we were binding: admit nothing new and do not leak the socket.
    await server.close().catch(() => {});
    throw new ScopeClosedError(scope.path, `serve the admin API on ${wanted}`);
  }
  const owned = scope.own("listener", `admin http://${address(server.host, server.port)}`, () => server.close());
  return {
    host: server.host,
    port: server.port,
    close() {
      owned.release();
      return server.close();
    },
  };
}

/** The control plane, logging each change it refuses: which request, its status, and why. */
function loggingRefusals(control: ControlPlane, log: Logger): ControlPlane {
  const logged = (request: string) => (result: ChangeResult) => {
    if (!result.ok) log.warn("config change refused", { via: "admin API", request, status: result.status, problems: result.problems.join("; ") });
    return result;
  };
  return {
    config: () => control.config(),
    replaceConfig: (document) => control.replaceConfig(document).then(logged("PUT /config")),
    putCluster: (name, document) => control.putCluster(name, document).then(logged(`PUT /clusters/${name}`)),
    deleteCluster: (name, force) => control.deleteCluster(name, force).then(logged(`DELETE /clusters/${name}${force ? "?force=true" : ""}`)),
    clusters: () => control.clusters(),
    cluster: (name) => control.cluster(name),
    scopes: () => control.scopes(),
    ready: () => control.ready(),
  };
}
