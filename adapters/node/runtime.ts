/**
 * The Node.js adapter: `Runtime` on top of node:net, node:dns, node:http and the Node timers.
 * Node's own stream buffer is the user-space write queue (its `writableLength` is `bufferedBytes`),
 * so partial writes and `end()` flushing come from Node; this file adds the 64 KiB high-water mark,
 * the exactly-once `close`, and abort handling for `connect` and `lookup`.
 */
import * as net from "node:net";
import * as http from "node:http";
import { lookup as dnsLookup } from "node:dns/promises";
import type { AddressInfo } from "node:net";
import type {
  Conn,
  ConnHandlers,
  ConnectOptions,
  FetchHandler,
  HttpServer,
  Listener,
  ListenOptions,
  Runtime,
} from "../../src/runtime.ts";
import { raceAbort } from "../shared/abort.ts";
import { ipLiteral, ipv4First } from "../shared/address.ts";
import { AbortError, LookupError } from "../shared/errors.ts";
import { HIGH_WATER_MARK_BYTES } from "../shared/high-water-mark.ts";
import { createSetTimer } from "../shared/timer.ts";

const setTimer = createSetTimer((ms, fn) => setTimeout(fn, ms), clearTimeout);

/**
 * Wraps a connected socket. Handlers are attached later (`attach`) because an accepted socket's
 * handlers come from `accept(conn)`, which needs the `Conn` first.
 */
function wrapSocket(socket: net.Socket, noDelay: boolean): { conn: Conn; attach(h: ConnHandlers): void } {
  socket.setNoDelay(noDelay);
  let handlers: ConnHandlers | undefined;
  let finished = false; // `close` delivered: nothing may follow it
  let destroyed = false;
  let needDrain = false;
  let error: Error | undefined;
  const remoteAddress = socket.remoteAddress ?? "";
  const remotePort = socket.remotePort ?? 0;
  const localPort = socket.localPort ?? 0;

  const conn: Conn = {
    remoteAddress,
    remotePort,
    localPort,
    get bufferedBytes() {
      return socket.writableLength;
    },
    write(chunk) {
      // After end()/destroy() Node would raise ERR_STREAM_WRITE_AFTER_END; the bytes could never be sent.
      if (destroyed || finished || socket.destroyed || socket.writableEnded) return false;
      socket.write(chunk);
      if (socket.writableLength > HIGH_WATER_MARK_BYTES) {
        needDrain = true;
        return false;
      }
      return true;
    },
    pause() {
      socket.pause();
    },
    resume() {
      if (!destroyed) socket.resume();
    },
    end() {
      if (!destroyed && !finished) socket.end();
    },
    destroy(cause) {
      if (destroyed || finished) return;
      destroyed = true;
      error ??= cause;
      // Without an argument Node emits no 'error' event; 'close' still follows on a later tick.
      socket.destroy();
    },
  };

  function attach(h: ConnHandlers): void {
    handlers = h;
    socket.on("data", (chunk: Buffer) => {
      if (!destroyed && !finished) handlers!.data(chunk);
    });
    // Node emits 'drain' once its buffer is empty, if a write crossed Node's own high-water mark
    // (16 or 64 KiB, never above ours, checked against the same length): so every false return of
    // ours is followed by a 'drain'.
    socket.on("drain", () => {
      if (needDrain && !destroyed && !finished) {
        needDrain = false;
        handlers!.drain();
      }
    });
    socket.on("error", (e: Error) => {
      error ??= e;
    });
    // 'close' is emitted once, always asynchronously (process.nextTick at the earliest), after 'error'.
    socket.on("close", () => {
      if (finished) return;
      finished = true;
      handlers!.close(error);
    });
  }

  return { conn, attach };
}

