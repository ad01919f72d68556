/**
 * The `Runtime.setTimer` contract on top of any one-shot timer: `cancel()` is idempotent and
 * final, whatever the host's timer queue does with a timer that is already due in the current
 * loop turn, and a fired timer's `cancel()` is a no-op. Every adapter, the simulator included,
 * wraps its own host timer with it; the host timer is passed in, so this file names no runtime
 * global.
 */
import type { TimerHandle } from "../../src/runtime.ts";

/**
 * A `setTimer(ms, fn)` over `start(ms, fn)`, which arms the host's timer and returns its handle,
 * and `stop(handle)`, which disarms it.
 */
export function createSetTimer<H>(
  start: (ms: number, fn: () => void) => H,
  stop: (handle: H) => void,
): (ms: number, fn: () => void) => TimerHandle {
  return function setTimer(ms: number, fn: () => void): TimerHandle {
    // The flag makes cancel() final even if the timer is already due in this loop turn.
    let live = true;
    const handle = start(ms, () => {
      if (!live) return;
      live = false;
      fn();
    });
    return {
      cancel() {
        if (!live) return;
        live = false;
        stop(handle);
      },
    };
  };
}
