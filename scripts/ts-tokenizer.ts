/**
 * A small, forgiving TypeScript tokenizer for lint scripts. It only needs to tell code from
 * comments, string/template text and regex literals, so that a banned word inside a JSDoc or a
 * string is not mistaken for a use. Template `${...}` expressions are tokenized as code.
 */

/** Token kinds. `string` covers quoted strings and the literal parts of template strings. */
export type TokenKind = "ident" | "number" | "string" | "regex" | "punct";

/** One token; `offset` is the index of its first character in the source. */
export interface Token {
  kind: TokenKind;
  value: string;
  offset: number;
}

// After these keywords a `/` starts a regex literal, not a division.
const KEYWORDS_BEFORE_EXPRESSION = new Set([
  "return", "typeof", "case", "do", "else", "in", "of", "new", "delete", "void", "throw",
  "instanceof", "yield", "await",
]);

const ID_START = /[\p{ID_Start}$_#]/u;
const ID_CONTINUE = /[\p{ID_Continue}$\u200c\u200d]/u;

/** Split `source` into tokens, dropping whitespace and comments. Never throws on odd input. */
export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  // One entry per open `{`: "code" for a block/object, "template" for a `${` in a template.
  const braces: Array<"code" | "template"> = [];
  const n = source.length;
  let i = 0;

  /** Scan template text starting at `i` (just after "`" or a closing "}"); stops after "`" or "${". */
  const scanTemplate = () => {
    const start = i;
    let text = "";
    while (i < n) {
      const c = source[i]!;
      if (c === "\\") {
        text += source.slice(i, i + 2);
        i += 2;
      } else if (c === "`") {
        i++;
        break;
      } else if (c === "$" && source[i + 1] === "{") {
        i += 2;
        braces.push("template");
        break;
      } else {
        text += c;
        i++;
      }
    }
    tokens.push({ kind: "string", value: text, offset: start });
  };

  while (i < n) {
    const c = source[i]!;
    const next = source[i + 1];
    if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v" || c === "\ufeff") {
      i++;
    } else if (c === "#" && next === "!" && i === 0) {
      while (i < n && source[i] !== "\n") i++; // hashbang line
    } else if (c === "/" && next === "/") {
      while (i < n && source[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      i = end < 0 ? n : end + 2;
    } else if (c === "'" || c === '"') {
      const start = i++;
      let text = "";
      while (i < n && source[i] !== c && source[i] !== "\n") {
        if (source[i] === "\\") {
          text += unescape(source[i + 1] ?? "");
          i += 2;
        } else {
          text += source[i++];
        }
      }
      i++;
      tokens.push({ kind: "string", value: text, offset: start });
    } else if (c === "`") {
      i++;
      scanTemplate();
    } else if (c === "}" && braces.length > 0 && braces[braces.length - 1] === "template") {
      braces.pop();
      i++;
      scanTemplate();
    } else if (ID_START.test(c)) {
      const start = i++;
      while (i < n && ID_CONTINUE.test(source[i]!)) i++;
      tokens.push({ kind: "ident", value: source.slice(start, i), offset: start });
    } else if (/[0-9]/.test(c) || (c === "." && next !== undefined && /[0-9]/.test(next))) {
      const start = i++;
      while (i < n && /[0-9A-Za-z_.]/.test(source[i]!)) i++;
      tokens.push({ kind: "number", value: source.slice(start, i), offset: start });
    } else if (c === "/" && regexAllowed(tokens[tokens.length - 1])) {
      const start = i++;
      let inClass = false;
      while (i < n && source[i] !== "\n") {
        const r = source[i]!;
        if (r === "\\") i++;
        else if (r === "[") inClass = true;
        else if (r === "]") inClass = false;
        else if (r === "/" && !inClass) break;
        i++;
      }
      i++;
      while (i < n && /[a-z]/i.test(source[i]!)) i++; // flags
      tokens.push({ kind: "regex", value: source.slice(start, i), offset: start });
    } else if (c === "?" && next === "." && !/[0-9]/.test(source[i + 2] ?? "")) {
      tokens.push({ kind: "punct", value: "?.", offset: i });
      i += 2;
    } else {
      if (c === "{") braces.push("code");
      else if (c === "}") braces.pop();
      tokens.push({ kind: "punct", value: c, offset: i });
      i++;
    }
  }
  return tokens;
}

/** Whether a `/` after `previous` begins a regex literal (rather than being a division). */
function regexAllowed(previous: Token | undefined): boolean {
  if (previous === undefined) return true;
  if (previous.kind === "ident") return KEYWORDS_BEFORE_EXPRESSION.has(previous.value);
  if (previous.kind === "punct") return !")]}".includes(previous.value);
  return false; // number, string, regex: division
}

/** Decode the common single-character escapes; anything else stands for itself. */
function unescape(c: string): string {
  return ({ n: "\n", t: "\t", r: "\r", "0": "\0" } as Record<string, string>)[c] ?? c;
}

/** 1-based line and column of `offset` in `source`. */
export function lineAndColumn(source: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++) {
    if (source[i] === "\n") {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}
