/**
 * Process helpers: the command that runs slotgate's entry point on the runtime running the test,
 * that entry point started as a real process (`startEntry`), and checks that nothing was left running. Works on Node, Bun and Deno (node:process and
 * node:fs only).
 */
import { spawn, type ChildProcess } from "node:child_process";
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

export interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Entry {
  child: ChildProcess;
  /** Resolves when the process has exited and its output is closed. */
  done: Promise<Exit>;
  /** Everything written so far, stderr then stdout. */
  output(): string;
  /** Send a signal by pid (Deno's child_process reports no exit code for a child it signalled through `kill`). */
  signal(name: NodeJS.Signals): void;
}

export function startEntry(args: string[], env: Record<string, string>): Entry {
  const [bin, ...rest] = entryCommand();
  const child = spawn(bin!, [...rest, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const done = new Promise<Exit>((resolve) => child.on("close", (code, signal) => resolve({ code, stdout, stderr: signal ? `${stderr}(killed by ${signal})` : stderr })));
  return { child, done, output: () => stderr + stdout, signal: (name) => process.kill(child.pid!, name) };
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
