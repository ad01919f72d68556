/** The deny list: entries as configured, validation, and which commands it refuses. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { deniedReply, denyListOf, denyProblem, isDenied, normalizeDenied } from "../../src/proxy/routing/deny-list.ts";
import { loadConfig } from "../../src/config/load.ts";
import { commandInfo } from "../../src/commands/keys.ts";
import { ConfigError } from "../../src/errors.ts";

const enc = new TextEncoder();
const info = (...words: string[]) => commandInfo(words[0]!, words.map((w) => enc.encode(w)))!;
const noFile = () => {
  throw new Error("no file");
};

describe("deny list", () => {
  it("SLOTGATE_DENY_COMMANDS: upper-cased, subcommands with a bar whichever way they were written; empty by default", () => {
    const config = loadConfig({ env: { SLOTGATE_SEEDS: "127.0.0.1:7000", SLOTGATE_DENY_COMMANDS: "flushall, Script Flush,FUNCTION|delete" }, readFile: noFile });
    assert.deepEqual(config.denyCommands, ["FLUSHALL", "SCRIPT|FLUSH", "FUNCTION|DELETE"]);
    assert.deepEqual(loadConfig({ env: { SLOTGATE_SEEDS: "127.0.0.1:7000" }, readFile: noFile }).denyCommands, []);
  });

  it("a typo or a command the proxy answers itself is a config error naming the variable", () => {
    try {
      loadConfig({ env: { SLOTGATE_SEEDS: "127.0.0.1:7000", SLOTGATE_DENY_COMMANDS: "FLUSHAL,ping,SCRIPT NOPE" }, readFile: noFile });
      assert.fail("expected a ConfigError");
    } catch (error) {
      assert.ok(error instanceof ConfigError, "a ConfigError");
      const text = error.problems.join("\n");
      assert.match(text, /SLOTGATE_DENY_COMMANDS=.*unknown command 'FLUSHAL'/);
      assert.match(text, /'PING' is answered by slotgate itself/);
      assert.match(text, /unknown command 'SCRIPT\|NOPE'/);
    }
  });

  it("normalizes and checks entries", () => {
    assert.equal(normalizeDenied(" script   load "), "SCRIPT|LOAD");
    const local = (name: string) => name === "PING";
    assert.equal(denyProblem("SCRIPT|LOAD", local), null);
    assert.equal(denyProblem("SCRIPT", local), null);
    assert.equal(denyProblem("GET|X", local), "unknown command 'GET|X'");
    assert.equal(denyProblem("PING", local), "'PING' is answered by slotgate itself and never reaches Redis");
  });

  it("a command denies its subcommands; a subcommand only itself", () => {
    const denied = new Set(["FLUSHALL", "SCRIPT|FLUSH", "FUNCTION"]);
    assert.ok(isDenied(denied, info("FLUSHALL", "ASYNC")), "FLUSHALL");
    assert.ok(isDenied(denied, info("SCRIPT", "FLUSH")), "SCRIPT FLUSH");
    assert.ok(!isDenied(denied, info("SCRIPT", "LOAD", "return 1")), "SCRIPT LOAD is not denied");
    assert.ok(isDenied(denied, info("FUNCTION", "LIST")), "FUNCTION LIST, by FUNCTION");
    assert.ok(!isDenied(denied, info("FLUSHDB")), "FLUSHDB is not denied");
    assert.equal(new TextDecoder().decode(deniedReply(info("SCRIPT", "FLUSH"))), "-ERR command 'script|flush' is disabled by slotgate configuration\r\n");
  });

  it("the set in force is rebuilt only when the configuration object changes", () => {
    let config = { denyCommands: ["KEYS"] };
    const denied = denyListOf(() => config);
    const first = denied();
    assert.equal(denied(), first, "same configuration, same set");
    config = { denyCommands: ["DBSIZE"] };
    assert.deepEqual([...denied()], ["DBSIZE"]);
  });
});
