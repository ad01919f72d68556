/**
 * Fuzz target "replies": `ReplyReader` (src/resp/reply-reader.ts) against the reference framer of
 * ./replies.ts, and every frame it yields through `decode` and the relay path's byte inspections
 * (isError, errorPrefix, parseRedirect, readInteger). Properties: only `ProtocolError` escapes the
 * reader and `decode`; the input whole and chunked gives the reference's frames, error or
 * unfinished tail; a failed reader rethrows until `reset`; a generated reply decodes to the value
 * it was generated from; the inspections never throw and return values in range.
 */
import { ProtocolError } from "../../src/resp/errors.ts";
import type { RespLimits } from "../../src/resp/frame.ts";
import { decode, type RespValue } from "../../src/resp/decode.ts";
import { ReplyReader, errorPrefix, isError, parseRedirect, readInteger } from "../../src/resp/reply-reader.ts";
import { ascii, chunking, concat, equalBytes, mutate, randomBytes, show, size, split, type SimRandom } from "./gen.ts";
import { shrinkChunked, shrinkSizes, type Failure, type Target } from "./harness.ts";
import { fuzzLimits } from "./parser-target.ts";
import { diffValue, genReply, malformedReply, refReplies, type Reply, type ReplyOutcome } from "./replies.ts";

export interface RepliesInput {
  bytes: Uint8Array;
  sizes: number[];
  limits: RespLimits;
  /** What the generator built (frames, their decoded values, error, unfinished bytes), or null. */
  intended: { frames: Uint8Array[]; values: RespValue[]; error: string | null; pending: number } | null;
}

/** 0..6 replies in a row (RESP3 types in 60% of streams). */
export function replyStream(rng: SimRandom, limits: RespLimits): Reply[] {
  const resp3 = rng.chance(0.6);
  const replies: Reply[] = [];
  for (let n = rng.chance(0.8) ? rng.int(4) : rng.int(7); n > 0; n--) replies.push(genReply(rng, limits, resp3));
  return replies;
}

function generate(rng: SimRandom): RepliesInput {
  const limits = fuzzLimits(rng);
  const replies = replyStream(rng, limits);
  const valid = concat(replies.map((r) => r.bytes));
  const frames = replies.map((r) => r.bytes);
  const values = replies.map((r) => r.value);
  const r = rng.int(100);
  let bytes: Uint8Array;
  let intended: RepliesInput["intended"] = null;
  if (r < 35) {
    bytes = valid;
    intended = { frames, values, error: null, pending: 0 };
  } else if (r < 60) {
    const cut = rng.int(valid.length + 1);
    bytes = valid.slice(0, cut);
    let end = 0;
    let k = 0;
    while (k < frames.length && end + frames[k]!.length <= cut) end += frames[k++]!.length;
    intended = { frames: frames.slice(0, k), values: values.slice(0, k), error: null, pending: cut - end };
  } else {
    const bad = malformedReply(rng, limits);
    const after = rng.chance(0.5) ? concat(replyStream(rng, limits).map((x) => x.bytes)) : randomBytes(rng, size(rng, 64));
    bytes = concat([valid, bad.bytes, after]);
    if (r < 80) intended = { frames, values, error: bad.error, pending: 0 };
    else bytes = mutate(rng, rng.chance(0.5) ? valid : bytes);
  }
  return { bytes, sizes: chunking(rng, bytes.length), limits, intended };
}

interface Run {
  outcome: ReplyOutcome;
  reader: ReplyReader;
  thrown: unknown;
}

function read(chunks: Uint8Array[], limits: RespLimits): Run | Failure {
  const frames: Uint8Array[] = [];
  const reader = new ReplyReader((frame) => frames.push(frame.slice()), limits);
  for (const chunk of chunks) {
    try {
      reader.push(chunk);
    } catch (error) {
      if (!(error instanceof ProtocolError)) return { property: "only ProtocolError escapes the reply reader", detail: String(error instanceof Error ? error.stack : error) };
      return { outcome: { frames, error: error.message, pending: 0 }, reader, thrown: error };
    }
  }
  return { outcome: { frames, error: null, pending: reader.bufferedBytes }, reader, thrown: null };
}

