/**
 * Waiting inside a scope: `sleep` (a wait that ends as soon as the scope begins closing),
 * `withTimeout` (a deadline on a piece of work, owned by the scope) and `raceAbort` (a promise
 * that gives up when a signal aborts). Time is the runtime's monotonic milliseconds.
 */
import { ScopeClosedError, TimeoutError } from "../errors.ts";
import type { Scope } from "./scope.ts";

/**
 * Wait `ms` milliseconds in `scope`; rejects with `ScopeClosedError` as soon as the scope begins
 * closing, and with the signal's reason if `signal` aborts first. Listed as a timer "sleep".
 */
export function sleep(scope: Scope, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (!scope.isOpen) return reject(new ScopeClosedError(scope.path, "sleep"));
    if (signal?.aborted) return reject(signal.reason);
    const settle = (outcome: () => void) => {
      handle.cancel();
      signal?.removeEventListener("abort", onAbort);
      outcome();
    };
    // Timer, abort and close race; whoever releases the entry first settles the sleep.
    const onAbort = () => {
      if (entry.release()) settle(() => reject(signal!.reason));
    };
    const handle = scope.runtime.setTimer(ms, () => {
      if (entry.release()) settle(resolve);
    });
    // Close removes the entry itself, then calls dispose.
    const entry = scope.own("timer", "sleep", () => settle(() => reject(new ScopeClosedError(scope.path, "sleep"))), { stopAtClose: true });
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Run `fn` with a signal that aborts after `timeoutMs` (rejecting with `TimeoutError`) or when
 * `scope` is torn down. The deadline timer belongs to the scope and ends with `fn`; it is not
 * stopped when close begins, since the drain may be waiting for `fn`.
 */
export async function withTimeout<T>(scope: Scope, what: string, timeoutMs: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timeout = new TimeoutError(what, timeoutMs);
  const timer = scope.timer(`deadline ${what}`, timeoutMs, () => controller.abort(timeout), { stopAtClose: false });
  const onAbort = () => controller.abort(scope.signal.reason);
  scope.signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await raceAbort(fn(controller.signal), controller.signal);
  } finally {
    timer.cancel();
    scope.signal.removeEventListener("abort", onAbort);
  }
}

/** Settle with `promise`, or reject with the signal's reason as soon as it aborts. */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
