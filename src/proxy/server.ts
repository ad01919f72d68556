/**
 * The client-facing listener. Each accepted connection gets a `ClientSession` in a child scope of
 * the server's scope, so closing the server stops accepting, lets every session finish the
 * replies it owes (until the deadline), then closes them all.
 */
import type { Conn, ConnHandlers, Listener, ListenTls } from "../runtime.ts";
import type { Scope } from "../scope/scope.ts";
import { listen } from "../scope/io.ts";
import { LogLimiter, type Logger } from "../log.ts";
import { ClientSession, type ClientLimits, type SessionHost } from "./session/client-session.ts";
import type { Router } from "./routing/router.ts";
import { DedicatedBudget } from "./own-conn/dedicated.ts";
import { closeAfterFlush } from "./session/closing.ts";
import { ClientsMemory } from "./session/clients-memory.ts";
import type { ClientAuth } from "../acl/client-auth.ts";
import type { ProxyMetrics } from "../metrics/proxy-metrics.ts";

export interface ServerOptions {
  host: string;
  port: number;
  /** Replaced whole on live reconfiguration; read for each new connection. */
  limits: SessionLimits;
  /** A second, TLS-only port; its clients are served exactly like the plain port's. */
  tls?: { host: string; port: number; tls: ListenTls };
  /** What the proxy counts; absent: metrics are off. */
  metrics?: ProxyMetrics;
  /** Share both ports with the other workers of this slotgate (`Runtime.listen`'s `reusePort`). */
  reusePort?: boolean;
}

/** Limits of a session, and the bounds over all clients: connections held alone, memory. */
export interface SessionLimits extends ClientLimits {
  /** Connections clients hold alone (blocked commands, transactions), over all clients; read per acquire. */
  maxDedicatedConnections: number;
  /** Connections beyond this are refused with `-ERR max number of clients reached`; read per accept. */
  maxClients: number;
  /** Bytes all clients may hold together before the largest is evicted (0: no limit). */
  maxClientsMemoryBytes: number;
}

export class ProxyServer {
  readonly scope: Scope;
  #listener: Listener | null = null;
  #tlsListener: Listener | null = null;
  #nextId = 0;
  #connected = 0;
  #totalConnections = 0;
  /** Clients refused or closed by a limit: one line per limit a window, with the count (../log.ts). */
  readonly limitLog: LogLimiter;
  /** Connections are being refused for `maxClients` (logged once per run of refusals). */
  #refusing = false;
  /** Every client connected now (INFO's blocked_clients and pubsub_clients are read from them). */
  readonly sessions = new Set<ClientSession>();
  /** Connections clients hold alone (blocked commands, transactions), over all clients. */
  readonly dedicated = new DedicatedBudget(() => this.options.limits.maxDedicatedConnections);
  /** What all clients hold in memory together, bounded by `maxClientsMemoryBytes` (read live). */
  readonly memory: ClientsMemory;
  /** The host each listener's clients share (`#hostFor`), by listen host. */
  readonly #hosts = new Map<string, SessionHost>();

  constructor(
    parent: Scope,
    readonly options: ServerOptions,
    readonly router: Router,
    readonly log: Logger,
    readonly info: () => string,
    /** Users clients authenticate as; absent: no authentication (every client is `default`). */
    readonly auth?: ClientAuth,
  ) {
    this.scope = parent.child("server");
    this.limitLog = new LogLimiter(this.scope, log);
    // What evicted clients held is garbage once their sessions let go of it (on the next turn):
    // ask the runtime to collect it then, rather than whenever it would have on its own.
    const runtime = this.scope.runtime;
    this.memory = new ClientsMemory(() => this.options.limits.maxClientsMemoryBytes, this.limitLog.logger("maxClientsMemoryBytes"), () => runtime.defer(() => runtime.collectGarbage?.()));
  }

  get port(): number {
    return this.#listener?.port ?? this.options.port;
  }

  /** The TLS port clients connect to (the real one when configured as 0), or null without one. */
  get tlsPort(): number | null {
    return this.#tlsListener?.port ?? null;
  }

  /**
   * Present new certificate material on the TLS port, without dropping a connection. Rejects,
   * keeping the material in force, when the new one is unusable.
   */
  async setTls(tls: ListenTls): Promise<void> {
    if (!this.#tlsListener?.setTls) throw new Error("no TLS listener to update");
    await this.#tlsListener.setTls(tls);
  }

  get connectedClients(): number {
    return this.#connected;
  }

  get totalConnections(): number {
    return this.#totalConnections;
  }

  async start(): Promise<void> {
    const listenerScope = this.scope.child("listener");
    /** Serves a connection accepted on the listener bound to `listenHost`. */
    const accept = (listenHost: string) => (conn: Conn): ConnHandlers => {
      const id = ++this.#nextId;
      this.#totalConnections++;
      const metrics = this.options.metrics;
      if (metrics) metrics.downstreamCxTotal++;
      // The limit in force now: a live change applies to the next connection.
      if (this.#connected >= this.options.limits.maxClients || !this.scope.isOpen) {
        if (this.scope.isOpen) {
          this.limitLog.warn("maxClients", "client refused", { addr: `${conn.remoteAddress}:${conn.remotePort}`, limit: "maxClients", max: this.options.limits.maxClients });
        }
        if (metrics) metrics.downstreamCxRejected++;
        conn.write(new TextEncoder().encode("-ERR max number of clients reached\r\n"));
        // Closed fully once the error has left, even if the client never closes its side.
        closeAfterFlush(this.scope, conn);
        return { data() {}, drain() {}, close() {} };
      }
      const scope = this.scope.child(`client ${id}`);
      this.#connected++;
      const session = new ClientSession(scope, id, this.#hostFor(listenHost));
      this.sessions.add(session);
      scope.defer(() => {
        this.#connected--;
        this.sessions.delete(session);
      });
      session.attach(conn);
      return session.handlers();
    };
    this.#listener = await listen(listenerScope, { host: this.options.host, port: this.options.port, ...(this.options.reusePort && { reusePort: true }) }, accept(this.options.host));
    if (this.options.tls) {
      const { host, port, tls } = this.options.tls;
      this.#tlsListener = await listen(listenerScope, { host, port, tls, ...(this.options.reusePort && { reusePort: true }) }, accept(host));
    }
    // Stop accepting first when the server closes: the listener is the first child, closed last
    // by reverse order, so close it explicitly at drain time.
    this.scope.onDrain(() => listenerScope.close());
  }

  /**
   * What the clients of the listener on `listenHost` are given: one object for all of them (not
   * one per client: most clients are idle), made again when the limits or metrics it carries
   * have been replaced. A connected client keeps the one it got: limits apply to new clients.
   */
  #hostFor(listenHost: string): SessionHost {
    const { limits, metrics } = this.options;
    const cached = this.#hosts.get(listenHost);
    if (cached !== undefined && cached.limits === limits && cached.metrics === metrics) return cached;
    const host: SessionHost = {
      router: this.router,
      limits,
      log: this.log,
      limitLog: this.limitLog,
      dedicated: this.dedicated,
      memory: this.memory,
      listenHost,
      info: this.info,
      ...(this.auth ? { auth: this.auth } : {}),
      ...(metrics ? { metrics } : {}),
    };
    this.#hosts.set(listenHost, host);
    return host;
  }

  close(deadlineMs: number): Promise<void> {
    return this.scope.close({ deadlineMs });
  }
}
