/**
 * Command lookup and key extraction. A `CommandTable` starts from the built-in Redis 7 table
 * (./generated/redis-7.0.ts) and takes rows learned from an upstream's `COMMAND` (./learn.ts) over it, so new
 * commands and module commands route by their own key specs. Fixed-position commands use the
 * legacy first/last/step triple; commands flagged MOVABLEKEYS are resolved from their key specs
 * with the same arithmetic as Redis's getKeysUsingKeySpecs(), falling back, as Redis does, to a
 * command's own key finder (./getkeys.ts) when its specs cannot tell.
 */
import { BS_INDEX, BS_KEYWORD, FK_KEYNUM, FK_RANGE, KS_INCOMPLETE, MOVABLEKEYS, type RawCommand, type RawKeySpec } from "./flags.ts";
import { COMMANDS } from "./generated/redis-7.0.ts";
import { KEY_FINDERS, isKeyword, type KeyFinder } from "./getkeys.ts";

/** A command (or subcommand) of the table, indexed for lookups. */
export interface CommandInfo {
  /** Upper-case name; subcommands as "CONTAINER|SUB", e.g. "CLUSTER|SLOTS". */
  readonly name: string;
  /** Redis arity: N means exactly N arguments (name included), -N at least N. */
  readonly arity: number;
  /** Bitmask of the flag constants exported by ./flags.ts (WRITE, READONLY, MOVABLEKEYS...). */
  readonly flags: number;
  /** Legacy key positions in the full argument vector (0 = no keys; negative last counts from the end). */
  readonly firstKey: number;
  readonly lastKey: number;
  readonly step: number;
  readonly keySpecs: readonly RawKeySpec[];
  /** COMMAND tips, e.g. "request_policy:all_shards", "response_policy:agg_sum". */
  readonly tips: readonly string[];
  /** ACL categories, a bitmask of ./flags.ts's `CAT_*` (0: none known). */
  readonly categories: number;
  /** Subcommands by upper-case name, for container commands (CLUSTER, OBJECT, CONFIG...). */
  readonly subcommands: ReadonlyMap<string, CommandInfo> | null;
  /** Finds the keys when the key specs cannot (SORT, SORT_RO, MIGRATE); null for the others. */
  readonly keyFinder: KeyFinder | null;
}

const NO_TIPS: readonly string[] = [];

function infoOf(row: RawCommand, subcommands: ReadonlyMap<string, CommandInfo> | null): CommandInfo {
  const [name, arity, flags, firstKey, lastKey, step, keySpecs, tips, categories] = row;
  return { name, arity, flags, firstKey, lastKey, step, keySpecs, tips: tips ?? NO_TIPS, categories: categories ?? 0, subcommands, keyFinder: KEY_FINDERS.get(name) ?? null };
}

/**
 * Index rows by name, subcommands under their container (in any order). Only containers keep a
 * subcommand map, so a null check tells them apart; a subcommand whose container is missing is
 * unreachable and left out.
 */
function buildIndex(rows: Iterable<RawCommand>): Map<string, CommandInfo> {
  const top: RawCommand[] = [];
  const subs = new Map<string, Map<string, CommandInfo>>();
  for (const row of rows) {
    const bar = row[0].indexOf("|");
    if (bar < 0) {
      top.push(row);
      continue;
    }
    const container = row[0].slice(0, bar);
    let map = subs.get(container);
    if (!map) subs.set(container, (map = new Map()));
    map.set(row[0].slice(bar + 1), infoOf(row, null));
  }
  const index = new Map<string, CommandInfo>();
  for (const row of top) index.set(row[0], infoOf(row, subs.get(row[0]) ?? null));
  return index;
}

/** A row that cannot say where its keys are: movable keys without key specs (COMMAND of Redis 6). */
function blind(row: RawCommand): boolean {
  return (row[2] & MOVABLEKEYS) !== 0 && row[6].length === 0;
}

/**
 * The commands one slotgate knows: the built-in rows, with rows learned from upstreams merged
 * over them. Lookups are a map read; `learn` builds a new index and swaps it in whole, so a
 * command is always looked up in a complete table.
 */
export class CommandTable {
  #rows: ReadonlyMap<string, RawCommand>;
  #index: ReadonlyMap<string, CommandInfo>;
  readonly #learned = new Set<string>();

  /**
   * `rows` are the built-in commands: the Redis 7 table by default. Tests pass fewer to show a
   * command being learned.
   */
  constructor(rows: readonly RawCommand[] = COMMANDS) {
    this.#rows = new Map(rows.map((row) => [row[0], row]));
    this.#index = buildIndex(this.#rows.values());
  }

