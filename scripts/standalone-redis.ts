/**
 * One plain (non-cluster) redis-server on a free loopback port, for benchmarks and differential
 * tests that compare the proxy's answers with a real server's. Same hygiene as the cluster helper:
 * temp dir, tracked child, cleanup on failure, `stop()` kills and removes everything.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePorts } from "./free-port.ts";
import {
  PortInUseError,
  killRedis,
  requireRedisBinaries,
  spawnRedis,
  tempDirCleanup,
  type RedisProcess,
} from "./redis-process.ts";
import { replyToString, sendCommand, type RespValue } from "./resp-client.ts";

/** Options for {@link startStandaloneRedis}. */
export interface StandaloneOptions {
  /** Default "127.0.0.1". */
  host?: string;
  /** Extra redis.conf lines, appended last. */
  extraConfig?: string[];
  /** Aborting cancels a start in progress. */
  signal?: AbortSignal;
  /** Parent of the temp dir. Default `os.tmpdir()`. */
  tmpRoot?: string;
}

/** A running standalone redis-server. */
export interface StandaloneRedis {
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  readonly dir: string;
  /** Send one command; the reply rendered as text. Error replies reject. */
  command(...args: Array<string | number>): Promise<string>;
  /** Send one command; the decoded reply. */
  reply(...args: Array<string | number>): Promise<RespValue>;
  /** Kill the server, wait for it to exit, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Start one redis-server (no cluster mode, no persistence) and resolve once it answers PING.
 * Throws RedisMissingError when Redis is not installed; a failed start leaves nothing behind.
 */
export async function startStandaloneRedis(options: StandaloneOptions = {}): Promise<StandaloneRedis> {
  const { server } = requireRedisBinaries();
  const host = options.host ?? "127.0.0.1";
  const dir = mkdtempSync(join(options.tmpRoot ?? tmpdir(), "slotgate-redis-"));
  const removeDir = tempDirCleanup(dir);
  let proc: RedisProcess | undefined;
  try {
    for (let attempt = 1; proc === undefined; attempt++) {
      const [port] = (await freePorts(1, host)) as [number];
      try {
        proc = await spawnRedis({ serverPath: server, host, port, dir, config: options.extraConfig ?? [], signal: options.signal });
      } catch (error) {
        if (!(error instanceof PortInUseError) || attempt >= 5) throw error;
      }
    }
  } catch (error) {
    removeDir();
    throw error;
  }
  const running = proc;
  let stopping: Promise<void> | undefined;
  const reply = (...args: Array<string | number>) => sendCommand(host, running.port, args);
  return {
    host,
    port: running.port,
    pid: running.pid,
    dir,
    reply,
    command: async (...args) => replyToString(await reply(...args)),
    stop() {
      stopping ??= killRedis(running).then(removeDir);
      return stopping;
    },
  };
}
