/** Slots a ring grows to from empty. */
const FIRST_SLOTS = 4;
/** A ring emptied while holding more slots than this drops them. */
const KEPT_SLOTS = 16;

/**
 * A first-in first-out queue with O(1) push and shift, backed by a growable ring buffer. Used on
 * the per-request path, where `Array.prototype.shift` would be O(n) on long pipelines. An empty
 * queue holds no slots until its first push, and one emptied after a burst lets its slots go:
 * there is one per client connection (or several), most of them idle.
 */
export class Fifo<T> {
  #items: (T | undefined)[] = [];
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
    if (--this.#length === 0 && this.#items.length > KEPT_SLOTS) {
      this.#items = [];
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
