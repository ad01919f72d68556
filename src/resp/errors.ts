/**
 * Errors of the RESP layer. `ProtocolError` is thrown for malformed bytes on either side of the
 * proxy; `ReplyError` is an error reply (`-ERR ...`) decoded into a value by `decode`.
 */

/**
 * The peer sent bytes that are not valid RESP. `message` is worded like Redis's own (e.g.
 * "invalid bulk length", "expected '$', got 'x'"); `replyText` is what Redis itself would answer
 * after `-ERR `, so a client can be told `-ERR ${replyText}` before its connection is closed. The
 * stream cannot be resynchronised afterwards: the parser that threw must be discarded.
 */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  readonly code = "PROTOCOL_ERROR";
  constructor(message: string) {
    super(message);
  }

  /** "Protocol error: <message>", the text Redis sends in its `-ERR` reply. */
  get replyText(): string {
    return `Protocol error: ${this.message}`;
  }
}

/**
 * An unfinished frame grew past `RespLimits.maxFrameBytes` (for a client: its query buffer limit).
 * Thrown while reading, before the bytes that cross the limit are held.
 */
export class FrameTooBigError extends ProtocolError {
  constructor(
    /** Bytes the frame would hold with the chunk that crossed the limit. */
    readonly bytes: number,
    readonly limit: number,
  ) {
    super("too big frame");
  }
}

/**
 * An error reply from a server, decoded. `prefix` is the first word of the message ("ERR",
 * "MOVED", "WRONGTYPE", ...), which Redis uses as the error code.
 */
export class ReplyError extends Error {
  override readonly name = "ReplyError";
  readonly prefix: string;
  constructor(message: string) {
    super(message);
    const space = message.indexOf(" ");
    this.prefix = space < 0 ? message : message.slice(0, space);
  }
}
