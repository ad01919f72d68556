/**
 * TCP on Deno: `connect` and `listen` on Deno's native `Deno.connect` and `Deno.listen`, each
 * socket wrapped as a `DenoConn`. Deno's connections are pull-based promises, so each `Conn` keeps
 * one read in flight while not paused (each read's callback starts the next; ./read-buffer.ts
 * says what it reads into) and an async writer loop draining a user-space queue (the shared
 * `ByteQueue`), so `write()` never waits. Every read has a rejection handler and every
 * write/closeWrite promise is awaited inside a try/catch: a reset or a close mid-operation never
 * becomes an unhandled rejection.
 *
 * TLS is Deno's own (`Deno.startTls`, `Deno.connectTls`, `Deno.listenTls`, on rustls): a
 * `Deno.TlsConn` reads and writes like a TCP one, so the same `DenoConn` carries it. Deno's TLS
 * API has no option for four things slotgate offers: requiring client certificates on a listener
 * (`ca`), a TLS 1.3 minimum, skipping verification (`insecure`), and a client certificate sent
 * with a `servername` other than the host. Only a listener or connection that asks for one of
 * them is served by Deno's built-in `node:tls` (the Node adapter's code, running on Deno's own
 * rustls underneath); every other socket stays on the native API.
 */
import type { Conn, ConnHandlers, ConnectOptions, ConnectTls, Listener, ListenOptions, ListenTls } from "../../src/runtime.ts";
import { raceAbort } from "../shared/abort.ts";
import { ByteQueue } from "../shared/byte-queue.ts";
import { AbortError, TlsError } from "../shared/errors.ts";
import { HIGH_WATER_MARK_BYTES } from "../shared/high-water-mark.ts";
import { ReadBuffer } from "./read-buffer.ts";
import { defer } from "./timers.ts";
import { connect as connectNodeTls, listen as listenNodeTls } from "../node/net.ts";

/** How long an accepted TLS client may take over its handshake (Node's default is 120 s; 30 s is plenty). */
const HANDSHAKE_TIMEOUT_MS = 30_000;

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** One TCP connection: a read loop, a writer loop, and the close bookkeeping they share. */
class DenoConn implements Conn {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localPort: number;
  handlers: ConnHandlers | undefined;
  private readonly queue = new ByteQueue();
  private state: "open" | "ending" | "closed" = "open";
  private writing = false;
  private needDrain = false;
  private paused = false;
  /** A read op is in flight: at most one at a time, and none while paused. */
  private reading = false;
  /** Bytes read while paused, delivered on resume (before the next read starts). */
  private parked: Uint8Array | undefined;
  /** `resume` delivers on a later microtask, never from inside the owner's call. */
  private resumeQueued = false;
  private readonly buffer = new ReadBuffer();
  private readEnded = false;
  private writeEnded = false;

  /** Nagle's algorithm is on and cannot be turned off: a connection accepted by `Deno.listenTls`. */
  readonly nagle: boolean;

  constructor(private readonly socket: Deno.TcpConn | Deno.TlsConn, nagle = false) {
    this.nagle = nagle;
    const remote = socket.remoteAddr as Deno.NetAddr;
    this.remoteAddress = remote.hostname;
    this.remotePort = remote.port;
    this.localPort = (socket.localAddr as Deno.NetAddr).port;
  }

  /** Starts reading on a later turn, so the owner holds the `Conn` before the first `data`. */
  start(): void {
    defer(() => this.pump());
  }

  get bufferedBytes(): number {
    return this.queue.size;
  }

  write(chunk: Uint8Array): boolean {
    if (this.state !== "open") return false;
    if (chunk.byteLength > 0) {
      this.queue.push(chunk);
      if (!this.writing) void this.writeLoop().catch(reportError);
    }
    if (this.queue.size > HIGH_WATER_MARK_BYTES) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    if (this.reading || this.resumeQueued) return;
    this.resumeQueued = true;
    queueMicrotask(() => {
      this.resumeQueued = false;
      this.pump();
    });
  }

  end(): void {
    if (this.state !== "open") return;
    this.state = "ending";
    if (!this.writing) void this.writeLoop().catch(reportError);
  }

