/**
 * Seeded randomness for the simulator: xoshiro128** (Blackman & Vigna), 32-bit state words, so
 * every operation is exact integer arithmetic and the stream is identical on every engine.
 *
 * Seed expansion: the 32-bit seed is fed through splitmix32 four times to fill the 128-bit state
 * (an all-zero state, impossible in practice, is replaced by a constant). `fork(label)` derives
 * a child stream from the *seed key* of its parent and an FNV-1a hash of the label — it does not
 * draw from the parent — so adding a consumer (a new fork) never perturbs the draws of the others,
 * and `fork("network")` is the same stream however many other forks were made before it.
 *
 * Floating point: `float()` is `next32() / 2^32` (exact). `exponential()` uses our own `ln`
 * (argument reduction by exact halvings plus an atanh series: only + - * /, which IEEE 754 rounds
 * identically everywhere) instead of `Math.log`, whose last bit may differ between V8 and JSC.
 */

const U32 = 0x1_0000_0000;

/** splitmix32 step: returns the next state and an output word. */
function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return [next, (z ^ (z >>> 16)) >>> 0];
}

/** FNV-1a over the UTF-16 code units of `text`. */
function fnv1a(text: string, basis = 0x811c9dc5): number {
  let h = basis >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

const LN2 = 0.6931471805599453;

/** Natural logarithm of x in (0, 1], computed with + - * / only (bit-identical on every engine). */
export function detLn(x: number): number {
  if (!(x > 0) || x > 1) throw new RangeError(`detLn: ${x} is outside (0, 1]`);
  let e = 0;
  while (x < 0.5) {
    x *= 2; // exact: a power-of-two scaling
    e++;
  }
  // x in [0.5, 1]: ln x = 2 atanh(z), z = (x - 1) / (x + 1) in [-1/3, 0]
  const z = (x - 1) / (x + 1);
  const z2 = z * z;
  let term = z;
  let sum = 0;
  for (let k = 1; k < 60; k += 2) {
    sum += term / k;
    term *= z2;
    if (term === 0 || Math.abs(term) < 1e-20) break;
  }
  return 2 * sum - e * LN2;
}

export class SimRandom {
  /** The seed key this stream was built from (used to derive forks). */
  readonly key: number;
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  constructor(seed: number) {
    this.key = seed >>> 0;
    let state = this.key;
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [next, out] = splitmix32(state);
      state = next;
      words.push(out);
    }
    if ((words[0]! | words[1]! | words[2]! | words[3]!) === 0) words[0] = 0x9e3779b9;
    [this.#s0, this.#s1, this.#s2, this.#s3] = words as [number, number, number, number];
  }

  /** The next raw 32-bit unsigned word. */
  next32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.#s1 << 9) >>> 0;
    this.#s2 = (this.#s2 ^ this.#s0) >>> 0;
    this.#s3 = (this.#s3 ^ this.#s1) >>> 0;
    this.#s1 = (this.#s1 ^ this.#s2) >>> 0;
    this.#s0 = (this.#s0 ^ this.#s3) >>> 0;
    this.#s2 = (this.#s2 ^ t) >>> 0;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** A float in [0, 1) with 32 bits of randomness. */
  float(): number {
    return this.next32() / U32;
  }

  /** An integer in [0, n); `n` must be a positive integer below 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > U32) throw new RangeError(`int(${n}): n must be an integer in [1, 2^32]`);
    // Rejection sampling: no modulo bias.
    const limit = U32 - (U32 % n);
    for (;;) {
      const x = this.next32();
      if (x < limit) return x % n;
    }
  }

  /** An integer in [lo, hi] (inclusive). */
  intBetween(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability `p` (p <= 0 never draws, so a disabled fault costs no randomness). */
  chance(p: number): boolean {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return this.float() < p;
  }

  /** An exponentially distributed value with the given mean (0 when mean <= 0, without drawing). */
  exponential(mean: number): number {
    if (mean <= 0) return 0;
    // 1 - float() is in (0, 1], so the logarithm is finite.
    return -mean * detLn(1 - this.float());
  }

  /** A uniformly chosen element; throws on an empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick from an empty array");
    return items[this.int(items.length)]!;
  }

  /** Shuffles `items` in place (Fisher–Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }

  /** An independent stream derived from this stream's seed key and `label` (draws nothing here). */
  fork(label: string): SimRandom {
    return new SimRandom(fnv1a(label, fnv1a(String(this.key))));
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
