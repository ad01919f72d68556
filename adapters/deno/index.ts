/**
 * The Deno adapter: `Runtime` on Deno's native APIs — `Deno.connect` and `Deno.listen` (net.ts),
 * `Deno.resolveDns` (dns.ts), `Deno.serve` (http.ts) — and Deno's timers (timers.ts). This file
 * only assembles them.
 */
import type { Runtime } from "../../src/runtime.ts";
import { lookup } from "./dns.ts";
import { serveHttp } from "./http.ts";
import { connect, listen } from "./net.ts";
import { defer, now, random, setTimer, wallClock } from "./timers.ts";

/**
 * The Deno runtime. Quirks the core may see: a peer reset arrives as `close(error)` with `code`
 * ECONNRESET on read or EPIPE on write (a reset can also look like a clean EOF, then `close()`);
 * a peer's clean close (FIN) ends our side once queued bytes are flushed. An exception thrown by a
 * handler goes to `reportError`, i.e. it surfaces as an uncaught exception.
 */
export const denoRuntime: Runtime = {
  name: "deno",
  now,
  wallClock,
  setTimer,
  defer,
  random,
  connect,
  listen,
  lookup,
  serveHttp,
  readTextFile: (path) => Deno.readTextFile(path),
  memoryUsage: () => {
    const { rss, heapUsed } = Deno.memoryUsage();
    return { rss, heapUsed };
  },
};
