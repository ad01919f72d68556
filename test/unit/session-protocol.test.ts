/**
 * A client session across protocol switches, on the manual runtime: requests after a HELLO that
 * switched protocols wait until the requests sent before it are answered (they travel on other
 * upstream connections and could overtake them), each request carries the protocol in force when
 * it ran, and CLIENT INFO reads its addresses and times from the connection and the runtime clock.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DedicatedBudget } from "../../src/proxy/own-conn/dedicated.ts";
import { ClientSession, type SessionHost } from "../../src/proxy/session/client-session.ts";
import { ClientsMemory } from "../../src/proxy/session/clients-memory.ts";
import { UpstreamRequest } from "../../src/backend/request.ts";
import type { RouteClient, Router } from "../../src/proxy/routing/router.ts";
import { commandName } from "../../src/resp/request-parser.ts";
import { encodeCommand } from "../../src/resp/encode.ts";
import { Scope } from "../../src/scope/scope.ts";
import { createLogger } from "../../src/log.ts";
import { FakeConn, ManualRuntime } from "../support/manual-runtime.ts";

const decoder = new TextDecoder();

/** A router that sends nothing: it records each routed request for the test to answer. */
class RecordingRouter {
  readonly routed: { name: string; args: string[]; resp3: boolean; request: UpstreamRequest }[] = [];
  commandName(arg: Uint8Array): string {
    return commandName(arg);
  }
  route(client: RouteClient, name: string, args: Uint8Array[], frame: Uint8Array): void {
    const request = new UpstreamRequest(frame, 0, client, client.id);
    request.resp3 = client.protocol === 3;
    client.expect(request);
    this.routed.push({ name, args: args.map((a) => decoder.decode(a)), resp3: request.resp3, request });
  }
}

function setup() {
  const runtime = new ManualRuntime({ start: 1_000 });
  const scope = Scope.root(runtime, "test");
  const router = new RecordingRouter();
  const host: SessionHost = {
    router: router as unknown as Router,
    limits: { maxBulkBytes: 1 << 20, maxArrayLength: 1 << 20, maxPendingRequests: 100, maxClientOutputBytes: 1 << 24, maxQueryBufferBytes: 1 << 24, maxClientOwedBytes: 1 << 24, splitChunkParts: 1024 },
    log: createLogger("error"),
    memory: new ClientsMemory(() => 0, createLogger("error")),
    listenHost: "127.0.0.1",
    dedicated: new DedicatedBudget(() => 0),
    info: () => "# Server\r\n",
  };
  const session = new ClientSession(scope.child("client"), 17, host);
  const conn = new FakeConn("127.0.0.1", 51000, session.handlers(), 6380);
  session.attach(conn);
  const send = (...commands: string[][]) => conn.receive(commands.map((c) => decoder.decode(encodeCommand(c))).join(""));
  const written = () => conn.written.map((chunk) => decoder.decode(chunk)).join("");
  const answer = (index: number, reply: string) => session.deliver(router.routed[index]!.request, new TextEncoder().encode(reply));
  return { runtime, scope, router, session, conn, send, written, answer };
}

describe("protocol switches in a client session", () => {
  it("requests after HELLO 3 wait for the requests before it, then travel as RESP3", async () => {
    const { runtime, router, send, written, answer, scope } = setup();
    send(["SET", "k", "v"], ["HELLO", "3"], ["GET", "k"], ["GET", "other"]);
    assert.deepEqual(router.routed.map((r) => r.name), ["SET"], "the GETs are held behind the SET");
    await runtime.flush();
    assert.equal(written(), "", "HELLO's reply waits for the SET's, in order");
    answer(0, "+OK\r\n");
    await runtime.flush();
    assert.deepEqual(router.routed.map((r) => [r.name, r.resp3]), [["SET", false], ["GET", true], ["GET", true]]);
    assert.match(written(), /^\+OK\r\n%7\r\n/, "the SET's reply, then HELLO's map");
    answer(1, "$1\r\nv\r\n");
    answer(2, "_\r\n");
    await runtime.flush();
    assert.ok(written().endsWith("$1\r\nv\r\n_\r\n"), "the GETs' replies follow");
    await scope.close();
  });

  it("switching back to RESP2 waits for the RESP3 requests too", async () => {
    const { runtime, router, send, answer, scope } = setup();
    send(["HELLO", "3"], ["INCR", "n"], ["HELLO", "2"], ["GET", "n"]);
    assert.deepEqual(router.routed.map((r) => [r.name, r.resp3]), [["INCR", true]], "no earlier request: HELLO 3 holds nothing; HELLO 2 holds the GET");
    answer(0, ":1\r\n");
    await runtime.flush();
    assert.deepEqual(router.routed.map((r) => [r.name, r.resp3]), [["INCR", true], ["GET", false]]);
    await scope.close();
  });

  it("a HELLO that keeps the protocol, or fails, holds nothing", async () => {
    const { router, send, scope } = setup();
    send(["SET", "a", "1"], ["HELLO"], ["HELLO", "2"], ["HELLO", "4"], ["GET", "a"]);
    assert.deepEqual(router.routed.map((r) => r.name), ["SET", "GET"]);
    await scope.close();
  });

  it("CLIENT INFO reads the addresses from the connection, age and idle from the runtime clock", async () => {
    const { runtime, router, send, written, answer, conn, scope } = setup();
    send(["CLIENT", "SETNAME", "probe"], ["CLIENT", "INFO"]);
    await runtime.flush();
    assert.match(written(), /^\+OK\r\n\$\d+\r\nid=17 addr=127\.0\.0\.1:51000 laddr=127\.0\.0\.1:6380 fd=-1 name=probe age=0 idle=0 .* resp=2 /);
    await runtime.advance(7_500);
    // The CLIENT INFO is held behind the GET (HELLO switched protocols) while the clock runs on:
    // idle counts from the last bytes the client sent, as in Redis.
    send(["GET", "x"], ["HELLO", "3"], ["CLIENT", "INFO"]);
    await runtime.advance(4_200);
    conn.written.length = 0;
    answer(router.routed.length - 1, "_\r\n");
    await runtime.flush();
    assert.match(written(), /^_\r\n%7\r\n.*=\d+\r\ntxt:id=17 .* name=probe age=11 idle=4 .* resp=3 lib-name= lib-ver=\n\r\n$/s);
    await scope.close();
  });
});
