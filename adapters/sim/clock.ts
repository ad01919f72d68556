/**
 * The simulator's virtual clock. Nothing here reads real time or schedules a real macrotask:
 * time moves only when a driver (`step`, `advance`, `runUntilIdle`) fires the next event.
 *
 * Two queues:
 * - timers, ordered by (due time, sequence number): two timers due at the same instant fire in
 *   the order they were armed;
 * - `defer`red tasks, a FIFO run before the next timer (like setImmediate: after the current
 *   event, before time moves on).
 *
 * One *step* runs exactly one event (the oldest deferred task, else the earliest timer, with
 * `now()` set to its due time) and then *settles*: it yields to the microtask queue until
 * promise reactions have run. JavaScript cannot ask "is the microtask queue empty?", so settling
 * awaits an already-resolved promise repeatedly, and stops after `settleQuietRounds` consecutive
 * yields during which nothing new was scheduled on this clock (any `setTimer`/`defer`/`cancel`
 * restarts the count), bounded by `settleMaxRounds` in total.
 *
 * Limits of the approach, all deterministic: a promise chain that needs more than
 * `settleQuietRounds` microtask hops *without* touching the clock (e.g. a long chain of `await`s on
 * already-resolved promises) is not finished when the next event fires; its remainder then
 * interleaves with that event. That changes *when* it runs, never *whether the run replays*: the
 * microtask order is fixed by the spec, so the same seed and program still give the same
 * interleaving. Raise `settleQuietRounds` if a scenario depends on such chains finishing first.
 * Real I/O or real timers started by code under test (which the sim never does itself) would
 * break determinism; so would awaiting work outside the simulated world.
 */
import type { TimerHandle } from "../../src/runtime.ts";

export interface ClockOptions {
  /** Initial `now()`, in milliseconds (default 0). */
  startMs?: number;
  /** Consecutive quiet microtask yields that end a settle (default 32). */
  settleQuietRounds?: number;
  /** Hard bound on microtask yields per settle (default 10 000). */
  settleMaxRounds?: number;
}

export interface RunOptions {
  /** Stop after this many steps (default 1 000 000). */
  maxSteps?: number;
  /** Stop before firing a timer due more than this many ms after the run started (default: no limit). */
  maxTimeMs?: number;
}

export interface RunResult {
  /** Steps run. */
  steps: number;
  /** Why the run stopped: nothing left to do, the step budget, or the time budget. */
  reason: "idle" | "maxSteps" | "maxTime";
}

interface Timer {
  due: number;
  seq: number;
  fn: () => void;
  live: boolean;
}

export class SimClock {
  #now: number;
  #seq = 0;
  /** Sorted by (due, seq). */
  #timers: Timer[] = [];
  #deferred: (() => void)[] = [];
  /** Bumped by every scheduling operation; settle uses it to notice new work. */
  #activity = 0;
  #running = false;
  readonly settleQuietRounds: number;
  readonly settleMaxRounds: number;
  /** Counters for traces and assertions. */
  readonly stats = { timersFired: 0, deferredRun: 0, steps: 0 };

  constructor(options: ClockOptions = {}) {
    this.#now = options.startMs ?? 0;
    this.settleQuietRounds = options.settleQuietRounds ?? 32;
    this.settleMaxRounds = options.settleMaxRounds ?? 10_000;
  }

  /** Virtual milliseconds. */
  now(): number {
    return this.#now;
  }

  /** Run `fn` once `ms` virtual milliseconds from now (negative or NaN counts as 0). */
  setTimer(ms: number, fn: () => void): TimerHandle {
    const delay = ms > 0 ? ms : 0;
    const timer: Timer = { due: this.#now + delay, seq: this.#seq++, fn, live: true };
    // Binary search for the first timer that sorts after this one; seq is the largest so far,
    // so that is the first timer with a later due time.
    let lo = 0;
    let hi = this.#timers.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#timers[mid]!.due <= timer.due) lo = mid + 1;
      else hi = mid;
    }
    this.#timers.splice(lo, 0, timer);
    this.#activity++;
    return {
      cancel: () => {
        if (!timer.live) return;
        timer.live = false;
        this.#activity++;
        const at = this.#timers.indexOf(timer);
        if (at >= 0) this.#timers.splice(at, 1);
      },
    };
  }

