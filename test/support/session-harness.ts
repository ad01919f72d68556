/**
 * Client sessions on the manual runtime, for unit tests of what a session does with its limits:
 * a router that only records what it is given (the test answers each request), fake client
 * connections, the clients' memory budget, and the log lines. Nothing touches the event loop:
 * `runtime.flush()` runs what the sessions deferred.
 */
import { DedicatedBudget } from "../../src/proxy/own-conn/dedicated.ts";
import { ClientSession, type ClientLimits, type SessionHost } from "../../src/proxy/session/client-session.ts";
import { ClientsMemory } from "../../src/proxy/session/clients-memory.ts";
import { UpstreamRequest } from "../../src/backend/request.ts";
import type { RouteClient, Router } from "../../src/proxy/routing/router.ts";
import { commandName } from "../../src/resp/request-parser.ts";
import { encodeCommand } from "../../src/resp/encode.ts";
import { Scope } from "../../src/scope/scope.ts";
import { createLogger } from "../../src/log.ts";
import { FakeConn, ManualRuntime } from "./manual-runtime.ts";
import { ClientAuth } from "../../src/acl/client-auth.ts";
import type { AuthConfig } from "../../src/acl/users.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A router that sends nothing: each routed request waits in `routed` for the test to answer it. */
export class RecordingRouter {
  readonly routed: UpstreamRequest[] = [];
  commandName(arg: Uint8Array): string {
    return commandName(arg);
  }
  route(client: RouteClient, _name: string, _args: Uint8Array[], frame: Uint8Array): void {
    const request = new UpstreamRequest(frame, 0, client, client.id);
    client.expect(request);
    this.routed.push(request);
  }
}

export const TEST_LIMITS: ClientLimits = {
  maxBulkBytes: 1 << 20,
  maxArrayLength: 1 << 20,
  maxPendingRequests: 1000,
  maxClientOutputBytes: 1 << 30,
  maxQueryBufferBytes: 1 << 30,
  maxClientOwedBytes: 1 << 30,
  splitChunkParts: 1024,
};

export interface HarnessOptions {
  limits?: Partial<ClientLimits>;
  /** The clients' memory budget in bytes (0: none). */
  maxClientsMemoryBytes?: number;
  /** Client users (`requirepass`, `users`) and the failed-AUTH throttle; absent: no authentication. */
  auth?: AuthConfig;
}

export function sessionHarness(options: HarnessOptions = {}) {
  const runtime = new ManualRuntime({ start: 1_000 });
  const scope = Scope.root(runtime, "test");
  const router = new RecordingRouter();
  const logs: string[] = [];
  const log = createLogger("debug", (line) => logs.push(line));
  const memory = new ClientsMemory(() => options.maxClientsMemoryBytes ?? 0, log);
  const host: SessionHost = {
    router: router as unknown as Router,
    limits: { ...TEST_LIMITS, ...options.limits },
    log,
    listenHost: "127.0.0.1",
    dedicated: new DedicatedBudget(() => 1),
    memory,
    info: () => "# Server\r\n",
    ...(options.auth ? { auth: new ClientAuth(options.auth, () => runtime.now(), log) } : {}),
  };
  const client = (id: number) => {
    const session = new ClientSession(scope.child(`client ${id}`), id, host);
    const conn = new FakeConn("127.0.0.1", 51000 + id, session.handlers(), 6380);
    session.attach(conn);
    return {
      session,
      conn,
      /** Send commands, all in one chunk. */
      send: (...commands: string[][]) => conn.receive(commands.map((c) => decoder.decode(encodeCommand(c))).join("")),
      /** Send raw bytes (a string is latin1-free ASCII here). */
      sendRaw: (bytes: string | Uint8Array) => conn.receive(bytes),
      written: () => conn.written.map((chunk) => decoder.decode(chunk)).join(""),
    };
  };
  /** Answer routed request `index` with `reply`. */
  const answer = (index: number, reply: string | Uint8Array) => {
    const request = router.routed[index]!;
    request.sink.deliver(request, typeof reply === "string" ? encoder.encode(reply) : reply);
  };
  return { runtime, scope, router, logs, memory, client, answer, host };
}
