/**
 * The fuzz loop: a target generates one input per case from that case's seed and checks it; the
 * first failure is shrunk to a small input that still breaks the same property, and reported with
 * the seed and index that reproduce it. Used by scripts/fuzz.ts (long runs) and
 * test/unit/fuzz.test.ts (CI's short seeded slice).
 */
import { SimRandom, caseSeed } from "./gen.ts";

/** A broken property: its name (shrinking keeps it), and what was seen. */
export interface Failure {
  property: string;
  detail: string;
}

/** One thing to fuzz. Inputs are plain data, so a shrunk input is checked exactly like a fresh one. */
export interface Target<I> {
  readonly name: string;
  generate(rng: SimRandom): I;
  /** The first property `input` breaks, or null. May be async (the session target settles promises). */
  check(input: I): Failure | null | Promise<Failure | null>;
  /** Smaller variants of `input`, most promising first. */
  shrink(input: I): Iterable<I>;
  /** The input as a reproduction: literals a test can paste. */
  describe(input: I): string;
  /** The input's size in bytes (work done per case is reported against it). */
  size(input: I): number;
}

export interface RunOptions {
  seed: number;
  /** Index of the first case (a reproduction starts at the failing one). */
  from?: number;
  cases: number;
  /** Called every `progressEvery` cases with the number done. */
  onProgress?: (done: number) => void;
  progressEvery?: number;
  /** Most checks spent shrinking a failure (default 3000). */
  shrinkBudget?: number;
}

export interface RunResult {
  target: string;
  cases: number;
  bytes: number;
  elapsedMs: number;
  /**
   * The slowest case: its index, its time and its input size, and its best time when checked
   * again (a pause of the machine or its garbage collector shows as a fast rerun).
   */
  slowest: { index: number; ms: number; bytes: number; rerunMs: number };
  failure: FailureReport | null;
}

export interface FailureReport {
  target: string;
  seed: number;
  index: number;
  failure: Failure;
  /** The shrunk input, described; and the shrunk failure. */
  minimal: string;
  minimalFailure: Failure;
  shrinkSteps: number;
}

const now = () => performance.now();

