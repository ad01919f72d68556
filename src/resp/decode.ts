/**
 * A full RESP2/RESP3 decoder into JS values, for control traffic (CLUSTER SLOTS, INFO, HELLO...)
 * rather than the relay path. It is iterative, so deeply nested replies cannot overflow the stack.
 */
import { ProtocolError, ReplyError } from "./errors.ts";
import { scanFrame, type RespLimits } from "./frame.ts";

/** A decoded reply. Maps (RESP3 `%`) become `Map`s; sets and pushes become arrays. */
export type RespValue =
  | string
  | Uint8Array
  | number
  | bigint
  | boolean
  | null
  | ReplyError
  | RespValue[]
  | Map<RespValue, RespValue>;

/** Decoding choices. */
export interface DecodeOptions {
  /** Decode bulk and verbatim strings as UTF-8 text instead of returning their bytes. */
  readonly strings?: boolean;
}

const UNLIMITED: RespLimits = {
  maxBulkBytes: Number.MAX_SAFE_INTEGER,
  maxArrayLength: Number.MAX_SAFE_INTEGER,
};

const utf8 = new TextDecoder();

const KIND_ARRAY = 0;
const KIND_MAP = 1;
const KIND_ATTRIBUTE = 2;

interface Level {
  kind: number;
  items: RespValue[];
  /** Elements still to read (map and attribute levels count keys and values). */
  left: number;
}

/**
 * Decodes the first complete value of `buf` (from `start`). Integers become numbers when safe and
 * bigints beyond; doubles numbers (inf, -inf, nan included); bignums bigints; errors `ReplyError`s;
 * attributes are skipped in favour of the value they annotate. Throws `ProtocolError` when the
 * value is malformed (an integer, double, boolean, big number or null whose text is not one
 * included) or incomplete.
 */
export function decode(buf: Uint8Array, options?: DecodeOptions, start = 0): RespValue {
  return decodeWithEnd(buf, options, start).value;
}

/** Like `decode`, also returning the offset just past the decoded value. */
export function decodeWithEnd(
  buf: Uint8Array,
  options?: DecodeOptions,
  start = 0,
): { value: RespValue; end: number } {
  const end = scanFrame(buf, start, buf.length, UNLIMITED);
  if (end < 0) throw new ProtocolError("incomplete reply");
  const strings = options?.strings === true;
  // The scan validated the frame, so from here on every header is well formed and complete.
  const stack: Level[] = [];
  let p = start;
  for (;;) {
    const type = buf[p]!;
    const textStart = p + 1;
    let lineEnd = textStart;
    while (buf[lineEnd] !== 13) lineEnd++;
    p = lineEnd + 2;
    let value: RespValue;
    switch (type) {
      case 43: // +
        value = utf8.decode(buf.subarray(textStart, lineEnd));
        break;
      case 45: // -
        value = new ReplyError(utf8.decode(buf.subarray(textStart, lineEnd)));
        break;
      case 58: // :
        if (!isDecimal(buf, textStart, lineEnd)) throw new ProtocolError("invalid integer");
        value = lineEnd - textStart <= 15 ? smallInteger(buf, textStart, lineEnd) : toInteger(latin1(buf, textStart, lineEnd));
        break;
      case 95: // _
        if (lineEnd !== textStart) throw new ProtocolError("invalid null");
        value = null;
        break;
      case 35: // #
        if (lineEnd !== textStart + 1 || (buf[textStart] !== 116 && buf[textStart] !== 102)) throw new ProtocolError("invalid boolean");
        value = buf[textStart] === 116; // t
        break;
      case 44: // ,
        value = toDouble(latin1(buf, textStart, lineEnd));
        break;
      case 40: // (
        if (!isDecimal(buf, textStart, lineEnd)) throw new ProtocolError("invalid big number");
        value = BigInt(latin1(buf, textStart, lineEnd));
        break;
      case 36: // $
      case 33: // !
      case 61: { // =
        const len = smallInteger(buf, textStart, lineEnd);
        if (len < 0) {
          value = null;
          break;
        }
        // Verbatim strings carry a 3-letter format and a colon ("txt:") before the text.
        const bytes = buf.subarray(type === 61 ? p + 4 : p, p + len);
        p += len + 2;
        if (type === 33) value = new ReplyError(utf8.decode(bytes));
        else value = strings ? utf8.decode(bytes) : bytes.slice();
        break;
      }
      default: { // * % ~ > |
        const count = smallInteger(buf, textStart, lineEnd);
        if (count < 0) {
          value = null;
          break;
        }
        const kind = type === 37 ? KIND_MAP : type === 124 ? KIND_ATTRIBUTE : KIND_ARRAY;
        const left = kind === KIND_ARRAY ? count : 2 * count;
        if (left > 0) {
          stack.push({ kind, items: [], left });
          continue;
        }
        if (kind === KIND_ATTRIBUTE) continue;
        value = kind === KIND_MAP ? new Map() : [];
        break;
      }
    }
    // Attach the value to its parent, closing every level it completes.
    for (;;) {
      const top = stack[stack.length - 1];
      if (top === undefined) return { value, end };
      top.items.push(value);
      if (--top.left > 0) break;
      stack.pop();
      if (top.kind === KIND_ATTRIBUTE) break; // the annotated value comes next
      value = top.kind === KIND_MAP ? toMap(top.items) : top.items;
    }
  }
}

function latin1(buf: Uint8Array, from: number, to: number): string {
  let s = "";
  for (let i = from; i < to; i++) s += String.fromCharCode(buf[i]!);
  return s;
}

/** A decimal of at most 15 digits (plus sign), which a double holds exactly. */
function smallInteger(buf: Uint8Array, from: number, to: number): number {
  const negative = buf[from] === 45;
  let n = 0;
  for (let i = negative ? from + 1 : from; i < to; i++) n = n * 10 + buf[i]! - 48;
  return negative ? -n : n;
}

function toInteger(text: string): number | bigint {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}

/** A decimal number as Redis writes doubles (%.17g): sign, digits, fraction, exponent. */
const DOUBLE = /^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/;

function toDouble(text: string): number {
  if (text === "inf" || text === "+inf") return Infinity;
  if (text === "-inf") return -Infinity;
  if (text === "nan" || text === "-nan") return NaN;
  if (!DOUBLE.test(text)) throw new ProtocolError("invalid double");
  return Number(text);
}

/**
 * `buf[from, to)` is an optional '-' then at least one digit: the scan checks only where a line
 * ends, so an integer's text is checked here before it is converted.
 */
function isDecimal(buf: Uint8Array, from: number, to: number): boolean {
  if (buf[from] === 45) from++;
  if (from >= to) return false;
  for (let i = from; i < to; i++) if (buf[i]! < 48 || buf[i]! > 57) return false;
  return true;
}

function toMap(items: RespValue[]): Map<RespValue, RespValue> {
  const map = new Map<RespValue, RespValue>();
  for (let i = 0; i < items.length; i += 2) map.set(items[i]!, items[i + 1]!);
  return map;
}
