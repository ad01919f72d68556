/** Slots a ring grows to from empty. */
const FIRST_SLOTS = 4;
/** The slots of every empty queue: none, never written (a push first grows the ring). */
const NO_SLOTS: never[] = [];

/**
 * A first-in first-out queue with O(1) push and shift, backed by a growable ring buffer. Used on
 * the per-request path, where `Array.prototype.shift` would be O(n) on long pipelines. An empty
 * queue holds no slots: they are made on a push and let go when the queue empties again, since
 * there are a few per client connection and most of those are idle (a new 4-slot array per
 * burst costs less than every idle client keeping one).
 */
export class Fifo<T> {
  #items: (T | undefined)[] = NO_SLOTS;
  #head = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(item: T): void {
    if (this.#length === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#length) & (this.#items.length - 1)] = item;
    this.#length++;
  }

  /** The oldest item, or undefined when empty. */
  peek(): T | undefined {
    return this.#length === 0 ? undefined : this.#items[this.#head];
  }

  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#items.length - 1);
    if (--this.#length === 0) {
      this.#items = NO_SLOTS;
      this.#head = 0;
    }
    return item;
  }

  /** Remove and return every item, oldest first. */
  drain(): T[] {
    const all: T[] = [];
    while (this.#length > 0) all.push(this.shift()!);
    return all;
  }

  #grow(): void {
    const size = this.#items.length;
    const next = new Array<T | undefined>(size === 0 ? FIRST_SLOTS : size * 2);
    for (let i = 0; i < this.#length; i++) next[i] = this.#items[(this.#head + i) & (size - 1)];
    this.#items = next;
    this.#head = 0;
  }
}
