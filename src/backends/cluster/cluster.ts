/**
 * One Redis Cluster behind slotgate: its slot map, its nodes and its discovery session, all owned
 * by the cluster's scope. `dispatch` sends a request to the primary of its slot and follows MOVED
 * and ASK redirects (bounded per request); redirects and failures ask discovery for an early
 * refresh. Reads may go to the slot's replicas instead, as `readFrom` allows (./replica-reads.ts);
 * a read a replica cannot serve is retried once on the primary. Closing the scope stops discovery,
 * lets in-flight requests finish until the deadline, then cancels everything the cluster started.
 *
 * A fault stays where it happened:
 * - a well-formed but partial `CLUSTER SLOTS` (a node that restarted, or is cut off, reports only
 *   what it knows) does not wipe good routes: a slot it leaves without an owner keeps the one it
 *   had until a second node's map leaves it uncovered too (./partial-maps.ts);
 * - a MOVED or ASK to a node outside the slot map opens connections there only for
 *   `maxUnknownNodes` such nodes per applied map (Envoy's `max_upstream_unknown_connections`);
 *   beyond, the redirect is not followed: the client gets an error saying its command was not
 *   applied, and the slot map is refreshed;
 * - a node that fails or hangs is marked down or suspect by its `UpstreamNode`;
 * - refused credentials (`auth`) leave the cluster unready while discovery is refused, its
 *   clients reading `-ERR upstream authentication failed for cluster 'NAME'`, each node logged once.
 * Each of these is logged once with its cause; failed refreshes are rate-limited (`LogLimiter`),
 * their count said when they stop (`refresh recovered failedRounds=N`). So are the cluster's
 * transitions: ready or not, a slot map that changed (how many slots moved), a failover seen.
 *
 * With several workers (`share`), a slot map another worker learned is applied exactly as one of
 * this cluster's own refreshes, partial-map judgement included, and counted apart (`sharedApplied`).
 *
 * Why one file of ~470 lines: the slot owners, the nodes, the redirect counts and the stats are
 * one state, changed by dispatch, redirects and each applied map together; what has a seam of its
 * own lives beside it (discovery, partial maps, replica reads, command learning).
 */
import type { Scope } from "../../scope/scope.ts";
import { faultIsolated, type ReplySink, type UpstreamRequest } from "../../backend/request.ts";
import { Closing } from "../../backend/closing.ts";
import { Unavailable, type Backend, type BackendCapabilities, type BackendStatus, type NodeHandle, type Redirect } from "../../backend/contract.ts";
import { isoTime } from "../../util/iso-time.ts";
import { LogLimiter, SILENT_LOGGER, type Logger } from "../../log.ts";
import { keySlot, SLOT_COUNT } from "./slot.ts";
import { Discovery, type DiscoveryOptions, type RefreshError, type TopologySource } from "./discovery.ts";
import { UpstreamNode, type UpstreamNodeOptions } from "../../upstream/node.ts";
import { coverage, type SlotRange, type Topology } from "./topology.ts";
import { PartialMaps } from "./partial-maps.ts";
import { mapChanges, primaryCount } from "./map-changes.ts";
import { formatAddress } from "../../util/address.ts";
import { errorReply, ErrorKind, errorKind } from "../../resp/replies.ts";
import { parseRedirect } from "../../resp/reply-reader.ts";
import { faults } from "../../testing/faults.ts";
import { ReplicaRead, ReplicaSet, fallsAway, type ReadFrom } from "./replica-reads.ts";
import { CommandLearning, type CommandLearner } from "./command-learning.ts";
import { AuthFailures, authRefusal } from "../../backend/auth.ts";

export interface ClusterOptions extends DiscoveryOptions, UpstreamNodeOptions {
  redirectRefreshThreshold: number;
  maxRedirects: number;
  /** Nodes outside the applied slot map that MOVED/ASK may open connections to, until the next map. */
  maxUnknownNodes: number;
  /** Where reads go (default `primary`). */
  readFrom?: ReadFrom;
  /** The app's command table, taught the cluster's own COMMAND once its slot map is complete. */
  commands?: CommandLearner;
}

