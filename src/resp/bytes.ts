/**
 * The bytes RESP is framed by: each reply's type byte, and the line end. Readers compare a
 * frame's first byte with these instead of decoding it.
 */

/** `+` simple string. */
export const PLUS = 43;
/** `-` error (also the sign of a nil length, `$-1`). */
export const MINUS = 45;
/** `:` integer. */
export const COLON = 58;
/** `$` bulk string. */
export const DOLLAR = 36;
/** `*` array. */
export const STAR = 42;
/** `!` RESP3 blob error. */
export const BANG = 33;
/** `_` RESP3 null. */
export const UNDERSCORE = 95;
/** `>` RESP3 push. */
export const PUSH = 62;
/** `\r` */
export const CR = 13;
/** `\n` */
export const LF = 10;
/** `,` RESP3 double. */
export const COMMA = 44;
/** `#` RESP3 boolean. */
export const HASH = 35;
/** `(` RESP3 big number. */
export const LPAREN = 40;
/** `=` RESP3 verbatim string. */
export const EQUALS = 61;
/** `%` RESP3 map. */
export const PERCENT = 37;
/** `~` RESP3 set. */
export const TILDE = 126;
/** `|` RESP3 attribute. */
export const PIPE = 124;
