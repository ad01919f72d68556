/**
 * Finding RESP frame boundaries without decoding values. A frame is scanned with one counter of
 * values still owed (an aggregate header adds its element count), so nesting depth costs no stack
 * and no memory, and a scan that runs out of bytes can resume where it stopped (`ScanState`, and
 * ./frame-tail.ts's `FrameTail`) instead of starting over when the next chunk arrives.
 */
import { ProtocolError } from "./errors.ts";
import { BANG, COLON, COMMA, CR, DOLLAR, EQUALS, HASH, LF, LPAREN, MINUS, PERCENT, PIPE, PLUS, PUSH, STAR, TILDE, UNDERSCORE } from "./bytes.ts";

/** Bounds enforced as soon as a header is read, before any payload it announces has arrived. */
export interface RespLimits {
  /** Largest bulk string (`$`, `!`, `=`) payload, and longest simple line, in bytes. */
  readonly maxBulkBytes: number;
  /** Largest element count of one aggregate header (a map of N pairs counts N). */
  readonly maxArrayLength: number;
  /** Largest unfinished frame a reader holds while waiting for its end (default: unbounded). */
  readonly maxFrameBytes?: number;
}

/** Redis's own defaults: proto-max-bulk-len 512 MiB, multibulk counts up to INT_MAX. */
export const DEFAULT_LIMITS: RespLimits = {
  maxBulkBytes: 512 * 1024 * 1024,
  maxArrayLength: 2147483647,
};

/** Longest inline command line, as Redis's PROTO_INLINE_MAX_SIZE. */
export const INLINE_MAX_BYTES = 64 * 1024;


/** Largest negative length accepted; only -1 means anything, the rest is for Redis's `*-N` leniency. */
const MAX_NEGATIVE = 1e15;

/**
 * Where a scan of one frame stands. `pending` counts values still owed, `skip` the bulk payload
 * bytes (with their CRLF) still to pass. When a scan stops for lack of bytes with `skip === 0`,
 * `lineStart` is where the unfinished header line begins (possibly at the end: nothing started).
 */
export class ScanState {
  pending = 1;
  skip = 0;
  lineStart = 0;
  /** Request mode: the frame must be `*N` followed by N bulk strings. */
  request = false;
  /** The next header read is the frame's first. */
  top = true;
  /** Request mode: the argument count (0 for `*0` and `*-N`, which Redis silently ignores). */
  argc = 0;

  /** Prepares for a new frame. */
  reset(request: boolean): void {
    this.pending = 1;
    this.skip = 0;
    this.lineStart = 0;
    this.request = request;
    this.top = true;
    this.argc = 0;
  }

  /** Copies another state (used to hand a stopped scan to a `FrameTail`). */
  copyFrom(other: ScanState): void {
    this.pending = other.pending;
    this.skip = other.skip;
    this.lineStart = other.lineStart;
    this.request = other.request;
    this.top = other.top;
    this.argc = other.argc;
  }
}

/** A readable rendering of one byte for error messages ("x", or "\x00" when unprintable). */
function showByte(byte: number): string {
  return byte >= 32 && byte < 127
    ? String.fromCharCode(byte)
    : `\\x${byte.toString(16).padStart(2, "0")}`;
}

/** True for the types whose whole value is one line (+ - : _ , # ( ). */
export function isSimpleType(type: number): boolean {
  return (
    type === PLUS || type === MINUS || type === COLON || type === UNDERSCORE ||
    type === COMMA || type === HASH || type === LPAREN
  );
}

// Second result of readLength: the offset after the header's CRLF, or -1 if the line is unfinished.
let lengthEnd = -1;

/**
 * Parses the decimal of a length header starting at `p` (just after the type byte) with the
 * strictness of Redis's string2ll: optional '-', no '+', no leading zeros, no "-0". Throws as
 * soon as the value passes `max`, even before the line ends.
 */
function readLength(buf: Uint8Array, p: number, end: number, max: number, error: string): number {
  let q = p;
  let negative = false;
  if (q < end && buf[q] === MINUS) {
    negative = true;
    q++;
  }
  const first = q;
  const bound = negative ? MAX_NEGATIVE : max;
  let n = 0;
  while (q < end) {
    const c = buf[q]!;
    if (c === CR) break;
    const digit = c - 48;
    if (digit < 0 || digit > 9 || (q > first && buf[first] === 48)) throw new ProtocolError(error);
    n = n * 10 + digit;
    if (n > bound) throw new ProtocolError(error);
    q++;
  }
  if (q + 1 >= end) {
    lengthEnd = -1;
    return 0;
  }
  if (q === first || (negative && n === 0) || buf[q + 1] !== LF) throw new ProtocolError(error);
  lengthEnd = q + 2;
  return negative ? -n : n;
}

/**
 * Reads the header line of one value at `p` and applies it to `st`: a simple value is consumed
 * whole, a bulk header arms `st.skip`, an aggregate adds its elements to `st.pending`. Returns the
 * offset after the line, or -1 (leaving `st` untouched) when the line is unfinished.
 */
