/**
 * `npx tsx scripts/memory-attacks.ts`: the memory attacks of issue 11 §2, each against a fresh
 * slotgate process (Node, Bun and Deno in turn) in front of one local cluster (3 primaries), and
 * the proxy's resident memory (VmRSS, sampled every 20 ms) before and at its peak. A fifth,
 * well-behaved client runs GETs throughout each attack; its slowest answer and its errors are
 * printed too. Every attack sends a bounded number of bytes over loopback and stops by itself.
 *
 *   unfinished  one client sends 1.13 GB of one unfinished request (two 500 MiB bulks and more)
 *   four        four clients each send 400 MiB of an unfinished bulk, at once
 *   mget        one client runs a 12 MB MGET of 1,000,000 keys (1-byte values)
 *   unread      one client pipelines 3,000 GETs of a 1 MiB value and never reads; also shows the
 *               owning node's largest client output buffer (omem) and how many GETs reached it
 *   slownode    a node stops reading (SIGSTOP, 6 s); 8 clients pipeline 100 SETs of 1 MiB each to it
 *
 * Options: --runtimes node,bun,deno   --attacks unfinished,four,mget,unread,slownode
 *          --dir PATH   the slotgate checkout to run (default: this one; e.g. a checkout of an
 *                       older commit, to measure its behaviour)
 *          --env K=V    a SLOTGATE_* variable for the proxy (repeatable)
 */
import process from "node:process";
import { startLocalCluster, type LocalCluster } from "./local-cluster.ts";
import { keySlot } from "../src/backends/cluster/slot.ts";
import { MIB, PeakSampler, RespConn, encode, encodeArgs, envOptions, keyName, mib, option, percentile, populate, sleep, startProxyProcess, type ProxyProcess } from "./proxy-process.ts";

const runtimes = option("runtimes", "node,bun,deno").split(",");
const attacks = option("attacks", "unfinished,four,mget,unread,slownode").split(",");
const dir = option("dir", ".");
const env = envOptions();

interface Row {
  attack: string;
  runtime: string;
  baseline: number;
  peak: number;
  /** The most the proxy counted for all clients (INFO's slotgate_clients_memory_bytes; 0 when it has none). */
  accounted: number;
  notes: string;
}

/** Polls the proxy's INFO for what it counts for all clients, keeping the most seen. */
function accountedPeak(port: number): { stop(): Promise<number> } {
  let peak = 0;
  let running = true;
  const done = (async () => {
    const conn = await RespConn.open(port);
    while (running && !conn.closed) {
      const match = /slotgate_clients_memory_bytes:(\d+)/.exec(await conn.command("INFO", "proxy"));
      if (match) peak = Math.max(peak, Number(match[1]));
      await sleep(50);
    }
    conn.close();
  })();
  return {
    async stop() {
      running = false;
      await done;
      return peak;
    },
  };
}

/** A well-behaved client: one GET at a time, for as long as the attack lasts. */
class GetLoop {
  readonly latencies: number[] = [];
  errors = 0;
  #running = true;
  readonly #done: Promise<void>;

  constructor(readonly conn: RespConn, key: string) {
    this.#done = (async () => {
      while (this.#running && !conn.closed) {
        const start = performance.now();
        const reply = await conn.command("GET", key);
        this.latencies.push(performance.now() - start);
        if (!reply.startsWith("$")) this.errors++;
      }
    })();
  }

  async stop(): Promise<string> {
    this.#running = false;
    await this.#done;
    this.conn.close();
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return `other client: ${sorted.length} GETs, p99 ${percentile(sorted, 99).toFixed(1)} ms, max ${percentile(sorted, 100).toFixed(0)} ms, ${this.errors} errors`;
  }
}

/** A GetLoop on `key` whose client id has the parity of `id` (the same shared connection, with 2 per node). */
async function sameConnection(proxy: ProxyProcess, id: number, key: string): Promise<GetLoop> {
  for (;;) {
    const conn = await RespConn.open(proxy.port);
    if (Number((await conn.command("CLIENT", "ID")).slice(1)) % 2 === id % 2) {
      await conn.command("SET", key, "fine");
      return new GetLoop(conn, key);
    }
    conn.close();
  }
}

async function getLoop(proxy: ProxyProcess): Promise<GetLoop> {
  const conn = await RespConn.open(proxy.port);
  await conn.command("SET", "attack:other", "fine");
  return new GetLoop(conn, "attack:other");
}

