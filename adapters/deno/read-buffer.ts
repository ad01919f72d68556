/**
 * What a Deno connection reads into. Deno's `read` op holds the buffer it was given for as long as
 * the peer sends nothing, so an idle connection costs its read buffer: it reads into a small
 * "quiet" buffer, sized by the requests its client sends, and into a large pooled "busy" one only
 * while reads keep filling what they are given. Buffers cannot be shared between connections:
 * every idle connection has a read in flight, and Deno writes into its buffer when the bytes come,
 * before the connection's callback runs. Each read's bytes are handed over as a copy, so a buffer
 * is reused and the owner of a chunk may keep it (and views of it) as long as it likes.
 */

/** Smallest quiet buffer, in bytes: a RESP PING is 14, a GET of a 16-byte key 37. */
export const QUIET_MIN_BYTES = 128;
/**
 * Largest quiet buffer, in bytes; requests larger than this are read through a busy buffer. A
 * busy read shorter than this ends the burst (see `take`).
 */
export const QUIET_MAX_BYTES = 1024;
/** A busy buffer, in bytes: what one read takes from a connection that keeps filling its buffer. */
export const BUSY_BYTES = 64 * 1024;
/** Reads in a row that use at most half of the quiet buffer before it is halved. */
export const SHRINK_AFTER_READS = 8;

/**
 * Busy buffers no connection is using, for the next one that gets busy: a client whose requests
 * are a little over its quiet size takes one at each request, and would otherwise make a new
 * 64 KiB buffer each time. At most BUSY_POOL are kept, per process.
 */
const spareBusyBuffers: Uint8Array<ArrayBuffer>[] = [];
const BUSY_POOL = 16;

/** The buffers of one connection: `current` for the next read, `take(n)` after it. */
export class ReadBuffer {
  #quiet = new Uint8Array(QUIET_MIN_BYTES);
  #busy: Uint8Array<ArrayBuffer> | null = null;
  /** Quiet reads in a row that used at most half of the quiet buffer. */
  #smallReads = 0;

  /** The buffer to give the next read. */
  get current(): Uint8Array<ArrayBuffer> {
    return this.#busy ?? this.#quiet;
  }

  /**
   * A copy of the `n` bytes the last read put at the start of `current`, for the caller to own;
   * then picks the buffer for the next read. A read that fills its buffer means the peer had
   * more: the next read takes a busy buffer, and a quiet buffer too small for this client's
   * requests doubles. A busy connection goes back to its quiet buffer after a read of less than
   * QUIET_MAX_BYTES (its burst is over), not after any read short of BUSY_BYTES: a pipelining
   * client whose bursts are a few KiB would then read each burst twice (measured on Deno with
   * redis-benchmark -P 16: 13% fewer SETs per second, 25% more CPU per request). The price: a
   * connection that falls silent right after such a burst holds its busy buffer until it speaks.
   */
  take(n: number): Uint8Array<ArrayBuffer> {
    const chunk = this.current.slice(0, n);
    if (this.#busy === null) this.#afterQuietRead(n);
    else if (n < QUIET_MAX_BYTES) this.#leaveBusy();
    return chunk;
  }

  #afterQuietRead(n: number): void {
    const size = this.#quiet.byteLength;
    if (n === size) {
      this.#busy = spareBusyBuffers.pop() ?? new Uint8Array(BUSY_BYTES);
      if (size < QUIET_MAX_BYTES) this.#quiet = new Uint8Array(size * 2);
      this.#smallReads = 0;
    } else if (n > size / 2 || size === QUIET_MIN_BYTES) {
      this.#smallReads = 0;
    } else if (++this.#smallReads === SHRINK_AFTER_READS) {
      // Hysteresis: a client that mixes small and large requests keeps the size its large ones need.
      this.#quiet = new Uint8Array(size / 2);
      this.#smallReads = 0;
    }
  }

  #leaveBusy(): void {
    // Nothing else refers to it: every chunk taken from it was a copy.
    if (spareBusyBuffers.length < BUSY_POOL) spareBusyBuffers.push(this.#busy!);
    this.#busy = null;
  }
}
