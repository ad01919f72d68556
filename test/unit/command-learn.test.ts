/**
 * Reading a server's COMMAND reply into table rows (src/commands/learn.ts), and merging learned
 * rows into a CommandTable (src/commands/keys.ts). The reply is captured live from a real
 * redis-server, in both shapes slotgate meets: bytes (as controlRequest decodes it) and text (as
 * the generator decodes it); then malformed and unusual replies must be read without throwing.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { currentRuntime } from "../../adapters/current.ts";
import { startStandaloneRedis } from "../../scripts/local-cluster.ts";
import { controlRequest } from "../../src/backends/cluster/control-request.ts";
import { CommandTable, commandInfo, keyIndexes } from "../../src/commands/keys.ts";
import { commandRows, parseCommandEntry, parseCommandReply } from "../../src/commands/learn.ts";
import * as flags from "../../src/commands/flags.ts";
import { BS_INDEX, BS_KEYWORD, BS_UNKNOWN, COMMAND_FLAGS, FK_KEYNUM, FK_RANGE, FK_UNKNOWN, KEY_SPEC_FLAGS, KS_RO, KS_ACCESS, MOVABLEKEYS, READONLY, WRITE, type RawCommand } from "../../src/commands/flags.ts";
import { COMMANDS, REDIS_VERSION } from "../../src/commands/generated/redis-7.0.ts";
import { Scope } from "../../src/scope/scope.ts";
import { lazy } from "../support/lazy.ts";

const SLOW = { timeout: 120_000 };
const te = new TextEncoder();
const words = (...w: string[]) => w.map((s) => te.encode(s));

/** The keys `table` finds in `argv`, as text (null when it cannot tell). */
function keysOf(t: CommandTable, ...argv: string[]): string[] | null {
  const args = words(...argv);
  const info = t.lookup(argv[0]!.toUpperCase(), args);
  assert.ok(info, `${argv[0]} is known`);
  const found = keyIndexes(info, args);
  return found ? Array.from(found, (i) => argv[i]!) : null;
}

/** A well-formed Redis 7 COMMAND entry, as decode() gives it with `strings`. */
function entry(name: string, overrides: Partial<Record<number, unknown>> = {}): unknown[] {
  const base: unknown[] = [
    name, -2, ["readonly"], 1, 1, 1, ["@read"], [],
    [["flags", ["RO", "access"], "begin_search", ["type", "index", "spec", ["index", 1]], "find_keys", ["type", "range", "spec", ["lastkey", 0, "keystep", 1, "limit", 0]]]],
    [],
  ];
  for (const [i, v] of Object.entries(overrides)) base[Number(i)] = v;
  return base;
}

describe("reading a live COMMAND reply", () => {
  const redis = lazy(() => startStandaloneRedis());
  after(() => redis.stop());

  it("bytes from controlRequest read into exactly the built-in rows, with nothing skipped", SLOW, async () => {
    const server = await redis.get();
    const root = Scope.root(await currentRuntime(), "test");
    let reply: unknown;
    try {
      reply = await controlRequest(root, server.host, server.port, ["COMMAND"], 20_000);
    } finally {
      await root.close();
    }
    const problems: string[] = [];
    const rows = commandRows(reply, (p) => problems.push(p));
    assert.deepEqual(problems, [], "every part of a Redis 7 reply is readable");
    const count = await server.reply("COMMAND", "COUNT");
    assert.equal(rows.filter((r) => !r[0].includes("|")).length, count, "one top-level row per command COMMAND COUNT counts");
    // The server is the Redis the table was generated from: the rows are the table's.
    const version = /redis_version:([^\r\n]+)/.exec(String(await server.reply("INFO", "server")))?.[1];
    assert.equal(version, REDIS_VERSION, "the test server is the table's Redis");
    const byName = new Map(rows.map((r) => [r[0], r]));
    assert.equal(byName.size, COMMANDS.length, "as many rows (commands and subcommands) as the table");
    for (const row of COMMANDS) assert.deepEqual(byName.get(row[0]), row, `row ${row[0]}`);
  });

  it("the same reply decoded as text reads into the same rows", SLOW, async () => {
    const server = await redis.get();
    const rows = commandRows(await server.reply("COMMAND"));
    const expected = new Map(COMMANDS.map((r) => [r[0], r]));
    assert.equal(rows.length, COMMANDS.length, "rows.length");
    for (const row of rows) assert.deepEqual(row, expected.get(row[0]), `row ${row[0]}`);
  });
});

