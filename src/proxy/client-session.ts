/**
 * One client connection: parses its requests, routes each to the cluster (or answers it
 * locally), and writes the replies back in request order, batched into one write per turn of the
 * event loop. Memory per client is bounded: at most `maxPendingRequests` requests are unanswered
 * (the rest of a chunk's requests are held, unsent, and run as replies come back), reading pauses
 * while requests are held or the socket's send buffer is over its high-water mark, and a client
 * whose unread replies pass `maxClientOutputBytes` is disconnected. Malformed input gets
 * `-ERR Protocol error: ...` after the replies already owed, then the connection closes.
 * Subscriptions and their messages are the business of ./pubsub.ts.
 */
import type { Conn, ConnHandlers } from "../runtime.ts";
import type { Scope } from "../scope.ts";
import { Fifo } from "../fifo.ts";
import { UpstreamRequest, type Pending, type ReplySink } from "./request.ts";
import { SplitCommand, type SplitOwner } from "./split.ts";
import { localHandler, type LocalContext } from "./local-commands.ts";
import { pubsubCommand, type PubSub, type PubSubClient } from "./pubsub.ts";
import { RequestParser } from "../resp/request-parser.ts";
import { errorReply } from "../resp/replies.ts";
import { concatBytes } from "../resp/encode.ts";
import type { Router } from "./router.ts";
import type { Logger } from "../log.ts";

export interface ClientLimits {
  maxBulkBytes: number;
  maxArrayLength: number;
  /** Unanswered requests after which reading pauses (resumes at half). */
  maxPendingRequests: number;
  /** Replies written but not yet read by the client, in bytes, before it is disconnected. */
  maxClientOutputBytes: number;
}

/** Services a session needs from the server that accepted it. */
export interface SessionHost {
  readonly router: Router;
  readonly limits: ClientLimits;
  readonly log: Logger;
  info(): string;
}

const immediate = (reply: Uint8Array): Pending => ({ reply });

/** A request read while `maxPendingRequests` were unanswered, or the protocol error that ended the input. */
type Held = { args: Uint8Array[]; frame: Uint8Array } | Uint8Array;

export class ClientSession implements ReplySink, SplitOwner, LocalContext, PubSubClient {
  clientName: string | null = null;
  /** The protocol `HELLO` chose: 2 (Redis's default) or 3. */
  protocol: 2 | 3 = 2;
  /** Pub/sub state, from the first subscribe until the client is subscribed to nothing. */
  pubsub: PubSub | null = null;
  /** Bytes of messages queued behind owed replies since the queue was last empty. */
  #pushBacklog = 0;
  readonly #scope: Scope;
  readonly #host: SessionHost;
  readonly #parser: RequestParser;
  readonly #queue = new Fifo<Pending>();
  /** Requests parsed but not run yet, because `maxPendingRequests` were unanswered; in order. */
  readonly #held = new Fifo<Held>();
  /** The input was malformed: nothing more is read. */
  #inputFailed = false;
  #conn: Conn | null = null;
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  #readPaused = false;
  /** A write returned false (over the high-water mark) and no `drain` has followed yet. */
  #outputBlocked = false;
  /** Set by QUIT or a protocol error: no more requests; close once the queue is written. */
  #closeWhenFlushed = false;
  #closed = false;
  #idleWaiters: (() => void)[] = [];
  readonly #flush: () => void;

  constructor(scope: Scope, readonly id: number, host: SessionHost) {
    this.#scope = scope;
    this.#host = host;
    this.#parser = new RequestParser((args, frame) => this.#onRequest(args, frame), host.limits);
    this.#flush = scope.guard(() => this.#write());
    // Graceful shutdown: stop reading, let owed replies arrive and be written.
    scope.onDrain(() => {
      this.#pauseReading();
      return this.#whenIdle();
    });
  }

  /** Handlers to give the runtime for the accepted connection. */
  handlers(): ConnHandlers {
    return {
      data: this.#scope.guard((chunk: Uint8Array) => this.#onData(chunk)),
      drain: this.#scope.guard(() => this.#onDrain()),
      close: this.#scope.guard(() => this.#onClose(), false),
    };
  }

  attach(conn: Conn): void {
    this.#conn = conn;
    this.#scope.own("socket", `client ${conn.remoteAddress}:${conn.remotePort}`, () => conn.destroy());
  }

  get pendingCount(): number {
    return this.#queue.length;
  }

  // --- requests -------------------------------------------------------------------------------