/** Counters and state shown by the admin API and checked by tests. */
export interface ClusterStats {
  moved: number;
  ask: number;
  /** Slot maps this worker's own discovery fetched and applied. */
  refreshes: number;
  refreshFailures: number;
  /** Slot maps another worker learned and this one applied (`share`): not counted in `refreshes`. */
  sharedApplied: number;
  /** Shared slot maps ignored because they were malformed. */
  sharedIgnored: number;
  lastRefreshAt: number | null;
  lastError: string | null;
  coveredSlots: number;
  /** Reads sent to replicas, and those of them retried on the primary. */
  replicaReads: number;
  replicaFallbacks: number;
  /** Partial slot maps whose uncovered slots kept their previous owner. */
  partialMapsRefused: number;
  /** Slots kept now from the previous map, until a second node agrees they have no owner. */
  keptSlots: number;
  /** The node whose partial map is waiting for a second opinion. */
  keptSlotsFrom: string | null;
  /** Redirects not followed because `maxUnknownNodes` nodes outside the slot map were open. */
  unknownRedirectsRefused: number;
  /** Nodes opened for redirects outside the slot map since it was applied. */
  unknownNodes: number;
}


const SLOT_NOT_SERVED = new Unavailable("clusterDown", "Hash slot not served");
const CLUSTER_DOWN = SLOT_NOT_SERVED.reply;
const CAPABILITIES: BackendCapabilities = { publishReachesEveryNode: true };

