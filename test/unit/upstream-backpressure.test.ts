/**
 * An upstream connection honours back-pressure: once a write finds the socket over its high-water
 * mark, nothing more is written until `drain`, and the node refuses requests for a connection
 * whose unsent bytes reached `maxUpstreamQueueBytes`, with an error naming the limit.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UpstreamNode } from "../../src/upstream/node.ts";
import { UpstreamConn } from "../../src/upstream/conn.ts";
import { UpstreamRequest, type ReplySink } from "../../src/backend/request.ts";
import { encodeCommand } from "../../src/resp/encode.ts";
import { Scope } from "../../src/scope/scope.ts";
import { FakeConn, ManualRuntime, settle } from "../support/manual-runtime.ts";

const dec = new TextDecoder();
const OPTIONS = { opTimeoutMs: 60_000, connectTimeoutMs: 1000, maxBulkBytes: 1 << 20, probeBackoffMinMs: 100, probeBackoffMaxMs: 2000 };

/** Records replies, by request. */
function recorder() {
  const replies = new Map<UpstreamRequest, string>();
  const sink: ReplySink = { deliver: (request, reply) => void replies.set(request, dec.decode(reply)), deliveryFailed: (_request, error) => assert.fail(String(error)) };
  return { replies, sink };
}

const set = (i: number, bytes: number) => encodeCommand(["SET", `k${i}`, "v".repeat(bytes)]);

describe("upstream back-pressure", () => {
  it("a connection writes nothing more once the socket is over its high-water mark, until drain", async () => {
    const runtime = new ManualRuntime();
    const scope = Scope.root(runtime, "test");
    const conn = new UpstreamConn(scope, { ...OPTIONS, host: "127.0.0.1", port: 7000 }, { reply() {}, lost() {} });
    await settle();
    const socket = runtime.pendingConnects[0]!.resolve(new FakeConn("127.0.0.1", 7000, runtime.pendingConnects[0]!.handlers, 40000));
    socket.stalled = true;
    const { sink } = recorder();
    conn.send(new UpstreamRequest(set(0, 100_000), 0, sink, 1));
    await runtime.flush();
    assert.equal(socket.written.length, 1, "the first batch is written");
    for (let i = 1; i <= 5; i++) conn.send(new UpstreamRequest(set(i, 10_000), 0, sink, 1));
    await runtime.flush();
    assert.equal(socket.written.length, 1, "nothing more while the socket is over its high-water mark");
    assert.ok(conn.queuedBytes > 150_000, `queued ${conn.queuedBytes}`);
    // The node read it all.
    socket.stalled = false;
    socket.bufferedBytes = 0;
    socket.emitDrain();
    await runtime.flush();
    assert.equal(socket.written.length, 2, "the rest goes in one write after drain");
    assert.equal(dec.decode(socket.written[1]!), [1, 2, 3, 4, 5].map((i) => dec.decode(set(i, 10_000))).join(""));
    assert.equal(conn.queuedBytes, 0);
    await scope.destroy();
  });

  it("past maxUpstreamQueueBytes, the node refuses requests for that connection at once, naming the limit; it takes them again once drained", async () => {
    const runtime = new ManualRuntime();
    const scope = Scope.root(runtime, "test");
    const node = new UpstreamNode(scope, "127.0.0.1", 7000, { ...OPTIONS, connectionsPerNode: 1, maxUpstreamQueueBytes: 50_000 }, { reply() {}, failure() {} });
    const { replies, sink } = recorder();
    const requests = Array.from({ length: 20 }, (_, i) => new UpstreamRequest(set(i, 10_000), 0, sink, 1));
    // Not even connected yet: what waits for the connect counts too.
    for (const request of requests.slice(0, 10)) node.send(request);
    assert.equal(replies.size, 5, "five 10 kB requests fit, the sixth crosses 50 kB, the rest are refused");
    assert.equal(replies.get(requests[9]!), "-ERR upstream 127.0.0.1:7000 is not keeping up: its connection's send queue is full (maxUpstreamQueueBytes 50000)\r\n");
    assert.ok(!replies.has(requests[4]!));
    await settle();
    const socket = runtime.pendingConnects[0]!.resolve(new FakeConn("127.0.0.1", 7000, runtime.pendingConnects[0]!.handlers, 40000));
    socket.stalled = true;
    await runtime.flush();
    assert.equal(socket.written.length, 1);
    node.send(requests[10]!);
    assert.equal(replies.get(requests[10]!)?.startsWith("-ERR upstream 127.0.0.1:7000 is not keeping up"), true, "unsent in the socket counts as well");
    socket.stalled = false;
    socket.bufferedBytes = 0;
    socket.emitDrain();
    node.send(requests[11]!);
    assert.ok(!replies.has(requests[11]!), "taken again");
    await runtime.flush();
    assert.equal(socket.written.length, 2);
    await scope.destroy();
  });
});
