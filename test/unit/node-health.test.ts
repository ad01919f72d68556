/**
 * A node's health on a manual clock: a timed-out request makes it suspect, a failed connect marks
 * it down; meanwhile its requests fail at once, unsent; a PING probe on a connection of its own,
 * backing off from probeBackoffMinMs to probeBackoffMaxMs, brings it back as soon as it is
 * answered. Each change is logged once with its cause.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UpstreamNode, type UpstreamNodeOptions } from "../../src/upstream/node.ts";
import { UpstreamRequest, type ReplySink } from "../../src/backend/request.ts";
import { encodeCommand } from "../../src/resp/encode.ts";
import { createLogger } from "../../src/log.ts";
import { Scope } from "../../src/scope/scope.ts";
import { ManualRuntime, type FakeConn } from "../support/manual-runtime.ts";

const OPTIONS: UpstreamNodeOptions = {
  opTimeoutMs: 1000,
  connectTimeoutMs: 500,
  maxBulkBytes: 1 << 20,
  connectionsPerNode: 1,
  probeBackoffMinMs: 100,
  probeBackoffMaxMs: 400,
  cluster: "main",
  maxUpstreamQueueBytes: 1 << 26,
};

const decoder = new TextDecoder();
const refused = () => Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:7000"), { code: "ECONNREFUSED" });

function setup(options: Partial<UpstreamNodeOptions> = {}) {
  const rt = new ManualRuntime({ seed: 3 });
  const root = Scope.root(rt);
  const lines: string[] = [];
  const log = createLogger("debug", (line) => lines.push(line));
  const node = new UpstreamNode(root, "127.0.0.1", 7000, { ...OPTIONS, log, ...options }, {
    reply: (_node, request, frame) => request.sink.deliver(request, frame),
    failure: () => {},
  });
  const replies: string[] = [];
  const sink: ReplySink = { deliver: (_request, reply) => void replies.push(decoder.decode(reply)), deliveryFailed: (_request, error) => assert.fail(String(error)) };
  const get = (key: string) => node.send(new UpstreamRequest(encodeCommand(["GET", key]), 0, sink, 1));
  /** The commands written on `conn` so far, as text. */
  const written = (conn: FakeConn) => conn.written.map((chunk) => decoder.decode(chunk)).join("");
  return { rt, root, node, lines, replies, get, written };
}

