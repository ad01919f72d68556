/**
 * One client connection: parses its requests, routes each to the cluster (or answers it
 * locally), and writes the replies back in request order, batched into one write per turn of the
 * event loop. Memory per client is bounded: its query buffer (an unfinished request, and requests
 * read but not run yet) by `maxQueryBufferBytes`, checked as each chunk is read; its requests in
 * flight by ./client-flow.ts (at most `maxPendingRequests`, none sent while it is owed
 * `maxClientOwedBytes`, and a window that grows as it keeps up: the rest are held, unsent, and
 * run as replies are read); reading pauses while requests are held or the socket's send buffer is
 * over its high-water mark; a client whose unread replies pass `maxClientOutputBytes` is
 * disconnected. What it holds in all is reported to the clients' memory budget
 * (./clients-memory.ts), which may evict it. Malformed input gets `-ERR Protocol error: ...`
 * after the replies already owed, then the connection closes, fully, as after QUIT. A client
 * idle for `clientIdleTimeoutSeconds` is closed (Redis's `timeout`).
 *
 * Some commands run alone (`runAlone`): a blocking command or a transaction's command on a
 * connection of the client's own starts only once every earlier reply is in, and the requests
 * after it wait for its reply, so the client's order holds across connections.
 * Subscriptions and their messages are the business of ../pubsub/.
 *
 * Why ~600 lines: reading, holding, writing and the memory the client holds are one state
 * machine on one socket (every pause and resume depends on all of them); what has a seam of its
 * own already lives beside it (reply-queue.ts, client-flow.ts, clients-memory.ts, closing.ts,
 * local/). The next split is the input side (parser, held requests, query-buffer accounting).
 */
import type { Conn, ConnHandlers } from "../../runtime.ts";
import type { Scope, ScopedTimer } from "../../scope/scope.ts";
import { Fifo } from "../../util/fifo.ts";
import { ReplyQueue, Timings } from "./reply-queue.ts";
import { UpstreamRequest, type Pending, type ReplySink } from "../../backend/request.ts";
import type { SplitOwner } from "../multi/fanout.ts";
import { internalError } from "../errors.ts";
import { InvariantError, asError } from "../../errors.ts";
import { FrameTooBigError, ProtocolError } from "../../resp/errors.ts";
import { localHandler } from "./local/local-commands.ts";
import type { ConnectionInfo, LocalContext } from "./local/context.ts";
import { pubsubCommand } from "../pubsub/commands.ts";
import type { PubSub, PubSubClient } from "../pubsub/subscriptions.ts";
import { RequestParser } from "../../resp/request-parser.ts";
import type { RespLimits } from "../../resp/frame.ts";
import { errorReply } from "../../resp/replies.ts";
import { decode } from "../../resp/decode.ts";
import { concatBytes } from "../../resp/encode.ts";
import type { Router, Target } from "../routing/router.ts";
import type { Backend } from "../../backend/contract.ts";
import { withStack, type LogFields, type Logger, type LogLimiter } from "../../log.ts";
import { Blocker } from "../own-conn/blocking.ts";
import { Transaction, type TransactionHost } from "../own-conn/transaction.ts";
import type { DedicatedBudget } from "../own-conn/dedicated.ts";
import { closeAfterFlush, watchIdle } from "./closing.ts";
import { ClientFlow } from "./client-flow.ts";
import type { ClientsMemory, MemoryUser } from "./clients-memory.ts";
import type { ClientAuth, AuthSession } from "../../acl/client-auth.ts";
import { OPEN_LOGIN, Users, type Login } from "../../acl/users.ts";
import { commandInfo, type CommandInfo } from "../../commands/keys.ts";
import { refusal, WRONGPASS } from "./access.ts";
import type { ProxyMetrics } from "../../metrics/proxy-metrics.ts";
import type { Slowlog } from "../../metrics/slowlog.ts";
import type { CommandStats } from "../../metrics/commands.ts";

/** What a blocked command or a subscriber is told when slotgate shuts down (`-ERR ...`). */
const SHUTTING_DOWN = "slotgate is shutting down";

export interface ClientLimits {
  maxBulkBytes: number;
  maxArrayLength: number;
  /** Unanswered requests after which reading pauses (resumes at half). */
  maxPendingRequests: number;
  /** Replies written but not yet read by the client, in bytes, before it is disconnected. */
  maxClientOutputBytes: number;
  /**
   * Close a client that neither sent nor was sent a byte for this long, unless it waits for a
   * reply (a blocked command) or is subscribed: Redis's `timeout`, in seconds. 0 or absent: never.
   */
  clientIdleTimeoutSeconds?: number;
  /** TCP keepalive idle time of the client's socket, in seconds (Redis's `tcp-keepalive`). 0 or absent: off. */
  tcpKeepAliveSeconds?: number;
  /** Query buffer (an unfinished request, and requests read but not run) past which the client is closed, in bytes. */
  maxQueryBufferBytes: number;
  /** Bytes owed to the client (replies it has not read) from which its next requests wait, unsent. */
  maxClientOwedBytes: number;
  /** Parts of a split command (MGET, MSET, DEL...) sent per turn of the event loop. */
  splitChunkParts: number;
}

