import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { allCommands, checkArity, commandInfo, keyIndexes, type CommandInfo } from "../../src/commands/keys.ts";
import {
  ADMIN,
  BLOCKING,
  FAST,
  MOVABLEKEYS,
  NO_MULTI,
  NOSCRIPT,
  PUBSUB,
  READONLY,
  WRITE,
} from "../../src/commands/flags.ts";
import { REDIS_VERSION } from "../../src/commands/generated/redis-7.0.ts";

const te = new TextEncoder();

function lookup(...words: string[]): { info: CommandInfo; args: Uint8Array[] } {
  const args = words.map((w) => te.encode(w));
  const info = commandInfo(words[0]!.toUpperCase(), args);
  assert.ok(info !== null, `unknown command ${words[0]}`);
  return { info, args };
}

function keys(...words: string[]): number[] | null {
  const { info, args } = lookup(...words);
  const found = keyIndexes(info, args);
  return found && Array.from(found);
}

describe("command table", () => {
  test("was generated from Redis 7", () => {
    assert.match(REDIS_VERSION, /^7\./);
    assert.ok(allCommands().length > 300, "allCommands().length > 300");
  });

  test("flags", () => {
    assert.equal(lookup("GET", "k").info.flags & (READONLY | FAST), READONLY | FAST);
    assert.equal(lookup("SET", "k", "v").info.flags & WRITE, WRITE);
    assert.ok(lookup("BLPOP", "k", "0").info.flags & BLOCKING, "lookup(\"BLPOP\", \"k\", \"0\").info.flags & BLOCKING");
    assert.ok(lookup("SUBSCRIBE", "c").info.flags & PUBSUB, "lookup(\"SUBSCRIBE\", \"c\").info.flags & PUBSUB");
    assert.ok(lookup("EVAL", "s", "0").info.flags & NOSCRIPT, "lookup(\"EVAL\", \"s\", \"0\").info.flags & NOSCRIPT");
    assert.ok(lookup("EVAL", "s", "0").info.flags & MOVABLEKEYS, "lookup(\"EVAL\", \"s\", \"0\").info.flags & MOVABLEKEYS");
    assert.ok(lookup("CLUSTER", "RESET").info.flags & ADMIN, "lookup(\"CLUSTER\", \"RESET\").info.flags & ADMIN");
    assert.ok(lookup("SAVE").info.flags & NO_MULTI, "lookup(\"SAVE\").info.flags & NO_MULTI");
  });

  test("arity", () => {
    const get = lookup("GET").info;
    assert.equal(get.arity, 2);
    assert.equal(checkArity(get, 2), true);
    assert.equal(checkArity(get, 3), false);
    const mset = lookup("MSET").info;
    assert.equal(mset.arity, -3);
    assert.equal(checkArity(mset, 3), true);
    assert.equal(checkArity(mset, 5), true);
    assert.equal(checkArity(mset, 2), false);
  });

  test("unknown commands", () => {
    assert.equal(commandInfo("NOSUCHCOMMAND", []), null);
    assert.equal(commandInfo("get", []), null, "names are looked up upper-cased");
  });
});

describe("subcommands", () => {
  test("container commands resolve their subcommand, in any case", () => {
    assert.equal(lookup("OBJECT", "encoding", "k").info.name, "OBJECT|ENCODING");
    assert.equal(lookup("CLUSTER", "SLOTS").info.name, "CLUSTER|SLOTS");
    assert.equal(lookup("cluster", "Shards").info.name, "CLUSTER|SHARDS");
    assert.equal(lookup("XINFO", "STREAM", "s").info.name, "XINFO|STREAM");
    assert.equal(lookup("CONFIG", "GET", "maxmemory").info.name, "CONFIG|GET");
    assert.ok(lookup("CLUSTER").info.subcommands !== null, "lookup(\"CLUSTER\").info.subcommands !== null");
  });

  test("an unknown or missing subcommand yields the container", () => {
    assert.equal(lookup("OBJECT", "nonsense", "k").info.name, "OBJECT");
    assert.equal(lookup("CLUSTER").info.name, "CLUSTER");
    assert.deepEqual(keys("OBJECT", "nonsense", "k"), []);
  });

  test("plain commands ignore their second argument", () => {
    assert.equal(lookup("GET", "SLOTS").info.name, "GET");
    assert.equal(lookup("GET", "SLOTS").info.subcommands, null);
  });
});

describe("keyIndexes: fixed positions", () => {
  test("GET and SET", () => {
    assert.deepEqual(keys("GET", "k"), [1]);
    assert.deepEqual(keys("SET", "k", "v", "EX", "10"), [1]);
  });

  test("MSET steps over values", () => {
    assert.deepEqual(keys("MSET", "a", "1", "b", "2", "c", "3"), [1, 3, 5]);
  });

  test("DEL runs to the last argument", () => {
    assert.deepEqual(keys("DEL", "a", "b", "c"), [1, 2, 3]);
    assert.deepEqual(keys("DEL", "a"), [1]);
  });

  test("BLPOP stops before the timeout", () => {
    assert.deepEqual(keys("BLPOP", "a", "b", "0"), [1, 2]);
  });

  test("subcommand keys count from the container name", () => {
    assert.deepEqual(keys("OBJECT", "ENCODING", "k"), [2]);
    assert.deepEqual(keys("XINFO", "STREAM", "s", "FULL"), [2]);
    assert.deepEqual(keys("MEMORY", "USAGE", "k", "SAMPLES", "5"), [2]);
  });

  test("shard channels are routed like keys", () => {
    assert.deepEqual(keys("SPUBLISH", "ch", "msg"), [1]);
    assert.deepEqual(keys("SSUBSCRIBE", "a", "b"), [1, 2]);
  });

  test("keyless commands", () => {
    assert.deepEqual(keys("PING"), []);
    assert.deepEqual(keys("PING", "hello"), []);
    assert.deepEqual(keys("CLUSTER", "SLOTS"), []);
    assert.deepEqual(keys("PUBLISH", "ch", "msg"), []);
    assert.deepEqual(keys("DBSIZE"), []);
  });

  test("missing arguments give only the keys present", () => {
    assert.deepEqual(keys("GET"), []);
  });
});

