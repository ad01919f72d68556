/**
 * Serving the admin app on Node: node:http in front of a web-standard `fetch(Request)` handler.
 * Each request becomes a `Request` as soon as its headers are in, with a body that streams from
 * the socket only as the handler reads it (as Bun.serve and Deno.serve hand it over): so the
 * handler decides on the headers first — a wrong token is answered 401 without reading a byte of
 * the body — and a size limit it enforces while reading stops the upload at the limit. Nothing
 * here buffers a whole body.
 *
 * - `Expect: 100-continue` is answered `100 Continue` only when the handler starts reading the
 *   body, so a client that waits for it (curl does, for large bodies) never sends a body that is
 *   refused on its headers.
 * - When the handler answers before reading the whole body, the response says `Connection:
 *   close` and the connection is closed once it is written, rather than reading the rest of an
 *   upload nobody wants.
 * - A handler that throws answers 500.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { FetchHandler, HttpServer, ListenOptions } from "../../src/runtime.ts";

/** The request's body as it arrives, read from the socket only while the handler pulls. */
function streamBody(req: http.IncomingMessage, askToContinue: (() => void) | null): ReadableStream<Uint8Array> {
  let settled = false;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        req.on("data", (chunk: Buffer) => {
          if (settled) return;
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          // Back-pressure: the socket is read only while the handler asks for more.
          if ((controller.desiredSize ?? 0) <= 0) req.pause();
        });
        req.on("end", () => {
          if (settled) return;
          settled = true;
          controller.close();
        });
        req.on("error", (error) => {
          if (settled) return;
          settled = true;
          controller.error(error);
        });
        req.on("close", () => {
          if (settled) return;
          settled = true;
          controller.error(new Error("the client closed the connection before the body ended"));
        });
        req.pause();
      },
      pull() {
        askToContinue?.();
        askToContinue = null;
        req.resume();
      },
      cancel() {
        // The handler wants no more (over its limit, say): stop reading; the response closes the connection.
        settled = true;
        req.pause();
      },
    },
    // Nothing is read ahead: a chunk is taken from the socket when the handler asks for one.
    { highWaterMark: 0 },
  );
}

function toRequest(req: http.IncomingMessage, base: string, body: ReadableStream<Uint8Array> | null): Request {
  const headers = new Headers();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  // `duplex: "half"` is what undici requires of a streamed request body.
  const init: RequestInit & { duplex?: "half" } = { method: req.method ?? "GET", headers };
  if (body) {
    init.body = body;
    init.duplex = "half";
  }
  return new Request(new URL(req.url ?? "/", base), init);
}

async function writeResponse(res: http.ServerResponse, response: Response, closeAfter: boolean): Promise<void> {
  const body = response.body ? Buffer.from(await response.arrayBuffer()) : undefined;
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie") res.setHeader(name, value);
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) res.setHeader("set-cookie", cookies);
  // node:http closes the connection once a response that says so is written.
  if (closeAfter) res.setHeader("connection", "close");
  res.end(body);
}

/** Serves `fetch` over HTTP/1.1 on `host:port` (port 0 picks one). */
export function serveHttp(options: ListenOptions, fetch: FetchHandler): Promise<HttpServer> {
  let base = "";
  const handle = (req: http.IncomingMessage, res: http.ServerResponse, expectsContinue: boolean) => {
    void (async () => {
      const method = req.method ?? "GET";
      const body = method === "GET" || method === "HEAD" ? null : streamBody(req, expectsContinue ? () => res.writeContinue() : null);
      let response: Response;
      try {
        response = await fetch(toRequest(req, base, body));
      } catch {
        response = new Response("internal server error", { status: 500 });
      }
      // `complete`: the parser has the whole request; if not, the rest of the upload is not wanted.
      await writeResponse(res, response, !req.complete);
    })().catch(() => res.destroy());
  };
  const server = http.createServer((req, res) => handle(req, res, false));
  // Without this listener node:http answers `100 Continue` at once, inviting the whole body.
  server.on("checkContinue", (req, res) => handle(req, res, true));
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
