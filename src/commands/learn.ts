/**
 * Reads a server's `COMMAND` reply into command-table rows: one row per command and per
 * subcommand, with arity, flags, legacy key positions, key specs of every begin_search and
 * find_keys type, and tips. The same parser feeds the built-in table (scripts/gen-command-table.ts
 * renders its result into ./generated/redis-7.0.ts) and the table slotgate learns from its
 * upstreams at discovery, so new commands and module commands route by their own key specs.
 *
 * A reply comes as `decode` gives it: RESP2 arrays (key specs as flat key/value lists; RESP3
 * maps are accepted too), strings as text or bytes. Parsing never throws: an entry that is not a
 * command is skipped, a flag it does not know is ignored, and a key spec it cannot read becomes an
 * "unknown" one, so that keyIndexes() refuses to guess rather than route by a partial key set.
 */
import {
  ACL_CATEGORIES,
  BS_INDEX,
  BS_KEYWORD,
  BS_UNKNOWN,
  COMMAND_FLAGS,
  FK_KEYNUM,
  FK_RANGE,
  FK_UNKNOWN,
  KEY_SPEC_FLAGS,
  type RawCommand,
  type RawKeySpec,
} from "./flags.ts";

/** Where the search for a spec's first key begins. */
export type BeginSearch =
  | { readonly type: "index"; readonly index: number }
  | { readonly type: "keyword"; readonly keyword: string; readonly startFrom: number }
  | { readonly type: "unknown" };

/** How a spec's keys follow its first one. */
export type FindKeys =
  | { readonly type: "range"; readonly lastKey: number; readonly keyStep: number; readonly limit: number }
  | { readonly type: "keynum"; readonly keyNumIndex: number; readonly firstKey: number; readonly keyStep: number }
  | { readonly type: "unknown" };

/** One key spec as COMMAND reports it; flag names in reply order. */
export interface KeySpecEntry {
  readonly flags: readonly string[];
  readonly beginSearch: BeginSearch;
  readonly findKeys: FindKeys;
}

/** One COMMAND entry; the name upper-cased ("GET", "CLUSTER|SLOTS"), flag names in reply order. */
export interface CommandEntry {
  readonly name: string;
  readonly arity: number;
  readonly flags: readonly string[];
  readonly firstKey: number;
  readonly lastKey: number;
  readonly step: number;
  readonly tips: readonly string[];
  /** ACL categories without the '@' ("read", "fast"...), as COMMAND's 7th field lists them. */
  readonly categories: readonly string[];
  readonly keySpecs: readonly KeySpecEntry[];
  readonly subcommands: readonly CommandEntry[];
}

/** Told of every part of a reply that could not be read as it should, one line naming it. */
export type ProblemSink = (problem: string) => void;

const utf8 = new TextDecoder();
const ignore: ProblemSink = () => {};

/** Text of a simple or bulk string (decoded as text or as bytes), else null. */
function text(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) return utf8.decode(value);
  return null;
}

/** A command name as the router spells a request's: one character per byte (Latin-1). */
function nameText(value: unknown): string | null {
  if (!(value instanceof Uint8Array)) return text(value);
  let s = "";
  for (const byte of value) s += String.fromCharCode(byte);
  return s;
}

function integer(value: unknown): number | null {
  return typeof value === "number" && Number.isSafeInteger(value) ? value : null;
}

function texts(value: unknown): string[] | null {
  if (!Array.isArray(value)) return null;
  const out: string[] = [];
  for (const item of value) {
    const s = text(item);
    if (s === null) return null;
    out.push(s);
  }
  return out;
}

/** A key/value list (RESP2 flat array, or a RESP3 map) as a Map keyed by text; null if neither. */
function pairs(value: unknown): Map<string, unknown> | null {
  const out = new Map<string, unknown>();
  if (value instanceof Map) {
    for (const [k, v] of value) {
      const key = text(k);
      if (key === null) return null;
      out.set(key, v);
    }
    return out;
  }
  if (!Array.isArray(value) || value.length % 2 !== 0) return null;
  for (let i = 0; i < value.length; i += 2) {
    const key = text(value[i]);
    if (key === null) return null;
    out.set(key, value[i + 1]);
  }
  return out;
}

/** ASCII upper-case: names and keywords are compared with upper-cased arguments. */
function upperAscii(s: string): string {
  return s.replace(/[a-z]+/g, (m) => m.toUpperCase());
}

