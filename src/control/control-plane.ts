/**
 * The live configuration: which clusters exist, and the routing table that leads to them. Every
 * change — a whole new document, one cluster added or replaced, one removed — is validated first
 * and then applied atomically, one at a time:
 *
 * - an added cluster opens its scope and starts discovery; if routes lead to it, the change waits
 *   until it is ready (or `readyTimeoutMs` passes) before the routing table is swapped;
 * - a replaced one gets a new scope, which may become ready (until `readyTimeoutMs`) before the
 *   routing table is swapped, and only then is the old one closed;
 * - a removed one is closed after the swap: in-flight requests may finish until
 *   `drainTimeoutMs`, then everything it started is cancelled and what is still pending is
 *   answered `-ERR cluster 'NAME' was removed`.
 *
 * Every other field applies live or refuses the whole change with 409, by the table in
 * ./live-fields.ts; the change answers one line per field it changed.
 *
 * Routing reads one immutable table per command, so no command ever sees half a change.
 */
import type { Scope, ScopeInfo } from "../scope/scope.ts";
import { sleep } from "../scope/time.ts";
import type { Logger } from "../log.ts";
import { ConfigError, isAbort } from "../errors.ts";
import { validateCluster, validateConfig } from "../config/load.ts";
import { resolveAuth, resolveKnobs, resolveReadFrom, resolveUpstreamTls, type ClusterDocument, type Config, type LimitsConfig } from "../config/schema.ts";
import { upstreamTls } from "../upstream/tls.ts";
import { Cluster } from "../backends/cluster/cluster.ts";
import { StandalonePool } from "../backends/pool/standalone.ts";
import { parseAddress } from "../util/address.ts";
import type { Backend } from "../backend/contract.ts";
import { RouteTable } from "../proxy/routing/routes.ts";
import type { ChangeResult, ClusterView, ControlPlane } from "./types.ts";
import { faults } from "../testing/faults.ts";
import { sha256Hex } from "../util/sha256.ts";
import type { CommandLearner } from "../backends/cluster/command-learning.ts";
import type { TopologyExchange } from "../backends/cluster/topology-exchange.ts";
import type { TopologyShare } from "../backends/cluster/discovery.ts";
import { fieldChanges } from "./live-fields.ts";
import { restoreSecrets } from "../config/secrets.ts";
import type { UpstreamStats } from "../metrics/upstream.ts";

interface Entry {
  backend: Backend;
  /** The same object when it is a Redis Cluster (for its stats and topology); null for a pool. */
  redisCluster: Cluster | null;
  /** What the backend was built from; a change to it means a replacement. */
  fingerprint: string;
  readyTimeoutMs: number;
  drainTimeoutMs: number;
}

export interface ControlPlaneHooks {
  /** Limits and log level in force from now on (see ./live-fields.ts for what reads them when). */
  onLimits(limits: LimitsConfig): void;
  onLogLevel(level: Config["logLevel"]): void;
  onLogFormat?(format: Config["logFormat"]): void;
  /** The configuration in force from now on, for its client users (`requirepass`, `users`). */
  onAuth?(config: Config): void;
  /** The whole scope tree, for `GET /debug/scopes`. */
  scopeTree(): ScopeInfo;
  /** The configuration in force from now on, for the slow log's settings. */
  onMetrics?(config: Config): void;
  /** A change was applied (true) or refused (false): counted by the metrics. */
  changed?(applied: boolean): void;
  /** Where every backend's upstream connections count (absent: metrics are off). */
  upstreamStats?: UpstreamStats;
  /** How the workers share the slot maps of their Redis Clusters (absent: one worker, nothing shared). */
  topologyExchange?: TopologyExchange;
}

export class LiveConfig implements ControlPlane {
  readonly #scope: Scope;
  readonly #log: Logger;
  readonly #hooks: ControlPlaneHooks;
  readonly #commands: CommandLearner | undefined;
  #config: Config;
  #entries = new Map<string, Entry>();
  #table: RouteTable;
  /** Writes run one after another: each waits for the previous one to be fully applied. */
  #writes: Promise<unknown> = Promise.resolve();

  /** `commands`, when given, is the app's command table: every Redis Cluster opened teaches it its COMMAND. */
  constructor(scope: Scope, config: Config, log: Logger, hooks: ControlPlaneHooks, commands?: CommandLearner) {
    this.#scope = scope;
    this.#log = log;
    this.#hooks = hooks;
    this.#commands = commands;
    this.#config = config;
    for (const [name, document] of Object.entries(config.clusters)) this.#entries.set(name, this.#open(name, document, config));
    this.#table = this.#buildTable(config, this.#entries);
  }

  /** The routing table in force; the router reads it once per command. */
  get table(): RouteTable {
    return this.#table;
  }

  /** A configured backend by name. */
  backend(name: string): Backend | undefined {
    return this.#entries.get(name)?.backend;
  }

  /** A configured Redis Cluster by name (tests and the entry points look at its stats and topology). */
  redisCluster(name: string): Cluster | undefined {
    return this.#entries.get(name)?.redisCluster ?? undefined;
  }

