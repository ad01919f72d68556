/**
 * RESP2 and RESP3 encoders. Each call sizes its output first and fills one Uint8Array, with a direct path for
 * ASCII text (command names, keys, error messages) that skips TextEncoder.
 */

const encoder = new TextEncoder();

/** Bytes `s` takes in UTF-8 (a lone surrogate counts 3: TextEncoder writes U+FFFD for it). */
export function utf8Length(s: string): number {
  const n = s.length;
  let bytes = n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2; // 4 bytes for the pair's 2 code units
      i++;
    } else bytes += 2;
  }
  return bytes;
}

/** Writes `s` (whose UTF-8 length is `bytes`) at `out[o]`; returns the offset after it. */
function writeString(out: Uint8Array, o: number, s: string, bytes: number): number {
  if (bytes === s.length) {
    for (let i = 0; i < bytes; i++) out[o + i] = s.charCodeAt(i);
  } else {
    encoder.encodeInto(s, out.subarray(o, o + bytes));
  }
  return o + bytes;
}

/** Writes the decimal of a non-negative safe integer at `out[o]`; returns the offset after it. */
function writeDecimal(out: Uint8Array, o: number, n: number): number {
  const digits = decimalLength(n);
  let i = o + digits;
  do {
    out[--i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  } while (n > 0);
  return o + digits;
}

function decimalLength(n: number): number {
  let digits = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    digits++;
  }
  return digits;
}

/** Encodes an ASCII-only literal once, for the shared reply constants. */
function ascii(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  writeString(out, 0, s, s.length);
  return out;
}

/** Encodes `<type><text>\r\n`, replacing CR and LF in `text` by spaces as Redis does for errors. */
function encodeLine(type: number, text: string): Uint8Array {
  if (text.indexOf("\r") >= 0 || text.indexOf("\n") >= 0) text = text.replace(/[\r\n]/g, " ");
  const bytes = utf8Length(text);
  const out = new Uint8Array(bytes + 3);
  out[0] = type;
  const o = writeString(out, 1, text, bytes);
  out[o] = 13;
  out[o + 1] = 10;
  return out;
}

/** `+text\r\n`. CR/LF inside `text` become spaces. */
export function encodeSimpleString(text: string): Uint8Array {
  return encodeLine(43, text);
}

/**
 * `-message\r\n`. `message` starts with the error code, e.g. "ERR unknown command" or
 * "CROSSSLOT Keys in request don't hash to the same slot". CR/LF become spaces.
 */
export function encodeError(message: string): Uint8Array {
  return encodeLine(45, message);
}

/** `:n\r\n` for an integer (a bigint for values beyond 2^53). */
export function encodeInteger(n: number | bigint): Uint8Array {
  if (typeof n === "number" && n >= 0 && n <= Number.MAX_SAFE_INTEGER && Number.isInteger(n)) {
    if (n === 0) return ZERO;
    if (n === 1) return ONE;
    const out = new Uint8Array(decimalLength(n) + 3);
    out[0] = 58;
    const o = writeDecimal(out, 1, n);
    out[o] = 13;
    out[o + 1] = 10;
    return out;
  }
  return ascii(`:${typeof n === "bigint" ? n : Math.trunc(n)}\r\n`);
}

/** `$len\r\n<bytes>\r\n` from bytes, or from a string encoded as UTF-8. */
export function encodeBulk(value: Uint8Array | string): Uint8Array {
  const isString = typeof value === "string";
  const len = isString ? utf8Length(value) : value.length;
  const out = new Uint8Array(len + decimalLength(len) + 5);
  writeBulk(out, 0, value, len);
  return out;
}

function writeBulk(out: Uint8Array, o: number, value: Uint8Array | string, len: number): number {
  out[o++] = 36;
  o = writeDecimal(out, o, len);
  out[o++] = 13;
  out[o++] = 10;
  if (typeof value === "string") o = writeString(out, o, value, len);
  else {
    out.set(value, o);
    o += len;
  }
  out[o++] = 13;
  out[o++] = 10;
  return o;
}

/** `*n\r\n`, the header of an array whose n elements follow as their own frames. */
export function encodeArrayHeader(n: number): Uint8Array {
  if (n === 0) return EMPTY_ARRAY;
  if (n < 0) return NULL_ARRAY;
  const out = new Uint8Array(decimalLength(n) + 3);
  out[0] = 42;
  const o = writeDecimal(out, 1, n);
  out[o] = 13;
  out[o + 1] = 10;
  return out;
}

/** An array reply from already-encoded element frames (header and elements in one buffer). */
export function encodeArray(elements: readonly Uint8Array[]): Uint8Array {
  return encodeAggregate(42, elements.length, elements);
}

/**
 * RESP3 map `%n` from already-encoded frames, keys and values alternating (`n` is the number of
 * pairs: half the frames). RESP2 has no map: Redis sends the same frames as a flat array.
 */
