/**
 * Serving the admin app on Bun: `Bun.serve` takes the web-standard `fetch(Request)` handler as it
 * is, with a body that streams as the handler reads it; a handler that throws answers 500.
 */
import type { FetchHandler, HttpServer, ListenOptions } from "../../src/runtime.ts";

/** Serves `fetch` over HTTP/1.1 on `host:port` (port 0 picks one). */
export async function serveHttp(options: ListenOptions, fetch: FetchHandler): Promise<HttpServer> {
  const server = Bun.serve({
    hostname: options.host,
    port: options.port,
    development: false,
    // The admin app enforces its own body limit while it reads (and checks the token before
    // reading at all); Bun's own limit (128 MiB by default) would drop a larger request
    // without an answer, before the app could say 401 or 413.
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    fetch: (request) => fetch(request),
    error: () => new Response("internal server error", { status: 500 }),
  });
  let closing: Promise<void> | undefined;
  return {
    host: options.host,
    port: server.port ?? options.port,
    close() {
      closing ??= server.stop();
      return closing;
    },
  };
}
