/**
 * Time, timers and randomness on Node: the monotonic clock is `performance.now()`, the wall clock
 * `Date.now()`, timers are Node's `setTimeout` behind the shared cancel-final wrapper, deferred
 * work runs from `setImmediate` (after pending I/O, so a `defer` loop never starves sockets), and
 * randomness is `Math.random()`.
 */
import { createSetTimer } from "../shared/timer.ts";

/** Monotonic milliseconds (fractional), for durations and deadlines. */
export const now = (): number => performance.now();

/** Milliseconds since the epoch, for display only. */
export const wallClock = (): number => Date.now();

/** A one-shot timer; its `cancel()` is final. */
export const setTimer = createSetTimer((ms, fn) => setTimeout(fn, ms), clearTimeout);

/** Runs `fn` on a later turn of the event loop, after I/O already due. */
export const defer = (fn: () => void): void => {
  setImmediate(fn);
};

/** A uniform float in [0, 1). */
export const random = (): number => Math.random();