/** Services a session needs from the server that accepted it. */
export interface SessionHost {
  readonly router: Router;
  readonly limits: ClientLimits;
  readonly log: Logger;
  /** Where a client closed by a limit is logged, one line per limit a window (absent: `log`, every time). */
  readonly limitLog?: LogLimiter;
  /** Bounds the connections clients hold alone, over all clients. */
  readonly dedicated: DedicatedBudget;
  /** Bounds the memory of all clients together. */
  readonly memory: ClientsMemory;
  /** The address the server listens on (CLIENT INFO's laddr). */
  readonly listenHost: string;
  /** Users and the failed-AUTH throttle; absent: no authentication, every client is `default`. */
  readonly auth?: ClientAuth;
  /** What the proxy counts (requests per command, bytes, the slow log); absent: metrics are off. */
  readonly metrics?: ProxyMetrics;
  info(): string;
}

/** The users of a session host with no `auth`: none configured. */
const NO_USERS = new Users({});

/** AUTH, or HELLO with its AUTH option: an attempt the failed-AUTH throttle may delay. */
function isAuthAttempt(name: string, args: Uint8Array[]): boolean {
  if (name === "AUTH") return true;
  if (name !== "HELLO") return false;
  for (let i = 2; i < args.length; i++) {
    const arg = args[i]!;
    if (arg.length === 4 && (arg[0]! | 0x20) === 0x61 && (arg[1]! | 0x20) === 0x75 && (arg[2]! | 0x20) === 0x74 && (arg[3]! | 0x20) === 0x68) return true;
  }
  return false;
}

/** Commands that start (or answer outside) a transaction. */
const TRANSACTION_COMMANDS = new Set(["MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH"]);

const immediate = (reply: Uint8Array): Pending => ({ reply });

/** An unfinished request past this size is read one chunk per turn of the event loop. */
const YIELD_BYTES = 256 * 1024;
/**
 * On a connection that cannot turn Nagle's algorithm off (`Conn.nagle`), replies ready while
 * others of the same pipeline are still owed wait at most this long to leave in one write.
 */
const GATHER_MS = 1;
/**
 * Replies ready while others of the same pipeline are still owed wait one turn of the event loop
 * (the replies of the other nodes often come in that turn) unless this much is ready: one write
 * for a pipelined batch instead of one per node that answered it. A client with nothing more owed
 * (every unpipelined one) is written to at once.
 */
const COALESCE_BYTES = 16 * 1024;

/** The request parser's limits for clients given `limits`: one object for all of them. */
const PARSER_LIMITS = new WeakMap<ClientLimits, RespLimits>();
function parserLimits(limits: ClientLimits): RespLimits {
  let parser = PARSER_LIMITS.get(limits);
  if (parser === undefined) {
    parser = {
      maxBulkBytes: limits.maxBulkBytes,
      maxArrayLength: limits.maxArrayLength,
      // The unfinished request is the query buffer's bulk; held requests are added in #onData.
      maxFrameBytes: limits.maxQueryBufferBytes,
    };
    PARSER_LIMITS.set(limits, parser);
  }
  return parser;
}

/** A request read while `maxPendingRequests` were unanswered, or the protocol error that ended the input. */
type Held = { args: Uint8Array[]; frame: Uint8Array } | Uint8Array;