/** Sends `total` bytes: `head`, then filler, with `joints` (offset → bytes) spliced in; stops if closed. */
async function sendUnfinished(conn: RespConn, head: string, total: number, joints: Map<number, string> = new Map()): Promise<number> {
  const filler = Buffer.alloc(MIB, "x");
  let sent = 0;
  if (!(await conn.write(Buffer.from(head)))) return sent;
  sent += head.length;
  while (sent < total && !conn.closed) {
    let chunk: Buffer = filler;
    for (const [at, text] of joints) {
      if (at >= sent && at < sent + filler.length) {
        chunk = Buffer.concat([filler.subarray(0, at - sent), Buffer.from(text), filler.subarray(at - sent)]);
        joints.delete(at);
        break;
      }
    }
    if (!(await conn.write(chunk))) break;
    sent += chunk.length;
  }
  return sent;
}


const ATTACKS: Record<string, (proxy: ProxyProcess, cluster: LocalCluster) => Promise<string>> = {
  async unfinished(proxy) {
    const other = await getLoop(proxy);
    const conn = await RespConn.open(proxy.port);
    const bulk = 500 * MIB;
    // MSET a <500 MiB> b <500 MiB> c <500 MiB>, cut off 1.13 GB in.
    const head = `*7\r\n$4\r\nMSET\r\n$1\r\na\r\n$${bulk}\r\n`;
    const joint = (key: string) => `\r\n$1\r\n${key}\r\n$${bulk}\r\n`;
    const second = head.length + bulk;
    const third = second + joint("b").length + bulk;
    let reply = "";
    conn.onReply = (frame) => (reply = Buffer.from(frame).toString().trim());
    const sent = await sendUnfinished(conn, head, 1.13e9, new Map([[second, joint("b")], [third, joint("c")]]));
    const closed = await conn.closedWithin(2000);
    conn.close();
    return `sent ${mib(sent)}, disconnected: ${closed ? `yes${reply ? ` (${reply})` : ""}` : "no"}; ${await other.stop()}`;
  },

  async four(proxy) {
    const other = await getLoop(proxy);
    const conns = await Promise.all([0, 1, 2, 3].map(() => RespConn.open(proxy.port)));
    const bulk = 400 * MIB;
    const sent = await Promise.all(conns.map((conn, i) => sendUnfinished(conn, `*3\r\n$3\r\nSET\r\n$8\r\nattack:${i}\r\n$${bulk}\r\n`, bulk)));
    const closed = await Promise.all(conns.map((conn) => conn.closedWithin(2000)));
    for (const conn of conns) conn.close();
    return `sent ${sent.map(mib).join(" / ")}, disconnected ${closed.filter(Boolean).length} of 4; ${await other.stop()}`;
  },

  async mget(proxy, cluster) {
    await populate(cluster, 1_000_000);
    // Built before the other client starts: this process's own pause must not count against the proxy.
    const request = encodeArgs(["MGET", ...Array.from({ length: 1_000_000 }, (_, i) => keyName(i))]);
    const other = await getLoop(proxy);
    await sleep(500);
    const conn = await RespConn.open(proxy.port);
    const start = performance.now();
    const reply = await new Promise<number>((done) => {
      conn.onReply = (frame) => done(frame.length);
      conn.socket.write(request);
    });
    const took = performance.now() - start;
    conn.close();
    await sleep(500);
    return `request ${mib(request.length)}, reply ${mib(reply)} in ${took.toFixed(0)} ms; ${await other.stop()}`;
  },

  async unread(proxy, cluster) {
    const key = "attack:big";
    const setter = await RespConn.open(proxy.port);
    await setter.command("SET", key, Buffer.alloc(MIB, "b"));
    setter.close();
    const owner = await cluster.ownerOfSlot(keySlot(Buffer.from(key)));
    const callsBefore = await getCalls(cluster, owner.port);
    const conn = await RespConn.open(proxy.port);
    // The other client reads a small key of the same node, on the same shared connection
    // (slotgate picks it by client id): it shows what the attack costs others.
    const other = await sameConnection(proxy, Number((await conn.command("CLIENT", "ID")).slice(1)), `{${key}}:other`);
    conn.socket.pause();
    let maxOmem = 0;
    let polling = true;
    const poller = (async () => {
      const admin = await RespConn.open(owner.port);
      while (polling) {
        const list = await admin.command("CLIENT", "LIST");
        for (const match of list.matchAll(/omem=(\d+)/g)) maxOmem = Math.max(maxOmem, Number(match[1]));
        await sleep(50);
      }
      admin.close();
    })();
    conn.socket.write(encode("GET", key).toString("latin1").repeat(3000), "latin1");
    const closed = await conn.closedWithin(10_000);
    conn.close();
    const result = await other.stop();
    polling = false;
    await poller;
    const calls = (await getCalls(cluster, owner.port)) - callsBefore;
    return `disconnected: ${closed ? "yes" : "no"}; GETs that reached Redis: ${calls - other.latencies.length}; node's largest client output buffer: ${mib(maxOmem)}; ${result}`;
  },

  async slownode(proxy, cluster) {
    // A key of each of the 8 clients on the node that will stop reading; the other client reads another node's key.
    const owner = await cluster.ownerOfSlot(keySlot(Buffer.from("{slow}")));
    const other = await getLoop(proxy);
    const conns = await Promise.all(Array.from({ length: 8 }, () => RespConn.open(proxy.port)));
    const value = Buffer.alloc(MIB, "s");
    let replies = 0;
    const errors = new Map<string, number>();
    for (const conn of conns) {
      conn.onReply = (frame) => {
        replies++;
        if (frame[0] !== 45 /* - */) return;
        // The error without the node's address: one count per kind.
        const kind = Buffer.from(frame).toString().trim().replace(/\d+\.\d+\.\d+\.\d+:\d+/, "HOST:PORT");
        errors.set(kind, (errors.get(kind) ?? 0) + 1);
      };
    }
    process.kill(owner.pid, "SIGSTOP");
    try {
      await Promise.all(conns.map(async (conn, c) => {
        for (let i = 0; i < 100; i++) if (!(await conn.write(encode("SET", `{slow}:${c}:${i}`, value)))) break;
      }));
      await sleep(6000);
    } finally {
      process.kill(owner.pid, "SIGCONT");
    }
    await sleep(1000);
    for (const conn of conns) conn.close();
    await cluster.waitForStable();
    return `${replies} replies within the stop and 1 s after: ${[...errors].map(([kind, n]) => `${n} × ${kind}`).join(", ") || "no errors"}; ${await other.stop()}`;
  },
};

