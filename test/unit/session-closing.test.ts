/**
 * How a client session ends when the proxy ends it, on the manual runtime: after a protocol error
 * or QUIT the reply is flushed and the socket destroyed even if the client never closes its side;
 * an idle client is closed after clientIdleTimeoutSeconds (Redis's `timeout`), unless a reply is
 * owed to it or it is subscribed; client sockets get TCP keepalive. Each close is logged once.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DedicatedBudget } from "../../src/proxy/own-conn/dedicated.ts";
import { ClientSession, type ClientLimits, type SessionHost } from "../../src/proxy/session/client-session.ts";
import { UpstreamRequest } from "../../src/backend/request.ts";
import type { PubSub } from "../../src/proxy/pubsub/subscriptions.ts";
import type { RouteClient, Router } from "../../src/proxy/routing/router.ts";
import { commandName } from "../../src/resp/request-parser.ts";
import { encodeCommand } from "../../src/resp/encode.ts";
import { Scope } from "../../src/scope/scope.ts";
import { createLogger } from "../../src/log.ts";
import { FakeConn, ManualRuntime } from "../support/manual-runtime.ts";
import { ClientsMemory } from "../../src/proxy/session/clients-memory.ts";
import { RecordingRouter } from "../support/session-harness.ts";

const decoder = new TextDecoder();

/** A client that keeps its side open after our FIN: our `end()` alone never closes it. */
class HalfOpenConn extends FakeConn {
  override end(): void {
    this.ended = true;
  }
}

function setup(limits: Partial<ClientLimits> = {}) {
  const runtime = new ManualRuntime({ start: 1_000 });
  const root = Scope.root(runtime, "test");
  const router = new RecordingRouter();
  const lines: string[] = [];
  const host: SessionHost = {
    router: router as unknown as Router,
    limits: { maxBulkBytes: 1 << 20, maxArrayLength: 1 << 20, maxPendingRequests: 100, maxClientOutputBytes: 1 << 24, maxQueryBufferBytes: 1 << 30, maxClientOwedBytes: 1 << 30, splitChunkParts: 256, ...limits },
    log: createLogger("debug", (line) => lines.push(line)),
    listenHost: "127.0.0.1",
    memory: new ClientsMemory(() => 0, createLogger("error")),
    dedicated: new DedicatedBudget(() => 0),
    info: () => "# Server\r\n",
  };
  const scope = root.child("client");
  const session = new ClientSession(scope, 17, host);
  const conn = new HalfOpenConn("127.0.0.1", 51000, session.handlers(), 6380);
  session.attach(conn);
  const send = (...commands: string[][]) => conn.receive(commands.map((c) => decoder.decode(encodeCommand(c))).join(""));
  const written = () => conn.written.map((chunk) => decoder.decode(chunk)).join("");
  const answer = (index: number, reply: string) => session.deliver(router.routed[index]!, new TextEncoder().encode(reply));
  return { runtime, root, scope, session, conn, send, written, answer, lines };
}

describe("closing a client after its last reply", () => {
  it("a protocol error is flushed, then the socket is destroyed although the client keeps its side open", async () => {
    const { runtime, root, scope, conn, written, lines } = setup();
    conn.receive("*1\r\n$abc\r\n");
    await runtime.flush();
    assert.equal(written(), "-ERR Protocol error: invalid bulk length\r\n");
    assert.equal(conn.ended, true, "FIN sent");
    assert.equal(conn.paused, false, "read on (and drop) so the client's late bytes cause no reset");
    assert.equal(conn.destroyed, false);
    await runtime.advance(1000);
    assert.equal(conn.destroyed, true, "closed fully once nothing is left to send");
    await runtime.flush();
    assert.equal(scope.state, "closed", "the session is gone: no longer counted as connected");
    assert.deepEqual(lines.filter((l) => l.includes("disconnected")), ['INFO client disconnected id=17 addr=127.0.0.1:51000 reason="protocol error" error="invalid bulk length"']);
    await root.close();
  });

  it("after QUIT, the socket waits while its queued bytes keep leaving, and is destroyed once they stop", async () => {
    const { runtime, root, conn, send, written } = setup();
    send(["QUIT"]);
    await runtime.flush();
    assert.equal(written(), "+OK\r\n");
    conn.bufferedBytes = 100;
    await runtime.advance(1000);
    assert.equal(conn.destroyed, false, "bytes still queued");
    conn.bufferedBytes = 50;
    await runtime.advance(1000);
    assert.equal(conn.destroyed, false, "they are leaving");
    await runtime.advance(1000);
    assert.equal(conn.destroyed, true, "they stopped leaving: the client does not read");
    await root.close();
  });
});

