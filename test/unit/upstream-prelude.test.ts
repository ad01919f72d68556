/**
 * A connection's prelude (`HELLO 3` for RESP3 clients, `READONLY` on a replica): a refusal by
 * Redis takes the connection down in the prelude's words, but a prelude that times out is a
 * timeout like any other — the requests behind it hear that the connection was reset after a
 * timed-out request, never that Redis "refused HELLO 3: ERR ... did not answer" (found by the
 * simulation explorer's RESP3 clients behind a partition).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UpstreamConn } from "../../src/upstream/conn.ts";
import { UpstreamRequest, type ReplySink } from "../../src/backend/request.ts";
import { encodeCommand } from "../../src/resp/encode.ts";
import { Scope } from "../../src/scope/scope.ts";
import { FakeConn, ManualRuntime, settle } from "../support/manual-runtime.ts";

const dec = new TextDecoder();
const OPTIONS = { host: "127.0.0.1", port: 7000, opTimeoutMs: 50, connectTimeoutMs: 100, maxBulkBytes: 1 << 20, protocol: 3 as const };

async function resp3Conn() {
  const runtime = new ManualRuntime();
  const scope = Scope.root(runtime, "test");
  const lost: string[] = [];
  const conn = new UpstreamConn(scope, OPTIONS, { reply: (request, frame) => request.sink.deliver(request, frame), lost: (_c, reason) => void lost.push(reason) });
  const replies: string[] = [];
  const sink: ReplySink = { deliver: (_request, reply) => void replies.push(dec.decode(reply)), deliveryFailed: (_request, error) => assert.fail(String(error)) };
  const request = new UpstreamRequest(encodeCommand(["GET", "k"]), 0, sink, 1);
  return { runtime, scope, conn, lost, replies, request };
}

describe("an upstream connection's prelude", () => {
  it("HELLO 3 unanswered: the requests behind it are told the connection was reset after a timed-out request", async () => {
    const { runtime, scope, conn, lost, replies, request } = await resp3Conn();
    await settle();
    const socket = runtime.pendingConnects[0]!.resolve(new FakeConn("127.0.0.1", 7000, runtime.pendingConnects[0]!.handlers, 40000));
    conn.send(request);
    await runtime.flush();
    assert.equal(dec.decode(concatAll(socket.written)), dec.decode(encodeCommand(["HELLO", "3"])) + dec.decode(encodeCommand(["GET", "k"])));
    await runtime.advance(OPTIONS.connectTimeoutMs + OPTIONS.opTimeoutMs + 1);
    const reset = "upstream connection to 127.0.0.1:7000 reset after a timed-out request: the command may have been applied";
    assert.deepEqual(replies, [`-ERR ${reset}\r\n`]);
    assert.deepEqual(lost, [reset]);
    await scope.destroy();
  });

  it("HELLO 3 refused by Redis: the connection goes down in the prelude's words", async () => {
    const { runtime, scope, conn, lost, replies, request } = await resp3Conn();
    await settle();
    const socket = runtime.pendingConnects[0]!.resolve(new FakeConn("127.0.0.1", 7000, runtime.pendingConnects[0]!.handlers, 40000));
    conn.send(request);
    await runtime.flush();
    socket.receive("-ERR unknown command 'HELLO'\r\n");
    const refused = "upstream 127.0.0.1:7000 refused HELLO 3: ERR unknown command 'HELLO'";
    assert.deepEqual(replies, [`-ERR ${refused}\r\n`]);
    assert.deepEqual(lost, [refused]);
    await scope.destroy();
  });
});

function concatAll(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
