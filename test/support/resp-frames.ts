/**
 * Splitting a raw RESP2/RESP3 byte stream (as latin1 text) into its top-level frames, for tests
 * that compare exact bytes frame by frame: pub/sub arrays and pushes, HELLO 3 maps, errors.
 */

/** End offset of the frame starting at `at`, or -1 while it is incomplete. */
export function frameEnd(text: string, at: number): number {
  const eol = text.indexOf("\r\n", at);
  if (eol < 0) return -1;
  const type = text[at];
  const n = Number(text.slice(at + 1, eol));
  if (type === "$" || type === "!" || type === "=") {
    if (n < 0) return eol + 2;
    const end = eol + 2 + n + 2;
    return end <= text.length ? end : -1;
  }
  if (type === "*" || type === ">" || type === "~" || type === "%" || type === "|") {
    let p = eol + 2;
    const count = type === "%" || type === "|" ? 2 * n : n;
    for (let i = 0; i < count; i++) {
      p = frameEnd(text, p);
      if (p < 0) return -1;
    }
    // An attribute annotates the frame that follows it.
    return type === "|" ? frameEnd(text, p) : p;
  }
  return eol + 2;
}

/** Every complete top-level frame of `text`, in order. */
export function splitFrames(text: string): string[] {
  const out: string[] = [];
  for (let p = 0; p < text.length; ) {
    const end = frameEnd(text, p);
    if (end < 0) break;
    out.push(text.slice(p, end));
    p = end;
  }
  return out;
}

/** A RESP2 array (or, with `push`, a RESP3 push) of bulk strings, as Redis writes pub/sub frames. */
export function bulks(items: (string | number | null)[], push = false): string {
  const body = items
    .map((item) =>
      item === null ? (push ? "_\r\n" : "$-1\r\n") : typeof item === "number" ? `:${item}\r\n` : `$${Buffer.byteLength(item)}\r\n${item}\r\n`,
    )
    .join("");
  return `${push ? ">" : "*"}${items.length}\r\n${body}`;
}
