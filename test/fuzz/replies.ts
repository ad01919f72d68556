/**
 * Server replies for the fuzzer: a generator of RESP2/RESP3 values (every type, attributes and
 * pushes included, nested), their bytes and the value `decode` must give back; one malformed reply
 * whose error is known; and a reference framer that reads a whole buffer with the rules of
 * src/resp/frame.ts restated (type bytes, CRLF, lengths, limits), sharing no code with it.
 */
import type { RespLimits } from "../../src/resp/frame.ts";
import type { RespValue } from "../../src/resp/decode.ts";
import { ReplyError } from "../../src/resp/errors.ts";
import { ascii, concat, randomBytes, size, type SimRandom } from "./gen.ts";
import { refLength, showByte } from "./requests.ts";

/** A generated reply: its bytes, and what decoding them must give. */
export interface Reply {
  bytes: Uint8Array;
  value: RespValue;
}

const utf8 = new TextDecoder();

/** Reply text without CR or LF (a simple line cannot hold them). */
function lineText(rng: SimRandom, max: number): Uint8Array {
  const bytes = randomBytes(rng, Math.min(size(rng, 40), max));
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 13 || bytes[i] === 10) bytes[i] = 32;
  return bytes;
}

function line(type: string, text: Uint8Array | string): Uint8Array {
  return concat([ascii(type), typeof text === "string" ? ascii(text) : text, ascii("\r\n")]);
}

/** A one-line value whose text is `text`, or `fallback` when that is longer than a line may be. */
function simple(type: string, text: string, value: RespValue, max: number, fallback: Reply): Reply {
  return text.length <= max ? { bytes: line(type, text), value } : fallback;
}

function bulk(type: string, payload: Uint8Array): Uint8Array {
  return concat([ascii(`${type}${payload.length}\r\n`), payload, ascii("\r\n")]);
}

const DOUBLES = ["0", "1", "-1", "1.5", "-0.25", "3.14159", "1e10", "-2.5e-3", "inf", "-inf", "nan", "1234567890123", "0.1"];

/** One value of any type; aggregates nest while `depth` lasts. `resp3` allows the RESP3 types. */
export function genReply(rng: SimRandom, limits: RespLimits, resp3: boolean, depth = 0): Reply {
  const maxBulk = limits.maxBulkBytes;
  const kinds = resp3 ? 17 : 8;
  const kind = depth >= 4 ? rng.int(Math.min(kinds, 6)) : rng.int(kinds);
  switch (kind) {
    case 0: {
      const text = lineText(rng, maxBulk);
      return { bytes: line("+", text), value: utf8.decode(text) };
    }
    case 1: {
      const text = lineText(rng, maxBulk);
      return { bytes: line("-", text), value: new ReplyError(utf8.decode(text)) };
    }
    case 2: {
      const n = rng.chance(0.7) ? BigInt(rng.intBetween(-1000, 100000)) : (BigInt(rng.next32()) << 32n | BigInt(rng.next32())) - (1n << 63n);
      return simple(":", String(n), Number.isSafeInteger(Number(n)) ? Number(n) : n, maxBulk, { bytes: line(":", "0"), value: 0 });
    }
    case 3: {
      const payload = randomBytes(rng, Math.min(size(rng), maxBulk));
      return { bytes: bulk("$", payload), value: payload };
    }
    case 4:
      return rng.chance(0.5) ? { bytes: ascii("$-1\r\n"), value: null } : { bytes: ascii("*-1\r\n"), value: null };
    case 5:
    case 6:
    case 7: {
      if (depth >= 4) return { bytes: ascii("*0\r\n"), value: [] };
      const items = aggregate(rng, limits, resp3, depth, 1);
      return { bytes: concat([ascii(`*${items.length}\r\n`), ...items.map((i) => i.bytes)]), value: items.map((i) => i.value) };
    }
    case 8:
      return { bytes: ascii("_\r\n"), value: null };
    case 9: {
      const b = rng.chance(0.5);
      return { bytes: line("#", b ? "t" : "f"), value: b };
    }
    case 10: {
      const text = rng.pick(DOUBLES);
      const value = text === "inf" ? Infinity : text === "-inf" ? -Infinity : text === "nan" ? NaN : Number(text);
      return simple(",", text, value, maxBulk, { bytes: line(",", "0"), value: 0 });
    }
    case 11: {
      let digits = String(rng.intBetween(1, 9));
      for (let k = rng.int(40); k > 0; k--) digits += String(rng.int(10));
      const text = rng.chance(0.3) ? `-${digits}` : digits;
      return simple("(", text, BigInt(text), maxBulk, { bytes: line("(", "1"), value: 1n });
    }
    case 12: {
      const payload = lineText(rng, maxBulk);
      return { bytes: bulk("!", payload), value: new ReplyError(utf8.decode(payload)) };
    }
    case 13: {
      if (maxBulk < 4) return { bytes: ascii("_\r\n"), value: null };
      const text = randomBytes(rng, Math.min(size(rng), maxBulk - 4));
      return { bytes: bulk("=", concat([ascii(rng.pick(["txt", "mkd"]) + ":"), text])), value: text };
    }
    case 14: {
      // A map: keys and values alternate; `decode` gives a Map in order.
      const items = aggregate(rng, limits, resp3, depth, 2);
      const map = new Map<RespValue, RespValue>();
      for (let i = 0; i < items.length; i += 2) map.set(items[i]!.value, items[i + 1]!.value);
      return { bytes: concat([ascii(`%${items.length / 2}\r\n`), ...items.map((i) => i.bytes)]), value: map };
    }
    case 15: {
      const type = rng.pick(["~", ">"]);
      const items = aggregate(rng, limits, resp3, depth, 1);
      return { bytes: concat([ascii(`${type}${items.length}\r\n`), ...items.map((i) => i.bytes)]), value: items.map((i) => i.value) };
    }
    default: {
      // An attribute: pairs that annotate the value after them; `decode` skips them.
      const pairs = aggregate(rng, limits, resp3, depth, 2);
      const annotated = genReply(rng, limits, resp3, depth + 1);
      return { bytes: concat([ascii(`|${pairs.length / 2}\r\n`), ...pairs.map((i) => i.bytes), annotated.bytes]), value: annotated.value };
    }
  }
}

