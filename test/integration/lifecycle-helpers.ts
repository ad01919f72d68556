/**
 * Helpers of the lifecycle, check-config and twemproxy tests: slotgate's entry point (for the
 * runtime running the test) as a real process, and waits that end on an event, bounded only by a
 * generous deadline (never a timed assertion). Node, Bun and Deno (node:child_process, node:net).
 */
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import process from "node:process";
import { entryCommand } from "../support/processes.ts";

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

/** Whether a TCP connection to 127.0.0.1:port is accepted now. */
export function accepts(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

/** Poll `condition` every 100 ms until it holds; fail after `timeoutMs` (a generous bound, not an assertion on time). */
export async function until(condition: () => Promise<boolean> | boolean, label: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await Promise.resolve(condition()).catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
