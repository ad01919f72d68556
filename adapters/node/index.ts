/**
 * The Node.js adapter: `Runtime` on top of node:net (net.ts), node:dns (dns.ts), node:http
 * (http.ts) and the Node timers (timers.ts). This file only assembles them.
 */
import { readFile } from "node:fs/promises";
import type { Runtime } from "../../src/runtime.ts";
import { lookup } from "./dns.ts";
import { serveHttp } from "./http.ts";
import { connect, listen } from "./net.ts";
import { defer, now, random, setTimer, wallClock } from "./timers.ts";

/**
 * The Node.js runtime. Quirks the core may see: a peer reset arrives as `close(error)` with
 * `code` ECONNRESET (or EPIPE on write); a peer's clean close (FIN) ends our side too once queued
 * bytes are flushed (Node's `allowHalfOpen: false`), so `close()` follows without error. An
 * exception thrown by a handler is not caught and surfaces as an uncaught exception.
 */
export const nodeRuntime: Runtime = {
  name: "node",
  now,
  wallClock,
  setTimer,
  defer,
  random,
  connect,
  listen,
  lookup,
  serveHttp,
  readTextFile: (path) => readFile(path, "utf8"),
  memoryUsage: () => {
    const { rss, heapUsed } = process.memoryUsage();
    return { rss, heapUsed };
  },
};