export function readHeader(
  buf: Uint8Array,
  p: number,
  end: number,
  st: ScanState,
  limits: RespLimits,
): number {
  const type = buf[p]!;
  if (st.request && !st.top && type !== DOLLAR) {
    throw new ProtocolError(`expected '$', got '${showByte(type)}'`);
  }
  switch (type) {
    case PLUS:
    case MINUS:
    case COLON:
    case UNDERSCORE:
    case COMMA:
    case HASH:
    case LPAREN: {
      let q = p + 1;
      while (q < end && buf[q] !== CR) q++;
      // A CR ends the line (or is an error), so the text is what lies before it, finished or not:
      // the limit applies alike however the line is chunked.
      if (q - p - 1 > limits.maxBulkBytes) throw new ProtocolError("too big reply line");
      if (q + 1 >= end) return -1;
      if (buf[q + 1] !== LF) throw new ProtocolError("expected '\\n' after '\\r'");
      st.pending--;
      st.top = false;
      return q + 2;
    }
    case DOLLAR:
    case BANG:
    case EQUALS: {
      const n = readLength(buf, p + 1, end, limits.maxBulkBytes, "invalid bulk length");
      if (lengthEnd < 0) return -1;
      if (n >= 0) st.skip = n + 2;
      else if (n !== -1 || type !== DOLLAR || st.request) throw new ProtocolError("invalid bulk length");
      st.pending--;
      st.top = false;
      return lengthEnd;
    }
    case STAR:
    case PERCENT:
    case TILDE:
    case PUSH:
    case PIPE: {
      const n = readLength(buf, p + 1, end, limits.maxArrayLength, "invalid multibulk length");
      if (lengthEnd < 0) return -1;
      if (st.request) {
        // Only the top header can get here in request mode; Redis skips `*0` and `*-N` silently.
        const argc = n > 0 ? n : 0;
        st.argc = argc;
        st.pending = argc;
      } else if (n < 0) {
        if (n !== -1 || type !== STAR) throw new ProtocolError("invalid multibulk length");
        st.pending--;
      } else if (type === PERCENT) {
        st.pending += 2 * n - 1;
      } else if (type === PIPE) {
        // An attribute precedes the value it annotates, which is still owed.
        st.pending += 2 * n;
      } else {
        st.pending += n - 1;
      }
      st.top = false;
      return lengthEnd;
    }
    default:
      throw new ProtocolError(`got '${showByte(type)}' as reply type byte`);
  }
}

/**
 * Continues the frame described by `st` from offset `p`. Returns the offset just past the frame's
 * end, or -1 when `buf` ran out first; `st` then says where the scan stopped so it can go on in
 * the next chunk. Throws `ProtocolError` on malformed input.
 */
export function scanFrom(
  buf: Uint8Array,
  p: number,
  end: number,
  st: ScanState,
  limits: RespLimits,
): number {
  for (;;) {
    const skip = st.skip;
    if (skip > 0) {
      const avail = end - p;
      if (avail < skip) {
        // The payload's CR may already be here even though its LF is not.
        if (skip - avail === 1 && buf[end - 1] !== CR) throw new ProtocolError("invalid bulk terminator");
        st.skip = skip - avail;
        return -1;
      }
      p += skip;
      if (buf[p - 1] !== LF || (skip >= 2 && buf[p - 2] !== CR)) {
        throw new ProtocolError("invalid bulk terminator");
      }
      st.skip = 0;
      if (st.pending === 0) return p;
    }
    if (p >= end) {
      st.lineStart = p;
      return -1;
    }
    const q = readHeader(buf, p, end, st, limits);
    if (q < 0) {
      st.lineStart = p;
      return -1;
    }
    p = q;
    if (st.pending === 0 && st.skip === 0) return p;
  }
}

const scratch = new ScanState();

/**
 * Returns the end offset of the one complete RESP2/RESP3 frame (any type, nested to any depth)
 * starting at `start`, or -1 if `buf[start, end)` holds only part of it. Throws `ProtocolError`
 * for malformed input, or as soon as a header exceeds `limits`.
 */
export function scanFrame(
  buf: Uint8Array,
  start: number,
  end: number,
  limits: RespLimits = DEFAULT_LIMITS,
): number {
  if (start >= end) return -1;
  scratch.reset(false);
  return scanFrom(buf, start, end, scratch, limits);
}

/**
 * Returns the end offset of the one complete client request starting at `start`, or -1 if
 * unfinished. A request is a multibulk array of bulk strings when it starts with '*', and an
 * inline command line otherwise (ending at LF, at most `INLINE_MAX_BYTES`), as Redis decides.
 */
export function scanRequest(
  buf: Uint8Array,
  start: number,
  end: number,
  limits: RespLimits = DEFAULT_LIMITS,
): number {
  if (start >= end) return -1;
  if (buf[start] !== STAR) return scanInline(buf, start, end);
  scratch.reset(true);
  return scanFrom(buf, start, end, scratch, limits);
}

/** Returns the offset after the LF ending the inline line at `start`, or -1 if there is none yet. */
export function scanInline(buf: Uint8Array, start: number, end: number): number {
  const stop = end < start + INLINE_MAX_BYTES + 1 ? end : start + INLINE_MAX_BYTES + 1;
  for (let i = start; i < stop; i++) if (buf[i] === LF) return i + 1;
  if (end - start > INLINE_MAX_BYTES) throw new ProtocolError("too big inline request");
  return -1;
}
