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
 * With metrics on (`Timings` given), each request's first entry also takes a slot in the timings
 * ring: its command's stats entry, when it was read, its arguments (`mark`); as its reply leaves
 * the queue the slot is marked answered, and the session times the answered ones when it writes
 * their replies. No allocation per request: the ring's arrays are reused (see `Timings`).
 */
import type { Pending } from "../../backend/request.ts";
import { Fifo } from "../../util/fifo.ts";
import { BANG, MINUS } from "../../resp/bytes.ts";
import type { CommandStats } from "../../metrics/commands.ts";

/** Slots a ring grows to from empty: an unpipelined client never needs more. */
const FIRST_SLOTS = 2;
/** Array cells per slot: its stats entry, start time, failed flag, arguments and pending entry. */
const STRIDE = 5;
const STAT = 0;
const START = 1;
const FAILED = 2;
const ARGS = 3;
const PENDING = 4;
/** The cells of every empty ring: none, never written (an `add` first grows the ring). */
const NO_CELLS: never[] = [];

/**
 * A client's timed requests, oldest first, in a growable ring: `add` when a request's first
 * entry is queued, `answer` as its reply leaves the queue (in the same order), and, once the
 * answered ones' replies are written, read them (`stat(k)`... for k below `answered`) and
 * `release` them. One array holds every slot's cells; it is made on the first `add` and let go
 * once every slot is released, so an idle client holds none (most clients are idle).
 */
export class Timings {
  #cells: unknown[] = NO_CELLS;
  /** Slots the ring has room for: a power of two, or 0. */
  #size = 0;
  /** The size the ring had when it was last let go: a pipelining client's next burst starts there. */
  #lastSize = FIRST_SLOTS;
  #head = 0;
  #length = 0;
  /** Slots from the head whose replies left the queue. */
  answered = 0;

  add(stat: CommandStats | null, start: number, args: Uint8Array[] | null, pending: Pending): void {
    if (this.#length === this.#size) this.#grow();
    const at = ((this.#head + this.#length++) & (this.#size - 1)) * STRIDE;
    const cells = this.#cells;
    cells[at + STAT] = stat;
    cells[at + START] = start;
    cells[at + ARGS] = stat === null ? null : args;
    cells[at + PENDING] = stat === null ? null : pending;
  }

  answer(failed: boolean): void {
    this.#cells[this.#at(this.answered++) + FAILED] = failed;
  }

  /** The first cell of slot `k` from the head. */
  #at(k: number): number {
    return ((this.#head + k) & (this.#size - 1)) * STRIDE;
  }

  /** The command's stats of answered slot `k`; null for a request not timed (refused). */
  stat(k: number): CommandStats | null {
    return this.#cells[this.#at(k) + STAT] as CommandStats | null;
  }

  start(k: number): number {
    return this.#cells[this.#at(k) + START] as number;
  }

  failed(k: number): boolean {
    return this.#cells[this.#at(k) + FAILED] === true;
  }

  args(k: number): Uint8Array[] | null {
    return this.#cells[this.#at(k) + ARGS] as Uint8Array[] | null;
  }

  pending(k: number): Pending | null {
    return this.#cells[this.#at(k) + PENDING] as Pending | null;
  }

  /** Drop the answered slots (their references too); with none left, the cells go. */
  release(): void {
    this.#length -= this.answered;
    if (this.#length === 0) {
      this.#lastSize = this.#size;
      this.#cells = NO_CELLS;
      this.#size = this.#head = this.answered = 0;
      return;
    }
    for (let k = 0; k < this.answered; k++) {
      const at = this.#at(k);
      this.#cells[at + STAT] = this.#cells[at + ARGS] = this.#cells[at + PENDING] = null;
    }
    this.#head = (this.#head + this.answered) & (this.#size - 1);
    this.answered = 0;
  }

  /**
   * Twice the slots (from none: as many as the ring had last time, so a client that pipelines 16
   * requests at a time pays one allocation per burst, not four), the ones in use at the front.
   */
  #grow(): void {
    const size = this.#size === 0 ? this.#lastSize : this.#size * 2;
    const cells = new Array<unknown>(size * STRIDE).fill(null);
    for (let k = 0; k < this.#length; k++) {
      const from = this.#at(k);
      for (let c = 0; c < STRIDE; c++) cells[k * STRIDE + c] = this.#cells[from + c];
    }
    this.#cells = cells;
    this.#size = size;
    this.#head = 0;
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
  /** Metrics on: each request's stats entry, read time and arguments, until timed. */
  readonly #timings: Timings | null;
  #markStat: CommandStats | null = null;
  #markStart = 0;
  #markArgs: Uint8Array[] | null = null;

  constructor(timings: Timings | null = null) {
    this.#timings = timings;
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
    // A request's first entry (the one that carries its size) takes its timing slot; a refused
    // request's has no stats entry (not marked).
    if (this.#timings !== null && requestBytes > 0) {
      this.#timings.add(this.#markStat, this.#markStart, this.#markArgs, pending);
      this.#markStat = null;
      this.#markArgs = null;
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
      const size = this.#sizes.shift()!;
      this.#requestBytes -= size;
      if (size > 0 && this.#timings !== null) this.#timings.answer(head.reply[0] === MINUS || head.reply[0] === BANG);
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
