/**
 * Invariants that guard a client's reply stream, asserted where breaking them would corrupt it:
 * one reply per request, one reply per part of a fanned-out command, budgets that never go below
 * zero. A broken one closes that client with an internal error and logs it with its stack; it
 * never throws into the caller (which may be a shared upstream connection) and never touches
 * another client. Only malformed input is a protocol error.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DedicatedBudget } from "../../src/proxy/own-conn/dedicated.ts";
import { ClientSession, type SessionHost } from "../../src/proxy/session/client-session.ts";
import { ClientsMemory } from "../../src/proxy/session/clients-memory.ts";
import { FanOut } from "../../src/proxy/multi/fanout.ts";
import { UpstreamRequest } from "../../src/backend/request.ts";
import type { RouteClient, Router } from "../../src/proxy/routing/router.ts";
import { commandName } from "../../src/resp/request-parser.ts";
import { encodeCommand } from "../../src/resp/encode.ts";
import { Scope } from "../../src/scope/scope.ts";
import { createLogger } from "../../src/log.ts";
import { FakeConn, ManualRuntime } from "../support/manual-runtime.ts";
import { FakeClient } from "../support/fake-client.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Records each routed request for the test to answer; `throwOn` makes routing that command throw. */
class RecordingRouter {
  readonly routed: UpstreamRequest[] = [];
  throwOn: string | null = null;
  commandName(arg: Uint8Array): string {
    return commandName(arg);
  }
  route(client: RouteClient, name: string, _args: Uint8Array[], frame: Uint8Array): void {
    if (name === this.throwOn) throw new Error("routing blew up");
    const request = new UpstreamRequest(frame, 0, client, client.id);
    client.expect(request);
    this.routed.push(request);
  }
}

function setup() {
  const runtime = new ManualRuntime({ start: 1_000 });
  const scope = Scope.root(runtime, "test");
  const router = new RecordingRouter();
  const logs: string[] = [];
  const host: SessionHost = {
    router: router as unknown as Router,
    limits: { maxBulkBytes: 1 << 20, maxArrayLength: 1 << 20, maxPendingRequests: 100, maxClientOutputBytes: 1 << 24, maxQueryBufferBytes: 1 << 24, maxClientOwedBytes: 1 << 24, splitChunkParts: 1024 },
    log: createLogger("debug", (line) => logs.push(line)),
    memory: new ClientsMemory(() => 0, createLogger("error")),
    listenHost: "127.0.0.1",
    dedicated: new DedicatedBudget(() => 1),
    info: () => "# Server\r\n",
  };
  const client = (id: number) => {
    const session = new ClientSession(scope.child(`client ${id}`), id, host);
    const conn = new FakeConn("127.0.0.1", 51000 + id, session.handlers(), 6380);
    session.attach(conn);
    const send = (...commands: string[][]) => conn.receive(commands.map((c) => decoder.decode(encodeCommand(c))).join(""));
    const written = () => conn.written.map((chunk) => decoder.decode(chunk)).join("");
    return { session, conn, send, written };
  };
  return { runtime, scope, router, logs, client };
}

describe("invariants of a client's reply stream", () => {
  it("a reply delivered twice to one request closes that client with an internal error, logged once with its stack; another client is untouched", async () => {
    const { runtime, router, logs, client, scope } = setup();
    const a = client(1);
    const b = client(2);
    a.send(["GET", "a1"], ["GET", "a2"]);
    b.send(["GET", "b1"]);
    const [a1, a2, b1] = router.routed;
    a.session.deliver(a1!, encoder.encode("$1\r\nx\r\n"));
    await runtime.flush();
    // The shared connection that delivers must never see an exception: deliver returns normally.
    assert.doesNotThrow(() => a.session.deliver(a1!, encoder.encode("$1\r\ny\r\n")));
    a.session.deliver(a2!, encoder.encode("$1\r\nz\r\n"));
    b.session.deliver(b1!, encoder.encode("$2\r\nok\r\n"));
    await runtime.flush();
    assert.equal(a.written(), "$1\r\nx\r\n-ERR internal error: a request was answered twice; closing the connection\r\n");
    assert.ok(a.conn.ended, "the faulty client's connection is closed");
    assert.equal(b.written(), "$2\r\nok\r\n", "the other client gets its reply as usual");
    assert.ok(!b.conn.ended);
    const faults = logs.filter((line) => line.startsWith("ERROR internal error"));
    assert.equal(faults.length, 1, "logged once");
    assert.match(faults[0]!, /InvariantError: a request was answered twice/, "with its stack");
    await scope.close();
  });

  it("an exception from our own code while running a request is an internal error, not a protocol error", async () => {
    const { runtime, router, logs, client, scope } = setup();
    const a = client(1);
    router.throwOn = "SET";
    a.send(["SET", "k", "v"]);
    await runtime.flush();
    assert.equal(a.written(), "-ERR internal error: routing blew up; closing the connection\r\n");
    assert.ok(!a.written().includes("Protocol error"));
    assert.equal(logs.filter((line) => line.startsWith("ERROR internal error")).length, 1);
    await scope.close();
  });

  it("malformed input is still a protocol error, after the replies owed", async () => {
    const { runtime, router, client, scope } = setup();
    const a = client(1);
    a.conn.receive("*1\r\n$4\r\nINCR\r\n*1\r\n$x\r\n");
    a.session.deliver(router.routed[0]!, encoder.encode(":1\r\n"));
    await runtime.flush();
    assert.match(a.written(), /^:1\r\n-ERR Protocol error: /);
    await scope.close();
  });

  it("a part of a fanned-out command answered twice is reported to its client, not merged", () => {
    const client = new FakeClient(2, 3);
    const fan = new FanOut(client, 2, (replies) => replies[0]!);
    const part = new UpstreamRequest(encoder.encode("*1\r\n$6\r\nDBSIZE\r\n"), 0, fan, 3, 0);
    fan.deliver(part, encoder.encode(":1\r\n"));
    fan.deliver(part, encoder.encode(":1\r\n"));
    assert.equal(fan.reply, null, "nothing merged from a duplicate");
    assert.equal(client.faults.length, 1);
    assert.match(client.faults[0]!.message, /part 0 of a fanned-out command was answered twice/);
  });

  it("a budget slot released twice counts once: the dedicated budget never goes below zero", () => {
    const budget = new DedicatedBudget(() => 2);
    const first = budget.tryAcquire()!;
    const second = budget.tryAcquire()!;
    assert.equal(budget.tryAcquire(), null, "the limit holds");
    first.release();
    first.release();
    assert.equal(budget.open, 1, "a second release of one slot changes nothing");
    second.release();
    second.release();
    assert.equal(budget.open, 0);
    assert.ok(budget.tryAcquire() && budget.tryAcquire() && budget.tryAcquire() === null, "still exactly two slots");
  });
});
