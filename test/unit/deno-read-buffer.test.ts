import { test } from "node:test";
import assert from "node:assert/strict";
import { BUSY_BYTES, QUIET_MAX_BYTES, QUIET_MIN_BYTES, ReadBuffer, SHRINK_AFTER_READS } from "../../adapters/deno/read-buffer.ts";

/** Pretends a read put `n` bytes (all `fill`) in the current buffer, and takes them. */
function read(buffer: ReadBuffer, n: number, fill = 1): Uint8Array {
  buffer.current.fill(fill, 0, n);
  return buffer.take(n);
}

test("an idle connection reads into the smallest quiet buffer", () => {
  const buffer = new ReadBuffer();
  assert.equal(buffer.current.byteLength, QUIET_MIN_BYTES);
  read(buffer, 14);
  assert.equal(buffer.current.byteLength, QUIET_MIN_BYTES);
});

test("a chunk taken is a copy: the next read into the same buffer leaves it intact", () => {
  const buffer = new ReadBuffer();
  const first = read(buffer, 10, 7);
  read(buffer, 10, 9);
  assert.deepEqual([...first], Array(10).fill(7));
});

test("a read that fills the quiet buffer takes a busy one next, and the quiet one doubles for later", () => {
  const buffer = new ReadBuffer();
  read(buffer, QUIET_MIN_BYTES);
  assert.equal(buffer.current.byteLength, BUSY_BYTES);
  read(buffer, 100); // the rest of the request: the burst is over
  assert.equal(buffer.current.byteLength, QUIET_MIN_BYTES * 2);
});

test("a busy connection keeps its busy buffer while reads are QUIET_MAX_BYTES or more", () => {
  const buffer = new ReadBuffer();
  read(buffer, QUIET_MIN_BYTES);
  read(buffer, BUSY_BYTES);
  read(buffer, QUIET_MAX_BYTES);
  assert.equal(buffer.current.byteLength, BUSY_BYTES);
  read(buffer, QUIET_MAX_BYTES - 1);
  assert.notEqual(buffer.current.byteLength, BUSY_BYTES);
});

test("the quiet buffer grows no larger than QUIET_MAX_BYTES", () => {
  const buffer = new ReadBuffer();
  for (let i = 0; i < 10; i++) {
    read(buffer, buffer.current.byteLength);
    read(buffer, 1);
  }
  assert.equal(buffer.current.byteLength, QUIET_MAX_BYTES);
});

test("the quiet buffer halves after SHRINK_AFTER_READS reads in a row that used at most half of it, down to QUIET_MIN_BYTES", () => {
  const buffer = new ReadBuffer();
  read(buffer, QUIET_MIN_BYTES);
  read(buffer, 1);
  const grown = buffer.current.byteLength;
  for (let i = 1; i < SHRINK_AFTER_READS; i++) read(buffer, 1);
  assert.equal(buffer.current.byteLength, grown, "not before the last of the reads in a row");
  read(buffer, 1);
  assert.equal(buffer.current.byteLength, grown / 2);
  for (let i = 0; i < 4 * SHRINK_AFTER_READS; i++) read(buffer, 1);
  assert.equal(buffer.current.byteLength, QUIET_MIN_BYTES);
});

test("a read that uses more than half of the quiet buffer starts the count of small reads again", () => {
  const buffer = new ReadBuffer();
  read(buffer, QUIET_MIN_BYTES);
  read(buffer, 1);
  const grown = buffer.current.byteLength;
  for (let i = 1; i < SHRINK_AFTER_READS; i++) read(buffer, 1);
  read(buffer, grown / 2 + 1);
  for (let i = 1; i < SHRINK_AFTER_READS; i++) read(buffer, 1);
  assert.equal(buffer.current.byteLength, grown);
});
