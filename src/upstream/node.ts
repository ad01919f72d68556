/**
 * A Redis node as slotgate sees it: a small, lazily opened set of pipelined connections. A
 * client's requests to one node always use the same connection (by affinity), so they run in the
 * order the client sent them.
 *
 * A node is up, down (a connect to it failed) or suspect (a request to it got no reply within
 * `opTimeoutMs`: a stopped process, a host that vanished). While it is not up its requests fail
 * fast, instead of piling up behind connects or each waiting out a full timeout on a fresh
 * connection, and a probe — `PING` on a connection of its own, first after `probeBackoffMinMs`,
 * the wait doubling after each failed probe up to `probeBackoffMaxMs` — brings it back as soon as
 * one is answered. Each change is logged once, with its cause. A node that refuses slotgate's
 * credentials is down the same way (its refusal: `upstream authentication failed for cluster
 * 'NAME'`), probed with the same backoff, and logged once through `authFailures` when given.
 *
 * Requests of RESP3 clients travel on a second set of connections that said `HELLO 3`. A client
 * may also get a connection of its own (`dedicated`): for a blocked command, a transaction or a
 * subscription. The node owns it (it dies with the node), the client closes it when done.
 *
 * A shared connection holds at most `maxUpstreamQueueBytes` unsent (plus the request that crossed
 * it): past that, a node that does not read fast enough gets its requests refused at once with an
 * error naming the limit, rather than the proxy buffering for it without end. A connection of a
 * client's own is bounded by that client's own limits.
 */
import type { Scope } from "../scope/scope.ts";
import { UpstreamRequest } from "../backend/request.ts";
import { Unavailable, type DedicatedOptions, type NodeHandle } from "../backend/contract.ts";
import { SILENT_LOGGER, type Logger } from "../log.ts";
import { authRefusal, type AuthFailures } from "../backend/auth.ts";
import { encodeCommand } from "../resp/encode.ts";
import { UpstreamConn, type UpstreamConnOptions } from "./conn.ts";
import { UNCOUNTED, type UpstreamStats } from "../metrics/upstream.ts";

export interface NodeEvents {
  reply(node: UpstreamNode, request: UpstreamRequest, frame: Uint8Array): void;
  /** A connection failed or was lost: the topology may have changed. */
  failure(node: UpstreamNode, reason: string): void;
}

export interface UpstreamNodeOptions extends Omit<UpstreamConnOptions, "host" | "port" | "protocol" | "subscriber"> {
  connectionsPerNode: number;
  /** Wait before the first probe of a node marked down or suspect, in milliseconds. */
  probeBackoffMinMs: number;
  /** Longest wait between two probes (it doubles after each failed one), in milliseconds. */
  probeBackoffMaxMs: number;
  /** Where the node's health changes are logged (default: nowhere). */
  log?: Logger;
  /** Where refused credentials are logged, once per node of the backend (default: the node's own `node down` line). */
  authFailures?: AuthFailures;
  /** Unsent bytes a shared connection may hold; past it, requests for it are refused at once. */
  maxUpstreamQueueBytes: number;
  /** Where the node's connections count what they do (absent: metrics are off). */
  upstreamStats?: UpstreamStats;
}

export type NodeHealthState = "up" | "down" | "suspect";

/** Up, or why requests fail fast, since when, and the wait before the next probe. */
type Health =
  | { readonly state: "up" }
  | { readonly state: "down" | "suspect"; readonly refusal: Unavailable; readonly since: number; backoffMs: number };

const UP: Health = { state: "up" };
const PING = encodeCommand(["PING"]);

export class UpstreamNode implements NodeHandle {
  readonly address: string;
  readonly scope: Scope;
  readonly #conns: (UpstreamConn | null)[];
  /** The RESP3 connections, opened on first use. */
  #conns3: (UpstreamConn | null)[] | null = null;
  readonly #dedicated = new Set<UpstreamConn>();
  readonly #connOptions: UpstreamConnOptions;
  readonly #events: NodeEvents;
  readonly #options: UpstreamNodeOptions;
  readonly #log: Logger;
  #health: Health = UP;
  /** The probe in flight, if any: its connection lives in this scope. */
  #probing: Scope | null = null;
  readonly #closing: Unavailable;
  readonly #closeReason: () => string | null;
  readonly #maxQueueBytes: number;
  readonly #full: Unavailable;