export class ClientSession implements ReplySink, SplitOwner, LocalContext, TransactionHost, PubSubClient, MemoryUser, AuthSession {
  clientName: string | null = null;
  lastWriteBackend: Backend | null = null;
  lastWriteShard = 0;
  /** The protocol `HELLO` chose: 2 (Redis's default) or 3. */
  protocol: 2 | 3 = 2;
  /** CLIENT SETINFO's attributes ("" until set). */
  libName = "";
  libVer = "";
  /** Who the client is logged in as; null until it authenticates, when authentication is required. */
  login: Login | null;
  /** An AUTH the failed-AUTH throttle delays: nothing after it runs until it has. */
  #delayedAuth: { args: Uint8Array[]; frame: Uint8Array } | null = null;
  /** The delayed AUTH is being run now: not delayed again. */
  #authDelayOver = false;
  /** Pub/sub state, from the first subscribe until the client is subscribed to nothing. */
  pubsub: PubSub | null = null;
  /** Bytes of messages queued behind owed replies since the queue was last empty. */
  #pushBacklog = 0;
  readonly #scope: Scope;
  readonly #host: SessionHost;
  readonly #parser: RequestParser;
  readonly #queue: ReplyQueue;
  /** Metrics on: what the proxy counts, and the requests in flight, to time when answered. */
  readonly #metrics: ProxyMetrics | null;
  readonly #timings: Timings | null;
  /** The last command name run and its stats entry: a pipeline of one command looks it up once. */
  #lastName = "";
  #lastStat: CommandStats | null = null;
  /** Requests parsed but not run yet, because `maxPendingRequests` were unanswered; in order. */
  readonly #held = new Fifo<Held>();
  /** What the client holds, kind by kind, and the window of its requests in flight. */
  readonly #flow: ClientFlow;
  /** The size of the request being run: the reply-queue entry it makes carries it. */
  #runBytes = 0;
  /** The input was malformed: nothing more is read. */
  #inputFailed = false;
  #conn: Conn | null = null;
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  /** The replies ready waited one turn for the rest of their pipeline (COALESCE_BYTES). */
  #waitedTurn = false;
  /** Replies held to leave together (`Conn.nagle`); the timer that sends them anyway. */
  #gathering: ScopedTimer | null = null;
  #readPaused = false;
  /** Reading is paused until a later turn, to let other clients in (`#yieldReading`). */
  #yielding = false;
  /** A write returned false (over the high-water mark) and no `drain` has followed yet. */
  #outputBlocked = false;
  /** Set by QUIT or a protocol error: no more requests; close once the queue is written. */
  #closeWhenFlushed = false;
  /** Our FIN is sent; the socket is destroyed once what it queued has left (`#end`). */
  #ending = false;
  #closed = false;
  /** An internal fault closed the client (`fault`). */
  #faulted = false;
  /**
   * Set when HELLO switched protocols while earlier requests were still upstream: later requests
   * travel on the other protocol's connections, so they wait (held) until those are answered,
   * or they could overtake them.
   */
  #fenced = false;
  #idleWaiters: (() => void)[] = [];
  readonly #flush: () => void;
  #transaction: Transaction | null = null;
  #blocker: Blocker | null = null;
  /** Runtime clock readings (ms) for CLIENT INFO: the connect, and the last bytes received. */
  readonly #connectedAt: number;
  #lastInteraction: number;

