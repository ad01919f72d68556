/**
 * The one port between slotgate's core and a JavaScript runtime. `src/` reaches clocks, timers,
 * sockets, DNS, randomness and HTTP serving only through a `Runtime`; `adapters/node`,
 * `adapters/bun`, `adapters/deno` (and later `adapters/sim`) each implement it as an object literal.
 * Core code never calls these directly for lifetimes: it goes through a `Scope` (src/scope/scope.ts),
 * which registers every timer, socket and lookup with its owner.
 */

/** A cancellable one-shot timer. `cancel()` is idempotent; after it returns the callback never runs. */
export interface TimerHandle {
  cancel(): void;
}

/**
 * Callbacks a connection delivers to its owner. The adapter calls them on the event loop, never
 * re-entrantly from inside `write`/`end`/`destroy`.
 */
export interface ConnHandlers {
  /** Bytes received. The chunk belongs to the handler from then on: adapters never reuse or mutate it. */
  data(chunk: Uint8Array): void;
  /** The write buffer fell back below the high-water mark after `write` returned false. */
  drain(): void;
  /**
   * The connection is finished, for whatever reason (peer closed, reset, error, `end`, `destroy`).
   * Called exactly once; no other handler is called after it. `error` is set for abnormal ends.
   */
  close(error?: Error): void;
}

/** An open TCP connection with back-pressure-aware writes. */
export interface Conn {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localPort: number;
  /**
   * Queue bytes for sending; never blocks and never drops. Partial writes by the OS are kept and
   * retried by the adapter. Returns false when the queued, unsent bytes exceed the high-water mark:
   * the caller should stop producing until `drain`. The caller must not mutate `chunk` afterwards.
   */
  write(chunk: Uint8Array): boolean;
  /** Unsent bytes queued in user space (not counting the kernel's socket buffer). */
  readonly bufferedBytes: number;
  /** Stop delivering `data` until `resume()` (read-side back-pressure). */
  pause(): void;
  resume(): void;
  /** Flush what is queued, then close gracefully (FIN). `close` follows. */
  end(): void;
  /** Close now, discarding unsent bytes. `close` follows (with `error` if given). Idempotent. */
  destroy(error?: Error): void;
  /**
   * TCP keepalive: once nothing has been received for `idleMs`, the kernel probes the peer and
   * resets a connection whose peer is gone (a host that vanished, a NAT or firewall that dropped
   * the flow). 0 turns probes off. Best effort: a runtime that cannot set the idle time (Deno)
   * turns probes on with the system's own (Linux: `net.ipv4.tcp_keepalive_time`, 7200 s), and a
   * closed connection ignores the call.
   */
  setKeepAlive(idleMs: number): void;
  /**
   * True when Nagle's algorithm is on and cannot be turned off (Deno's connections accepted by
   * `Deno.listenTls`): a second small write then waits for the peer's delayed ACK (~40 ms), so the
   * owner should gather the replies of a pipelined batch into one write. Absent: TCP_NODELAY is set.
   */
  readonly nagle?: boolean;
}

export interface ConnectOptions {
  host: string;
  port: number;
  /** Aborting it cancels a pending connect: the promise rejects and no socket stays open. */
  signal?: AbortSignal;
  /** Set TCP_NODELAY (default true). */
  noDelay?: boolean;
  /** Speak TLS over the connection; the `Conn` resolves once the handshake is done. */
  tls?: ConnectTls;
}

/**
 * TLS for an outgoing connection; all material is PEM text, never a path. The peer's certificate
 * is verified (chain and name) unless `insecure`: a failed verification rejects `connect` with an
 * error whose message says why (expired, unknown CA, name mismatch).
 */
export interface ConnectTls {
  /** CA certificates to trust instead of the system's roots. */
  ca?: string;
  /** The name sent as SNI and checked against the certificate (default: `host`). */
  servername?: string;
  /** A client certificate (chain) and its key, for servers that ask for one (mTLS). */
  cert?: string;
  key?: string;
  /** Skip verifying the peer's certificate. A runtime that cannot must reject `connect` saying so. */
  insecure?: boolean;
}

/** TLS for a listener; all material is PEM text, never a path. */
export interface ListenTls {
  /** The server's certificate chain and its key. */
  cert: string;
  key: string;
  /** When set, clients must present a certificate signed by one of these CAs (mTLS). */
  ca?: string;
  /** The oldest protocol version accepted (default: the runtime's, TLS 1.2 on all three). */
  minVersion?: "TLSv1.2" | "TLSv1.3";
}

