/**
 * Time, timers and randomness on Deno: the monotonic clock is `performance.now()`, the wall clock
 * `Date.now()`, timers are Deno's `setTimeout` behind the shared cancel-final wrapper, deferred
 * work runs in batches from `setImmediate` where Deno has it (the Deno connections defer their
 * first read and their `close` with it too), and randomness is `Math.random()`.
 */
import { createBatchedDefer } from "../shared/batched-defer.ts";
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

/** Runs `fn` on a later turn of the event loop, after I/O already due (batched: ../shared/batched-defer.ts). */
export const defer = createBatchedDefer(immediate);

/** A uniform float in [0, 1). */
export const random = (): number => Math.random();
