/**
 * Helpers for the scripts that attack or load a slotgate running in a process of its own (on
 * Node, Bun or Deno, from this checkout or another one): spawn it, wait until it serves, sample
 * its resident memory (VmRSS from /proc), stop it; and a small raw RESP connection that counts
 * reply frames with slotgate's own reply reader. Loopback only.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import { join, resolve } from "node:path";
import process from "node:process";
import { ReplyReader } from "../src/resp/reply-reader.ts";
import { keySlot } from "../src/backends/cluster/slot.ts";
import { freePort } from "./free-port.ts";
import type { LocalCluster } from "./local-cluster.ts";

export const MIB = 1024 * 1024;

/**
 * How `runtime` serves slotgate from checkout `dir` (run it with `dir` as the working directory);
 * on Node, `nodeFlags` go before the script.
 */
export function serveCommand(runtime: string, dir: string, nodeFlags: string[] = []): string[] {
  const bin = (name: string) => join(dir, "node_modules/.bin", name);
  switch (runtime) {
    case "node":
      return [process.execPath, ...nodeFlags, "--import", "tsx", "adapters/node/main.ts"];
    case "bun":
      return [bin("bun"), "adapters/bun/main.ts"];
    case "deno":
      return [bin("deno"), "run", "-A", "adapters/deno/main.ts"];
    default:
      throw new Error(`unknown runtime '${runtime}' (expected node, bun or deno)`);
  }
}

export interface ProxyProcess {
  readonly runtime: string;
  readonly port: number;
  readonly pid: number;
  /** Lines the proxy logged (stdout and stderr). */
  readonly log: string[];
  /** Current VmRSS in bytes (0 once it has exited). */
  rss(): number;
  stop(): Promise<void>;
}

/**
 * Start slotgate from checkout `dir` on `runtime` in front of `seeds`, with `env` added (and, on
 * Node, `nodeFlags` before the script: `--cpu-prof` is refused in NODE_OPTIONS).
 */
export async function startProxyProcess(runtime: string, dir: string, seeds: string[], env: Record<string, string> = {}, nodeFlags: string[] = []): Promise<ProxyProcess> {
  const root = resolve(dir);
  const [bin, ...args] = serveCommand(runtime, root, nodeFlags);
  const port = await freePort();
  const child: ChildProcess = spawn(bin!, args, {
    cwd: root,
    env: {
      ...process.env,
      SLOTGATE_SEEDS: seeds.join(","),
      SLOTGATE_LISTEN: `127.0.0.1:${port}`,
      SLOTGATE_ADMIN_LISTEN: "off",
      SLOTGATE_LOG_LEVEL: "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log: string[] = [];
  const collect = (chunk: Buffer) => log.push(...chunk.toString().split("\n").filter((line) => line.length > 0));
  child.stdout!.on("data", collect);
  child.stderr!.on("data", collect);
  let exited = false;
  const exit = new Promise<void>((done) => child.once("exit", () => ((exited = true), done())));
  const proxy: ProxyProcess = {
    runtime,
    port,
    pid: child.pid!,
    log,
    rss: () => (exited ? 0 : vmRss(child.pid!)),
    async stop() {
      if (exited) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exit;
      clearTimeout(timer);
    },
  };
  try {
    await waitServing(port, () => exited);
  } catch (error) {
    await proxy.stop();
    throw new Error(`${runtime}: ${(error as Error).message}\n${log.join("\n")}`);
  }
  return proxy;
}

/** Resident set size of `pid` in bytes, from /proc/<pid>/status (0 if it cannot be read). */
export function vmRss(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Samples `read()` every `everyMs` and keeps the largest value seen. */
export class PeakSampler {
  peak = 0;
  readonly #timer: ReturnType<typeof setInterval>;
  constructor(read: () => number, everyMs = 20) {
    this.peak = read();
    this.#timer = setInterval(() => (this.peak = Math.max(this.peak, read())), everyMs);
  }
  stop(): number {
    clearInterval(this.#timer);
    return this.peak;
  }
}

async function waitServing(port: number, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && !exited()) {
    try {
      const conn = await RespConn.open(port);
      const reply = await conn.command("SET", "attack:ready", "1");
      conn.close();
      if (reply === "+OK\r\n") return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error(exited() ? "exited before serving" : "did not serve within 60 s");
}

export const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** Encodes a command as RESP. */
export function encode(...args: (string | Uint8Array)[]): Buffer {
  return encodeArgs(args);
}

/** Encodes a command given as one array (any length) as RESP. */
export function encodeArgs(args: readonly (string | Uint8Array)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === "string" ? Buffer.from(arg) : Buffer.from(arg.buffer, arg.byteOffset, arg.byteLength);
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from("\r\n"));
  }
  return Buffer.concat(parts);
}

/**
 * A raw RESP connection: write anything (with back-pressure), get each reply frame in order.
 * `command` sends one command and resolves with its reply as latin1 text; pipelined use goes
 * through `write` and `onReply`.
 */
export class RespConn {
  readonly socket: net.Socket;
  closed = false;
  replies = 0;
  onReply: ((frame: Uint8Array) => void) | null = null;
  readonly #waiting: ((frame: Uint8Array) => void)[] = [];
  readonly #closeWaiters: (() => void)[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    const reader = new ReplyReader((frame) => {
      this.replies++;
      const waiter = this.#waiting.shift();
      if (waiter) waiter(frame);
      else this.onReply?.(frame);
    }, { maxBulkBytes: 1 << 30, maxArrayLength: 1 << 30 });
    socket.on("data", (chunk: Buffer) => reader.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      for (const wake of this.#closeWaiters.splice(0)) wake();
      for (const waiter of this.#waiting.splice(0)) waiter(new Uint8Array(0));
    });
  }

  static open(port: number): Promise<RespConn> {
    return new Promise((done, fail) => {
      const socket = net.connect({ host: "127.0.0.1", port }, () => {
        socket.off("error", fail);
        done(new RespConn(socket));
      });
      socket.once("error", fail);
    });
  }

  /** Send one command; resolves with its reply (empty if the connection closed first). */
  command(...args: (string | Uint8Array)[]): Promise<string> {
    return new Promise((done) => {
      this.#waiting.push((frame) => done(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString("latin1")));
      this.socket.write(encode(...args));
    });
  }

  /** Write bytes; resolves once the socket takes more (false: the connection closed). */
  async write(bytes: Uint8Array): Promise<boolean> {
    if (this.closed) return false;
    if (this.socket.write(bytes)) return true;
    return new Promise((done) => {
      const drained = () => {
        this.socket.off("close", closed);
        done(true);
      };
      const closed = () => {
        this.socket.off("drain", drained);
        done(false);
      };
      this.socket.once("drain", drained);
      this.socket.once("close", closed);
    });
  }

  /** Resolves when the connection closes, or after `ms`; true if it closed. */
  closedWithin(ms: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((done) => {
      const timer = setTimeout(() => done(this.closed), ms);
      this.#closeWaiters.push(() => {
        clearTimeout(timer);
        done(true);
      });
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Latencies in milliseconds → the `p`-th percentile (0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)]!;
}

/** `--name value` from argv, or `fallback`. */
export function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1]! : fallback;
}

