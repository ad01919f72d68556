/**
 * `npx tsx scripts/fanout-latency.ts`: what one huge split command costs everyone else. A steady,
 * open-loop GET load (a fixed rate spread over several connections; each GET's latency counts
 * from the moment it was due, so a stalled proxy cannot hide the stall) runs against slotgate
 * while another client runs a 12 MB MGET of 1,000,000 keys, several times in a row. Prints the
 * GETs' p50/p99/max latency with no MGET running and while one runs, per runtime, and how long
 * each MGET took. Target: p99 under 50 ms while the MGET runs. Loopback only; the load and the
 * MGETs are bounded and stop by themselves.
 *
 * Options: --runtimes node,bun,deno   --rate GETs/s (default 2000)   --connections N (default 8)
 *          --rounds MGETs (default 3)  --keys N (default 1000000)
 *          --dir PATH (slotgate checkout to run)   --env K=V (repeatable)
 */
import { startLocalCluster, type LocalCluster } from "./local-cluster.ts";
import { RespConn, encode, encodeArgs, envOptions, keyName, mib, option, percentile, populate, sleep, startProxyProcess, type ProxyProcess } from "./proxy-process.ts";

const runtimes = option("runtimes", "node,bun,deno").split(",");
const rate = Number(option("rate", "2000"));
const connections = Number(option("connections", "8"));
const rounds = Number(option("rounds", "3"));
const keyCount = Number(option("keys", "1000000"));
const dir = option("dir", ".");
const env = envOptions();

/** One GET sent at `due` (ms, performance.now), answered at `answered`. */
interface Sample {
  due: number;
  answered: number;
}

/** Sends GETs at `rate` per second, round-robin over `conns`, until stopped. */
class OpenLoopLoad {
  readonly samples: Sample[] = [];
  errors = 0;
  #sent = 0;
  #stopped = false;
  readonly #start = performance.now();
  readonly #inFlight: number[][];
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #request = encode("GET", keyName(42));

  constructor(readonly conns: RespConn[]) {
    this.#inFlight = conns.map(() => []);
    conns.forEach((conn, c) => {
      conn.onReply = (frame) => {
        const due = this.#inFlight[c]!.shift()!;
        if (frame[0] !== 36 /* $ */) this.errors++;
        this.samples.push({ due, answered: performance.now() });
      };
    });
    this.#timer = setInterval(() => this.#tick(), 1);
  }

  #tick(): void {
    if (this.#stopped) return;
    const now = performance.now();
    const due = Math.floor(((now - this.#start) * rate) / 1000);
    for (; this.#sent < due; this.#sent++) {
      const c = this.#sent % this.conns.length;
      this.#inFlight[c]!.push(this.#start + (this.#sent * 1000) / rate);
      this.conns[c]!.socket.write(this.#request);
    }
  }

  /** Stop sending; resolves once every GET sent is answered (or 30 s pass). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    const deadline = Date.now() + 30_000;
    while (this.#inFlight.some((queue) => queue.length > 0) && Date.now() < deadline) await sleep(20);
  }

  /** Latencies (ms) of the GETs due within [from, to). */
  latencies(from: number, to: number): number[] {
    return this.samples.filter((s) => s.due >= from && s.due < to).map((s) => s.answered - s.due).sort((a, b) => a - b);
  }
}

function describe(latencies: number[]): string {
  if (latencies.length === 0) return "no samples";
  return `p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${percentile(latencies, 100).toFixed(1)} ms (${latencies.length} GETs)`;
}

async function run(proxy: ProxyProcess): Promise<string[]> {
  const conns = await Promise.all(Array.from({ length: connections }, () => RespConn.open(proxy.port)));
  const mget = await RespConn.open(proxy.port);
  const request = encodeArgs(["MGET", ...Array.from({ length: keyCount }, (_, i) => keyName(i))]);
  const load = new OpenLoopLoad(conns);
  const lines: string[] = [];
  try {
    await sleep(2000);
    const quietFrom = performance.now();
    await sleep(3000);
    const quietTo = performance.now();
    const windows: [number, number][] = [];
    const durations: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const start = performance.now();
      const size = await new Promise<number>((done) => {
        mget.onReply = (frame) => done(frame.length);
        mget.socket.write(request);
      });
      const end = performance.now();
      windows.push([start, end]);
      durations.push(`${((end - start) / 1000).toFixed(2)} s (${mib(size)} reply)`);
      await sleep(500);
    }
    await load.stop();
    const during = windows.flatMap(([from, to]) => load.latencies(from, to)).sort((a, b) => a - b);
    lines.push(`no MGET:     ${describe(load.latencies(quietFrom, quietTo))}`);
    lines.push(`during MGET: ${describe(during)}${load.errors ? `, ${load.errors} errors` : ""}`);
    lines.push(`MGET of ${keyCount} keys (${mib(request.length)}): ${durations.join(", ")}`);
  } finally {
    await load.stop();
    for (const conn of [...conns, mget]) conn.close();
  }
  return lines;
}

let cluster: LocalCluster | null = null;
let proxy: ProxyProcess | null = null;
const report: string[] = [];
try {
  cluster = await startLocalCluster({ replicasPerPrimary: 0 });
  await populate(cluster, keyCount);
  for (const runtime of runtimes) {
    proxy = await startProxyProcess(runtime, dir, cluster.seeds, env);
    const lines = await run(proxy);
    await proxy.stop();
    proxy = null;
    report.push(`slotgate/${runtime}`, ...lines.map((line) => `  ${line}`));
    console.log(report.slice(-4).join("\n"));
  }
} finally {
  await proxy?.stop();
  await cluster?.stop();
}
console.log(`\nsteady GET load ${rate}/s over ${connections} connections (latency from when each GET was due), ${rounds} MGETs; slotgate from ${dir}`);
console.log(report.join("\n"));
