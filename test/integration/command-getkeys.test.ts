/**
 * keyIndexes() against Redis itself: for a corpus of argument vectors covering every key-spec
 * form — fixed index, keyword search (from the start and from the end), keynum, range with a
 * step, range with a limit — and the commands Redis resolves with a getkeys procedure (SORT,
 * SORT_RO, MIGRATE), the keys slotgate finds must be the ones a real redis-server's
 * `COMMAND GETKEYS` names, with the built-in table and with the table learned from that server.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { RespReplyError, startStandaloneRedis } from "../../scripts/local-cluster.ts";
import { CommandTable, keyIndexes } from "../../src/commands/keys.ts";
import { commandRows } from "../../src/commands/learn.ts";
import { lazy } from "../support/lazy.ts";

const SLOW = { timeout: 120_000 };
const te = new TextEncoder();

/** Argument vectors by the key-spec form they exercise. */
const CORPUS: Record<string, string[][]> = {
  "fixed index": [
    ["GET", "k"],
    ["SET", "k", "v", "EX", "10", "GET"],
    ["GETEX", "k", "PERSIST"],
    ["OBJECT", "ENCODING", "k"],
    ["XINFO", "STREAM", "s", "FULL"],
    ["MEMORY", "USAGE", "k", "SAMPLES", "5"],
    ["LCS", "a", "b", "LEN"],
    ["RENAME", "a", "b"],
    ["LMOVE", "a", "b", "LEFT", "RIGHT"],
    ["BLPOP", "a", "b", "c", "0"],
    ["BITOP", "AND", "dest", "a", "b"],
    ["SMOVE", "src", "dst", "m"],
    ["GEOSEARCHSTORE", "dst", "src", "FROMMEMBER", "m", "BYRADIUS", "1", "km"],
    ["COPY", "a", "b", "REPLACE"],
    ["PFCOUNT", "a", "b", "c"],
    ["DEL", "a", "b", "c"],
    ["SUNION", "a", "b"],
    ["BITFIELD", "k", "GET", "u4", "0"],
  ],
  "keyword search (with a limit for XREAD)": [
    ["XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"],
    ["XREAD", "STREAMS", "s1", "$"],
    ["xread", "count", "1", "streams", "s", "0"],
    ["XREAD", "BLOCK", "0", "STREAMS", "a", "b", "c", "1", "2", "3"],
    ["XREAD", "COUNT", "1", "STREAMS", "streams", "x", "0", "0"],
    ["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", "s2", ">", ">"],
    ["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "NOACK", "STREAMS", "s", ">"],
    ["GEORADIUS", "src", "15", "37", "200", "km", "STORE", "dst"],
    ["GEORADIUS", "src", "15", "37", "200", "km", "STOREDIST", "dst"],
    ["GEORADIUS", "src", "15", "37", "200", "km", "STORE", "d1", "STOREDIST", "d2"],
    ["GEORADIUS", "src", "15", "37", "200", "km", "WITHDIST"],
    ["GEORADIUS", "src", "15", "37", "200", "km", "STORE"],
    ["GEORADIUSBYMEMBER", "src", "m", "200", "km", "STORE", "dst"],
  ],
  "keyword search from the end, incomplete (MIGRATE)": [
    ["MIGRATE", "h", "6379", "k", "0", "5000"],
    ["MIGRATE", "h", "6379", "k", "0", "5000", "COPY", "REPLACE"],
    ["MIGRATE", "h", "6379", "", "0", "5000", "KEYS", "a", "b"],
    ["MIGRATE", "h", "6379", "", "0", "5000", "COPY", "KEYS", "a"],
    ["MIGRATE", "h", "6379", "", "0", "5000", "AUTH", "keys", "KEYS", "a", "b", "c"],
    ["MIGRATE", "h", "6379", "", "0", "5000", "AUTH2", "user", "keys", "KEYS", "a"],
    ["MIGRATE", "h", "6379", "", "0", "5000", "KEYS"],
    ["MIGRATE", "h", "6379", "k", "0", "5000", "KEYS", "a", "b"],
  ],
  keynum: [
    ["EVAL", "return 1", "2", "k1", "k2", "arg"],
    ["EVAL", "return 1", "0"],
    ["EVAL", "return 1", "3", "k1"],
    ["EVALSHA", "abc", "1", "k", "arg"],
    ["EVAL_RO", "return 1", "1", "k"],
    ["EVALSHA_RO", "abc", "2", "a", "b"],
    ["FCALL", "fn", "2", "a", "b", "x"],
    ["FCALL_RO", "fn", "1", "a"],
    ["ZUNION", "2", "a", "b", "WITHSCORES"],
    ["ZINTER", "3", "a", "b", "c", "WEIGHTS", "1", "2", "3"],
    ["ZDIFF", "2", "a", "b"],
    ["ZUNIONSTORE", "dst", "2", "a", "b", "WEIGHTS", "1", "2"],
    ["ZINTERSTORE", "dst", "1", "a"],
    ["ZDIFFSTORE", "dst", "2", "a", "b"],
    ["ZINTERCARD", "2", "a", "b", "LIMIT", "5"],
    ["SINTERCARD", "2", "a", "b", "LIMIT", "1"],
    ["LMPOP", "2", "a", "b", "LEFT", "COUNT", "2"],
    ["BLMPOP", "0", "2", "a", "b", "RIGHT"],
    ["ZMPOP", "1", "z", "MIN"],
    ["BZMPOP", "1.5", "2", "a", "b", "MAX", "COUNT", "3"],
  ],
  "range with a step": [
    ["MSET", "a", "1", "b", "2", "c", "3"],
    ["MSET", "a", "1"],
    ["MSETNX", "a", "1", "b", "2"],
    ["MGET", "a", "b", "c"],
  ],
  "getkeys procedures (SORT, SORT_RO)": [
    ["SORT", "k"],
    ["SORT", "k", "BY", "w_*", "STORE", "dst"],
    ["SORT", "k", "LIMIT", "0", "10", "GET", "#", "GET", "o_*", "ALPHA", "DESC", "STORE", "dst"],
    ["SORT", "k", "STORE", "d1", "STORE", "d2"],
    ["SORT", "k", "STORE"],
    ["SORT", "k", "GET", "store", "ASC"],
    ["sort", "k", "store", "dst"],
    ["SORT_RO", "k", "BY", "w_*", "GET", "#"],
  ],
  keyless: [
    ["ECHO", "hello"],
    ["OBJECT", "HELP"],
    ["CLUSTER", "SLOTS"],
  ],
};

/** What Redis answers: the keys, or null for an error or no keys ("no key arguments", "invalid"). */
async function redisKeys(reply: (...args: string[]) => Promise<unknown>, argv: string[]): Promise<string[] | null> {
  try {
    const keys = (await reply("COMMAND", "GETKEYS", ...argv)) as string[];
    return keys.length > 0 ? keys : null;
  } catch (error) {
    if (error instanceof RespReplyError) return null;
    throw error;
  }
}

/** What slotgate finds with `table`: the keys, or null when none (or it cannot tell). */
function ourKeys(table: CommandTable, argv: string[]): string[] | null {
  const args = argv.map((a) => te.encode(a));
  const info = table.lookup(argv[0]!.toUpperCase(), args);
  assert.ok(info, `${argv[0]} is in the table`);
  const keys = keyIndexes(info, args);
  return keys && keys.length > 0 ? Array.from(keys, (i) => argv[i]!) : null;
}

describe("keyIndexes agrees with COMMAND GETKEYS of a real Redis", () => {
  const redis = lazy(() => startStandaloneRedis());
  after(() => redis.stop());

  it("on every vector of the corpus, with the built-in and the learned table", SLOW, async () => {
    const server = await redis.get();
    const reply = (...args: string[]) => server.reply(...args);
    const builtIn = new CommandTable();
    const learned = new CommandTable([]);
    learned.learn(commandRows(await server.reply("COMMAND")));
    const vectors = Object.values(CORPUS).flat();
    assert.ok(vectors.length >= 60, `a corpus of ${vectors.length} vectors`);
    const mismatches: string[] = [];
    let keyed = 0;
    for (const [form, list] of Object.entries(CORPUS)) {
      for (const argv of list) {
        const expected = await redisKeys(reply, argv);
        if (expected) keyed++;
        for (const [name, table] of [["built-in", builtIn], ["learned", learned]] as const) {
          const got = ourKeys(table, argv);
          if (JSON.stringify(got) !== JSON.stringify(expected)) {
            mismatches.push(`${form} / ${name}: ${JSON.stringify(argv)}: Redis ${JSON.stringify(expected)}, slotgate ${JSON.stringify(got)}`);
          }
        }
      }
    }
    assert.deepEqual(mismatches, [], "slotgate finds the keys Redis finds");
    // Most vectors have keys: the agreement is not one of empty answers.
    assert.ok(keyed >= vectors.length - 10, `${keyed} of ${vectors.length} vectors have keys`);
  });
});