function connect(options: ConnectOptions, handlers: ConnHandlers): Promise<Conn> {
  const { host, port, signal, noDelay = true } = options;
  if (signal?.aborted) return Promise.reject(new AbortError(`connect to ${host}:${port}`, signal.reason));
  return new Promise<Conn>((resolve, reject) => {
    const socket = net.connect({ host, port });
    const settle = () => {
      socket.off("connect", onConnect);
      socket.off("error", onError);
      signal?.removeEventListener("abort", onAbort);
    };
    const onConnect = () => {
      settle();
      const { conn, attach } = wrapSocket(socket, noDelay);
      attach(handlers);
      resolve(conn);
    };
    const onError = (e: Error) => {
      settle();
      socket.destroy();
      reject(e);
    };
    const onAbort = () => {
      settle();
      socket.on("error", () => {}); // a late connect error on the dying socket must not go unhandled
      socket.destroy();
      reject(new AbortError(`connect to ${host}:${port}`, signal?.reason));
    };
    socket.once("connect", onConnect);
    socket.once("error", onError);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function listen(options: ListenOptions, accept: (conn: Conn) => ConnHandlers): Promise<Listener> {
  const server = net.createServer({ highWaterMark: HIGH_WATER_MARK_BYTES, noDelay: true }, (socket) => {
    const { conn, attach } = wrapSocket(socket, true);
    let handlers: ConnHandlers;
    try {
      handlers = accept(conn);
    } catch (e) {
      socket.destroy();
      throw e;
    }
    attach(handlers);
  });
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

async function lookup(hostname: string, signal: AbortSignal): Promise<string[]> {
  if (signal.aborted) throw new AbortError(`lookup of '${hostname}'`, signal.reason);
  const literal = ipLiteral(hostname, (text) => net.isIP(text) !== 0);
  if (literal) return [literal];
  // getaddrinfo cannot be cancelled; the race makes the abort prompt and drops the late answer.
  const resolved = dnsLookup(hostname, { all: true }).catch((e: unknown) => {
    throw new LookupError(hostname, e);
  });
  const records = await raceAbort(resolved, signal, `lookup of '${hostname}'`);
  const addresses = ipv4First(records);
  if (addresses.length === 0) throw new LookupError(hostname, new Error("no addresses"));
  return addresses;
}

function readBody(req: http.IncomingMessage): Promise<Uint8Array<ArrayBuffer>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.byteLength;
    });
    req.on("end", () => {
      const body = new Uint8Array(size);
      let at = 0;
      for (const chunk of chunks) {
        body.set(chunk, at);
        at += chunk.byteLength;
      }
      resolve(body);
    });
    req.on("error", reject);
  });
}

async function toRequest(req: http.IncomingMessage, base: string): Promise<Request> {
  const headers = new Headers();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  const method = req.method ?? "GET";
  const body = method === "GET" || method === "HEAD" ? undefined : await readBody(req);
  return new Request(new URL(req.url ?? "/", base), { method, headers, body });
}

async function writeResponse(res: http.ServerResponse, response: Response): Promise<void> {
  const body = response.body ? Buffer.from(await response.arrayBuffer()) : undefined;
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie") res.setHeader(name, value);
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) res.setHeader("set-cookie", cookies);
  res.end(body);
}

function serveHttp(options: ListenOptions, fetch: FetchHandler): Promise<HttpServer> {
  let base = "";
  const server = http.createServer((req, res) => {
    void (async () => {
      let response: Response;
      try {
        response = await fetch(await toRequest(req, base));
      } catch {
        response = new Response("internal server error", { status: 500 });
      }
      await writeResponse(res, response);
    })().catch(() => res.destroy());
  });
  return new Promise<HttpServer>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off("error", reject);
      const { port } = server.address() as AddressInfo;
      base = `http://${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}`;
      let closing: Promise<void> | undefined;
      resolve({
        host: options.host,
        port,
        close() {
          // close() waits for open connections; keep-alive ones idle in a client pool would hold it
          // forever, so they are closed too (in-flight requests still finish).
          closing ??= new Promise<void>((done) => {
            server.close(() => done());
            server.closeIdleConnections();
          });
          return closing;
        },
      });
    });
  });
}

/**
 * The Node.js runtime. Quirks the core may see: a peer reset arrives as `close(error)` with
 * `code` ECONNRESET (or EPIPE on write); a peer's clean close (FIN) ends our side too once queued
 * bytes are flushed (Node's `allowHalfOpen: false`), so `close()` follows without error. An
 * exception thrown by a handler is not caught and surfaces as an uncaught exception.
 */
export const nodeRuntime: Runtime = {
  name: "node",
  now: () => performance.now(),
  wallClock: () => Date.now(),
  setTimer,
  defer: (fn) => {
    setImmediate(fn);
  },
  random: () => Math.random(),
  connect,
  listen,
  lookup,
  serveHttp,
};
