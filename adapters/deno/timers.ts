/**
 * Time, timers and randomness on Deno: the monotonic clock is `performance.now()`, the wall clock
 * `Date.now()`, timers are Deno's `setTimeout` behind the shared cancel-final wrapper, deferred
 * work runs in batches from `setImmediate` where Deno has it (the Deno connections defer their
 * first read and their `close` with it too), and randomness is `Math.random()`.
 */
import { createSetTimer } from "../shared/timer.ts";

/** Monotonic milliseconds (fractional), for durations and deadlines. */
export const now = (): number => performance.now();

/** Milliseconds since the epoch, for display only. */
export const wallClock = (): number => Date.now();

/** A one-shot timer; its `cancel()` is final. */
export const setTimer = createSetTimer((ms, fn) => setTimeout(fn, ms), clearTimeout);

// Deno 2 has a global setImmediate, which yields to I/O. setTimeout(fn, 0) is clamped to ms once
// nested, and a MessageChannel port keeps the process alive and slows I/O.
const immediate = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate ?? ((fn: () => void) => setTimeout(fn, 0));

/**
 * Callbacks deferred since the last batch ran. One `setImmediate` runs them all, in order: a turn
 * that defers a flush for each of many connections pays for one hop, not one each. What a batch
 * defers goes into the next batch, a later turn, so a self-rescheduling `defer` still yields.
 */
let queued: (() => void)[] = [];

function runQueued(): void {
  const batch = queued;
  queued = [];
  for (const fn of batch) {
    try {
      fn();
    } catch (e) {
      // As from a setImmediate of its own: an uncaught exception, and the others still run.
      reportError(e);
    }
  }
}

/** Runs `fn` on a later turn of the event loop, after I/O already due. */
export const defer = (fn: () => void): void => {
  if (queued.push(fn) === 1) immediate(runQueued);
};

/** A uniform float in [0, 1). */
export const random = (): number => Math.random();