/** Elements of an aggregate (a multiple of `unit` of them) within `maxArrayLength`. */
function aggregate(rng: SimRandom, limits: RespLimits, resp3: boolean, depth: number, unit: number): Reply[] {
  const count = Math.min(rng.int(rng.chance(0.9) ? 5 : 20), limits.maxArrayLength);
  const items: Reply[] = [];
  for (let i = 0; i < count * unit; i++) items.push(genReply(rng, limits, resp3, depth + 1));
  return items;
}

/** One malformed reply and the error it must get, whatever follows it. */
export function malformedReply(rng: SimRandom, limits: RespLimits): { bytes: Uint8Array; error: string } {
  const bad = (s: string, error: string) => ({ bytes: ascii(s), error });
  switch (rng.int(6)) {
    case 0: {
      const types = new Set([...ascii("+-:$*_#,(!=%~>|")]);
      let type = rng.int(256);
      while (types.has(type)) type = rng.int(256);
      return { bytes: Uint8Array.of(type), error: `got '${showByte(type)}' as reply type byte` };
    }
    case 1: {
      // Texts within the line limit, which is checked first.
      const lines = ["+OK", "-ERR x", ":1", "_", "#t", ",1.5", "(12"].filter((l) => l.length - 1 <= limits.maxBulkBytes);
      return bad(`${rng.pick(lines)}\r${rng.pick(["X", "\r", "+"])}`, "expected '\\n' after '\\r'");
    }
    case 2: {
      const type = rng.pick(["$", "!", "="]);
      const length = rng.pick(["x", "01", "-0", "", "+1", "-2", "1\rx", `${limits.maxBulkBytes + 1}`, ...(type === "$" ? [] : ["-1"])]);
      return bad(`${type}${length}\r\n`, "invalid bulk length");
    }
    case 3: {
      const type = rng.pick(["*", "%", "~", ">", "|"]);
      const length = rng.pick(["x", "01", "-0", "", "+1", "-2", "1\rx", `${limits.maxArrayLength + 1}`, ...(type === "*" ? [] : ["-1"])]);
      return bad(`${type}${length}\r\n`, "invalid multibulk length");
    }
    case 4: {
      const payload = randomBytes(rng, Math.min(size(rng, 32), limits.maxBulkBytes));
      return { bytes: concat([ascii(`$${payload.length}\r\n`), payload, ascii(rng.pick(["XY", "\rX", "X\n", "\n\r", "X"]))]), error: "invalid bulk terminator" };
    }
    default: {
      // A bad element deep inside an aggregate.
      const inner = malformedReply(rng, limits);
      if (limits.maxArrayLength < 2) return inner;
      return { bytes: concat([ascii("*2\r\n:1\r\n"), inner.bytes]), error: inner.error };
    }
  }
}

