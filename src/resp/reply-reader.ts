/**
 * Upstream reply framing and the few byte-level inspections the proxy needs on the hot path
 * (is it an error, which one, where does a redirect point), all without decoding the reply.
 */
import { DEFAULT_LIMITS, scanFrom, type RespLimits } from "./frame.ts";
import { FrameTail } from "./frame-tail.ts";
import { BANG, COLON, CR, MINUS } from "./bytes.ts";

const SPACE = 32;

/** Receives one complete reply frame, relay-ready. */
export type ReplyHandler = (frame: Uint8Array) => void;

/**
 * Splits a server's byte stream into reply frames (RESP2 or RESP3, attributes kept with the value
 * they annotate, pushes as their own frames). `push` calls `onReply` once per complete frame, in
 * order and synchronously, with exactly the frame's bytes: a view of the pushed chunk when the
 * frame lies within it (chunks must not be mutated afterwards), else one fresh buffer joined
 * from the held chunks. Throws `ProtocolError` on malformed input. Any exception (an `onReply` one
 * included) leaves the reader failed, since replies could no longer be matched to requests: every
 * later `push` rethrows it until `reset`. Not re-entrant: `onReply` must not push.
 */
export class ReplyReader {
  private readonly tail = new FrameTail();
  /** What made an earlier push fail; the stream position is lost, so every later push rethrows it. */
  private failure: unknown = null;

  constructor(
    private readonly onReply: ReplyHandler,
    private readonly limits: RespLimits = DEFAULT_LIMITS,
  ) {}

  /** Bytes of an unfinished reply held since the last `push`. */
  get bufferedBytes(): number {
    return this.tail.bufferedBytes;
  }

  /** Forgets any unfinished reply and a previous failure. */
  reset(): void {
    this.tail.clear();
    this.failure = null;
  }

  /** Feeds bytes received from the server. */
  push(chunk: Uint8Array): void {
    if (this.failure !== null) throw this.failure;
    const n = chunk.length;
    if (n === 0) return;
    const tail = this.tail;
    const st = tail.state;
    const limits = this.limits;
    let p = 0;
    try {
      if (tail.active) {
        const q = tail.resume(chunk, limits);
        if (q < 0) return;
        this.onReply(tail.finish(chunk, q));
        p = q;
      }
      while (p < n) {
        st.reset(false);
        const q = scanFrom(chunk, p, n, st, limits);
        if (q < 0) {
          tail.begin(chunk, p, n, limits);
          return;
        }
        this.onReply(chunk.subarray(p, q));
        p = q;
      }
    } catch (error) {
      this.failure = error;
      tail.clear();
      throw error;
    }
  }
}


/** True when the frame is an error reply (`-...` or RESP3's blob error `!...`). */
export function isError(frame: Uint8Array): boolean {
  const t = frame[0];
  return t === MINUS || t === BANG;
}

/** Offset of an error frame's message text, or -1 if the frame is not an error. */
function errorTextStart(frame: Uint8Array): number {
  const t = frame[0];
  if (t === MINUS) return 1;
  if (t !== BANG) return -1;
  let i = 1;
  while (i < frame.length && frame[i] !== CR) i++;
  return i + 2;
}

/**
 * The error code of an error frame: its first word, e.g. "ERR", "MOVED", "ASK", "TRYAGAIN",
 * "CLUSTERDOWN", "LOADING". Returns "" when the frame is not an error.
 */
export function errorPrefix(frame: Uint8Array): string {
  const start = errorTextStart(frame);
  if (start < 0) return "";
  let s = "";
  for (let i = start; i < frame.length; i++) {
    const c = frame[i]!;
    if (c === SPACE || c === CR) break;
    s += String.fromCharCode(c);
  }
  return s;
}

/** Where a `-MOVED` or `-ASK` error sends a request. */
export interface Redirect {
  readonly kind: "MOVED" | "ASK";
  readonly slot: number;
  /** Hostname or IP (IPv6 without brackets); "" means the node that sent the redirect. */
  readonly host: string;
  readonly port: number;
}

/** The frame starts with `-MOVED ` (7 bytes) or `-ASK ` (5 bytes); returns that length or 0. */
function redirectHeadLength(frame: Uint8Array): number {
  if (frame[0] !== MINUS) return 0;
  if (
    frame[1] === 77 && frame[2] === 79 && frame[3] === 86 && frame[4] === 69 && frame[5] === 68 &&
    frame[6] === SPACE
  ) return 7;
  if (frame[1] === 65 && frame[2] === 83 && frame[3] === 75 && frame[4] === SPACE) return 5;
  return 0;
}

/** True when the frame is a `-MOVED` or `-ASK` redirect (checks 7 bytes at most). */
export function isRedirect(frame: Uint8Array): boolean {
  return redirectHeadLength(frame) > 0;
}

/**
 * Parses `-MOVED <slot> <host>:<port>` or `-ASK ...`. The port follows the last colon, so IPv6
 * hosts (sent without brackets by Redis, tolerated with) and an empty host (`-MOVED 3999 :6381`,
 * Redis 7's "same endpoint as the node that answered") both work. Returns null for anything else.
 */
export function parseRedirect(frame: Uint8Array): Redirect | null {
  const head = redirectHeadLength(frame);
  if (head === 0) return null;
  const kind = head === 7 ? "MOVED" : "ASK";
  const n = frame.length;
  let i = head;
  let slot = 0;
  const slotStart = i;
  while (i < n && frame[i]! >= 48 && frame[i]! <= 57 && i - slotStart < 5) slot = slot * 10 + frame[i++]! - 48;
  if (i === slotStart || frame[i] !== SPACE || slot >= 16384) return null;
  const hostStart = ++i;
  let lineEnd = hostStart;
  while (lineEnd < n && frame[lineEnd] !== CR && frame[lineEnd] !== SPACE) lineEnd++;
  let colon = lineEnd - 1;
  while (colon >= hostStart && frame[colon] !== COLON) colon--;
  if (colon < hostStart) return null;
  let port = 0;
  if (colon + 1 === lineEnd || lineEnd - colon > 6) return null;
  for (let j = colon + 1; j < lineEnd; j++) {
    const c = frame[j]!;
    if (c < 48 || c > 57) return null;
    port = port * 10 + c - 48;
  }
  if (port > 65535) return null;
  let hostFrom = hostStart;
  let hostTo = colon;
  if (hostTo - hostFrom >= 2 && frame[hostFrom] === 91 && frame[hostTo - 1] === 93) {
    hostFrom++;
    hostTo--;
  }
  let host = "";
  for (let j = hostFrom; j < hostTo; j++) host += String.fromCharCode(frame[j]!);
  return { kind, slot, host, port };
}


/**
 * The value of an integer reply `:n\r\n`, or null when the frame is not one. Values beyond 2^53
 * lose precision (decode the frame for a bigint).
 */
export function readInteger(frame: Uint8Array): number | null {
  if (frame[0] !== COLON) return null;
  let i = 1;
  let negative = false;
  if (frame[1] === MINUS) {
    negative = true;
    i = 2;
  }
  const first = i;
  let n = 0;
  for (; i < frame.length; i++) {
    const c = frame[i]!;
    if (c === CR) break;
    if (c < 48 || c > 57) return null;
    n = n * 10 + c - 48;
  }
  if (i === first || frame[i] !== CR) return null;
  return negative ? -n : n;
}
