/**
 * TCP on Node: `connect` and `listen` on node:net, each socket wrapped as a `Conn`. Node's own
 * stream buffer is the user-space write queue (its `writableLength` is `bufferedBytes`), so
 * partial writes and `end()` flushing come from Node; this file adds the shared 64 KiB high-water
 * mark, the exactly-once `close`, and abort handling for `connect`. TLS is node:tls: a
 * `TLSSocket` is a `net.Socket`, so the same wrapper serves both, and a TLS listener swaps its
 * certificate in place (`setSecureContext`). Outgoing plain-TCP connections read through `onread`
 * (see `READ_BUFFER`), skipping the Readable stream; TLS and accepted sockets keep 'data'.
 */
import * as net from "node:net";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import type { Conn, ConnHandlers, ConnectOptions, ConnectTls, Listener, ListenOptions, ListenTls } from "../../src/runtime.ts";
import { AbortError, TlsError } from "../shared/errors.ts";
import { HIGH_WATER_MARK_BYTES } from "../shared/high-water-mark.ts";

/**
 * Where outgoing plain-TCP connections read (`net.connect`'s `onread`): Node then hands each read
 * to a callback instead of pushing it through the Readable stream ('data' events), and stops
 * allocating a 64 KiB buffer per read that it shrinks to the bytes read. One buffer serves every
 * such socket: a read's callback runs to its end on the one JS thread before the next read lands,
 * and `copyOut` moves the bytes out first. 64 KiB is what Node asks libuv for per read.
 */
const READ_BUFFER = Buffer.alloc(64 * 1024);

/**
 * The `nread` bytes just read into `READ_BUFFER`, in a chunk of their own: the core keeps received
 * chunks (replies are forwarded as views of them, held until written, maybe on a later tick), so
 * they must not change with the next read. `allocUnsafeSlow` gives each chunk its own memory,
 * sized to the read, as Node's stream path does; `allocUnsafe` would slice small chunks out of a
 * shared 8 KiB pool, which a kept reply would then pin whole.
 */
function copyOut(nread: number): Buffer {
  const chunk = Buffer.allocUnsafeSlow(nread);
  READ_BUFFER.copy(chunk, 0, 0, nread);
  return chunk;
}

/**
 * Wraps a connected socket. Handlers are attached later (`attach`) because an accepted socket's
 * handlers come from `accept(conn)`, which needs the `Conn` first. A class, not closures over the
 * socket: there is one per client connection, most of them idle, and its methods are shared.
 */
class NodeConn implements Conn {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localPort: number;
  #handlers: ConnHandlers | undefined;
  /** `close` delivered: nothing may follow it. */
  #finished = false;
  #destroyed = false;
  #needDrain = false;
  #error: Error | undefined;

  readonly #socket: net.Socket;

  constructor(socket: net.Socket, noDelay: boolean) {
    this.#socket = socket;
    socket.setNoDelay(noDelay);
    this.remoteAddress = socket.remoteAddress ?? "";
    this.remotePort = socket.remotePort ?? 0;
    this.localPort = socket.localPort ?? 0;
  }

  get bufferedBytes(): number {
    return this.#socket.writableLength;
  }

