/**
 * The benchmark's idle-client memory figure: open N connections to a server, PING on each (so the
 * server has set up whatever a served client costs), leave them idle, and read the server's
 * resident memory (VmRSS from /proc/<pid>/status) before and after. The client side is raw
 * node:net sockets in the calling process: a few hundred bytes each, no parser.
 *
 * Every process has at most `ulimit -n` descriptors, the server as well as this one, and a process
 * cannot raise its own hard limit; `idleClientLimit` gives how many fit, leaving room for the rest.
 */
import { execFileSync } from "node:child_process";
import net from "node:net";
import { sleep, vmRss } from "./proxy-process.ts";

/** Descriptors kept free for everything else a process holds (upstream links, files, pipes). */
const SPARE_FDS = 256;

/** The soft limit on open files (`ulimit -n`, inherited by children), or null if unknown. */
export function openFileLimit(): number | null {
  try {
    const text = execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).trim();
    return text === "unlimited" ? Number.MAX_SAFE_INTEGER : Number(text);
  } catch {
    return null;
  }
}

/** How many idle clients of `wanted` fit under `ulimit -n`, and a note when that is fewer. */
export function idleClientLimit(wanted: number): { count: number; note: string | null } {
  const limit = openFileLimit();
  if (limit === null || limit - SPARE_FDS >= wanted) return { count: wanted, note: null };
  const count = Math.max(0, limit - SPARE_FDS);
  return { count, note: `idle clients lowered from ${wanted} to ${count}: ulimit -n is ${limit} (raise it in the shell to measure more)` };
}

export interface IdleResult {
  clients: number;
  /** VmRSS in bytes before the first connection and after the last PING was answered and things settled. */
  rssBefore: number;
  rssAfter: number;
  kibPerClient: number;
}

/** Open `count` connections to `port` (`batch` at a time), PING on each, then measure `pid`'s RSS. */
export async function measureIdleClients(port: number, pid: number, count: number, settleMs = 1000, batch = 200): Promise<IdleResult> {
  const sockets: net.Socket[] = [];
  try {
    await sleep(settleMs);
    const rssBefore = vmRss(pid);
    for (let opened = 0; opened < count; opened += batch) {
      const wave = Array.from({ length: Math.min(batch, count - opened) }, () => pingOnce(port, sockets));
      await Promise.all(wave);
    }
    await sleep(settleMs);
    const rssAfter = vmRss(pid);
    return { clients: count, rssBefore, rssAfter, kibPerClient: (rssAfter - rssBefore) / 1024 / count };
  } finally {
    for (const socket of sockets) socket.destroy();
  }
}

/** Connect, send PING, resolve on +PONG; the socket stays open (in `keep`). */
function pingOnce(port: number, keep: net.Socket[]): Promise<void> {
  return new Promise((done, fail) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => socket.write("*1\r\n$4\r\nPING\r\n"));
    keep.push(socket);
    let got = "";
    const onData = (chunk: Buffer) => {
      got += chunk.toString("latin1");
      if (!got.includes("\r\n")) return;
      socket.off("data", onData);
      if (got.startsWith("+PONG")) done();
      else fail(new Error(`PING answered ${JSON.stringify(got.trim())}`));
    };
    socket.on("data", onData);
    socket.on("error", fail);
    socket.once("close", () => fail(new Error(`connection ${keep.length} closed before PONG`)));
  });
}
