/**
 * What a simulated node changes for a client that said `HELLO 3`: the data commands build RESP2
 * replies, and the node's writer turns each nil in them (`$-1`, `*-1`, at any depth) into RESP3's
 * `_`, as Redis answers a RESP3 client. Pub/sub frames are built as pushes by ./node-pubsub.ts, and
 * HELLO's map by the node; nothing else a simulated node answers differs between the two.
 */
import { NULL_RESP3 } from "../../../src/resp/encode.ts";

const CR = 13;
const DOLLAR = 36;
const STAR = 42;
const PUSH = 62;
const PERCENT = 37;

/** `frames` (one or more whole RESP frames) with every nil as `_`. */
export function resp3Nulls(frames: Uint8Array): Uint8Array {
  if (!hasNil(frames)) return frames;
  const out: number[] = [];
  let at = 0;
  while (at < frames.length) at = copy(frames, at, out);
  return Uint8Array.from(out);
}

/** `-1\r\n` appears anywhere: the only way a nil is written (cheap filter before the walk). */
function hasNil(b: Uint8Array): boolean {
  for (let i = 0; i + 3 < b.length; i++) if (b[i] === 45 && b[i + 1] === 49 && b[i + 2] === CR) return true;
  return false;
}

/** Copy the frame at `at` into `out`, nils replaced; the offset after it. */
function copy(b: Uint8Array, at: number, out: number[]): number {
  let eol = at;
  while (b[eol] !== CR) eol++;
  const type = b[at]!;
  const header = b.subarray(at, eol + 2);
  const n = Number(String.fromCharCode(...b.subarray(at + 1, eol)));
  if ((type === DOLLAR || type === STAR) && n === -1) {
    out.push(...NULL_RESP3);
    return eol + 2;
  }
  out.push(...header);
  if (type === DOLLAR) {
    out.push(...b.subarray(eol + 2, eol + 4 + n));
    return eol + 4 + n;
  }
  if (type === STAR || type === PUSH || type === PERCENT) {
    let next = eol + 2;
    for (let i = 0; i < (type === PERCENT ? 2 * n : n); i++) next = copy(b, next, out);
    return next;
  }
  return eol + 2;
}