  write(chunk: Uint8Array): boolean {
    const socket = this.#socket;
    // After end()/destroy() Node would raise ERR_STREAM_WRITE_AFTER_END; the bytes could never be sent.
    if (this.#destroyed || this.#finished || socket.destroyed || socket.writableEnded) return false;
    // A Uint8Array as it is: Node 20 wraps it in a Buffer over the same memory itself (no copy);
    // wrapping it here (Buffer.from(buffer, offset, length)) measured no cheaper.
    socket.write(chunk);
    if (socket.writableLength > HIGH_WATER_MARK_BYTES) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  /**
   * On an `onread` socket, Node's pause() stops the handle reading at once (readStop), also from
   * inside `deliver`, so no read lands until resume(); the kernel's buffer then fills and TCP
   * pushes back on the peer.
   */
  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    if (!this.#destroyed) this.#socket.resume();
  }

  end(): void {
    if (!this.#destroyed && !this.#finished) this.#socket.end();
  }

  destroy(cause?: Error): void {
    if (this.#destroyed || this.#finished) return;
    this.#destroyed = true;
    this.#error ??= cause;
    // Without an argument Node emits no 'error' event; 'close' still follows on a later tick.
    this.#socket.destroy();
  }

  setKeepAlive(idleMs: number): void {
    if (!this.#destroyed && !this.#finished && !this.#socket.destroyed) this.#socket.setKeepAlive(idleMs > 0, idleMs);
  }

  /** Received bytes, owned by the core from now on; dropped once it let the connection go. */
  deliver(chunk: Buffer): void {
    if (!this.#destroyed && !this.#finished) this.#handlers!.data(chunk);
  }

  /**
   * `reads`: "stream" for a socket read through 'data' events; "onread" for one created with
   * `onread`, whose callback calls `deliver` itself (Node emits no 'data' for it).
   */
  attach(handlers: ConnHandlers, reads: "stream" | "onread"): void {
    this.#handlers = handlers;
    const socket = this.#socket as ConnSocket;
    socket[CONN] = this;
    // Shared listeners that find this wrapper on the socket: four closures per connection would
    // be a quarter KiB of every idle client's memory.
    if (reads === "stream") socket.on("data", onSocketData);
    socket.on("drain", onSocketDrain);
    socket.on("error", onSocketError);
    socket.on("close", onSocketClose);
  }

  /**
   * Node emits 'drain' once its buffer is empty, if a write crossed Node's own high-water mark
   * (16 or 64 KiB, never above ours, checked against the same length): so every false return of
   * ours is followed by a 'drain'.
   */
  drained(): void {
    if (this.#needDrain && !this.#destroyed && !this.#finished) {
      this.#needDrain = false;
      this.#handlers!.drain();
    }
  }

  failed(error: Error): void {
    this.#error ??= error;
  }

  /** 'close' is emitted once, always asynchronously (process.nextTick at the earliest), after 'error'. */
  closed(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#handlers!.close(this.#error);
  }
}

/** Where a socket's shared listeners find its wrapper. */
const CONN = Symbol("slotgate conn");
type ConnSocket = net.Socket & { [CONN]: NodeConn };

// Listeners shared by every socket: Node calls them with the socket as `this`.
function onSocketData(this: ConnSocket, chunk: Buffer): void {
  this[CONN].deliver(chunk);
}
function onSocketDrain(this: ConnSocket): void {
  this[CONN].drained();
}
function onSocketError(this: ConnSocket, error: Error): void {
  this[CONN].failed(error);
}
function onSocketClose(this: ConnSocket): void {
  this[CONN].closed();
}

/** Opens a TCP connection; `signal` cancels it until it is established. */
export function connect(options: ConnectOptions, handlers: ConnHandlers): Promise<Conn> {
  const { host, port, signal, noDelay = true } = options;
  if (signal?.aborted) return Promise.reject(new AbortError(`connect to ${host}:${port}`, signal.reason));
  const secure = options.tls;
  return new Promise<Conn>((resolve, reject) => {
    // TLS stays on 'data': node:tls accepts `onread`, but a pause() from inside its callback does
    // not stop the records already decrypted from one TCP read (Node 20: 306 of 512 reads of 16 KiB
    // arrived while paused), and the Readable stream is what holds them back.
    /** Set on 'connect': Node starts reading only after emitting it, so no read comes before. */
    let conn: NodeConn | undefined;
    // true: keep reading; the core stops reads with pause(), which takes effect at once.
    const onread = {
      buffer: READ_BUFFER,
      callback: (nread: number) => {
        conn!.deliver(copyOut(nread));
        return true;
      },
    };
    const socket = secure ? tls.connect(tlsConnectOptions(host, port, secure)) : net.connect({ host, port, onread });
    // A TLS socket is usable once its handshake is done, not when TCP connects.
    const ready = secure ? "secureConnect" : "connect";
    const settle = () => {
      socket.off(ready, onConnect);
      socket.off("error", onError);
      signal?.removeEventListener("abort", onAbort);
    };
    const onConnect = () => {
      settle();
      conn = new NodeConn(socket, noDelay);
      conn.attach(handlers, secure ? "stream" : "onread");
      resolve(conn);
    };
    const onError = (e: Error) => {
      settle();
      socket.destroy();
      reject(secure ? new TlsError(`${host}:${port}`, e) : e);
    };
    const onAbort = () => {
      settle();
      socket.on("error", () => {}); // a late connect error on the dying socket must not go unhandled
      socket.destroy();
      reject(new AbortError(`connect to ${host}:${port}`, signal?.reason));
    };
    socket.once(ready, onConnect);
    socket.once("error", onError);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Listens on `host:port` (port 0 picks one); `accept` supplies each accepted connection's handlers. */
export function listen(options: ListenOptions, accept: (conn: Conn) => ConnHandlers): Promise<Listener> {
  const onSocket = (socket: net.Socket) => {
    const conn = new NodeConn(socket, true);
    let handlers: ConnHandlers;
    try {
      handlers = accept(conn);
    } catch (e) {
      socket.destroy();
      throw e;
    }
    conn.attach(handlers, "stream");
  };
  const base = { highWaterMark: HIGH_WATER_MARK_BYTES, noDelay: true };
  let server: net.Server;
  let secure: tls.Server | undefined;
  try {
    // A TLS server calls back once a client's handshake is done; one that fails it is dropped by
    // node:tls ('tlsClientError', which nobody needs to hear) and never reaches `accept`.
    server = options.tls ? (secure = tls.createServer({ ...base, ...tlsServerOptions(options.tls) }, onSocket)) : net.createServer(base, onSocket);
  } catch (e) {
    return Promise.reject(new TlsError(`listener ${options.host}:${options.port}`, e));
  }
  return new Promise<Listener>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off("error", reject);
      // Accept failures (EMFILE and the like) are reported as server errors; they must not crash
      // the process, and the listener keeps accepting once resources free up.
      server.on("error", () => {});
      const { port } = server.address() as AddressInfo;
      let closing: Promise<void> | undefined;
      resolve({
        host: options.host,
        port,
        ...(secure && {
          async setTls(next: ListenTls) {
            // Throws on unusable material before anything changes; sockets already accepted
            // keep the context they negotiated with.
            try {
              secure.setSecureContext(tlsServerOptions(next));
            } catch (e) {
              throw new TlsError(`listener ${options.host}:${port}`, e);
            }
          },
        }),
        close() {
          // server.close()'s callback waits for every accepted connection to end; the contract is
          // only "stop accepting", which happens when the handle closes (next loop turn).
          closing ??= new Promise<void>((done) => {
            server.close();
            setImmediate(done);
          });
          return closing;
        },
      });
    });
  });
}

function tlsConnectOptions(host: string, port: number, secure: ConnectTls): tls.ConnectionOptions {
  return {
    host,
    port,
    ca: secure.ca,
    cert: secure.cert,
    key: secure.key,
    // Node sends no SNI for an IP literal, but still verifies the certificate against `servername`.
    servername: secure.servername ?? (net.isIP(host) ? undefined : host),
    rejectUnauthorized: !secure.insecure,
  };
}

function tlsServerOptions(secure: ListenTls): tls.TlsOptions {
  return {
    cert: secure.cert,
    key: secure.key,
    ca: secure.ca,
    requestCert: secure.ca !== undefined,
    rejectUnauthorized: secure.ca !== undefined,
    minVersion: secure.minVersion ?? "TLSv1.2",
  };
}
