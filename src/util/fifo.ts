/**
 * A first-in first-out queue with O(1) push and shift, backed by a growable ring buffer. Used on
 * the per-request path, where `Array.prototype.shift` would be O(n) on long pipelines.
 */
export class Fifo<T> {
  #items: (T | undefined)[] = new Array(16);
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
    this.#length--;
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
    const next = new Array<T | undefined>(size * 2);
    for (let i = 0; i < this.#length; i++) next[i] = this.#items[(this.#head + i) & (size - 1)];
    this.#items = next;
    this.#head = 0;
  }
}
