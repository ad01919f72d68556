/** Unit tests of src/util/fifo.ts: order across growth, and an emptied queue that fills again. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Fifo } from "../../src/util/fifo.ts";

describe("Fifo", () => {
  test("items leave in the order they came, across growth, wrap-around and emptying", () => {
    const fifo = new Fifo<number>();
    assert.equal(fifo.peek(), undefined);
    assert.equal(fifo.shift(), undefined);
    const out: number[] = [];
    let next = 0;
    // Bursts of varied sizes, partly drained, so the ring wraps, grows while wrapped, and empties.
    for (const [pushes, shifts] of [[3, 3], [5, 2], [40, 10], [1, 34], [7, 7], [100, 60], [0, 40]] as const) {
      for (let i = 0; i < pushes; i++) fifo.push(next++);
      for (let i = 0; i < shifts; i++) {
        assert.equal(fifo.peek(), out.length);
        out.push(fifo.shift()!);
      }
    }
    assert.equal(fifo.length, 0);
    assert.deepEqual(out, Array.from({ length: next }, (_, i) => i));
    fifo.push(7);
    fifo.push(8);
    assert.deepEqual(fifo.drain(), [7, 8]);
    assert.equal(fifo.length, 0);
  });

  test("one emptied queue does not share its slots with another", () => {
    const a = new Fifo<string>();
    const b = new Fifo<string>();
    a.push("a1");
    a.shift();
    b.push("b1");
    a.push("a2");
    assert.equal(a.shift(), "a2");
    assert.equal(b.shift(), "b1");
    assert.equal(a.peek(), undefined);
    assert.equal(b.peek(), undefined);
  });
});
