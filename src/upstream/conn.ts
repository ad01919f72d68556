/**
 * One pipelined connection to a Redis node, shared by many clients. Requests are written in
 * batches (one write per turn of the event loop) and matched to replies in FIFO order; replies
 * are relayed as raw RESP frames, never decoded. A request that outlives `opTimeoutMs` fails with
 * a timeout and takes the connection down with it: its late replies would otherwise be handed
 * to the requests behind it.
 *
 * A timed-out request's client is told the command may have been applied (it was written; only
 * its reply is missing), and so are the requests behind it on the connection.
 *
 * A connection may open with a prelude (`AUTH` when the backend has credentials, `HELLO 3` for
 * RESP3 clients — `HELLO 3 AUTH user pass` when both —, `READONLY` on a replica), queued ahead of
 * everything else; a prelude that fails takes the connection down. Refused credentials fail it
 * with `cause` "auth", the client-facing `upstream authentication failed for cluster 'NAME'`, and
 * the server's own words in `authDetail` (for the log; never relayed, never holding the password). RESP3 push
 * frames (`>`) are never matched to requests: they go to `events.push`. A subscriber connection
 * matches nothing at all: every frame it reads is handed to `events.push`.
 *
 * Back-pressure is honoured: once a write finds the socket over its high-water mark, requests
 * wait in the connection's own queue until `drain`. `queuedBytes` says how much waits, so that
 * the node can refuse requests past its bound (./node.ts) instead of queueing without end.
 */
import type { Conn } from "../runtime.ts";
import type { Scope, ScopedTimer } from "../scope/scope.ts";
import { connect } from "../scope/io.ts";
import { withTimeout } from "../scope/time.ts";
import { causeOf } from "../errors.ts";
import { Fifo } from "../util/fifo.ts";
import { NO_READER, UpstreamRequest, deliverIsolated, faultIsolated, type ReplySink } from "../backend/request.ts";
import { Unavailable, type DedicatedConn } from "../backend/contract.ts";
import { authArgs, authRefusal, type UpstreamAuth } from "../backend/auth.ts";
import { faults } from "../testing/faults.ts";
import { ReplyReader } from "../resp/reply-reader.ts";
import { errorReply, ASKING_COMMAND } from "../resp/replies.ts";
import { concatBytes, encodeCommand } from "../resp/encode.ts";
import { MINUS, PUSH } from "../resp/bytes.ts";
import { connectTls, type UpstreamTls } from "./tls.ts";
import { UNCOUNTED, type NodeStats } from "../metrics/upstream.ts";

/** What a connection reports to the node that owns it. */
export interface UpstreamEvents {
  /** A reply arrived for `request` (the node decides about redirects). */
  reply(request: UpstreamRequest, frame: Uint8Array): void;
  /** The connection is gone; `reason` says why (already used to fail its pending requests). */
  lost(conn: UpstreamConn, reason: string, wasOpen: boolean): void;
  /** A RESP3 push frame, or any frame on a subscriber connection. Dropped when absent. */
  push?(frame: Uint8Array): void;
  /** A request got no reply within `opTimeoutMs` (the connection is reset right after). */
  timedOut?(conn: UpstreamConn): void;
}

export interface UpstreamConnOptions {
  host: string;
  port: number;
  opTimeoutMs: number;
  connectTimeoutMs: number;
  maxBulkBytes: number;
  /** 3: say `HELLO 3` first, so replies come in RESP3 (default 2: Redis's default). */
  protocol?: 2 | 3;
  /** Say `READONLY` first (a replica serving reads). */
  readOnly?: boolean;
  /** A pub/sub connection: frames are not replies to requests, all go to `events.push`. */
  subscriber?: boolean;
  /** Why work offered once the owning node began closing is refused (default: "shutting down"). */
  closing?: () => Unavailable;
  /** TCP keepalive idle time once connected, in seconds (0 or absent: off). */
  tcpKeepAliveSeconds?: number;
  /** Credentials said before anything else (absent: none). */
  auth?: UpstreamAuth;
  /** The backend the connection serves, named in an authentication failure. */
  cluster?: string;
  /** Speak TLS to the node (every connection of a TLS cluster does). */
  tls?: UpstreamTls;
  /** The hostname the node announced, checked against its TLS certificate unless one is configured. */
  hostname?: string;
  /** Where the connection counts connects, requests, timeouts and bytes (absent: nowhere). */
  stats?: NodeStats;
}