  /**
   * Merge rows read from an upstream's COMMAND (./learn.ts) over the table: a learned row replaces
   * the row of the same name, a new command or subcommand is added, nothing is removed. A row
   * that cannot locate its keys does not replace one that can. Returns how many rows were taken.
   * With several clusters, the last one to teach a command wins.
   */
  learn(rows: readonly RawCommand[]): number {
    const merged = new Map(this.#rows);
    let taken = 0;
    for (const row of rows) {
      const known = merged.get(row[0]);
      if (known && blind(row) && !blind(known)) continue;
      merged.set(row[0], row);
      this.#learned.add(row[0]);
      taken++;
    }
    this.#rows = merged;
    this.#index = buildIndex(merged.values());
    return taken;
  }

  /**
   * The table entry for a request. `nameUpper` is the upper-cased command name; for a container
   * command `args[1]` selects the subcommand. An unknown or missing subcommand yields the
   * container itself (no keys; Redis will answer its own "unknown subcommand" or arity error).
   * Returns null for an unknown command.
   */
  lookup(nameUpper: string, args: readonly Uint8Array[]): CommandInfo | null {
    const info = this.#index.get(nameUpper);
    if (info === undefined) return null;
    const subs = info.subcommands;
    if (subs !== null && args.length > 1) return subs.get(upper(args[1]!)) ?? info;
    return info;
  }

  /** Commands known (not counting subcommands, as `COMMAND COUNT` does). */
  get size(): number {
    return this.#index.size;
  }

  /** Commands learned from upstreams (not counting subcommands), built-in or new. */
  get learnedCount(): number {
    let n = 0;
    for (const name of this.#learned) if (!name.includes("|")) n++;
    return n;
  }

  /** Every command and subcommand, by upper-case name ("GET", "CLUSTER|SLOTS"...). */
  all(): CommandInfo[] {
    const all: CommandInfo[] = [];
    for (const info of this.#index.values()) {
      all.push(info);
      if (info.subcommands !== null) for (const sub of info.subcommands.values()) all.push(sub);
    }
    return all;
  }
}

/** The built-in table alone, for code without a slotgate's own table; nothing learns into it. */
const BUILT_IN = new CommandTable();

/** Upper-cases ASCII letters of an argument (other bytes map to Latin-1 and match nothing). */
function upper(arg: Uint8Array): string {
  let s = "";
  for (let i = 0; i < arg.length; i++) {
    const c = arg[i]!;
    s += String.fromCharCode(c >= 97 && c <= 122 ? c - 32 : c);
  }
  return s;
}

/** The built-in table's entry for a request; see `CommandTable.lookup`. */
export function commandInfo(nameUpper: string, args: readonly Uint8Array[]): CommandInfo | null {
  return BUILT_IN.lookup(nameUpper, args);
}

/** Every command and subcommand of the built-in table, by upper-case name ("GET", "CLUSTER|SLOTS"...). */
export function allCommands(): CommandInfo[] {
  return BUILT_IN.all();
}

/** True when `argc` arguments (command name included) satisfy the command's arity. */
export function checkArity(info: CommandInfo, argc: number): boolean {
  return info.arity >= 0 ? argc === info.arity : argc >= -info.arity;
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

/** Positions of keys in an argument vector: a plain array, or a typed one for a fixed range. */
export type KeyIndexes = ArrayLike<number>;

/**
 * Positions of the keys in `args` (the full argument vector, name at 0), in key-spec order: []
 * for keyless commands, null when they cannot be determined (key specs of unknown shape or marked
 * incomplete, with no key finder to fall back on, or a malformed numkeys/range).
 */
export function keyIndexes(info: CommandInfo, args: readonly Uint8Array[]): KeyIndexes | null {
  if ((info.flags & MOVABLEKEYS) === 0) {
    const argc = args.length;
    const first = info.firstKey;
    if (first === 0) return [];
    const last = Math.min(info.lastKey < 0 ? argc + info.lastKey : info.lastKey, argc - 1);
    const step = info.step;
    if (last === first) return [first]; // one key: most commands, and the cheapest answer
    const count = last >= first ? Math.floor((last - first) / step) + 1 : 0;
    // Many keys: a typed array, sized once. MGET and the like may name a million keys (filled in
    // ~2 ms, where a growing or preallocated JS array takes 10-50 ms and stalls other clients).
    const keys = count > 64 ? new Int32Array(count) : new Array<number>(count);
    for (let i = first, k = 0; i <= last; i += step) keys[k++] = i;
    return keys;
  }
  const keys = keysFromSpecs(info.keySpecs, args);
  if (keys !== null) return keys;
  // Redis, too, turns to the command's own getkeys procedure when its key specs fail.
  return info.keyFinder !== null ? info.keyFinder(args) : null;
}

/** Redis's getKeysUsingKeySpecs(): the keys the specs locate, or null when one of them fails. */
function keysFromSpecs(specs: readonly RawKeySpec[], args: readonly Uint8Array[]): number[] | null {
  const argc = args.length;
  const keys: number[] = [];
  for (const spec of specs) {
    const [flags, beginSearch, indexOrKeyword, startFrom, findKeys, a, b, c] = spec;
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
      // A keyword that is absent is an option not given: no keys from this spec.
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
    // Like Redis, an incomplete spec fails only once its keyword was found.
    if ((flags & KS_INCOMPLETE) !== 0) return null;
  }
  return keys;
}