  /**
   * `closeReason` says why requests still pending at teardown fail (e.g. "cluster 'a' was
   * removed"); null when the node merely left the topology.
   */
  constructor(
    parent: Scope,
    readonly host: string,
    readonly port: number,
    options: UpstreamNodeOptions,
    events: NodeEvents,
    closeReason: () => string | null = () => null,
  ) {
    this.#closeReason = closeReason;
    this.address = `${host}:${port}`;
    this.#closing = new Unavailable("closing", `upstream ${this.address} is shutting down`);
    this.scope = parent.child(`node ${this.address}`);
    this.#conns = new Array(Math.max(1, options.connectionsPerNode)).fill(null);
    const stats = options.upstreamStats?.node(options.cluster ?? "", this.address) ?? UNCOUNTED;
    this.#connOptions = { ...options, host, port, closing: () => this.#refusal(), stats };
    this.#options = options;
    this.#maxQueueBytes = options.maxUpstreamQueueBytes;
    this.#full = new Unavailable("limit", `upstream ${this.address} is not keeping up: its connection's send queue is full (maxUpstreamQueueBytes ${options.maxUpstreamQueueBytes})`);
    this.#events = events;
    this.#log = options.log ?? SILENT_LOGGER;
    // Teardown destroys the sockets without running their close handlers; answer what they held.
    this.scope.onDrain(() => Promise.all(this.#all().map((conn) => conn.whenIdle())).then(() => {}));
    // A probe is not in-flight work: a node leaving the topology stops probing at once.
    this.scope.onDrain(() => this.#probing?.destroy());
    this.scope.defer(() => {
      const reason = closeReason() ?? `upstream ${this.address} was removed from the topology`;
      for (const conn of this.#all()) conn.fail(reason);
    });
  }

  /** Requests written to this node and not yet answered. */
  get pendingCount(): number {
    let count = 0;
    for (const conn of this.#all()) count += conn.pendingCount;
    return count;
  }

  /** Every open connection: shared, RESP3 and dedicated. */
  #all(): UpstreamConn[] {
    const all: UpstreamConn[] = [];
    for (const conn of this.#conns) if (conn) all.push(conn);
    for (const conn of this.#conns3 ?? []) if (conn) all.push(conn);
    for (const conn of this.#dedicated) all.push(conn);
    return all;
  }

  /** False while the node is marked down or suspect, until a probe is answered. */
  get isUp(): boolean {
    return this.#health.state === "up";
  }

  get health(): NodeHealthState {
    return this.#health.state;
  }

  /**
   * A connection for one client alone, or why not (the node is shutting down, down or suspect).
   * The caller closes it with `fail` when done.
   */
  dedicated(options: DedicatedOptions): UpstreamConn | Unavailable {
    if (!this.scope.isOpen) return this.#closing;
    if (this.#health.state !== "up") return this.#health.refusal;
    const conn = new UpstreamConn(this.scope, { ...this.#connOptions, protocol: options.protocol, subscriber: options.subscriber ?? false }, {
      reply: options.events.reply,
      push: options.events.push,
      timedOut: () => this.#suspect(),
      lost: (lost, reason, wasOpen) => {
        this.#dedicated.delete(lost);
        if (failedToConnect(lost, wasOpen)) this.#connectFailed(lost, reason);
        options.events.lost(lost, reason, wasOpen);
      },
    });
    this.#dedicated.add(conn);
    return conn;
  }

  send(request: UpstreamRequest): void {
    // A node leaving the topology finishes what it has but takes nothing new.
    if (!this.scope.isOpen) {
      request.sink.deliver(request, this.#closing.reply);
      return;
    }
    // Down or suspect: fail fast until a probe is answered (connections still open may be
    // stuck behind what timed out, and a new one would wait a full timeout again).
    if (this.#health.state !== "up") {
      request.sink.deliver(request, this.#health.refusal.reply);
      return;
    }
    const conns = request.resp3 ? (this.#conns3 ??= new Array(this.#conns.length).fill(null)) : this.#conns;
    const index = request.affinity % conns.length;
    let conn = conns[index];
    if (!conn || conn.isDead) conn = conns[index] = this.#open(conns, request.resp3 ? 3 : 2);
    // A node that does not keep up: past the bound, requests fail at once instead of piling up.
    if (conn.queuedBytes >= this.#maxQueueBytes) {
      request.sink.deliver(request, this.#full.reply);
      return;
    }
    request.node = this.address;
    const refused = conn.send(request);
    if (refused) request.sink.deliver(request, refused.reply);
  }

  /** Why this node takes no more work: its owner's close reason, else that it is shutting down. */
  #refusal(): Unavailable {
    const reason = this.#closeReason();
    return reason === null ? this.#closing : new Unavailable("closing", reason);
  }

  #open(conns: (UpstreamConn | null)[], protocol: 2 | 3): UpstreamConn {
    const conn: UpstreamConn = new UpstreamConn(this.scope, { ...this.#connOptions, protocol }, {
      reply: (request, frame) => this.#events.reply(this, request, frame),
      timedOut: () => this.#suspect(),
      lost: (lost, reason, wasOpen) => {
        const index = conns.indexOf(lost);
        if (index >= 0) conns[index] = null;
        if (failedToConnect(lost, wasOpen)) this.#connectFailed(lost, reason);
        this.#events.failure(this, reason);
      },
    });
    return conn;
  }

  // --- health ---------------------------------------------------------------------------------

  #suspect(): void {
    const refusal = `upstream ${this.address} is suspect (a request got no reply within ${this.#options.opTimeoutMs} ms): command not sent`;
    this.#markUnavailable("suspect", new Unavailable("nodeSuspect", refusal), "timeout");
  }

  /** A connection never became usable: unreachable, or its credentials were refused. */
  #connectFailed(conn: UpstreamConn, reason: string): void {
    if (conn.cause !== "auth") return this.#markUnavailable("down", new Unavailable("nodeDown", reason), conn.cause);
    const authFailures = this.#options.authFailures;
    const refusal = authRefusal(this.#options.cluster, this.address);
    // The backend logs it once per node, however many incidents; without one, the node does.
    if (authFailures && this.scope.isOpen) authFailures.failed(this.address, conn.authDetail ?? "error");
    this.#markUnavailable("down", refusal, "auth", authFailures !== undefined);
  }

  /** Fail requests fast from now on, and start probing. Once per incident: a node already down or suspect stays so. */
  #markUnavailable(state: "down" | "suspect", refusal: Unavailable, cause: string | null, quiet = false): void {
    // A node leaving the topology (or whose cluster is removed) fails its connects on purpose.
    if (!this.scope.isOpen || this.#health.state !== "up") return;
    const backoffMs = this.#options.probeBackoffMinMs;
    this.#health = { state, refusal, since: this.scope.runtime.now(), backoffMs };
    if (!quiet) this.#log.warn(`node ${state}`, { ...this.#logFields(), cause: cause ?? "error", error: refusal.message });
    this.scope.timer("probe", backoffMs, () => this.#probe());
  }

  /** PING on a connection of the probe's own: any reply means the node answers again. */
  #probe(): void {
    const health = this.#health;
    if (health.state === "up") return;
    const probe = this.scope.child("probe");
    this.#probing = probe;
    let settled = false;
    const settle = (answered: boolean) => {
      if (settled) return;
      settled = true;
      this.#probing = null;
      void probe.destroy().catch(() => {});
      if (answered) this.#markUp();
      else this.#probeLater(health);
    };
    const conn = new UpstreamConn(probe, { ...this.#connOptions, protocol: 2, readOnly: false, subscriber: false }, {
      // Even an error reply (-LOADING while a restarted node loads its data) is an answer.
      reply: () => settle(true),
      lost: () => settle(false),
    });
    // Only failures the connection makes up (unreachable, timed out, lost) reach the sink.
    const refused = conn.send(new UpstreamRequest(PING, 0, { deliver: () => settle(false), deliveryFailed: () => settle(false) }, 0));
    if (refused) settle(false);
  }

  #probeLater(health: Health): void {
    if (!this.scope.isOpen || this.#health !== health || health.state === "up") return;
    health.backoffMs = Math.min(this.#options.probeBackoffMaxMs, health.backoffMs * 2);
    this.scope.timer("probe", health.backoffMs, () => this.#probe());
  }

  #markUp(): void {
    const health = this.#health;
    if (health.state === "up" || !this.scope.isOpen) return;
    this.#health = UP;
    if (health.refusal.kind === "auth") this.#options.authFailures?.succeeded(this.address);
    this.#log.info("node up", { ...this.#logFields(), was: health.state, forMs: Math.round(this.scope.runtime.now() - health.since) });
  }

  #logFields(): Record<string, string> {
    const fields: Record<string, string> = {};
    if (this.#options.cluster !== undefined) fields.cluster = this.#options.cluster;
    fields.address = this.address;
    if (this.#options.readOnly) fields.role = "replica";
    return fields;
  }

  /** Let in-flight requests finish for up to `deadlineMs`, then close every connection. */
  close(deadlineMs: number): Promise<void> {
    return this.scope.close({ deadlineMs });
  }
}

/**
 * A connection that never opened because the node could not be reached, timed out or refused —
 * not one that slotgate itself closed before it opened (a client that left, a subscription
 * undone), which says nothing about the node.
 */
function failedToConnect(conn: UpstreamConn, wasOpen: boolean): boolean {
  // Refused credentials: open, but unusable, and so is every new connection with the same ones.
  if (conn.cause === "auth") return true;
  return !wasOpen && conn.cause !== "closed";
}
