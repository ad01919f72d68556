/**
 * Command lookup and key extraction over the generated table. Fixed-position commands use the
 * legacy first/last/step triple; commands flagged MOVABLEKEYS are resolved from their key specs
 * with the same arithmetic as Redis's getKeysUsingKeySpecs().
 */
import {
  BS_INDEX,
  BS_KEYWORD,
  COMMANDS,
  FK_KEYNUM,
  FK_RANGE,
  KS_INCOMPLETE,
  MOVABLEKEYS,
  type RawKeySpec,
} from "./table.ts";

/** A command (or subcommand) of the table, indexed for lookups. */
export interface CommandInfo {
  /** Upper-case name; subcommands as "CONTAINER|SUB", e.g. "CLUSTER|SLOTS". */
  readonly name: string;
  /** Redis arity: N means exactly N arguments (name included), -N at least N. */
  readonly arity: number;
  /** Bitmask of the flag constants exported by ./table.ts (WRITE, READONLY, MOVABLEKEYS...). */
  readonly flags: number;
  /** Legacy key positions in the full argument vector (0 = no keys; negative last counts from the end). */
  readonly firstKey: number;
  readonly lastKey: number;
  readonly step: number;
  readonly keySpecs: readonly RawKeySpec[];
  /** COMMAND tips, e.g. "request_policy:all_shards", "response_policy:agg_sum". */
  readonly tips: readonly string[];
  /** Subcommands by upper-case name, for container commands (CLUSTER, OBJECT, CONFIG...). */
  readonly subcommands: ReadonlyMap<string, CommandInfo> | null;
}

const NO_TIPS: readonly string[] = [];

const TABLE: ReadonlyMap<string, CommandInfo> = (() => {
  const table = new Map<string, CommandInfo>();
  const containers = new Map<string, Map<string, CommandInfo>>();
  for (const [name, arity, flags, firstKey, lastKey, step, keySpecs, tips] of COMMANDS) {
    const bar = name.indexOf("|");
    const subcommands = new Map<string, CommandInfo>();
    const info: CommandInfo = {
      name, arity, flags, firstKey, lastKey, step, keySpecs, tips: tips ?? NO_TIPS,
      subcommands: bar < 0 ? subcommands : null,
    };
    if (bar < 0) {
      table.set(name, info);
      containers.set(name, subcommands);
    } else {
      containers.get(name.slice(0, bar))!.set(name.slice(bar + 1), info);
    }
  }
  // Only containers keep a subcommand map, so a null check tells them apart.
  for (const [name, info] of table) {
    if (containers.get(name)!.size === 0) table.set(name, { ...info, subcommands: null });
  }
  return table;
})();

/** Upper-cases ASCII letters of an argument (other bytes map to Latin-1 and match nothing). */
function upper(arg: Uint8Array): string {
  let s = "";
  for (let i = 0; i < arg.length; i++) {
    const c = arg[i]!;
    s += String.fromCharCode(c >= 97 && c <= 122 ? c - 32 : c);
  }
  return s;
}

/**
 * The table entry for a request. `nameUpper` is the upper-cased command name; for a container
 * command `args[1]` selects the subcommand. An unknown or missing subcommand yields the container
 * itself (no keys; Redis will answer its own "unknown subcommand" or arity error). Returns null
 * for an unknown command.
 */
export function commandInfo(nameUpper: string, args: readonly Uint8Array[]): CommandInfo | null {
  const info = TABLE.get(nameUpper);
  if (info === undefined) return null;
  const subs = info.subcommands;
  if (subs !== null && args.length > 1) return subs.get(upper(args[1]!)) ?? info;
  return info;
}

/** Every command and subcommand of the table, by upper-case name ("GET", "CLUSTER|SLOTS"...). */
export function allCommands(): CommandInfo[] {
  const all: CommandInfo[] = [];
  for (const info of TABLE.values()) {
    all.push(info);
    if (info.subcommands !== null) for (const sub of info.subcommands.values()) all.push(sub);
  }
  return all;
}

/** True when `argc` arguments (command name included) satisfy the command's arity. */
export function checkArity(info: CommandInfo, argc: number): boolean {
  return info.arity >= 0 ? argc === info.arity : argc >= -info.arity;
}

/** Case-insensitive comparison of an argument with an upper-case ASCII keyword. */
function isKeyword(arg: Uint8Array, keyword: string): boolean {
  const n = keyword.length;
  if (arg.length !== n) return false;
  for (let i = 0; i < n; i++) {
    const c = arg[i]!;
    if ((c >= 97 && c <= 122 ? c - 32 : c) !== keyword.charCodeAt(i)) return false;
  }
  return true;
}

/** A non-negative decimal argument (string2ll-strict), or -1. */
function parseCount(arg: Uint8Array): number {
  const n = arg.length;
  if (n === 0 || n > 15 || (n > 1 && arg[0] === 48)) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const d = arg[i]! - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/**
 * Positions of the keys in `args` (the full argument vector, name at 0), in key-spec order: []
 * for keyless commands, null when they cannot be determined (key specs of unknown shape as in
 * SORT's BY/STORE, incomplete specs as in MIGRATE, or a malformed numkeys/range).
 */
export function keyIndexes(info: CommandInfo, args: readonly Uint8Array[]): number[] | null {
  const argc = args.length;
  if ((info.flags & MOVABLEKEYS) === 0) {
    const first = info.firstKey;
    if (first === 0) return [];
    const last = info.lastKey < 0 ? argc + info.lastKey : info.lastKey;
    const step = info.step;
    const keys: number[] = [];
    for (let i = first; i <= last && i < argc; i += step) keys.push(i);
    return keys;
  }
  const keys: number[] = [];
  for (const spec of info.keySpecs) {
    const [flags, beginSearch, indexOrKeyword, startFrom, findKeys, a, b, c] = spec;
    if ((flags & KS_INCOMPLETE) !== 0) return null;
    let first = 0;
    if (beginSearch === BS_INDEX) {
      first = indexOrKeyword as number;
    } else if (beginSearch === BS_KEYWORD) {
      const keyword = indexOrKeyword as string;
      const from = startFrom > 0 ? startFrom : argc + startFrom;
      const to = startFrom > 0 ? argc - 1 : 1;
      for (let i = from; i !== to; i = from <= to ? i + 1 : i - 1) {
        if (i >= argc || i < 1) break;
        if (isKeyword(args[i]!, keyword)) {
          first = i + 1;
          break;
        }
      }
      if (first === 0) continue;
    } else {
      return null;
    }
    let last: number;
    let step: number;
    if (findKeys === FK_RANGE) {
      // a = lastkey, b = keystep, c = limit
      step = b;
      if (a >= 0) last = first + a;
      else if (c === 0) last = argc + a;
      else last = first + (Math.floor((argc - first) / c) + a);
    } else if (findKeys === FK_KEYNUM) {
      // a = keynumidx, b = firstkey, c = keystep
      step = c;
      const at = first + a;
      if (at >= argc) return null;
      const count = parseCount(args[at]!);
      if (count < 0) return null;
      first += b;
      last = first + count - 1;
      if (count === 0) continue;
    } else {
      return null;
    }
    if (last >= argc || last < first || first >= argc) return null;
    for (let i = first; i <= last; i += step) keys.push(i);
  }
  return keys;
}