export class Cluster implements Backend {
  readonly scope: Scope;
  readonly capabilities = CAPABILITIES;
  readonly stats: ClusterStats = {
    moved: 0, ask: 0, refreshes: 0, refreshFailures: 0, sharedApplied: 0, sharedIgnored: 0, lastRefreshAt: null, lastError: null, coveredSlots: 0, replicaReads: 0, replicaFallbacks: 0,
    partialMapsRefused: 0, keptSlots: 0, keptSlotsFrom: null, unknownRedirectsRefused: 0, unknownNodes: 0,
  };
  readonly #options: ClusterOptions;
  readonly #log: Logger;
  readonly #owners: (UpstreamNode | undefined)[] = new Array(SLOT_COUNT);
  readonly #nodes = new Map<string, UpstreamNode>();
  /** Where reads may go instead of the primary (./replica-reads.ts). */
  readonly #replicas: ReplicaSet;
  /** Failures the proxy produced for reads on replicas (unreachable, lost, timed out, retired). */
  readonly #replicaFailed: ReplySink = {
    deliver: (read, reply) => this.#fallBack(read as ReplicaRead, reply),
    deliveryFailed: (read, error) => faultIsolated((read as ReplicaRead).original, error),
  };
  readonly #discovery: Discovery;
  #topology: Topology = { ranges: [] };
  /** Addresses the applied map names (primaries and replicas): a redirect there is no stranger. */
  #known = new Set<string>();
  /** Slots a partial map left out, kept until a second node agrees. */
  readonly #partialMaps = new PartialMaps();
  /** The refusal of unknown redirects was logged since the map was applied. */
  #unknownLogged = false;
  /** Cause of the failing refreshes in a row (null: the last one succeeded), and how many. */
  #failing: { cause: string; rounds: number } | null = null;
  /** The applied map's routes in short, to log a map only when it changes ("": none yet). */
  #mapSignature = "";
  /** Readiness as last logged, to log its transitions only. */
  #loggedReady = false;
  /** Lines an event may repeat without end (failed refreshes) go through it. */
  readonly #limited: LogLimiter;
  #redirectsSinceRefresh = 0;
  /** `host:port` → the hostname the node announced in CLUSTER SLOTS (TLS checks its certificate against it). */
  readonly #hostnames = new Map<string, string>();
  readonly #closing: Closing;
  /** Routing no longer leads here: a request that still arrives is answered this. */
  readonly #notConfigured: Unavailable;
  readonly #topologyListeners = new Set<() => void>();
  /** Nodes that refused the credentials, logged once each. */
  readonly #authFailures: AuthFailures;
  /** The last refresh was refused the credentials: what a request with no node to go to reads. */
  #authFailing: Unavailable | null = null;
  #ready!: () => void;
  /** Learning the servers' command table (null when no table was given). */
  readonly commands: CommandLearning | null;
  /** Resolves once a complete slot map has been applied. */
  readonly ready: Promise<void>;

  constructor(parent: Scope, readonly name: string, options: ClusterOptions) {
    this.scope = parent.child(`cluster ${name}`);
    this.#closing = new Closing(name);
    this.#notConfigured = new Unavailable("closing", `cluster '${name}' is not configured`);
    this.#log = options.log ?? SILENT_LOGGER;
    this.#limited = new LogLimiter(this.scope, this.#log);
    this.#authFailures = new AuthFailures(name, this.#log);
    // Its nodes name the cluster in their log lines, and log refused credentials once per node.
    this.#options = { ...options, cluster: name, authFailures: this.#authFailures };
    this.#replicas = new ReplicaSet(options.readFrom ?? "primary", {
      open: (host, port) => this.#replicaNode(host, port),
      // Reads in flight may still finish; those cut off at teardown are retried on the primary.
      retire: (address, node) => this.scope.spawn(`retire replica ${address}`, () => node.close(this.#options.opTimeoutMs)),
    });
    this.ready = new Promise((resolve) => (this.#ready = resolve));
    // Discovery lives in its own scope, torn down as soon as the cluster begins closing: a refresh
    // is not in-flight work worth draining for, and a stuck one must not hold the removal.
    const discovery = this.scope.child("discovery");
    this.scope.onDrain(() => discovery.destroy());
    // COMMAND is asked in the discovery scope too: removal cancels it like a refresh.
    this.commands = options.commands ? new CommandLearning(discovery, options.commands, options.refreshTimeoutMs, options.auth, options.tls) : null;
    this.#discovery = new Discovery(discovery, options, {
      knownNodes: () => [...this.#nodes.values()].map((n) => ({ host: n.host, port: n.port, hostname: this.#hostnames.get(n.address) })),
      apply: (topology, from, source) => this.#apply(topology, from, source),
      failed: (error) => this.#refreshFailed(error),
      authFailed: (error) => this.#authFailures.failed(error.address, error.detail),
      sharedIgnored: () => this.#sharedIgnored(),
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
      ...this.#replicas.nodes().map((n) => ({ address: n.address, pending: n.pendingCount, role: "replica" as const, health: n.health })),
    ];
  }

  /** Send a request to the primary that owns its slot, or a read to one of its replicas. */
  dispatch(request: UpstreamRequest): void {
    // A cluster being removed or replaced takes nothing new (routing no longer leads here).
    if (!this.scope.isOpen) return request.sink.deliver(request, this.#notConfigured.reply);
    const node = this.#owners[request.slot];
    if (!node) return request.sink.deliver(request, this.#authFailing?.reply ?? CLUSTER_DOWN);
    const replica = this.#replicas.pick(request);
    if (replica) {
      this.stats.replicaReads++;
      return replica.node.send(new ReplicaRead(request, replica, this.#replicaFailed));
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
    return this.#owners[shard] ?? this.#authFailing ?? SLOT_NOT_SERVED;
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
    const node = this.#learnRedirect(from, target, kind);
    if (node instanceof Unavailable) return node;
    return { node, slot: target.slot, ask: kind === ErrorKind.Ask };
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
    if (node instanceof Unavailable) return request.sink.deliver(request, node.reply);
    request.asking = kind === ErrorKind.Ask;
    request.slot = target.slot;
    node.send(request);
    // ASKING applies to the one send above only.
    request.asking = false;
  }

  /**
   * Count a redirect, believe a MOVED at once, refresh after enough of them; the node to follow
   * to, or why not (too many nodes outside the slot map are open already).
   */
  #learnRedirect(from: NodeHandle, target: { host: string; port: number; slot: number }, kind: ErrorKind): UpstreamNode | Unavailable {
    if (kind === ErrorKind.Moved) this.stats.moved++;
    else this.stats.ask++;
    if (++this.#redirectsSinceRefresh >= this.#options.redirectRefreshThreshold && this.#options.redirectRefreshThreshold > 0) {
      this.#redirectsSinceRefresh = 0;
      this.requestRefresh();
    }
    const host = target.host === "" ? from.host : target.host;
    const address = formatAddress(host, target.port);
    if (!this.#nodes.has(address) && !this.#known.has(address)) {
      if (this.stats.unknownNodes >= this.#options.maxUnknownNodes) return this.#refuseUnknown(address, kind);
      this.stats.unknownNodes++;
    }
    const node = this.#node(host, target.port);
    // Redis promises the slot now lives there: route the slot's next requests without waiting.
    if (kind === ErrorKind.Moved) this.#owners[target.slot] = node;
    return node;
  }

  /**
   * A redirect to yet another node outside the slot map: not followed (a stream of bogus
   * redirects must not open connections without end). Its command was not run where it was sent,
   * so it is safe to retry once the refresh asked for here has applied the cluster's real map.
   */
  #refuseUnknown(address: string, kind: ErrorKind): Unavailable {
    this.stats.unknownRedirectsRefused++;
    this.requestRefresh();
    const max = this.#options.maxUnknownNodes;
    if (!this.#unknownLogged) {
      this.#unknownLogged = true;
      this.#log.warn("redirect outside the slot map refused", { cluster: this.name, target: address, limit: "maxUnknownNodes", max });
    }
    const what = kind === ErrorKind.Moved ? "MOVED" : "ASK";
    return new Unavailable("limit", `${what} to ${address} not followed: the node is outside the slot map and maxUnknownNodes (${max}) is reached; the command was not applied, the slot map is being refreshed`);
  }

  #node(host: string, port: number): UpstreamNode {
    const address = formatAddress(host, port);
    let node = this.#nodes.get(address);
    if (!node) {
      node = new UpstreamNode(
        this.scope,
        host,
        port,
        { ...this.#options, hostname: this.#hostnames.get(address) },
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

  /** A node for a replica: its connections say READONLY first, its replies come back as reads. */
  #replicaNode(host: string, port: number): UpstreamNode {
    return new UpstreamNode(
      this.scope,
      host,
      port,
      { ...this.#options, readOnly: true, hostname: this.#hostnames.get(formatAddress(host, port)) },
      {
        reply: (_node, request, frame) => this.#onReplicaReply(request as ReplicaRead, frame),
        failure: () => this.requestRefresh(),
      },
      () => this.#closing.reason,
    );
  }

  /** A refresh round failed: counted, and logged when a run of failures starts or its cause changes. */
  #refreshFailed(error: RefreshError): void {
    this.stats.refreshFailures++;
    const auth = error.causes.includes("auth") ? this.#authFailures.last : null;
    this.#authFailing = auth === null ? null : authRefusal(this.name);
    this.stats.lastError = auth ?? error.message;
    const cause = error.summary;
    // Identical failures are counted, a new cause is logged at once (after the count of the old one).
    if (this.#failing !== null && this.#failing.cause !== cause) this.#limited.flush(REFRESH_FAILED);
    this.#limited.warn(REFRESH_FAILED, "refresh failed", { cluster: this.name, cause, error: error.message });
    this.#failing = { cause, rounds: (this.#failing?.rounds ?? 0) + 1 };
  }

  /** The map to apply for one a node reported: a partial one keeps the applied owners (./partial-maps.ts). */
  #judge(reported: Topology, from: string): Topology {
    const verdict = this.#partialMaps.judge(this.#topology, reported, from);
    if (verdict.confirmed > 0) {
      this.#log.warn("slots without an owner, confirmed by a second node", { cluster: this.name, from, firstFrom: verdict.firstFrom, slots: verdict.confirmed });
    }
    this.stats.keptSlots = verdict.kept;
    this.stats.keptSlotsFrom = this.#partialMaps.from;
    if (verdict.kept === 0) return verdict.topology;
    this.stats.partialMapsRefused++;
    if (verdict.isNew) this.#log.warn("partial slot map refused", { cluster: this.name, from, covered: coverage(reported), kept: verdict.kept });
    // A second opinion, from another node, as soon as early refreshes allow.
    this.#discovery.requestRefresh(from);
    return verdict.topology;
  }

  /** Another worker sent a malformed map: counted, and logged (rate-limited); nothing else changes. */
  #sharedIgnored(): void {
    this.stats.sharedIgnored++;
    this.#limited.warn(SHARED_IGNORED, "malformed shared slot map ignored", { cluster: this.name });
  }

  #apply(reported: Topology, from: string, source: TopologySource): void {
    const topology = this.#judge(reported, from);
    if (source === "shared") this.stats.sharedApplied++;
    else this.stats.refreshes++;
    this.stats.lastRefreshAt = this.scope.runtime.wallClock();
    this.stats.lastError = null;
    this.#authFailing = null;
    this.#authFailures.succeeded(from);
    if (this.#failing !== null) {
      // Its line says how many rounds failed: the count still pending is not logged on its own.
      this.#limited.forget(REFRESH_FAILED);
      this.#log.info("refresh recovered", { cluster: this.name, from, failedRounds: this.#failing.rounds });
      this.#failing = null;
    }
    this.#redirectsSinceRefresh = 0;
    // Nodes opened for redirects are retired below unless the new map names them.
    this.stats.unknownNodes = 0;
    this.#unknownLogged = false;
    this.#known = new Set(topology.ranges.flatMap((range) => [range.primary, ...range.replicas].map((n) => formatAddress(n.host, n.port))));
    // Announced hostnames, for TLS: a node's certificate is checked against the name it announced.
    for (const n of topology.ranges.flatMap((range) => [range.primary, ...range.replicas])) {
      if (n.hostname) this.#hostnames.set(formatAddress(n.host, n.port), n.hostname);
    }
    const owners: (UpstreamNode | undefined)[] = new Array(SLOT_COUNT);
    const used = new Set<UpstreamNode>();
    for (const range of topology.ranges) {
      const node = this.#node(range.primary.host, range.primary.port);
      used.add(node);
      for (let slot = range.start; slot <= range.end; slot++) owners[slot] = node;
    }
    for (let slot = 0; slot < SLOT_COUNT; slot++) this.#owners[slot] = owners[slot];
    const previous = this.#topology;
    this.#topology = topology;
    this.stats.coveredSlots = coverage(topology);
    const signature = topology.ranges.map((r) => `${r.start}-${r.end}@${formatAddress(r.primary.host, r.primary.port)}`).join(",");
    if (signature !== this.#mapSignature) {
      const first = this.#mapSignature === "";
      this.#mapSignature = signature;
      this.#logMapChange(first ? null : previous, from);
    }
    this.#logReadiness(from);
    for (const [address, node] of this.#nodes) {
      if (used.has(node)) continue;
      this.#nodes.delete(address);
      // In-flight requests on a node that left the topology may still finish.
      this.scope.spawn(`retire ${address}`, () => node.close(this.#options.opTimeoutMs));
    }
    this.#replicas.apply(topology);
    if (this.isReady) {
      this.#ready();
      this.commands?.afterTopology(topology.ranges.map((range) => range.primary));
    }
    for (const listener of this.#topologyListeners) listener();
  }

  /** A new slot map: the first one, or how it differs from the previous one (and the failovers it shows). */
  #logMapChange(previous: Topology | null, from: string): void {
    const covered = this.stats.coveredSlots;
    if (previous === null) {
      this.#log.info("slot map applied", { cluster: this.name, from, covered, primaries: primaryCount(this.#topology) });
      return;
    }
    const changes = mapChanges(previous, this.#topology);
    // Ranges split or merged with the same owners: nothing moved.
    if (changes.moved === 0) return;
    for (const failover of changes.failovers) {
      this.#log.warn("failover seen", { cluster: this.name, primary: failover.primary, was: failover.was, slots: failover.slots, from });
    }
    this.#log.info("slot map changed", {
      cluster: this.name,
      from,
      moved: changes.moved,
      covered,
      primaries: changes.primaries,
      previousPrimaries: changes.previousPrimaries,
    });
  }

  /** Log the cluster becoming ready (every slot has an owner) or no longer ready: transitions only. */
  #logReadiness(from: string): void {
    const ready = this.isReady;
    if (ready === this.#loggedReady) return;
    this.#loggedReady = ready;
    const covered = this.stats.coveredSlots;
    if (ready) this.#log.info("cluster ready", { cluster: this.name, primaries: primaryCount(this.#topology) });
    else this.#log.warn("cluster not ready", { cluster: this.name, cause: "slots without an owner", uncovered: SLOT_COUNT - covered, from });
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
      partialMaps: { refused: stats.partialMapsRefused, keptSlots: stats.keptSlots, from: stats.keptSlotsFrom },
      unknownNodes: { open: stats.unknownNodes, refused: stats.unknownRedirectsRefused },
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

/** The rate-limited key of failed refreshes. */
const REFRESH_FAILED = "refresh failed";
/** The rate-limited key of malformed maps from other workers. */
const SHARED_IGNORED = "shared slot map ignored";

function tooManyRedirects(frame: Uint8Array): string {
  return `too many cluster redirections (last: ${new TextDecoder().decode(frame.subarray(1, frame.length - 2))})`;
}
