/**
 * Throwaway Redis Clusters (and plain Redis servers) on loopback, for tests, benchmarks and
 * `npm start`. Works unchanged on Node (tsx), Bun and Deno: it only uses node:child_process,
 * node:net, node:fs, node:os and node:path. Everything started is killed and its temp dir removed
 * by `stop()`, by a failed start, and, as a last resort, when the process exits.
 */
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SLOT_COUNT, coveredSlots, ownerOfSlot, parseClusterNodes, parseInfo, slotSignature, type ViewEntry } from "./cluster-view.ts";
import { freePorts } from "./free-port.ts";
import { migrateSlot, type MigrateSlotOptions } from "./migrate-slot.ts";
import {
  PortInUseError,
  killRedis,
  requireRedisBinaries,
  respawnRedis,
  tempDirCleanup,
  runTool,
  sleep,
  spawnRedis,
  type RedisProcess,
} from "./redis-process.ts";
import { replyToString, sendCommand, useTlsFor, type RespValue } from "./resp-client.ts";

export { RedisMissingError, liveRedisPids } from "./redis-process.ts";
export { RespReplyError, type RespValue } from "./resp-client.ts";
export { startStandaloneRedis, type StandaloneRedis, type StandaloneOptions } from "./standalone-redis.ts";
export { migrateSlot, type MigrateSlotOptions } from "./migrate-slot.ts";

/** Options for {@link startLocalCluster}. */
export interface LocalClusterOptions {
  /** Number of primaries; Redis Cluster (and redis-cli) needs at least 3. Default 3. */
  primaries?: number;
  /** Replicas per primary. Default 1. */
  replicasPerPrimary?: number;
  /** Loopback address to bind and announce. Default "127.0.0.1". */
  host?: string;
  /** Extra redis.conf lines for every node; they come last, so they override the defaults. */
  extraConfig?: string[];
  /** Aborting cancels a start in progress (which then cleans up and rejects with the reason). */
  signal?: AbortSignal;
  /** Upper bound for each wait (start, failover, restart). Default 60 000 ms. */
  timeoutMs?: number;
  /** Parent of the cluster's temp dir. Default `os.tmpdir()`. */
  tmpRoot?: string;
  /** Start with authentication (default: none, every client is the passwordless default user). */
  auth?: LocalClusterAuth;
  /**
   * TLS only: every node has `port 0` and a `tls-port` (the port in `seeds`), and speaks TLS on
   * its cluster bus and to its primary too. Clients need not present a certificate
   * (`tls-auth-clients optional`); the nodes present `certFile` to each other. Default: plain TCP.
   */
  tls?: LocalClusterTls;
}

/** PEM files of a TLS local cluster; `certFile` must be valid for the host and for client auth. */
export interface LocalClusterTls {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** The name the helpers here check the nodes' certificate against (default: the address). */
  servername?: string;
}

/**
 * A cluster that wants credentials: `requirepass` (the default user's password) and `masterauth`
 * (replicas sync with it) on every node, and optionally one ACL user allowed everything, with one
 * or more passwords (`user NAME on >p1 >p2 ~* &* +@all`). The helper's own commands and
 * `redis-cli --cluster create` authenticate as the default user (`-a`).
 */
export interface LocalClusterAuth {
  password: string;
  user?: { name: string; passwords: string[] };
}

/** One redis-server of the cluster. `pid` changes when the node is restarted. */
export interface ClusterNode {
  readonly host: string;
  readonly port: number;
  readonly busPort: number;
  readonly pid: number;
  /** The node's own directory (redis.conf, nodes.conf, redis.log). */
  readonly dir: string;
  /** Cluster node id (40 hex chars). */
  readonly id: string;
  /** False after `killNode` until `restartNode`. */
  readonly running: boolean;
}

