/**
 * The vocabulary of the command table: the bit of every command flag and key spec flag, the
 * begin_search and find_keys kinds, and the row types. Hand-written; the generated table
 * (./generated/redis-7.0.ts) and the rows learned from an upstream's COMMAND (./learn.ts) are
 * both spelled in it, so a learned row and a built-in one compare bit for bit.
 */

/**
 * Command flag names as COMMAND reports them, in bit order: flag i is bit 2**i, exported below
 * as its upper-cased name. Append only; a flag's bit never changes.
 */
export const COMMAND_FLAGS: readonly string[] = [
  "write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript", "blocking", "loading",
  "stale", "skip_monitor", "skip_slowlog", "asking", "fast", "no_auth", "may_replicate",
  "sentinel", "only_sentinel", "no_mandatory_keys", "protected", "module_no_cluster", "no_multi",
  "movablekeys", "allow_busy", "no_async_loading", "touches_arbitrary_keys",
];

/** Key spec flag names in bit order, exported below as `KS_<NAME>`. Append only. */
export const KEY_SPEC_FLAGS: readonly string[] = [
  "RO", "RW", "OW", "RM", "access", "update", "insert", "delete", "not_key", "incomplete",
  "variable_flags",
];

// Command flags: bit i is COMMAND_FLAGS[i]; a row's flags are their bitwise or.
/** Command flag "write". */
export const WRITE = 1;
/** Command flag "readonly". */
export const READONLY = 2;
/** Command flag "denyoom". */
export const DENYOOM = 4;
/** Command flag "module". */
export const MODULE = 8;
/** Command flag "admin". */
export const ADMIN = 16;
/** Command flag "pubsub". */
export const PUBSUB = 32;
/** Command flag "noscript". */
export const NOSCRIPT = 64;
/** Command flag "blocking". */
export const BLOCKING = 128;
/** Command flag "loading". */
export const LOADING = 256;
/** Command flag "stale". */
export const STALE = 512;
/** Command flag "skip_monitor". */
export const SKIP_MONITOR = 1024;
/** Command flag "skip_slowlog". */
export const SKIP_SLOWLOG = 2048;
/** Command flag "asking". */
export const ASKING = 4096;
/** Command flag "fast". */
export const FAST = 8192;
/** Command flag "no_auth". */
export const NO_AUTH = 16384;
/** Command flag "may_replicate". */
export const MAY_REPLICATE = 32768;
/** Command flag "sentinel". */
export const SENTINEL = 65536;
/** Command flag "only_sentinel". */
export const ONLY_SENTINEL = 131072;
/** Command flag "no_mandatory_keys". */
export const NO_MANDATORY_KEYS = 262144;
/** Command flag "protected". */
export const PROTECTED = 524288;
/** Command flag "module_no_cluster". */
export const MODULE_NO_CLUSTER = 1048576;
/** Command flag "no_multi". */
export const NO_MULTI = 2097152;
/** Command flag "movablekeys". */
export const MOVABLEKEYS = 4194304;
/** Command flag "allow_busy". */
export const ALLOW_BUSY = 8388608;
/** Command flag "no_async_loading". */
export const NO_ASYNC_LOADING = 16777216;
/** Command flag "touches_arbitrary_keys". */
export const TOUCHES_ARBITRARY_KEYS = 33554432;

// Key spec flags: bit i is KEY_SPEC_FLAGS[i].
/** Key spec flag "RO". */
export const KS_RO = 1;
/** Key spec flag "RW". */
export const KS_RW = 2;
/** Key spec flag "OW". */
export const KS_OW = 4;
/** Key spec flag "RM". */
export const KS_RM = 8;
/** Key spec flag "access". */
export const KS_ACCESS = 16;
/** Key spec flag "update". */
export const KS_UPDATE = 32;
/** Key spec flag "insert". */
export const KS_INSERT = 64;
/** Key spec flag "delete". */
export const KS_DELETE = 128;
/** Key spec flag "not_key". */
export const KS_NOT_KEY = 256;
/** Key spec flag "incomplete". */
export const KS_INCOMPLETE = 512;
/** Key spec flag "variable_flags". */
export const KS_VARIABLE_FLAGS = 1024;

