/**
 * One Redis Cluster behind slotgate: its slot map, its nodes and its discovery session, all owned
 * by the cluster's scope. `dispatch` sends a request to the primary of its slot and follows MOVED
 * and ASK redirects (bounded per request); redirects and failures ask discovery for an early
 * refresh. Reads may go to the slot's replicas instead, as `readFrom` allows (./replica-reads.ts);
 * a read a replica cannot serve is retried once on the primary. Closing the scope stops discovery,
 * lets in-flight requests finish until the deadline, then cancels everything the cluster started.
 */
import type { Scope } from "../../scope/scope.ts";
import type { ReplySink, UpstreamRequest } from "../../backend/request.ts";
import { Closing } from "../../backend/closing.ts";
import { Unavailable, type Backend, type BackendCapabilities, type BackendStatus, type NodeHandle, type Redirect } from "../../backend/contract.ts";
import { isoTime } from "../../util/iso-time.ts";
import { keySlot, SLOT_COUNT } from "./slot.ts";
import { Discovery, type DiscoveryOptions } from "./discovery.ts";
import { UpstreamNode, type UpstreamNodeOptions } from "../../upstream/node.ts";
import { coverage, type SlotRange, type Topology } from "./topology.ts";
import { formatAddress } from "../../util/address.ts";
import { errorReply, ErrorKind, errorKind } from "../../resp/replies.ts";
import { parseRedirect } from "../../resp/reply-reader.ts";
import { faults } from "../../testing/faults.ts";
import { Replica, ReplicaRead, fallsAway, pickReplica, type ReadFrom } from "./replica-reads.ts";
import { CommandLearning, type CommandLearner } from "./command-learning.ts";

export interface ClusterOptions extends DiscoveryOptions, UpstreamNodeOptions {
  redirectRefreshThreshold: number;
  maxRedirects: number;
  /** Where reads go (default `primary`). */
  readFrom?: ReadFrom;
  /** The app's command table, taught the cluster's own COMMAND once its slot map is complete. */
  commands?: CommandLearner;
}

/** Counters and state shown by the admin API and checked by tests. */
export interface ClusterStats {
  moved: number;
  ask: number;
  refreshes: number;
  refreshFailures: number;
  lastRefreshAt: number | null;
  lastError: string | null;
  coveredSlots: number;
  /** Reads sent to replicas, and those of them retried on the primary. */
  replicaReads: number;
  replicaFallbacks: number;
}

const NO_REPLICAS: readonly Replica[] = [];

const SLOT_NOT_SERVED = new Unavailable("clusterDown", "Hash slot not served");
const CLUSTER_DOWN = SLOT_NOT_SERVED.reply;
const CAPABILITIES: BackendCapabilities = { publishReachesEveryNode: true };

export class Cluster implements Backend {
  readonly scope: Scope;
  readonly capabilities = CAPABILITIES;
  readonly stats: ClusterStats = { moved: 0, ask: 0, refreshes: 0, refreshFailures: 0, lastRefreshAt: null, lastError: null, coveredSlots: 0, replicaReads: 0, replicaFallbacks: 0 };
  readonly #options: ClusterOptions;
  readonly #owners: (UpstreamNode | undefined)[] = new Array(SLOT_COUNT);
  readonly #nodes = new Map<string, UpstreamNode>();
  readonly #readFrom: ReadFrom;
  /** The replicas of each slot; null when reads go to primaries only (no replica is ever opened). */
  readonly #replicasOf: (readonly Replica[])[] | null;
  /** Replica nodes by address: separate from the primaries' nodes, their connections said READONLY. */
  readonly #replicas = new Map<string, Replica>();
  /** Failures the proxy produced for reads on replicas (unreachable, lost, timed out, retired). */
  readonly #replicaFailed: ReplySink = { deliver: (read, reply) => this.#fallBack(read as ReplicaRead, reply) };
  readonly #discovery: Discovery;
  #topology: Topology = { ranges: [] };
  #redirectsSinceRefresh = 0;
  readonly #closing: Closing;
  /** Routing no longer leads here: a request that still arrives is answered this. */
  readonly #notConfigured: Unavailable;
  readonly #topologyListeners = new Set<() => void>();
  #ready!: () => void;
  /** Learning the servers' command table (null when no table was given). */
  readonly commands: CommandLearning | null;
  /** Resolves once a complete slot map has been applied. */
  readonly ready: Promise<void>;

