/**
 * The proxy's slow log: requests whose total time through slotgate — from the read of the bytes
 * that carried them to the write of their reply — reached `slowlogThresholdUs` (Redis's
 * `slowlog-log-slower-than`: -1 logs nothing, 0 logs every request), the newest `slowlogMaxLen`
 * of them (Redis's `slowlog-max-len`). An entry keeps what Redis's keeps, with Redis's
 * truncation (at most 32 arguments, the last one then saying how many more there were; an
 * argument over 128 bytes cut there and told how many bytes more), plus the upstream node that
 * answered (`""` for a reply the proxy made itself, `*` for one merged from several nodes).
 *
 * Only a request over the threshold costs anything beyond a comparison: its arguments are copied
 * then, never before.
 */

export const SLOWLOG_MAX_ARGC = 32;
export const SLOWLOG_MAX_STRING = 128;

export interface SlowlogEntry {
  readonly id: number;
  /** Unix time, in seconds, when the reply was written. */
  readonly time: number;
  readonly durationUs: number;
  readonly args: readonly Uint8Array[];
  /** `ip:port` of the client. */
  readonly client: string;
  /** The client's name (CLIENT SETNAME), "" when none. */
  readonly clientName: string;
  /** `host:port` of the upstream node that answered; "" when the proxy answered itself. */
  readonly node: string;
}

const encoder = new TextEncoder();

/** Redis's truncation of a slow command's arguments. */
export function truncateArgs(args: readonly Uint8Array[]): Uint8Array[] {
  const kept = Math.min(args.length, SLOWLOG_MAX_ARGC);
  const out: Uint8Array[] = [];
  for (let j = 0; j < kept; j++) {
    if (kept !== args.length && j === kept - 1) {
      out.push(encoder.encode(`... (${args.length - kept + 1} more arguments)`));
      break;
    }
    const arg = args[j]!;
    if (arg.length > SLOWLOG_MAX_STRING) {
      const tail = encoder.encode(`... (${arg.length - SLOWLOG_MAX_STRING} more bytes)`);
      const cut = new Uint8Array(SLOWLOG_MAX_STRING + tail.length);
      cut.set(arg.subarray(0, SLOWLOG_MAX_STRING));
      cut.set(tail, SLOWLOG_MAX_STRING);
      out.push(cut);
    } else {
      out.push(arg.slice());
    }
  }
  return out;
}

export class Slowlog {
  /** Microseconds from which a request is logged; -1: none is. Read on every request. */
  thresholdUs: number;
  /**
   * The newest `maxLen` entries in a ring: under load many requests pass the threshold (the time
   * counted includes waiting behind the client's own pipeline), so adding one must not shift an
   * array or copy the entry.
   */
  #ring: (SlowlogEntry | undefined)[];
  /** Index of the oldest entry. */
  #head = 0;
  #count = 0;
  #nextId = 0;

  constructor(thresholdUs: number, maxLen: number) {
    this.thresholdUs = thresholdUs;
    this.#ring = new Array<SlowlogEntry | undefined>(maxLen);
  }

  get maxLen(): number {
    return this.#ring.length;
  }

  /** A new length: the oldest entries past it go at once. */
  set maxLen(value: number) {
    if (value === this.#ring.length) return;
    const kept = this.newest(value).reverse();
    this.#ring = new Array<SlowlogEntry | undefined>(value);
    for (let i = 0; i < kept.length; i++) this.#ring[i] = kept[i];
    this.#head = 0;
    this.#count = kept.length;
  }

  get length(): number {
    return this.#count;
  }

  /** Whether a request of `durationUs` is logged. */
  wants(durationUs: number): boolean {
    return this.thresholdUs >= 0 && durationUs >= this.thresholdUs;
  }

  add(time: number, durationUs: number, args: readonly Uint8Array[], client: string, clientName: string, node: string): void {
    const capacity = this.#ring.length;
    if (capacity === 0) return;
    const entry: SlowlogEntry = { id: this.#nextId++, time, durationUs, args: truncateArgs(args), client, clientName, node };
    if (this.#count < capacity) {
      this.#ring[(this.#head + this.#count++) % capacity] = entry;
    } else {
      this.#ring[this.#head] = entry;
      this.#head = (this.#head + 1) % capacity;
    }
  }

  /** The newest `count` entries, newest first (`count` -1: all of them). */
  newest(count: number): SlowlogEntry[] {
    const n = count < 0 ? this.#count : Math.min(count, this.#count);
    const capacity = this.#ring.length;
    const out: SlowlogEntry[] = [];
    for (let k = this.#count - 1; out.length < n; k--) out.push(this.#ring[(this.#head + k) % capacity]!);
    return out;
  }

  reset(): void {
    this.#ring.fill(undefined);
    this.#head = 0;
    this.#count = 0;
  }
}
