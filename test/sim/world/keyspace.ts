/**
 * The data commands of a simulated Redis node, over one keyspace holding two types: strings and
 * lists. Each command is a row of `KEYED` (its key positions, whether it writes, its arity) and a
 * case of `runData`, answering as Redis 7 does, `WRONGTYPE` included. The node (redis-node.ts)
 * decides whether it may serve a command (the cluster's redirection rules); this file only runs it.
 */
import { encodeArray, encodeBulk, encodeError, encodeInteger, NULL_ARRAY, NULL_BULK, OK } from "../../../src/resp/encode.ts";

/** A key's value: a string, or a list (never empty: Redis deletes a list that empties). */
export type Value = Uint8Array | Uint8Array[];

/** What the data commands need from a node. */
export interface Store {
  /** Strings, by key (key bytes as latin1 strings). */
  readonly data: Map<string, Uint8Array>;
  /** Lists, by key; a key is in at most one of the two maps. */
  readonly lists: Map<string, Uint8Array[]>;
  /** Set (or delete, with null) a key on the node and its replicas; true when it existed. */
  write(key: string, value: Value | null): boolean;
}

export const WRONGTYPE = encodeError("WRONGTYPE Operation against a key holding the wrong kind of value");

export interface KeyedSpec {
  keys: (argc: number) => number[];
  write: boolean;
  arity: number;
}

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i += step) out.push(i);
  return out;
}

/** Key positions of the keyed data commands; `write` marks commands that change data. */
export const KEYED: Record<string, KeyedSpec> = {
  GET: { keys: () => [1], write: false, arity: 2 },
  SET: { keys: () => [1], write: true, arity: -3 },
  INCR: { keys: () => [1], write: true, arity: 2 },
  DEL: { keys: (n) => range(1, n, 1), write: true, arity: -2 },
  UNLINK: { keys: (n) => range(1, n, 1), write: true, arity: -2 },
  EXISTS: { keys: (n) => range(1, n, 1), write: false, arity: -2 },
  TOUCH: { keys: (n) => range(1, n, 1), write: false, arity: -2 },
  MGET: { keys: (n) => range(1, n, 1), write: false, arity: -2 },
  MSET: { keys: (n) => range(1, n, 2), write: true, arity: -3 },
  RPUSH: { keys: () => [1], write: true, arity: -3 },
  LPUSH: { keys: () => [1], write: true, arity: -3 },
  LPOP: { keys: () => [1], write: true, arity: 2 },
  LLEN: { keys: () => [1], write: false, arity: 2 },
  LRANGE: { keys: () => [1], write: false, arity: 4 },
  // The last argument is the timeout. Run as LPOP-or-nil here; the node blocks it when it may.
  BLPOP: { keys: (n) => range(1, n - 1, 1), write: true, arity: -3 },
};

export const latin1 = (bytes: Uint8Array): string => {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return s;
};

export const fromLatin1 = (s: string): Uint8Array => {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
};

const utf8 = new TextEncoder();

/** BLPOP's timeout in milliseconds (0: forever), or the error Redis gives for it. */
export function blockTimeoutMs(arg: Uint8Array): number | Uint8Array {
  const text = latin1(arg);
  const seconds = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isFinite(seconds)) return encodeError("ERR timeout is not a float or out of range");
  if (seconds < 0) return encodeError("ERR timeout is negative");
  return Math.round(seconds * 1000);
}

/**
 * Pop the head of the first non-empty list among `keys`: `[key, element]` as BLPOP answers, or
 * WRONGTYPE when a string comes first, or null when every key is missing.
 */
export function popFirst(store: Store, keys: Uint8Array[]): Uint8Array | null {
  for (const key of keys) {
    const name = latin1(key);
    if (store.data.has(name)) return WRONGTYPE;
    const list = store.lists.get(name);
    if (!list) continue;
    const head = list[0]!;
    store.write(name, list.length > 1 ? list.slice(1) : null);
    return encodeArray([encodeBulk(key), encodeBulk(head)]);
  }
  return null;
}

/** Run a data command the node serves (keys already checked); BLPOP here never blocks. */
export function runData(store: Store, name: string, args: Uint8Array[], keys: Uint8Array[]): Uint8Array {
  const { data, lists } = store;
  const key = latin1(keys[0]!);
  switch (name) {
    case "GET": {
      if (lists.has(key)) return WRONGTYPE;
      const v = data.get(key);
      return v ? encodeBulk(v) : NULL_BULK;
    }
    case "SET":
      if (args.length !== 3) return encodeError("ERR syntax error");
      store.write(key, args[2]!.slice());
      return OK;
    case "INCR": {
      if (lists.has(key)) return WRONGTYPE;
      const old = data.get(key);
      const text = old ? latin1(old) : "0";
      if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(Number(text))) return encodeError("ERR value is not an integer or out of range");
      const next = Number(text) + 1;
      store.write(key, utf8.encode(String(next)));
      return encodeInteger(next);
    }
    case "DEL":
    case "UNLINK": {
      let n = 0;
      for (const k of keys) if (store.write(latin1(k), null)) n++;
      return encodeInteger(n);
    }
    case "EXISTS":
    case "TOUCH":
      return encodeInteger(keys.filter((k) => data.has(latin1(k)) || lists.has(latin1(k))).length);
    case "MGET":
      return encodeArray(keys.map((k) => {
        const v = data.get(latin1(k));
        return v ? encodeBulk(v) : NULL_BULK;
      }));
    case "MSET":
      for (let i = 1; i < args.length; i += 2) store.write(latin1(args[i]!), args[i + 1]!.slice());
      return OK;
    case "RPUSH":
    case "LPUSH": {
      if (data.has(key)) return WRONGTYPE;
      const items = args.slice(2).map((a) => a.slice());
      const old = lists.get(key) ?? [];
      const next = name === "RPUSH" ? [...old, ...items] : [...items.reverse(), ...old];
      store.write(key, next);
      return encodeInteger(next.length);
    }
    case "LPOP": {
      if (data.has(key)) return WRONGTYPE;
      const list = lists.get(key);
      if (!list) return NULL_BULK;
      store.write(key, list.length > 1 ? list.slice(1) : null);
      return encodeBulk(list[0]!);
    }
    case "LLEN":
      if (data.has(key)) return WRONGTYPE;
      return encodeInteger(lists.get(key)?.length ?? 0);
    case "LRANGE": {
      if (data.has(key)) return WRONGTYPE;
      const list = lists.get(key) ?? [];
      const at = (arg: Uint8Array) => {
        const n = Number(latin1(arg));
        return n < 0 ? list.length + n : n;
      };
      if (!/^-?\d+$/.test(latin1(args[2]!)) || !/^-?\d+$/.test(latin1(args[3]!))) return encodeError("ERR value is not an integer or out of range");
      return encodeArray(list.slice(Math.max(0, at(args[2]!)), at(args[3]!) + 1).map((v) => encodeBulk(v)));
    }
    case "BLPOP": {
      const timeout = blockTimeoutMs(args[args.length - 1]!);
      if (timeout instanceof Uint8Array) return timeout;
      return popFirst(store, keys) ?? NULL_ARRAY;
    }
  }
  return encodeError(`ERR unknown command '${name}'`);
}
