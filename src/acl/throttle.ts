/**
 * Failed AUTH attempts, counted per client address (the host, not the port), so the listener
 * cannot be brute-forced at line rate: after `FREE_FAILURES` failures from one address within
 * `WINDOW_MS`, every further AUTH (or HELLO ... AUTH) from it waits before its password is
 * checked. The waits of one address are serialised across all its connections, `STEP_MS` apart,
 * and none is longer than `MAX_DELAY_MS`. The table holds at most `MAX_ADDRESSES` addresses
 * (the stalest goes first), so an attacker with many addresses costs bounded memory.
 */

/** Failures from one address, within the window, that are answered at once. */
export const FREE_FAILURES = 5;
/** How long failures are remembered, from the first of a run, in milliseconds. */
export const WINDOW_MS = 60_000;
/** The gap between two delayed attempts from one address, in milliseconds. */
export const STEP_MS = 250;
/** The longest one attempt is delayed, in milliseconds. */
export const MAX_DELAY_MS = 5_000;
/** Addresses remembered at most. */
export const MAX_ADDRESSES = 10_000;

interface Entry {
  /** Runtime clock reading (ms) of the first failure of the current window. */
  since: number;
  failures: number;
  /** The earliest time the next delayed attempt from this address may run. */
  nextAt: number;
}

export class AuthThrottle {
  readonly #entries = new Map<string, Entry>();
  /** Failed attempts since start, and attempts that were delayed: INFO reports them. */
  failures = 0;
  delayed = 0;

  constructor(readonly now: () => number, readonly maxAddresses = MAX_ADDRESSES) {}

  /** How long (ms) an AUTH from `address` must wait before it is checked: 0 when it may run now. */
  delayFor(address: string): number {
    const entry = this.#current(address);
    if (entry === undefined || entry.failures < FREE_FAILURES) return 0;
    const now = this.now();
    const at = Math.min(Math.max(now, entry.nextAt) + STEP_MS, now + MAX_DELAY_MS);
    entry.nextAt = at;
    this.delayed++;
    return at - now;
  }

  /** An attempt from `address` failed. */
  failed(address: string): void {
    this.failures++;
    let entry = this.#current(address);
    if (entry === undefined) {
      entry = { since: this.now(), failures: 0, nextAt: 0 };
      if (this.#entries.size >= this.maxAddresses) this.#entries.delete(this.#entries.keys().next().value!);
    }
    entry.failures++;
    // Re-inserted last: the first entry of the map is always the stalest.
    this.#entries.delete(address);
    this.#entries.set(address, entry);
  }

  /** Addresses remembered now. */
  get size(): number {
    return this.#entries.size;
  }

  /** Failures from `address` in its current window. */
  failuresOf(address: string): number {
    return this.#current(address)?.failures ?? 0;
  }

  #current(address: string): Entry | undefined {
    const entry = this.#entries.get(address);
    if (entry !== undefined && this.now() - entry.since > WINDOW_MS) {
      this.#entries.delete(address);
      return undefined;
    }
    return entry;
  }
}
