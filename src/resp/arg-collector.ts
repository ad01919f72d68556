/**
 * The arguments of a request that spans chunks, taken while its chunks arrive. Decoding such a
 * request only once it is complete would be one long synchronous step (a 12 MB MGET of a million
 * keys is hundreds of milliseconds of parsing, during which no other client is served); taken
 * chunk by chunk, the work is spread over the reads that bring the bytes.
 *
 * The collector is fed exactly the frame's bytes, in order, after the frame scanner has checked
 * them, so it only follows the `*N` and `$N` headers and trusts them. An argument that lies within
 * one chunk is a view of that chunk; a small one cut by a chunk boundary is copied once; a large
 * one (over `COPY_MAX_BYTES`) cut by a boundary becomes a view of the joined frame at `take`, so a
 * big value is never held twice. A request of more than `LAZY_ARGS` arguments keeps only their
 * offsets, and its arguments are made when read (./lazy-args.ts).
 */
import { lazyArgs } from "./lazy-args.ts";

/** Cut arguments up to this size are copied as they arrive; larger ones wait for the joined frame. */
const COPY_MAX_BYTES = 64 * 1024;

/** Requests with more arguments than this keep offsets, not views (./lazy-args.ts). */
export const LAZY_ARGS = 1024;

const HEADER = 0;
const PAYLOAD = 1;
const CRLF = 2;

const EMPTY = new Uint8Array(0);

export class ArgCollector {
  #args: (Uint8Array | null)[] = [];
  /** Arguments to cut from the joined frame at `take`: index, offset in the frame, length. */
  #late: number[] = [];
  #state = HEADER;
  /** Bytes of the frame fed so far (the offset in the frame of the next byte). */
  #fed = 0;
  /** Header parsing: the type byte is behind us, the value so far, and whether it is negative. */
  #sawType = false;
  #value = 0;
  #negative = false;
  /** The next header is the frame's `*N`. */
  #top = true;
  /** PAYLOAD: bytes of the argument still to come; CRLF: terminator bytes still to skip. */
  #need = 0;
  /** A small argument cut by a chunk boundary, being copied. */
  #piece: Uint8Array | null = null;
  #filled = 0;
  /** A large argument cut by a chunk boundary: its offset in the frame. */
  #lateStart = -1;
  /** Past `LAZY_ARGS` arguments: where each one is in the frame, instead of `#args`. */
  #index: { starts: Float64Array; lengths: Uint32Array; count: number } | null = null; // an ArgIndex being filled
  /** Offset in the frame of the byte after the header just read. */
  #at = 0;

  /** Bytes of the offsets kept for a request with very many arguments. */
  get indexBytes(): number {
    return this.#index === null ? 0 : this.#index.starts.byteLength + this.#index.lengths.byteLength;
  }

  /** Prepares for a new frame. */
  start(): void {
    this.#args = [];
    this.#late = [];
    this.#state = HEADER;
    this.#fed = 0;
    this.#sawType = false;
    this.#value = 0;
    this.#negative = false;
    this.#top = true;
    this.#need = 0;
    this.#piece = null;
    this.#lateStart = -1;
    this.#index = null;
  }

  /** Takes the frame's bytes `buf[p, end)`, which follow the bytes fed before. */
  feed(buf: Uint8Array, p: number, end: number): void {
    this.#fed += end - p;
    const base = this.#fed - end;
    while (p < end) {
      if (this.#state === HEADER) {
        const c = buf[p++]!;
        if (!this.#sawType) this.#sawType = true;
        else if (c === 45) this.#negative = true;
        else if (c === 10) {
          this.#at = base + p;
          this.#endHeader();
        }
        else if (c !== 13) this.#value = this.#value * 10 + (c - 48);
      } else if (this.#state === PAYLOAD) {
        const avail = end - p;
        const need = this.#need;
        if (this.#index !== null) {
          // Offsets only: the argument was recorded at its header; skip its bytes.
          const take = avail < need ? avail : need;
          p += take;
          this.#need -= take;
          if (this.#need === 0) this.#terminator();
          continue;
        }
        if (this.#piece === null && this.#lateStart < 0) {
          if (avail >= need) {
            this.#args.push(buf.subarray(p, p + need));
            p += need;
            this.#terminator();
            continue;
          }
          if (need <= COPY_MAX_BYTES) {
            this.#piece = new Uint8Array(need);
            this.#filled = 0;
          } else {
            this.#lateStart = base + p;
          }
        }
        const take = avail < need ? avail : need;
        if (this.#piece !== null) {
          this.#piece.set(take === avail ? buf.subarray(p, end) : buf.subarray(p, p + take), this.#filled);
          this.#filled += take;
        }
        p += take;
        this.#need -= take;
        if (this.#need > 0) continue;
        if (this.#piece !== null) {
          this.#args.push(this.#piece);
          this.#piece = null;
        } else {
          this.#late.push(this.#args.length, this.#lateStart, base + p - this.#lateStart);
          this.#args.push(null);
          this.#lateStart = -1;
        }
        this.#terminator();
      } else {
        const avail = end - p;
        const take = avail < this.#need ? avail : this.#need;
        p += take;
        this.#need -= take;
        if (this.#need === 0) this.#state = HEADER;
      }
    }
  }

  /** The arguments of the complete frame `frame` (every byte of it fed). The collector is then empty. */
  take(frame: Uint8Array): Uint8Array[] {
    const index = this.#index;
    if (index !== null) {
      this.start();
      return lazyArgs(frame, index);
    }
    const late = this.#late;
    const args = this.#args;
    for (let i = 0; i < late.length; i += 3) args[late[i]!] = frame.subarray(late[i + 1]!, late[i + 1]! + late[i + 2]!);
    this.start();
    return args as Uint8Array[];
  }

  #endHeader(): void {
    const n = this.#negative ? 0 : this.#value;
    this.#sawType = false;
    this.#value = 0;
    this.#negative = false;
    if (this.#top) {
      // `*N`: the bulk headers follow.
      this.#top = false;
      if (n > LAZY_ARGS) this.#index = { starts: new Float64Array(1024), lengths: new Uint32Array(1024), count: 0 };
      return;
    }
    if (this.#index !== null) this.#record(n);
    else if (n === 0) this.#args.push(EMPTY);
    if (n === 0) {
      this.#terminator();
      return;
    }
    this.#state = PAYLOAD;
    this.#need = n;
  }

  /** Records an argument of `length` bytes starting at the next byte fed. */
  #record(length: number): void {
    let index = this.#index!;
    if (index.count === index.lengths.length) {
      // Grown by doubling, as arguments actually arrive (never sized from the header's count).
      const size = index.count * 2;
      const starts = new Float64Array(size);
      const lengths = new Uint32Array(size);
      starts.set(index.starts);
      lengths.set(index.lengths);
      this.#index = index = { starts, lengths, count: index.count };
    }
    index.starts[index.count] = this.#at;
    index.lengths[index.count++] = length;
  }

  #terminator(): void {
    this.#state = CRLF;
    this.#need = 2;
  }
}
