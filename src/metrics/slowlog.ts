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
  #maxLen: number;
  /** Oldest first. */
  #entries: SlowlogEntry[] = [];
  #nextId = 0;

  constructor(thresholdUs: number, maxLen: number) {
    this.thresholdUs = thresholdUs;
    this.#maxLen = maxLen;
  }

  get maxLen(): number {
    return this.#maxLen;
  }

  /** A new length: the oldest entries past it go at once. */
  set maxLen(value: number) {
    this.#maxLen = value;
    this.#trim();
  }

  get length(): number {
    return this.#entries.length;
  }

  /** Whether a request of `durationUs` is logged. */
  wants(durationUs: number): boolean {
    return this.thresholdUs >= 0 && durationUs >= this.thresholdUs;
  }

  add(entry: Omit<SlowlogEntry, "id" | "args">, args: readonly Uint8Array[]): void {
    if (this.#maxLen === 0) return;
    this.#entries.push({ ...entry, id: this.#nextId++, args: truncateArgs(args) });
    this.#trim();
  }

  /** The newest `count` entries, newest first (`count` -1: all of them). */
  newest(count: number): SlowlogEntry[] {
    const n = count < 0 ? this.#entries.length : Math.min(count, this.#entries.length);
    const out: SlowlogEntry[] = [];
    for (let i = this.#entries.length - 1; out.length < n; i--) out.push(this.#entries[i]!);
    return out;
  }

  reset(): void {
    this.#entries = [];
  }

  #trim(): void {
    const excess = this.#entries.length - this.#maxLen;
    if (excess > 0) this.#entries.splice(0, excess);
  }
}