  #onData(chunk: Uint8Array): void {
    if (this.#closeWhenFlushed || this.#inputFailed) return;
    try {
      this.#parser.push(chunk);
    } catch (error) {
      this.#inputFailed = true;
      const reply = errorReply(`Protocol error: ${error instanceof Error ? error.message : String(error)}`);
      // After the replies of the requests before it, held ones included.
      if (this.#held.length > 0) this.#held.push(reply);
      else this.replyAndClose(reply);
      this.#host.log.debug("client protocol error", { id: this.id, error: String(error) });
    }
  }

  #onRequest(args: Uint8Array[], frame: Uint8Array): void {
    if (this.#closeWhenFlushed) return;
    // One chunk may carry thousands of requests: past the limit they wait here, unsent.
    if (this.#held.length > 0 || this.#queue.length >= this.#host.limits.maxPendingRequests) {
      this.#held.push({ args, frame });
      this.#pauseReading();
      return;
    }
    this.#run(args, frame);
  }

  #run(args: Uint8Array[], frame: Uint8Array): void {
    // Requests pipelined after QUIT or a protocol error are not executed, as in Redis.
    if (this.#closeWhenFlushed) return;
    const name = this.#host.router.commandName(args[0]!);
    const local = localHandler(name);
    if (pubsubCommand(this, this.#scope, this.#host, name, args)) {
      // A (un)subscribe or RESET, or PING or a refusal in RESP2 subscribed mode: answered.
    } else if (local) {
      local(this, args);
    } else {
      this.#host.router.route(this, name, args, frame);
    }
    if (this.#queue.length >= this.#host.limits.maxPendingRequests) this.#pauseReading();
  }

  /** Run held requests while fewer than `maxPendingRequests` are unanswered. */
  #runHeld(): void {
    const max = this.#host.limits.maxPendingRequests;
    while (this.#held.length > 0 && this.#queue.length < max && !this.#closeWhenFlushed && !this.#closed) {
      const held = this.#held.shift()!;
      if (held instanceof Uint8Array) this.replyAndClose(held);
      else this.#run(held.args, held.frame);
    }
  }

  /** Queue a request sent upstream; its reply comes back through `deliver`. */
  expect(pending: Pending): void {
    this.#queue.push(pending);
  }

  // --- replies --------------------------------------------------------------------------------

  reply(frame: Uint8Array): void {
    this.#queue.push(immediate(frame));
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
      this.#host.log.warn("client output buffer limit reached by messages: closing the client", { id: this.id, bytes: this.#pushBacklog });
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

  deliver(request: UpstreamRequest, reply: Uint8Array): void {
    request.reply = reply;
    this.complete();
  }

  /** Move every reply that is ready, in order, from the queue to the output. */
  complete(): void {
    if (this.#closed) return;
    let head = this.#queue.peek();
    if (!head || head.reply === null) return;
    do {
      this.#queue.shift();
      this.#out.push(head.reply!);
      this.#outBytes += head.reply!.length;
      head = this.#queue.peek();
    } while (head && head.reply !== null);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      this.#scope.runtime.defer(this.#flush);
    }
  }

  #write(): void {
    this.#flushScheduled = false;
    this.#runHeld();
    const conn = this.#conn;
    if (!conn || this.#closed) return;
    if (this.#outBytes > 0) {
      const chunk = concatBytes(this.#out, this.#outBytes);
      this.#out = [];
      this.#outBytes = 0;
      const belowHighWater = conn.write(chunk);
      if (conn.bufferedBytes > this.#host.limits.maxClientOutputBytes) {
        this.#host.log.warn("client output buffer limit reached: closing the client", { id: this.id, bytes: conn.bufferedBytes });
        conn.destroy();
        return;
      }
      if (!belowHighWater) {
        this.#outputBlocked = true;
        this.#pauseReading();
      }
    }
    if (this.#queue.length === 0) {
      this.#pushBacklog = 0;
      if (this.#closeWhenFlushed) {
        conn.end();
        return;
      }
      this.#wakeIdle();
    }
    this.#maybeResume();
  }

  #onDrain(): void {
    this.#outputBlocked = false;
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
    if (!conn || this.#outputBlocked || this.#held.length > 0) return;
    if (this.#queue.length > this.#host.limits.maxPendingRequests / 2) return;
    this.#readPaused = false;
    conn.resume();
  }

  #whenIdle(): Promise<void> {
    if (this.#closed || (this.#queue.length === 0 && this.#held.length === 0 && this.#outBytes === 0)) return Promise.resolve();
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
    this.#wakeIdle();
    // Requests still upstream will deliver into a closed session; their replies are dropped.
    this.#scope.close().catch(() => {});
  }
}
