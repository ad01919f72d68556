/**
 * The arguments of a request with very many of them (a million-key MGET), kept as offsets into
 * the request's frame and handed out as an array whose elements are made when they are read.
 *
 * Why: made as the request arrives, a million small views all stay alive until the command is
 * done, so every young-generation collection meanwhile copies them (pauses of tens of
 * milliseconds, during which no other client is served). Made on read, each view is garbage as
 * soon as its reader is done with it, and collections stay short.
 *
 * What a reader sees is a read-only array of `count` elements: `length`, indexing, iteration,
 * `slice`, `map` and the like work as on any array. Reading an element twice gives two views of
 * the same bytes, not the same object; writing throws.
 */

/** Offsets and lengths of each argument in the frame, as a collector records them. */
export interface ArgIndex {
  /** Offset in the frame of each argument's first byte. */
  readonly starts: Float64Array;
  readonly lengths: Uint32Array;
  readonly count: number;
}

/** The digit at the start of `key`, if any: array indexes are the only keys made on read. */
function isIndex(key: string | symbol): boolean {
  if (typeof key !== "string") return false;
  const c = key.charCodeAt(0);
  return c >= 48 && c <= 57;
}

export function lazyArgs(frame: Uint8Array, index: ArgIndex): Uint8Array[] {
  const { starts, lengths, count } = index;
  const buffer = frame.buffer;
  const base = frame.byteOffset;
  // An empty array: `Array.isArray` holds and array methods apply; `length` and the elements
  // come from the traps, and nothing can be written to it.
  const refuse = () => false;
  return new Proxy<Uint8Array[]>([], {
    get(target, key, receiver) {
      if (isIndex(key)) {
        const i = +(key as string);
        return i < count ? new Uint8Array(buffer, base + starts[i]!, lengths[i]!) : undefined;
      }
      if (key === "length") return count;
      return Reflect.get(target, key, receiver);
    },
    has(target, key) {
      return isIndex(key) ? +(key as string) < count : Reflect.has(target, key);
    },
    set: refuse,
    defineProperty: refuse,
    deleteProperty: refuse,
  });
}
