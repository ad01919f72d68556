/**
 * `Runtime.defer` for every adapter: callbacks deferred since the last batch ran wait in one list,
 * and one `immediate` (the runtime's setImmediate: after I/O already due) runs them all, in order.
 * A turn in which many connections each defer a flush pays for one hop, not one each (on Node
 * every setImmediate is an object and a trip through the timers phase). What a batch defers goes
 * into the next batch, a later turn, so a self-rescheduling `defer` still yields to I/O, and
 * "wait one turn" (a client's reply coalescing) keeps its meaning.
 */
export function createBatchedDefer(immediate: (fn: () => void) => unknown): (fn: () => void) => void {
  let queued: (() => void)[] = [];
  const runQueued = (): void => {
    const batch = queued;
    queued = [];
    for (const fn of batch) {
      try {
        fn();
      } catch (e) {
        // As from a setImmediate of its own: an uncaught exception, and the rest still run.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  };
  return (fn) => {
    if (queued.push(fn) === 1) immediate(runQueued);
  };
}
