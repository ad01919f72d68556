/**
 * Replies the proxy itself produces, and the classification of upstream error replies that the
 * router acts on (MOVED, ASK, CLUSTERDOWN). Classification looks at the first bytes only: no
 * decoding on the forward path.
 */
const encoder = new TextEncoder();

/** `-PREFIX message\r\n`; the message must not contain CR or LF (they are replaced by spaces). */
export function errorReply(message: string, prefix = "ERR"): Uint8Array {
  return encoder.encode(`-${prefix} ${message.replace(/[\r\n]+/g, " ")}\r\n`);
}

export const ASKING_COMMAND = encoder.encode("*1\r\n$6\r\nASKING\r\n");

export const ErrorKind = {
  None: 0,
  Other: 1,
  Moved: 2,
  Ask: 3,
  ClusterDown: 4,
  TryAgain: 5,
} as const;
export type ErrorKind = (typeof ErrorKind)[keyof typeof ErrorKind];

const MINUS = 45;

function startsWith(frame: Uint8Array, word: string): boolean {
  if (frame.length < word.length + 1) return false;
  for (let i = 0; i < word.length; i++) if (frame[i + 1] !== word.charCodeAt(i)) return false;
  return true;
}

/** What kind of reply `frame` is, as far as routing cares. */
export function errorKind(frame: Uint8Array): ErrorKind {
  if (frame[0] !== MINUS) return ErrorKind.None;
  if (startsWith(frame, "MOVED ")) return ErrorKind.Moved;
  if (startsWith(frame, "ASK ")) return ErrorKind.Ask;
  if (startsWith(frame, "CLUSTERDOWN")) return ErrorKind.ClusterDown;
  if (startsWith(frame, "TRYAGAIN")) return ErrorKind.TryAgain;
  return ErrorKind.Other;
}

/**
 * Encode `name` followed by `count` arguments of `args` starting at `from` as a RESP command,
 * in one allocation (the split path builds one per key).
 */
export function commandBytes(name: Uint8Array, args: Uint8Array[], from: number, count: number): Uint8Array {
  let size = lengthOfArrayHeader(count + 1) + lengthOfBulk(name.length);
  for (let i = from; i < from + count; i++) size += lengthOfBulk(args[i]!.length);
  const out = new Uint8Array(size);
  let at = writeHeader(out, 0, 42, count + 1);
  at = writeBulk(out, at, name);
  for (let i = from; i < from + count; i++) at = writeBulk(out, at, args[i]!);
  return out;
}

function digits(n: number): number {
  return n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : String(n).length;
}

function lengthOfArrayHeader(n: number): number {
  return 3 + digits(n);
}

function lengthOfBulk(n: number): number {
  return 3 + digits(n) + n + 2;
}

function writeHeader(out: Uint8Array, at: number, type: number, n: number): number {
  out[at++] = type;
  const text = String(n);
  for (let i = 0; i < text.length; i++) out[at++] = text.charCodeAt(i);
  out[at++] = 13;
  out[at++] = 10;
  return at;
}

function writeBulk(out: Uint8Array, at: number, value: Uint8Array): number {
  at = writeHeader(out, at, 36, value.length);
  out.set(value, at);
  at += value.length;
  out[at++] = 13;
  out[at++] = 10;
  return at;
}
