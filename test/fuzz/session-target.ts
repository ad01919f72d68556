/**
 * Fuzz target "session": a whole `ClientSession` (src/proxy/session/client-session.ts) on the
 * manual runtime, with a router that records each routed request and a driver that, in an order
 * drawn from the case's seed, feeds the client's bytes in chunks (only while the session reads),
 * answers routed requests in any order with generated replies, runs deferred writes, and refuses
 * writes for a while (back-pressure) before a drain. The reference parser (./requests.ts) says what
 * the bytes hold. Properties: every request before a malformed one runs, in order, and none after
 * it; the client reads exactly one reply per request, in request order, then, for malformed input,
 * exactly one `-ERR Protocol error: ...` and the connection is ended; valid input (cut or not) is
 * never ended; nothing is logged as an internal error; the driver's loop settles within a bound
 * linear in the input (else the session hangs or spins), and the session's scope closes after.
 *
 * A quarter of the cases mix ordinary commands with the ones that change the session's mode
 * (MULTI/EXEC/DISCARD/WATCH, (P|S)SUBSCRIBE and their UNSUBSCRIBEs, HELLO 2/3, RESET, QUIT), valid,
 * cut, or followed by a malformed request. A transaction's or a subscription's own connection is a
 * fake one the driver answers too (Redis's replies, now and then a generated one, or the
 * connection lost). What a mode replies is not predicted there; the rest is kept: no exception, no
 * internal error, no hang, the scope closed after; malformed input answered last with one
 * `-ERR Protocol error: ...` and a close (unless QUIT closed first); valid input never closed.
 */
import { DedicatedBudget } from "../../src/proxy/own-conn/dedicated.ts";
import { ClientSession, type SessionHost } from "../../src/proxy/session/client-session.ts";
import { localHandler } from "../../src/proxy/session/local/local-commands.ts";
import { UpstreamRequest } from "../../src/backend/request.ts";
import type { RouteClient, Router } from "../../src/proxy/routing/router.ts";
import { commandName } from "../../src/resp/request-parser.ts";
import type { RespLimits } from "../../src/resp/frame.ts";
import { DEFAULT_LIMITS } from "../../src/resp/frame.ts";
import { Scope } from "../../src/scope/scope.ts";
import type { Logger } from "../../src/log.ts";
import type { ConnHandlers } from "../../src/runtime.ts";
import { FakeConn, ManualRuntime, settle } from "../support/manual-runtime.ts";
import { fakeBackend } from "../support/fake-backend.ts";
import { deliverIsolated } from "../../src/backend/request.ts";
import { Unavailable, type Backend, type DedicatedConn, type DedicatedOptions, type NodeHandle } from "../../src/backend/contract.ts";
import type { Target as RouteTarget } from "../../src/proxy/routing/router.ts";
import { encodeCommand } from "../../src/resp/encode.ts";
import { malformedRequest } from "./requests.ts";
import { SimRandom, ascii, chunking, concat, equalBytes, mutate, show, split } from "./gen.ts";
import { shrinkChunked, shrinkSizes, type Failure, type Target } from "./harness.ts";
import { generateRequests, diffOutcome } from "./parser-target.ts";
import { genReply } from "./replies.ts";
import { refRequests, type RequestOutcome } from "./requests.ts";
import { ClientsMemory } from "../../src/proxy/session/clients-memory.ts";
import { createLogger } from "../../src/log.ts";

export interface SessionInput {
  bytes: Uint8Array;
  sizes: number[];
  /** Routed request number i is answered `replies[i % replies.length]`. */
  replies: Uint8Array[];
  /** Seeds the driver's choices: which event comes next, which request is answered. */
  driverSeed: number;
  maxPendingRequests: number;
  limits: RespLimits;
  /** The generator's requests and error, or null for mutated bytes (harness check). */
  intended: { requests: Uint8Array[][]; error: string | null; pending: number } | null;
  /** Mode-changing commands among the requests: transactions and subscriptions get connections of their own (budget 4). */
  modal: boolean;
}

/** Commands the recording router takes, and the two answered locally with one reply. */
const ROUTED = ["GET", "SET", "DEL", "INCR", "HSET", "LPUSH", "EXPIRE", "ZADD", "XADD", "MGET", "get", "Set", "BITCOUNT"];
const LOCAL = ["PING", "ping", "ECHO", "echo"];

