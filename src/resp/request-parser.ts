/**
 * Client request parsing. Our scanner finds where each request ends; contiguous runs of complete
 * multibulk requests within a chunk are then decoded by `redis-parser` in one `execute` each, so
 * that parser never holds a partial frame. A request that spans chunks has its arguments taken
 * as its chunks arrive (./arg-collector.ts), so a huge one is never decoded in one long step.
 * Inline commands are split here, the way Redis's sdssplitargs does.
 */
/// <reference path="./redis-parser.d.ts" />
import RedisParser from "redis-parser";
import { encodeCommand } from "./encode.ts";
import { ProtocolError } from "./errors.ts";
import { DEFAULT_LIMITS, ScanState, scanFrom, scanInline, type RespLimits } from "./frame.ts";
import { FrameTail } from "./frame-tail.ts";
import { ArgCollector } from "./arg-collector.ts";
import { STAR } from "./bytes.ts";

/** Receives one request: its arguments (command name first) and its exact multibulk bytes. */
export type RequestHandler = (args: Uint8Array[], frame: Uint8Array) => void;

const EMPTY = new Uint8Array(0);

/**
 * redis-parser returns each bulk string as `buffer.slice(start, end)` of the buffer it parses.
 * On a plain Uint8Array that is a copy; this view makes it a zero-copy window instead, as it is
 * on a Node Buffer, without depending on Buffer.
 */
class SlicingView extends Uint8Array {
  override slice(start = 0, end = this.length): Uint8Array<ArrayBuffer> {
    return new Uint8Array(this.buffer as ArrayBuffer, this.byteOffset + start, end - start);
  }
}

/**
 * The scan of each complete request, shared by every parser: its state is read right after the
 * scan returns (copied into a `FrameTail` when the request is unfinished), before anything is
 * delivered that could make another parser scan.
 */
const SCAN = new ScanState();

function unexpected(error: Error): void {
  throw new ProtocolError(`internal request decoding error: ${error.message}`);
}

/**
 * Turns a client's byte stream into requests. `push` calls `onRequest` once per complete request,
 * in order, synchronously, then keeps any unfinished tail for the next chunk (bounded by the
 * limits; inline lines by 64 KiB). Arguments and frames may be views of the pushed chunks, which
 * must not be mutated afterwards. Empty requests (`*0`, blank inline lines) are skipped as Redis
 * does. On malformed input `push` first delivers the requests before the bad one, then throws a
 * `ProtocolError`. Any exception (an `onRequest` one included) leaves the parser failed: every
 * later `push` rethrows it until `reset`. Not re-entrant: `onRequest` must not push.
 */
export class RequestParser {
  /**
   * An unfinished request (or inline line) held across chunks, and its arguments taken chunk by
   * chunk: made when a request spans chunks, let go once it is complete, so that the many idle
   * clients hold neither.
   */
  private tail: FrameTail | null = null;
  private collector: ArgCollector | null = null;
  /** End offsets (in `runBuf`) of the frames of the run being decoded. */
  private readonly ends: number[] = [];
  private runBuf: Uint8Array = EMPTY;
  private runPos = 0;
  private endIndex = 0;
  /** What made an earlier push fail; the stream position is lost, so every later push rethrows it. */
  private failure: unknown = null;

  constructor(
    private readonly onRequest: RequestHandler,
    private readonly limits: RespLimits = DEFAULT_LIMITS,
  ) {}

  /**
   * One redis-parser decodes for every RequestParser: it is only ever given whole frames, so it
   * holds nothing between runs, and one per client connection (most of them idle) would be
   * weight for nothing. `decoding` is the parser whose run it is decoding, null between runs.
   */
  private static shared: RedisParser | null = null;
  private static decoding: RequestParser | null = null;

  private static decoder(deliver: (args: Uint8Array[]) => void): RedisParser {
    return new RedisParser({ returnBuffers: true, returnReply: (args) => deliver(args as Uint8Array[]), returnError: unexpected, returnFatalError: unexpected });
  }

  /** Bytes held for an unfinished request since the last `push` (its chunks, and its argument offsets). */
  get bufferedBytes(): number {
    return (this.tail?.bufferedBytes ?? 0) + (this.collector?.indexBytes ?? 0);
  }

  /** Forgets any unfinished request and a previous failure. */
  reset(): void {
    this.tail = null;
    this.collector = null;
    this.ends.length = 0;
    this.failure = null;
  }

  /** Feeds bytes received from the client. */
  push(chunk: Uint8Array): void {
    if (this.failure !== null) throw this.failure;
    const n = chunk.length;
    if (n === 0) return;
    const limits = this.limits;
    let p = 0;
    let runStart = 0;
    try {
      const held = this.tail;
      if (held !== null) {
        const q = held.resume(chunk, limits);
        const inline = held.inline;
        const collector = this.collector;
        // Fed only once the scan has checked these bytes (it throws on malformed input).
        if (!inline) collector!.feed(chunk, 0, q < 0 ? n : q);
        if (q < 0) return;
        const argc = held.state.argc;
        const frame = held.finish(chunk, q);
        this.tail = this.collector = null;
        if (inline) this.inline(frame, 0, frame.length);
        else {
          const args = collector!.take(frame);
          if (argc > 0) this.onRequest(args, frame);
        }
        p = runStart = q;
      }
      const st = SCAN;
      while (p < n) {
        if (chunk[p] === STAR) {
          st.reset(true);
          const q = scanFrom(chunk, p, n, st, limits);
          if (q < 0) {
            // The stopped scan is copied first: the requests delivered next may make another
            // client's parser scan (synchronously), with the same shared state.
            const tail = new FrameTail();
            tail.state.copyFrom(st);
            this.flush(chunk, runStart);
            this.tail = tail;
            tail.begin(chunk, p, n, limits);
            const collector = (this.collector = new ArgCollector());
            collector.feed(chunk, p, n);
            return;
          }
          if (st.argc > 0) this.ends.push(q);
          else {
            this.flush(chunk, runStart);
            runStart = q;
          }
          p = q;
        } else {
          this.flush(chunk, runStart);
          const q = scanInline(chunk, p, n);
          if (q < 0) {
            const tail = (this.tail = new FrameTail());
            tail.beginInline(chunk, p, n);
            return;
          }
          this.inline(chunk, p, q);
          p = runStart = q;
        }
      }
      this.flush(chunk, runStart);
    } catch (error) {
      this.failure = error;
      this.tail = this.collector = null;
      // Requests before a malformed one were complete: Redis would have run them.
      if (error instanceof ProtocolError && this.ends.length > 0) this.flush(chunk, runStart);
      throw error;
    }
  }

