/**
 * Racing an operation that cannot be cancelled (getaddrinfo, Bun.connect, ...) against an
 * `AbortSignal`: the abort wins at once with an `AbortError`, and whatever the operation settles
 * with later is dropped. The operation itself keeps running; a caller that must release what it
 * produces late (a socket) attaches its own handler to the original promise.
 */
import { AbortError } from "./errors.ts";

/**
 * Settles like `promise`, unless `signal` aborts first (or already has): then rejects with an
 * `AbortError` for `what` ("connect to host:port"). Without a signal it is `promise` itself.
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortError(what, signal.reason));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
