/**
 * Serving the admin app on Node: node:http in front of a web-standard `fetch(Request)` handler.
 * Each request is converted to a `Request` (body read in full), the handler's `Response` written
 * back; a handler that throws answers 500.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { FetchHandler, HttpServer, ListenOptions } from "../../src/runtime.ts";

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

/** Serves `fetch` over HTTP/1.1 on `host:port` (port 0 picks one). */
export function serveHttp(options: ListenOptions, fetch: FetchHandler): Promise<HttpServer> {
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