  destroy(error?: Error): void {
    this.finish(error);
  }

  setKeepAlive(idleMs: number): void {
    if (this.isClosed()) return;
    // Deno.TcpConn cannot set the idle time: probes start after the system's (see src/runtime.ts).
    // A TLS connection has no such method: keepalive was turned on before its handshake.
    if (!("setKeepAlive" in this.socket)) return;
    try {
      this.socket.setKeepAlive(idleMs > 0);
    } catch {
      // closed by Deno under us (a reset): nothing to keep alive
    }
  }

  /**
   * Unless paused or closed: delivers the parked chunk, then starts the next read. The read's
   * callbacks are two fields made once per connection (not a closure per read, nor an async
   * loop's frame, held by every idle connection).
   */
  private pump(): void {
    if (this.paused || this.isClosed()) return;
    const chunk = this.parked;
    if (chunk !== undefined) {
      this.parked = undefined;
      this.handlers!.data(chunk);
      // The owner may have paused or closed the connection while handling it.
      if (this.paused || this.isClosed()) return;
    }
    if (this.reading) return;
    this.reading = true;
    this.socket.read(this.buffer.current).then(this.onRead, this.onReadFailed);
  }

  private readonly onRead = (n: number | null): void => {
    this.reading = false;
    if (this.isClosed()) return;
    if (n === null) return this.onPeerEnd();
    // A read already in flight when pause() was called still completes: its chunk is parked.
    if (n > 0) this.parked = this.buffer.take(n);
    try {
      this.pump();
    } catch (e) {
      // A throwing handler surfaces as an uncaught exception, not an unhandled rejection of this
      // callback's promise; this connection reads no more (its owner is broken).
      reportError(e);
    }
  };

  private readonly onReadFailed = (e: unknown): void => {
    this.reading = false;
    // After destroy() the pending read fails with Interrupted/BadResource: finish() ignores it.
    this.finish(toError(e));
  };

  private async writeLoop(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.size > 0 && !this.isClosed()) {
        let n: number;
        try {
          n = await this.socket.write(this.queue.peek());
        } catch (e) {
          this.finish(toError(e)); // a no-op after destroy(): the op failed because we closed it
          return;
        }
        if (this.isClosed()) return;
        this.queue.consume(n);
        if (this.needDrain && this.queue.size <= HIGH_WATER_MARK_BYTES) {
          this.needDrain = false;
          this.handlers!.drain();
        }
      }
    } finally {
      this.writing = false;
    }
    if (this.state === "ending" && !this.writeEnded) await this.endWrite();
  }

  /** Every queued byte is written and end() was called: send FIN, or close if the peer already did. */
  private async endWrite(): Promise<void> {
    this.writeEnded = true;
    if (this.readEnded) return this.finish(undefined);
    try {
      await this.socket.closeWrite();
    } catch (e) {
      this.finish(toError(e)); // a no-op after destroy(): the op failed because we closed it
    }
  }

  /** The peer sent FIN. Like Node's allowHalfOpen=false: flush what is queued, then close. */
  private onPeerEnd(): void {
    this.readEnded = true;
    if (this.state === "open") this.end();
    else if (this.writeEnded) this.finish(undefined);
  }

  /** A method, not a field test, so TypeScript does not narrow `state` across awaits and calls. */
  private isClosed(): boolean {
    return this.state === "closed";
  }

  private finish(error: Error | undefined): void {
    if (this.isClosed()) return;
    this.state = "closed";
    this.queue.clear();
    try {
      this.socket.close();
    } catch {
      // already closed by Deno (e.g. after a reset)
    }
    defer(() => this.handlers!.close(error));
  }
}

