/**
 * Generator primitives shared by the fuzz targets: sizes, byte strings, chunkings and mutations,
 * all drawn from a seeded `SimRandom` (adapters/sim/random.ts), so a case is a pure function of
 * its seed on every runtime.
 */
import { SimRandom } from "../../adapters/sim/random.ts";

export { SimRandom };

/** A length, mostly tiny, sometimes large: 0..8 (70%), ..64 (20%), ..512 (8%), ..4096 (2%). */
export function size(rng: SimRandom, cap = 4096): number {
  const r = rng.int(100);
  const n = r < 70 ? rng.int(9) : r < 90 ? rng.intBetween(9, 64) : r < 98 ? rng.intBetween(65, 512) : rng.intBetween(513, 4096);
  return n < cap ? n : cap;
}

/** Bytes that mean something to RESP, drawn often so that payloads look like framing. */
const TRICKY = [13, 10, 42, 36, 43, 45, 58, 95, 35, 44, 40, 33, 61, 37, 126, 62, 124, 0, 32, 9, 34, 39, 92, 48, 49, 57, 255];

/** Random bytes: printable text, RESP-looking bytes, or anything. */
export function randomBytes(rng: SimRandom, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const mode = rng.int(3);
  for (let i = 0; i < length; i++) {
    out[i] = mode === 0 ? rng.intBetween(33, 126) : mode === 1 && rng.chance(0.5) ? rng.pick(TRICKY) : rng.int(256);
  }
  return out;
}

/** Printable ASCII without space, quotes or backslash: safe as a bare inline word. */
export function word(rng: SimRandom, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    let c = rng.intBetween(33, 126);
    if (c === 34 || c === 39 || c === 92) c = 97 + rng.int(26);
    out[i] = c;
  }
  return out;
}

export function ascii(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const part of parts) n += part.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const part of parts) {
    out.set(part, o);
    o += part.length;
  }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Bytes as a JS string literal (JSON escapes, bytes >= 0x7f as \u00XX), for reproductions. */
export function show(bytes: Uint8Array, max = 2000): string {
  let s = "";
  const n = bytes.length < max ? bytes.length : max;
  for (let i = 0; i < n; i++) s += String.fromCharCode(bytes[i]!);
  const literal = JSON.stringify(s).replace(/[\u007f-\u00ff]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
  return n < bytes.length ? `${literal} /* ... ${bytes.length - n} more bytes */` : literal;
}

/**
 * Chunk sizes that split `length` bytes: whole (10%), every byte apart (10%), or random sizes,
 * small or up to 64 bytes. They always sum to `length`.
 */
export function chunking(rng: SimRandom, length: number): number[] {
  if (length === 0) return [];
  const r = rng.int(10);
  if (r === 0) return [length];
  if (r === 1 && length <= 512) return new Array<number>(length).fill(1);
  const max = rng.chance(0.5) ? 8 : 64;
  const sizes: number[] = [];
  for (let left = length; left > 0; ) {
    const n = Math.min(left, rng.intBetween(1, max));
    sizes.push(n);
    left -= n;
  }
  return sizes;
}

/** Splits `bytes` by `sizes` into fresh copies (a reader may keep views of what it is given). */
export function split(bytes: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let p = 0;
  for (const n of sizes) {
    chunks.push(bytes.slice(p, p + n));
    p += n;
  }
  if (p < bytes.length) chunks.push(bytes.slice(p));
  return chunks;
}

/** Byte sequences that mutations insert: framing fragments that make plausible-looking damage. */
const SPLICES = ["\r\n", "\r", "\n", "*", "$", "*1\r\n", "$1\r\n", "$-1\r\n", "*-1\r\n", "0", "-", "99999999999", "\"", "'", "\\", "\x00", " ", "%1\r\n", "|1\r\n", ">2\r\n", "_\r\n", ":1\r\n"].map(ascii);

/** Applies 1..4 random byte-level mutations (flip, insert, delete, duplicate, splice). */
export function mutate(rng: SimRandom, input: Uint8Array): Uint8Array {
  let bytes = input;
  const count = rng.intBetween(1, 4);
  for (let k = 0; k < count; k++) {
    const n = bytes.length;
    const at = rng.int(n + 1);
    switch (rng.int(5)) {
      case 0: {
        if (n === 0) break;
        const copy = bytes.slice();
        copy[at < n ? at : n - 1] = rng.chance(0.5) ? rng.pick(TRICKY) : rng.int(256);
        bytes = copy;
        break;
      }
      case 1:
        bytes = concat([bytes.subarray(0, at), randomBytes(rng, rng.intBetween(1, 8)), bytes.subarray(at)]);
        break;
      case 2: {
        const end = Math.min(n, at + rng.intBetween(1, 16));
        bytes = concat([bytes.subarray(0, at), bytes.subarray(end)]);
        break;
      }
      case 3: {
        const end = Math.min(n, at + rng.intBetween(1, 32));
        bytes = concat([bytes.subarray(0, end), bytes.subarray(at, end), bytes.subarray(end)]);
        break;
      }
      default:
        bytes = concat([bytes.subarray(0, at), rng.pick(SPLICES), bytes.subarray(at)]);
    }
  }
  return bytes;
}

/** The 32-bit seed of case `index` of a run seeded `seed` (splitmix-style mixing). */
export function caseSeed(seed: number, index: number): number {
  let z = (seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}
