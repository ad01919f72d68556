/**
 * Helpers for differential tests, which send the same commands to slotgate and to a plain Redis
 * (over test/support/exchange.ts) and compare the replies' bytes: the few normalisations allowed
 * where Redis itself promises no order (set members, hash fields, SCAN) or picks at random (SPOP,
 * SRANDMEMBER...).
 */
import { scanFrame } from "../../src/resp/frame.ts";

/** How a reply is compared; see {@link normalise}. */
export type Normalise = "exact" | "unordered" | "pairs" | "random";

const CR = 13;
const latin1 = new TextDecoder("latin1");
const ascii = new TextEncoder();

/** An aggregate reply split into its header line and its elements' frames (maps: keys and values). */
export interface Aggregate {
  /** The header line without CRLF, e.g. `*3` or `%2`. */
  readonly header: string;
  readonly elements: Uint8Array[];
}

/** The aggregate at the top of `frame`, or null for a scalar, an error or a null array. */
export function aggregate(frame: Uint8Array): Aggregate | null {
  const type = String.fromCharCode(frame[0]!);
  if (!"*%~>".includes(type)) return null;
  let lineEnd = 1;
  while (frame[lineEnd] !== CR) lineEnd++;
  const header = latin1.decode(frame.subarray(0, lineEnd));
  const count = Number(header.slice(1));
  if (count < 0) return null;
  const elements: Uint8Array[] = [];
  let p = lineEnd + 2;
  for (let i = 0; i < (type === "%" ? 2 * count : count); i++) {
    const end = scanFrame(frame, p, frame.length);
    if (end < 0) throw new Error(`truncated aggregate reply: ${render(frame)}`);
    elements.push(frame.subarray(p, end));
    p = end;
  }
  return { header, elements };
}

/** Join a header line and element frames back into one frame. */
export function frameOf(header: string, elements: readonly Uint8Array[]): Uint8Array {
  const head = ascii.encode(`${header}\r\n`);
  const out = new Uint8Array(head.length + elements.reduce((n, e) => n + e.length, 0));
  out.set(head, 0);
  let o = head.length;
  for (const element of elements) {
    out.set(element, o);
    o += element.length;
  }
  return out;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** Sort frames by their bytes (a canonical order for elements whose order Redis does not promise). */
export function sortFrames(frames: readonly Uint8Array[]): Uint8Array[] {
  return [...frames].sort(compareBytes);
}

/**
 * Group a field-value reply into pairs: the entries of a RESP3 map, the elements of an array of
 * pairs (RESP3 WITHSCORES/WITHVALUES), or consecutive elements of a flat RESP2 array.
 */
export function pairsOf(reply: Aggregate): Uint8Array[] {
  const nested = !reply.header.startsWith("%") && reply.elements.every((e) => e[0] === 42 /* * */);
  if (nested) return reply.elements;
  const pairs: Uint8Array[] = [];
  for (let i = 0; i + 1 < reply.elements.length; i += 2) pairs.push(frameOf("*2", [reply.elements[i]!, reply.elements[i + 1]!]));
  return pairs;
}

/**
 * The form of `frame` that is compared, byte for byte, with the other side's:
 * - `exact`: the frame itself.
 * - `unordered`: the top-level elements sorted (set members, HKEYS, KEYS...).
 * - `pairs`: the top-level field-value pairs sorted, each pair kept together (HGETALL...).
 * - `random`: only the reply type and element count (SPOP, SRANDMEMBER...): an aggregate keeps
 *   its header, a bulk string becomes `$?` unless null.
 * Error replies, null replies and scalars under `unordered`/`pairs` are always compared exactly.
 */
export function normalise(frame: Uint8Array, how: Normalise): Uint8Array {
  if (how === "exact" || frame[0] === 45 /* - */ || frame[0] === 33 /* ! */) return frame;
  const reply = aggregate(frame);
  if (how === "random") {
    if (reply) return ascii.encode(`${reply.header}\r\n`);
    return frame[0] === 36 /* $ */ && frame[1] !== 45 ? ascii.encode("$?\r\n") : frame;
  }
  if (!reply) return frame;
  if (how === "unordered") return frameOf(reply.header, sortFrames(reply.elements));
  return frameOf(reply.header, sortFrames(pairsOf(reply)));
}

/** A short, printable rendering of a frame for failure messages, cut at `max` characters. */
export function render(frame: Uint8Array, max = 160): string {
  const text = JSON.stringify(latin1.decode(frame.subarray(0, max * 2))).slice(1, -1).replace(/\\r\\n/g, "␤");
  return text.length > max ? `${text.slice(0, max)}…(${frame.length} bytes)` : text;
}

/** Equal bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return compareBytes(a, b) === 0;
}