  /** Queue `fn` to run before the next timer, after tasks deferred earlier. */
  defer(fn: () => void): void {
    this.#deferred.push(fn);
    this.#activity++;
  }

  /** Timers armed and neither fired nor cancelled. */
  pendingTimers(): number {
    return this.#timers.length;
  }

  /** Deferred tasks not yet run. */
  pendingDeferred(): number {
    return this.#deferred.length;
  }

  /** Due time of the earliest timer, or undefined. */
  nextTimerAt(): number | undefined {
    return this.#timers[0]?.due;
  }

  /** True when neither timers nor deferred tasks are queued. */
  get idle(): boolean {
    return this.#timers.length === 0 && this.#deferred.length === 0;
  }

  /** Yield to promise reactions until no new clock work appears for `settleQuietRounds` yields. */
  async settle(): Promise<void> {
    let mark = this.#activity;
    let quiet = 0;
    for (let rounds = 0; quiet < this.settleQuietRounds && rounds < this.settleMaxRounds; rounds++) {
      await Promise.resolve();
      if (this.#activity !== mark) {
        mark = this.#activity;
        quiet = 0;
      } else {
        quiet++;
      }
    }
  }

  /** Run one event without settling; false when nothing was queued (or the timer is past `limit`). */
  #fireOne(limit = Number.POSITIVE_INFINITY): boolean {
    const task = this.#deferred.shift();
    if (task) {
      this.#activity++;
      this.stats.deferredRun++;
      this.stats.steps++;
      task();
      return true;
    }
    const timer = this.#timers[0];
    if (!timer || timer.due > limit) return false;
    this.#timers.shift();
    timer.live = false;
    this.#activity++;
    if (timer.due > this.#now) this.#now = timer.due;
    this.stats.timersFired++;
    this.stats.steps++;
    timer.fn();
    return true;
  }

  #enter(): void {
    if (this.#running) throw new Error("SimClock: a step is already running (do not drive the clock from inside a callback)");
    this.#running = true;
  }

  /** Settle, run the next event (deferred task first, else the earliest timer), settle again. */
  async step(): Promise<boolean> {
    this.#enter();
    try {
      await this.settle();
      const ran = this.#fireOne();
      if (ran) await this.settle();
      return ran;
    } finally {
      this.#running = false;
    }
  }

  /**
   * Run events until nothing is queued, `maxSteps` events ran, or the next timer is due more than
   * `maxTimeMs` after the start (then `now()` stays at the last fired event).
   */
  async runUntilIdle(options: RunOptions = {}): Promise<RunResult> {
    const maxSteps = options.maxSteps ?? 1_000_000;
    const limit = this.#now + (options.maxTimeMs ?? Number.POSITIVE_INFINITY);
    this.#enter();
    try {
      let steps = 0;
      await this.settle();
      for (;;) {
        if (steps >= maxSteps) return { steps, reason: "maxSteps" };
        if (!this.#fireOne(limit)) return { steps, reason: this.idle ? "idle" : "maxTime" };
        steps++;
        await this.settle();
      }
    } finally {
      this.#running = false;
    }
  }

  /**
   * Move time forward by `ms`: run every deferred task and every timer due up to `now() + ms`
   * (including those armed meanwhile), in order, then set `now()` to the target.
   */
  async advance(ms: number): Promise<number> {
    if (!(ms >= 0)) throw new RangeError("SimClock.advance: cannot move time backwards");
    const target = this.#now + ms;
    this.#enter();
    try {
      let steps = 0;
      await this.settle();
      while (this.#fireOne(target)) {
        steps++;
        await this.settle();
      }
      this.#now = target;
      return steps;
    } finally {
      this.#running = false;
    }
  }
}