describe("reading odd and malformed COMMAND replies", () => {
  it("a reply that is not a list gives no rows, and tells why", () => {
    for (const reply of [null, 42, "COMMAND", new Error("ERR unknown command"), new Uint8Array(3)]) {
      const problems: string[] = [];
      assert.deepEqual(commandRows(reply, (p) => problems.push(p)), [], `rows of ${String(reply)}`);
      assert.equal(problems.length, 1, `one problem reported for ${String(reply)}`);
    }
  });

  it("entries that are not commands are skipped, the others kept", () => {
    const reply = [
      entry("good"),
      "not an entry",
      [1, 2, 3],
      entry("noarity", { 1: "x" }),
      entry("", {}),
      entry("zeroarity", { 1: 0 }),
      entry("badflags", { 2: "readonly" }),
      entry("badkeys", { 3: -1 }),
      entry("endlesskeys", { 5: 0 }),
      entry("bigint", { 4: 2n ** 70n }),
      entry("bar|innametop"),
      entry("good2"),
    ];
    const problems: string[] = [];
    const rows = commandRows(reply, (p) => problems.push(p));
    assert.deepEqual(rows.map((r) => r[0]), ["GOOD", "GOOD2"]);
    assert.equal(problems.length, reply.length - 2, `one problem per skipped entry: ${problems.join("; ")}`);
  });

  it("names and strings may come as bytes; unknown flags are ignored, known ones kept", () => {
    const raw = entry("mymod.get", { 0: te.encode("mymod.get"), 2: [te.encode("readonly"), "brand_new_flag", "movablekeys"] });
    const [row] = commandRows([raw]);
    assert.ok(row, "the entry was read");
    assert.equal(row[0], "MYMOD.GET");
    assert.equal(row[2], READONLY | MOVABLEKEYS);
  });

  it("RESP3 maps read like RESP2 key/value lists", () => {
    const spec = new Map<unknown, unknown>([
      ["flags", ["RO"]],
      ["begin_search", new Map<unknown, unknown>([["type", "keyword"], ["spec", new Map<unknown, unknown>([["keyword", "from"], ["startfrom", 2]])]])],
      ["find_keys", new Map<unknown, unknown>([["type", "keynum"], ["spec", new Map<unknown, unknown>([["keynumidx", 0], ["firstkey", 1], ["keystep", 1]])]])],
    ]);
    const [row] = commandRows([entry("multi", { 2: ["readonly", "movablekeys"], 3: 0, 4: 0, 5: 0, 8: [spec] })]);
    // The keyword is upper-cased: arguments are matched upper-cased.
    assert.deepEqual(row![6], [[KS_RO, BS_KEYWORD, "FROM", 2, FK_KEYNUM, 0, 1, 1]]);
  });

  it("an unreadable key spec becomes an unknown one, so its keys are never guessed", () => {
    const bad = [
      "not a list",
      ["flags", ["RO"], "begin_search", ["type", "index", "spec", ["index", 0]], "find_keys", ["type", "range", "spec", ["lastkey", 0, "keystep", 1, "limit", 0]]],
      ["flags", ["RO"], "begin_search", ["type", "index", "spec", ["index", 1]], "find_keys", ["type", "range", "spec", ["lastkey", 0, "keystep", 0, "limit", 0]]],
      ["flags", ["RO"], "begin_search", ["type", "index", "spec", ["index", 1]], "find_keys", ["type", "range", "spec", ["lastkey", -2, "keystep", 1, "limit", 2]]],
      ["flags", ["RO"], "begin_search", ["type", "someday", "spec", []], "find_keys", ["type", "keynum", "spec", ["keynumidx", -1, "firstkey", 1, "keystep", 1]]],
      ["flags", "RO", "begin_search", ["type", "keyword", "spec", ["keyword", 7, "startfrom", 1]]],
    ];
    for (const spec of bad) {
      const problems: string[] = [];
      const rows = commandRows([entry("odd", { 2: ["readonly", "movablekeys"], 8: [spec] })], (p) => problems.push(p));
      assert.equal(rows.length, 1, `the command is kept with spec ${JSON.stringify(spec)}`);
      const [, beginSearch, , , findKeys] = rows[0]![6][0]!;
      assert.ok(beginSearch === BS_UNKNOWN || findKeys === FK_UNKNOWN, `spec ${JSON.stringify(spec)} is unknown`);
      assert.ok(problems.length > 0, `a problem is reported for ${JSON.stringify(spec)}`);
      const t = new CommandTable([]);
      t.learn(rows);
      assert.equal(keysOf(t, "ODD", "k"), null, `no keys guessed for ${JSON.stringify(spec)}`);
    }
  });

  it("a Redis 6 entry (no tips, key specs or subcommands) reads with those empty, and keeps its ACL categories", () => {
    const [row] = commandRows([["get", 2, ["readonly", "fast"], 1, 1, 1, ["@read"]]]);
    assert.deepEqual(row, ["GET", 2, READONLY | flags.FAST, 1, 1, 1, [], [], flags.CAT_READ]);
    const [bare] = commandRows([["get", 2, ["readonly", "fast"], 1, 1, 1, []]]);
    assert.deepEqual(bare, ["GET", 2, READONLY | flags.FAST, 1, 1, 1, []]);
  });

  it("ACL categories learned from COMMAND replace the built-in ones, and unknown ones are ignored", () => {
    const t = new CommandTable();
    assert.equal(t.lookup("GET", [])!.categories, flags.CAT_READ | flags.CAT_STRING | flags.CAT_FAST, "built in, from Redis 7.0.15's COMMAND");
    t.learn(commandRows([["get", 2, ["readonly", "fast"], 1, 1, 1, ["@read", "@keyspace", "@future"]]]));
    assert.equal(t.lookup("GET", [])!.categories, flags.CAT_READ | flags.CAT_KEYSPACE);
  });

  it("subcommands are read under their container; a stray or malformed one is skipped", () => {
    const container = entry("box", {
      2: [], 3: 0, 4: 0, 5: 0, 8: [],
      9: [entry("box|open", { 1: 3 }), entry("other|open"), entry("box|"), entry("box|a|b"), "junk", entry("box|close", { 2: ["write"] })],
    });
    const problems: string[] = [];
    const parsed = parseCommandReply([container], (p) => problems.push(p));
    assert.deepEqual(parsed[0]!.subcommands.map((s) => s.name), ["BOX|OPEN", "BOX|CLOSE"]);
    assert.equal(problems.length, 4, problems.join("; "));
    const rows = commandRows([container]);
    assert.deepEqual(rows.map((r) => r[0]), ["BOX", "BOX|OPEN", "BOX|CLOSE"]);
    assert.equal(rows[2]![2], WRITE);
    assert.equal(parseCommandEntry("box"), null);
  });

  it("the flag names are the bits of the table's flag constants", () => {
    const constants = flags as unknown as Record<string, number>;
    COMMAND_FLAGS.forEach((name, i) => assert.equal(constants[name.toUpperCase()], 2 ** i, `flag ${name}`));
    KEY_SPEC_FLAGS.forEach((name, i) => assert.equal(constants[`KS_${name.toUpperCase()}`], 2 ** i, `key spec flag ${name}`));
  });
});