const UNKNOWN = { type: "unknown" } as const;

function beginSearch(raw: unknown, where: string, problem: ProblemSink): BeginSearch {
  const bs = pairs(raw);
  const type = bs && text(bs.get("type"));
  const spec = bs && pairs(bs.get("spec") ?? []);
  if (type === "index" && spec) {
    const index = integer(spec.get("index"));
    if (index !== null && index >= 1) return { type, index };
  } else if (type === "keyword" && spec) {
    const keyword = text(spec.get("keyword"));
    const startFrom = integer(spec.get("startfrom"));
    if (keyword && startFrom !== null) return { type, keyword: upperAscii(keyword), startFrom };
  } else if (type === "unknown") {
    return UNKNOWN;
  }
  problem(`${where}: unreadable begin_search ${JSON.stringify(type)}`);
  return UNKNOWN;
}

function findKeys(raw: unknown, where: string, problem: ProblemSink): FindKeys {
  const fk = pairs(raw);
  const type = fk && text(fk.get("type"));
  const spec = fk && pairs(fk.get("spec") ?? []);
  if (type === "range" && spec) {
    const lastKey = integer(spec.get("lastkey"));
    const keyStep = integer(spec.get("keystep"));
    const limit = integer(spec.get("limit"));
    // Redis divides the remaining arguments by `limit` only for lastkey -1.
    if (lastKey !== null && keyStep !== null && keyStep >= 1 && limit !== null && limit >= 0 && (limit === 0 || lastKey === -1)) {
      return { type, lastKey, keyStep, limit };
    }
  } else if (type === "keynum" && spec) {
    const keyNumIndex = integer(spec.get("keynumidx"));
    const firstKey = integer(spec.get("firstkey"));
    const keyStep = integer(spec.get("keystep"));
    if (keyNumIndex !== null && keyNumIndex >= 0 && firstKey !== null && firstKey >= 0 && keyStep !== null && keyStep >= 1) {
      return { type, keyNumIndex, firstKey, keyStep };
    }
  } else if (type === "unknown") {
    return UNKNOWN;
  }
  problem(`${where}: unreadable find_keys ${JSON.stringify(type)}`);
  return UNKNOWN;
}

function keySpec(raw: unknown, where: string, problem: ProblemSink): KeySpecEntry {
  const spec = pairs(raw);
  if (!spec) {
    problem(`${where}: key spec is not a key/value list`);
    return { flags: [], beginSearch: UNKNOWN, findKeys: UNKNOWN };
  }
  const flags = texts(spec.get("flags") ?? []);
  if (!flags) problem(`${where}: unreadable key spec flags`);
  return {
    flags: flags ?? [],
    beginSearch: beginSearch(spec.get("begin_search"), where, problem),
    findKeys: findKeys(spec.get("find_keys"), where, problem),
  };
}

/**
 * One entry of a COMMAND reply (a command, or a subcommand when `container` names its parent),
 * or null when it is not one. Entries of Redis before 7 (no tips, key specs or subcommands) read
 * with those empty.
 */