/** Commands that change the session's mode (its own connections, pub/sub, protocol, closing). */
const MODAL = new Set(["QUIT", "HELLO", "RESET", "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH", "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"]);

/** Mode-changing commands (with plausible arguments) and ordinary ones, for the modal cases. */
const MODAL_COMMANDS: string[][] = [
  ["MULTI"], ["MULTI"], ["EXEC"], ["EXEC"], ["DISCARD"], ["WATCH", "{t}k"], ["WATCH", "a", "b"], ["UNWATCH"],
  ["SUBSCRIBE", "news"], ["SUBSCRIBE", "a", "b", "a"], ["PSUBSCRIBE", "n*"], ["SSUBSCRIBE", "{s}c"], ["UNSUBSCRIBE"], ["UNSUBSCRIBE", "news"],
  ["PUNSUBSCRIBE"], ["SUNSUBSCRIBE", "{s}c"], ["HELLO", "3"], ["HELLO", "2"], ["HELLO"], ["HELLO", "4"], ["RESET"], ["QUIT"],
];
const ORDINARY_COMMANDS: string[][] = [["GET", "{t}k"], ["SET", "{t}k", "v"], ["INCR", "{t}k"], ["PING"], ["ECHO", "e"], ["MGET", "a", "b"], ["SUBSCRIBE"], ["EXEC", "x"]];

/** Mode changes mixed with ordinary commands: valid (35%), cut (25%), then a malformed request (20%), or mutated (20%). */
function generateModal(rng: SimRandom): { bytes: Uint8Array; intended: SessionInput["intended"] } {
  const requests = Array.from({ length: rng.intBetween(1, 10) }, () => {
    const args = rng.chance(0.6) ? rng.pick(MODAL_COMMANDS) : rng.pick(ORDINARY_COMMANDS);
    return rng.chance(0.2) ? [args[0]!.toLowerCase(), ...args.slice(1)] : args;
  });
  const frames = requests.map((args) => encodeCommand(args));
  const bytes = concat(frames);
  const asArgs = (list: string[][]) => list.map((args) => args.map(ascii));
  const r = rng.int(100);
  if (r < 35) return { bytes, intended: { requests: asArgs(requests), error: null, pending: 0 } };
  if (r < 60) {
    const cut = rng.int(bytes.length + 1);
    let end = 0;
    let done = 0;
    while (done < frames.length && end + frames[done]!.length <= cut) end += frames[done++]!.length;
    return { bytes: bytes.slice(0, cut), intended: { requests: asArgs(requests.slice(0, done)), error: null, pending: cut - end } };
  }
  const bad = malformedRequest(rng, DEFAULT_LIMITS);
  const after = concat(Array.from({ length: rng.int(3) }, () => encodeCommand(rng.pick(MODAL_COMMANDS))));
  const all = concat([bytes, bad.bytes, after]);
  if (r < 80) return { bytes: all, intended: { requests: asArgs(requests), error: bad.error, pending: 0 } };
  return { bytes: mutate(rng, rng.chance(0.5) ? bytes : all), intended: null };
}

function generate(rng: SimRandom): SessionInput {
  if (rng.chance(0.25)) {
    const { bytes, intended } = generateModal(rng);
    return {
      bytes,
      sizes: chunking(rng, bytes.length),
      replies: Array.from({ length: rng.intBetween(1, 4) }, () => genReply(rng, DEFAULT_LIMITS, rng.chance(0.5)).bytes),
      driverSeed: rng.next32(),
      maxPendingRequests: rng.pick([1, 2, 3, 5, 100]),
      limits: DEFAULT_LIMITS,
      intended,
      modal: true,
    };
  }
  const limits: RespLimits = {
    maxBulkBytes: rng.chance(0.7) ? 1 << 20 : rng.intBetween(4, 64),
    maxArrayLength: rng.chance(0.7) ? 1 << 20 : rng.intBetween(2, 8),
  };
  const name = (r: SimRandom) => ascii(r.chance(0.15) ? r.pick(LOCAL) : r.pick(ROUTED));
  const { bytes, intended } = generateRequests(rng, limits, name);
  const replies = Array.from({ length: rng.intBetween(1, 4) }, () => genReply(rng, DEFAULT_LIMITS, rng.chance(0.5)).bytes);
  return {
    bytes,
    sizes: chunking(rng, bytes.length),
    replies,
    driverSeed: rng.next32(),
    maxPendingRequests: rng.pick([1, 2, 3, 5, 100]),
    limits,
    intended,
    modal: false,
  };
}