export interface ListenOptions {
  host: string;
  /** 0 picks a free port; read the real one from `Listener.port`. */
  port: number;
  /**
   * Accept TLS only. The handshake runs before `accept` is called, so a client that fails it (no
   * certificate when `ca` asks for one, a certificate from another CA) never reaches `accept`.
   * A runtime that cannot honour an option rejects `listen` saying so (all three honour all).
   */
  tls?: ListenTls;
  /**
   * Share the port with other listeners of this program that ask the same (workers, src/workers/):
   * the kernel spreads new connections over them (SO_REUSEPORT; Bun and Deno). Node's workers
   * are `node:cluster` processes, which share their listeners by themselves: Node ignores it.
   */
  reusePort?: boolean;
}

/** A listening TCP socket. */
export interface Listener {
  readonly host: string;
  readonly port: number;
  /** Stop accepting; already-accepted connections are not touched. Idempotent. */
  close(): Promise<void>;
  /**
   * Present new TLS material to connections accepted from now on, on the same port; connections
   * already accepted stay up with what they negotiated. Rejects, keeping the material in force,
   * when the new one is unusable (unreadable PEM, a key that does not match). Present on TLS
   * listeners only. A runtime with no in-place swap (Bun, Deno) reopens the port, so a connect in
   * that instant may be refused.
   */
  setTls?(tls: ListenTls): Promise<void>;
}

/** A running HTTP server serving a `fetch` handler (the admin API). */
export interface HttpServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

export type FetchHandler = (request: Request) => Response | Promise<Response>;

/** Everything the core needs from a runtime. */
export interface Runtime {
  /** "node" | "bun" | "deno" | "sim". */
  readonly name: string;
  /** Monotonic milliseconds (not wall-clock); only differences are meaningful. */
  now(): number;
  /** Wall-clock milliseconds since the epoch, for display only (last refresh time and similar). */
  wallClock(): number;
  /** Run `fn` once after `ms` milliseconds, unless cancelled first. */
  setTimer(ms: number, fn: () => void): TimerHandle;
  /** Run `fn` soon, after pending I/O callbacks of this turn (setImmediate where available). */
  defer(fn: () => void): void;
  /** A float in [0, 1). Adapters may seed it (the simulator does). */
  random(): number;
  /** Open a TCP connection. Rejects on refusal, failure or abort. */
  connect(options: ConnectOptions, handlers: ConnHandlers): Promise<Conn>;
  /** Listen for TCP connections; `accept` returns the handlers of each accepted connection. */
  listen(options: ListenOptions, accept: (conn: Conn) => ConnHandlers): Promise<Listener>;
  /**
   * Resolve a hostname to IP addresses (IPv4 first). IP literals resolve to themselves. Rejects
   * when the name does not resolve, or when `signal` aborts (the result is then never delivered).
   */
  lookup(hostname: string, signal: AbortSignal): Promise<string[]>;
  /**
   * Serve `fetch` over HTTP/1.1. `fetch` is called once a request's headers are in; the
   * `Request`'s body streams from the connection only as `fetch` reads it, never buffered whole
   * and never capped by the adapter (the handler decides on the headers, and enforces its own
   * size limit while reading). A response given before the body was read need not read the rest.
   */
  serveHttp(options: ListenOptions, fetch: FetchHandler): Promise<HttpServer>;
  /** Read a whole UTF-8 text file (TLS certificates and keys). Rejects when it cannot. */
  readTextFile(path: string): Promise<string>;
  /**
   * A hint that much memory just became garbage (a client disconnected for using too much): a
   * runtime whose collector would let it linger collects it now. Asked rarely, so it may block
   * briefly. Optional; runtimes whose collector follows allocations closely enough leave it out.
   */
  collectGarbage?(): void;
  /**
   * The process's resident memory and the JavaScript heap in use, in bytes, read when asked (the
   * metrics scrape, INFO). Null when the runtime cannot tell. Optional so that test runtimes may
   * leave it out; every adapter implements it.
   */
  memoryUsage?(): MemoryUsage | null;
}

/** What `Runtime.memoryUsage` reports, in bytes. */
export interface MemoryUsage {
  rss: number;
  heapUsed: number;
}