/** Opens a TCP connection; `signal` cancels it until it is established. */
export async function connect(options: ConnectOptions, handlers: ConnHandlers): Promise<Conn> {
  const { host, port, signal, noDelay = true } = options;
  const what = `connect to ${host}:${port}`;
  if (signal?.aborted) throw new AbortError(what, signal.reason);
  // A private controller cancels Deno's pending connect op on abort, and is never aborted once
  // connected, so the caller's signal has no say over the established connection.
  const secure = options.tls;
  if (secure) {
    checkConnectTls(secure, host);
    if (needsNodeTls(secure, host)) return connectNodeTls(options, handlers);
  }
  if (secure?.cert !== undefined) return startConn(await connectWithCertificate(host, port, secure, signal), handlers);
  const cancel = new AbortController();
  const onAbort = () => cancel.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  const pending = Deno.connect({ hostname: host, port, transport: "tcp", signal: cancel.signal });
  let socket: Deno.TcpConn;
  try {
    socket = await raceAbort(pending, signal, what);
  } catch (e) {
    // If the connect won the race against cancellation, close the socket it produced.
    pending.then((late) => late.close(), () => {});
    throw e;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  socket.setNoDelay(noDelay);
  if (!secure) return startConn(socket, handlers);
  // Set on the TCP socket before TLS takes it over: a TlsConn has no way to set it later.
  socket.setKeepAlive(true);
  const upgrading = Deno.startTls(socket, { hostname: secure.servername ?? host, caCerts: secure.ca === undefined ? undefined : [secure.ca] });
  return startConn(await handshake(upgrading, `${host}:${port}`, signal), handlers);
}

function checkConnectTls(secure: ConnectTls, host: string): void {
  if ((secure.cert === undefined) !== (secure.key === undefined)) throw new TlsError(host, new Error("a client certificate needs both cert and key"));
}

/** What `Deno.connectTls`/`Deno.startTls` cannot express: no verification, or a client certificate for another name. */
function needsNodeTls(secure: ConnectTls, host: string): boolean {
  return secure.insecure === true || (secure.cert !== undefined && secure.servername !== undefined && secure.servername !== host);
}

/** What `Deno.listenTls` cannot express: client certificates required, or TLS 1.2 refused. */
function listenNeedsNodeTls(secure: ListenTls | undefined): boolean {
  return secure !== undefined && (secure.ca !== undefined || secure.minVersion === "TLSv1.3");
}

/** mTLS: only `Deno.connectTls` takes a client certificate (it verifies the name `host`). */
async function connectWithCertificate(host: string, port: number, secure: ConnectTls, signal: AbortSignal | undefined): Promise<Deno.TlsConn> {
  const pending = Deno.connectTls({ hostname: host, port, caCerts: secure.ca === undefined ? undefined : [secure.ca], cert: secure.cert!, key: secure.key! });
  let socket: Deno.TlsConn;
  try {
    socket = await raceAbort(pending, signal, `connect to ${host}:${port}`);
  } catch (e) {
    pending.then((late) => late.close(), () => {});
    throw e instanceof AbortError ? e : new TlsError(`${host}:${port}`, e);
  }
  return handshake(Promise.resolve(socket), `${host}:${port}`, signal);
}

/** Waits for the TLS handshake, so a refused certificate rejects `connect` rather than a later read. */
async function handshake(pending: Promise<Deno.TlsConn>, where: string, signal: AbortSignal | undefined): Promise<Deno.TlsConn> {
  let socket: Deno.TlsConn | undefined;
  const done = pending.then(async (s) => {
    socket = s;
    await s.handshake();
    return s;
  });
  try {
    return await raceAbort(done, signal, `connect to ${where}`);
  } catch (e) {
    done.then((late) => late.close(), () => {
      try {
        socket?.close();
      } catch {
        // already closed by the failed handshake
      }
    });
    throw e instanceof AbortError ? e : new TlsError(where, e);
  }
}

function startConn(socket: Deno.TcpConn | Deno.TlsConn, handlers: ConnHandlers): Conn {
  const conn = new DenoConn(socket);
  conn.handlers = handlers;
  conn.start();
  return conn;
}

async function acceptLoop(listener: Deno.Listener<Deno.TcpConn | Deno.TlsConn>, isClosed: () => boolean, accept: (conn: Conn) => ConnHandlers) {
  while (!isClosed()) {
    let socket: Deno.TcpConn | Deno.TlsConn;
    try {
      socket = await listener.accept();
    } catch {
      if (isClosed()) return;
      // Transient failures (a client reset before accept, EMFILE): back off instead of spinning.
      await new Promise((resolve) => setTimeout(resolve, 50));
      continue;
    }
    // close() may have raced with an accept that had already completed in the kernel.
    if (isClosed()) return socket.close();
    if ("setNoDelay" in socket) {
      socket.setNoDelay(true);
      adopt(socket, accept);
    } else {
      // The handshake runs before `accept`, each on its own, so a slow client never holds up
      // others; one that has not finished it within HANDSHAKE_TIMEOUT_MS is closed.
      const tlsSocket = socket;
      const close = () => {
        try {
          tlsSocket.close();
        } catch {
          // already closed by the failed handshake
        }
      };
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        close();
      }, HANDSHAKE_TIMEOUT_MS);
      void tlsSocket.handshake().then(
        () => {
          clearTimeout(timer);
          // Adopted even if the listener closed meanwhile (setTls reopening it): it was accepted.
          if (!timedOut) adopt(tlsSocket, accept);
        },
        () => {
          clearTimeout(timer);
          close();
        },
      );
    }
  }
}