/** The manual runtime with deferred callbacks run one at a time by the driver, synchronously. */
class FuzzRuntime extends ManualRuntime {
  readonly tasks: (() => void)[] = [];
  override defer(fn: () => void): void {
    this.tasks.push(fn);
  }
}

/** A client connection whose writes the driver may refuse (over the high-water mark) until a drain. */
class FuzzConn extends FakeConn {
  blocked = false;
  refuse: () => boolean = () => false;
  constructor(handlers: ConnHandlers) {
    super("127.0.0.1", 50000, handlers, 6380);
  }
  override write(chunk: Uint8Array): boolean {
    const accepted = super.write(chunk);
    if (!accepted || !this.refuse()) return accepted;
    this.blocked = true;
    return false;
  }
}

/**
 * A connection of the client's own to the fake node: requests (a transaction's) wait in `pending`,
 * subscriber commands' confirmations in `confirmations`, until the driver answers them.
 */
class FuzzLink implements DedicatedConn {
  readonly pending: UpstreamRequest[] = [];
  readonly confirmations: Uint8Array[] = [];
  isDead = false;
  constructor(readonly options: DedicatedOptions) {}

  send(request: UpstreamRequest): Unavailable | null {
    if (this.isDead) return new Unavailable("closing", "upstream connection to fuzz:1 is closed");
    this.pending.push(request);
    return null;
  }

  /** A subscriber's (UN)SUBSCRIBE: Redis confirms each name (an unsubscribe of nothing with a nil). */
  write(frame: Uint8Array): void {
    for (const { args } of refRequests(frame, DEFAULT_LIMITS).requests) {
      const word = commandName(args[0]!).toLowerCase();
      const names = args.slice(1);
      if (names.length === 0) this.confirmations.push(concat([ascii(`*3\r\n$${word.length}\r\n${word}\r\n$-1\r\n:0\r\n`)]));
      for (const name of names) this.confirmations.push(concat([ascii(`*3\r\n$${word.length}\r\n${word}\r\n$${name.length}\r\n`), name, ascii("\r\n:1\r\n")]));
    }
  }

  fail(reason: string): void {
    if (this.isDead) return;
    this.isDead = true;
    const reply = ascii(`-ERR ${reason}\r\n`);
    for (const request of this.pending.splice(0)) deliverIsolated(request, reply);
    this.confirmations.length = 0;
    this.options.events.lost(this, reason, true);
  }

  /** Has something the driver may answer. */
  get busy(): boolean {
    return !this.isDead && (this.pending.length > 0 || this.confirmations.length > 0);
  }
}

/** The one node behind the fake backend: its connections are the driver's to answer. */
class FuzzNode implements NodeHandle {
  readonly host = "fuzz";
  readonly port = 1;
  readonly address = "fuzz:1";
  readonly links: FuzzLink[] = [];
  dedicated(options: DedicatedOptions): DedicatedConn {
    const link = new FuzzLink(options);
    this.links.push(link);
    return link;
  }
}

/** Redis's reply to a command on a transaction's connection (a keyed one inside MULTI is QUEUED). */
function linkReply(frame: Uint8Array): Uint8Array {
  const args = refRequests(frame, DEFAULT_LIMITS).requests[0]?.args ?? [ascii("?")];
  switch (commandName(args[0]!)) {
    case "MULTI":
    case "WATCH":
    case "UNWATCH":
    case "DISCARD":
    case "ASKING":
    case "HELLO":
      return OK;
    case "EXEC":
      return ascii("*1\r\n:1\r\n");
    default:
      return ascii("+QUEUED\r\n");
  }
}

