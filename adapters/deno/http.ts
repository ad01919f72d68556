/**
 * Serving the admin app on Deno: `Deno.serve` takes the web-standard `fetch(Request)` handler as
 * it is, with a body that streams as the handler reads it; a handler that throws answers 500, and
 * Deno's "Listening on ..." line is silenced.
 */
import type { FetchHandler, HttpServer, ListenOptions } from "../../src/runtime.ts";

/** Serves `fetch` over HTTP/1.1 on `host:port` (port 0 picks one). */
export async function serveHttp(options: ListenOptions, fetch: FetchHandler): Promise<HttpServer> {
  const server = Deno.serve(
    {
      hostname: options.host,
      port: options.port,
      onListen: () => {}, // Deno logs "Listening on ..." by default
      onError: () => new Response("internal server error", { status: 500 }),
    },
    (request) => fetch(request),
  );
  let closing: Promise<void> | undefined;
  return {
    host: options.host,
    port: (server.addr as Deno.NetAddr).port,
    close() {
      closing ??= server.shutdown();
      return closing;
    },
  };
}
