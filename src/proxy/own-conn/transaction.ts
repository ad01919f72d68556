/**
 * MULTI / EXEC / DISCARD / WATCH / UNWATCH for one client, on a connection of its own to the
 * primary that serves the transaction's slot. Redis Cluster runs a transaction on one node and
 * only when all its keys share one slot; slotgate keeps the same rule and learns the slot from
 * the first keyed command (WATCH or a queued one). MULTI and keyless commands queued before that
 * are answered `+OK` / `+QUEUED` here and replayed on the connection once it opens; everything
 * after is Redis's own answer, so errors queued inside the transaction are reported as Redis
 * reports them (and make EXEC answer `-EXECABORT`).
 *
 * Refused here, and making EXEC fail: a command whose keys are in another slot (CROSSSLOT), a
 * redirect (the slot moved: the transaction is aborted with a clear error and the slot map is
 * refreshed), and a lost connection. Each command on the connection runs alone in the client's
 * order (`runAlone`), so nothing the client sends on the shared connections overtakes it, or is
 * overtaken by it.
 */
import { Unavailable, type Backend } from "../../backend/contract.ts";
import type { Router, RouteClient, Target } from "../routing/router.ts";
import { UpstreamRequest, type Pending, type ReplySink } from "../../backend/request.ts";
import { DedicatedLink, type DedicatedBudget } from "./dedicated.ts";
import { CROSSSLOT, differentClusters } from "../errors.ts";
import { OK, encodeError, encodeSimpleString } from "../../resp/encode.ts";
import { errorKind, ErrorKind, errorReply } from "../../resp/replies.ts";
import { parseRedirect } from "../../resp/reply-reader.ts";

export interface TransactionHost extends RouteClient {
  readonly budget: DedicatedBudget;
  readonly router: Router;
  /** Run `start` once every earlier reply is in; later requests wait for `pending`'s reply. */
  runAlone(pending: Pending, start: () => void): void;
  /** The transaction is over: route normally again. */
  transactionEnded(): void;
}

const QUEUED = encodeSimpleString("QUEUED");
const EXECABORT = encodeError("EXECABORT Transaction discarded because of previous errors.");
/** Takes the replies of commands replayed on the connection (already answered to the client). */
const REPLAYED: ReplySink = { deliver() {}, deliveryFailed() {} };
const decoder = new TextDecoder();

export class Transaction implements ReplySink {
  readonly #host: TransactionHost;
  #inMulti = false;
  #watching = false;
  #backend: Backend | null = null;
  #shard = -1;
  #link: DedicatedLink | null = null;
  /** MULTI and keyless commands queued before the connection opened, to replay on it. */
  #replay: Uint8Array[] = [];
  /** EXEC must fail: a command was refused while queueing. */
  #doomed = false;
  /** The connection went away (or never opened): why. */
  #lost: string | null = null;
  /** EXEC, DISCARD or UNWATCH sent: its reply ends the transaction. */
  #last: UpstreamRequest | null = null;
  #over = false;

  constructor(host: TransactionHost) {
    this.#host = host;
  }

