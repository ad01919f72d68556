/**
 * The part of the `redis-parser` package (v3, untyped CommonJS) that slotgate uses. With
 * `returnBuffers: true` it hands bulk strings over as the result of `buffer.slice(start, end)` on
 * the buffer given to `execute`.
 */
declare module "redis-parser" {
  export interface RedisParserOptions {
    returnReply(reply: unknown): void;
    returnError(error: Error): void;
    returnFatalError?(error: Error): void;
    returnBuffers?: boolean;
    stringNumbers?: boolean;
  }

  export default class RedisParser {
    constructor(options: RedisParserOptions);
    /** Parses `buffer`, calling `returnReply` for each complete value; keeps any unfinished tail. */
    execute(buffer: Uint8Array): void;
    /** Forgets any unfinished tail. */
    reset(): void;
  }
}
