/**
 * A connection shared by every client is never failed by one of them: an exception thrown while
 * delivering a reply goes to that reply's sink (its client), and the connection carries on with
 * the replies behind it. Work offered to a connection whose node is closing is refused as a value,
 * with no timer armed on the closing scope and nothing thrown.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UpstreamConn } from "../../src/upstream/conn.ts";
import { UpstreamRequest, type ReplySink } from "../../src/backend/request.ts";
import { Unavailable } from "../../src/backend/contract.ts";
import { encodeCommand } from "../../src/resp/encode.ts";
import { Scope } from "../../src/scope/scope.ts";
import { ManualRuntime } from "../support/manual-runtime.ts";

const decoder = new TextDecoder();

/** A sink that records what it is given; `throws` makes its deliver throw. */
function recorder(throws = false) {
  const replies: string[] = [];
  const faults: unknown[] = [];
  const sink: ReplySink = {
    deliver(_request, reply) {
      if (throws) throw new Error("this client's code blew up");
      replies.push(decoder.decode(reply));
    },
    deliveryFailed(_request, error) {
      faults.push(error);
    },
  };
  return { sink, replies, faults };
}

async function openConn() {
  const runtime = new ManualRuntime({ start: 1_000 });
  const scope = Scope.root(runtime, "test");
  const node = scope.child("node 127.0.0.1:7000");
  const lost: string[] = [];
  const conn = new UpstreamConn(node, { host: "127.0.0.1", port: 7000, opTimeoutMs: 1000, connectTimeoutMs: 1000, maxBulkBytes: 1 << 20 }, {
    reply: (request, frame) => request.sink.deliver(request, frame),
    lost: (_conn, reason) => void lost.push(reason),
  });
  // As UpstreamNode does: a closing node lets the requests in flight finish.
  node.onDrain(() => conn.whenIdle());
  await runtime.flush();
  const socket = runtime.pendingConnects[0]!.resolve();
  await runtime.flush();
  return { runtime, scope, node, conn, socket, lost };
}

const get = (key: string, sink: ReplySink, affinity: number) => new UpstreamRequest(encodeCommand(["GET", key]), 0, sink, affinity);

describe("a shared upstream connection and the clients it serves", () => {
  it("an exception while delivering one client's reply goes to that client; the connection and the replies behind it carry on", async () => {
    const { runtime, scope, conn, socket, lost } = await openConn();
    const [a, faulty, c] = [recorder(), recorder(true), recorder()];
    assert.equal(conn.send(get("a", a.sink, 1)), null);
    assert.equal(conn.send(get("b", faulty.sink, 2)), null);
    assert.equal(conn.send(get("c", c.sink, 3)), null);
    await runtime.flush();
    assert.doesNotThrow(() => socket.receive("$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"));
    assert.deepEqual(a.replies, ["$1\r\n1\r\n"]);
    assert.equal(faulty.faults.length, 1, "the faulty client is told of its own fault");
    assert.match(String(faulty.faults[0]), /this client's code blew up/);
    assert.deepEqual(c.replies, ["$1\r\n3\r\n"], "the reply behind it is delivered");
    assert.equal(conn.isDead, false, "the shared connection is not failed");
    assert.deepEqual(lost, []);
    await scope.close();
  });

  it("a request offered once its node began closing is refused as a value: no exception, no timer on the closing scope", async () => {
    const { runtime, scope, node, conn } = await openConn();
    const waiting = recorder();
    assert.equal(conn.send(get("held", waiting.sink, 1)), null);
    const closing = node.close({ deadlineMs: 5_000 });
    await runtime.flush();
    const late = recorder();
    const refused: (Unavailable | null)[] = [];
    assert.doesNotThrow(() => refused.push(conn.send(get("late", late.sink, 2))));
    assert.ok(refused[0] instanceof Unavailable, "refused as a value");
    assert.match(refused[0].message, /shutting down/);
    assert.deepEqual(late.replies, [], "a refused request is not answered by the connection: its caller decides");
    // The request in flight before close still gets its reply (the drain lets it finish).
    (runtime.conns[0] as { receive(text: string): void }).receive("$2\r\nok\r\n");
    assert.deepEqual(waiting.replies, ["$2\r\nok\r\n"]);
    await closing;
    await scope.close();
  });

  it("a connect cancelled by its node's teardown fails its requests with the owner's reason, not the cancellation's", async () => {
    const runtime = new ManualRuntime({ start: 1_000 });
    const scope = Scope.root(runtime, "test");
    const node = scope.child("node 127.0.0.1:7000");
    const conn = new UpstreamConn(
      node,
      { host: "127.0.0.1", port: 7000, opTimeoutMs: 1000, connectTimeoutMs: 1000, maxBulkBytes: 1 << 20, closing: () => new Unavailable("closing", "cluster 'b' was removed") },
      { reply: (request, frame) => request.sink.deliver(request, frame), lost: () => {} },
    );
    const waiting = recorder();
    assert.equal(conn.send(get("k", waiting.sink, 1)), null, "queued while the connect is pending");
    await runtime.flush();
    assert.equal(runtime.pendingConnects.length, 1);
    await node.destroy();
    await runtime.flush();
    assert.deepEqual(waiting.replies, ["-ERR cluster 'b' was removed\r\n"]);
    await scope.close();
  });
});
