/**
 * The Bun adapter: `Runtime` on Bun's native APIs — `Bun.connect` and `Bun.listen` (net.ts),
 * `Bun.dns.lookup` (dns.ts), `Bun.serve` (http.ts) — Bun's timers (timers.ts) and its collector
 * (gc.ts, asked after clients are evicted for memory). This file only assembles them.
 */
import type { Runtime } from "../../src/runtime.ts";
import { lookup } from "./dns.ts";
import { serveHttp } from "./http.ts";
import { connect, listen } from "./net.ts";
import { defer, now, random, setTimer, wallClock } from "./timers.ts";
import { collectGarbage } from "./gc.ts";

/**
 * The Bun runtime. Quirks the core may see: a peer reset arrives as `close(error)` with `code`
 * ECONNRESET; a peer's clean close (FIN) ends our side once queued bytes are flushed, then
 * `close()` without error; `destroy()` sends FIN (not RST). An exception thrown by a handler is
 * rethrown from a timer, i.e. it surfaces as an uncaught exception.
 */
export const bunRuntime: Runtime = {
  name: "bun",
  now,
  wallClock,
  setTimer,
  defer,
  random,
  connect,
  listen,
  lookup,
  serveHttp,
  collectGarbage,
  readTextFile: (path) => Bun.file(path).text(),
  // Bun's own process object (no node: import): rss from the OS, heapUsed from JavaScriptCore.
  memoryUsage: () => {
    const { rss, heapUsed } = process.memoryUsage();
    return { rss, heapUsed };
  },
};
