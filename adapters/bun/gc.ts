/**
 * Garbage collection on Bun, asked for after clients are evicted for using too much memory:
 * JSC lets the evicted clients' buffers linger well past the budget (measured: 1.4 GB resident
 * with a 1 GiB budget), so they are collected at once, with `Bun.gc(true)`. Evictions are rare;
 * the pause is a few tens of milliseconds.
 */
export const collectGarbage = (): void => {
  Bun.gc(true);
};
