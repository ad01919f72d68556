/**
 * Glob matching with Redis's rules (stringmatchlen in util.c), on bytes: `*` any run, `?` any
 * one byte, `[abc]`, `[^abc]` and ranges `[a-z]` (reversed ranges too), `\x` a literal x, in
 * and out of brackets; an unterminated `[` ends the class at the end of the pattern. Used for
 * ACL key (`~app:*`) and channel (`&news.*`) patterns. Case-sensitive.
 *
 * Every token but `*` consumes exactly one byte, so a single backtrack point (the last `*`)
 * is enough: linear in practice, never exponential, whatever the pattern.
 */

const STAR = 42;
const QUESTION = 63;
const OPEN = 91;
const CLOSE = 93;
const CARET = 94;
const BACKSLASH = 92;
const DASH = 45;

/**
 * A matcher for `pattern`: a plain prefix (`app:*`) or a literal compares bytes and nothing
 * else, any other pattern runs `globMatch`. For patterns checked on every command (ACL keys).
 */
export function compileGlob(pattern: Uint8Array): (subject: Uint8Array) => boolean {
  let special = -1;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === STAR || c === QUESTION || c === OPEN || c === BACKSLASH) {
      special = i;
      break;
    }
  }
  if (special < 0) return (subject) => subject.length === pattern.length && startsWith(subject, pattern, pattern.length);
  if (special === pattern.length - 1 && pattern[special] === STAR) {
    const length = special;
    return (subject) => subject.length >= length && startsWith(subject, pattern, length);
  }
  return (subject) => globMatch(pattern, subject);
}

function startsWith(subject: Uint8Array, prefix: Uint8Array, length: number): boolean {
  for (let i = 0; i < length; i++) if (subject[i] !== prefix[i]) return false;
  return true;
}

/** Whether `subject` matches `pattern`. */
export function globMatch(pattern: Uint8Array, subject: Uint8Array): boolean {
  let p = 0;
  let s = 0;
  let starP = -1;
  let starS = 0;
  while (s < subject.length) {
    if (p < pattern.length && pattern[p] === STAR) {
      // Collapse a run of stars; remember where to resume if what follows fails.
      while (p < pattern.length && pattern[p] === STAR) p++;
      if (p === pattern.length) return true;
      starP = p;
      starS = s;
      continue;
    }
    const next = p < pattern.length ? matchOne(pattern, p, subject[s]!) : -1;
    if (next >= 0) {
      p = next;
      s++;
    } else if (starP >= 0) {
      // Let the last star swallow one more byte and retry what follows it.
      p = starP;
      s = ++starS;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === STAR) p++;
  return p === pattern.length;
}

/** Match the token at `p` (not a star) against one byte: the index after the token, or -1. */
function matchOne(pattern: Uint8Array, p: number, c: number): number {
  const token = pattern[p]!;
  if (token === QUESTION) return p + 1;
  if (token === BACKSLASH && p + 1 < pattern.length) return pattern[p + 1] === c ? p + 2 : -1;
  if (token !== OPEN) return token === c ? p + 1 : -1;
  let i = p + 1;
  const negate = pattern[i] === CARET;
  if (negate) i++;
  let matched = false;
  while (i < pattern.length) {
    const at = pattern[i]!;
    if (at === BACKSLASH && i + 1 < pattern.length) {
      if (pattern[i + 1] === c) matched = true;
      i += 2;
    } else if (at === CLOSE) {
      break;
    } else if (i + 2 < pattern.length && pattern[i + 1] === DASH) {
      let start = at;
      let end = pattern[i + 2]!;
      if (start > end) [start, end] = [end, start];
      if (c >= start && c <= end) matched = true;
      i += 3;
    } else {
      if (at === c) matched = true;
      i++;
    }
  }
  // `i` is on the closing bracket, or past the end of an unterminated class.
  if (negate) matched = !matched;
  return matched ? Math.min(i + 1, pattern.length) : -1;
}