async function checkSafely<I>(target: Target<I>, input: I): Promise<Failure | null> {
  try {
    const result = target.check(input);
    return result instanceof Promise ? await result : result;
  } catch (error) {
    const detail = error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ""}` : String(error);
    return { property: "the check itself threw (an exception escaped the code under test)", detail };
  }
}

/** The input of case `index` of a run seeded `seed`. */
export function generateCase<I>(target: Target<I>, seed: number, index: number): I {
  return target.generate(new SimRandom(caseSeed(seed, index)).fork(target.name));
}

/** Runs `cases` cases of `target`; stops at the first failure, which it shrinks. */
export async function runTarget<I>(target: Target<I>, options: RunOptions): Promise<RunResult> {
  const from = options.from ?? 0;
  const every = options.progressEvery ?? 1000;
  const started = now();
  let bytes = 0;
  const slowest = { index: from, ms: 0, bytes: 0, rerunMs: 0 };
  for (let i = 0; i < options.cases; i++) {
    const index = from + i;
    const t0 = now();
    const input = generateCase(target, options.seed, index);
    const failure = await checkSafely(target, input);
    const ms = now() - t0;
    const size = target.size(input);
    bytes += size;
    if (ms > slowest.ms) Object.assign(slowest, { index, ms, bytes: size });
    if (failure) {
      const shrunk = await shrink(target, input, failure, options.shrinkBudget ?? 3000);
      return {
        target: target.name,
        cases: i + 1,
        bytes,
        elapsedMs: now() - started,
        slowest,
        failure: { target: target.name, seed: options.seed, index, failure, minimal: target.describe(shrunk.input), minimalFailure: shrunk.failure, shrinkSteps: shrunk.steps },
      };
    }
    if ((i + 1) % every === 0) options.onProgress?.(i + 1);
  }
  const elapsedMs = now() - started;
  slowest.rerunMs = Infinity;
  for (let k = 0; k < 3 && options.cases > 0; k++) {
    const input = generateCase(target, options.seed, slowest.index);
    const t0 = now();
    await checkSafely(target, input);
    slowest.rerunMs = Math.min(slowest.rerunMs, now() - t0);
  }
  return { target: target.name, cases: options.cases, bytes, elapsedMs, slowest, failure: null };
}

/** Greedy shrinking: take the first smaller variant that still breaks the same property, repeat. */
async function shrink<I>(target: Target<I>, input: I, failure: Failure, budget: number): Promise<{ input: I; failure: Failure; steps: number }> {
  let best = input;
  let bestFailure = failure;
  let tries = 0;
  let steps = 0;
  outer: while (tries < budget) {
    for (const candidate of target.shrink(best)) {
      if (++tries > budget) break outer;
      const f = await checkSafely(target, candidate);
      if (f !== null && f.property === failure.property) {
        best = candidate;
        bestFailure = f;
        steps++;
        continue outer;
      }
    }
    break;
  }
  return { input: best, failure: bestFailure, steps };
}

/** A failure as text: the property, the case that found it, how to rerun it, the minimal input. */
export function formatFailure(report: FailureReport): string {
  return [
    `FAIL ${report.target}: ${report.failure.property}`,
    `  case ${report.index} of seed ${report.seed}; rerun: npm run fuzz -- --target ${report.target} --seed ${report.seed} --from ${report.index} --cases 1`,
    `  seen: ${indent(report.failure.detail)}`,
    `  minimal input (${report.shrinkSteps} shrink steps): ${indent(report.minimal)}`,
    `  minimal failure: ${indent(report.minimalFailure.detail)}`,
  ].join("\n");
}

function indent(text: string): string {
  return text.replace(/\n/g, "\n    ");
}

// --- shrinking helpers for byte inputs ----------------------------------------------------------

/**
 * Smaller chunked byte strings: whole spans removed (halves first, down to single bytes), each
 * chunk boundary kept where it was in the bytes that remain; then bytes made plain ('a').
 */
export function* shrinkChunked(bytes: Uint8Array, sizes: readonly number[]): Iterable<{ bytes: Uint8Array; sizes: number[] }> {
  const n = bytes.length;
  for (let span = n; span >= 1; span = span > 1 ? Math.floor(span / 2) : 0) {
    for (let at = 0; at + span <= n; at += span) {
      const out = new Uint8Array(n - span);
      out.set(bytes.subarray(0, at), 0);
      out.set(bytes.subarray(at + span), at);
      yield { bytes: out, sizes: removeSpan(sizes, at, span) };
    }
  }
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    // Letters and digits read best; framing bytes are left alone, they are usually the point.
    if ((b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b === 13 || b === 10 || b === 42 || b === 36) continue;
    const out = bytes.slice();
    out[i] = 97;
    yield { bytes: out, sizes: [...sizes] };
  }
}

/** Chunk sizes once `span` bytes at `at` are gone: boundaries after it move back, those inside it go. */
function removeSpan(sizes: readonly number[], at: number, span: number): number[] {
  const out: number[] = [];
  let end = 0;
  let last = 0;
  for (const size of sizes) {
    end += size;
    const boundary = end <= at ? end : end >= at + span ? end - span : at;
    if (boundary > last) {
      out.push(boundary - last);
      last = boundary;
    }
  }
  return out;
}

/** Fewer chunk boundaries: all in one, then pairs of neighbouring chunks merged. */
export function* shrinkSizes(sizes: readonly number[]): Iterable<number[]> {
  if (sizes.length <= 1) return;
  const total = sizes.reduce((a, b) => a + b, 0);
  yield [total];
  for (let i = 0; i + 1 < sizes.length; i++) {
    yield [...sizes.slice(0, i), sizes[i]! + sizes[i + 1]!, ...sizes.slice(i + 2)];
  }
}