/** A running local cluster. See {@link startLocalCluster}. */
export interface LocalCluster {
  readonly host: string;
  readonly nodes: readonly ClusterNode[];
  /** "host:port" of every node, for a proxy's seed list. */
  readonly seeds: string[];
  /** The credentials it was started with, if any. */
  readonly auth: LocalClusterAuth | undefined;
  /** Temp dir holding one sub-dir per node; removed by `stop()`. */
  readonly dir: string;
  /** Running nodes whose live ROLE is master. */
  primaries(): Promise<ClusterNode[]>;
  /** Running nodes whose live ROLE is slave. */
  replicas(): Promise<ClusterNode[]>;
  /** Send one command to a node; the reply rendered as text (arrays: one element per line). Error replies reject. */
  command(port: number, ...args: Array<string | number>): Promise<string>;
  /** Like `command`, but resolves with the decoded reply. */
  reply(port: number, ...args: Array<string | number>): Promise<RespValue>;
  /** The node owning `slot`, according to a running node's CLUSTER NODES. */
  ownerOfSlot(slot: number): Promise<ClusterNode>;
  /** SIGKILL a node and wait for it to exit. */
  killNode(port: number): Promise<void>;
  /** Start a node again (killing it first if running) and wait until the cluster is stable with it. */
  restartNode(port: number): Promise<void>;
  /** Wait until a replica of the given (dead) primary owns its slots and the cluster is stable. Resolves with the new primary. */
  waitForFailover(deadPrimaryPort: number): Promise<ClusterNode>;
  /** Wait until every running node says cluster_state:ok, agrees on slots and replicas, and replicas are in sync. */
  waitForStable(): Promise<void>;
  /** Move `slot` with its keys from one primary to another, the way redis-cli --cluster reshard does. */
  migrateSlot(slot: number, fromPort: number, toPort: number, options?: MigrateSlotOptions): Promise<void>;
  /** Kill every node, wait for them to exit, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

class Node implements ClusterNode {
  id = "";
  constructor(
    public proc: RedisProcess,
    readonly busPort: number,
  ) {}
  get host() {
    return this.proc.host;
  }
  get port() {
    return this.proc.port;
  }
  get dir() {
    return this.proc.dir;
  }
  get pid() {
    return this.proc.pid;
  }
  get running() {
    return this.proc.running();
  }
}

/**
 * Start a Redis Cluster of `primaries * (1 + replicasPerPrimary)` redis-server processes on free
 * loopback ports, create it with `redis-cli --cluster create`, and resolve once every node reports
 * cluster_state:ok with the same slot map and every replica is in sync. Throws RedisMissingError
 * when Redis is not installed; on any failure, kills what it started and removes its temp dir.
 */
export async function startLocalCluster(options: LocalClusterOptions = {}): Promise<LocalCluster> {
  const primaries = options.primaries ?? 3;
  const replicasPerPrimary = options.replicasPerPrimary ?? 1;
  if (!Number.isInteger(primaries) || primaries < 3) {
    throw new RangeError(`a Redis Cluster needs at least 3 primaries (got ${primaries})`);
  }
  if (!Number.isInteger(replicasPerPrimary) || replicasPerPrimary < 0) {
    throw new RangeError(`replicasPerPrimary must be a non-negative integer (got ${replicasPerPrimary})`);
  }
  const binaries = requireRedisBinaries();
  const host = options.host ?? "127.0.0.1";
  const dir = mkdtempSync(join(options.tmpRoot ?? tmpdir(), "slotgate-cluster-"));
  const cluster = new Cluster(host, dir, binaries.server, options);
  try {
    await cluster.spawnAll(primaries * (1 + replicasPerPrimary), [...authConfig(options.auth), ...(options.extraConfig ?? [])]);
    const cliAuth = options.auth ? ["-a", options.auth.password, "--no-auth-warning"] : [];
    const tlsArgs = options.tls ? ["--tls", "--cacert", options.tls.caFile, "--cert", options.tls.certFile, "--key", options.tls.keyFile] : [];
    const created = await runTool(
      binaries.cli,
      [...cliAuth, ...tlsArgs, "--cluster", "create", ...cluster.seeds, "--cluster-replicas", String(replicasPerPrimary), "--cluster-yes"],
      { timeoutMs: cluster.timeoutMs, signal: options.signal },
    );
    if (created.code !== 0) throw new Error(`redis-cli --cluster create failed (exit ${created.code}):\n${created.output}`);
    await cluster.waitForStable();
    cluster.startSignal = undefined; // the signal only governs startup
    return cluster;
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

class Cluster implements LocalCluster {
  readonly nodes: Node[] = [];
  readonly timeoutMs: number;
  /** The view seen by the last successful stability check; failover uses it to know who owned what. */
  private lastView: ViewEntry[] = [];
  private stopping: Promise<void> | undefined;
  private readonly removeDir: () => void;
  private readonly tls: LocalClusterTls | undefined;
  /** Cancels waits while starting; cleared once started. */
  startSignal: AbortSignal | undefined;

  constructor(
    readonly host: string,
    readonly dir: string,
    private readonly serverPath: string,
    private readonly options: LocalClusterOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.startSignal = options.signal;
    this.removeDir = tempDirCleanup(dir);
    this.tls = options.tls;
  }

  /** Config lines that move a node to TLS only, on `port` (empty for a plain cluster). */
  private tlsConfig(port: number): string[] {
    if (!this.tls) return [];
    const { caFile, certFile, keyFile, servername } = this.tls;
    // The helpers here (PING at start, stability checks, migrateSlot) reach the port over TLS too.
    useTlsFor(this.host, port, { ca: readFileSync(caFile, "utf8"), cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8"), servername });
    return [
      "port 0",
      `tls-port ${port}`,
      `tls-cert-file ${certFile}`,
      `tls-key-file ${keyFile}`,
      `tls-ca-cert-file ${caFile}`,
      "tls-auth-clients optional",
      "tls-cluster yes",
      "tls-replication yes",
    ];
  }

  get seeds(): string[] {
    return this.nodes.map((node) => `${node.host}:${node.port}`);
  }

  /** Start `count` cluster-enabled servers in parallel; a port stolen meanwhile is retried with new ones. */
  async spawnAll(count: number, extraConfig: string[]): Promise<void> {
    const ports = await freePorts(count * 2, this.host);
    const results = await Promise.allSettled(
      Array.from({ length: count }, (_, i) => this.spawnNode(i, ports[2 * i]!, ports[2 * i + 1]!, extraConfig)),
    );
    const failed = results.find((result) => result.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    // Keep node order stable (node-0, node-1, ...), whatever order they came up in.
    this.nodes.sort((a, b) => a.dir.localeCompare(b.dir, "en", { numeric: true }));
  }

  private async spawnNode(index: number, port: number, busPort: number, extraConfig: string[]): Promise<void> {
    const nodeDir = join(this.dir, `node-${index}`);
    mkdirSync(nodeDir);
    for (let attempt = 1; ; attempt++) {
      try {
        const proc = await spawnRedis({
          serverPath: this.serverPath,
          host: this.host,
          port,
          dir: nodeDir,
          signal: this.startSignal,
          readyTimeoutMs: this.timeoutMs,
          config: [
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            // Fast failure detection for tests: failover completes in ~2-3 s.
            "cluster-node-timeout 1000",
            // Explicit bus port: port+10000 may be taken or above 65535.
            `cluster-port ${busPort}`,
            // A replica may always take over, even if its link to the primary was down a while.
            "cluster-replica-validity-factor 0",
            ...this.tlsConfig(port),
            ...extraConfig,
          ],
        });
        this.nodes.push(new Node(proc, busPort));
        return;
      } catch (error) {
        if (!(error instanceof PortInUseError) || attempt >= 5) throw error;
        [port, busPort] = (await freePorts(2, this.host)) as [number, number];
      }
    }
  }

  private node(port: number): Node {
    const node = this.nodes.find((candidate) => candidate.port === port);
    if (node === undefined) throw new Error(`no node of this cluster listens on port ${port}`);
    return node;
  }

  get auth(): LocalClusterAuth | undefined {
    return this.options.auth;
  }

  reply(port: number, ...args: Array<string | number>): Promise<RespValue> {
    return sendCommand(this.host, port, args, this.options.auth ? { auth: { password: this.options.auth.password } } : {});
  }

  async command(port: number, ...args: Array<string | number>): Promise<string> {
    return replyToString(await this.reply(port, ...args));
  }

  async primaries(): Promise<ClusterNode[]> {
    return this.nodesWithRole("master");
  }

  async replicas(): Promise<ClusterNode[]> {
    return this.nodesWithRole("slave");
  }

  private async nodesWithRole(role: string): Promise<ClusterNode[]> {
    const running = this.nodes.filter((node) => node.running);
    const roles = await Promise.all(
      running.map((node) => this.reply(node.port, "ROLE").then((reply) => (reply as RespValue[])[0], () => undefined)),
    );
    return running.filter((_, i) => roles[i] === role);
  }

  async ownerOfSlot(slot: number): Promise<ClusterNode> {
    const from = this.nodes.find((node) => node.running);
    if (from === undefined) throw new Error("no node is running");
    const port = ownerOfSlot(parseClusterNodes(await this.command(from.port, "CLUSTER", "NODES")), slot);
    if (port === undefined) throw new Error(`slot ${slot} is not assigned`);
    return this.node(port);
  }

  async killNode(port: number): Promise<void> {
    await killRedis(this.node(port).proc);
  }

  async restartNode(port: number): Promise<void> {
    const node = this.node(port);
    await killRedis(node.proc);
    node.proc = await respawnRedis(this.serverPath, node.proc, { readyTimeoutMs: this.timeoutMs });
    await this.waitForStable();
  }

  async waitForFailover(deadPrimaryPort: number): Promise<ClusterNode> {
    const dead = this.node(deadPrimaryPort);
    const former = this.lastView.find((entry) => entry.port === deadPrimaryPort);
    const slot = former?.slots[0]?.[0];
    if (slot === undefined) throw new Error(`port ${deadPrimaryPort} owned no slots when the cluster was last stable`);
    const formerReplicas = new Set(this.lastView.filter((e) => e.primaryId === dead.id).map((e) => e.port));
    if (formerReplicas.size === 0) throw new Error(`primary ${deadPrimaryPort} had no replica that could take over`);
    let promoted: number | undefined;
    await this.waitUntil(`failover of primary ${deadPrimaryPort}`, async () => {
      const reason = await this.stabilityProblem();
      if (reason !== null) return reason;
      promoted = ownerOfSlot(this.lastView, slot);
      return promoted !== undefined && formerReplicas.has(promoted) ? null : `slot ${slot} is still owned by ${promoted}`;
    });
    return this.node(promoted!);
  }

  async waitForStable(): Promise<void> {
    await this.waitUntil("cluster to become stable", () => this.stabilityProblem());
  }

  migrateSlot(slot: number, fromPort: number, toPort: number, options?: MigrateSlotOptions): Promise<void> {
    return migrateSlot(this, slot, fromPort, toPort, options);
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all(this.nodes.map((node) => killRedis(node.proc)));
      for (const node of this.nodes) useTlsFor(this.host, node.port, undefined);
      this.removeDir();
    })();
    return this.stopping;
  }

  /** Poll `check` (null = done, string = why not yet) until done or `timeoutMs` passes. */
  private async waitUntil(what: string, check: () => Promise<string | null>): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      let reason: string | null;
      try {
        reason = await check();
      } catch (error) {
        reason = (error as Error).message;
      }
      if (reason === null) return;
      if (Date.now() > deadline) throw new Error(`timed out after ${this.timeoutMs} ms waiting for ${what}: ${reason}`);
      await sleep(100, this.startSignal);
    }
  }

  /** Why the cluster is not stable yet, or null when it is (and then `lastView` is refreshed). */
  private async stabilityProblem(): Promise<string | null> {
    const running = this.nodes.filter((node) => node.running);
    const livePorts = new Set(running.map((node) => node.port));
    const probes = await Promise.all(
      running.map(async (node) => ({
        node,
        info: parseInfo(await this.command(node.port, "CLUSTER", "INFO")),
        view: parseClusterNodes(await this.command(node.port, "CLUSTER", "NODES")),
        role: (await this.reply(node.port, "ROLE")) as RespValue[],
      })),
    );
    let expected: string | undefined;
    for (const { node, info, view, role } of probes) {
      if (info.get("cluster_state") !== "ok") return `${node.port} says cluster_state:${info.get("cluster_state")}`;
      if (view.length !== this.nodes.length) return `${node.port} knows ${view.length} of ${this.nodes.length} nodes`;
      const covered = coveredSlots(view);
      if (covered !== SLOT_COUNT) return `${node.port} sees ${covered} of ${SLOT_COUNT} slots assigned`;
      const self = view.find((entry) => entry.flags.includes("myself"));
      if (self !== undefined) node.id = self.id;
      for (const entry of view) {
        const bad = entry.flags.find((flag) => ["fail", "fail?", "handshake", "noaddr"].includes(flag));
        if (livePorts.has(entry.port) && bad !== undefined) return `${node.port} flags ${entry.port} as ${bad}`;
      }
      if (role[0] === "slave" && role[3] !== "connected") return `replica ${node.port} link is ${role[3]}`;
      const signature = topologySignature(view, livePorts);
      expected ??= signature;
      if (signature !== expected) return `${node.port} disagrees: ${signature} vs ${expected}`;
    }
    if (probes.length > 0) this.lastView = probes[0]!.view;
    return null;
  }
}

/** redis.conf lines for `auth`: the default user's password, replication with it, the ACL user. */
function authConfig(auth: LocalClusterAuth | undefined): string[] {
  if (auth === undefined) return [];
  const lines = [`requirepass ${auth.password}`, `masterauth ${auth.password}`];
  if (auth.user) lines.push(`user ${auth.user.name} on ${auth.user.passwords.map((p) => `>${p}`).join(" ")} ~* &* +@all`);
  return lines;
}

/** Slot map plus who replicates whom among running nodes: equal strings mean agreeing views. */
function topologySignature(view: ViewEntry[], livePorts: Set<number>): string {
  const portOf = new Map(view.map((entry) => [entry.id, entry.port]));
  const replicas = view
    .filter((entry) => livePorts.has(entry.port) && entry.primaryId !== undefined)
    .map((entry) => `${entry.port}>${portOf.get(entry.primaryId!)}`)
    .sort();
  return `${slotSignature(view)} | ${replicas.join(" ")}`;
}
