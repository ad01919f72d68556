/**
 * TCP on Bun: `connect` and `listen` on Bun's native `Bun.connect` and `Bun.listen`, each socket
 * wrapped as a `BunConn`. Bun's `socket.write` is unbuffered (it returns how many bytes the kernel
 * took), so each connection keeps the unsent remainder in a user-space queue (the shared
 * `ByteQueue`) and flushes it from the `drain` event.
 */
import type { Socket, SocketHandler } from "bun";
import type { Conn, ConnHandlers, ConnectOptions, Listener, ListenOptions } from "../../src/runtime.ts";
import { raceAbort } from "../shared/abort.ts";
import { ByteQueue } from "../shared/byte-queue.ts";
import { AbortError } from "../shared/errors.ts";
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

/** Callbacks shared by every socket; the per-connection state lives in `socket.data`. */
const common: SocketHandler<BunConn | undefined> = {
  data: (socket, chunk) => socket.data?.onData(chunk),
  drain: (socket) => socket.data?.onDrain(),
  end: (socket) => socket.data?.onPeerEnd(),
  close: (socket, error) => socket.data?.onClose(error),
  // Bun calls this when one of our callbacks (so a user handler) threw.
  error: (_socket, error) => rethrow(error),
};

const clientHandlers: SocketHandler<BunConn | undefined> = {
  ...common,
  open: (socket) => socket.data?.attach(socket),
  // Having this keeps Bun from also reporting the rejected connect promise as unhandled.
  connectError: () => {},
};

/** Opens a TCP connection; `signal` cancels it until it is established. */
export async function connect(options: ConnectOptions, handlers: ConnHandlers): Promise<Conn> {
  const { host, port, signal, noDelay = true } = options;
  const what = `connect to ${host}:${port}`;
  if (signal?.aborted) throw new AbortError(what, signal.reason);
  const conn = new BunConn(noDelay);
  conn.handlers = handlers;
  // allowHalfOpen: a peer's FIN must not make Bun close before our queued bytes are flushed.
  const pending = Bun.connect<BunConn | undefined>({
    hostname: host,
    port,
    allowHalfOpen: true,
    data: conn,
    socket: clientHandlers,
  });
  try {
    await raceAbort(pending, signal, what);
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
  const server = Bun.listen<BunConn | undefined>({
    hostname: options.host,
    port: options.port,
    allowHalfOpen: true,
    data: undefined,
    socket: {
      ...common,
      open(socket) {
        const conn = new BunConn(true);
        conn.attach(socket);
        try {
          conn.handlers = accept(conn);
        } catch (e) {
          socket.terminate();
          throw e;
        }
        socket.data = conn;
      },
    },
  });
  let closed = false;
  return {
    host: options.host,
    port: server.port,
    async close() {
      if (closed) return;
      closed = true;
      server.stop(false);
    },
  };
}
