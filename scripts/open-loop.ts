/**
 * An open-loop load generator for the benchmark's latency figure: GETs of one key at a fixed rate,
 * spread round-robin over several connections, for a bounded time. "Open loop" means a GET is
 * sent when it is due whether or not the earlier ones were answered, and its latency counts from
 * the moment it was due (not from when it was written), so a stalled server cannot hide the stall
 * by slowing the generator down. Latencies go into a sorted array; percentiles are read from it.
 *
 * The generator sends the same bytes to a Redis node and to a proxy in front of it (one key, whose
 * slot that node owns), so its own overhead is the same on both sides and the difference of two
 * runs is what the proxy adds. Loopback only; it stops by itself after `durationMs`.
 */
import { RespConn, encode, percentile, sleep } from "./proxy-process.ts";

export interface OpenLoopOptions {
  port: number;
  /** GETs per second, in total. */
  rate: number;
  connections: number;
  /** How long GETs are sent, warm-up included. */
  durationMs: number;
  /** GETs due in the first `warmupMs` are sent but not counted. */
  warmupMs: number;
  key: string;
  /** Extra commands sent first on each connection (e.g. AUTH), answered before the load starts. */
  hello?: string[][];
}

export interface OpenLoopResult {
  /** GETs counted (due after the warm-up) and answered. */
  count: number;
  /** GETs sent in all, and those never answered within 10 s after the last was sent. */
  sent: number;
  lost: number;
  /** Replies that were not a bulk string or nil. */
  errors: number;
  /** Answered GETs per second over the whole run. */
  achievedRate: number;
  /** Milliseconds from when a GET was due to its reply. */
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

/** Run the load once against `port`; resolves when every GET is answered (or given up on). */
export async function openLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const conns: RespConn[] = [];
  try {
    for (let i = 0; i < options.connections; i++) {
      const conn = await RespConn.open(options.port);
      conns.push(conn);
      for (const command of options.hello ?? []) await conn.command(...command);
    }
    return await drive(conns, options);
  } finally {
    for (const conn of conns) conn.close();
  }
}

async function drive(conns: RespConn[], options: OpenLoopOptions): Promise<OpenLoopResult> {
  const { rate, durationMs, warmupMs } = options;
  const request = encode("GET", options.key);
  const total = Math.floor((rate * durationMs) / 1000);
  const countFrom = Math.floor((rate * warmupMs) / 1000);
  // Per connection, the due times (ms, performance.now) of its GETs in flight, oldest first.
  const inFlight: number[][] = conns.map(() => []);
  const heads = conns.map(() => 0);
  const latencies = new Float64Array(Math.max(0, total - countFrom));
  let counted = 0;
  let answered = 0;
  let errors = 0;
  const start = performance.now();
  const dueAt = (n: number) => start + (n * 1000) / rate;
  conns.forEach((conn, c) => {
    const queue = inFlight[c]!;
    conn.onReply = (frame) => {
      const now = performance.now();
      const due = queue[heads[c]!]!;
      heads[c]!++;
      if (heads[c]! > 1024) {
        queue.splice(0, heads[c]!);
        heads[c] = 0;
      }
      answered++;
      if (frame[0] !== 36 /* $ */) errors++;
      // Negative due times mark warm-up GETs.
      if (due >= 0) latencies[counted++] = now - due;
    };
  });
  let sent = 0;
  await new Promise<void>((done) => {
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
      for (; sent < due; sent++) {
        const c = sent % conns.length;
        inFlight[c]!.push(sent < countFrom ? -1 : dueAt(sent));
        conns[c]!.socket.write(request);
      }
      if (sent >= total) {
        clearInterval(timer);
        done();
      }
    }, 1);
  });
  const deadline = performance.now() + 10_000;
  while (answered < sent && performance.now() < deadline && !conns.some((conn) => conn.closed)) await sleep(10);
  const elapsed = (performance.now() - start) / 1000;
  const sorted = Array.from(latencies.subarray(0, counted)).sort((a, b) => a - b);
  return {
    count: counted,
    sent,
    lost: sent - answered,
    errors,
    achievedRate: answered / elapsed,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: percentile(sorted, 100),
  };
}
