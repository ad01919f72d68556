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
 *
 * With metrics on (`Finished` given), a request's first entry also carries its command's stats
 * entry, when it was read and its arguments (`mark`); as its reply leaves the queue they move to
 * `Finished`, where the session times them when the reply is written. No allocation per request:
 * parallel ring buffers and arrays that are reused.
 */
import type { Pending } from "../../backend/request.ts";
import { Fifo } from "../../util/fifo.ts";
import { BANG, MINUS } from "../../resp/bytes.ts";
import type { CommandStats } from "../../metrics/commands.ts";

/** Requests whose replies left the queue and wait to be written, to be timed then. */
export class Finished {
  count = 0;
  readonly stats: CommandStats[] = [];
  readonly starts: number[] = [];
  readonly failed: boolean[] = [];
  readonly args: (Uint8Array[] | null)[] = [];
  readonly pendings: Pending[] = [];

  add(stat: CommandStats, start: number, failed: boolean, args: Uint8Array[] | null, pending: Pending): void {
    const i = this.count++;
    this.stats[i] = stat;
    this.starts[i] = start;
    this.failed[i] = failed;
    this.args[i] = args;
    this.pendings[i] = pending;
  }

  /** Forget them (references dropped, arrays kept). */
  clear(): void {
    for (let i = 0; i < this.count; i++) {
      this.args[i] = null;
      this.pendings[i] = undefined as unknown as Pending;
    }
    this.count = 0;
  }
}

export class ReplyQueue {
  readonly #queue = new Fifo<Pending>();
  /** The request size of each entry of `#queue`, in the same order. */
  readonly #sizes = new Fifo<number>();
  #requestBytes = 0;
  /** A request running alone, until its reply is in. */
  #alone: Pending | null = null;
  /** Starts `#alone` once the replies owed before it are in. */
  #gate: (() => void) | null = null;
  /** Metrics on: where timed entries go, and each entry's stats, read time and arguments. */
  readonly #finished: Finished | null;
  readonly #stats = new Fifo<CommandStats | null>();
  readonly #starts = new Fifo<number>();
  readonly #args = new Fifo<Uint8Array[] | null>();
  #markStat: CommandStats | null = null;
  #markStart = 0;
  #markArgs: Uint8Array[] | null = null;

  constructor(finished: Finished | null = null) {
    this.#finished = finished;
  }

  /**
   * The request being run is timed: its first entry (the one that carries its size) takes
   * `stat`, the time it was read and its arguments (null: not kept for the slow log).
   */
  mark(stat: CommandStats | null, start: number, args: Uint8Array[] | null): void {
    this.#markStat = stat;
    this.#markStart = start;
    this.#markArgs = args;
  }

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
    if (this.#finished === null) return;
    if (requestBytes > 0 && this.#markStat !== null) {
      this.#stats.push(this.#markStat);
      this.#starts.push(this.#markStart);
      this.#args.push(this.#markArgs);
      this.#markStat = null;
      this.#markArgs = null;
    } else {
      this.#stats.push(null);
      this.#starts.push(0);
      this.#args.push(null);
    }
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
      if (this.#finished !== null) {
        const stat = this.#stats.shift()!;
        const start = this.#starts.shift()!;
        const args = this.#args.shift()!;
        if (stat !== null) this.#finished.add(stat, start, head.reply[0] === MINUS || head.reply[0] === BANG, args, head);
      }
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