/** Every `--env K=V` (or `--<flag> K=V`) of argv, as an object. */
export function envOptions(flag = "env"): Record<string, string> {
  const env: Record<string, string> = {};
  process.argv.forEach((arg, i) => {
    if (arg !== `--${flag}`) return;
    const pair = process.argv[i + 1] ?? "";
    const eq = pair.indexOf("=");
    if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
  });
  return env;
}

export const mib = (bytes: number) => `${Math.round(bytes / MIB)} MiB`;

/** The `i`-th key of `populate`: six digits, so 1,000,000 of them make a 12 MB MGET. */
export function keyName(i: number): string {
  return String(i).padStart(6, "0");
}

const populated = new WeakMap<LocalCluster, number>();

/** SET keys `keyName(0..count)` to "x", straight to their owners (pipelined), once per cluster. */
export async function populate(cluster: LocalCluster, count: number): Promise<void> {
  if ((populated.get(cluster) ?? 0) >= count) return;
  const slots = (await cluster.reply(cluster.nodes[0]!.port, "CLUSTER", "SLOTS")) as [number, number, [string, number]][];
  const ownerPort = new Array<number>(16384);
  for (const [start, end, [, port]] of slots) for (let s = start; s <= end; s++) ownerPort[s] = Number(port);
  const byPort = new Map<number, string[]>();
  for (let i = 0; i < count; i++) {
    const key = keyName(i);
    const port = ownerPort[keySlot(Buffer.from(key))]!;
    let list = byPort.get(port);
    if (!list) byPort.set(port, (list = []));
    list.push(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$1\r\nx\r\n`);
  }
  await Promise.all([...byPort].map(async ([port, commands]) => {
    const conn = await RespConn.open(port);
    for (let i = 0; i < commands.length; i += 10_000) await conn.write(Buffer.from(commands.slice(i, i + 10_000).join("")));
    while (conn.replies < commands.length && !conn.closed) await sleep(50);
    conn.close();
  }));
  populated.set(cluster, count);
}
