/**
 * The user-space write queue of the adapters whose sockets do not buffer for us (Bun's `write`
 * takes what the kernel takes; Deno's writes are one promise at a time): a FIFO of chunks that
 * the socket consumes from the front, partially when a write was short. Chunks are kept as the
 * caller passed them (never copied on `push`), so the `Conn.write` contract applies: the caller
 * must not mutate a chunk afterwards.
 */

/** Small queued chunks are joined up to this size so one write sends them. */
const MAX_JOIN_BYTES = 64 * 1024;

/** FIFO of byte chunks with partial consumption from the front. */
export class ByteQueue {
  private chunks: (Uint8Array | undefined)[] = [];
  private head = 0;
  private offset = 0;
  /** Bytes queued and not yet consumed. */
  size = 0;

  push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.size += chunk.byteLength;
  }

  /** The next bytes to send: the head chunk, or several small ones joined. Needs `size > 0`. */
  peek(): Uint8Array {
    const first = this.chunks[this.head]!.subarray(this.offset);
    let end = this.head + 1;
    let total = first.byteLength;
    while (end < this.chunks.length && total + this.chunks[end]!.byteLength <= MAX_JOIN_BYTES) {
      total += this.chunks[end++]!.byteLength;
    }
    if (end === this.head + 1) return first;
    const joined = new Uint8Array(total);
    joined.set(first);
    let at = first.byteLength;
    for (let i = this.head + 1; i < end; i++) {
      joined.set(this.chunks[i]!, at);
      at += this.chunks[i]!.byteLength;
    }
    return joined;
  }

  /** Drops the first `bytes` bytes (at most `size`), e.g. what one write sent. */
  consume(bytes: number): void {
    this.size -= bytes;
    while (bytes > 0) {
      const left = this.chunks[this.head]!.byteLength - this.offset;
      if (bytes < left) {
        this.offset += bytes;
        return;
      }
      bytes -= left;
      this.chunks[this.head++] = undefined;
      this.offset = 0;
    }
    // Compact once the front is all consumed slots, so a long-lived queue does not grow forever.
    if (this.head === this.chunks.length || this.head > 1024) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.chunks = [];
    this.head = this.offset = this.size = 0;
  }
}
