/**
 * The simulator's `Runtime`: virtual time (SimClock), an in-memory TCP network (SimNetwork), a
 * DNS table (SimDns) and seeded randomness (SimRandom), so the unmodified core in `src/` runs on
 * a simulated world and one seed replays a run exactly. Every component draws from its own
 * labelled fork of the seed ("runtime", "network", "dns"), so adding draws in one never shifts
 * the others.
 *
 * Nothing runs by itself: a driver moves time with `sim.clock.step()`, `advance(ms)` or
 * `runUntilIdle()`. `trace` records notable events, each prefixed with the virtual time; for the
 * same seed and the same driver it is identical, byte for byte.
 */
import type { Conn, ConnectOptions, ConnHandlers, FetchHandler, HttpServer, Listener, ListenOptions, Runtime, TimerHandle } from "../../src/runtime.ts";
import { createSetTimer } from "../shared/timer.ts";
import { SimClock, type ClockOptions } from "./clock.ts";
import { SimDns, type DnsOptions } from "./dns.ts";
import { SimNetwork, type NetworkOptions } from "./network.ts";
import { SimRandom } from "./random.ts";

export { SimClock } from "./clock.ts";
export { SimDns } from "./dns.ts";
export { SimConn } from "./connection.ts";
export { SimNetError, SimNetwork } from "./network.ts";
export { SimRandom } from "./random.ts";

export interface SimRuntimeOptions extends NetworkOptions, DnsOptions, ClockOptions {
  /** The seed of every random choice (32-bit unsigned; other numbers are truncated). */
  seed: number;
  /** The address of the host this runtime plays (the source of its connects). Default "10.0.0.1". */
  host?: string;
  /** `wallClock()` at virtual time 0, ms since the epoch. Default 1 700 000 000 000. */
  epochMs?: number;
  /** Also trace every timer armed through `setTimer` when it fires. Default false. */
  traceTimers?: boolean;
}

export interface SimRuntime extends Runtime {
  readonly name: "sim";
  readonly seed: number;
  readonly host: string;
  readonly clock: SimClock;
  readonly network: SimNetwork;
  readonly dns: SimDns;
  /** The root stream; `random()` draws from its "runtime" fork. */
  readonly random: (() => number) & { stream: SimRandom };
  /** Notable events, `"<virtual ms> <event>"`. */
  readonly trace: string[];
  /** Add a line to the trace (tests mark phases of a scenario with it). */
  note(event: string): void;
  /** Add a line with the clock's counters (steps, timers fired, deferred tasks run). */
  checkpoint(label: string): void;
  /** A `Runtime` for another simulated host sharing this world (same clock, network, DNS, trace). */
  forHost(host: string): Runtime;
}

function formatTime(ms: number): string {
  return ms.toFixed(3).padStart(10);
}

export function createSimRuntime(options: SimRuntimeOptions): SimRuntime {
  const seed = options.seed >>> 0;
  const root = new SimRandom(seed);
  const clock = new SimClock(options);
  const trace: string[] = [];
  const log = (event: string) => void trace.push(`${formatTime(clock.now())} ${event}`);
  const network = new SimNetwork(clock, root.fork("network"), options, log);
  const dns = new SimDns(clock, root.fork("dns"), options, log);
  const stream = root.fork("runtime");
  const epochMs = options.epochMs ?? 1_700_000_000_000;
  const traceTimers = options.traceTimers ?? false;
  let timerIds = 0;
  // cancel() is final whatever the clock's queue does, as in the real adapters.
  const setClockTimer = createSetTimer((ms, fn) => clock.setTimer(ms, fn), (handle) => handle.cancel());

  const view = (host: string): Runtime => ({
    name: "sim",
    now: () => clock.now(),
    wallClock: () => epochMs + clock.now(),
    setTimer(ms: number, fn: () => void): TimerHandle {
      const id = ++timerIds;
      return setClockTimer(ms, () => {
        if (traceTimers) log(`timer ${id} fired`);
        fn();
      });
    },
    defer: (fn) => clock.defer(fn),
    random: () => stream.float(),
    // The simulated network carries plain bytes only: TLS is tested on the real runtimes.
    connect: (o: ConnectOptions, handlers: ConnHandlers): Promise<Conn> =>
      o.tls ? Promise.reject(new Error("TLS is not supported in the simulator")) : network.connect(host, o, handlers),
    listen: (o: ListenOptions, accept: (conn: Conn) => ConnHandlers): Promise<Listener> =>
      o.tls ? Promise.reject(new Error("TLS is not supported in the simulator")) : network.listen(o.host, o.port, accept),
    lookup: (hostname: string, signal: AbortSignal) => dns.lookup(hostname, signal),
    serveHttp: (_o: ListenOptions, _f: FetchHandler): Promise<HttpServer> =>
      Promise.reject(new Error("serveHttp is not supported in the simulator")),
    readTextFile: (path: string): Promise<string> => Promise.reject(new Error(`the simulator has no files (read of ${path})`)),
    // Fixed figures: a simulated process has no memory of its own, and a run must replay exactly.
    memoryUsage: () => ({ rss: 64 * 1024 * 1024, heapUsed: 32 * 1024 * 1024 }),
  });

  const host = options.host ?? "10.0.0.1";
  const random = Object.assign(() => stream.float(), { stream: root });
  return {
    ...view(host),
    name: "sim",
    seed,
    host,
    clock,
    network,
    dns,
    random,
    trace,
    note: log,
    checkpoint(label: string) {
      const s = clock.stats;
      log(`checkpoint ${label}: steps ${s.steps}, timers ${s.timersFired}, deferred ${s.deferredRun}, open links ${network.links.size}`);
    },
    forHost: view,
  };
}
