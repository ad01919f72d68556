/**
 * Per-command counters, as Redis's `INFO commandstats` and Envoy's `command.<cmd>.*` keep them:
 * calls, failed calls (an error reply), rejected calls (refused before running: no permission,
 * not authenticated), total microseconds, and a latency histogram with fixed buckets.
 *
 * The label set is bounded: one entry per top-level command of the built-in Redis 7 table, and
 * `other` for every name outside it (a module command, a typo), so a client cannot grow it. The
 * entries are made once; the session finds its entry with one lookup by the upper-case name it
 * already built, then adds to plain number fields: nothing is allocated per request.
 */
import { COMMANDS } from "../commands/generated/redis-7.0.ts";

/** Upper bounds of the latency buckets, in microseconds (the last bucket is everything above). */
export const LATENCY_BOUNDS_US: readonly number[] = [50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000];

export class CommandStats {
  calls = 0;
  failed = 0;
  rejected = 0;
  /** Microseconds spent by the calls, in total. */
  usec = 0;
  /** Calls per latency bucket (`LATENCY_BOUNDS_US`, then one for everything above). */
  readonly buckets = new Float64Array(LATENCY_BOUNDS_US.length + 1);

  /** `name`: lower-case, as Redis's `cmdstat_<name>` and the `command` label spell it. */
  constructor(readonly name: string) {}

  /** One call answered after `usec` microseconds; `failed` when its reply was an error. */
  record(usec: number, failed: boolean): void {
    this.recordMany(usec, 1, failed ? 1 : 0);
  }

  /** `calls` calls answered after `usec` microseconds each, `failed` of them with an error reply. */
  recordMany(usec: number, calls: number, failed: number): void {
    this.calls += calls;
    this.failed += failed;
    this.usec += usec * calls;
    let i = 0;
    const bounds = LATENCY_BOUNDS_US;
    while (i < bounds.length && usec > bounds[i]!) i++;
    this.buckets[i]! += calls;
  }
}

/** Every command's stats; `other` for names outside the built-in table. */
export class CommandStatsTable {
  readonly #byName = new Map<string, CommandStats>();
  readonly other = new CommandStats("other");

  constructor() {
    for (const row of COMMANDS) {
      const name = row[0];
      if (!name.includes("|")) this.#byName.set(name, new CommandStats(name.toLowerCase()));
    }
  }

  /** The entry of an upper-case command name. */
  of(upperName: string): CommandStats {
    return this.#byName.get(upperName) ?? this.other;
  }

  /** Entries that saw at least one call or rejection, by name. */
  used(): CommandStats[] {
    const used = [...this.#byName.values()].filter((s) => s.calls > 0 || s.rejected > 0);
    if (this.other.calls > 0 || this.other.rejected > 0) used.push(this.other);
    return used.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Forget every count (CONFIG RESETSTAT's share; tests). */
  reset(): void {
    for (const s of [...this.#byName.values(), this.other]) {
      s.calls = s.failed = s.rejected = s.usec = 0;
      s.buckets.fill(0);
    }
  }
}