async function getCalls(cluster: LocalCluster, port: number): Promise<number> {
  const text = await cluster.command(port, "INFO", "commandstats");
  return Number(/cmdstat_get:calls=(\d+)/.exec(text)?.[1] ?? 0);
}

const rows: Row[] = [];
let cluster: LocalCluster | null = null;
let proxy: ProxyProcess | null = null;
try {
  cluster = await startLocalCluster({ replicasPerPrimary: 0, extraConfig: ["cluster-node-timeout 30000"] });
  for (const attack of attacks) {
    const run = ATTACKS[attack];
    if (!run) throw new Error(`unknown attack '${attack}' (expected ${Object.keys(ATTACKS).join(", ")})`);
    for (const runtime of runtimes) {
      proxy = await startProxyProcess(runtime, dir, cluster.seeds, env);
      await sleep(1000);
      const baseline = proxy.rss();
      const sampler = new PeakSampler(() => proxy!.rss());
      const accounting = accountedPeak(proxy.port);
      let notes: string;
      try {
        notes = await run(proxy, cluster);
      } catch (error) {
        notes = `FAILED: ${(error as Error).message}`;
      }
      const peak = sampler.stop();
      const accounted = await accounting.stop();
      const logTail = proxy.log.filter((line) => /warn|error/i.test(line)).slice(0, 3).map((line) => line.slice(0, 240));
      await proxy.stop();
      proxy = null;
      const row = { attack, runtime, baseline, peak, accounted, notes };
      rows.push(row);
      console.log(`${attack.padEnd(10)} ${runtime.padEnd(5)} RSS ${mib(baseline)} -> peak ${mib(peak)}${accounted ? ` (clients counted: ${mib(accounted)} at most)` : ""}; ${notes}`);
      for (const line of logTail) console.log(`           log: ${line}`);
    }
  }
} finally {
  await proxy?.stop();
  await cluster?.stop();
}

console.log(`\nslotgate from ${dir}${Object.keys(env).length ? ` with ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ")}` : ""}`);
console.log(`${"attack".padEnd(10)} ${"runtime".padEnd(7)} ${"RSS before".padStart(10)} ${"peak RSS".padStart(10)} ${"counted".padStart(10)}`);
for (const row of rows) console.log(`${row.attack.padEnd(10)} ${row.runtime.padEnd(7)} ${mib(row.baseline).padStart(10)} ${mib(row.peak).padStart(10)} ${(row.accounted ? mib(row.accounted) : "-").padStart(10)}`);
