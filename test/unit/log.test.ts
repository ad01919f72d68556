/**
 * The logger's two formats: every line starts with its time (ISO 8601 UTC, from the runtime's
 * wall clock) and level; `text` is `TIME LEVEL message key=value`, `json` one object a line with
 * `time`, `level`, `msg` first. Secrets never reach a line, in either format, however deep in a
 * field they sit; an error shows its message, and its stack only through `withStack`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger, withStack, type LogFormat } from "../../src/log.ts";
import { processLogger } from "../../src/app.ts";
import { loadConfig, validateConfig } from "../../src/config/load.ts";
import { ManualRuntime } from "../support/manual-runtime.ts";

const TIME = "2026-12-03T15:00:00.123Z";

function capture(format: LogFormat, level: "debug" | "info" | "warn" = "debug") {
  const lines: string[] = [];
  const log = createLogger(level, (line) => lines.push(line), { format, time: () => TIME });
  return { log, lines };
}

describe("text lines", () => {
  it("start with the time and the level, then the message and its fields", () => {
    const { log, lines } = capture("text");
    log.info("node up", { cluster: "main", address: "127.0.0.1:7000", forMs: 120, reason: "a reason with spaces", empty: "" });
    assert.deepEqual(lines, [`${TIME} INFO node up cluster=main address=127.0.0.1:7000 forMs=120 reason="a reason with spaces" empty=""`]);
  });

  it("keep below the level out", () => {
    const { log, lines } = capture("text", "warn");
    log.info("hidden");
    log.warn("shown");
    assert.deepEqual(lines, [`${TIME} WARN shown`]);
  });

  it("show an error as its message, and a stack below the line when asked", () => {
    const { log, lines } = capture("text");
    const error = new Error("boom");
    log.warn("refresh failed", { error });
    log.error("task failed", { scope: "slotgate/x", ...withStack(error) });
    assert.equal(lines[0], `${TIME} WARN refresh failed error="boom"`);
    const [first, ...below] = lines[1]!.split("\n");
    assert.equal(first, `${TIME} ERROR task failed scope=slotgate/x error=boom`);
    assert.match(below[0]!, /^ {4}Error: boom/);
    assert.ok(below.length > 1 && below.every((line) => line.startsWith("    ")), lines[1]);
  });

  it("without a clock carry no time (what unit tests capture)", () => {
    const lines: string[] = [];
    createLogger("info", (line) => lines.push(line)).info("hello", { a: 1 });
    assert.deepEqual(lines, ["INFO hello a=1"]);
  });
});

describe("json lines", () => {
  it("are one object a line: time, level and msg first, then the fields", () => {
    const { log, lines } = capture("json");
    log.warn("node down", { cluster: "main", address: "127.0.0.1:7000", cause: "ECONNREFUSED", slots: 5461, ok: false });
    assert.equal(lines.length, 1);
    assert.ok(!lines[0]!.includes("\n"));
    const record = JSON.parse(lines[0]!);
    assert.deepEqual(Object.keys(record).slice(0, 3), ["time", "level", "msg"]);
    assert.deepEqual(record, { time: TIME, level: "warn", msg: "node down", cluster: "main", address: "127.0.0.1:7000", cause: "ECONNREFUSED", slots: 5461, ok: false });
  });

  it("keep an event's own field named like a reserved one apart", () => {
    const { log, lines } = capture("json");
    log.info("x", { msg: "mine", level: 3, time: "then" });
    assert.deepEqual(JSON.parse(lines[0]!), { time: TIME, level: "info", msg: "x", msg_: "mine", level_: 3, time_: "then" });
  });

  it("write an error as its message, with its stack only from withStack", () => {
    const { log, lines } = capture("json");
    const error = new TypeError("bad thing");
    log.error("cluster teardown failed", { error });
    log.error("task failed", withStack(error));
    assert.deepEqual(JSON.parse(lines[0]!), { time: TIME, level: "error", msg: "cluster teardown failed", error: "bad thing" });
    const second = JSON.parse(lines[1]!);
    assert.equal(second.error, "bad thing");
    assert.match(second.stack, /^TypeError: bad thing\n/);
    assert.equal(lines[1]!.split("\n").length, 1, "the stack is escaped inside the one line");
  });

  it("survive values JSON cannot hold: bigints, cycles", () => {
    const { log, lines } = capture("json");
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    log.info("odd", { big: 12n });
    log.info("odder", { cycle });
    assert.deepEqual(JSON.parse(lines[0]!), { time: TIME, level: "info", msg: "odd", big: "12" });
    assert.equal(JSON.parse(lines[1]!), "[unserializable]");
  });
});

describe("secrets", () => {
  const PASSWORD = "hunter2-pw";
  const TOKEN = "admin-token-xyz";
  const config = {
    admin: { token: TOKEN },
    requirepass: PASSWORD,
    clusters: { main: { seeds: ["127.0.0.1:7000"], password: PASSWORD, auth: { username: "app", password: PASSWORD } } },
    users: { bob: { passwords: [PASSWORD] } },
  };

  for (const format of ["text", "json"] as const) {
    it(`never appear in ${format} lines: a config object, an error carrying one, a secret field`, () => {
      const { log, lines } = capture(format);
      const error = Object.assign(new Error("cannot apply"), { config, password: PASSWORD });
      error.cause = { password: PASSWORD };
      log.info("config applied", { config });
      log.error("refused", { error, nested: [{ deeper: { secret: PASSWORD } }] });
      log.warn("auth", { password: PASSWORD, token: TOKEN, requirepass: PASSWORD });
      log.error("task failed", withStack(error));
      for (const line of lines) {
        assert.ok(!line.includes(PASSWORD) && !line.includes(TOKEN), `a secret leaked: ${line}`);
      }
      // What is not secret stays readable.
      assert.ok(lines[0]!.includes("127.0.0.1:7000") && lines[0]!.includes("app"), lines[0]);
      assert.ok(lines[0]!.includes("[redacted]"), lines[0]);
    });
  }
});

describe("the process logger", () => {
  it("stamps lines with the runtime's wall clock, at the configured level and format, and changes format live", () => {
    const runtime = new ManualRuntime({ epoch: Date.UTC(2026, 11, 3, 15, 0, 0, 123) });
    const lines: string[] = [];
    const config = validateConfig({ clusters: { main: { seeds: ["127.0.0.1:7000"] } }, logFormat: "json", logLevel: "info" });
    const log = processLogger(runtime, config, (line) => lines.push(line));
    log.debug("hidden");
    log.info("slotgate listening", { address: "127.0.0.1:6380" });
    log.setFormat!("text");
    log.info("updated logFormat (json → text)");
    assert.deepEqual(JSON.parse(lines[0]!), { time: TIME, level: "info", msg: "slotgate listening", address: "127.0.0.1:6380" });
    assert.equal(lines[1], `${TIME} INFO updated logFormat (json → text)`);
    assert.equal(lines.length, 2);
  });

  it("logFormat is text by default, json from SLOTGATE_LOG_FORMAT, and nothing else", () => {
    const readFile = () => assert.fail("no file");
    assert.equal(loadConfig({ env: { SLOTGATE_SEEDS: "127.0.0.1:7000" }, readFile }).logFormat, "text");
    assert.equal(loadConfig({ env: { SLOTGATE_SEEDS: "127.0.0.1:7000", SLOTGATE_LOG_FORMAT: "json" }, readFile }).logFormat, "json");
    assert.throws(() => loadConfig({ env: { SLOTGATE_SEEDS: "127.0.0.1:7000", SLOTGATE_LOG_FORMAT: "xml" }, readFile }), /SLOTGATE_LOG_FORMAT="xml": expected text or json/);
  });
});
