/**
 * CI's slice of the fuzzer (issue 11 §5; the long runs are `npm run fuzz`): a few thousand seeded
 * cases of each target — the request parser, the reply reader, the CLUSTER SLOTS parser and a
 * whole client session — on every runtime, each case checking its target's properties (see
 * test/fuzz/*-target.ts). A parser with a planted bug shows the checks fail and the failure
 * shrinks to a few bytes; case generation is the same on every runtime, so a seed found on one
 * replays on the others.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RequestParser } from "../../src/resp/request-parser.ts";
import { formatFailure, generateCase, runTarget } from "../fuzz/harness.ts";
import { parserTargetFor } from "../fuzz/parser-target.ts";
import { TARGETS } from "../fuzz/targets.ts";

/** Fixed, so CI runs the same cases every time; long runs pick fresh seeds. */
const SEED = 20_251_105;
const CASES = 2_000;

describe("fuzzing, a short seeded slice", () => {
  for (const target of TARGETS) {
    it(`${target.name}: ${CASES} generated inputs (valid, cut, malformed, mutated) keep every property`, async () => {
      const result = await runTarget(target, { seed: SEED, cases: CASES });
      if (result.failure) assert.fail(formatFailure(result.failure));
      assert.equal(result.cases, CASES);
    });
  }

  it("a parser that forgets an unfinished request between chunks is caught, and shrunk to a few bytes", async () => {
    class Forgetful extends RequestParser {
      override push(chunk: Uint8Array): void {
        super.push(chunk);
        if (this.bufferedBytes > 0) this.reset();
      }
    }
    const target = parserTargetFor((onRequest, limits) => new Forgetful(onRequest, limits));
    const result = await runTarget(target, { seed: SEED, cases: CASES });
    assert.ok(result.failure, "the planted bug went unnoticed");
    assert.equal(result.failure.failure.property, "the parser (input chunked) agrees with the reference");
    const bytes = /^bytes (".*")$/m.exec(result.failure.minimal)?.[1];
    assert.ok(bytes !== undefined && (JSON.parse(bytes) as string).length <= 4, `not shrunk: ${result.failure.minimal}`);
  });

  it("a case is a function of the seed and its index, the same on every runtime", () => {
    // FNV-1a over the first cases' descriptions: a change here on one runtime only means the
    // generators drew differently there (update the constant when the generators change).
    let hash = 0x811c9dc5;
    for (const target of TARGETS) {
      for (let index = 0; index < 50; index++) {
        const text = target.describe(generateCase(target, SEED, index));
        for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
      }
    }
    assert.equal(hash.toString(16), "f9a8ddbb");
  });
});
