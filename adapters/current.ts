/**
 * Picks the adapter for the runtime this code is running on (Bun, Deno, else Node) and loads
 * only that one, so no runtime ever evaluates another runtime's APIs.
 *
 * Where `src/runtime.ts` leaves room, every adapter behaves alike (test/conformance checks it):
 * - `write()` after `end()`, `destroy()` or close returns false and discards the bytes.
 * - A peer's FIN ends our side too once our queued bytes are flushed; `close()` then has no error.
 * - After `end()`, `close` comes once the peer closes as well, which is only seen while reading:
 *   a connection left paused after `end()` stays open until resumed or destroyed.
 * - Errors carry a Node-style `code` (ECONNREFUSED, ECONNRESET, EPIPE, ...); branch on `code`,
 *   not `name`. Aborts reject with `name` "AbortError"; failed lookups with a `LookupError`
 *   (`code` ENOTFOUND or the resolver's own).
 * - An exception thrown by a handler is not caught: it surfaces as an uncaught exception.
 */
import type { Runtime } from "../src/runtime.ts";

// Computed specifiers keep each type checker out of the other runtimes' adapters: tsc has no
// Deno types (adapters/deno is excluded from tsconfig) and `deno test` has no Bun types.
const adapters = {
  bun: { path: "./bun/index.ts", export: "bunRuntime" },
  deno: { path: "./deno/index.ts", export: "denoRuntime" },
  node: { path: "./node/index.ts", export: "nodeRuntime" },
} as const;

/** The name of the runtime executing this code. */
export function detectRuntime(): keyof typeof adapters {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined) return "bun";
  if (g.Deno !== undefined) return "deno";
  return "node";
}

/** Loads and returns the `Runtime` adapter matching the current JavaScript runtime. */
export async function currentRuntime(): Promise<Runtime> {
  const adapter = adapters[detectRuntime()];
  const module = (await import(new URL(adapter.path, import.meta.url).href)) as Record<string, Runtime>;
  return module[adapter.export]!;
}