/**
 * ACL categories as COMMAND reports them (without the '@'), in bit order: category i is bit
 * 2**i, exported below as `CAT_<NAME>`. Redis 7.0's list; append only.
 */
export const ACL_CATEGORIES: readonly string[] = [
  "keyspace", "read", "write", "set", "sortedset",
  "list", "hash", "string", "bitmap", "hyperloglog", "geo", "stream", "pubsub",
  "admin", "fast", "slow", "blocking", "dangerous",
  "connection", "transaction", "scripting"
];

// ACL categories: bit i is ACL_CATEGORIES[i]; a row's categories are their bitwise or.
/** ACL category "@keyspace". */
export const CAT_KEYSPACE = 1;
/** ACL category "@read". */
export const CAT_READ = 2;
/** ACL category "@write". */
export const CAT_WRITE = 4;
/** ACL category "@set". */
export const CAT_SET = 8;
/** ACL category "@sortedset". */
export const CAT_SORTEDSET = 16;
/** ACL category "@list". */
export const CAT_LIST = 32;
/** ACL category "@hash". */
export const CAT_HASH = 64;
/** ACL category "@string". */
export const CAT_STRING = 128;
/** ACL category "@bitmap". */
export const CAT_BITMAP = 256;
/** ACL category "@hyperloglog". */
export const CAT_HYPERLOGLOG = 512;
/** ACL category "@geo". */
export const CAT_GEO = 1024;
/** ACL category "@stream". */
export const CAT_STREAM = 2048;
/** ACL category "@pubsub". */
export const CAT_PUBSUB = 4096;
/** ACL category "@admin". */
export const CAT_ADMIN = 8192;
/** ACL category "@fast". */
export const CAT_FAST = 16384;
/** ACL category "@slow". */
export const CAT_SLOW = 32768;
/** ACL category "@blocking". */
export const CAT_BLOCKING = 65536;
/** ACL category "@dangerous". */
export const CAT_DANGEROUS = 131072;
/** ACL category "@connection". */
export const CAT_CONNECTION = 262144;
/** ACL category "@transaction". */
export const CAT_TRANSACTION = 524288;
/** ACL category "@scripting". */
export const CAT_SCRIPTING = 1048576;

/** begin_search of a kind slotgate cannot read; key extraction then refuses to guess. */
export const BS_UNKNOWN = 0;
/** begin_search "index": the first key is at a fixed argument index. */
export const BS_INDEX = 1;
/** begin_search "keyword": the first key follows a keyword, searched from an index. */
export const BS_KEYWORD = 2;
/** find_keys of a kind slotgate cannot read; key extraction then refuses to guess. */
export const FK_UNKNOWN = 0;
/** find_keys "range": keys up to a last index (or a limit), at a fixed step. */
export const FK_RANGE = 1;
/** find_keys "keynum": an argument gives the number of keys that follow. */
export const FK_KEYNUM = 2;

/**
 * A key spec: flags; begin_search as [BS_INDEX, index, 0] or [BS_KEYWORD, keyword, startfrom];
 * find_keys as [FK_RANGE, lastkey, keystep, limit] or [FK_KEYNUM, keynumidx, firstkey, keystep].
 */
export type RawKeySpec = readonly [
  flags: number,
  beginSearch: number,
  indexOrKeyword: number | string,
  startFrom: number,
  findKeys: number,
  a: number,
  b: number,
  c: number,
];

/**
 * A command: name, arity, flags, first key, last key, key step, key specs, tips (if any, or if
 * categories follow), and its ACL categories (a bitmask of `CAT_*`; absent: none known).
 */
export type RawCommand = readonly [
  name: string,
  arity: number,
  flags: number,
  firstKey: number,
  lastKey: number,
  step: number,
  keySpecs: readonly RawKeySpec[],
  tips?: readonly string[],
  categories?: number,
];
