/**
 * TCP on Bun: `connect` and `listen` on Bun's native `Bun.connect` and `Bun.listen`, each socket
 * wrapped as a `BunConn`. Bun's `socket.write` is unbuffered (it returns how many bytes the kernel
 * took), so each connection keeps the unsent remainder in a user-space queue (the shared
 * `ByteQueue`) and flushes it from the `drain` event. TLS is Bun's own (`tls` on `Bun.connect` and
 * `Bun.listen`): the same socket callbacks, so a TLS `Conn` is the same `BunConn`.
 */
import type { Socket, SocketHandler, TCPSocketListener, TLSOptions } from "bun";
import type { Conn, ConnHandlers, ConnectOptions, ConnectTls, Listener, ListenOptions, ListenTls } from "../../src/runtime.ts";
import { raceAbort } from "../shared/abort.ts";
import { ByteQueue } from "../shared/byte-queue.ts";
import { AbortError, TlsError } from "../shared/errors.ts";
import { HIGH_WATER_MARK_BYTES } from "../shared/high-water-mark.ts";
import { defer } from "./timers.ts";

/** Surfaces a handler's exception like an uncaught one, outside Bun's socket callback. */
function rethrow(error: unknown): void {
  setTimeout(() => {
    throw error;
  }, 0);
}

/** One TCP connection; Bun's socket callbacks reach it through `socket.data`. */
class BunConn implements Conn {
  remoteAddress = "";
  remotePort = 0;
  localPort = 0;
  handlers: ConnHandlers | undefined;
  private socket: Socket<BunConn | undefined> | undefined;
  private readonly queue = new ByteQueue();
  private state: "open" | "ending" | "closed" = "open";
  private needDrain = false;
  private paused = false;
  private peerEnded = false;
  private shutDown = false;
  /** Chunks that arrived after pause(); delivered on resume(). */
  private held: Uint8Array[] = [];
  private error: Error | undefined;
  /** TLS only: settles when the handshake does (or the socket closes first). */
  handshake: { resolve(): void; reject(error: Error): void } | undefined;
  /** TLS client only: refuse a peer certificate that fails verification. */
  verify = true;

  constructor(private readonly noDelay: boolean) {}

  attach(socket: Socket<BunConn | undefined>): void {
    this.socket = socket;
    this.remoteAddress = socket.remoteAddress;
    this.remotePort = socket.remotePort;
    this.localPort = socket.localPort;
    socket.setNoDelay(this.noDelay);
  }

  get bufferedBytes(): number {
    return this.queue.size;
  }

