/**
 * The AUTH prelude on a manual clock: every upstream connection a node opens — shared RESP2 and
 * RESP3 ones, a replica's, a client's own, a subscriber's, the health probe's — says its
 * credentials before anything else (`HELLO 3 AUTH` in one command on RESP3); refused credentials
 * give the client slotgate's own error, never Redis's, mark the node down (probed with backoff,
 * no reconnect storm) and are logged once per node, never with the password.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UpstreamNode, type UpstreamNodeOptions } from "../../src/upstream/node.ts";
import { UpstreamRequest, type ReplySink } from "../../src/backend/request.ts";
import { AuthFailures, authArgs } from "../../src/backend/auth.ts";
import { encodeCommand } from "../../src/resp/encode.ts";
import { createLogger } from "../../src/log.ts";
import { Scope } from "../../src/scope/scope.ts";
import { ManualRuntime, type FakeConn } from "../support/manual-runtime.ts";

const PASSWORD = "s3cret-pa55";
const OPTIONS: UpstreamNodeOptions = {
  opTimeoutMs: 1000,
  connectTimeoutMs: 500,
  maxBulkBytes: 1 << 20,
  connectionsPerNode: 1,
  probeBackoffMinMs: 100,
  probeBackoffMaxMs: 400,
  cluster: "main",
  maxUpstreamQueueBytes: 1 << 26,
  auth: { username: "app", password: PASSWORD },
};

const decoder = new TextDecoder();
const command = (...args: string[]) => decoder.decode(encodeCommand(args));
const WRONGPASS = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
const REFUSED = "-ERR upstream authentication failed for cluster 'main'\r\n";

function setup(options: Partial<UpstreamNodeOptions> = {}) {
  const rt = new ManualRuntime({ seed: 5 });
  const root = Scope.root(rt);
  const lines: string[] = [];
  const log = createLogger("debug", (line) => lines.push(line));
  const authFailures = new AuthFailures("main", log);
  const node = new UpstreamNode(root, "127.0.0.1", 7000, { ...OPTIONS, log, authFailures, ...options }, {
    reply: (_node, request, frame) => request.sink.deliver(request, frame),
    failure: () => {},
  });
  const replies: string[] = [];
  const sink: ReplySink = { deliver: (_request, reply) => void replies.push(decoder.decode(reply)), deliveryFailed: (_request, error) => assert.fail(String(error)) };
  const get = (key: string, resp3 = false) => {
    const request = new UpstreamRequest(encodeCommand(["GET", key]), 0, sink, 1);
    request.resp3 = resp3;
    node.send(request);
  };
  const written = (conn: FakeConn) => conn.written.map((chunk) => decoder.decode(chunk)).join("");
  return { rt, root, node, lines, replies, get, written, authFailures };
}

describe("upstream AUTH prelude", () => {
  it("the prelude's arguments: AUTH [user] pass on RESP2, HELLO 3 AUTH user pass on RESP3 (user 'default' for a password alone)", () => {
    assert.deepEqual(authArgs({ password: "p" }, 2), ["AUTH", "p"]);
    assert.deepEqual(authArgs({ username: "u", password: "p" }, 2), ["AUTH", "u", "p"]);
    assert.deepEqual(authArgs({ password: "p" }, 3), ["HELLO", "3", "AUTH", "default", "p"]);
    assert.deepEqual(authArgs({ username: "u", password: "p" }, 3), ["HELLO", "3", "AUTH", "u", "p"]);
  });

  it("a shared connection says AUTH before the first request, and its +OK reaches no client", async () => {
    const { rt, root, replies, get, written } = setup();
    get("k");
    await rt.flush();
    const conn = rt.pendingConnects[0]!.resolve();
    await rt.flush();
    assert.equal(written(conn), command("AUTH", "app", PASSWORD) + command("GET", "k"));
    conn.receive("+OK\r\n$1\r\nv\r\n");
    await rt.flush();
    assert.deepEqual(replies, ["$1\r\nv\r\n"]);
    await root.destroy();
  });

  it("a RESP3 connection says HELLO 3 AUTH in one command; a password alone is user 'default'", async () => {
    const { rt, root, replies, get, written } = setup({ auth: { password: PASSWORD } });
    get("k", true);
    await rt.flush();
    const conn = rt.pendingConnects[0]!.resolve();
    await rt.flush();
    assert.equal(written(conn), command("HELLO", "3", "AUTH", "default", PASSWORD) + command("GET", "k"));
    conn.receive("%1\r\n+server\r\n+redis\r\n_\r\n");
    await rt.flush();
    assert.deepEqual(replies, ["_\r\n"]);
    await root.destroy();
  });

  it("a replica's connection authenticates before READONLY", async () => {
    const { rt, root, get, written } = setup({ readOnly: true });
    get("k");
    await rt.flush();
    const conn = rt.pendingConnects[0]!.resolve();
    await rt.flush();
    assert.equal(written(conn), command("AUTH", "app", PASSWORD) + command("READONLY") + command("GET", "k"));
    await root.destroy();
  });

  it("a client's own connection and a subscriber's authenticate too; AUTH's reply is no message to the subscriber", async () => {
    const { rt, root, node, written } = setup();
    const own = node.dedicated({ protocol: 2, events: { reply() {}, lost() {} } });
    const pushes: string[] = [];
    const subscriber = node.dedicated({ protocol: 2, subscriber: true, events: { reply() {}, lost() {}, push: (frame) => void pushes.push(decoder.decode(frame)) } });
    assert.ok(!("kind" in own) && !("kind" in subscriber));
    subscriber.write(encodeCommand(["SUBSCRIBE", "ch"]));
    await rt.flush();
    assert.equal(rt.pendingConnects.length, 2);
    const ownConn = rt.pendingConnects[0]!.resolve();
    const subConn = rt.pendingConnects[0]!.resolve();
    await rt.flush();
    assert.equal(written(ownConn), command("AUTH", "app", PASSWORD));
    assert.equal(written(subConn), command("AUTH", "app", PASSWORD) + command("SUBSCRIBE", "ch"));
    subConn.receive("+OK\r\n*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    await rt.flush();
    assert.deepEqual(pushes, ["*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"]);
    await root.destroy();
  });

  it("refused credentials: the client reads slotgate's error, the node is down and probed with backoff (AUTH then PING), logged once, never with the password", async () => {
    const { rt, root, node, lines, replies, get, written } = setup();
    get("a");
    await rt.flush();
    const conn = rt.pendingConnects[0]!.resolve();
    await rt.flush();
    conn.receive(WRONGPASS + "-NOAUTH Authentication required.\r\n");
    await rt.flush();
    assert.deepEqual(replies, [REFUSED], "not WRONGPASS, not NOAUTH");
    assert.equal(node.health, "down");
    assert.equal(conn.destroyed, true);

    // Requests fail at once, with no new connection: no reconnect storm.
    get("b");
    get("c");
    await rt.flush();
    assert.deepEqual(replies, [REFUSED, REFUSED, REFUSED]);
    assert.equal(rt.pendingConnects.length, 0);

    // Probes: AUTH first, then PING; refused again, the wait doubles (100, 200, 400, 400 ms).
    for (const waitMs of [100, 200, 400, 400]) {
      await rt.advance(waitMs - 1);
      assert.equal(rt.pendingConnects.length, 0, `no probe before ${waitMs} ms`);
      await rt.advance(1);
      const probe = rt.pendingConnects[0]!.resolve();
      await rt.flush();
      assert.equal(written(probe), command("AUTH", "app", PASSWORD) + command("PING"));
      probe.receive(WRONGPASS);
      await rt.flush();
      assert.equal(node.health, "down");
    }
    const warnings = lines.filter((line) => line.startsWith("WARN"));
    assert.deepEqual(warnings, ['WARN upstream authentication failed cluster=main address=127.0.0.1:7000 error="WRONGPASS invalid username-password pair or user is disabled."']);
    assert.ok(!lines.some((line) => line.includes(PASSWORD)), "no log line holds the password");

    // The credentials are accepted again (the server's ACL was fixed): the next probe brings it up.
    await rt.advance(400);
    const probe = rt.pendingConnects[0]!.resolve();
    await rt.flush();
    probe.receive("+OK\r\n+PONG\r\n");
    await rt.flush();
    assert.equal(node.health, "up");
    assert.match(lines.at(-1)!, /^INFO node up cluster=main address=127\.0\.0\.1:7000 was=down/);
    await root.destroy();
  });

  it("a node that never answers AUTH on a subscriber connection times it out: suspect, not an authentication failure", async () => {
    const { rt, root, node, lines } = setup();
    const lost: string[] = [];
    const subscriber = node.dedicated({ protocol: 2, subscriber: true, events: { reply() {}, lost: (_conn, reason) => void lost.push(reason) } });
    assert.ok(!("kind" in subscriber));
    subscriber.write(encodeCommand(["SUBSCRIBE", "ch"]));
    await rt.flush();
    rt.pendingConnects[0]!.resolve();
    await rt.flush();
    await rt.advance(1500); // connectTimeoutMs + opTimeoutMs
    assert.equal(lost.length, 1, "the connection is given up");
    assert.match(lost[0]!, /reset after a timed-out request/);
    assert.equal(node.health, "suspect");
    assert.ok(!lines.some((line) => line.includes("authentication failed")), lines.join("\n"));
    await root.destroy();
  });

  it("a RESP3 connection refused at HELLO 3 AUTH fails the same way", async () => {
    const { rt, root, node, replies, get } = setup();
    get("a", true);
    await rt.flush();
    rt.pendingConnects[0]!.resolve().receive(WRONGPASS);
    await rt.flush();
    assert.deepEqual(replies, [REFUSED]);
    assert.equal(node.health, "down");
    await root.destroy();
  });

  it("without credentials nothing is said first", async () => {
    const { rt, root, get, written } = setup({ auth: undefined });
    get("k");
    await rt.flush();
    const conn = rt.pendingConnects[0]!.resolve();
    await rt.flush();
    assert.equal(written(conn), command("GET", "k"));
    await root.destroy();
  });

  it("AuthFailures logs each node once, and says why the backend is not ready until credentials are accepted", () => {
    const lines: string[] = [];
    const failures = new AuthFailures("c", createLogger("info", (line) => lines.push(line)));
    failures.failed("10.0.0.1:7000", "WRONGPASS x");
    failures.failed("10.0.0.1:7000", "WRONGPASS x");
    failures.failed("10.0.0.2:7000", "WRONGPASS x");
    assert.equal(lines.length, 2);
    assert.equal(failures.last, "upstream authentication failed for cluster 'c': 10.0.0.2:7000 answered WRONGPASS x");
    failures.succeeded("10.0.0.2:7000");
    assert.equal(failures.last, null);
    failures.failed("10.0.0.1:7000", "WRONGPASS x");
    failures.failed("10.0.0.2:7000", "WRONGPASS x");
    assert.equal(lines.length, 3, "a node that let slotgate in since is a new incident; the other is not");
  });
});