  constructor(parent: Scope, readonly name: string, options: ClusterOptions) {
    this.scope = parent.child(`cluster ${name}`);
    this.#closing = new Closing(name);
    this.#notConfigured = new Unavailable("closing", `cluster '${name}' is not configured`);
    // Its nodes name the cluster in their log lines.
    this.#options = { ...options, cluster: name };
    this.#readFrom = options.readFrom ?? "primary";
    this.#replicasOf = this.#readFrom === "primary" ? null : new Array<readonly Replica[]>(SLOT_COUNT).fill(NO_REPLICAS);
    this.ready = new Promise((resolve) => (this.#ready = resolve));
    // Discovery lives in its own scope, torn down as soon as the cluster begins closing: a refresh
    // is not in-flight work worth draining for, and a stuck one must not hold the removal.
    const discovery = this.scope.child("discovery");
    this.scope.onDrain(() => discovery.destroy());
    // COMMAND is asked in the discovery scope too: removal cancels it like a refresh.
    this.commands = options.commands ? new CommandLearning(discovery, options.commands, options.refreshTimeoutMs) : null;
    this.#discovery = new Discovery(discovery, options, {
      knownNodes: () => [...this.#nodes.values()].map((n) => ({ host: n.host, port: n.port })),
      apply: (topology) => this.#apply(topology),
      failed: (error) => {
        this.stats.refreshFailures++;
        this.stats.lastError = error.message;
      },
    });
    this.#discovery.start();
  }

  /** The last applied slot ranges. */
  get topology(): Topology {
    return this.#topology;
  }

  get isReady(): boolean {
    return this.stats.coveredSlots === SLOT_COUNT;
  }

  /** Node addresses with the requests in flight on each and their health; replicas only when reads may use them. */
  nodes(): { address: string; pending: number; role: "primary" | "replica"; health: "up" | "down" | "suspect" }[] {
    return [
      ...[...this.#nodes.values()].map((n) => ({ address: n.address, pending: n.pendingCount, role: "primary" as const, health: n.health })),
      ...[...this.#replicas.values()].map(({ node: n }) => ({ address: n.address, pending: n.pendingCount, role: "replica" as const, health: n.health })),
    ];
  }

  /** Send a request to the primary that owns its slot, or a read to one of its replicas. */
  dispatch(request: UpstreamRequest): void {
    // A cluster being removed or replaced takes nothing new (routing no longer leads here).
    if (!this.scope.isOpen) return request.sink.deliver(request, this.#notConfigured.reply);
    const node = this.#owners[request.slot];
    if (!node) return request.sink.deliver(request, CLUSTER_DOWN);
    if (request.readOnly && this.#replicasOf) {
      const replica = pickReplica(this.#readFrom, this.#replicasOf[request.slot]!, request.affinity);
      if (replica) {
        this.stats.replicaReads++;
        return replica.node.send(new ReplicaRead(request, replica, this.#replicaFailed));
      }
    }
    node.send(request);
  }

  shardOf(key: Uint8Array): number {
    return keySlot(key);
  }

  /** A slot owned by a random primary, for keyless commands any node can answer. */
  anyShard(): number {
    const ranges = this.#topology.ranges;
    if (ranges.length === 0) return 0;
    const range = ranges[Math.floor(this.scope.runtime.random() * ranges.length)]!;
    return range.start;
  }

  nodeFor(shard: number): UpstreamNode | Unavailable {
    if (!this.scope.isOpen) return this.#closing.refusal;
    return this.#owners[shard] ?? SLOT_NOT_SERVED;
  }

  /** The lowest slot of each primary, ascending (a MOVED already learnt counts). */
  primaries(): number[] {
    const seen = new Set<UpstreamNode>();
    const shards: number[] = [];
    for (let slot = 0; slot < SLOT_COUNT; slot++) {
      const node = this.#owners[slot];
      if (node === undefined || seen.has(node)) continue;
      seen.add(node);
      shards.push(slot);
    }
    return shards;
  }

  redirect(frame: Uint8Array, from: NodeHandle, followed = 0): Redirect | Unavailable | null {
    const kind = errorKind(frame);
    const target = kind === ErrorKind.Moved || kind === ErrorKind.Ask ? parseRedirect(frame) : null;
    if (!target) return null;
    if (!this.scope.isOpen) return this.#closing.refusal;
    if (followed > this.#options.maxRedirects) return new Unavailable("limit", tooManyRedirects(frame));
    return { node: this.#learnRedirect(from, target, kind), slot: target.slot, ask: kind === ErrorKind.Ask };
  }

  onTopology(listener: () => void): () => void {
    this.#topologyListeners.add(listener);
    return () => void this.#topologyListeners.delete(listener);
  }

  /** Ask for an early topology refresh. */
  requestRefresh(): void {
    this.#discovery.requestRefresh();
  }

  #onReply(node: UpstreamNode, request: UpstreamRequest, frame: Uint8Array): void {
    const kind = errorKind(frame);
    if (kind === ErrorKind.Moved || kind === ErrorKind.Ask) {
      this.#redirect(node, request, frame, kind);
      return;
    }
    if (kind === ErrorKind.ClusterDown) this.requestRefresh();
    request.sink.deliver(request, frame);
  }

  /** A replica answered a read: redirects are followed, a replica that cannot serve sends it to the primary. */
  #onReplicaReply(read: ReplicaRead, frame: Uint8Array): void {
    const { original, replica } = read;
    const kind = errorKind(frame);
    if (kind === ErrorKind.Moved || kind === ErrorKind.Ask) {
      // The slot left this replica's primary: the slot map is stale.
      this.requestRefresh();
      this.#redirect(replica.node, original, frame, kind);
      return;
    }
    if (fallsAway(frame)) {
      if (kind === ErrorKind.ClusterDown) this.requestRefresh();
      this.#fallBack(read, frame);
      return;
    }
    replica.served();
    original.sink.deliver(original, frame);
  }

  /** A read failed on its replica: avoid the replica for a while, and retry the read once on the primary. */
  #fallBack(read: ReplicaRead, failure: Uint8Array): void {
    const { original, replica } = read;
    replica.failed();
    this.stats.replicaFallbacks++;
    // A closing cluster sends nothing more; the failure says why (e.g. "cluster 'a' was removed").
    if (!this.scope.isOpen) return original.sink.deliver(original, failure);
    const primary = this.#owners[original.slot];
    if (primary) primary.send(original);
    else original.sink.deliver(original, CLUSTER_DOWN);
  }

  #redirect(from: UpstreamNode, request: UpstreamRequest, frame: Uint8Array, kind: ErrorKind): void {
    const target = parseRedirect(frame);
    if (!target || ++request.redirects > this.#options.maxRedirects) {
      request.sink.deliver(request, target ? errorReply(tooManyRedirects(frame)) : frame);
      return;
    }
    // A closing cluster opens no node, and every node it has refuses new work: a redirect that
    // arrives while it drains ends here (opening a node would throw, and the request would never
    // be answered).
    if (!this.scope.isOpen) {
      request.sink.deliver(request, this.#closing.refusal.reply);
      return;
    }
    if (kind === ErrorKind.Ask && faults.ignoreAsk) return request.sink.deliver(request, frame); // test-only fault
    const node = this.#learnRedirect(from, target, kind);
    request.asking = kind === ErrorKind.Ask;
    request.slot = target.slot;
    node.send(request);
    // ASKING applies to the one send above only.
    request.asking = false;
  }

  /** Count a redirect, believe a MOVED at once, refresh after enough of them; the node to follow to. */
  #learnRedirect(from: NodeHandle, target: { host: string; port: number; slot: number }, kind: ErrorKind): UpstreamNode {
    const node = this.#node(target.host === "" ? from.host : target.host, target.port);
    if (kind === ErrorKind.Moved) {
      this.stats.moved++;
      // Redis promises the slot now lives there: route the slot's next requests without waiting.
      this.#owners[target.slot] = node;
    } else {
      this.stats.ask++;
    }
    if (++this.#redirectsSinceRefresh >= this.#options.redirectRefreshThreshold && this.#options.redirectRefreshThreshold > 0) {
      this.#redirectsSinceRefresh = 0;
      this.requestRefresh();
    }
    return node;
  }

  #node(host: string, port: number): UpstreamNode {
    const address = formatAddress(host, port);
    let node = this.#nodes.get(address);
    if (!node) {
      node = new UpstreamNode(
        this.scope,
        host,
        port,
        this.#options,
        {
          reply: (n, request, frame) => this.#onReply(n, request, frame),
          failure: () => this.requestRefresh(),
        },
        () => this.#closing.reason,
      );
      this.#nodes.set(address, node);
    }
    return node;
  }

  #replica(host: string, port: number): Replica {
    const address = formatAddress(host, port);
    let replica = this.#replicas.get(address);
    if (!replica) {
      const node = new UpstreamNode(
        this.scope,
        host,
        port,
        { ...this.#options, readOnly: true },
        {
          reply: (_node, request, frame) => this.#onReplicaReply(request as ReplicaRead, frame),
          failure: () => this.requestRefresh(),
        },
        () => this.#closing.reason,
      );
      replica = new Replica(node);
      this.#replicas.set(address, replica);
    }
    return replica;
  }

  /**
   * The replicas of each slot from a new topology. A node listed as a primary is never used as a
   * replica (one promoted by a failover serves through its primary node from now on); replicas
   * that are no longer listed are retired as primaries are.
   */
  #applyReplicas(topology: Topology): void {
    const slots = this.#replicasOf;
    if (!slots) return;
    const primaries = new Set(topology.ranges.map((range) => formatAddress(range.primary.host, range.primary.port)));
    const used = new Set<Replica>();
    slots.fill(NO_REPLICAS);
    for (const range of topology.ranges) {
      const replicas: Replica[] = [];
      for (const address of range.replicas) {
        if (primaries.has(formatAddress(address.host, address.port))) continue;
        const replica = this.#replica(address.host, address.port);
        replicas.push(replica);
        used.add(replica);
      }
      if (replicas.length > 0) for (let slot = range.start; slot <= range.end; slot++) slots[slot] = replicas;
    }
    for (const [address, replica] of this.#replicas) {
      if (used.has(replica)) continue;
      this.#replicas.delete(address);
      // Reads in flight may still finish; those cut off at teardown are retried on the primary.
      this.scope.spawn(`retire replica ${address}`, () => replica.node.close(this.#options.opTimeoutMs));
    }
  }

  #apply(topology: Topology): void {
    this.stats.refreshes++;
    this.stats.lastRefreshAt = this.scope.runtime.wallClock();
    this.stats.lastError = null;
    this.#redirectsSinceRefresh = 0;
    const owners: (UpstreamNode | undefined)[] = new Array(SLOT_COUNT);
    const used = new Set<UpstreamNode>();
    for (const range of topology.ranges) {
      const node = this.#node(range.primary.host, range.primary.port);
      used.add(node);
      for (let slot = range.start; slot <= range.end; slot++) owners[slot] = node;
    }
    for (let slot = 0; slot < SLOT_COUNT; slot++) this.#owners[slot] = owners[slot];
    this.#topology = topology;
    this.stats.coveredSlots = coverage(topology);
    for (const [address, node] of this.#nodes) {
      if (used.has(node)) continue;
      this.#nodes.delete(address);
      // In-flight requests on a node that left the topology may still finish.
      this.scope.spawn(`retire ${address}`, () => node.close(this.#options.opTimeoutMs));
    }
    this.#applyReplicas(topology);
    if (this.isReady) {
      this.#ready();
      this.commands?.afterTopology(topology.ranges.map((range) => range.primary));
    }
    for (const listener of this.#topologyListeners) listener();
  }

  /** What the admin API shows. */
  status(): BackendStatus {
    const stats = this.stats;
    return {
      type: "cluster",
      ready: this.isReady,
      coveredSlots: stats.coveredSlots,
      nodes: this.nodes(),
      lastRefreshAt: stats.lastRefreshAt === null ? null : isoTime(stats.lastRefreshAt),
      lastError: stats.lastError,
      redirects: { moved: stats.moved, ask: stats.ask },
      refreshes: stats.refreshes,
      refreshFailures: stats.refreshFailures,
      scope: this.scope.inspect(),
    };
  }

  /**
   * Close the cluster: discovery stops at once, in-flight requests may finish until `deadlineMs`,
   * then everything is cancelled and requests still pending are answered `-ERR <reason>`.
   */
  close(deadlineMs: number, reason = `cluster '${this.name}' was removed`): Promise<void> {
    this.#closing.begin(reason);
    return this.scope.close({ deadlineMs });
  }

  /** Close with no grace: what is pending is answered `-ERR <reason>` now. */
  destroy(reason = `cluster '${this.name}' was removed`): Promise<void> {
    this.#closing.begin(reason);
    return this.scope.destroy();
  }
}

export type { SlotRange };

function tooManyRedirects(frame: Uint8Array): string {
  return `too many cluster redirections (last: ${new TextDecoder().decode(frame.subarray(1, frame.length - 2))})`;
}