const HELLO_3 = encodeCommand(["HELLO", "3"]);
const READONLY = encodeCommand(["READONLY"]);
/** `part` of the requests a connection makes for itself. */
const INTERNAL = -1;

export class UpstreamConn implements DedicatedConn {
  readonly #scope: Scope;
  readonly #stats: NodeStats;
  readonly #options: UpstreamConnOptions;
  readonly #events: UpstreamEvents;
  readonly #pending = new Fifo<UpstreamRequest>();
  readonly #reader: ReplyReader;
  #conn: Conn | null = null;
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  /** The socket is over its high-water mark: nothing more is written until `drain`. */
  #blocked = false;
  #timer: ScopedTimer | null = null;
  #dead = false;
  #wasOpen = false;
  /** Why it failed, in one word for log lines (`ECONNREFUSED`, `timeout`, `auth`...); null while alive. */
  cause: string | null = null;
  /** The server's error text when it refused the credentials (cause "auth"), else null. */
  authDetail: string | null = null;
  /** Aborts a connect still pending when the connection fails (a timeout while connecting). */
  readonly #connecting = new AbortController();
  #idleWaiters: (() => void)[] = [];
  readonly #flush: () => void;
  readonly #onTimer: () => void;

  constructor(scope: Scope, options: UpstreamConnOptions, events: UpstreamEvents) {
    this.#scope = scope;
    this.#options = options;
    this.#stats = options.stats ?? UNCOUNTED;
    this.#events = events;
    this.#reader = new ReplyReader((frame) => this.#onReply(frame), {
      maxBulkBytes: options.maxBulkBytes,
      maxArrayLength: Number.MAX_SAFE_INTEGER,
    });
    this.#flush = scope.guard(() => this.#write());
    this.#onTimer = () => this.#checkTimeout();
    // Credentials first: until they are accepted, Redis answers every other command -NOAUTH.
    if (options.auth) this.#authenticate(options.auth, options.protocol ?? 2);
    else if (options.protocol === 3) this.#command(HELLO_3, "HELLO 3");
    if (options.readOnly) this.#command(READONLY, "READONLY");
    scope.spawn(`connect ${options.host}:${options.port}`, () => this.#open());
  }

  /** Requests written and not yet answered (ASKING placeholders included). */
  get pendingCount(): number {
    return this.#pending.length;
  }

  get isDead(): boolean {
    return this.#dead;
  }

  /** Bytes queued and not yet sent: waiting here, and unsent in the socket. */
  get queuedBytes(): number {
    return this.#outBytes + (this.#conn?.bufferedBytes ?? 0);
  }

  /** Resolves once no request is pending (at once if none is), or when the connection dies. */
  whenIdle(): Promise<void> {
    if (this.#pending.length === 0 || this.#dead) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Queue a request; it is written with the others at the end of this turn. Refused, as a value
   * and without answering the request, when the connection is gone or its node began closing:
   * work offered to a closing scope must never become an exception in the caller (which may be
   * delivering another request's reply on a connection shared by every client).
   */
  send(request: UpstreamRequest): Unavailable | null {
    if (this.#dead) return new Unavailable("closing", `upstream connection to ${this.#address()} is closed`);
    if (!this.#scope.isOpen && !faults.leakClosingScope) return this.#options.closing?.() ?? new Unavailable("closing", `upstream ${this.#address()} is shutting down`);
    const deadline = request.blocking ? Number.POSITIVE_INFINITY : this.#scope.runtime.now() + this.#options.opTimeoutMs;
    // Takes the `+OK` that answers an `ASKING`: nothing waits for it.
    if (request.asking) this.#push(new UpstreamRequest(ASKING_COMMAND, request.slot, NO_READER, 0, INTERNAL), deadline);
    this.#push(request, deadline);
    this.#stats.rqTotal++;
    this.#timer ??= this.#scope.timer("op timeout", this.#options.opTimeoutMs, this.#onTimer);
    return null;
  }

  /** Write `frame` with no reply expected (subscriber connections: their replies are pushes). */
  write(frame: Uint8Array): void {
    if (!this.#dead) this.#enqueue(frame);
  }

  /** Queue a command whose error fails the connection and whose success is dropped. */
  /**
   * Queue `frame` ahead of everything else; an error reply to it fails the connection through
   * `refused` (given Redis's error text). Failures the connection makes up itself (lost, timed
   * out) are not refusals: the connection is already failing with its own reason.
   */
  #prelude(frame: Uint8Array, refused: (error: string) => void): void {
    const sink: ReplySink = {
      deliver: (_request, reply) => {
        if (reply[0] === MINUS && !this.#dead) refused(new TextDecoder().decode(reply.subarray(1, reply.length - 2)));
      },
      deliveryFailed: () => {},
    };
    this.#push(new UpstreamRequest(frame, 0, sink, 0, INTERNAL), this.#scope.runtime.now() + this.#options.connectTimeoutMs + this.#options.opTimeoutMs);
  }

  /** A prelude Redis may refuse, e.g. `READONLY`: the connection fails saying so. */
  #command(frame: Uint8Array, what: string): void {
    this.#prelude(frame, (error) => this.fail(`upstream ${this.#address()} refused ${what}: ${error}`));
  }

  /** `AUTH`, or `HELLO 3 AUTH` in one command; a refusal fails the connection with cause "auth". */
  #authenticate(auth: UpstreamAuth, protocol: 2 | 3): void {
    this.#prelude(encodeCommand(authArgs(auth, protocol)), (error) => {
      // Redis's words (WRONGPASS, NOAUTH...) go to the log; the client reads slotgate's own.
      this.authDetail = error;
      this.fail(authRefusal(this.#options.cluster, this.#address()).message, "auth");
    });
    // A connection that only writes (a subscriber's) sends no request to arm the timer: a node
    // that never answers AUTH must not hold it forever.
    this.#timer ??= this.#scope.timer("op timeout", this.#options.opTimeoutMs, this.#onTimer);
  }

  #push(request: UpstreamRequest, deadline: number): void {
    request.deadline = deadline;
    this.#enqueue(request.frame);
    this.#pending.push(request);
  }

  /** Close the socket and fail every pending request with `reason` (`cause`: see `cause`). Idempotent. */
  fail(reason: string, cause = "closed"): void {
    if (this.#dead) return;
    this.#dead = true;
    this.cause = cause;
    if (this.#wasOpen) this.#stats.cxActive--;
    this.#timer?.cancel();
    this.#timer = null;
    this.#connecting.abort();
    this.#conn?.destroy();
    this.#conn = null;
    this.#out = [];
    const reply = errorReply(reason);
    for (const request of this.#pending.drain()) deliverIsolated(request, reply);
    this.#wakeIdle();
    this.#events.lost(this, reason, this.#wasOpen);
  }

  async #open(): Promise<void> {
    const { host, port, connectTimeoutMs } = this.#options;
    try {
      this.#conn = await withTimeout(this.#scope, `connect to ${host}:${port}`, connectTimeoutMs, async (timeout) =>
        connect(this.#scope, { host, port, signal: AbortSignal.any([timeout, this.#connecting.signal]), tls: await connectTls(this.#options.tls, this.#options.hostname) }, {
          data: (chunk) => this.#onData(chunk),
          drain: () => this.#onDrain(),
          close: (error) => this.fail(`upstream connection to ${this.#address()} lost${error ? `: ${error.message}` : ""}`, error ? causeOf(error) : "closed"),
        }),
      );
    } catch (error) {
      // Cancelled by the node's teardown: its requests get the owner's reason ("cluster 'b' was
      // removed"), not the cancellation's wording.
      if (!this.#scope.isOpen) this.fail((this.#options.closing?.() ?? new Unavailable("closing", `upstream ${this.#address()} is shutting down`)).message, "closed");
      else {
        this.#stats.cxConnectFail++;
        this.fail(`upstream ${this.#address()} unreachable: ${error instanceof Error ? error.message : String(error)}`, causeOf(error));
      }
      return;
    }
    this.#wasOpen = true;
    // A connection that failed while its connect was settling was never counted open.
    if (!this.#dead) {
      this.#stats.cxTotal++;
      this.#stats.cxActive++;
    }
    const keepAliveSeconds = this.#options.tcpKeepAliveSeconds ?? 0;
    if (keepAliveSeconds > 0) this.#conn.setKeepAlive(keepAliveSeconds * 1000);
    if (this.#outBytes > 0) this.#schedule();
  }

  #wakeIdle(): void {
    if (this.#idleWaiters.length === 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }

  #enqueue(bytes: Uint8Array): void {
    this.#out.push(bytes);
    this.#outBytes += bytes.length;
    if (this.#conn) this.#schedule();
  }

  #schedule(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    this.#scope.runtime.defer(this.#flush);
  }

  #write(): void {
    this.#flushScheduled = false;
    const conn = this.#conn;
    if (!conn || this.#outBytes === 0 || this.#blocked) return;
    this.#stats.txBytes += this.#outBytes;
    const belowHighWater = conn.write(concatBytes(this.#out, this.#outBytes));
    this.#out = [];
    this.#outBytes = 0;
    // The node is not reading as fast as we write: keep the rest here until it drains.
    if (!belowHighWater) this.#blocked = true;
  }

  #onDrain(): void {
    this.#blocked = false;
    if (this.#outBytes > 0) this.#schedule();
  }

  #onData(chunk: Uint8Array): void {
    this.#stats.rxBytes += chunk.length;
    try {
      this.#reader.push(chunk);
    } catch (error) {
      this.fail(`protocol error from ${this.#address()}: ${error instanceof Error ? error.message : String(error)}`, "protocol");
    }
  }

  #onReply(frame: Uint8Array): void {
    // A subscriber's prelude (AUTH) is answered before any push: it is the one thing it awaits.
    if (frame[0] === PUSH || (this.#options.subscriber && this.#pending.peek()?.part !== INTERNAL)) {
      this.#events.push?.(frame);
      return;
    }
    const request = this.#pending.shift();
    if (request === undefined) {
      this.fail(`unexpected reply from ${this.#address()}`, "protocol");
      return;
    }
    // The connection's own commands (ASKING, a prelude) are answered to their sink directly.
    // Whatever a reply sets off downstream is its client's business: an exception there is that
    // client's fault, never this connection's, which serves every client.
    try {
      if (request.part === INTERNAL) request.sink.deliver(request, frame);
      else this.#events.reply(request, frame);
    } catch (error) {
      if (faults.leakClosingScope) throw error; // test-only fault
      faultIsolated(request, error);
    }
    if (this.#pending.length === 0) this.#wakeIdle();
  }

  #checkTimeout(): void {
    this.#timer = null;
    const head = this.#pending.peek();
    if (!head) return;
    // A blocked command waits as long as Redis makes it wait.
    if (head.deadline === Number.POSITIVE_INFINITY) return;
    const now = this.#scope.runtime.now();
    if (now >= head.deadline) {
      this.#pending.shift();
      if (head.part !== INTERNAL) this.#stats.rqTimeout++;
      const within = `within ${this.#options.opTimeoutMs} ms`;
      this.#events.timedOut?.(this);
      // The connection's own command (a prelude, an ASKING) has no client to tell; a prelude's
      // sink would take the timeout for a refusal and fail the connection in its own words
      // ("refused HELLO 3: ERR ... did not answer"), ahead of the reason below.
      const tell = head.part !== INTERNAL;
      if (!this.#wasOpen) {
        // Still connecting: nothing was sent, so a retry is safe.
        if (tell) deliverIsolated(head, errorReply(`upstream ${this.#address()} did not accept a connection ${within}: command not sent`));
        this.fail(`upstream ${this.#address()} did not accept a connection ${within}: command not sent`, "timeout");
        return;
      }
      // It was written: Redis may have run it and only its reply is missing. Say so, or a client
      // would take it for a failed write and retry a command that is not idempotent.
      if (tell) deliverIsolated(head, errorReply(`upstream ${this.#address()} did not answer ${within}: the command may have been applied`));
      this.fail(`upstream connection to ${this.#address()} reset after a timed-out request: the command may have been applied`, "timeout");
      return;
    }
    this.#timer = this.#scope.timer("op timeout", head.deadline - now, this.#onTimer);
  }

  #address(): string {
    return `${this.#options.host}:${this.#options.port}`;
  }
}