  /** Take `name` if the transaction owns it; false lets the session run it as usual. */
  command(name: string, args: Uint8Array[], frame: Uint8Array): boolean {
    switch (name) {
      case "MULTI":
        if (this.#inMulti) return this.#reply(errorReply("MULTI calls can not be nested"));
        this.#inMulti = true;
        if (this.#lost !== null) return this.#reply(OK);
        if (this.#link) this.#send(frame);
        else this.#queueLocally(frame, OK);
        return true;
      case "EXEC":
        if (!this.#inMulti) return this.#reply(errorReply("EXEC without MULTI"));
        this.#exec(args, frame);
        return true;
      case "DISCARD":
        if (!this.#inMulti) return this.#reply(errorReply("DISCARD without MULTI"));
        return this.#finish(frame, OK);
      case "WATCH":
        if (this.#inMulti) return this.#reply(errorReply("WATCH inside MULTI is not allowed"));
        return this.#keyed(name, args, frame, () => (this.#watching = true));
      case "UNWATCH":
        if (!this.#inMulti) return this.#finish(frame, OK);
        break;
      case "QUIT":
      case "RESET":
        return false;
    }
    if (!this.#inMulti) return false;
    if (this.#lost !== null) {
      this.#doomed = true;
      return this.#reply(errorReply(`transaction aborted: ${this.#lost}`));
    }
    if (name === "HELLO" || name === "AUTH") {
      this.#doomed = true;
      return this.#reply(errorReply("Command not allowed inside a transaction"));
    }
    return this.#keyed(name, args, frame, null);
  }

  /** The session refused a command (no permission) and answered `frame`: inside MULTI, EXEC will fail. */
  refuse(frame: Uint8Array): void {
    this.#host.reply(frame);
    this.#refused();
  }

  /** The client went away: Redis forgets the transaction with the connection. */
  close(): void {
    this.#over = true;
    this.#link?.close("client closed");
    this.#link = null;
  }

  #reply(frame: Uint8Array): true {
    this.#host.reply(frame);
    if (!this.#inMulti && !this.#watching && this.#last === null) this.#end();
    return true;
  }

  #queueLocally(frame: Uint8Array, reply: Uint8Array): void {
    this.#replay.push(frame);
    this.#host.reply(reply);
  }

  /** A command placed by its keys; keyless ones wait for the connection when it is not open yet. */
  #keyed(name: string, args: Uint8Array[], frame: Uint8Array, sent: (() => void) | null): true {
    const target = this.#host.router.target(this.#host, name, args, frame);
    if (target === null) return this.#refused();
    if (target.shard < 0) {
      if (this.#link) this.#send(target.frame);
      else this.#queueLocally(target.frame, QUEUED);
      return true;
    }
    if (!this.#bind(target)) return this.#refused();
    this.#send(target.frame);
    sent?.();
    return true;
  }

  /** A command was refused (already answered): inside MULTI it dooms EXEC; with nothing open the transaction is over. */
  #refused(): true {
    if (this.#inMulti) this.#doomed = true;
    else if (!this.#watching) this.#end();
    return true;
  }

  /** The transaction's slot is `target`'s (the first keyed command opens the connection). */
  #bind(target: Target): boolean {
    if (this.#backend !== null) {
      if (target.backend !== this.#backend) {
        this.#host.reply(differentClusters(this.#backend.name, target.backend.name));
        return false;
      }
      if (target.shard !== this.#shard) {
        this.#host.reply(CROSSSLOT);
        return false;
      }
      return true;
    }
    return this.#open(target.backend, target.shard);
  }

  #open(backend: Backend, shard: number): boolean {
    this.#backend = backend;
    this.#shard = shard;
    const node = backend.nodeFor(shard);
    const link = node instanceof Unavailable ? node : DedicatedLink.open(this.#host.budget, node, this.#host.protocol, {
      reply: (request, frame) => this.#onReply(request, frame),
      lost: (reason) => {
        if (this.#link !== link) return;
        this.#link = null;
        this.#lost = `connection to the transaction's node lost (${reason})`;
      },
    });
    if (link instanceof Unavailable) {
      this.#lost = link.message;
      this.#host.reply(link.reply);
      return false;
    }
    this.#link = link;
    return true;
  }

  /**
   * Send `frame` on the connection, after the commands waiting to be replayed, in the client's
   * order. `last` marks EXEC, DISCARD and UNWATCH, whose reply ends the transaction; it is marked
   * before anything is sent, as a refusal may answer it at once.
   */
  #send(frame: Uint8Array, last = false): UpstreamRequest {
    const host = this.#host;
    // Its reply comes back through the transaction, whoever answers it: Redis, or slotgate itself
    // (an op timeout, a lost connection), so a failed EXEC or DISCARD still ends the transaction.
    const request = new UpstreamRequest(frame, this.#shard, this, host.id);
    request.resp3 = host.protocol === 3;
    if (last) this.#last = request;
    const replay = this.#replay;
    this.#replay = [];
    host.runAlone(request, () => {
      const link = this.#link;
      if (!link) return this.deliver(request, errorReply(`transaction aborted: ${this.#lost ?? "no connection"}`));
      for (const queued of replay) {
        const replayed = new UpstreamRequest(queued, this.#shard, REPLAYED, host.id);
        replayed.resp3 = request.resp3;
        const refused = link.send(replayed);
        if (refused) return this.#abandon(request, refused);
      }
      const refused = link.send(request);
      if (refused) this.#abandon(request, refused);
    });
    return request;
  }

  /**
   * The transaction's node takes no more work (its cluster was replaced or removed, the
   * connection died): the request gets one clear error, the transaction is lost (queued commands
   * are refused, EXEC answers EXECABORT), and the client's session goes on.
   */
  #abandon(request: UpstreamRequest, refused: Unavailable): void {
    this.#lost = refused.message;
    this.#doomed = true;
    // Let go of the link before closing it, so its `lost` report does not reword why.
    const link = this.#link;
    this.#link = null;
    link?.close(refused.message);
    this.deliver(request, errorReply(`transaction aborted: ${refused.message}; retry the transaction`));
    if (request === this.#last || (!this.#inMulti && !this.#watching)) this.#end();
  }

  #exec(args: Uint8Array[], frame: Uint8Array): void {
    if (this.#doomed || this.#lost !== null) {
      this.#host.reply(EXECABORT);
      this.#end();
      return;
    }
    if (!this.#link) {
      // Nothing keyed was queued: any primary of the default cluster runs it.
      const target = this.#host.router.target(this.#host, "EXEC", args, frame);
      if (target === null) return this.#end();
      if (!this.#open(target.backend, target.backend.anyShard())) return this.#end();
    }
    this.#send(frame, true);
  }

  /** DISCARD, or UNWATCH outside MULTI: sent when the connection is open, else answered here. */
  #finish(frame: Uint8Array, local: Uint8Array): true {
    if (this.#link) {
      this.#send(frame, true);
    } else {
      this.#host.reply(local);
      this.#end();
    }
    return true;
  }

  #onReply(request: UpstreamRequest, frame: Uint8Array): void {
    const kind = errorKind(frame);
    if (kind === ErrorKind.Moved || kind === ErrorKind.Ask) frame = this.#redirected(frame);
    if (request.sink === REPLAYED) {
      if (kind !== ErrorKind.None) this.#doomed = true;
      return;
    }
    request.sink.deliver(request, frame);
  }

  /** A reply to one of the client's commands on the transaction's connection. */
  deliver(request: UpstreamRequest, frame: Uint8Array): void {
    if (request === this.#last) this.#end();
    this.#host.deliver(request, frame);
  }

  deliveryFailed(request: UpstreamRequest, error: unknown): void {
    this.#host.deliveryFailed(request, error);
  }

  /** The slot moved away under the transaction: learn where, and abort it with a clear error. */
  #redirected(frame: Uint8Array): Uint8Array {
    this.#doomed = true;
    const link = this.#link;
    if (link && this.#backend) this.#backend.redirect(frame, link.node);
    const target = parseRedirect(frame);
    const where = target ? `slot ${target.slot} moved to ${target.host || link?.node.host}:${target.port}` : "the slot moved";
    return errorReply(`transaction aborted: ${where} (${decoder.decode(frame.subarray(1, frame.indexOf(32)))}); retry it`);
  }

  #end(): void {
    if (this.#over) return;
    this.#over = true;
    this.#link?.close("transaction ended");
    this.#link = null;
    this.#host.transactionEnded();
  }
}
