/**
 * Key finders for the commands whose key specs cannot say where all their keys are: SORT's STORE
 * may come anywhere among its options, and MIGRATE's KEYS form is marked incomplete. Redis has a
 * "getkeys" procedure for each and falls back to it when the key specs fail; keyIndexes() does the
 * same with these, which give the positions Redis's COMMAND GETKEYS gives. SORT's BY and GET
 * patterns name keys only through the sorted values, so they are not keys for routing (Redis
 * Cluster refuses them unless they stay in the sorted key's slot).
 */

/** Key positions in the full argument vector (name at 0), or null when there are none to find. */
export type KeyFinder = (args: readonly Uint8Array[]) => number[] | null;

/** Case-insensitive comparison of an argument with an upper-case ASCII keyword. */
export function isKeyword(arg: Uint8Array, keyword: string): boolean {
  const n = keyword.length;
  if (arg.length !== n) return false;
  for (let i = 0; i < n; i++) {
    const c = arg[i]!;
    if ((c >= 97 && c <= 122 ? c - 32 : c) !== keyword.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE dest]:
 * the sorted key, then the last STORE destination. Options are skipped with their arguments;
 * anything else counts as a word of its own, as Redis reads it.
 */
function sortKeys(args: readonly Uint8Array[]): number[] {
  let store = 0;
  for (let i = 2; i < args.length; i++) {
    const arg = args[i]!;
    if (isKeyword(arg, "LIMIT")) i += 2;
    else if (isKeyword(arg, "GET") || isKeyword(arg, "BY")) i += 1;
    // The destination is not skipped: Redis reads on from it, and so does this.
    else if (isKeyword(arg, "STORE") && i + 1 < args.length) store = i + 1;
  }
  return store > 0 ? [1, store] : [1];
}

/** SORT_RO never stores: only the sorted key. */
function sortRoKeys(): number[] {
  return [1];
}

/** Options of MIGRATE that come before KEYS, with how many arguments each takes. */
const MIGRATE_OPTIONS: ReadonlyArray<readonly [string, number]> = [["COPY", 0], ["REPLACE", 0], ["AUTH", 1], ["AUTH2", 2]];

/**
 * MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw] [KEYS key ...]:
 * the key at 3, or, with KEYS (which needs "" at 3), every argument after it.
 */
function migrateKeys(args: readonly Uint8Array[]): number[] | null {
  for (let i = 6; i < args.length; i++) {
    const arg = args[i]!;
    if (isKeyword(arg, "KEYS")) {
      if (args[3]!.length > 0) return null;
      const keys: number[] = [];
      for (let k = i + 1; k < args.length; k++) keys.push(k);
      return keys;
    }
    for (const [option, skip] of MIGRATE_OPTIONS) {
      if (isKeyword(arg, option)) {
        i += skip;
        break;
      }
    }
  }
  return args.length > 3 ? [3] : null;
}

/** Key finders by upper-case command name. */
export const KEY_FINDERS: ReadonlyMap<string, KeyFinder> = new Map<string, KeyFinder>([
  ["SORT", sortKeys],
  ["SORT_RO", sortRoKeys],
  ["MIGRATE", migrateKeys],
]);
