/**
 * Spawning and reaping `redis-server` processes for tests, benchmarks and `npm start`.
 * Every child is tracked in one module-level set so that a last-resort exit hook can SIGKILL
 * whatever a crashed or careless caller left running. Only node:child_process, node:fs,
 * node:path and node:process are used, which behave the same on Node, Bun and Deno.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import process from "node:process";
import { RespReplyError, sendCommand } from "./resp-client.ts";

const INSTALL_HINT =
  "install Redis 7 (Debian/Ubuntu: sudo apt-get install redis-server redis-tools; macOS: brew install redis)";

/** `redis-server` (or `redis-cli`) is not on PATH. The message says how to install it. */
export class RedisMissingError extends Error {
  override readonly name = "RedisMissingError";
  constructor(readonly binary: string) {
    super(`${binary} not found on PATH: ${INSTALL_HINT}`);
  }
}

/** redis-server could not bind its port (or cluster bus port); retry with other ports. */
export class PortInUseError extends Error {
  override readonly name = "PortInUseError";
}

/** Absolute path of `name` on PATH, or undefined. Checked by hand so a missing binary fails fast and clearly. */
export function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

/** Paths of redis-server and redis-cli; throws {@link RedisMissingError} when either is missing. */
export function requireRedisBinaries(): { server: string; cli: string } {
  const server = findOnPath("redis-server");
  if (server === undefined) throw new RedisMissingError("redis-server");
  const cli = findOnPath("redis-cli");
  if (cli === undefined) throw new RedisMissingError("redis-cli");
  return { server, cli };
}

/** One running (or exited) redis-server child. */
export interface RedisProcess {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  readonly pid: number;
  readonly configFile: string;
  readonly logFile: string;
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<void>;
  /** True until the process is seen to exit. */
  running(): boolean;
}

/** What {@link spawnRedis} needs; `config` is appended after the generated base lines, so it overrides them. */
export interface SpawnRedisOptions {
  serverPath: string;
  host: string;
  port: number;
  /** Working directory and Redis `dir`; must exist. */
  dir: string;
  config: string[];
  signal?: AbortSignal;
  /** How long to wait for the first PONG. Default 30 000 ms (a loaded 2-core box can be slow). */
  readyTimeoutMs?: number;
}

const live = new Map<number, ChildProcess>();
const tempDirs = new Set<string>();
let exitHookInstalled = false;

/**
 * Have `dir` removed by the exit hook if nobody removes it first. Returns the function that
 * removes it now (and forgets it); safe to call more than once.
 */
export function tempDirCleanup(dir: string): () => void {
  installExitHook();
  tempDirs.add(dir);
  return () => {
    tempDirs.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  };
}

/** Base config lines every test server gets: no persistence, loopback only, log to a file. */
export function baseConfig(host: string, port: number, dir: string): string[] {
  return [
    `port ${port}`,
    `bind ${host}`,
    "protected-mode no",
    "daemonize no",
    `dir ${dir}`,
    `logfile ${join(dir, "redis.log")}`,
    'save ""',
    "appendonly no",
    // Replicas sync immediately instead of waiting the default 5 s for more replicas to join.
    "repl-diskless-sync-delay 0",
    // Lets tests use DEBUG SLEEP and friends from loopback.
    "enable-debug-command local",
  ];
}

/**
 * Write `dir/redis.conf`, start redis-server on it and resolve once it answers PING. Throws
 * {@link PortInUseError} when the port was taken in the meantime (caller retries with new ports);
 * any other early exit throws with the tail of the server log. On failure the child is dead.
 */
export async function spawnRedis(options: SpawnRedisOptions): Promise<RedisProcess> {
  const { host, port, dir } = options;
  const configFile = join(dir, "redis.conf");
  const logFile = join(dir, "redis.log");
  writeFileSync(configFile, [...baseConfig(host, port, dir), ...options.config].join("\n") + "\n");
  return startFromConfig(options.serverPath, { host, port, dir, configFile, logFile }, options);
}

/** Start redis-server again on an existing config file (restarts keep the cluster's nodes.conf). */
export function respawnRedis(
  serverPath: string,
  previous: Pick<RedisProcess, "host" | "port" | "dir" | "configFile" | "logFile">,
  options: { signal?: AbortSignal; readyTimeoutMs?: number } = {},
): Promise<RedisProcess> {
  return startFromConfig(serverPath, previous, options);
}

