/**
 * Process helpers: the command that runs slotgate's entry point on the runtime running the test,
 * and checks that nothing was left running. Works on Node, Bun and Deno (node:process and
 * node:fs only).
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { detectRuntime } from "../../adapters/current.ts";

/** The command (executable first) that runs slotgate's entry point on this test's runtime. */
export function entryCommand(): string[] {
  switch (detectRuntime()) {
    case "bun":
      return [process.execPath, "adapters/bun/main.ts"];
    case "deno":
      return [process.execPath, "run", "-A", "adapters/deno/main.ts"];
    default:
      return [process.execPath, "--import", "tsx", "adapters/node/main.ts"];
  }
}

/**
 * True while `pid` is a live process. A zombie (exited, not yet reaped by its parent, state Z in
 * /proc) counts as dead: in containers whose init does not reap, orphans linger as zombies.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return true; // no /proc (macOS): signal 0 succeeded, so it is alive
  }
}
