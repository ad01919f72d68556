/**
 * Picks the adapter for the runtime this code is running on (Bun, Deno, else Node) and loads
 * only that one, so no runtime ever evaluates another runtime's APIs.
 */
import type { Runtime } from "../src/runtime.ts";

// Computed specifiers keep each type checker out of the other runtimes' adapters: tsc has no
// Deno types (adapters/deno is excluded from tsconfig) and `deno test` has no Bun types.
const adapters = {
  bun: { path: "./bun/runtime.ts", export: "bunRuntime" },
  deno: { path: "./deno/runtime.ts", export: "denoRuntime" },
  node: { path: "./node/runtime.ts", export: "nodeRuntime" },
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