class RecordingRouter {
  readonly routed: { args: Uint8Array[]; request: UpstreamRequest }[] = [];
  readonly node = new FuzzNode();
  readonly backend = fakeBackend("fuzz", { nodeFor: () => this.node });
  readonly #routes = { match: () => ({ prefix: new Uint8Array(0), backend: this.backend, strip: 0, caseInsensitive: false }) };
  /** Every name routes to the one backend. */
  routes(): { match(key: Uint8Array): { backend: Backend } } {
    return this.#routes;
  }
  /** A transaction's command: keyed ones on shard 0 of the one backend, keyless ones on none. */
  target(_client: RouteClient, name: string, args: Uint8Array[], frame: Uint8Array): RouteTarget {
    return { backend: this.backend, shard: args.length > 1 ? 0 : -1, frame, info: { name } } as unknown as RouteTarget;
  }
  commandName(arg: Uint8Array): string {
    return commandName(arg);
  }
  route(client: RouteClient, _name: string, args: Uint8Array[], frame: Uint8Array): void {
    const request = new UpstreamRequest(frame, 0, client, client.id);
    client.expect(request);
    this.routed.push({ args: args.map((a) => a.slice()), request });
  }
}

const OK = ascii("+OK\r\n");

function bulk(bytes: Uint8Array): Uint8Array {
  return concat([ascii(`$${bytes.length}\r\n`), bytes, ascii("\r\n")]);
}

/** PING's or ECHO's reply, as Redis gives it to a RESP2 client. */
function localReply(name: string, args: Uint8Array[]): Uint8Array {
  if (name === "PING") return args.length === 1 ? ascii("+PONG\r\n") : args.length === 2 ? bulk(args[1]!) : ascii("-ERR wrong number of arguments for 'ping' command\r\n");
  return args.length === 2 ? bulk(args[1]!) : ascii("-ERR wrong number of arguments for 'echo' command\r\n");
}

/** What the client must read, and the requests the router must see, for the reference's outcome. */
function expectation(outcome: RequestOutcome, replies: Uint8Array[]): { output: Uint8Array; routed: Uint8Array[][]; modal: boolean } {
  const output: Uint8Array[] = [];
  const routed: Uint8Array[][] = [];
  let modal = false;
  for (const { args } of outcome.requests) {
    const name = commandName(args[0]!);
    if (name === "PING" || name === "ECHO") output.push(localReply(name, args));
    else if (MODAL.has(name) || localHandler(name) !== undefined) modal = true;
    else {
      output.push(replies[routed.length % replies.length]!);
      routed.push(args);
    }
  }
  if (outcome.error !== null) output.push(ascii(`-ERR Protocol error: ${outcome.error}\r\n`));
  return { output: concat(output), routed, modal };
}

/** A session wired to a recording router, a fuzzable connection and the manual runtime. */
interface Rig {
  runtime: FuzzRuntime;
  root: Scope;
  scope: Scope;
  router: RecordingRouter;
  session: ClientSession;
  conn: FuzzConn;
  /** Exceptions the session's guarded handlers let out (scope.guard hands them to the root's sink). */
  escaped: string[];
  /** Warnings and errors the session logged. */
  logged: string[];
}

function rig(input: SessionInput): Rig {
  const runtime = new FuzzRuntime({ start: 1_000 });
  const escaped: string[] = [];
  const root = Scope.root(runtime, "fuzz", (error) => escaped.push(String(error instanceof Error ? error.stack : error)));
  const router = new RecordingRouter();
  const logged: string[] = [];
  const record = (message: string, fields?: Record<string, unknown>) => logged.push(`${message} ${JSON.stringify(fields ?? {})}`);
  const log: Logger = { debug() {}, info() {}, warn: record, error: record };
  const host: SessionHost = {
    router: router as unknown as Router,
    limits: { maxQueryBufferBytes: 1 << 30, maxClientOwedBytes: 1 << 30, splitChunkParts: 256, ...input.limits, maxPendingRequests: input.maxPendingRequests, maxClientOutputBytes: 1 << 30 },
    log,
    listenHost: "127.0.0.1",
    memory: new ClientsMemory(() => 0, createLogger("error")),
    dedicated: new DedicatedBudget(() => (input.modal ? 4 : 0)),
    info: () => "# Server\r\n",
  };
  const scope = root.child("client");
  const session = new ClientSession(scope, 1, host);
  const conn = new FuzzConn(session.handlers());
  session.attach(conn);
  return { runtime, root, scope, router, session, conn, escaped, logged };
}

function describeState(rig: Rig, read: number, chunks: number, answered: number): string {
  const links = rig.router.node.links;
  return `${read}/${chunks} chunks read, ${rig.router.routed.length} routed, ${answered} answered, ${links.length} own connections (${links.filter((l) => l.busy).length} busy), ${rig.runtime.tasks.length} deferred, paused ${rig.conn.paused}, ended ${rig.conn.ended}, pending ${rig.session.pendingCount}`;
}