async function startFromConfig(
  serverPath: string,
  where: Pick<RedisProcess, "host" | "port" | "dir" | "configFile" | "logFile">,
  options: { signal?: AbortSignal; readyTimeoutMs?: number },
): Promise<RedisProcess> {
  options.signal?.throwIfAborted();
  installExitHook();
  // A restart appends to the same log: only what this run writes counts.
  const logStart = existsSync(where.logFile) ? statSync(where.logFile).size : 0;
  // stdio is ignored: the server logs to logFile, and open pipes would keep runtimes' loops busy.
  const child = spawn(serverPath, [where.configFile], { cwd: where.dir, stdio: "ignore" });
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => {
    const done = () => {
      exited = true;
      if (child.pid !== undefined) live.delete(child.pid);
      resolve();
    };
    child.once("exit", done);
    child.once("error", done); // spawn failure (ENOENT, EACCES): there will be no 'exit'
  });
  if (child.pid !== undefined) live.set(child.pid, child);
  const proc: RedisProcess = {
    ...where,
    pid: child.pid ?? -1,
    exited: exitedPromise,
    running: () => !exited,
  };
  try {
    await waitForPong(proc, logStart, options.readyTimeoutMs ?? 30_000, options.signal);
    return proc;
  } catch (error) {
    await killRedis(proc);
    throw error;
  }
}

async function waitForPong(proc: RedisProcess, logStart: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = "";
  for (;;) {
    signal?.throwIfAborted();
    if (!proc.running()) {
      const log = tail(proc.logFile);
      if (/Address already in use|Could not create server TCP listening socket/i.test(log)) {
        throw new PortInUseError(`port ${proc.port} (or its cluster bus port) is in use:\n${log}`);
      }
      throw new Error(`redis-server on port ${proc.port} exited during startup. Log tail:\n${log}`);
    }
    // A PONG alone could come from another server that took the port first (this one then exits
    // with "Address already in use"): the port is ours only once our server's log says it listens.
    if (!listening(proc.logFile, logStart)) {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${proc.port} did not start listening within ${timeoutMs} ms`);
      await sleep(25);
      continue;
    }
    try {
      if ((await sendCommand(proc.host, proc.port, ["PING"], { timeoutMs: 2_000 })) === "PONG") return;
    } catch (error) {
      // A server with a password answers, just not to strangers: it is up.
      if (error instanceof RespReplyError && error.reply.startsWith("NOAUTH")) return;
      lastError = (error as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(`redis-server on port ${proc.port} did not answer PING within ${timeoutMs} ms (${lastError})`);
    }
    await sleep(25);
  }
}

/** The server logged, past `from`, that it accepts connections (Redis 7: "Ready to accept connections tcp"). */
function listening(logFile: string, from: number): boolean {
  return existsSync(logFile) && readFileSync(logFile).subarray(from).includes("Ready to accept connections");
}

/** SIGKILL the process (if still running) and wait until it has exited. Idempotent. */
export async function killRedis(proc: RedisProcess): Promise<void> {
  if (proc.running()) {
    const child = live.get(proc.pid);
    try {
      if (child !== undefined) child.kill("SIGKILL");
      else process.kill(proc.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  await proc.exited;
}

/** PIDs of redis-server children this process started that have not exited yet. */
export function liveRedisPids(): number[] {
  return [...live.keys()];
}

/** Last `lines` lines of a log file, or a note that it does not exist. */
export function tail(file: string, lines = 15): string {
  if (!existsSync(file)) return `(no log at ${file})`;
  return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

/** Sleep that wakes early (rejecting) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Last resort: SIGKILL every tracked child and remove tracked temp dirs when the process exits.
 * Node and Bun emit process 'exit'; `deno test` does not (it does dispatch the global 'unload'
 * event), so we listen to both. Everything here must be synchronous.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const child of live.values()) {
      try {
        child.kill("SIGKILL");
      } catch {
        // ignore: we are exiting anyway
      }
    }
    live.clear();
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    tempDirs.clear();
  };
  process.on("exit", killAll);
  const target = globalThis as { addEventListener?: (type: string, listener: () => void) => void };
  if (typeof target.addEventListener === "function") target.addEventListener("unload", killAll);
}

/** Result of {@link runTool}: exit code (null when killed) and interleaved stdout+stderr. */
export interface ToolResult {
  code: number | null;
  output: string;
}

/**
 * Run a short-lived tool (redis-cli) to completion, capturing its output. It is SIGKILLed
 * after `timeoutMs` or when `signal` aborts, and the promise then rejects.
 */
export function runTool(
  path: string,
  args: string[],
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<ToolResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    options.signal?.throwIfAborted();
    const child = spawn(path, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let failure: unknown;
    const collect = (chunk: Uint8Array) => (output += new TextDecoder().decode(chunk));
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    const stop = (reason: unknown) => {
      failure ??= reason;
      child.kill("SIGKILL");
    };
    const timer = setTimeout(() => stop(new Error(`${path} ${args.join(" ")} timed out after ${timeoutMs} ms`)), timeoutMs);
    const onAbort = () => stop(options.signal!.reason);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const finish = () => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    };
    child.once("error", (error) => {
      finish();
      reject(error);
    });
    // 'close' (not 'exit') so that all piped output has been read.
    child.once("close", (code) => {
      finish();
      if (failure instanceof Error && !options.signal?.aborted) failure.message += `\n${output}`;
      if (failure !== undefined) reject(failure);
      else resolve({ code, output });
    });
  });
}
