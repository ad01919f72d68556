/**
 * The unfinished end of a stream between chunks: the frame a scan (./frame.ts) stopped inside,
 * held until the chunk that completes it arrives, then joined once.
 */
import { FrameTooBigError, ProtocolError } from "./errors.ts";
import { CR, LF } from "./bytes.ts";
import { INLINE_MAX_BYTES, ScanState, isSimpleType, readHeader, scanFrom, type RespLimits } from "./frame.ts";

/** Longest unfinished length header (type, sign, digits, CR): generous, since digits are bounded. */
const HEADER_PEEK = 48;

/**
 * The unfinished head of a frame, kept by a reader between chunks. Chunks are held by reference
 * (callers hand over ownership, as runtime adapters do) and concatenated once, when the frame is
 * complete, so a large value arriving in many small chunks costs linear time.
 */
export class FrameTail {
  /** The stopped scan (reusable as scratch by the owner while the tail is not active). */
  readonly state = new ScanState();
  /** The unfinished frame is an inline command line. */
  inline = false;
  private parts: Uint8Array[] = [];
  private size = 0;
  /** Bytes of an unfinished header line at the end of `parts` (0 when stopped between values). */
  private lineLen = 0;
  private lineType = 0;
  private lineEndsWithCR = false;
  /** The bytes of an unfinished length header, re-read whole once the rest arrives. */
  private head: Uint8Array | null = null;

  /** An unfinished frame is held. */
  get active(): boolean {
    return this.size > 0;
  }

  /** Bytes held. */
  get bufferedBytes(): number {
    return this.size;
  }

  /** Drops whatever is held. */
  clear(): void {
    this.parts = [];
    this.size = 0;
    this.inline = false;
    this.lineLen = 0;
    this.head = null;
  }

  /** Holds `buf[start, end)`, a frame whose scan in `this.state` stopped at `end`. */
  begin(buf: Uint8Array, start: number, end: number, limits: RespLimits): void {
    this.inline = false;
    this.lineLen = 0;
    this.head = null;
    this.absorb(buf.subarray(start, end), limits);
    if (this.state.skip === 0) this.noteLine(buf, this.state.lineStart, end);
  }

  /** Holds `buf[start, end)`, the start of an inline line with no LF yet. */
  beginInline(buf: Uint8Array, start: number, end: number): void {
    this.inline = true;
    this.parts.push(buf.subarray(start, end));
    this.size = end - start;
  }

  /**
   * Continues the held frame with `chunk`. Returns the offset in `chunk` just past the frame's
   * end (then call `finish`), or -1 when the whole chunk was absorbed and more is needed.
   */
  resume(chunk: Uint8Array, limits: RespLimits): number {
    const n = chunk.length;
    if (this.inline) return this.resumeInline(chunk);
    const st = this.state;
    let p = 0;
    if (st.skip === 0 && this.lineLen > 0) {
      if (isSimpleType(this.lineType)) {
        let q: number;
        if (this.lineEndsWithCR) {
          if (chunk[0] !== LF) throw new ProtocolError("expected '\\n' after '\\r'");
          q = 1;
        } else {
          const cr = chunk.indexOf(CR);
          // The line's text: held bytes after the type byte, then this chunk's up to the CR.
          if (this.lineLen - 1 + (cr < 0 ? n : cr) > limits.maxBulkBytes) throw new ProtocolError("too big reply line");
          if (cr < 0 || cr === n - 1) {
            this.lineLen += n;
            this.lineEndsWithCR = cr === n - 1;
            this.absorb(chunk, limits);
            return -1;
          }
          if (chunk[cr + 1] !== LF) throw new ProtocolError("expected '\\n' after '\\r'");
          q = cr + 2;
        }
        st.pending--;
        st.top = false;
        this.lineLen = 0;
        if (st.pending === 0) return q;
        p = q;
      } else {
        const held = this.head!;
        const take = n < HEADER_PEEK ? n : HEADER_PEEK;
        const joined = new Uint8Array(held.length + take);
        joined.set(held, 0);
        joined.set(take === n ? chunk : chunk.subarray(0, take), held.length);
        const q = readHeader(joined, 0, joined.length, st, limits);
        if (q < 0) {
          if (take < n) throw new ProtocolError("invalid bulk length");
          this.head = joined;
          this.lineLen = joined.length;
          this.absorb(chunk, limits);
          return -1;
        }
        this.lineLen = 0;
        this.head = null;
        p = q - held.length;
        if (st.pending === 0 && st.skip === 0) return p;
      }
    }
    const q = scanFrom(chunk, p, n, st, limits);
    if (q >= 0) return q;
    this.absorb(chunk, limits);
    if (st.skip === 0) this.noteLine(chunk, st.lineStart, n);
    return -1;
  }

  /** Returns the frame: the held bytes followed by `chunk[0, end)`. The tail is then empty. */
  finish(chunk: Uint8Array, end: number): Uint8Array {
    const parts = this.parts;
    const frame = new Uint8Array(this.size + end);
    let o = 0;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      frame.set(part, o);
      o += part.length;
    }
    frame.set(end === chunk.length ? chunk : chunk.subarray(0, end), o);
    this.clear();
    return frame;
  }

  private resumeInline(chunk: Uint8Array): number {
    const n = chunk.length;
    const room = INLINE_MAX_BYTES + 1 - this.size;
    const stop = n < room ? n : room;
    for (let i = 0; i < stop; i++) if (chunk[i] === LF) return i + 1;
    if (this.size + n > INLINE_MAX_BYTES) throw new ProtocolError("too big inline request");
    this.parts.push(chunk);
    this.size += n;
    return -1;
  }

  private absorb(part: Uint8Array, limits: RespLimits): void {
    const max = limits.maxFrameBytes;
    // Checked before the part is held: the bytes past the limit are never kept.
    if (max !== undefined && this.size + part.length > max) throw new FrameTooBigError(this.size + part.length, max);
    this.parts.push(part);
    this.size += part.length;
  }

  private noteLine(buf: Uint8Array, lineStart: number, end: number): void {
    this.lineLen = end - lineStart;
    if (this.lineLen === 0) return;
    this.lineType = buf[lineStart]!;
    this.lineEndsWithCR = buf[end - 1] === CR;
    this.head = isSimpleType(this.lineType) ? null : buf.slice(lineStart, end);
  }
}