/**
 * Runs events in an order drawn from the driver seed until none is left: read a chunk (only while
 * the session reads), answer a routed request (any of them), run a deferred write, drain a refused
 * write; sometimes the client closes mid-way. Returns the state, or a failure when it never settles.
 */
function drive(rig: Rig, input: SessionInput, requests: number): { state: string; unread: number } | Failure {
  const { conn, router, runtime, session } = rig;
  const rng = new SimRandom(input.driverSeed);
  const refuseRate = rng.chance(0.3) ? 0.3 : 0;
  conn.refuse = () => rng.chance(refuseRate);
  const closeAt = rng.chance(0.1) ? rng.int(16 + 2 * (input.sizes.length + requests)) : -1;
  const chunks = input.bytes.length === 0 ? [] : split(input.bytes, input.sizes);
  let next = 0;
  let answered = 0;
  const unanswered: number[] = [];
  // Every event consumes something (a chunk, a reply, a callback, a refusal), and each of those
  // comes from the input, so a bound linear in it separates a slow case from a spinning session.
  const bound = 64 + 8 * (chunks.length + requests) + (input.modal ? 16 * requests : 0);
  const links = router.node.links;
  for (let steps = 1; ; steps++) {
    while (answered + unanswered.length < router.routed.length) unanswered.push(answered + unanswered.length);
    const choices: number[] = [];
    // As an adapter: no data while paused, none once the connection has closed.
    if (next < chunks.length && !conn.paused && !conn.closed) choices.push(0, 0);
    if (unanswered.length > 0) choices.push(1, 1);
    if (runtime.tasks.length > 0) choices.push(2);
    if (conn.blocked) choices.push(3);
    if (links.some((l) => l.busy)) choices.push(4, 4);
    if (choices.length === 0) return { state: describeState(rig, next, chunks.length, answered), unread: chunks.length - next };
    if (steps > bound) return { property: "the session settles (no hang, no spin)", detail: `still busy after ${bound} driver steps: ${describeState(rig, next, chunks.length, answered)}` };
    if (steps === closeAt && !conn.closed) conn.peerClose();
    switch (rng.pick(choices)) {
      case 0:
        conn.receive(chunks[next++]!);
        break;
      case 1: {
        const index = unanswered.splice(rng.int(unanswered.length), 1)[0]!;
        answered++;
        session.deliver(router.routed[index]!.request, input.replies[index % input.replies.length]!);
        break;
      }
      case 2:
        runtime.tasks.shift()!();
        break;
      case 4: {
        // A client's own connection: a confirmation, a reply (Redis's, or now and then a
        // generated one), or, rarely, the connection lost (a subscriber's never: restoring it
        // takes timers, which this driver does not run).
        const link = rng.pick(links.filter((l) => l.busy));
        if (link.confirmations.length > 0) link.options.events.push!(link.confirmations.shift()!);
        else if (rng.chance(0.03)) link.fail("upstream connection to fuzz:1 lost");
        else {
          const request = link.pending.shift()!;
          link.options.events.reply(request, rng.chance(0.85) ? linkReply(request.frame) : input.replies[rng.int(input.replies.length)]!);
        }
        break;
      }
      default:
        conn.blocked = false;
        conn.emitDrain();
    }
  }
}

/** Arguments as request records (frames are not compared here). */
const asRequests = (list: Uint8Array[][]): RequestOutcome => ({ requests: list.map((args) => ({ args, frame: new Uint8Array(0) })), error: null, pending: 0 });

