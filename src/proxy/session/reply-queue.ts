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
/** A ring emptied while holding more slots than this drops them (an idle client keeps none of a burst's). */
const KEPT_SLOTS = 16;

/**
 * A client's timed requests, oldest first, in a growable ring: `add` when a request's first
 * entry is queued, `answer` as its reply leaves the queue (in the same order), and, once the
 * answered ones' replies are written, read them (`stat(k)`... for k below `answered`) and
 * `release` them. The ring starts empty and small (an idle client holds next to nothing); a
 * pipeline grows it, and it shrinks back once emptied.
 */
export class Timings {
  #stats: (CommandStats | null)[] = [];
  #starts: number[] = [];
  /** 1: the reply was an error. */
  #failed: number[] = [];
  #args: (Uint8Array[] | null)[] = [];
  #pendings: (Pending | null)[] = [];
  #head = 0;
  #length = 0;
  /** Slots from the head whose replies left the queue. */
  answered = 0;

  add(stat: CommandStats | null, start: number, args: Uint8Array[] | null, pending: Pending): void {
    if (this.#length === this.#starts.length) this.#resize(this.#length === 0 ? FIRST_SLOTS : this.#length * 2);
    const i = (this.#head + this.#length++) & (this.#starts.length - 1);
    this.#stats[i] = stat;
    this.#starts[i] = start;
    this.#args[i] = stat === null ? null : args;
    this.#pendings[i] = stat === null ? null : pending;
  }

  answer(failed: boolean): void {
    this.#failed[(this.#head + this.answered++) & (this.#starts.length - 1)] = failed ? 1 : 0;
  }

  #at(k: number): number {
    return (this.#head + k) & (this.#starts.length - 1);
  }

  /** The command's stats of answered slot `k`; null for a request not timed (refused). */
  stat(k: number): CommandStats | null {
    return this.#stats[this.#at(k)]!;
  }

  start(k: number): number {
    return this.#starts[this.#at(k)]!;
  }

  failed(k: number): boolean {
    return this.#failed[this.#at(k)] === 1;
  }

  args(k: number): Uint8Array[] | null {
    return this.#args[this.#at(k)]!;
  }

  pending(k: number): Pending | null {
    return this.#pendings[this.#at(k)]!;
  }

  /** Drop the answered slots (their references too). */
  release(): void {
    for (let k = 0; k < this.answered; k++) {
      const i = this.#at(k);
      this.#stats[i] = null;
      this.#args[i] = null;
      this.#pendings[i] = null;
    }
    this.#head = this.#at(this.answered);
    this.#length -= this.answered;
    this.answered = 0;
    if (this.#length === 0 && this.#starts.length > KEPT_SLOTS) this.#resize(0);
  }

  /** Move the slots in use to new arrays of `size` slots (a power of two, or 0 when none are in use). */
  #resize(size: number): void {
    const stats = new Array<CommandStats | null>(size).fill(null);
    const starts = new Array<number>(size).fill(0);
    const failed = new Array<number>(size).fill(0);
    const args = new Array<Uint8Array[] | null>(size).fill(null);
    const pendings = new Array<Pending | null>(size).fill(null);
    for (let k = 0; k < this.#length; k++) {
      const i = this.#at(k);
      stats[k] = this.#stats[i]!;
      starts[k] = this.#starts[i]!;
      failed[k] = this.#failed[i]!;
      args[k] = this.#args[i]!;
      pendings[k] = this.#pendings[i]!;
    }
    this.#stats = stats;
    this.#starts = starts;
    this.#failed = failed;
    this.#args = args;
    this.#pendings = pendings;
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
