/** Unit tests of the timing ring of src/proxy/session/reply-queue.ts (`Timings`). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Timings } from "../../src/proxy/session/reply-queue.ts";
import type { CommandStats } from "../../src/metrics/commands.ts";
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
        timings.add(refused ? null : stat(`C${added}`), added * 10, refused ? null : [new Uint8Array([added])], pending());
      }
      for (let i = 0; i < answers; i++) timings.answer((read + i) % 3 === 0);
      for (let k = 0; k < timings.answered; k++, read++) {
        const refused = read % 5 === 4;
        if (refused) assert.equal(timings.stat(k), null);
        else assert.equal((timings.stat(k) as unknown as { name: string }).name, `C${read}`);
        assert.equal(timings.start(k), read * 10);
        assert.equal(timings.failed(k), read % 3 === 0);
        assert.deepEqual(timings.args(k), refused ? null : [new Uint8Array([read])]);
        assert.equal(timings.pending(k) === null, refused);
      }
      timings.release();
      assert.equal(timings.answered, 0);
    }
    assert.equal(read, added);
  });
});
