/**
 * The memory of every client together, as Redis 7's `maxmemory-clients` bounds it: each session
 * reports what it holds (its query buffer, the requests it has in flight, the replies it is owed)
 * whenever that changes, and once the sum passes the budget the client holding the most is
 * disconnected, then the next, until the sum is back under it. Owned by the server, one per
 * listener; a budget of 0 turns eviction off (the sum is still kept, for INFO).
 */
import type { Logger } from "../../log.ts";

/** A client the budget can see and evict. */
export interface MemoryUser {
  readonly id: number;
  /** The client's `host:port`, for the log line of its eviction. */
  readonly addr?: string;
  /** Drop the connection at once, and every buffer with it; the budget forgets the client. */
  evict(): void;
}

export class ClientsMemory {
  readonly #held = new Map<MemoryUser, number>();
  #total = 0;
  #evicting = false;
  /** Clients disconnected by the budget since start (INFO's `evicted_clients`). */
  evicted = 0;

  /**
   * `limit()` is read at each check, so a live change applies at once; 0: no limit.
   * `evicted()` is called once after each round of evictions (their buffers are garbage now).
   */
  constructor(
    readonly limit: () => number,
    readonly log: Logger,
    readonly onEvicted: () => void = () => {},
  ) {}

  /** Bytes held by every client together, as last reported. */
  get totalBytes(): number {
    return this.#total;
  }

  /** What `user` last reported (0 when unknown). */
  bytesOf(user: MemoryUser): number {
    return this.#held.get(user) ?? 0;
  }

  /** `user` now holds `bytes`; past the budget, the largest clients are evicted. */
  set(user: MemoryUser, bytes: number): void {
    const before = this.#held.get(user) ?? 0;
    if (bytes === before) return;
    // A client holding nothing (an idle one) takes no entry.
    if (bytes === 0) this.#held.delete(user);
    else this.#held.set(user, bytes);
    this.#total += bytes - before;
    if (bytes > before) this.#enforce();
  }

  /** `user` is gone: what it held no longer counts. Idempotent. */
  remove(user: MemoryUser): void {
    const bytes = this.#held.get(user);
    if (bytes === undefined) return;
    this.#held.delete(user);
    this.#total -= bytes;
  }

  #enforce(): void {
    const max = this.limit();
    // An eviction may report back into `set` (a session dropping its buffers): one loop runs.
    if (max <= 0 || this.#total <= max || this.#evicting) return;
    this.#evicting = true;
    try {
      while (this.#total > max) {
        let largest: MemoryUser | null = null;
        let most = 0;
        for (const [user, bytes] of this.#held) {
          if (bytes > most) {
            most = bytes;
            largest = user;
          }
        }
        if (largest === null) return;
        this.log.warn("client disconnected: maxmemory-clients reached", {
          limit: "maxClientsMemoryBytes",
          id: largest.id,
          bytes: most,
          totalBytes: this.#total,
          maxBytes: max,
          addr: largest.addr,
        });
        this.remove(largest);
        this.evicted++;
        largest.evict();
      }
    } finally {
      this.#evicting = false;
    }
    this.onEvicted();
  }
}
