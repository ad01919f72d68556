/**
 * lint-core: the core (`src/`) must reach clocks, timers, randomness, processes and I/O only
 * through the `Runtime` port, so that it runs unchanged on Node, Bun, Deno and the simulator.
 * This script fails (exit 1) listing `file:line:column  token` for every direct use. Comments and
 * string literals are stripped by a tokenizer first, so prose mentioning `setTimeout` is fine.
 * It then checks that every import points down the layers (scripts/import-layers.ts).
 *
 * Usage: npx tsx scripts/lint-core.ts [dir]   (default: src, relative to the repo root)
 */
import { readFileSync } from "node:fs";
import { dirname, relative, resolve, sep } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { checkImportTree, formatFinding } from "./import-layers.ts";
import { tsFiles } from "./ts-files.ts";
import { lineAndColumn, tokenize, type Token } from "./ts-tokenizer.ts";

/** One direct runtime use found in a file. */
export interface LintFinding {
  file: string;
  line: number;
  column: number;
  /** The offending token, e.g. `setTimeout`, `Math.random`, `import "node:fs"`. */
  token: string;
}

/** Runtime globals the core must not name at all (also caught as `globalThis.X`). */
const BANNED_GLOBALS = new Set([
  "setTimeout", "setInterval", "setImmediate", "clearTimeout", "clearInterval", "clearImmediate",
  "Date", "performance", "process", "Deno", "Bun",
]);
/** `object.member` pairs that are banned while the object itself is fine. */
const BANNED_MEMBERS: Record<string, string[]> = { Math: ["random"], AbortSignal: ["timeout"] };
/** Names through which globals can be reached. */
const GLOBAL_OBJECTS = new Set(["globalThis", "window", "self", "global"]);
/** Node builtin modules importable without the `node:` prefix (first path segment). */
const NODE_BUILTINS = new Set([
  "assert", "async_hooks", "buffer", "child_process", "cluster", "console", "constants", "crypto",
  "dgram", "diagnostics_channel", "dns", "domain", "events", "fs", "http", "http2", "https",
  "inspector", "module", "net", "os", "path", "perf_hooks", "process", "punycode", "querystring",
  "readline", "repl", "stream", "string_decoder", "sys", "timers", "tls", "trace_events", "tty",
  "url", "util", "v8", "vm", "wasi", "worker_threads", "zlib",
]);
/** The one file allowed to import redis-parser (it wraps it behind a runtime-neutral API). */
const REDIS_PARSER_FILE = "src/resp/request-parser.ts";

/** Whether `file` may not import `specifier`. */
function bannedImport(specifier: string, file: string): boolean {
  if (/^(node|bun|jsr|npm|deno):/.test(specifier) || specifier === "bun") return true;
  if (specifier === "redis-parser") return file !== REDIS_PARSER_FILE;
  return NODE_BUILTINS.has(specifier.split("/")[0]!);
}

/**
 * Check one file's source text. `file` is the repo-relative path with forward slashes (it decides
 * the redis-parser exception and is copied into the findings).
 */
export function lintSource(source: string, file: string): LintFinding[] {
  const tokens = tokenize(source);
  const findings: LintFinding[] = [];
  const report = (at: Token, token: string) => findings.push({ file, ...lineAndColumn(source, at.offset), token });
  const value = (k: number) => tokens[k]?.value;
  const isMemberAccess = (k: number) => value(k) === "." || value(k) === "?.";

  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.kind === "string") {
      const prev = value(k - 1);
      const viaCall = prev === "(" && (value(k - 2) === "import" || value(k - 2) === "require");
      if ((prev === "from" || prev === "import" || viaCall) && bannedImport(t.value, file)) {
        report(t, `import "${t.value}"`);
      }
      // globalThis["setTimeout"]
      if (prev === "[" && GLOBAL_OBJECTS.has(value(k - 2) ?? "") && BANNED_GLOBALS.has(t.value)) {
        report(tokens[k - 2]!, `${value(k - 2)}["${t.value}"]`);
      }
      continue;
    }
    if (t.kind !== "ident") continue;
    // `x.name` is a member of some object, not the global, unless the object is globalThis & co.
    const member = isMemberAccess(k - 1);
    const onGlobal = member && tokens[k - 2]?.kind === "ident" && GLOBAL_OBJECTS.has(value(k - 2)!) && !isMemberAccess(k - 3);
    if (member && !onGlobal) continue;
    const name = onGlobal ? `${value(k - 2)}.${t.value}` : t.value;
    const at = onGlobal ? tokens[k - 2]! : t;

    if (t.value === "require" && value(k + 1) === "(") {
      report(at, "require(");
    } else if (BANNED_GLOBALS.has(t.value) && !isPropertyKey(tokens, k)) {
      report(at, name);
    } else if (BANNED_MEMBERS[t.value] !== undefined && isMemberAccess(k + 1) && tokens[k + 2] !== undefined) {
      if (BANNED_MEMBERS[t.value]!.includes(tokens[k + 2]!.value)) report(at, `${name}.${value(k + 2)}`);
    }
  }
  return findings;
}

/** `{ setTimeout: x }`, `(process: P)`, `readonly performance: number` declare a name; they don't use the global. */
function isPropertyKey(tokens: Token[], k: number): boolean {
  const next = tokens[k + 1]?.value;
  const declares = next === ":" || (next === "?" && tokens[k + 2]?.value === ":");
  if (!declares) return false;
  const prev = tokens[k - 1];
  return (
    prev === undefined ||
    ["{", ",", "(", ";", "}"].includes(prev.value) ||
    ["readonly", "public", "private", "protected", "static"].includes(prev.value)
  );
}

/** Lint every `.ts` file under `dir` (recursively). Paths in findings are relative to `root`. */
export function lintCore(dir: string, root = process.cwd()): { files: number; findings: LintFinding[] } {
  const findings: LintFinding[] = [];
  let files = 0;
  for (const path of tsFiles(dir)) {
    files++;
    const file = relative(root, path).split(sep).join("/");
    findings.push(...lintSource(readFileSync(path, "utf8"), file));
  }
  return { files, findings };
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  const dir = process.argv[2] ?? "src";
  const { files, findings } = lintCore(resolve(root, dir), root);
  for (const f of findings) console.log(`${f.file}:${f.line}:${f.column}  ${f.token}`);
  if (findings.length > 0) {
    console.log(`lint-core: ${findings.length} direct runtime use(s) in ${dir}; go through the Runtime port instead`);
    process.exitCode = 1;
  } else {
    console.log(`lint-core: ok (${files} files)`);
  }

  // The import rule looks at the whole repo whatever `dir` is: layers span src/, scripts/, adapters/.
  const imports = checkImportTree(root);
  for (const f of imports.findings) console.log(formatFinding(f));
  if (imports.findings.length > 0) {
    console.log(`lint-core: ${imports.findings.length} import(s) against the layers, or circles; see scripts/import-layers.ts`);
    process.exitCode = 1;
  } else {
    console.log(`lint-core: imports ok (${imports.files} files)`);
  }
}
