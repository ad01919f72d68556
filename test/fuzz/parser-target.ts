/**
 * Fuzz target "parser": `RequestParser` (src/resp/request-parser.ts) against the reference of
 * ./requests.ts. Properties: only `ProtocolError` escapes; the input whole and the same input cut
 * into random chunks give the reference's requests (arguments and frames), its error or its
 * unfinished tail; a failed parser rethrows the same error until `reset`, then parses afresh; and
 * for generated inputs the reference agrees with what the generator meant.
 */
import { ProtocolError } from "../../src/resp/errors.ts";
import { DEFAULT_LIMITS, type RespLimits } from "../../src/resp/frame.ts";
import { RequestParser, type RequestHandler } from "../../src/resp/request-parser.ts";
import { ascii, chunking, concat, equalBytes, mutate, randomBytes, show, size, split, type SimRandom } from "./gen.ts";
import { shrinkChunked, shrinkSizes, type Failure, type Target } from "./harness.ts";
import { malformedRequest, refRequests, requestsOf, validPipeline, type NamePicker, type RequestOutcome } from "./requests.ts";

export interface ParserInput {
  bytes: Uint8Array;
  /** Chunk sizes for the chunked run. */
  sizes: number[];
  limits: RespLimits;
  /** What the generator built: the requests that run and the error, or null for mutated bytes. */
  intended: { requests: Uint8Array[][]; error: string | null; pending: number } | null;
}

/** Limits small enough to be crossed by generated input, or Redis's defaults. */
export function fuzzLimits(rng: SimRandom): RespLimits {
  if (rng.chance(0.6)) return DEFAULT_LIMITS;
  return { maxBulkBytes: rng.intBetween(1, 64), maxArrayLength: rng.intBetween(1, 8) };
}

/**
 * Valid (35%), valid cut at a random point (25%), a valid prefix then one malformed request and
 * anything after it (20%), or either mutated at random (20%).
 */
export function generateRequests(rng: SimRandom, limits: RespLimits, name?: NamePicker): { bytes: Uint8Array; intended: ParserInput["intended"] } {
  const r = rng.int(100);
  const prefix = validPipeline(rng, limits, name);
  if (r < 35) return { bytes: prefix.bytes, intended: { requests: requestsOf(prefix.items), error: null, pending: 0 } };
  if (r < 60) {
    const cut = rng.int(prefix.bytes.length + 1);
    const done = prefix.items.filter((item) => item.end <= cut);
    const last = done.length > 0 ? done[done.length - 1]!.end : 0;
    return { bytes: prefix.bytes.slice(0, cut), intended: { requests: requestsOf(done), error: null, pending: cut - last } };
  }
  const bad = malformedRequest(rng, limits);
  const after = rng.chance(0.5) ? validPipeline(rng, limits, name).bytes : randomBytes(rng, size(rng, 64));
  const bytes = concat([prefix.bytes, bad.bytes, after]);
  if (r < 80) return { bytes, intended: { requests: requestsOf(prefix.items), error: bad.error, pending: 0 } };
  return { bytes: mutate(rng, rng.chance(0.5) ? prefix.bytes : bytes), intended: null };
}

interface Run {
  outcome: RequestOutcome;
  /** The parser, failed or not, for the after-failure checks. */
  parser: RequestParser;
  thrown: unknown;
}

/** How the target makes the parser it checks (a test plants a broken one to see it caught). */
export type ParserFactory = (onRequest: RequestHandler, limits: RespLimits) => RequestParser;

function parse(chunks: Uint8Array[], limits: RespLimits, create: ParserFactory): Run | Failure {
  const requests: RequestOutcome["requests"] = [];
  const parser = create((args, frame) => {
    // Arguments and frames may be views of the chunks: copy, as a consumer keeping them must.
    requests.push({ args: args.map((a) => a.slice()), frame: frame.slice() });
  }, limits);
  for (const chunk of chunks) {
    try {
      parser.push(chunk);
    } catch (error) {
      if (!(error instanceof ProtocolError)) return { property: "only ProtocolError escapes the parser", detail: String(error instanceof Error ? error.stack : error) };
      return { outcome: { requests, error: error.message, pending: 0 }, parser, thrown: error };
    }
  }
  return { outcome: { requests, error: null, pending: parser.bufferedBytes }, parser, thrown: null };
}

