/**
 * A client's replies in request order. Every request takes its place when it is read (`push`),
 * whether its reply is known yet or not; replies leave only from the head, so a fast reply never
 * overtakes a slow one. A request may run alone (`runAlone`): it starts only once every reply
 * before it is in, and `isRunningAlone` tells the session to hold what comes after it until its
 * own reply is in. That is how a command on a connection of the client's own (a blocked command,
 * a transaction) keeps the client's order across connections.
 *
 * Each entry also carries the size of the request it answers (its frame is kept until then, for
 * redirects and retries): `requestBytes` is what the client's requests in flight hold.
 */
import type { Pending } from "../../backend/request.ts";
import { Fifo } from "../../util/fifo.ts";

export class ReplyQueue {
  readonly #queue = new Fifo<Pending>();
  /** The request size of each entry of `#queue`, in the same order. */
  readonly #sizes = new Fifo<number>();
  #requestBytes = 0;
  /** A request running alone, until its reply is in. */
  #alone: Pending | null = null;
  /** Starts `#alone` once the replies owed before it are in. */
  #gate: (() => void) | null = null;

  /** Requests whose replies are not written yet. */
  get length(): number {
    return this.#queue.length;
  }

  /** Bytes of the requests whose replies are not written yet. */
  get requestBytes(): number {
    return this.#requestBytes;
  }

  /** A request runs alone: the requests read after it must wait until its reply is in. */
  get isRunningAlone(): boolean {
    return this.#alone !== null;
  }

  push(pending: Pending, requestBytes = 0): void {
    this.#queue.push(pending);
    this.#sizes.push(requestBytes);
    this.#requestBytes += requestBytes;
  }

  /** Queue `pending` now, in order, but `start` it only once every earlier reply is in. */
  runAlone(pending: Pending, start: () => void, requestBytes = 0): void {
    this.push(pending, requestBytes);
    this.#alone = pending;
    if (this.#queue.length === 1) start();
    else this.#gate = start;
  }

  /**
   * Move every reply that is ready, from the head on, to `out`, and return their bytes. A request
   * running alone that reaches the head is started.
   */
  takeReady(out: Uint8Array[]): number {
    let bytes = 0;
    let head = this.#queue.peek();
    while (head !== undefined && head.reply !== null) {
      this.#queue.shift();
      this.#requestBytes -= this.#sizes.shift()!;
      if (head === this.#alone) this.#alone = null;
      out.push(head.reply);
      bytes += head.reply.length;
      head = this.#queue.peek();
    }
    if (this.#gate !== null && head === this.#alone) {
      const start = this.#gate;
      this.#gate = null;
      start();
    }
    return bytes;
  }
}