  /** Decodes the run of complete frames from `start` to the last recorded end. */
  private flush(buf: Uint8Array, start: number): void {
    const ends = this.ends;
    const count = ends.length;
    if (count === 0) return;
    this.runBuf = buf;
    this.runPos = start;
    this.endIndex = 0;
    // A run begun while another is being decoded (a request that makes another client's parser
    // push, synchronously) gets a decoder of its own.
    const nested = RequestParser.decoding !== null;
    const decoder = nested
      ? RequestParser.decoder((args) => this.deliver(args))
      : (RequestParser.shared ??= RequestParser.decoder((args) => RequestParser.decoding!.deliver(args)));
    if (!nested) RequestParser.decoding = this;
    try {
      decoder.execute(new SlicingView(buf.buffer as ArrayBuffer, buf.byteOffset + start, ends[count - 1]! - start));
    } catch (error) {
      decoder.reset();
      throw error;
    } finally {
      if (!nested) RequestParser.decoding = null;
      ends.length = 0;
      this.runBuf = EMPTY;
    }
    if (this.endIndex !== count) throw new ProtocolError("internal request decoding error");
  }

  private deliver(args: Uint8Array[]): void {
    const end = this.ends[this.endIndex++]!;
    const frame = this.runBuf.subarray(this.runPos, end);
    this.runPos = end;
    this.onRequest(args, frame);
  }

  /** Handles the inline line `buf[start, end)` (end is just past its LF). */
  private inline(buf: Uint8Array, start: number, end: number): void {
    let stop = end - 1;
    if (stop > start && buf[stop - 1] === 13) stop--;
    const args = splitInline(buf, start, stop);
    if (args === null) throw new ProtocolError("unbalanced quotes in request");
    if (args.length > 0) this.onRequest(args, encodeCommand(args));
  }
}

/** C isspace(): space, \t, \n, \v, \f, \r. */
function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Splits an inline command line (without its line ending) into arguments exactly like Redis's
 * sdssplitargs: blanks separate, "double quotes" take \n \r \t \b \a \xHH and \<any> escapes,
 * 'single quotes' take only \', and a closing quote must be followed by a blank or the end. A NUL
 * byte ends the line, as it ends the C string Redis splits. Returns null for unbalanced quotes.
 */
export function splitInline(buf: Uint8Array, start: number, end: number): Uint8Array[] | null {
  const args: Uint8Array[] = [];
  const out = new Uint8Array(end - start);
  // Reads past the end, or at a NUL, see 0: the C string's terminator.
  const at = (i: number): number => (i < end ? buf[i]! : 0);
  let p = start;
  for (;;) {
    while (isSpace(at(p))) p++;
    if (at(p) === 0) return args;
    let w = 0;
    let inDouble = false;
    let inSingle = false;
    for (let done = false; !done; ) {
      const c = at(p);
      if (inDouble) {
        if (c === 92 && at(p + 1) === 120 && hexValue(at(p + 2)) >= 0 && hexValue(at(p + 3)) >= 0) {
          out[w++] = hexValue(at(p + 2)) * 16 + hexValue(at(p + 3));
          p += 3;
        } else if (c === 92 && at(p + 1) !== 0) {
          p++;
          const e = at(p);
          out[w++] = e === 110 ? 10 : e === 114 ? 13 : e === 116 ? 9 : e === 98 ? 8 : e === 97 ? 7 : e;
        } else if (c === 34) {
          const next = at(p + 1);
          if (next !== 0 && !isSpace(next)) return null;
          done = true;
        } else if (c === 0) {
          return null;
        } else {
          out[w++] = c;
        }
      } else if (inSingle) {
        if (c === 92 && at(p + 1) === 39) {
          p++;
          out[w++] = 39;
        } else if (c === 39) {
          const next = at(p + 1);
          if (next !== 0 && !isSpace(next)) return null;
          done = true;
        } else if (c === 0) {
          return null;
        } else {
          out[w++] = c;
        }
      } else if (c === 32 || c === 10 || c === 13 || c === 9 || c === 0) {
        done = true;
      } else if (c === 34) {
        inDouble = true;
      } else if (c === 39) {
        inSingle = true;
      } else {
        out[w++] = c;
      }
      if (at(p) !== 0) p++;
    }
    args.push(out.slice(0, w));
  }
}

/**
 * The command name (or any ASCII argument) upper-cased, for table lookups. Builds the string
 * directly from the bytes; non-ASCII bytes map to Latin-1 characters, which match no command (use
 * a TextDecoder when a name must be shown to a user).
 */
export function commandName(arg: Uint8Array): string {
  const n = arg.length;
  let s = "";
  for (let i = 0; i < n; i++) {
    const c = arg[i]!;
    s += String.fromCharCode(c >= 97 && c <= 122 ? c - 32 : c);
  }
  return s;
}
