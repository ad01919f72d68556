/**
 * `npx tsx scripts/idle-memory.ts [--clients N] [--runtimes node,bun,deno] [--settle-ms MS]`:
 * what an idle client costs slotgate in memory. For each runtime, starts slotgate (the real entry
 * point) in front of a local cluster, reads its resident set (`VmRSS` in /proc, Linux) and its
 * JavaScript heap (INFO's `used_memory`), opens N clients (default 10,000) that each send one
 * PING (as a RESP array, as client libraries do), read `+PONG` and then stay connected doing
 * nothing, waits `--settle-ms` (default 3000), reads both again, and prints the growth per client
 * in KiB. slotgate gets `SLOTGATE_MAX_CLIENTS` N + 100. Needs `ulimit -n` above N plus a few
 * hundred (both this process and slotgate hold N sockets). Without a forced collection the heap
 * figure includes garbage not yet collected; Node's RSS varies by about 1 KiB per client.
 *
 * Bounded: loopback only, N connections opened 200 at a time; everything started is stopped at
 * the end (also on failure).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import process from "node:process";
import { startLocalCluster, type LocalCluster } from "./local-cluster.ts";
import { freePort } from "./free-port.ts";
import { option, serveCommand } from "./proxy-process.ts";

const clients = Number(option("clients", "10000"));
const runtimes = option("runtimes", "node,bun,deno").split(",");
const settleMs = Number(option("settle-ms", "3000"));
/** Connections being opened at once. */
const BATCH = 200;

/** Resident set of process `pid`, in bytes. */
function rss(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) * 1024 : NaN;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Open a client, send `request`, and resolve with the socket and what it read once `done(read)`
 * holds (null if it failed first). The socket stays open, its `data` listener removed.
 */
function open(port: number, request: string, done: (read: string) => boolean): Promise<{ socket: net.Socket; read: string } | null> {
  return new Promise((resolve) => {
    let read = "";
    const socket = net.connect({ host: "127.0.0.1", port }, () => socket.write(request));
    const onData = (data: Buffer) => {
      read += data.toString("latin1");
      if (!done(read)) return;
      socket.off("data", onData);
      resolve({ socket, read });
    };
    socket.on("data", onData);
    socket.on("error", () => resolve(null));
    socket.on("close", () => resolve(null));
  });
}

const ping = (port: number) => open(port, "*1\r\n$4\r\nPING\r\n", (read) => read.length >= 7).then((r) => (r?.read === "+PONG\r\n" ? r.socket : (r?.socket.destroy(), null)));

/** The `used_memory` (JavaScript heap in use) INFO reports, in bytes. */
async function heapUsed(port: number): Promise<number> {
  const info = await open(port, "*2\r\n$4\r\nINFO\r\n$6\r\nmemory\r\n", (read) => read.endsWith("\r\n\r\n"));
  info?.socket.destroy();
  return Number(/used_memory:(\d+)/.exec(info?.read ?? "")?.[1] ?? NaN);
}

async function ready(port: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const socket = await ping(port);
    if (socket !== null) return void socket.destroy();
    await sleep(200);
  }
  throw new Error(`slotgate on port ${port} did not become ready`);
}

interface Row {
  runtime: string;
  rssKiB: number;
  heapKiB: number;
}

const rows: Row[] = [];
let cluster: LocalCluster | null = null;
let proxy: ChildProcess | null = null;
const sockets: net.Socket[] = [];
try {
  cluster = await startLocalCluster({ replicasPerPrimary: 0 });
  for (const runtime of runtimes) {
    const [bin, ...args] = serveCommand(runtime, ".");
    if (bin === undefined) throw new Error(`unknown runtime '${runtime}' (node, bun, deno)`);
    const port = await freePort();
    const env = { SLOTGATE_SEEDS: cluster.seeds.join(","), SLOTGATE_LISTEN: `127.0.0.1:${port}`, SLOTGATE_ADMIN_LISTEN: "off", SLOTGATE_LOG_LEVEL: "warn", SLOTGATE_MAX_CLIENTS: String(clients + 100) };
    proxy = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit"] });
    await ready(port);
    // A first batch warms up what every client shares (code, the command table's caches).
    for (let i = 0; i < 100; i++) (await ping(port))?.destroy();
    await sleep(settleMs);
    const [rssBefore, heapBefore] = [rss(proxy.pid!), await heapUsed(port)];
    for (let done = 0; done < clients; ) {
      const batch = Math.min(BATCH, clients - done);
      const opened = await Promise.all(Array.from({ length: batch }, () => ping(port)));
      const failed = opened.filter((s) => s === null).length;
      if (failed > 0) throw new Error(`${failed} of ${batch} clients failed to connect or PING (check \`ulimit -n\`)`);
      sockets.push(...(opened as net.Socket[]));
      done += batch;
    }
    await sleep(settleMs);
    const [rssAfter, heapAfter] = [rss(proxy.pid!), await heapUsed(port)];
    rows.push({ runtime, rssKiB: (rssAfter - rssBefore) / clients / 1024, heapKiB: (heapAfter - heapBefore) / clients / 1024 });
    console.log(`${runtime}: RSS ${(rssBefore / 2 ** 20).toFixed(1)} → ${(rssAfter / 2 ** 20).toFixed(1)} MiB, heap ${(heapBefore / 2 ** 20).toFixed(1)} → ${(heapAfter / 2 ** 20).toFixed(1)} MiB`);
    for (const socket of sockets.splice(0)) socket.destroy();
    proxy.kill("SIGTERM");
    await new Promise((resolve) => proxy!.once("close", resolve));
    proxy = null;
  }
} finally {
  for (const socket of sockets) socket.destroy();
  proxy?.kill("SIGKILL");
  await cluster?.stop();
}

console.log(`\n${clients} idle clients (each sent one PING), growth per client after ${settleMs} ms\n`);
console.log(`${"runtime".padEnd(8)} ${"RSS KiB".padStart(8)} ${"heap KiB".padStart(9)}`);
for (const row of rows) console.log(`${row.runtime.padEnd(8)} ${row.rssKiB.toFixed(2).padStart(8)} ${row.heapKiB.toFixed(2).padStart(9)}`);
