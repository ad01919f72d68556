/**
 * On a connection that cannot turn Nagle's algorithm off (`Conn.nagle`: Deno's accepted TLS
 * connections), a pipeline's replies leave in one write: replies ready while others are still
 * owed wait until the last is in, or at most a millisecond. Without it, Deno's TLS port ran
 * pipelined clients at a tenth of direct TLS (each later write waited for a delayed ACK).
 * On every connection, replies ready while others of the pipeline are owed wait one turn of the
 * event loop (the other nodes' replies often come in that turn) unless 16 KiB are ready: one
 * write per pipelined batch rather than one per node that answered it.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sessionHarness } from "../support/session-harness.ts";

function setup(nagle: boolean) {
  const h = sessionHarness();
  const c = h.client(1);
  c.conn.nagle = nagle;
  c.send(["GET", "a"], ["GET", "b"], ["GET", "c"]);
  return { ...h, c };
}

describe("gathering a pipeline's replies on a connection with Nagle's algorithm on", () => {
  it("replies ready while others are owed wait for the last, then leave in one write", async () => {
    const { runtime, c, answer, scope } = setup(true);
    await runtime.flush();
    answer(0, "$1\r\na\r\n");
    answer(1, "$1\r\nb\r\n");
    await runtime.flush();
    assert.equal(c.conn.written.length, 0, "held while GET c is owed");
    answer(2, "$1\r\nc\r\n");
    await runtime.flush();
    assert.equal(c.conn.written.length, 1, "one write");
    assert.equal(c.written(), "$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
    await scope.close();
  });

  it("a held reply leaves after a millisecond even if the rest is slow", async () => {
    const { runtime, c, answer, scope } = setup(true);
    await runtime.flush();
    answer(0, "$1\r\na\r\n");
    await runtime.flush();
    assert.equal(c.written(), "");
    await runtime.advance(1);
    assert.equal(c.written(), "$1\r\na\r\n", "not held longer than GATHER_MS");
    answer(1, "$1\r\nb\r\n");
    answer(2, "$1\r\nc\r\n");
    await runtime.flush();
    assert.equal(c.written(), "$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
    await scope.close();
  });

  it("a plain connection writes each reply as soon as it is ready", async () => {
    const { runtime, c, answer, scope } = setup(false);
    await runtime.flush();
    answer(0, "$1\r\na\r\n");
    await runtime.flush();
    assert.equal(c.written(), "$1\r\na\r\n");
    await scope.close();
  });
});

describe("coalescing a pipeline's replies on a plain connection", () => {
  it("replies ready while others are owed wait one turn, then leave with those that came meanwhile", async () => {
    const { runtime, c, answer, scope } = setup(false);
    await runtime.flush();
    answer(0, "$1\r\na\r\n");
    await runtime.turn();
    assert.equal(c.conn.written.length, 0, "held one turn while GET b and GET c are owed");
    answer(1, "$1\r\nb\r\n");
    await runtime.turn();
    assert.equal(c.conn.written.length, 1, "one write after the turn");
    assert.equal(c.written(), "$1\r\na\r\n$1\r\nb\r\n");
    answer(2, "$1\r\nc\r\n");
    await runtime.turn();
    assert.equal(c.conn.written.length, 2, "nothing more owed: written at once");
    assert.equal(c.written(), "$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
    await scope.close();
  });

  it("a held reply waits one turn only, even if the rest is slow", async () => {
    const { runtime, c, answer, scope } = setup(false);
    await runtime.flush();
    answer(0, "$1\r\na\r\n");
    await runtime.turn();
    await runtime.turn();
    assert.equal(c.written(), "$1\r\na\r\n");
    await scope.close();
  });

  it("16 KiB ready leave at once, owed replies or not", async () => {
    const { runtime, c, answer, scope } = setup(false);
    await runtime.flush();
    const big = "x".repeat(16 * 1024);
    answer(0, `$${big.length}\r\n${big}\r\n`);
    await runtime.turn();
    assert.equal(c.conn.written.length, 1);
    await scope.close();
  });
});