function adopt(socket: Deno.TcpConn | Deno.TlsConn, accept: (conn: Conn) => ConnHandlers): void {
  {
    // A TLS connection accepted here has no setNoDelay (Deno.TlsConn): Nagle stays on.
    const conn = new DenoConn(socket, !("setNoDelay" in socket));
    try {
      conn.handlers = accept(conn);
    } catch (e) {
      socket.close();
      reportError(e);
      return;
    }
    conn.start();
  }
}

/** Listens on `host:port` (port 0 picks one); `accept` supplies each accepted connection's handlers. */
export async function listen(options: ListenOptions, accept: (conn: Conn) => ConnHandlers): Promise<Listener> {
  if (listenNeedsNodeTls(options.tls)) {
    // Deno's node:tls has no reusePort: several workers cannot share a port through it.
    if (options.reusePort) throw new Error(`listener ${options.host}:${options.port}: on Deno, workers cannot share a TLS port that requires client certificates or refuses TLS 1.2 (Deno's own TLS cannot do either, and its node:tls has no reusePort); run one worker`);
    return listenNodeTls(options, accept);
  }
  const shared = options.reusePort ? { reusePort: true } : {};
  /** `named`: the port errors name (a throwaway check listens on 0 for the real port's sake). */
  const open = (port: number, secure: ListenTls | undefined, named = port): Deno.Listener<Deno.TcpConn | Deno.TlsConn> => {
    if (!secure) return Deno.listen({ hostname: options.host, port, transport: "tcp", ...shared });
    try {
      return Deno.listenTls({ hostname: options.host, port, transport: "tcp", cert: secure.cert, key: secure.key, ...shared });
    } catch (e) {
      throw e instanceof Deno.errors.AddrInUse ? e : new TlsError(`listener ${options.host}:${named}`, e);
    }
  };
  /** One listening socket and its accept loop; setTls replaces both. */
  const start = (port: number, secure: ListenTls | undefined, named = port) => {
    const listener = open(port, secure, named);
    let stopped = false;
    const accepting = acceptLoop(listener, () => stopped, accept);
    return {
      port: (listener.addr as Deno.NetAddr).port,
      async stop() {
        if (!stopped) {
          stopped = true;
          listener.close();
        }
        // The pending accept op holds the socket until it is cancelled: only once the loop has
        // returned is the port really closed (until then a connect is queued, then reset).
        await accepting;
      },
    };
  };
  let current = start(options.port, options.tls);
  const port = current.port;
  let material = options.tls;
  let closed = false;
  return {
    host: options.host,
    port,
    close() {
      closed = true;
      return current.stop();
    },
    ...(options.tls && {
      async setTls(next: ListenTls) {
        if (closed) return;
        // Deno.listenTls has no way to change its certificate: check the new material on a
        // throwaway listener, then reopen the port with it. Accepted connections are separate
        // resources and stay up; a connect in between may be refused.
        if (listenNeedsNodeTls(next)) {
          throw new TlsError(`listener ${options.host}:${port}`, new Error("client certificates or a TLS 1.3 minimum cannot be added to a running listener; restart slotgate"));
        }
        await start(0, next, port).stop();
        await current.stop();
        try {
          current = start(port, next);
          material = next;
        } catch (e) {
          current = start(port, material);
          throw e;
        }
      },
    }),
  };
}
