/**
 * Start an expensive fixture (a local cluster, a standalone Redis) on first use instead of in a
 * `before` hook: Bun's node:test shim ignores the `timeout` option of hooks (5 s default), while it
 * honours it on tests, so starting inside a test with `{ timeout }` works on all three runtimes.
 */
export interface Lazy<T> {
  /** Start on the first call; later calls share the same promise. */
  get(): Promise<T>;
  /** Stop it if it was started (and started successfully); no-op otherwise. */
  stop(): Promise<void>;
}

/** Wrap `start` so that the fixture starts once, on first `get()`, and `stop()` is always safe. */
export function lazy<T extends { stop(): Promise<void> }>(start: () => Promise<T>): Lazy<T> {
  let starting: Promise<T> | undefined;
  return {
    get: () => (starting ??= start()),
    async stop() {
      const value = await starting?.catch(() => undefined);
      await value?.stop();
    },
  };
}