  write(chunk: Uint8Array): boolean {
    if (this.state !== "open") return false;
    if (this.queue.size === 0 && chunk.byteLength > 0) {
      const written = this.socket!.write(chunk);
      // -1: Bun is already closing the socket; its close callback follows.
      if (written < 0) return false;
      chunk = chunk.subarray(written);
    }
    if (chunk.byteLength > 0) this.queue.push(chunk);
    if (this.queue.size > HIGH_WATER_MARK_BYTES) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  pause(): void {
    if (this.isClosed() || this.paused) return;
    this.paused = true;
    this.socket!.pause();
  }

  resume(): void {
    if (this.isClosed() || !this.paused) return;
    this.paused = false;
    this.socket!.resume();
    if (this.held.length > 0) defer(() => this.release());
  }

  end(): void {
    if (this.state !== "open") return;
    this.state = "ending";
    if (this.queue.size === 0) this.finishWrite();
  }

  destroy(error?: Error): void {
    if (this.isClosed()) return;
    this.error ??= error;
    this.finish(undefined);
    // end() closes both directions at once in Bun (a FIN, like close(2)); its close callback is
    // then ignored because finish() already ran.
    this.socket?.end();
  }

  setKeepAlive(idleMs: number): void {
    // Bun takes the idle time in milliseconds (0 there means "leave it as it is").
    if (!this.isClosed()) this.socket?.setKeepAlive(idleMs > 0, idleMs);
  }

  /** Drops a socket whose connect was aborted: no handler is ever called. */
  abandon(): void {
    this.state = "closed";
    this.socket?.terminate();
  }

  onData(chunk: Uint8Array): void {
    if (this.isClosed()) return;
    if (this.paused || this.held.length > 0) this.held.push(chunk);
    else this.handlers!.data(chunk);
  }

  onDrain(): void {
    if (this.isClosed()) return;
    while (this.queue.size > 0) {
      const bytes = this.queue.peek();
      const written = this.socket!.write(bytes);
      if (written < 0) return;
      this.queue.consume(written);
      if (written < bytes.byteLength) break;
    }
    if (this.queue.size === 0 && this.state === "ending") this.finishWrite();
    if (this.needDrain && this.queue.size <= HIGH_WATER_MARK_BYTES && !this.isClosed()) {
      this.needDrain = false;
      this.handlers!.drain();
    }
  }

  /** The peer sent FIN. Like Node's allowHalfOpen=false: flush what is queued, then close. */
  onPeerEnd(): void {
    if (this.isClosed()) return;
    this.peerEnded = true;
    // Data held during a pause precedes the FIN; finish only once it has been delivered.
    if (this.held.length > 0) return;
    if (this.state === "open") this.end();
    else if (this.shutDown) this.socket!.end();
  }

  onClose(error: Error | undefined): void {
    this.handshake?.reject(error ?? new Error("connection closed during the TLS handshake"));
    this.finish(error);
  }

  private release(): void {
    while (this.held.length > 0 && !this.paused && !this.isClosed()) {
      this.handlers!.data(this.held.shift()!);
    }
    if (this.held.length === 0 && this.peerEnded) this.onPeerEnd();
  }

  /** Every queued byte is with the kernel and end() was called. */
  private finishWrite(): void {
    if (this.peerEnded) {
      this.socket!.end();
    } else {
      // shutdown() sends FIN but keeps reading; Bun reports close once the peer closes too.
      this.shutDown = true;
      this.socket!.shutdown();
    }
  }

  /** A method, not a field test, so TypeScript does not narrow `state` across awaits and calls. */
  private isClosed(): boolean {
    return this.state === "closed";
  }

  private finish(error: Error | undefined): void {
    if (this.isClosed()) return;
    this.state = "closed";
    this.queue.clear();
    this.held = [];
    const reason = this.error ?? error;
    // Bun may run its close callback synchronously inside end()/terminate(); deferring keeps the
    // contract that close never runs inside write/end/destroy.
    defer(() => this.handlers?.close(reason));
  }
}

/** A failure of an established TLS session (an alert from the peer, a record that does not decrypt). */
function isTlsFailure(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  return /SSL routines|^error:[0-9a-f]{8}:/i.test(error.message) || (typeof code === "string" && code.startsWith("ERR_SSL"));
}

/** Callbacks shared by every socket; the per-connection state lives in `socket.data`. */
const common: SocketHandler<BunConn | undefined> = {
  data: (socket, chunk) => socket.data?.onData(chunk),
  drain: (socket) => socket.data?.onDrain(),
  end: (socket) => socket.data?.onPeerEnd(),
  close: (socket, error) => socket.data?.onClose(error),
  // Bun calls this when one of our callbacks (so a user handler) threw, and when a TLS session
  // fails (a server refusing our certificate after a TLS 1.3 handshake): that one is the
  // connection's error, delivered with its close.
  error(socket, error) {
    const conn = socket.data;
    if (conn && isTlsFailure(error)) conn.destroy(new TlsError(`${conn.remoteAddress}:${conn.remotePort}`, error));
    else rethrow(error);
  },
};

const clientHandlers: SocketHandler<BunConn | undefined> = {
  ...common,
  open: (socket) => socket.data?.attach(socket),
  // Having this keeps Bun from also reporting the rejected connect promise as unhandled.
  connectError: () => {},
};

/**
 * A TLS client: `open` comes at TCP connect, `handshake` once TLS is up. A certificate that fails
 * verification arrives as `authorizationError` (Bun's `success` says only whether it was let
 * through), so verification is decided here, from `rejectUnauthorized` as we set it.
 */
const tlsClientHandlers: SocketHandler<BunConn | undefined> = {
  ...clientHandlers,
  handshake(socket, _success, authorizationError) {
    const conn = socket.data;
    if (!conn?.handshake) return;
    const { resolve, reject } = conn.handshake;
    conn.handshake = undefined;
    if (authorizationError && conn.verify) reject(authorizationError);
    else resolve();
  },
};

function connectTls(secure: ConnectTls, host: string): TLSOptions {
  return {
    ca: secure.ca,
    cert: secure.cert,
    key: secure.key,
    serverName: secure.servername ?? host,
    // Verified in `handshake` above: Bun would otherwise close the socket without saying why.
    rejectUnauthorized: false,
  };
}

/** Opens a TCP connection; `signal` cancels it until it is established. */
export async function connect(options: ConnectOptions, handlers: ConnHandlers): Promise<Conn> {
  const { host, port, signal, noDelay = true } = options;
  const what = `connect to ${host}:${port}`;
  if (signal?.aborted) throw new AbortError(what, signal.reason);
  const conn = new BunConn(noDelay);
  conn.handlers = handlers;
  const secure = options.tls;
  const handshake = secure
    ? new Promise<void>((resolve, reject) => {
        conn.handshake = { resolve, reject };
        conn.verify = !secure.insecure;
      })
    : undefined;
  handshake?.catch(() => {}); // awaited below, unless the connect fails first
  // allowHalfOpen: a peer's FIN must not make Bun close before our queued bytes are flushed.
  const pending = Bun.connect<BunConn | undefined>({
    hostname: host,
    port,
    allowHalfOpen: true,
    data: conn,
    socket: secure ? tlsClientHandlers : clientHandlers,
    ...(secure && { tls: connectTls(secure, host) }),
  });
  try {
    await raceAbort(pending, signal, what);
    if (handshake) {
      try {
        await raceAbort(handshake, signal, what);
      } catch (e) {
        throw e instanceof AbortError ? e : new TlsError(`${host}:${port}`, e);
      }
    }
  } catch (e) {
    conn.abandon();
    // Bun.connect cannot be cancelled: close the socket if it connects after all.
    pending.then((socket) => socket.terminate(), () => {});
    throw e;
  }
  return conn;
}

/** Listens on `host:port` (port 0 picks one); `accept` supplies each accepted connection's handlers. */
export async function listen(options: ListenOptions, accept: (conn: Conn) => ConnHandlers): Promise<Listener> {
  const adopt = (socket: Socket<BunConn | undefined>) => {
    const conn = new BunConn(true);
    conn.attach(socket);
    try {
      conn.handlers = accept(conn);
    } catch (e) {
      socket.terminate();
      throw e;
    }
    socket.data = conn;
  };
  // A TLS connection is adopted once its handshake is done, and only if the client's certificate
  // passed when one is required: Bun lets the others through to `open` all the same.
  const mtls = options.tls?.ca !== undefined;
  const socket: SocketHandler<BunConn | undefined> = options.tls
    ? {
        ...common,
        open() {},
        handshake(socket, success, authorizationError) {
          if (mtls && (!success || authorizationError)) socket.terminate();
          else adopt(socket);
        },
      }
    : { ...common, open: adopt };
  /** `named`: the port errors name (a throwaway check listens on 0 for the real port's sake). */
  const open = (port: number, secure: ListenTls | undefined, named = port): TCPSocketListener<BunConn | undefined> => {
    try {
      return Bun.listen<BunConn | undefined>({
        hostname: options.host,
        port,
        allowHalfOpen: true,
        ...(options.reusePort && { reusePort: true }),
        data: undefined,
        socket,
        ...(secure && { tls: listenTls(secure) }),
      });
    } catch (e) {
      throw secure && !isAddressInUse(e) ? new TlsError(`listener ${options.host}:${named}`, e) : e;
    }
  };
  let server = open(options.port, options.tls);
  const port = server.port;
  let closed = false;
  let material = options.tls;
  return {
    host: options.host,
    port,
    async close() {
      if (closed) return;
      closed = true;
      server.stop(false);
    },
    ...(options.tls && {
      async setTls(next: ListenTls) {
        if (closed) return;
        // Bun's listener cannot change its certificate (`reload` takes callbacks only): check the
        // new material on a throwaway listener first, so a bad one changes nothing, then reopen
        // the port with it. stop(false) leaves accepted connections alone.
        open(0, next, port).stop(true);
        server.stop(false);
        try {
          server = open(port, next);
          material = next;
        } catch (e) {
          server = open(port, material);
          throw e;
        }
      },
    }),
  };
}

function listenTls(secure: ListenTls): TLSOptions {
  const mtls = secure.ca !== undefined;
  return {
    cert: secure.cert,
    key: secure.key,
    ca: secure.ca,
    requestCert: mtls,
    rejectUnauthorized: mtls,
    // SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1, plus SSL_OP_NO_TLSv1_2 for a TLS 1.3 minimum.
    secureOptions: 0x04000000 | 0x10000000 | (secure.minVersion === "TLSv1.3" ? 0x08000000 : 0),
  };
}

function isAddressInUse(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === "EADDRINUSE";
}
