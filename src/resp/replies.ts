/**
 * Replies the proxy itself produces, and the classification of upstream error replies that the
 * router acts on (MOVED, ASK, CLUSTERDOWN). Classification looks at the first bytes only: no
 * decoding on the forward path.
 */
import { encodeCommand, encodeError } from "./encode.ts";
import { MINUS } from "./bytes.ts";

/** `-PREFIX message\r\n` (CR and LF in the message become spaces). */
export function errorReply(message: string, prefix = "ERR"): Uint8Array {
  return encodeError(`${prefix} ${message}`);
}

export const ASKING_COMMAND = encodeCommand(["ASKING"]);

export const ErrorKind = {
  None: 0,
  Other: 1,
  Moved: 2,
  Ask: 3,
  ClusterDown: 4,
  TryAgain: 5,
} as const;
export type ErrorKind = (typeof ErrorKind)[keyof typeof ErrorKind];


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

/** `name` followed by `count` arguments of `args` from `from`, as a RESP command (one per split part). */
export function commandBytes(name: Uint8Array, args: Uint8Array[], from: number, count: number): Uint8Array {
  return encodeCommand([name, ...args.slice(from, from + count)]);
}