describe("keyIndexes: movable keys", () => {
  test("EVAL, EVALSHA, FCALL with numkeys", () => {
    assert.deepEqual(keys("EVAL", "return 1", "2", "k1", "k2", "arg"), [3, 4]);
    assert.deepEqual(keys("EVALSHA", "abc", "1", "k1", "arg"), [3]);
    assert.deepEqual(keys("FCALL", "fn", "0", "arg"), []);
    assert.deepEqual(keys("EVAL_RO", "s", "1", "k"), [3]);
  });

  test("malformed numkeys", () => {
    assert.equal(keys("EVAL", "s", "x", "k"), null);
    assert.equal(keys("EVAL", "s", "-1", "k"), null);
    assert.equal(keys("EVAL", "s", "3", "k"), null);
  });

  test("ZUNIONSTORE: destination then numkeys sources", () => {
    assert.deepEqual(keys("ZUNIONSTORE", "dst", "2", "a", "b", "WEIGHTS", "1", "2"), [1, 3, 4]);
    assert.deepEqual(keys("ZINTERSTORE", "dst", "1", "a"), [1, 3]);
    assert.deepEqual(keys("ZDIFFSTORE", "dst", "2", "a", "b"), [1, 3, 4]);
  });

  test("ZUNION, ZINTER, ZDIFF, SINTERCARD, LMPOP, BLMPOP", () => {
    assert.deepEqual(keys("ZUNION", "2", "a", "b", "WITHSCORES"), [2, 3]);
    assert.deepEqual(keys("ZINTER", "1", "a"), [2]);
    assert.deepEqual(keys("ZDIFF", "3", "a", "b", "c"), [2, 3, 4]);
    assert.deepEqual(keys("SINTERCARD", "2", "a", "b", "LIMIT", "1"), [2, 3]);
    assert.deepEqual(keys("LMPOP", "2", "a", "b", "LEFT"), [2, 3]);
    assert.deepEqual(keys("BLMPOP", "0", "1", "a", "LEFT"), [3]);
  });

  test("XREAD and XREADGROUP: the first half after STREAMS", () => {
    assert.deepEqual(keys("XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"), [4, 5]);
    assert.deepEqual(keys("XREAD", "streams", "s1", "$"), [2]);
    assert.deepEqual(keys("XREAD", "BLOCK", "0", "STREAMS", "a", "b", "c", ">", ">", ">"), [4, 5, 6]);
    assert.deepEqual(keys("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", "s2", ">", ">"), [5, 6]);
  });

  test("GEORADIUS with STORE", () => {
    assert.deepEqual(keys("GEORADIUS", "src", "15", "37", "200", "km"), [1]);
    assert.deepEqual(keys("GEORADIUS", "src", "15", "37", "200", "km", "STORE", "dst"), [1, 7]);
  });

  test("SORT and SORT_RO: key specs of unknown shape fall back to their key finders", () => {
    assert.deepEqual(keys("SORT", "k"), [1]);
    assert.deepEqual(keys("SORT", "k", "BY", "w_*", "STORE", "dst"), [1, 5], "BY patterns are not keys; STORE adds one");
    assert.deepEqual(keys("SORT", "k", "LIMIT", "0", "1", "GET", "store", "store", "d"), [1, 8], "options skip their arguments");
    assert.deepEqual(keys("SORT", "k", "STORE", "d1", "STORE", "d2"), [1, 5], "the last STORE wins");
    assert.deepEqual(keys("SORT", "k", "STORE"), [1], "STORE without a destination");
    assert.deepEqual(keys("sort", "k", "store", "dst"), [1, 3]);
    assert.deepEqual(keys("SORT_RO", "k", "BY", "w_*", "GET", "#"), [1]);
  });

  test("MIGRATE: one key, or the keys after KEYS (incomplete spec, searched from the end)", () => {
    assert.deepEqual(keys("MIGRATE", "h", "6379", "k", "0", "5000"), [3]);
    assert.deepEqual(keys("MIGRATE", "h", "6379", "k", "0", "5000", "COPY", "REPLACE"), [3]);
    assert.deepEqual(keys("MIGRATE", "h", "6379", "", "0", "5000", "KEYS", "a", "b"), [7, 8]);
    assert.deepEqual(keys("MIGRATE", "h", "6379", "", "0", "5000", "AUTH", "keys", "KEYS", "a"), [9], "AUTH's password is skipped");
    assert.deepEqual(keys("MIGRATE", "h", "6379", "", "0", "5000", "AUTH2", "u", "keys", "keys", "a"), [10]);
    assert.equal(keys("MIGRATE", "h", "6379", "k", "0", "5000", "KEYS", "a", "b"), null, "KEYS needs an empty key at 3");
  });

  test("keywords are matched in any case; an absent keyword adds no key", () => {
    assert.deepEqual(keys("xread", "count", "1", "streams", "s", "0"), [4]);
    assert.deepEqual(keys("GEORADIUS", "src", "15", "37", "200", "km", "STOREDIST", "d"), [1, 7]);
    assert.deepEqual(keys("GEORADIUS", "src", "15", "37", "200", "km", "STORE"), [1], "the last argument is never searched");
  });
});