/** What a reply stream turns into: its frames, then how it ends. */
export interface ReplyOutcome {
  frames: Uint8Array[];
  error: string | null;
  pending: number;
}

const SIMPLE = new Set([...ascii("+-:_#,(")]);
const BULK = new Set([...ascii("$!=")]);
const AGGREGATE = new Set([...ascii("*%~>|")]);

/** The reference: the frames of the whole buffer `buf` (attributes with the value they annotate). */
export function refReplies(buf: Uint8Array, limits: RespLimits): ReplyOutcome {
  const frames: Uint8Array[] = [];
  const n = buf.length;
  let p = 0;
  const fail = (error: string): ReplyOutcome => ({ frames, error, pending: 0 });
  while (p < n) {
    const start = p;
    // Values still owed by this frame: an aggregate's header adds its elements.
    let owed = 1;
    while (owed > 0) {
      if (p >= n) return { frames, error: null, pending: n - start };
      const type = buf[p]!;
      if (SIMPLE.has(type)) {
        const cr = buf.indexOf(13, p);
        // The text before the CR (or all there is) may not pass maxBulkBytes, finished or not.
        if ((cr < 0 ? n : cr) - p - 1 > limits.maxBulkBytes) return fail("too big reply line");
        if (cr < 0 || cr + 1 >= n) return { frames, error: null, pending: n - start };
        if (buf[cr + 1] !== 10) return fail("expected '\\n' after '\\r'");
        p = cr + 2;
        owed--;
      } else if (BULK.has(type)) {
        const len = refLength(buf, p + 1, limits.maxBulkBytes);
        if (len.kind === "pending") return { frames, error: null, pending: n - start };
        if (len.kind === "error") return fail("invalid bulk length");
        owed--;
        if (len.value < 0) {
          if (len.value !== -1 || type !== 36) return fail("invalid bulk length");
          p = len.next;
          continue;
        }
        const stop = len.next + len.value;
        if (n < stop + 2) {
          if (n === stop + 1 && buf[stop] !== 13) return fail("invalid bulk terminator");
          return { frames, error: null, pending: n - start };
        }
        if (buf[stop] !== 13 || buf[stop + 1] !== 10) return fail("invalid bulk terminator");
        p = stop + 2;
      } else if (AGGREGATE.has(type)) {
        const len = refLength(buf, p + 1, limits.maxArrayLength);
        if (len.kind === "pending") return { frames, error: null, pending: n - start };
        if (len.kind === "error") return fail("invalid multibulk length");
        owed--;
        if (len.value < 0) {
          if (len.value !== -1 || type !== 42) return fail("invalid multibulk length");
        } else if (type === 37) owed += 2 * len.value;
        else if (type === 124) owed += 2 * len.value + 1;
        else owed += len.value;
        p = len.next;
      } else {
        return fail(`got '${showByte(type)}' as reply type byte`);
      }
    }
    frames.push(buf.slice(start, p));
  }
  return { frames, error: null, pending: 0 };
}

/** How two decoded values differ (a path and both sides), or null when they are the same. */
export function diffValue(expected: RespValue, actual: RespValue, path = "$"): string | null {
  const fail = () => `${path}: expected ${showValue(expected)}, got ${showValue(actual)}`;
  if (expected instanceof Uint8Array) {
    if (!(actual instanceof Uint8Array) || actual.length !== expected.length || actual.some((b, i) => b !== expected[i])) return fail();
    return null;
  }
  if (expected instanceof ReplyError) return actual instanceof ReplyError && actual.message === expected.message ? null : fail();
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return fail();
    for (let i = 0; i < expected.length; i++) {
      const d = diffValue(expected[i]!, actual[i]!, `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (expected instanceof Map) {
    if (!(actual instanceof Map) || actual.size !== expected.size) return fail();
    const e = [...expected];
    const a = [...actual];
    for (let i = 0; i < e.length; i++) {
      const d = diffValue(e[i]![0], a[i]![0], `${path}.key${i}`) ?? diffValue(e[i]![1], a[i]![1], `${path}.value${i}`);
      if (d) return d;
    }
    return null;
  }
  return Object.is(expected, actual) ? null : fail();
}

function showValue(value: RespValue): string {
  if (value instanceof Uint8Array) return `bytes(${value.length})`;
  if (value instanceof ReplyError) return `ReplyError(${JSON.stringify(value.message)})`;
  if (Array.isArray(value)) return `array(${value.length})`;
  if (value instanceof Map) return `map(${value.size})`;
  return typeof value === "bigint" ? `${value}n` : typeof value === "string" ? JSON.stringify(value) : String(value);
}
