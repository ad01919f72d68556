/** Unit tests of the timing ring of src/proxy/session/reply-queue.ts (`Timings`). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Timings } from "../../src/proxy/session/reply-queue.ts";
import { CommandStats, LATENCY_BOUNDS_US } from "../../src/metrics/commands.ts";
import type { Pending } from "../../src/backend/request.ts";

const stat = (name: string) => ({ name }) as unknown as CommandStats;
const pending = (): Pending => ({ reply: null });

describe("Timings", () => {
  test("answered slots read back in order with their cells, across growth, partial releases and emptying", () => {
    const timings = new Timings();
    let added = 0;
    let read = 0;
    // Add some, answer some, release: the ring grows while wrapped, empties, and starts again.
    for (const [adds, answers] of [[1, 1], [3, 2], [20, 5], [0, 16], [2, 2], [40, 33], [0, 7]] as const) {
      for (let i = 0; i < adds; i++, added++) {
        const refused = added % 5 === 4;
        timings.add(refused ? null : stat(`C${added}`), added * 10, refused ? null : new Uint8Array([added]), pending());
      }
      for (let i = 0; i < answers; i++) timings.answer((read + i) % 3 === 0);
      for (let k = 0; k < timings.answered; k++, read++) {
        const refused = read % 5 === 4;
        if (refused) assert.equal(timings.stat(k), null);
        else assert.equal((timings.stat(k) as unknown as { name: string }).name, `C${read}`);
        assert.equal(timings.start(k), read * 10);
        assert.equal(timings.failed(k), read % 3 === 0);
        assert.deepEqual(timings.frame(k), refused ? null : new Uint8Array([read]));
        assert.equal(timings.pending(k) === null, refused);
      }
      timings.release();
      assert.equal(timings.answered, 0);
    }
    assert.equal(read, added);
  });

  test("recordAnswered counts each answered request once, a burst of one command and read time in one go", () => {
    const a = new CommandStats("a");
    const b = new CommandStats("b");
    const timings = new Timings();
    // Read at 1 ms: a, a, a (the second failed), a refused one, b; read at 2 ms: a. One more not answered yet.
    for (const [s, start] of [[a, 1], [a, 1], [a, 1], [null, 1], [b, 1], [a, 2], [b, 2]] as const) timings.add(s, start, new Uint8Array(1), { reply: null });
    for (const failed of [false, true, false, false, false, false]) timings.answer(failed);
    timings.recordAnswered(3);
    const bucket = (usec: number) => LATENCY_BOUNDS_US.findIndex((bound) => usec <= bound);
    assert.deepEqual([a.calls, a.failed, a.usec], [4, 1, 3 * 2000 + 1000]);
    assert.equal(a.buckets[bucket(2000)], 3);
    assert.equal(a.buckets[bucket(1000)], 1);
    assert.deepEqual([b.calls, b.failed, b.usec], [1, 0, 2000]);
    timings.release();
    // The one left is counted once it is answered, not again with the others.
    timings.answer(true);
    timings.recordAnswered(4);
    assert.deepEqual([a.calls, b.calls, b.failed, b.usec], [4, 2, 1, 4000]);
    timings.release();
    assert.equal(timings.answered, 0);
  });
});