export function encodeMap(keysAndValues: readonly Uint8Array[]): Uint8Array {
  if (keysAndValues.length % 2 !== 0) throw new RangeError("a map needs an even number of frames");
  return encodeAggregate(37, keysAndValues.length / 2, keysAndValues);
}

/** RESP3 set `~n` from already-encoded element frames (RESP2 sends them as an array). */
export function encodeSet(elements: readonly Uint8Array[]): Uint8Array {
  return encodeAggregate(126, elements.length, elements);
}

/** `<type><count>\r\n` followed by the frames, in one buffer. */
function encodeAggregate(type: number, count: number, frames: readonly Uint8Array[]): Uint8Array {
  const n = frames.length;
  let size = decimalLength(count) + 3;
  for (let i = 0; i < n; i++) size += frames[i]!.length;
  const out = new Uint8Array(size);
  out[0] = type;
  let o = writeDecimal(out, 1, count);
  out[o++] = 13;
  out[o++] = 10;
  for (let i = 0; i < n; i++) {
    const e = frames[i]!;
    out.set(e, o);
    o += e.length;
  }
  return out;
}

/**
 * RESP3 verbatim string `=len\r\n<format>:<text>\r\n`, as Redis sends INFO and CLIENT INFO to
 * RESP3 clients. `format` is three lower-case letters: "txt" (plain text) or "mkd" (markdown).
 */
export function encodeVerbatim(text: string, format = "txt"): Uint8Array {
  if (!/^[a-z]{3}$/.test(format)) throw new RangeError(`a verbatim format is three lower-case letters (got '${format}')`);
  const bytes = utf8Length(text);
  const len = bytes + 4;
  const out = new Uint8Array(len + decimalLength(len) + 5);
  out[0] = 61;
  let o = writeDecimal(out, 1, len);
  out[o++] = 13;
  out[o++] = 10;
  o = writeString(out, o, format, 3);
  out[o++] = 58;
  o = writeString(out, o, text, bytes);
  out[o++] = 13;
  out[o] = 10;
  return out;
}

/**
 * A command as Redis expects it from clients: a multibulk array of bulk strings. Strings are
 * encoded as UTF-8; the result is sized exactly and built in one allocation.
 */
export function encodeCommand(args: readonly (Uint8Array | string)[]): Uint8Array {
  const n = args.length;
  const lengths = new Array<number>(n);
  let size = decimalLength(n) + 3;
  for (let i = 0; i < n; i++) {
    const a = args[i]!;
    const len = typeof a === "string" ? utf8Length(a) : a.length;
    lengths[i] = len;
    size += len + decimalLength(len) + 5;
  }
  const out = new Uint8Array(size);
  out[0] = 42;
  let o = writeDecimal(out, 1, n);
  out[o++] = 13;
  out[o++] = 10;
  for (let i = 0; i < n; i++) o = writeBulk(out, o, args[i]!, lengths[i]!);
  return out;
}

/** Join byte chunks into one buffer (returns the only chunk as it is); `total` is their summed length. */
export function concatBytes(chunks: readonly Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let o = 0;
  for (const chunk of chunks) {
    out.set(chunk, o);
    o += chunk.length;
  }
  return out;
}

// Shared, preallocated replies. They are handed to writers as they are: never mutate them.

/** `+OK\r\n` */
export const OK: Uint8Array = ascii("+OK\r\n");
/** `+PONG\r\n` */
export const PONG: Uint8Array = ascii("+PONG\r\n");
/** `+QUEUED\r\n` */
export const QUEUED: Uint8Array = ascii("+QUEUED\r\n");
/** `:0\r\n` */
export const ZERO: Uint8Array = ascii(":0\r\n");
/** `:1\r\n` */
export const ONE: Uint8Array = ascii(":1\r\n");
/** `$-1\r\n`, RESP2's null bulk string. */
export const NULL_BULK: Uint8Array = ascii("$-1\r\n");
/** `*-1\r\n`, RESP2's null array. */
export const NULL_ARRAY: Uint8Array = ascii("*-1\r\n");
/** `_\r\n`, RESP3's null. */
export const NULL_RESP3: Uint8Array = ascii("_\r\n");
/** `*0\r\n` */
export const EMPTY_ARRAY: Uint8Array = ascii("*0\r\n");
/** `$0\r\n\r\n` */
export const EMPTY_BULK: Uint8Array = ascii("$0\r\n\r\n");
/** `\r\n` */
export const CRLF: Uint8Array = ascii("\r\n");

/** A missing value in a client's protocol: `$-1` (RESP2's null bulk string) or `_` (RESP3's null). */
export function nullReply(protocol: 2 | 3): Uint8Array {
  return protocol === 3 ? NULL_RESP3 : NULL_BULK;
}
