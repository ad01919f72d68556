/**
 * What one client holds in memory, kind by kind, and how much more of its work may be sent
 * upstream. The session keeps the counters current; `bytes` is what it reports to the clients'
 * memory budget (./clients-memory.ts), and `mayRun` decides whether its next request is sent now
 * or held (unsent, with reading paused) until it may be.
 *
 * A request is held while any of these holds:
 * - `maxPendingRequests` requests are unanswered;
 * - the client is owed `maxClientOwedBytes` or more: replies received for it (in its reply queue,
 *   or parts of a split command waiting for their merge) plus what its socket has not sent. A
 *   client that does not read stops being served here, before its replies pile up in the proxy
 *   or in Redis;
 * - its window of unanswered requests is full. The window starts at `INITIAL_WINDOW` and doubles
 *   once a whole window of replies has been written while it was full and the client keeps up
 *   (owes at most half of `maxClientOwedBytes`), up to `maxPendingRequests`; it falls back to
 *   `INITIAL_WINDOW` when the client owes more than `maxClientOwedBytes`. Reply sizes are unknown
 *   until they come, so this is what bounds the first burst of a client that pipelines big reads
 *   and never reads the replies (the kernel's socket buffer hides that for the first megabytes,
 *   which is why one write that looks fine is not enough to grow).
 */

/** Unanswered requests a client may have before its window has grown. */
export const INITIAL_WINDOW = 64;

export class ClientFlow {
  /** Requests read but held (not yet run), in bytes. */
  heldBytes = 0;
  /** Replies received and queued behind an earlier one still unanswered, in bytes. */
  queuedBytes = 0;
  /** Part replies that split commands hold until their merged reply is ready, in bytes. */
  splitBytes = 0;
  /** Unsent bytes of the client's socket, as seen after the last write or drain. */
  socketBytes = 0;
  #window = INITIAL_WINDOW;
  /** A request was held because the window was full, since the window last grew. */
  #limited = false;
  /** Replies written since the window last changed. */
  #written = 0;

  constructor(readonly maxOwedBytes: number) {}

  /** Bytes owed to the client, `outBytes` being the replies taken but not yet written. */
  owed(outBytes: number): number {
    return this.queuedBytes + this.splitBytes + outBytes + this.socketBytes;
  }

  /** The most unanswered requests allowed now. */
  cap(maxPending: number): number {
    return this.#window < maxPending ? this.#window : maxPending;
  }

  /** May one more request be sent, with `pending` unanswered? */
  mayRun(pending: number, outBytes: number, maxPending: number): boolean {
    if (pending >= maxPending || this.owed(outBytes) >= this.maxOwedBytes) return false;
    if (pending >= this.#window) {
      this.#limited = true;
      return false;
    }
    return true;
  }

  /** After `written` replies were written (or a drain): grow or shrink the window. True when it grew. */
  adjust(outBytes: number, maxPending: number, written = 0): boolean {
    this.#written += written;
    const owed = this.owed(outBytes);
    if (owed > this.maxOwedBytes) {
      this.#window = INITIAL_WINDOW;
      this.#limited = false;
      this.#written = 0;
      return false;
    }
    if (!this.#limited || this.#written < this.#window || owed > this.maxOwedBytes / 2 || this.#window >= maxPending) return false;
    this.#window *= 2;
    this.#limited = false;
    this.#written = 0;
    return true;
  }

  /** Everything the client holds, given the parts the session keeps itself. */
  bytes(unfinishedBytes: number, inFlightBytes: number, outBytes: number): number {
    return unfinishedBytes + this.heldBytes + inFlightBytes + this.owed(outBytes);
  }
}
