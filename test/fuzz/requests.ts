/**
 * Client requests for the fuzzer: a generator of pipelines (multibulk and inline, valid, cut, or
 * with one malformed request whose error is known), and a reference parser. The reference reads
 * a whole buffer at once, straight from the rules Redis's networking.c applies (with slotgate's
 * documented strictness: CRLF after bulk payloads and headers, inline lines of at most 64 KiB), so
 * it shares no code with src/resp: whatever the real, incremental parser does with any bytes
 * must match it, however the bytes are chunked.
 */
import type { RespLimits } from "../../src/resp/frame.ts";
import { ascii, concat, randomBytes, size, word, type SimRandom } from "./gen.ts";

/** Redis's PROTO_INLINE_MAX_SIZE. */
const INLINE_MAX = 64 * 1024;
/** The most negative multibulk count the scanner tolerates (Redis skips any `*-N`). */
const MAX_NEGATIVE = 1e15;

/** What a request stream turns into: its requests, then how it ends. */
export interface RequestOutcome {
  requests: { args: Uint8Array[]; frame: Uint8Array }[];
  /** The protocol error's message, or null when the input is fine so far. */
  error: string | null;
  /** Bytes of an unfinished request at the end (0 after an error). */
  pending: number;
}

/** A readable rendering of one byte, as slotgate words it in error messages. */
export function showByte(byte: number): string {
  return byte >= 32 && byte < 127 ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, "0")}`;
}

/** The multibulk encoding of `args`. */
export function multibulk(args: readonly Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [ascii(`*${args.length}\r\n`)];
  for (const arg of args) parts.push(ascii(`$${arg.length}\r\n`), arg, ascii("\r\n"));
  return concat(parts);
}

function latin1(buf: Uint8Array, from: number, to: number): string {
  let s = "";
  for (let i = from; i < to; i++) s += String.fromCharCode(buf[i]!);
  return s;
}

type Length = { kind: "pending" } | { kind: "error" } | { kind: "ok"; value: number; next: number };

/**
 * A length header's decimal from `p` (after the type byte): `-?(0|[1-9][0-9]*)`, not "-0", at
 * most `max` (negatives down to -1e15), then CRLF. A line that can no longer become valid is an
 * error at once, before its CRLF arrives.
 */
export function refLength(buf: Uint8Array, p: number, max: number): Length {
  let cr = buf.indexOf(13, p);
  const complete = cr >= 0;
  if (!complete) cr = buf.length;
  const text = latin1(buf, p, cr);
  if (!/^-?(0|[1-9][0-9]*)?$/.test(text)) return { kind: "error" };
  const negative = text.startsWith("-");
  const digits = negative ? text.slice(1) : text;
  if (digits.length > 0 && Number(digits) > (negative ? MAX_NEGATIVE : max)) return { kind: "error" };
  if (!complete || cr + 1 >= buf.length) return { kind: "pending" };
  if (digits.length === 0 || text === "-0" || buf[cr + 1] !== 10) return { kind: "error" };
  return { kind: "ok", value: Number(text), next: cr + 2 };
}

/** C isspace() in the C locale. */
const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13);
const isHex = (c: number) => (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);

/** A line of `bytes` split like Redis's sdssplitargs (a C string: NUL ends it); null for bad quotes. */
export function refSplitArgs(bytes: Uint8Array): Uint8Array[] | null {
  const nul = bytes.indexOf(0);
  const line = nul >= 0 ? bytes.subarray(0, nul) : bytes;
  const c = (i: number) => (i < line.length ? line[i]! : 0);
  const args: Uint8Array[] = [];
  let p = 0;
  for (;;) {
    while (c(p) !== 0 && isSpace(c(p))) p++;
    if (c(p) === 0) return args;
    const current: number[] = [];
    let inq = false;
    let insq = false;
    let done = false;
    while (!done) {
      if (inq) {
        if (c(p) === 92 && c(p + 1) === 120 && isHex(c(p + 2)) && isHex(c(p + 3))) {
          current.push(parseInt(String.fromCharCode(c(p + 2), c(p + 3)), 16));
          p += 3;
        } else if (c(p) === 92 && c(p + 1) !== 0) {
          p++;
          const e = c(p);
          current.push(e === 110 ? 10 : e === 114 ? 13 : e === 116 ? 9 : e === 98 ? 8 : e === 97 ? 7 : e);
        } else if (c(p) === 34) {
          if (c(p + 1) !== 0 && !isSpace(c(p + 1))) return null;
          done = true;
        } else if (c(p) === 0) {
          return null;
        } else current.push(c(p));
      } else if (insq) {
        if (c(p) === 92 && c(p + 1) === 39) {
          p++;
          current.push(39);
        } else if (c(p) === 39) {
          if (c(p + 1) !== 0 && !isSpace(c(p + 1))) return null;
          done = true;
        } else if (c(p) === 0) {
          return null;
        } else current.push(c(p));
      } else {
        const b = c(p);
        if (b === 32 || b === 10 || b === 13 || b === 9 || b === 0) done = true;
        else if (b === 34) inq = true;
        else if (b === 39) insq = true;
        else current.push(b);
      }
      if (c(p) !== 0) p++;
    }
    args.push(Uint8Array.from(current));
  }
}

/** The reference: what Redis (with slotgate's limits) makes of the whole buffer `buf`. */
export function refRequests(buf: Uint8Array, limits: RespLimits): RequestOutcome {
  const requests: RequestOutcome["requests"] = [];
  const n = buf.length;
  const fail = (error: string): RequestOutcome => ({ requests, error, pending: 0 });
  const wait = (from: number): RequestOutcome => ({ requests, error: null, pending: n - from });
  let p = 0;
  while (p < n) {
    if (buf[p] === 42) {
      const count = refLength(buf, p + 1, limits.maxArrayLength);
      if (count.kind === "pending") return wait(p);
      if (count.kind === "error") return fail("invalid multibulk length");
      let q = count.next;
      const args: Uint8Array[] = [];
      for (let i = 0; i < count.value; i++) {
        if (q >= n) return wait(p);
        if (buf[q] !== 36) return fail(`expected '$', got '${showByte(buf[q]!)}'`);
        const len = refLength(buf, q + 1, limits.maxBulkBytes);
        if (len.kind === "pending") return wait(p);
        if (len.kind === "error" || len.value < 0) return fail("invalid bulk length");
        const start = len.next;
        const stop = start + len.value;
        if (n < stop + 2) {
          if (n === stop + 1 && buf[stop] !== 13) return fail("invalid bulk terminator");
          return wait(p);
        }
        if (buf[stop] !== 13 || buf[stop + 1] !== 10) return fail("invalid bulk terminator");
        args.push(buf.slice(start, stop));
        q = stop + 2;
      }
      if (args.length > 0) requests.push({ args, frame: buf.slice(p, q) });
      p = q;
    } else {
      const lf = buf.indexOf(10, p);
      if (lf < 0 || lf - p > INLINE_MAX) {
        if (n - p > INLINE_MAX) return fail("too big inline request");
        return wait(p);
      }
      const end = lf > p && buf[lf - 1] === 13 ? lf - 1 : lf;
      const args = refSplitArgs(buf.subarray(p, end));
      if (args === null) return fail("unbalanced quotes in request");
      if (args.length > 0) requests.push({ args, frame: multibulk(args) });
      p = lf + 1;
    }
  }
  return { requests, error: null, pending: 0 };
}

// --- generation -------------------------------------------------------------------------------

/** A generated pipeline and what the generator knows it means. */
export interface Pipeline {
  bytes: Uint8Array;
  /** Each item in order: where it ends, and the arguments it runs (null for `*0`, blank lines). */
  items: { end: number; args: Uint8Array[] | null }[];
}

/** The arguments of the requests a pipeline runs, in order. */
export function requestsOf(items: Pipeline["items"], upTo = Infinity): Uint8Array[][] {
  return items.filter((item) => item.end <= upTo && item.args !== null).map((item) => item.args!);
}

/** Where a generated request's arguments come from: a command name, then the rest. */
export type NamePicker = (rng: SimRandom) => Uint8Array;

const anyName: NamePicker = (rng) => (rng.chance(0.5) ? word(rng, rng.intBetween(1, 10)) : randomBytes(rng, size(rng, 16)));

function multibulkItem(rng: SimRandom, limits: RespLimits, name: NamePicker): Uint8Array[] {
  const cap = Math.min(limits.maxArrayLength, rng.chance(0.9) ? 6 : 24);
  const argc = rng.intBetween(1, cap);
  const args: Uint8Array[] = [];
  for (let i = 0; i < argc; i++) {
    const arg = i === 0 ? name(rng) : randomBytes(rng, size(rng));
    args.push(arg.length > limits.maxBulkBytes ? arg.subarray(0, limits.maxBulkBytes) : arg);
  }
  return args;
}

const SEPARATORS = [32, 32, 32, 9, 13];

/** One inline argument written so that sdssplitargs reads back exactly `arg`. */
function inlineArg(rng: SimRandom, arg: Uint8Array): number[] {
  const bare = arg.length > 0 && arg.every((b) => b > 32 && b !== 34 && b !== 39 && b !== 127) && rng.chance(0.8);
  if (bare) return [...arg];
  const single = rng.chance(0.3) && arg.every((b) => b !== 0 && b !== 10) && arg[arg.length - 1] !== 92;
  if (single) {
    const out = [39];
    for (const b of arg) out.push(...(b === 39 ? [92, 39] : [b]));
    out.push(39);
    return out;
  }
  const out = [34];
  for (const b of arg) {
    if (b === 34 || b === 92) out.push(92, b);
    else if (b === 10) out.push(92, 110);
    else if (b === 13) out.push(92, 114);
    else if (b === 9 && rng.chance(0.5)) out.push(92, 116);
    else if (b === 8) out.push(92, 98);
    else if (b === 7) out.push(92, 97);
    else if (b >= 32 && b < 127 && rng.chance(0.95)) {
      // An escaped ordinary character stands for itself (sdssplitargs' default case); 'x'
      // would start a hex escape, and n r t b a mean control characters.
      if (rng.chance(0.05) && !"xnrtba".includes(String.fromCharCode(b))) out.push(92);
      out.push(b);
    } else {
      const hex = b.toString(16).padStart(2, "0");
      out.push(92, 120, ...ascii(rng.chance(0.5) ? hex : hex.toUpperCase()));
    }
  }
  out.push(34);
  return out;
}

/** An inline command line (with its line end) that reads back as `args`. */
function inlineLine(rng: SimRandom, args: Uint8Array[]): Uint8Array {
  const out: number[] = [];
  const leading = rng.chance(0.2) ? rng.intBetween(1, 3) : 0;
  for (let i = 0; i < leading; i++) out.push(rng.pick([32, 9, 11, 12]));
  args.forEach((arg, i) => {
    if (i > 0) for (let k = rng.intBetween(1, 2); k > 0; k--) out.push(rng.pick(SEPARATORS));
    out.push(...inlineArg(rng, arg));
  });
  if (rng.chance(0.2)) out.push(rng.pick(SEPARATORS));
  // A line starting with '*' would be read as multibulk.
  if (out[0] === 42) out.unshift(32);
  out.push(...(rng.chance(0.7) ? [13, 10] : [10]));
  return Uint8Array.from(out);
}

/**
 * A valid pipeline of 0..12 items: multibulk requests, inline commands, and what Redis skips
 * (`*0`, `*-N`, blank lines). Argument sizes and counts respect `limits`.
 */
export function validPipeline(rng: SimRandom, limits: RespLimits, name: NamePicker = anyName): Pipeline {
  const parts: Uint8Array[] = [];
  const items: Pipeline["items"] = [];
  let offset = 0;
  const count = rng.chance(0.8) ? rng.int(6) : rng.int(13);
  for (let i = 0; i < count; i++) {
    const r = rng.int(100);
    let part: Uint8Array;
    let args: Uint8Array[] | null = null;
    if (r < 60) {
      args = multibulkItem(rng, limits, name);
      part = multibulk(args);
    } else if (r < 68) {
      part = ascii(rng.chance(0.5) ? "*0\r\n" : `*-${rng.intBetween(1, 999)}\r\n`);
    } else if (r < 93) {
      args = [name(rng)];
      for (let k = rng.int(5); k > 0; k--) args.push(randomBytes(rng, size(rng, 64)));
      part = inlineLine(rng, args);
    } else {
      const blanks = [32, 9, 11, 12, 13];
      const line: number[] = [];
      for (let k = rng.int(4); k > 0; k--) line.push(rng.pick(blanks));
      line.push(...(rng.chance(0.5) ? [13, 10] : [10]));
      part = Uint8Array.from(line);
    }
    parts.push(part);
    offset += part.length;
    items.push({ end: offset, args });
  }
  return { bytes: concat(parts), items };
}

/** One malformed request and the error it must get, whatever follows it. */
export function malformedRequest(rng: SimRandom, limits: RespLimits): { bytes: Uint8Array; error: string } {
  const bad = (s: string, error: string) => ({ bytes: ascii(s), error });
  switch (rng.int(6)) {
    case 0: {
      const count = rng.pick(["x", "1x", "01", "-0", "", "+1", " 1", "1\rx", "1\n", `${limits.maxArrayLength + 1}`, "-1000000000000001"]);
      return bad(`*${count}\r\n`, "invalid multibulk length");
    }
    case 1: {
      let type = rng.int(256);
      if (type === 36) type = 58;
      const head = ascii(`*${rng.intBetween(1, Math.min(limits.maxArrayLength, 3))}\r\n`);
      return { bytes: concat([head, Uint8Array.of(type)]), error: `expected '$', got '${showByte(type)}'` };
    }
    case 2: {
      const length = rng.pick(["x", "-1", "01", "-0", "", "+1", "1\rx", "3 ", `${limits.maxBulkBytes + 1}`, "-2"]);
      return bad(`*1\r\n$${length}\r\n`, "invalid bulk length");
    }
    case 3: {
      const payload = randomBytes(rng, Math.min(size(rng, 32), limits.maxBulkBytes));
      const terminator = rng.pick(["XY", "\rX", "X\n", "\n\r", "X"]);
      const head = ascii(`*1\r\n$${payload.length}\r\n`);
      return { bytes: concat([head, payload, ascii(terminator)]), error: "invalid bulk terminator" };
    }
    case 4: {
      const line = rng.pick(['GET "abc', "GET 'abc", 'SET "a"b c', "SET 'a'b c", 'GET "ab\\"', "GET 'ab\\'", 'GET "a\x00b"', 'GET "', "'"]);
      return bad(`${line}${rng.chance(0.5) ? "\r\n" : "\n"}`, "unbalanced quotes in request");
    }
    default: {
      if (rng.chance(0.9)) return bad(`SET k "abc\r\n`, "unbalanced quotes in request");
      const line = new Uint8Array(INLINE_MAX + 1).fill(97);
      return { bytes: line, error: "too big inline request" };
    }
  }
}