function diffReplies(expected: ReplyOutcome, actual: ReplyOutcome): string | null {
  const n = Math.max(expected.frames.length, actual.frames.length);
  for (let i = 0; i < n; i++) {
    const e = expected.frames[i];
    const a = actual.frames[i];
    if (!e || !a || !equalBytes(e, a)) return `frame ${i}: expected ${e ? show(e, 200) : "none"}, got ${a ? show(a, 200) : "none"} (${expected.frames.length} expected, ${actual.frames.length} got)`;
  }
  if (expected.error !== actual.error) return `error: expected ${JSON.stringify(expected.error)}, got ${JSON.stringify(actual.error)}`;
  if (expected.pending !== actual.pending) return `unfinished bytes held: expected ${expected.pending}, got ${actual.pending}`;
  return null;
}

const NULL_FRAME = ascii("_\r\n");

/** `decode` and the byte inspections on one frame the reader accepted. */
function checkFrame(frame: Uint8Array, expected: RespValue | undefined): Failure | null {
  for (const strings of [false, true]) {
    try {
      const value = decode(frame, { strings });
      if (!strings && expected !== undefined) {
        const diff = diffValue(expected, value);
        if (diff) return { property: "a generated reply decodes to its value", detail: `${diff} in ${show(frame, 200)}` };
      }
    } catch (error) {
      if (!(error instanceof ProtocolError)) return { property: "only ProtocolError escapes decode", detail: `${String(error)} decoding ${show(frame, 200)}` };
      if (expected !== undefined) return { property: "a generated reply decodes to its value", detail: `${String(error)} decoding ${show(frame, 200)}` };
    }
  }
  try {
    const error = isError(frame);
    const prefix = errorPrefix(frame);
    if (!error && prefix !== "") return { property: "errorPrefix is empty for a non-error", detail: show(frame, 200) };
    const redirect = parseRedirect(frame);
    if (redirect !== null) {
      const { slot, port, host } = redirect;
      if (!Number.isInteger(slot) || slot < 0 || slot > 16383 || !Number.isInteger(port) || port < 0 || port > 65535 || typeof host !== "string") {
        return { property: "parseRedirect returns a slot and port in range", detail: `${JSON.stringify(redirect)} from ${show(frame, 200)}` };
      }
    }
    const n = readInteger(frame);
    if (n !== null && (frame[0] !== 58 || !Number.isFinite(n))) return { property: "readInteger reads only integer frames", detail: `${n} from ${show(frame, 200)}` };
  } catch (error) {
    return { property: "the relay path's byte inspections never throw", detail: `${String(error)} on ${show(frame, 200)}` };
  }
  return null;
}

function checkReplies(input: RepliesInput): Failure | null {
  const { bytes, limits } = input;
  const expected = refReplies(bytes, limits);
  if (input.intended) {
    const diff = diffReplies(input.intended, expected);
    if (diff) return { property: "the reference framer reads generated input as the generator meant it (harness check)", detail: diff };
  }
  const runs: [string, Uint8Array[]][] = [["whole", [bytes]], ["chunked", split(bytes, input.sizes)]];
  for (const [how, chunks] of runs) {
    const run = read(chunks, limits);
    if ("property" in run) return run;
    const diff = diffReplies(expected, run.outcome);
    if (diff) return { property: `the reply reader (input ${how}) agrees with the reference`, detail: diff };
    if (run.thrown !== null) {
      try {
        run.reader.push(NULL_FRAME);
        return { property: "a failed reader rethrows its error", detail: "push after a ProtocolError returned normally" };
      } catch (error) {
        if (error !== run.thrown) return { property: "a failed reader rethrows its error", detail: `rethrew ${String(error)} instead` };
      }
    }
    const before = run.outcome.frames.length;
    run.reader.reset();
    run.reader.push(NULL_FRAME);
    if (run.outcome.frames.length - before !== 1 || run.reader.bufferedBytes !== 0) return { property: "a reset reader reads afresh", detail: `_ after reset gave ${run.outcome.frames.length - before} frames` };
  }
  for (let i = 0; i < expected.frames.length; i++) {
    const failure = checkFrame(expected.frames[i]!, input.intended?.values[i]);
    if (failure) return failure;
  }
  return null;
}

export const repliesTarget: Target<RepliesInput> = {
  name: "replies",
  generate,
  check: checkReplies,
  *shrink(input) {
    for (const sizes of shrinkSizes(input.sizes)) yield { ...input, sizes };
    for (const { bytes, sizes } of shrinkChunked(input.bytes, input.sizes)) yield { ...input, bytes, sizes, intended: null };
  },
  describe(input) {
    return `bytes ${show(input.bytes)}\nchunk sizes [${input.sizes.join(", ")}]\nlimits ${JSON.stringify(input.limits)}`;
  },
  size: (input) => input.bytes.length,
};