export function parseCommandEntry(raw: unknown, problem: ProblemSink = ignore, container?: string): CommandEntry | null {
  if (!Array.isArray(raw) || raw.length < 6) {
    problem(`entry ${JSON.stringify(text(Array.isArray(raw) ? raw[0] : raw))}: not a command entry`);
    return null;
  }
  const rawName = nameText(raw[0]);
  // ASCII only, as request names are upper-cased before lookup.
  const name = rawName === null ? "" : upperAscii(rawName);
  const arity = integer(raw[1]);
  const flags = texts(raw[2]);
  const firstKey = integer(raw[3]);
  const lastKey = integer(raw[4]);
  const step = integer(raw[5]);
  const bar = name.indexOf("|");
  const nameOk = name.length > 0 && (container === undefined ? bar < 0 : bar > 0 && name.slice(0, bar) === container && name.indexOf("|", bar + 1) < 0 && bar < name.length - 1);
  // A step below 1 with keys would never end the walk over them.
  const keysOk = firstKey !== null && firstKey >= 0 && lastKey !== null && step !== null && (firstKey === 0 || step >= 1);
  if (!nameOk || arity === null || arity === 0 || !flags || !keysOk) {
    problem(`entry ${JSON.stringify(rawName)}: malformed name, arity, flags or key positions`);
    return null;
  }
  const categories = raw.length > 6 ? texts(raw[6] ?? []) : [];
  if (!categories) problem(`${name}: unreadable ACL categories`);
  const tips = raw.length > 7 ? texts(raw[7] ?? []) : [];
  if (!tips) problem(`${name}: unreadable tips`);
  const specsRaw = raw.length > 8 ? (raw[8] ?? []) : [];
  if (!Array.isArray(specsRaw)) problem(`${name}: key specs are not a list`);
  // Unreadable key specs leave one unknown spec: the keys cannot be found, so none are guessed.
  const keySpecs = Array.isArray(specsRaw)
    ? specsRaw.map((spec, i) => keySpec(spec, `${name} key spec ${i + 1}`, problem))
    : [{ flags: [], beginSearch: UNKNOWN, findKeys: UNKNOWN }];
  const subcommands: CommandEntry[] = [];
  const subsRaw = container === undefined && raw.length > 9 ? (raw[9] ?? []) : [];
  if (Array.isArray(subsRaw)) {
    for (const sub of subsRaw) {
      const entry = parseCommandEntry(sub, problem, name);
      if (entry) subcommands.push(entry);
    }
  } else {
    problem(`${name}: subcommands are not a list`);
  }
  const categoryNames = (categories ?? []).map((c) => (c.startsWith("@") ? c.slice(1) : c));
  return { name, arity, flags, firstKey, lastKey, step, tips: tips ?? [], categories: categoryNames, keySpecs, subcommands };
}

/** Every readable entry of a COMMAND reply; [] when the reply is not a list. */
export function parseCommandReply(reply: unknown, problem: ProblemSink = ignore): CommandEntry[] {
  if (!Array.isArray(reply)) {
    problem("COMMAND reply is not a list");
    return [];
  }
  const out: CommandEntry[] = [];
  for (const raw of reply) {
    const entry = parseCommandEntry(raw, problem);
    if (entry) out.push(entry);
  }
  return out;
}

/** A bitmask of the names found in `known` (bit i for known[i]); other names are ignored. */
function bits(names: readonly string[], known: readonly string[]): number {
  let mask = 0;
  for (const name of names) {
    const bit = known.indexOf(name);
    if (bit >= 0) mask |= 2 ** bit;
  }
  return mask;
}

function keySpecRow(spec: KeySpecEntry): RawKeySpec {
  const flags = bits(spec.flags, KEY_SPEC_FLAGS);
  const bs = spec.beginSearch;
  const begin: [number, number | string, number] =
    bs.type === "index" ? [BS_INDEX, bs.index, 0] : bs.type === "keyword" ? [BS_KEYWORD, bs.keyword, bs.startFrom] : [BS_UNKNOWN, 0, 0];
  const fk = spec.findKeys;
  const find: [number, number, number, number] =
    fk.type === "range"
      ? [FK_RANGE, fk.lastKey, fk.keyStep, fk.limit]
      : fk.type === "keynum"
        ? [FK_KEYNUM, fk.keyNumIndex, fk.firstKey, fk.keyStep]
        : [FK_UNKNOWN, 0, 0, 0];
  return [flags, ...begin, ...find];
}

/** The table row of one entry (its subcommands are rows of their own). */
export function commandRow(entry: CommandEntry): RawCommand {
  const { name, arity, firstKey, lastKey, step, tips } = entry;
  const flags = bits(entry.flags, COMMAND_FLAGS);
  const keySpecs = entry.keySpecs.map(keySpecRow);
  const categories = bits(entry.categories, ACL_CATEGORIES);
  if (categories !== 0) return [name, arity, flags, firstKey, lastKey, step, keySpecs, tips, categories];
  return tips.length > 0 ? [name, arity, flags, firstKey, lastKey, step, keySpecs, tips] : [name, arity, flags, firstKey, lastKey, step, keySpecs];
}

/** Table rows of a whole COMMAND reply: each command, then its subcommands. Never throws. */
export function commandRows(reply: unknown, problem: ProblemSink = ignore): RawCommand[] {
  const rows: RawCommand[] = [];
  for (const entry of parseCommandReply(reply, problem)) {
    rows.push(commandRow(entry));
    for (const sub of entry.subcommands) rows.push(commandRow(sub));
  }
  return rows;
}