  config(): Config {
    return this.#config;
  }

  replaceConfig(document: unknown): Promise<ChangeResult> {
    return this.#write(() => this.#apply(this.#validate(document)));
  }

  putCluster(name: string, document: unknown): Promise<ChangeResult> {
    return this.#write(() => {
      // Restored as the whole document it will become, so secret paths read the same.
      const restored = restoreSecrets({ clusters: { [name]: document } }, this.#config);
      if (restored.problems.length > 0) throw new ConfigError(restored.problems);
      const cluster = validateCluster((restored.document as { clusters: Record<string, unknown> }).clusters[name]);
      return this.#apply(this.#validate({ ...this.#config, clusters: { ...this.#config.clusters, [name]: cluster } }));
    });
  }

  /**
   * Validate a whole document, a secret sent back as `REDACTED` standing for the one in force
   * (read here, inside the write queue, so it is the secret of the configuration being changed).
   */
  #validate(document: unknown): Config {
    const restored = restoreSecrets(document, this.#config);
    if (restored.problems.length > 0) throw new ConfigError(restored.problems);
    return validateConfig(restored.document);
  }

  deleteCluster(name: string, force: boolean): Promise<ChangeResult> {
    return this.#write(async () => {
      const current = this.#config;
      if (!Object.hasOwn(current.clusters, name)) {
        return { ok: false, status: 404, problems: [`cluster '${name}' is not configured`] };
      }
      const routes = current.routes.filter((r) => r.cluster === name).map((r) => `route '${r.prefix}'`);
      if (current.catchAll === name) routes.push("the catch-all");
      if (routes.length > 0 && !force) {
        return { ok: false, status: 409, problems: [`cluster '${name}' is still routed to by ${routes.join(", ")}: remove those routes first, or use ?force=true`] };
      }
      const clusters = { ...current.clusters };
      delete clusters[name];
      const next: Record<string, unknown> = { ...current, clusters, routes: current.routes.filter((r) => r.cluster !== name) };
      if (current.catchAll === name) delete next.catchAll;
      let config: Config;
      try {
        config = validateConfig(next);
      } catch (error) {
        if (error instanceof ConfigError) return { ok: false, status: 409, problems: error.problems };
        throw error;
      }
      return this.#apply(config);
    });
  }

  clusters(): ClusterView[] {
    return [...this.#entries.keys()].map((name) => this.cluster(name)!);
  }

  cluster(name: string): ClusterView | null {
    const entry = this.#entries.get(name);
    return entry ? { name, ...entry.backend.status() } : null;
  }

  scopes(): ScopeInfo {
    return this.#hooks.scopeTree();
  }

  ready(): { ready: boolean; notReady: string[]; reasons: Record<string, string> } {
    const waiting = [...this.#table.backends()].filter((b) => !b.isReady);
    const reasons: Record<string, string> = {};
    for (const backend of waiting) {
      const why = backend.status().lastError;
      if (why !== null) reasons[backend.name] = why;
    }
    return { ready: waiting.length === 0, notReady: waiting.map((b) => b.name), reasons };
  }

  #write(change: () => ChangeResult | Promise<ChangeResult>): Promise<ChangeResult> {
    const run = this.#writes.then(async (): Promise<ChangeResult> => {
      let result: ChangeResult;
      try {
        result = await change();
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        result = { ok: false, status: 400, problems: error.problems };
      }
      this.#hooks.changed?.(result.ok);
      return result;
    });
    this.#writes = run.catch(() => {});
    return run;
  }

  async #apply(next: Config): Promise<ChangeResult> {
    // Every field either applies live or refuses the whole change (LIVE_FIELDS says which).
    const fields = fieldChanges(this.#config, next);
    if (fields.refused.length > 0) return { ok: false, status: 409, problems: fields.refused };

    const changes: string[] = [];
    const entries = new Map<string, Entry>();
    const opened: { name: string; entry: Entry }[] = [];
    const retired: { name: string; entry: Entry; reason: string }[] = [];
    for (const [name, document] of Object.entries(next.clusters)) {
      const old = this.#entries.get(name);
      const fingerprint = fingerprintOf(document, next);
      if (old && old.fingerprint === fingerprint) {
        entries.set(name, old);
        continue;
      }
      const entry = this.#open(name, document, next);
      entries.set(name, entry);
      opened.push({ name, entry });
      if (old) retired.push({ name, entry: old, reason: `cluster '${name}' was replaced` });
      changes.push(old ? `replaced cluster '${name}'` : `added cluster '${name}'`);
    }
    for (const [name, entry] of this.#entries) {
      if (!entries.has(name)) {
        retired.push({ name, entry, reason: `cluster '${name}' was removed` });
        changes.push(`removed cluster '${name}'`);
      }
    }
    // A cluster the new table routes to takes traffic once it knows its slot map (or its
    // readiness wait runs out), so keys a ready cluster was serving never meet one that cannot
    // route yet. An added cluster nothing routes to yet is not waited for.
    const table = this.#buildTable(next, entries);
    const routed = table.backends();
    await Promise.all(opened.filter(({ entry }) => routed.has(entry.backend)).map(({ entry }) => this.#waitReady(entry)));
    changes.push(...fields.updated);
    // The swap: from here on every command is routed by the new table.
    this.#table = table;
    this.#entries = entries;
    this.#config = next;
    this.#hooks.onLimits(next.limits);
    this.#hooks.onLogLevel(next.logLevel);
    this.#hooks.onLogFormat?.(next.logFormat);
    this.#hooks.onAuth?.(next);
    this.#hooks.onMetrics?.(next);
    for (const change of changes) this.#log.info(change);
    await Promise.all(
      retired.map(({ name, entry, reason }) =>
        faults.skipRemovedClusterClose ? Promise.resolve() : entry.backend.close(entry.drainTimeoutMs, reason).catch((error) => this.#log.error("cluster teardown failed", { cluster: name, error })),
      ),
    );
    return { ok: true, changes };
  }

  async #waitReady(entry: Entry): Promise<void> {
    if (entry.backend.isReady || entry.readyTimeoutMs === 0) return;
    const waiter = new AbortController();
    try {
      await Promise.race([entry.backend.ready, sleep(this.#scope, entry.readyTimeoutMs, waiter.signal)]);
    } catch (error) {
      if (!isAbort(error)) throw error;
    } finally {
      waiter.abort();
    }
  }

  #open(name: string, document: ClusterDocument, config: Config): Entry {
    const knobs = resolveKnobs(document, config.clusterDefaults);
    const tlsConfig = resolveUpstreamTls(document, config.clusterDefaults);
    const runtime = this.#scope.runtime;
    // Files are read when the cluster first connects; a replacement cluster reads them again.
    const tls = tlsConfig && upstreamTls(tlsConfig, (path) => runtime.readTextFile(path));
    if (tlsConfig?.insecure) {
      this.#log.warn("upstream TLS certificates are NOT verified (tls.insecure): anyone on the path can impersonate the nodes", { cluster: name });
    }
    const upstreamStats = this.#hooks.upstreamStats;
    const fingerprint = fingerprintOf(document, config);
    const options = { ...knobs, ...config.limits, log: this.#log, auth: resolveAuth(document, config.clusterDefaults), tls, ...(upstreamStats && { upstreamStats }) };
    let backend: Backend;
    let redisCluster: Cluster | null = null;
    if (document.type === "standalone") {
      backend = new StandalonePool(this.#scope, name, {
        ...options,
        servers: document.servers.map((s) => (typeof s === "string" ? { address: s } : s)),
        hash: document.hash,
        hashTag: document.hashTag,
      });
    } else {
      backend = redisCluster = new Cluster(this.#scope, name, {
        ...options,
        seeds: document.seeds.map((s) => parseAddress(s)!),
        readFrom: resolveReadFrom(document, config.clusterDefaults),
        commands: this.#commands,
        share: this.#share(name, fingerprint),
      });
    }
    return { backend, redisCluster, fingerprint, readyTimeoutMs: knobs.readyTimeoutMs, drainTimeoutMs: knobs.drainTimeoutMs };
  }

  /**
   * Where a Redis Cluster shares its slot maps with the other workers: keyed by its name and what
   * it was built from, so a cluster replaced with other seeds never takes its old self's maps.
   * The fingerprint holds the credentials: the key carries its SHA-256 only.
   */
  #share(name: string, fingerprint: string): TopologyShare | undefined {
    const exchange = this.#hooks.topologyExchange;
    return exchange && { exchange, key: `${name}\n${sha256Hex(new TextEncoder().encode(fingerprint))}` };
  }

  #buildTable(config: Config, entries: Map<string, Entry>): RouteTable {
    const specs = config.routes.map((route) => ({
      prefix: route.prefix,
      backend: entries.get(route.cluster)!.backend,
      removePrefix: route.removePrefix,
      caseInsensitive: route.caseInsensitive,
    }));
    return new RouteTable(specs, config.catchAll ? entries.get(config.catchAll)!.backend : null);
  }

  /** Close every cluster (shutdown): in-flight requests may finish until each one's drain timeout. */
  /** Close every backend; each drains for its `drainTimeoutMs`, but never past `deadlineMs`. */
  async closeAll(deadlineMs = Infinity): Promise<void> {
    await Promise.all([...this.#entries].map(([name, entry]) => entry.backend.close(Math.min(entry.drainTimeoutMs, deadlineMs), `slotgate is shutting down (cluster '${name}')`).catch(() => {})));
  }
}

/** Everything a backend is built from: its document and the knobs and limits it inherits. */
function fingerprintOf(document: ClusterDocument, config: Config): string {
  // Credentials included: a new password is a replacement (new scope, ready, swap, drain the old).
  return JSON.stringify([
    document,
    resolveKnobs(document, config.clusterDefaults),
    config.limits.maxBulkBytes,
    config.limits.tcpKeepAliveSeconds,
    resolveReadFrom(document, config.clusterDefaults),
    resolveAuth(document, config.clusterDefaults) ?? null,
    resolveUpstreamTls(document, config.clusterDefaults) ?? null,
  ]);
}
