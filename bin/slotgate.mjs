#!/usr/bin/env node
// The `slotgate` command. It runs the entry point of the runtime executing it (globalThis.Bun →
// Bun's adapter, globalThis.Deno → Deno's, else Node's), so `bunx --bun slotgate` and
// `deno run -A npm:slotgate` get their native adapters, not Node's compatibility layer.
//
// From the npm package it loads the compiled JavaScript in dist/ (`npm run build`; no tsx).
// In a git checkout, where adapters/*/main.ts sit beside it, it runs those sources instead, so
// a stale dist/ is never what runs there: Bun and Deno load TypeScript themselves, Node goes
// through tsx (a devDependency, present in a checkout).
import { existsSync } from "node:fs";
import process from "node:process";

const runtime = globalThis.Bun !== undefined ? "bun" : globalThis.Deno !== undefined ? "deno" : "node";
const source = new URL(`../adapters/${runtime}/main.ts`, import.meta.url);
const compiled = new URL(`../dist/adapters/${runtime}/main.js`, import.meta.url);

if (existsSync(source)) {
  if (runtime === "node") {
    const { tsImport } = await import("tsx/esm/api");
    await tsImport(source.href, import.meta.url);
  } else {
    await import(source.href);
  }
} else if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  console.error(`slotgate: ${compiled.pathname} is missing: this copy was packed without \`npm run build\``);
  process.exit(1);
}