/** The properties, once the driver has settled. */
function verify(rig: Rig, outcome: RequestOutcome, expected: ReturnType<typeof expectation>, end: { state: string; unread: number }): Failure | null {
  const { conn } = rig;
  if (rig.escaped.length > 0) return { property: "no exception escapes the session", detail: rig.escaped.join("\n") };
  if (rig.logged.length > 0) return { property: "the session logs no internal error", detail: rig.logged.join("\n") };
  const gone = conn.closed && !conn.ended;
  if (end.unread > 0 && !conn.ended && !conn.destroyed && !gone) return { property: "the session reads all input while it owes nothing (no hang)", detail: `stopped reading: ${end.state}` };
  const output = concat(conn.written);
  if (expected.modal) {
    // What each mode replies is the mode's; what any input still gets is checked here.
    if (gone || outcome.requests.some((r) => commandName(r.args[0]!) === "QUIT")) return null;
    if (outcome.error !== null) {
      const tail = ascii(`-ERR Protocol error: ${outcome.error}\r\n`);
      if (!conn.ended || !equalBytes(output.subarray(output.length - tail.length), tail)) {
        return { property: "malformed input is answered last with one protocol error, and the connection ended", detail: `ended ${conn.ended}, output ends ${show(output.subarray(Math.max(0, output.length - 200)))}; ${end.state}` };
      }
    } else if (conn.ended || conn.destroyed) return { property: "valid input never closes the connection", detail: end.state };
    return null;
  }
  const routed = rig.router.routed.map((r) => r.args);
  if (gone) {
    // Closed early: what ran and what was written must be where the full run would have been.
    if (routed.length > expected.routed.length || diffOutcome(asRequests(expected.routed.slice(0, routed.length)), asRequests(routed)) !== null) {
      return { property: "a client closed early ran a prefix of its requests", detail: `${routed.length} routed of ${expected.routed.length}` };
    }
    if (!equalBytes(output, expected.output.subarray(0, output.length))) return { property: "a client closed early read a prefix of its replies", detail: `expected a prefix of ${show(expected.output, 600)}\ngot ${show(output, 600)}` };
    return null;
  }
  const diff = diffOutcome(asRequests(expected.routed), asRequests(routed));
  if (diff) return { property: "requests before a malformed one run in order, none after it", detail: diff };
  if (!equalBytes(output, expected.output)) return { property: "one reply per request, in order, then one protocol error for malformed input", detail: `expected ${show(expected.output, 600)}\ngot      ${show(output, 600)}` };
  if (conn.destroyed) return { property: "the connection is ended, not destroyed", detail: end.state };
  if (conn.ended !== (outcome.error !== null)) return { property: "malformed input ends the connection, valid input does not", detail: `error ${JSON.stringify(outcome.error)}, ended ${conn.ended}` };
  return null;
}

async function checkSession(input: SessionInput): Promise<Failure | null> {
  const outcome = refRequests(input.bytes, input.limits);
  if (input.intended) {
    const diff = diffOutcome({ ...asRequests(input.intended.requests), error: input.intended.error, pending: input.intended.pending }, { ...outcome, requests: asRequests(outcome.requests.map((r) => r.args)).requests });
    if (diff) return { property: "the reference parser reads generated input as the generator meant it (harness check)", detail: diff };
  }
  const expected = expectation(outcome, input.replies);
  const r = rig(input);
  const end = drive(r, input, outcome.requests.length);
  if ("property" in end) return end;
  const failure = verify(r, outcome, expected, end);
  if (failure) return failure;
  // The peer goes away; the session's scope must then close completely.
  if (!r.conn.closed) r.conn.peerClose();
  await settle(40);
  if (r.escaped.length > 0) return { property: "no exception escapes the session", detail: r.escaped.join("\n") };
  if (r.scope.state !== "closed") return { property: "a closed client's session scope closes", detail: `scope is ${r.scope.state} after the connection closed; ${end.state}` };
  r.root.destroy().catch(() => {});
  return null;
}

export const sessionTarget: Target<SessionInput> = {
  name: "session",
  generate,
  check: checkSession,
  *shrink(input) {
    for (const sizes of shrinkSizes(input.sizes)) yield { ...input, sizes };
    if (input.replies.length > 1 || !equalBytes(input.replies[0]!, OK)) yield { ...input, replies: [OK] };
    if (input.replies.length > 1) yield { ...input, replies: [input.replies[0]!] };
    if (input.maxPendingRequests !== 100) yield { ...input, maxPendingRequests: 100 };
    for (const { bytes, sizes } of shrinkChunked(input.bytes, input.sizes)) yield { ...input, bytes, sizes, intended: null };
  },
  describe(input) {
    return [
      `bytes ${show(input.bytes)}`,
      `chunk sizes [${input.sizes.join(", ")}]`,
      `replies [${input.replies.map((r) => show(r, 200)).join(", ")}]`,
      `driver seed ${input.driverSeed}, maxPendingRequests ${input.maxPendingRequests}, limits ${JSON.stringify(input.limits)}${input.modal ? ", modal (own connections)" : ""}`,
    ].join("\n");
  },
  size: (input) => input.bytes.length,
};
