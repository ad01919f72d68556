/**
 * Serving the admin app on Bun: `Bun.serve` takes the web-standard `fetch(Request)` handler as it
 * is; a handler that throws answers 500.
 */
import type { FetchHandler, HttpServer, ListenOptions } from "../../src/runtime.ts";

/** Serves `fetch` over HTTP/1.1 on `host:port` (port 0 picks one). */
export async function serveHttp(options: ListenOptions, fetch: FetchHandler): Promise<HttpServer> {
  const server = Bun.serve({
    hostname: options.host,
    port: options.port,
    development: false,
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
