/**
 * TCP on Deno: `connect` and `listen` on Deno's native `Deno.connect` and `Deno.listen`, each
 * socket wrapped as a `DenoConn`. Deno's connections are pull-based promises, so each `Conn` runs
 * a read loop (which is what pause/resume gate) and an async writer loop draining a user-space
 * queue (the shared `ByteQueue`), so `write()` never waits. Every read/write/closeWrite promise is
 * awaited inside a try/catch: a reset or a close mid-operation never becomes an unhandled
 * rejection.
 */
import type { Conn, ConnHandlers, ConnectOptions, Listener, ListenOptions } from "../../src/runtime.ts";
import { raceAbort } from "../shared/abort.ts";
import { ByteQueue } from "../shared/byte-queue.ts";
import { AbortError } from "../shared/errors.ts";
import { HIGH_WATER_MARK_BYTES } from "../shared/high-water-mark.ts";
import { defer } from "./timers.ts";

/** Bytes asked for by each read op (one buffer per connection, reused). */
const READ_SIZE = 64 * 1024;

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
  private wake: (() => void) | undefined;
  private readEnded = false;
  private writeEnded = false;

  constructor(private readonly socket: Deno.TcpConn) {
    const remote = socket.remoteAddr as Deno.NetAddr;
    this.remoteAddress = remote.hostname;
    this.remotePort = remote.port;
    this.localPort = (socket.localAddr as Deno.NetAddr).port;
  }

  /** Starts reading on a later turn, so the owner holds the `Conn` before the first `data`. */
  start(): void {
    defer(() => void this.readLoop().catch(reportError));
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
    this.wake?.();
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
    try {
      this.socket.setKeepAlive(idleMs > 0);
    } catch {
      // closed by Deno under us (a reset): nothing to keep alive
    }
  }

  private async readLoop(): Promise<void> {
    const buffer = new Uint8Array(READ_SIZE);
    while (!this.isClosed()) {
      // A read already in flight when pause() was called still completes; its chunk waits here.
      await this.whileActive();
      if (this.isClosed()) return;
      let n: number | null;
      try {
        n = await this.socket.read(buffer);
      } catch (e) {
        // After destroy() the pending read fails with Interrupted/BadResource: finish() ignores it.
        this.finish(toError(e));
        return;
      }
      if (n === null) return this.onPeerEnd();
      if (n === 0) continue;
      const chunk = buffer.slice(0, n); // handlers own the chunk; the read buffer is reused
      await this.whileActive();
      if (this.isClosed()) return;
      this.handlers!.data(chunk);
    }
  }

  /** Resolves once not paused (or closed). */
  private async whileActive(): Promise<void> {
    while (this.paused && !this.isClosed()) {
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }

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
    this.wake?.();
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
  const conn = new DenoConn(socket);
  conn.handlers = handlers;
  conn.start();
  return conn;
}

async function acceptLoop(listener: Deno.TcpListener, isClosed: () => boolean, accept: (conn: Conn) => ConnHandlers) {
  while (!isClosed()) {
    let socket: Deno.TcpConn;
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
    socket.setNoDelay(true);
    const conn = new DenoConn(socket);
    try {
      conn.handlers = accept(conn);
    } catch (e) {
      socket.close();
      reportError(e);
      continue;
    }
    conn.start();
  }
}

/** Listens on `host:port` (port 0 picks one); `accept` supplies each accepted connection's handlers. */
export async function listen(options: ListenOptions, accept: (conn: Conn) => ConnHandlers): Promise<Listener> {
  const listener = Deno.listen({ hostname: options.host, port: options.port, transport: "tcp" });
  let closed = false;
  const accepting = acceptLoop(listener, () => closed, accept);
  return {
    host: options.host,
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      if (!closed) {
        closed = true;
        listener.close();
      }
      // The pending accept op holds the socket until it is cancelled: only once the loop has
      // returned is the port really closed (until then a connect is queued, then reset).
      await accepting;
    },
  };
}