describe("node health", () => {
  it("a connection slotgate closes before it opened (a subscription undone, a client gone) says nothing of the node: it stays up", async () => {
    const { rt, root, node, replies, get } = setup();
    const conn = node.dedicated({ protocol: 2, subscriber: true, events: { reply() {}, lost: () => {} } });
    assert.ok(!("kind" in conn));
    await rt.flush();
    conn.fail("the client left subscribed mode");
    await rt.flush();
    assert.equal(node.health, "up");
    get("k");
    await rt.flush();
    assert.deepEqual(replies, [], "the next request is sent, not refused");
    await root.destroy();
  });

  it("a timed-out request may have been applied; the node is then suspect: requests fail at once, unsent, until a PING probe is answered", async () => {
    const { rt, root, node, lines, replies, get, written } = setup();
    get("a");
    await rt.flush();
    const first = rt.pendingConnects[0]!.resolve();
    await rt.flush();
    assert.match(written(first), /GET/);

    await rt.advance(1000);
    assert.deepEqual(replies, ["-ERR upstream 127.0.0.1:7000 did not answer within 1000 ms: the command may have been applied\r\n"]);
    assert.equal(node.health, "suspect");
    assert.equal(first.destroyed, true, "the connection is reset: a late reply must not reach another request");

    // New requests do not wait a full timeout again on a fresh connection.
    get("b");
    get("c");
    assert.equal(replies.length, 3);
    assert.equal(replies[1], "-ERR upstream 127.0.0.1:7000 is suspect (a request got no reply within 1000 ms): command not sent\r\n");
    assert.equal(replies[2], replies[1]);
    await rt.flush();
    assert.equal(rt.pendingConnects.length, 0, "nothing is sent to a suspect node");

    // The probe: PING on a connection of its own, after probeBackoffMinMs.
    await rt.advance(99);
    assert.equal(rt.pendingConnects.length, 0);
    await rt.advance(1);
    const probe = rt.pendingConnects[0]!.resolve();
    await rt.flush();
    assert.equal(written(probe), "*1\r\n$4\r\nPING\r\n");
    assert.equal(node.health, "suspect", "not before the probe is answered");
    probe.receive("+PONG\r\n");
    await rt.flush();
    assert.equal(node.health, "up");
    assert.equal(probe.destroyed, true, "the probe's connection is closed");

    get("d");
    await rt.flush();
    const fresh = rt.pendingConnects[0]!.resolve();
    await rt.flush();
    assert.match(written(fresh), /GET\r\n\$1\r\nd/);
    fresh.receive("$1\r\nD\r\n");
    assert.equal(replies.at(-1), "$1\r\nD\r\n");

    assert.deepEqual(lines.filter((l) => l.startsWith("WARN") || l.startsWith("INFO")), [
      'WARN node suspect cluster=main address=127.0.0.1:7000 cause=timeout error="upstream 127.0.0.1:7000 is suspect (a request got no reply within 1000 ms): command not sent"',
      "INFO node up cluster=main address=127.0.0.1:7000 was=suspect forMs=100",
    ]);
    await root.close();
  });

  it("the requests behind a timed-out one on its connection are told they may have been applied too", async () => {
    const { rt, root, replies, get } = setup({ opTimeoutMs: 1000 });
    get("a");
    await rt.flush();
    rt.pendingConnects[0]!.resolve();
    await rt.advance(500);
    get("b");
    await rt.advance(500);
    assert.deepEqual(replies, [
      "-ERR upstream 127.0.0.1:7000 did not answer within 1000 ms: the command may have been applied\r\n",
      "-ERR upstream connection to 127.0.0.1:7000 reset after a timed-out request: the command may have been applied\r\n",
    ]);
    await root.close();
  });

  it("a request that times out before its connection is even open was not sent, and says so", async () => {
    const { rt, root, node, replies, get } = setup({ opTimeoutMs: 300, connectTimeoutMs: 500 });
    get("a");
    await rt.flush();
    assert.equal(rt.pendingConnects.length, 1, "connecting");
    await rt.advance(300);
    assert.deepEqual(replies, ["-ERR upstream 127.0.0.1:7000 did not accept a connection within 300 ms: command not sent\r\n"]);
    assert.equal(rt.pendingConnects.length, 0, "the connect was abandoned");
    assert.equal(node.health, "suspect");
    await root.close();
  });

  it("a failed connect marks the node down; probes back off from probeBackoffMinMs, doubling up to probeBackoffMaxMs, and the first answered brings it up", async () => {
    const { rt, root, node, lines, replies, get } = setup();
    get("a");
    await rt.flush();
    rt.pendingConnects[0]!.reject(refused());
    await rt.flush();
    assert.equal(node.health, "down");
    assert.match(replies[0]!, /^-ERR upstream 127\.0\.0\.1:7000 unreachable: connect ECONNREFUSED/);
    get("b");
    assert.equal(replies[1], replies[0], "failed fast with the same cause");
    assert.equal(rt.pendingConnects.length, 0);

    // Probes at +100, then +200, +400, +400 (the maximum) while they are refused.
    const probedAt: number[] = [];
    for (let i = 0; i < 4; i++) {
      await rt.runNextTimer();
      assert.equal(rt.pendingConnects.length, 1, `probe ${i + 1}`);
      probedAt.push(rt.now());
      rt.pendingConnects[0]!.reject(refused());
      await rt.flush();
    }
    assert.deepEqual(probedAt.map((t, i) => t - (i === 0 ? 0 : probedAt[i - 1]!)), [100, 200, 400, 400]);
    assert.equal(node.health, "down");

    await rt.runNextTimer();
    const probe = rt.pendingConnects[0]!.resolve();
    await rt.flush();
    // Even an error reply (a restarted node still loading) is an answer: the node is back.
    probe.receive("-LOADING Redis is loading the dataset in memory\r\n");
    await rt.flush();
    assert.equal(node.health, "up");
    const logged = lines.filter((l) => l.startsWith("WARN") || l.startsWith("INFO"));
    assert.equal(logged.length, 2, logged.join("\n"));
    assert.match(logged[0]!, /^WARN node down cluster=main address=127\.0\.0\.1:7000 cause=ECONNREFUSED /);
    assert.equal(logged[1], "INFO node up cluster=main address=127.0.0.1:7000 was=down forMs=1500");
    await root.close();
  });

  it("a probe that gets no reply within opTimeoutMs counts as failed, and the next one waits longer", async () => {
    const { rt, root, node, get } = setup();
    get("a");
    await rt.flush();
    rt.pendingConnects[0]!.resolve();
    await rt.advance(1000);
    assert.equal(node.health, "suspect");
    await rt.advance(100);
    const silent = rt.pendingConnects[0]!.resolve();
    await rt.advance(1000);
    assert.equal(silent.destroyed, true, "the unanswered probe's connection is closed");
    assert.equal(node.health, "suspect");
    await rt.advance(199);
    assert.equal(rt.pendingConnects.length, 0);
    await rt.advance(1);
    assert.equal(rt.pendingConnects.length, 1, "the second probe, 200 ms later");
    await root.close();
  });

  it("a dedicated connection's timeout makes the node suspect too, and a suspect node refuses dedicated connections", async () => {
    const { rt, root, node } = setup();
    const replies: string[] = [];
    const conn = node.dedicated({ protocol: 2, events: { reply: (request, frame) => request.sink.deliver(request, frame), lost: () => {} } });
    assert.ok(!("kind" in conn));
    conn.send(new UpstreamRequest(encodeCommand(["MULTI"]), 0, { deliver: (_r, reply) => void replies.push(decoder.decode(reply)), deliveryFailed: (_r, error) => assert.fail(String(error)) }, 1));
    await rt.flush();
    rt.pendingConnects[0]!.resolve();
    await rt.advance(1000);
    assert.match(replies[0]!, /may have been applied/);
    assert.equal(node.health, "suspect");
    const refusal = node.dedicated({ protocol: 2, events: { reply: () => {}, lost: () => {} } });
    assert.ok("kind" in refusal && refusal.kind === "nodeSuspect");
    await root.close();
  });

  it("a node leaving the topology stops probing at once and leaves nothing running", async () => {
    const { rt, root, node, lines, get } = setup();
    get("a");
    await rt.flush();
    rt.pendingConnects[0]!.reject(refused());
    await rt.advance(100);
    assert.equal(rt.pendingConnects.length, 1, "a probe is connecting");
    await node.close(5000);
    assert.equal(rt.pendingConnects.length, 0, "the probe's connect was aborted");
    assert.equal(rt.pendingTimers(), 0);
    assert.equal(root.liveCount(), 0);
    assert.equal(lines.filter((l) => l.includes("node up")).length, 0);
    await root.close();
  });
});