  constructor(scope: Scope, readonly id: number, host: SessionHost) {
    this.#scope = scope;
    this.#host = host;
    this.#metrics = host.metrics ?? null;
    this.#timings = this.#metrics && new Timings();
    this.#queue = new ReplyQueue(this.#timings);
    this.#connectedAt = this.#lastInteraction = scope.runtime.now();
    this.login = host.auth ? host.auth.users.initialLogin : OPEN_LOGIN;
    host.auth?.add(this);
    const limits = host.limits;
    this.#flow = new ClientFlow(limits.maxClientOwedBytes);
    this.#parser = new RequestParser((args, frame) => this.#onRequest(args, frame), parserLimits(limits));
    // One closure, not a guard's wrapper around another: there is one per client connection.
    this.#flush = () => scope.call(ClientSession.#writeOut, this, undefined);
    const idleMs = (host.limits.clientIdleTimeoutSeconds ?? 0) * 1000;
    if (idleMs > 0) watchIdle(scope, idleMs, () => (this.#busy() ? null : this.#lastInteraction), () => this.#closeIdle(idleMs));
    // Graceful shutdown: stop reading, let owed replies arrive and be written. A blocked command
    // or a subscription would hold the drain until its deadline and then lose the connection
    // unannounced: they are answered with an error at once, and the client is closed.
    scope.onDrain(() => {
      this.#pauseReading();
      if (!this.#closed) {
        this.#blocker?.close(SHUTTING_DOWN);
        if (this.pubsub !== null) this.replyAndClose(errorReply(SHUTTING_DOWN));
      }
      return this.#whenIdle();
    });
    // Connections of the client's own go with it: Redis forgets a blocked command or a
    // transaction when its connection closes.
    scope.defer(() => {
      this.#transaction?.close();
      this.#blocker?.close();
      host.memory.remove(this);
      host.auth?.remove(this);
    });
  }

  get router(): Router {
    return this.#host.router;
  }

  get budget(): DedicatedBudget {
    return this.#host.dedicated;
  }

  /**
   * Handlers to give the runtime for the accepted connection: one small object whose methods run
   * as `scope.guard` callbacks would (not three wrappers per client: most clients are idle).
   */
  handlers(): ConnHandlers {
    return new ClientSession.#Handlers(this, this.#scope);
  }

  static readonly #Handlers = class implements ConnHandlers {
    constructor(
      readonly session: ClientSession,
      readonly scope: Scope,
    ) {}

    data(chunk: Uint8Array): void {
      this.scope.call(ClientSession.#data, this.session, chunk);
    }

    drain(): void {
      this.scope.call(ClientSession.#drain, this.session, undefined);
    }

    close(): void {
      this.scope.call(ClientSession.#close, this.session, undefined, false);
    }
  };

  static readonly #writeOut = (session: ClientSession) => session.#write();
  static readonly #data = (session: ClientSession, chunk: Uint8Array) => session.#onData(chunk);
  static readonly #drain = (session: ClientSession) => session.#onDrain();
  static readonly #close = (session: ClientSession) => session.#onClose();

  attach(conn: Conn): void {
    this.#conn = conn;
    this.#scope.own("socket", `client ${conn.remoteAddress}:${conn.remotePort}`, () => conn.destroy());
    const keepAliveSeconds = this.#host.limits.tcpKeepAliveSeconds ?? 0;
    if (keepAliveSeconds > 0) conn.setKeepAlive(keepAliveSeconds * 1000);
  }

  get pendingCount(): number {
    return this.#queue.length;
  }

  /** Parts of a split command to send per turn of the event loop. */
  get splitChunkParts(): number {
    return this.#host.limits.splitChunkParts;
  }

  /** Run `step` on a later turn of the event loop, unless the client is gone by then. */
  later(step: () => void): void {
    this.#scope.runtime.defer(this.#scope.guard(step));
  }

  // --- requests -------------------------------------------------------------------------------

  #onData(chunk: Uint8Array): void {
    if (this.#closeWhenFlushed || this.#inputFailed) return;
    this.#lastInteraction = this.#scope.runtime.now();
    if (this.#metrics !== null) this.#metrics.downstreamRxBytes += chunk.length;
    try {
      this.#parser.push(chunk);
      const queryBytes = this.#parser.bufferedBytes + this.#flow.heldBytes;
      if (queryBytes > this.#host.limits.maxQueryBufferBytes) throw new FrameTooBigError(queryBytes, this.#host.limits.maxQueryBufferBytes);
    } catch (error) {
      this.#inputFailed = true;
      // Only malformed input is a protocol error; anything else thrown while running the
      // client's requests is our fault, reported as such.
      if (!(error instanceof ProtocolError)) return this.fault(asError(error));
      if (this.#metrics !== null) this.#metrics.downstreamProtocolErrors++;
      const reply = errorReply(error instanceof FrameTooBigError ? this.#queryBufferFull(error) : error.replyText);
      // After the replies of the requests before it, held ones included.
      if (this.#held.length > 0) this.#held.push(reply);
      else this.replyAndClose(reply);
      this.#host.log.info("client disconnected", { ...this.#logFields(), reason: "protocol error", error: error.message });
    }
    this.#account();
    // A big request arriving: one chunk per turn of the event loop, so that other clients are
    // served between its chunks (a runtime may otherwise hand over megabytes in one go).
    if (this.#parser.bufferedBytes > YIELD_BYTES) this.#yieldReading();
  }

  /** Stop reading until a later turn (unless something else keeps reading paused by then). */
  #yieldReading(): void {
    if (this.#readPaused || this.#yielding || !this.#conn) return;
    this.#yielding = true;
    this.#conn.pause();
    this.later(() => {
      this.#yielding = false;
      if (!this.#readPaused && !this.#closeWhenFlushed) this.#conn?.resume();
    });
  }

  /** The query buffer passed `maxQueryBufferBytes`: logged as Redis does; the client's error text. */
  #queryBufferFull(error: FrameTooBigError): string {
    // What was held for the unfinished request goes now (held requests before it are still run).
    this.#parser.reset();
    this.#limitReached("maxQueryBufferBytes", "Closing client that reached max query buffer length", { bytes: error.bytes, maxBytes: error.limit });
    return `Protocol error: query buffer limit reached (maxQueryBufferBytes ${error.limit})`;
  }

  /**
   * Not idle, as Redis's `timeout` sees it: replies are owed (a blocked command) or ready but not
   * yet written (the write that would count as interaction has not run), or it is subscribed.
   */
  #busy(): boolean {
    return this.#queue.length > 0 || this.#outBytes > 0 || this.#held.length > 0 || this.#delayedAuth !== null || this.pubsub !== null || this.#closeWhenFlushed;
  }

  #closeIdle(idleMs: number): void {
    // Thousands of idle clients may time out together: rate-limited like the other limits.
    const fields = { ...this.#logFields(), reason: "idle", limit: "clientIdleTimeoutSeconds", seconds: idleMs / 1000 };
    if (this.#host.limitLog) this.#host.limitLog.info("clientIdleTimeoutSeconds", "client disconnected", fields);
    else this.#host.log.info("client disconnected", fields);
    // Nothing is owed or queued: nothing is lost by closing at once.
    this.#conn?.destroy();
  }

  /** This client is closed by `limit`: logged with its address, rate-limited per limit. */
  #limitReached(limit: string, message: string, fields: LogFields): void {
    const all = { ...this.#logFields(), limit, ...fields };
    if (this.#host.limitLog) this.#host.limitLog.warn(limit, message, all);
    else this.#host.log.warn(message, all);
  }

  /** The client's `host:port` (undefined before it is attached). */
  get addr(): string | undefined {
    const conn = this.#conn;
    return conn ? `${conn.remoteAddress}:${conn.remotePort}` : undefined;
  }

  #logFields(): Record<string, string | number> {
    const conn = this.#conn;
    return conn ? { id: this.id, addr: `${conn.remoteAddress}:${conn.remotePort}` } : { id: this.id };
  }

  #onRequest(args: Uint8Array[], frame: Uint8Array): void {
    if (this.#closeWhenFlushed) return;
    // One chunk may carry thousands of requests: past the limit they wait here, unsent.
    if (this.#held.length > 0 || !this.#mayRun()) {
      this.#held.push({ args, frame });
      this.#flow.heldBytes += frame.length;
      this.#pauseReading();
      return;
    }
    this.#run(args, frame);
  }

  /** May the next request be sent now (./client-flow.ts), and nothing be overtaken by it? */
  #mayRun(): boolean {
    return !this.#fenced && this.#delayedAuth === null && !this.#queue.isRunningAlone && this.#flow.mayRun(this.#queue.length, this.#outBytes, this.#host.limits.maxPendingRequests);
  }

  #run(args: Uint8Array[], frame: Uint8Array): void {
    // Requests pipelined after QUIT or a protocol error are not executed, as in Redis.
    if (this.#closeWhenFlushed) return;
    const name = this.#host.router.commandName(args[0]!);
    if (this.#delayAuth(name, args, frame)) return;
    const protocol = this.protocol;
    // The reply-queue entry this request makes carries its size until answered.
    this.#runBytes = frame.length;
    const metrics = this.#metrics;
    if (this.#refused(name, args)) {
      // Answered: not authenticated, or no permission (Redis's rejected_calls).
      if (metrics !== null) this.#statsOf(metrics, name).rejected++;
    } else {
      if (metrics !== null) {
        metrics.requests++;
        // Timed from the read of the bytes that carried it; its frame kept for the slow log (a
        // frame is held until answered anyway; arguments are decoded again only for a slow one).
        this.#queue.mark(this.#statsOf(metrics, name), this.#lastInteraction, metrics.slowlog.thresholdUs >= 0 ? frame : null);
      }
      // RESET discards a transaction and its WATCH, as in Redis (pub/sub answers it below), and
      // logs the client out: it is `default` again if that needs no password, else no one.
      if (name === "RESET") {
        this.#endTransaction();
        if (args.length === 1) this.login = (this.#host.auth?.users ?? NO_USERS).initialLogin;
      }
      // A RESP2 client in subscribed mode gets Redis's refusal of a transaction command too: the
      // subscribed context is checked before the command runs, never a WATCH or MULTI opened.
      const refused = this.pubsub !== null && this.protocol === 2 && TRANSACTION_COMMANDS.has(name) && pubsubCommand(this, this.#scope, this.#host, name, args);
      if (!refused && !this.#inTransaction(name, args, frame) && !pubsubCommand(this, this.#scope, this.#host, name, args)) this.#dispatch(name, args, frame);
    }
    this.#runBytes = 0;
    if (metrics !== null) this.#queue.mark(null, 0, null);
    // A reply of its own queued behind earlier ones means requests upstream: those on the other
    // protocol's connections must not be overtaken.
    if (this.protocol !== protocol && this.#queue.length > 0) this.#fenced = true;
    if (this.#queue.length >= this.#flow.cap(this.#host.limits.maxPendingRequests)) this.#pauseReading();
  }

  /**
   * Refuse the command when the client may not run it (./access.ts), answering the error (in a
   * transaction, which then fails). A client allowed everything costs one property read.
   */
  #refused(name: string, args: Uint8Array[]): boolean {
    const login = this.login;
    if (login !== null && login.user.permissions.unrestricted) return false;
    const refused = refusal(login, this.#commandInfo(name, args), name, args);
    if (refused === null) return false;
    if (this.#transaction !== null) this.#transaction.refuse(refused);
    else this.reply(refused);
    return true;
  }

  #commandInfo(name: string, args: Uint8Array[]): CommandInfo | null {
    // The router's table knows what the upstreams taught it; test routers may have none.
    const table = this.#host.router.commands as Router["commands"] | undefined;
    return table ? table.lookup(name, args) : commandInfo(name, args);
  }

  /**
   * After repeated failures from the client's address, an AUTH waits (../../acl/throttle.ts)
   * before its password is checked, and nothing the client sends after it runs before it does:
   * pipelining attempts gains nothing. True when the request was put aside.
   */
  #delayAuth(name: string, args: Uint8Array[], frame: Uint8Array): boolean {
    const auth = this.#host.auth;
    if (auth === undefined || !isAuthAttempt(name, args)) return false;
    if (this.#authDelayOver) {
      this.#authDelayOver = false;
      return false;
    }
    const delayMs = auth.throttle.delayFor(this.#conn?.remoteAddress ?? "");
    if (delayMs <= 0) return false;
    this.#delayedAuth = { args, frame };
    this.#pauseReading();
    this.#scope.timer("delayed AUTH", delayMs, () => {
      const delayed = this.#delayedAuth!;
      this.#delayedAuth = null;
      this.#authDelayOver = true;
      this.#run(delayed.args, delayed.frame);
      this.#authDelayOver = false;
      this.#runHeld();
      this.#maybeResume();
    });
    return true;
  }

  /** Whether authentication is required (LocalContext). */
  get authRequired(): boolean {
    return (this.#host.auth?.users ?? NO_USERS).required;
  }

  /** The users in force (LocalContext: ACL LIST). */
  users(): Users {
    return this.#host.auth?.users ?? NO_USERS;
  }

  /**
   * Check a user name (null: AUTH's one-argument form, the user `default`) and password; on
   * success the client is logged in as that user. A failure is counted against the client's
   * address and logged, without the password. Returns the error to answer, or null.
   */
  authenticate(user: string | null, password: Uint8Array): Uint8Array | null {
    const name = user ?? "default";
    const login = this.users().authenticate(name, password);
    if (login !== null) {
      this.login = login;
      return null;
    }
    this.#host.auth?.throttle.failed(this.#conn?.remoteAddress ?? "");
    this.#host.log.warn("AUTH failed", { ...this.#logFields(), user: name.slice(0, 128) });
    return WRONGPASS;
  }

  relogin(login: Login): void {
    this.login = login;
  }

  revoke(reason: string): void {
    this.#host.log.info("client disconnected", { ...this.#logFields(), reason });
    this.#conn?.destroy();
  }

  /** The size of the request being run, for the one queue entry that answers it. */
  #takeRunBytes(): number {
    const bytes = this.#runBytes;
    this.#runBytes = 0;
    return bytes;
  }

  /** Answer locally, or route upstream. */
  #dispatch(name: string, args: Uint8Array[], frame: Uint8Array): void {
    const local = localHandler(name);
    if (local) local(this, args);
    else this.#host.router.route(this, name, args, frame);
  }

  #endTransaction(): void {
    this.#transaction?.close();
    this.#transaction = null;
  }

  /** Give the command to the open transaction (or to a new one it opens); true when taken. */
  #inTransaction(name: string, args: Uint8Array[], frame: Uint8Array): boolean {
    if (this.#transaction === null) {
      if (!TRANSACTION_COMMANDS.has(name)) return false;
      this.#transaction = new Transaction(this);
    }
    return this.#transaction.command(name, args, frame);
  }

  transactionEnded(): void {
    this.#transaction = null;
  }

  /** Run a blocking command on the client's own connection, alone. */
  block(target: Target): void {
    const request = new UpstreamRequest(target.frame, target.shard, this, this.id);
    request.blocking = true;
    request.resp3 = this.protocol === 3;
    this.runAlone(request, () => (this.#blocker ??= new Blocker(this)).run(target, request));
  }

  /**
   * Queue `pending` now, in order, but `start` it only once every earlier reply is in; requests
   * read after it are held until its reply is in.
   */
  runAlone(pending: Pending, start: () => void): void {
    this.#queue.runAlone(pending, start, this.#takeRunBytes());
  }

  /** Run held requests while the client may send more (`#mayRun`). */
  #runHeld(): void {
    if (this.#fenced && this.#queue.length === 0) this.#fenced = false;
    while (this.#held.length > 0 && !this.#closeWhenFlushed && !this.#closed && this.#mayRun()) {
      const held = this.#held.shift()!;
      if (held instanceof Uint8Array) this.replyAndClose(held);
      else {
        this.#flow.heldBytes -= held.frame.length;
        this.#run(held.args, held.frame);
      }
    }
  }

  /** Queue a request sent upstream; its reply comes back through `deliver`. */
  expect(pending: Pending): void {
    this.#queue.push(pending, this.#takeRunBytes());
  }

  // --- replies --------------------------------------------------------------------------------

  reply(frame: Uint8Array): void {
    this.#queue.push(immediate(frame), this.#takeRunBytes());
    this.#flow.queuedBytes += frame.length;
    this.complete();
  }

  /**
   * A pub/sub message: written now when no reply is owed, else right after the owed replies, so
   * that a RESP2 client never reads it in place of one. Messages held that way past
   * `maxClientOutputBytes` disconnect the client, as Redis's pubsub output buffer limit does.
   */
  push(frame: Uint8Array): void {
    if (this.#closed || this.#closeWhenFlushed) return;
    if (this.#queue.length > 0 && (this.#pushBacklog += frame.length) > this.#host.limits.maxClientOutputBytes) {
      this.#limitReached("maxClientOutputBytes", "client output buffer limit reached by messages: closing the client", { bytes: this.#pushBacklog });
      this.#conn?.destroy();
      return;
    }
    this.reply(frame);
  }

  replyAndClose(frame: Uint8Array): void {
    this.reply(frame);
    this.#closeWhenFlushed = true;
    this.#pauseReading();
  }

  info(): string {
    return this.#host.info();
  }

  connectionInfo(): ConnectionInfo {
    const conn = this.#conn;
    const now = this.#scope.runtime.now();
    return {
      remoteAddress: conn?.remoteAddress ?? "",
      remotePort: conn?.remotePort ?? 0,
      localAddress: this.#host.listenHost,
      localPort: conn?.localPort ?? 0,
      ageMs: now - this.#connectedAt,
      idleMs: now - this.#lastInteraction,
    };
  }

  deliver(request: UpstreamRequest, reply: Uint8Array): void {
    // A second reply would be written in place of a later request's: the stream is corrupt.
    if (request.reply !== null) return this.fault(new InvariantError("a request was answered twice"));
    request.reply = reply;
    this.#flow.queuedBytes += reply.length;
    this.complete();
  }

  deliveryFailed(_request: UpstreamRequest, error: unknown): void {
    this.fault(asError(error));
  }

  /** A split command now holds `bytes` more (or fewer) bytes of part replies for this client. */
  holding(bytes: number): void {
    this.#flow.splitBytes += bytes;
    this.#account();
  }

  /**
   * Disconnected by the clients' memory budget (which logged why): the connection is dropped at
   * once and every buffer with it. Replies still arriving are dropped.
   */
  evict(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeWhenFlushed = true;
    this.#inputFailed = true;
    this.#held.drain();
    this.#out = [];
    this.#outBytes = 0;
    this.#conn?.destroy();
    // Not now: the parser may be running this very call (a request that pushed us over).
    this.#scope.runtime.defer(() => this.#parser.reset());
  }

  /** Report what the client holds to the clients' memory budget. */
  #account(): void {
    if (this.#closed) return;
    this.#host.memory.set(this, this.#flow.bytes(this.#parser.bufferedBytes, this.#queue.requestBytes, this.#outBytes));
  }

  /**
   * An internal fault while serving this client (a broken invariant, an exception from our own
   * code): it gets one internal error, is closed, and the fault is logged once with its stack.
   * Nothing escapes to the caller, which may be a shared upstream connection.
   */
  fault(error: Error): void {
    if (this.#faulted) return;
    this.#faulted = true;
    this.#host.log.error("internal error: closing the client", { id: this.id, ...withStack(error) });
    const conn = this.#conn;
    this.#closeWhenFlushed = true;
    this.#pauseReading();
    if (conn && !this.#closed) {
      // Replies still owed are never written: after a broken invariant they cannot be trusted.
      conn.write(internalError(error));
      this.#end(conn);
    }
    // Nothing more is written: replies still arriving are dropped.
    this.#closed = true;
  }

  /**
   * Move every reply that is ready, in order, from the queue to the output. `completed` is an
   * entry whose reply was set by its owner (a merged fan-out, a SCAN page), not by `deliver`.
   */
  complete(completed?: Pending): void {
    if (this.#closed) return;
    if (completed?.reply) this.#flow.queuedBytes += completed.reply.length;
    const bytes = this.#queue.takeReady(this.#out);
    if (bytes > 0) {
      this.#flow.queuedBytes -= bytes;
      this.#outBytes += bytes;
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        this.#scope.runtime.defer(this.#flush);
      }
    }
    this.#account();
  }

  #write(gathered = false): void {
    this.#flushScheduled = false;
    this.#runHeld();
    const conn = this.#conn;
    if (!conn || this.#closed) return;
    if (this.#outBytes > 0 && conn.nagle === true && !gathered && this.#queue.length > 0) {
      // More replies of this pipeline are owed: send them all at once, or these in GATHER_MS.
      this.#gathering ??= this.#scope.timer("gather replies", GATHER_MS, () => {
        this.#gathering = null;
        this.#write(true);
      });
      return;
    }
    this.#gathering?.cancel();
    this.#gathering = null;
    if (this.#outBytes > 0 && this.#outBytes < COALESCE_BYTES && this.#queue.length > 0 && !this.#waitedTurn && !gathered) {
      this.#waitedTurn = true;
      this.#flushScheduled = true;
      this.#scope.runtime.defer(this.#flush);
      return;
    }
    this.#waitedTurn = false;
    if (this.#outBytes > 0) {
      const replies = this.#out.length;
      const chunk = concatBytes(this.#out, this.#outBytes);
      this.#out = [];
      this.#outBytes = 0;
      const belowHighWater = conn.write(chunk);
      // Redis counts bytes sent as interaction too (CLIENT INFO's idle, and `timeout`).
      this.#lastInteraction = this.#scope.runtime.now();
      if (this.#timings !== null) this.#timeAnswered(this.#lastInteraction, chunk.length);
      this.#flow.socketBytes = conn.bufferedBytes;
      if (conn.bufferedBytes > this.#host.limits.maxClientOutputBytes) {
        this.#limitReached("maxClientOutputBytes", "client output buffer limit reached: closing the client", { bytes: conn.bufferedBytes });
        conn.destroy();
        return;
      }
      if (!belowHighWater) {
        this.#outputBlocked = true;
        this.#pauseReading();
      }
      if (this.#flow.adjust(0, this.#host.limits.maxPendingRequests, replies)) this.#runHeld();
      this.#account();
    }
    if (this.#queue.length === 0) {
      this.#pushBacklog = 0;
      if (this.#closeWhenFlushed) {
        this.#end(conn);
        return;
      }
      this.#wakeIdle();
    }
    this.#maybeResume();
  }

  /** The stats entry of an upper-case command name (the last one's again without a lookup). */
  #statsOf(metrics: ProxyMetrics, name: string): CommandStats {
    if (name !== this.#lastName || this.#lastStat === null) {
      this.#lastName = name;
      this.#lastStat = metrics.command(name);
    }
    return this.#lastStat;
  }

  /**
   * The replies of the answered requests in `#timings` were just written, at `now`: each
   * request's time through slotgate goes to its command's stats, and to the slow log when over
   * its threshold.
   */
  #timeAnswered(now: number, bytes: number): void {
    const metrics = this.#metrics!;
    const timings = this.#timings!;
    metrics.downstreamTxBytes += bytes;
    timings.recordAnswered(now);
    // Read times only grow along the ring: when the oldest answered request is not slow, none is.
    const slowlog = metrics.slowlog;
    if (timings.answered > 0 && slowlog.wants((now - timings.start(0)) * 1000)) {
      for (let k = 0; k < timings.answered; k++) {
        const usec = (now - timings.start(k)) * 1000;
        const frame = timings.frame(k);
        if (frame !== null && timings.stat(k) !== null && slowlog.wants(usec)) this.#logSlow(slowlog, Math.round(usec), frame, timings.pending(k)!);
      }
    }
    timings.release();
  }

  #logSlow(slowlog: Slowlog, durationUs: number, frame: Uint8Array, pending: Pending): void {
    const args = decode(frame) as Uint8Array[];
    // The node that answered; "" for a reply the proxy made, "*" for one merged from several nodes.
    const node = pending instanceof UpstreamRequest ? (pending.node ?? "") : Object.getPrototypeOf(pending) === Object.prototype ? "" : "*";
    slowlog.add(Math.floor(this.#scope.runtime.wallClock() / 1000), durationUs, args, this.addr ?? "", this.clientName ?? "", node);
  }

  /** The proxy's slow log (LocalContext: SLOWLOG); null when metrics are off. */
  slowlog(): Slowlog | null {
    return this.#metrics?.slowlog ?? null;
  }

  /** Blocked on a command of its own connection (INFO's blocked_clients). */
  get isBlocked(): boolean {
    return this.#blocker !== null && this.#queue.isRunningAlone;
  }

  /** Close for good once the last reply has left (./closing.ts); once. */
  #end(conn: Conn): void {
    if (this.#ending) return;
    this.#ending = true;
    closeAfterFlush(this.#scope, conn);
  }

  #onDrain(): void {
    this.#outputBlocked = false;
    this.#flow.socketBytes = this.#conn?.bufferedBytes ?? 0;
    this.#flow.adjust(this.#outBytes, this.#host.limits.maxPendingRequests);
    // The client read what it was owed: what waited for that may go now.
    this.#runHeld();
    this.#account();
    this.#maybeResume();
  }

  #pauseReading(): void {
    if (this.#readPaused) return;
    this.#readPaused = true;
    this.#conn?.pause();
  }

  #maybeResume(): void {
    if (!this.#readPaused || this.#closeWhenFlushed || !this.#scope.isOpen) return;
    const conn = this.#conn;
    // Not `bufferedBytes > 0`: adapters that write asynchronously (Deno) or partially (Bun) hold
    // bytes below the high-water mark with no `drain` to follow, and reading would never resume.
    if (!conn || this.#outputBlocked || this.#held.length > 0 || this.#delayedAuth !== null) return;
    if (this.#queue.length > this.#flow.cap(this.#host.limits.maxPendingRequests) / 2) return;
    if (this.#flow.owed(this.#outBytes) >= this.#host.limits.maxClientOwedBytes) return;
    this.#readPaused = false;
    conn.resume();
  }

  #whenIdle(): Promise<void> {
    if (this.#closed || (this.#queue.length === 0 && this.#held.length === 0 && this.#delayedAuth === null && this.#outBytes === 0)) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #wakeIdle(): void {
    const waiters = this.#idleWaiters;
    if (waiters.length === 0) return;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }

  #onClose(): void {
    this.#closed = true;
    this.#conn = null;
    this.#host.memory.remove(this);
    this.#wakeIdle();
    // Requests still upstream will deliver into a closed session; their replies are dropped.
    this.#scope.close().catch(() => {});
  }
}