describe("clientIdleTimeoutSeconds", () => {
  it("closes a client that neither sent nor was sent a byte for that long, and logs why", async () => {
    const { runtime, root, conn, send, lines } = setup({ clientIdleTimeoutSeconds: 10 });
    await runtime.advance(5000);
    send(["PING"]);
    await runtime.flush();
    await runtime.advance(9999);
    assert.equal(conn.destroyed, false, "idle for 9.999 s since the PONG");
    await runtime.advance(1);
    assert.equal(conn.destroyed, true);
    assert.deepEqual(lines.filter((l) => l.includes("disconnected")), ["INFO client disconnected id=17 addr=127.0.0.1:51000 reason=idle limit=clientIdleTimeoutSeconds seconds=10"]);
    await root.close();
  });

  it("a client waiting for a reply is never idle; its idle time starts when the reply is sent", async () => {
    const { runtime, root, conn, send, answer } = setup({ clientIdleTimeoutSeconds: 10 });
    send(["BLPOP", "q", "0"]);
    await runtime.advance(60_000);
    assert.equal(conn.destroyed, false, "a minute waiting for its reply");
    answer(0, "*2\r\n$1\r\nq\r\n$1\r\nx\r\n");
    await runtime.flush();
    await runtime.advance(9999);
    assert.equal(conn.destroyed, false);
    await runtime.advance(1);
    assert.equal(conn.destroyed, true);
    await root.close();
  });

  it("a reply that is ready but not yet written when the idle check runs is written, not lost", async () => {
    const { runtime, root, conn, send, answer, written } = setup({ clientIdleTimeoutSeconds: 1 });
    send(["BLPOP", "q", "3"]);
    await runtime.flush();
    await runtime.advance(2000);
    // BLPOP's timeout: its reply is ready, and its write deferred to the end of this turn...
    answer(0, "*-1\r\n");
    // ...when the idle check, armed while the client was blocked, fires.
    await runtime.advance(1000);
    assert.equal(conn.destroyed, false, "not idle: a reply is waiting to be written");
    await runtime.flush();
    assert.equal(written(), "*-1\r\n");
    await runtime.advance(1000);
    assert.equal(conn.destroyed, true, "idle once its reply was written a second ago");
    await root.close();
  });

  it("a subscribed client is never idle", async () => {
    const { runtime, root, session, conn } = setup({ clientIdleTimeoutSeconds: 10 });
    session.pubsub = {} as PubSub;
    await runtime.advance(60_000);
    assert.equal(conn.destroyed, false);
    session.pubsub = null;
    await runtime.advance(10_000);
    assert.equal(conn.destroyed, true, "idle once it has unsubscribed");
    await root.close();
  });

  it("0 (the default) arms no timer", async () => {
    const { runtime, root, scope, conn } = setup();
    assert.deepEqual(scope.inspect().resources.filter((r) => r.kind === "timer"), []);
    await runtime.advance(24 * 3_600_000);
    assert.equal(conn.destroyed, false);
    await root.close();
  });
});

describe("tcpKeepAliveSeconds", () => {
  it("turns keepalive on for the client's socket, in milliseconds; 0 leaves it off", async () => {
    const on = setup({ tcpKeepAliveSeconds: 300 });
    assert.equal(on.conn.keepAliveMs, 300_000);
    await on.root.close();
    const off = setup({ tcpKeepAliveSeconds: 0 });
    assert.equal(off.conn.keepAliveMs, null);
    await off.root.close();
  });
});