describe("learning into a CommandTable", () => {
  const row = (name: string, fields: Partial<{ arity: number; flags: number; first: number; last: number; step: number; specs: RawCommand[6] }> = {}): RawCommand => [
    name, fields.arity ?? -2, fields.flags ?? READONLY, fields.first ?? 1, fields.last ?? 1, fields.step ?? 1, fields.specs ?? [[KS_RO | KS_ACCESS, BS_INDEX, 1, 0, FK_RANGE, 0, 1, 0]],
  ];

  it("a learned row overrides the built-in one of the same name", () => {
    const t = new CommandTable();
    assert.deepEqual(keysOf(t, "LCS", "a", "b"), ["a", "b"]);
    // A server whose LCS takes one key only.
    t.learn([row("LCS", { first: 1, last: 1, step: 1 })]);
    assert.deepEqual(keysOf(t, "LCS", "a", "b"), ["a"]);
    assert.equal(t.lookup("LCS", words("LCS"))!.arity, -2);
    assert.equal(t.learnedCount, 1);
  });

  it("new commands, module commands and subcommands are added; nothing known is lost", () => {
    const t = new CommandTable();
    const size = t.size;
    assert.equal(t.lookup("MYMOD.MGET", []), null);
    t.learn([
      row("MYMOD.MGET", { flags: READONLY | MOVABLEKEYS, first: 0, last: 0, step: 0, specs: [[KS_RO, BS_INDEX, 1, 0, FK_KEYNUM, 0, 1, 1]] }),
      row("OBJECT|SHAPE", { first: 2, last: 2, specs: [[KS_RO, BS_INDEX, 2, 0, FK_RANGE, 0, 1, 0]] }),
      row("NEWBOX|SUB", { first: 2, last: 2 }),
      row("NEWBOX", { flags: 0, first: 0, last: 0, step: 0, specs: [] }),
    ]);
    assert.deepEqual(keysOf(t, "mymod.mget", "2", "a", "b"), ["a", "b"]);
    assert.equal(t.lookup("OBJECT", words("OBJECT", "shape", "k"))!.name, "OBJECT|SHAPE");
    assert.deepEqual(keysOf(t, "OBJECT", "shape", "k"), ["k"]);
    assert.equal(t.lookup("OBJECT", words("OBJECT", "ENCODING", "k"))!.name, "OBJECT|ENCODING", "built-in subcommands stay");
    // A subcommand learned before its container still lands under it.
    assert.equal(t.lookup("NEWBOX", words("NEWBOX", "sub", "k"))!.name, "NEWBOX|SUB");
    assert.equal(t.size, size + 2);
    assert.equal(t.learnedCount, 2, "learned top-level commands: MYMOD.MGET and NEWBOX");
  });

  it("a row that cannot locate its keys (movable keys, no key specs: Redis 6) keeps the built-in one", () => {
    const t = new CommandTable();
    t.learn([row("EVAL", { arity: -3, flags: MOVABLEKEYS, first: 0, last: 0, step: 0, specs: [] })]);
    assert.deepEqual(keysOf(t, "EVAL", "s", "2", "a", "b"), ["a", "b"]);
    // Without anything better it is taken: its keys are simply unknown.
    t.learn([row("MYMOD.SCRIPT", { flags: MOVABLEKEYS, first: 0, last: 0, step: 0, specs: [] })]);
    assert.ok(t.lookup("MYMOD.SCRIPT", []), "the new command is known");
  });

  it("a table starts from the rows it is given, and learning into it touches no other table", () => {
    const t = new CommandTable(COMMANDS.filter((r) => r[0] !== "ZUNION"));
    assert.equal(t.lookup("ZUNION", []), null);
    assert.equal(t.size, new CommandTable().size - 1);
    t.learn(COMMANDS.filter((r) => r[0] === "ZUNION"));
    assert.deepEqual(keysOf(t, "ZUNION", "2", "a", "b"), ["a", "b"]);
    t.learn([row("ONLYHERE")]);
    assert.equal(new CommandTable().lookup("ONLYHERE", []), null, "a new table has not learned it");
    assert.equal(commandInfo("ONLYHERE", []), null, "nor has the built-in one");
  });
});