/** How `actual` differs from `expected`, or null. Frames are compared only when both have them. */
export function diffOutcome(expected: RequestOutcome, actual: RequestOutcome): string | null {
  const n = Math.max(expected.requests.length, actual.requests.length);
  for (let i = 0; i < n; i++) {
    const e = expected.requests[i];
    const a = actual.requests[i];
    if (!e || !a) return `request ${i}: expected ${e ? showArgs(e.args) : "none"}, got ${a ? showArgs(a.args) : "none"} (${expected.requests.length} expected, ${actual.requests.length} got)`;
    if (e.args.length !== a.args.length || e.args.some((arg, k) => !equalBytes(arg, a.args[k]!))) return `request ${i}: expected ${showArgs(e.args)}, got ${showArgs(a.args)}`;
    if (!equalBytes(e.frame, a.frame)) return `request ${i}: expected frame ${show(e.frame)}, got ${show(a.frame)}`;
  }
  if (expected.error !== actual.error) return `error: expected ${JSON.stringify(expected.error)}, got ${JSON.stringify(actual.error)}`;
  if (expected.pending !== actual.pending) return `unfinished bytes held: expected ${expected.pending}, got ${actual.pending}`;
  return null;
}

function showArgs(args: Uint8Array[]): string {
  return `[${args.map((a) => show(a, 80)).join(", ")}]`;
}

/** A request within every generated limit. */
const PING = ascii("*1\r\n$1\r\nP\r\n");

function checkParser(input: ParserInput, create: ParserFactory): Failure | null {
  const { bytes, limits } = input;
  const expected = refRequests(bytes, limits);
  if (input.intended) {
    const intended: RequestOutcome = { requests: input.intended.requests.map((args) => ({ args, frame: new Uint8Array(0) })), error: input.intended.error, pending: input.intended.pending };
    const withoutFrames = { ...expected, requests: expected.requests.map((r) => ({ args: r.args, frame: new Uint8Array(0) })) };
    const diff = diffOutcome(intended, withoutFrames);
    if (diff) return { property: "the reference parser reads generated input as the generator meant it (harness check)", detail: diff };
  }
  const runs: [string, Uint8Array[]][] = [["whole", [bytes]], ["chunked", split(bytes, input.sizes)]];
  for (const [how, chunks] of runs) {
    const run = parse(chunks, limits, create);
    if ("property" in run) return run;
    const diff = diffOutcome(expected, run.outcome);
    if (diff) return { property: `the parser (input ${how}) agrees with the reference`, detail: diff };
    if (run.thrown !== null) {
      try {
        run.parser.push(PING);
        return { property: "a failed parser rethrows its error", detail: "push after a ProtocolError returned normally" };
      } catch (error) {
        if (error !== run.thrown) return { property: "a failed parser rethrows its error", detail: `rethrew ${String(error)} instead` };
      }
    }
    // Reset forgets the failure and any unfinished request: the next request parses on its own.
    const before = run.outcome.requests.length;
    run.parser.reset();
    run.parser.push(PING);
    const got = run.outcome.requests.length - before;
    if (got !== 1 || run.parser.bufferedBytes !== 0) return { property: "a reset parser parses afresh", detail: `PING after reset gave ${got} requests, ${run.parser.bufferedBytes} bytes held` };
  }
  return null;
}

/** The "parser" target, checking the parsers `create` makes. */
export function parserTargetFor(create: ParserFactory): Target<ParserInput> {
  return { ...parserTarget, check: (input) => checkParser(input, create) };
}

export const parserTarget: Target<ParserInput> = {
  name: "parser",
  generate(rng) {
    const limits = fuzzLimits(rng);
    const { bytes, intended } = generateRequests(rng, limits);
    return { bytes, sizes: chunking(rng, bytes.length), limits, intended };
  },
  check: (input) => checkParser(input, (onRequest, limits) => new RequestParser(onRequest, limits)),
  *shrink(input) {
    for (const sizes of shrinkSizes(input.sizes)) yield { ...input, sizes };
    // Shrunk bytes no longer mean what the generator meant: the reference alone judges them.
    for (const { bytes, sizes } of shrinkChunked(input.bytes, input.sizes)) yield { ...input, bytes, sizes, intended: null };
  },
  describe(input) {
    return `bytes ${show(input.bytes)}\nchunk sizes [${input.sizes.join(", ")}]\nlimits ${JSON.stringify(input.limits)}`;
  },
  size: (input) => input.bytes.length,
};
