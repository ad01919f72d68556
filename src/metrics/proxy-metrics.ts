/**
 * What one slotgate counts, in one object the session, the listener, the upstream nodes and the
 * scrape share: plain number fields added to in place on the request path, per-command entries
 * (./commands.ts), the slow log (./slowlog.ts), the upstream nodes' counters (./upstream.ts) and
 * the event loop's lag (`loopLag`). Gauges that can be read when scraped (clients connected,
 * pending requests, slot coverage, memory) are not kept here: the scrape reads them.
 */
import { CommandStatsTable, type CommandStats } from "./commands.ts";
import { Slowlog } from "./slowlog.ts";
import { UpstreamStats } from "./upstream.ts";

export interface MetricsSettings {
  slowlogThresholdUs: number;
  slowlogMaxLen: number;
}

/** How late the event loop runs a timer: the last sample and the largest since the last scrape, in ms. */
export class LoopLag {
  lastMs = 0;
  maxMs = 0;
  /** Samples taken. */
  samples = 0;

  /** A timer due at `expected` ran at `actual` (monotonic ms). */
  sample(expected: number, actual: number): void {
    const lag = Math.max(0, actual - expected);
    this.lastMs = lag;
    if (lag > this.maxMs) this.maxMs = lag;
    this.samples++;
  }

  /** The largest lag since the last call, then start a new window. */
  takeMax(): number {
    const max = Math.max(this.maxMs, this.lastMs);
    this.maxMs = 0;
    return max;
  }
}

export class ProxyMetrics {
  /** Connections accepted (refused ones included), and refused for `maxClients`. */
  downstreamCxTotal = 0;
  downstreamCxRejected = 0;
  /** Clients closed for malformed input. */
  downstreamProtocolErrors = 0;
  /** Bytes read from and written to clients. */
  downstreamRxBytes = 0;
  downstreamTxBytes = 0;
  /** Requests run (commands read from clients), and those whose reply was written. */
  requests = 0;
  requestsDone = 0;
  /** Configuration changes applied, and refused. */
  configApplied = 0;
  configRefused = 0;
  readonly commands = new CommandStatsTable();
  readonly slowlog: Slowlog;
  readonly upstream = new UpstreamStats();
  readonly loopLag = new LoopLag();
  /** Monotonic ms of the last `INFO stats` read, and `requests` then (instantaneous_ops_per_sec). */
  #opsAt = 0;
  #opsRequests = 0;
  #opsPerSec = 0;

  constructor(settings: MetricsSettings) {
    this.slowlog = new Slowlog(settings.slowlogThresholdUs, settings.slowlogMaxLen);
  }

  /** Settings in force from now on (a live change). */
  update(settings: MetricsSettings): void {
    this.slowlog.thresholdUs = settings.slowlogThresholdUs;
    this.slowlog.maxLen = settings.slowlogMaxLen;
  }

  /** The command entry of an upper-case name. */
  command(upperName: string): CommandStats {
    return this.commands.of(upperName);
  }

  /**
   * Requests per second since the previous call (at most one new window a second): Redis's
   * `instantaneous_ops_per_sec`, computed when read, not sampled by a timer.
   */
  opsPerSec(now: number): number {
    const elapsed = now - this.#opsAt;
    if (elapsed >= 1000 || this.#opsAt === 0) {
      if (this.#opsAt !== 0) this.#opsPerSec = Math.round(((this.requests - this.#opsRequests) * 1000) / elapsed);
      this.#opsAt = now;
      this.#opsRequests = this.requests;
    }
    return this.#opsPerSec;
  }
}

/** How often the event loop's lag is probed, in milliseconds. */
export const LOOP_LAG_INTERVAL_MS = 500;

/**
 * Probe the event loop's lag for as long as `timer` arms timers (its scope is open): a timer is
 * due every `intervalMs`, and how late it runs, on the monotonic clock, is the lag.
 */
export function probeLoopLag(timer: (ms: number, fn: () => void) => void, now: () => number, lag: LoopLag, intervalMs = LOOP_LAG_INTERVAL_MS): void {
  const arm = () => {
    const due = now() + intervalMs;
    timer(intervalMs, () => {
      lag.sample(due, now());
      arm();
    });
  };
  arm();
}
