/**
 * MD5 (RFC 1321) in plain TypeScript, for ketama's continuum and its `md5` key hash. The core may
 * not import node:crypto and WebCrypto has no MD5 (and is async), so this is our own.
 *
 * Words are read straight from the input (little-endian) into a reused 16-word scratch array; only
 * the final one or two padded blocks go through a reused 128-byte tail buffer. Nothing is allocated
 * per byte or per block: one call allocates just the 16-byte digest it returns.
 */

/** K[i] = floor(|sin(i + 1)| * 2^32), written out rather than computed so no engine's Math.sin matters. */
const K = new Int32Array([
  0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
  0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
  0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
  0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
  0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
  0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
  0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
  0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
]);

/** Left-rotate amounts: four per round, repeated over the round's 16 steps. */
const S = new Uint8Array([7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21]);

/** Message word used by step i: i, (5i + 1), (3i + 5), 7i, each mod 16, per round. */
const G = new Uint8Array(64);
for (let i = 0; i < 64; i++) {
  G[i] = i < 16 ? i : i < 32 ? (5 * i + 1) & 15 : i < 48 ? (3 * i + 5) & 15 : (7 * i) & 15;
}

/** Scratch: the current block as 16 little-endian words, the chaining state, the padded tail. */
const X = new Int32Array(16);
const H = new Int32Array(4);
const TAIL = new Uint8Array(128);

/** Run the compression function over the 64-byte block at `src[off]`, updating H. */
function compress(src: Uint8Array, off: number): void {
  for (let w = 0; w < 16; w++, off += 4) {
    X[w] = src[off]! | (src[off + 1]! << 8) | (src[off + 2]! << 16) | (src[off + 3]! << 24);
  }
  let a = H[0]!;
  let b = H[1]!;
  let c = H[2]!;
  let d = H[3]!;
  for (let i = 0; i < 64; i++) {
    let f: number;
    if (i < 16) f = (b & c) | (~b & d);
    else if (i < 32) f = (d & b) | (~d & c);
    else if (i < 48) f = b ^ c ^ d;
    else f = c ^ (b | ~d);
    const s = S[((i >> 4) << 2) | (i & 3)]!;
    const t = (a + f + K[i]! + X[G[i]!]!) | 0;
    a = d;
    d = c;
    c = b;
    b = (b + ((t << s) | (t >>> (32 - s)))) | 0;
  }
  H[0] = (H[0]! + a) | 0;
  H[1] = (H[1]! + b) | 0;
  H[2] = (H[2]! + c) | 0;
  H[3] = (H[3]! + d) | 0;
}

/** The 16-byte MD5 digest of `bytes`. */
export function md5(bytes: Uint8Array): Uint8Array {
  H[0] = 0x67452301;
  H[1] = 0xefcdab89 | 0;
  H[2] = 0x98badcfe | 0;
  H[3] = 0x10325476;
  const n = bytes.length;
  const full = n - (n & 63);
  for (let off = 0; off < full; off += 64) compress(bytes, off);

  // Tail: the remaining bytes, 0x80, zeros, then the bit length as a 64-bit little-endian number,
  // in one block if the remainder leaves room for the 9 extra bytes, else two.
  const rest = n - full;
  const tailLen = rest < 56 ? 64 : 128;
  TAIL.fill(0, 0, tailLen);
  for (let k = 0; k < rest; k++) TAIL[k] = bytes[full + k]!;
  TAIL[rest] = 0x80;
  const bitsLow = (n << 3) >>> 0; // n * 8 mod 2^32
  const bitsHigh = Math.floor(n / 0x20000000); // n * 8 / 2^32
  for (let k = 0; k < 4; k++) {
    TAIL[tailLen - 8 + k] = (bitsLow >>> (8 * k)) & 0xff;
    TAIL[tailLen - 4 + k] = (bitsHigh >>> (8 * k)) & 0xff;
  }
  compress(TAIL, 0);
  if (tailLen === 128) compress(TAIL, 64);

  const out = new Uint8Array(16);
  for (let w = 0; w < 4; w++) {
    const v = H[w]!;
    out[4 * w] = v & 0xff;
    out[4 * w + 1] = (v >>> 8) & 0xff;
    out[4 * w + 2] = (v >>> 16) & 0xff;
    out[4 * w + 3] = (v >>> 24) & 0xff;
  }
  return out;
}
