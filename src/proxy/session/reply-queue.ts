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
 * ring: its command's stats entry, when it was read, its frame (`mark`); as its reply leaves
 * the queue the slot is marked answered, and the session times the answered ones when it writes
 * their replies. No allocation per request: the ring's arrays are reused (see `Timings`).
 */
import type { Pending } from "../../backend/request.ts";
import { Fifo } from "../../util/fifo.ts";
import { BANG, MINUS } from "../../resp/bytes.ts";
import type { CommandStats } from "../../metrics/commands.ts";

/** Slots a ring grows to from empty: an unpipelined client never needs more. */
const FIRST_SLOTS = 2;
/** Object cells per slot: its stats entry, the request's frame and its pending entry. */
const STRIDE = 3;
const STAT = 0;
const FRAME = 1;
const PENDING = 2;

/** A ring's storage: start times in a Float64Array and failures in a Uint8Array (no boxed numbers). */
interface RingArrays {
  readonly size: number;
  readonly cells: unknown[];
  readonly starts: Float64Array;
  readonly failed: Uint8Array;
}

/** The storage of every empty ring: no slots (an `add` first grows the ring). */
const EMPTY_RING: RingArrays = { size: 0, cells: [], starts: new Float64Array(0), failed: new Uint8Array(0) };

/**
 * Rings let go by clients between bursts, by log2 of their size, each list at most
 * `POOLED_PER_SIZE` long: a pipelining client takes one back at its next burst instead of
 * allocating three arrays (typed arrays cost most of a request's timing when made per burst),
 * while an idle client holds none. Their cells are null: they keep no request alive.
 */
const POOLED_PER_SIZE = 256;
const pooled: RingArrays[][] = [];

function takeRing(size: number): RingArrays {
  const ring = pooled[Math.clz32(size)]?.pop();
  return ring ?? { size, cells: new Array<unknown>(size * STRIDE).fill(null), starts: new Float64Array(size), failed: new Uint8Array(size) };
}

function giveRing(ring: RingArrays): void {
  const list = (pooled[Math.clz32(ring.size)] ??= []);
  if (list.length < POOLED_PER_SIZE) list.push(ring);
}

/**
 * A client's timed requests, oldest first, in a growable ring: `add` when a request's first
 * entry is queued, `answer` as its reply leaves the queue (in the same order), and, once the
 * answered ones' replies are written, read them (`stat(k)`... for k below `answered`) and
 * `release` them. Nothing is allocated per request; the ring's storage comes from a shared pool
 * on the first `add` and goes back to it once every slot is released, so an idle client holds none.
 */
export class Timings {
  #ring: RingArrays = EMPTY_RING;
  /** The size the ring had when it was last let go: a pipelining client's next burst starts there. */
  #lastSize = FIRST_SLOTS;
  #head = 0;
  #length = 0;
  /** Slots from the head whose replies left the queue. */
  answered = 0;

  /** `frame`: the request's bytes, kept for the slow log (null: not kept). */
  add(stat: CommandStats | null, start: number, frame: Uint8Array | null, pending: Pending): void {
    if (this.#length === this.#ring.size) this.#grow();
    const ring = this.#ring;
    const slot = (this.#head + this.#length++) & (ring.size - 1);
    const at = slot * STRIDE;
    const cells = ring.cells;
    cells[at + STAT] = stat;
    cells[at + FRAME] = stat === null ? null : frame;
    cells[at + PENDING] = stat === null ? null : pending;
    ring.starts[slot] = start;
  }

  answer(failed: boolean): void {
    this.#ring.failed[this.#slot(this.answered++)] = failed ? 1 : 0;
  }

  /** The slot `k` from the head. */
  #slot(k: number): number {
    return (this.#head + k) & (this.#ring.size - 1);
  }

  /** The command's stats of answered slot `k`; null for a request not timed (refused). */
  stat(k: number): CommandStats | null {
    return this.#ring.cells[this.#slot(k) * STRIDE + STAT] as CommandStats | null;
  }

  start(k: number): number {
    return this.#ring.starts[this.#slot(k)]!;
  }

  failed(k: number): boolean {
    return this.#ring.failed[this.#slot(k)] === 1;
  }

  frame(k: number): Uint8Array | null {
    return this.#ring.cells[this.#slot(k) * STRIDE + FRAME] as Uint8Array | null;
  }

  pending(k: number): Pending | null {
    return this.#ring.cells[this.#slot(k) * STRIDE + PENDING] as Pending | null;
  }

  /**
   * Count every answered slot into its command's stats, its reply written at `now` (ms). Slots
   * in a row with the same command and read time (a pipelined burst) are counted in one go.
   */
  recordAnswered(now: number): void {
    const ring = this.#ring;
    const cells = ring.cells;
    const mask = ring.size - 1;
    const answered = this.answered;
    let k = 0;
    while (k < answered) {
      let slot = (this.#head + k++) & mask;
      const stat = cells[slot * STRIDE + STAT] as CommandStats | null;
      if (stat === null) continue;
      const start = ring.starts[slot]!;
      let calls = 1;
      let failed = ring.failed[slot]!;
      while (k < answered) {
        slot = (this.#head + k) & mask;
        if (cells[slot * STRIDE + STAT] !== stat || ring.starts[slot] !== start) break;
        calls++;
        failed += ring.failed[slot]!;
        k++;
      }
      stat.recordMany((now - start) * 1000, calls, failed);
    }
  }

  /** Drop the answered slots (their references too); with none left, the storage goes back to the pool. */
  release(): void {
    const cells = this.#ring.cells;
    for (let k = 0; k < this.answered; k++) {
      const at = this.#slot(k) * STRIDE;
      cells[at + STAT] = cells[at + FRAME] = cells[at + PENDING] = null;
    }
    this.#length -= this.answered;
    if (this.#length === 0) {
      this.#lastSize = this.#ring.size;
      giveRing(this.#ring);
      this.#ring = EMPTY_RING;
      this.#head = this.answered = 0;
      return;
    }
    this.#head = this.#slot(this.answered);
    this.answered = 0;
  }

  /**
   * Twice the slots (from none: as many as the ring had last time, so a client that pipelines 16
   * requests at a time starts each burst at that size), the ones in use at the front.
   */
  #grow(): void {
    const old = this.#ring;
    const ring = takeRing(old.size === 0 ? this.#lastSize : old.size * 2);
    for (let k = 0; k < this.#length; k++) {
      const from = this.#slot(k);
      for (let c = 0; c < STRIDE; c++) {
        ring.cells[k * STRIDE + c] = old.cells[from * STRIDE + c];
        old.cells[from * STRIDE + c] = null;
      }
      ring.starts[k] = old.starts[from]!;
      ring.failed[k] = old.failed[from]!;
    }
    if (old !== EMPTY_RING) giveRing(old);
    this.#ring = ring;
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
  #markFrame: Uint8Array | null = null;

  constructor(timings: Timings | null = null) {
    this.#timings = timings;
  }

  /**
   * The request being run is timed: its first entry (the one that carries its size) takes
   * `stat`, the time it was read and its frame (null: not kept for the slow log).
   */
  mark(stat: CommandStats | null, start: number, frame: Uint8Array | null): void {
    this.#markStat = stat;
    this.#markStart = start;
    this.#markFrame = frame;
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
      this.#timings.add(this.#markStat, this.#markStart, this.#markFrame, pending);
      this.#markStat = null;
      this.#markFrame = null;
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
