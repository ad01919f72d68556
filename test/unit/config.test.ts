/** Configuration from environment variables and a JSON file, validated with valibot. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadConfig, ENV_VARIABLES } from "../../src/config/load.ts";
import { ConfigError } from "../../src/errors.ts";

const noFile = () => {
  throw new Error("ENOENT: no such file");
};

function problems(env: Record<string, string>, files: Record<string, string> = {}): string[] {
  try {
    loadConfig({ env, readFile: (path) => files[path] ?? noFile() });
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  assert.fail("expected a ConfigError");
}

describe("configuration", () => {
  it("seeds alone give every documented default", () => {
    const config = loadConfig({ env: { SLOTGATE_SEEDS: "127.0.0.1:7000, redis-0.example:7001" }, readFile: noFile });
    assert.equal(config.listen, "127.0.0.1:6380");
    assert.equal(config.logLevel, "info");
    assert.deepEqual(config.cluster.seeds, ["127.0.0.1:7000", "redis-0.example:7001"]);
    assert.equal(config.cluster.refreshIntervalMs, 5000);
    assert.equal(config.cluster.refreshTimeoutMs, 3000);
    assert.equal(config.cluster.redirectRefreshThreshold, 5);
    assert.equal(config.cluster.redirectRefreshIntervalMs, 5000);
    assert.equal(config.limits.maxBulkBytes, 512 * 1024 * 1024);
  });

  it("every variable sets its field", () => {
    const env: Record<string, string> = { SLOTGATE_SEEDS: "10.0.0.1:7000", SLOTGATE_LISTEN: "0.0.0.0:7777", SLOTGATE_LOG_LEVEL: "debug" };
    for (const variable of ENV_VARIABLES) if (variable.kind === "number") env[variable.name] ??= "42";
    env.SLOTGATE_MAX_CLIENT_OUTPUT_BYTES = "4096";
    const config = loadConfig({ env, readFile: noFile });
    assert.equal(config.listen, "0.0.0.0:7777");
    assert.equal(config.logLevel, "debug");
    assert.equal(config.cluster.opTimeoutMs, 42);
    assert.equal(config.cluster.connectionsPerNode, 42);
    assert.equal(config.limits.maxClients, 42);
    assert.equal(config.limits.maxClientOutputBytes, 4096);
    assert.equal(config.shutdownTimeoutMs, 42);
  });

  it("the file is read first and variables override its fields", () => {
    const file = JSON.stringify({ listen: "127.0.0.1:7000", cluster: { seeds: ["127.0.0.1:1"], opTimeoutMs: 100 }, limits: { maxClients: 5 } });
    const config = loadConfig({ env: { SLOTGATE_CONFIG: "/etc/slotgate.json", SLOTGATE_OP_TIMEOUT_MS: "250" }, readFile: (p) => (p === "/etc/slotgate.json" ? file : noFile()) });
    assert.equal(config.listen, "127.0.0.1:7000");
    assert.equal(config.cluster.opTimeoutMs, 250);
    assert.equal(config.limits.maxClients, 5);
  });

  it("a bad variable is reported by name, value and expectation, one line per problem", () => {
    const lines = problems({ SLOTGATE_SEEDS: "nohost", SLOTGATE_OP_TIMEOUT_MS: "soon", SLOTGATE_LOG_LEVEL: "loud", SLOTGATE_MAX_REDIRECTS: "-1" });
    assert.equal(lines.length, 4);
    assert.ok(lines.some((l) => l.startsWith('SLOTGATE_SEEDS="nohost": expected host:port')), lines.join("\n"));
    assert.ok(lines.some((l) => l.startsWith('SLOTGATE_OP_TIMEOUT_MS="soon": expected a number of milliseconds')), lines.join("\n"));
    assert.ok(lines.some((l) => l.startsWith('SLOTGATE_LOG_LEVEL="loud": expected one of')), lines.join("\n"));
    assert.ok(lines.some((l) => l.startsWith("SLOTGATE_MAX_REDIRECTS=-1: expected at least 0")), lines.join("\n"));
  });

  it("missing seeds, unknown variables, unknown file fields and unreadable files are reported", () => {
    assert.match(problems({})[0]!, /^cluster\.seeds: missing: set SLOTGATE_SEEDS/);
    assert.match(problems({ SLOTGATE_SEDS: "x:1", SLOTGATE_SEEDS: "127.0.0.1:1" })[0]!, /^SLOTGATE_SEDS: unknown variable/);
    assert.match(problems({ SLOTGATE_CONFIG: "/nope.json" })[0]!, /^SLOTGATE_CONFIG=\/nope\.json: cannot read the config file/);
    const bad = JSON.stringify({ cluster: { seeds: ["127.0.0.1:1"], refreshIntervalMs: 5, colour: "blue" } });
    const lines = problems({ SLOTGATE_CONFIG: "/c.json" }, { "/c.json": bad });
    assert.ok(lines.some((l) => l.startsWith("cluster.refreshIntervalMs in /c.json = 5: expected at least 10")), lines.join("\n"));
    assert.ok(lines.some((l) => l.includes("cluster.colour") && l.includes("unknown field")), lines.join("\n"));
    assert.match(problems({ SLOTGATE_CONFIG: "/c.json" }, { "/c.json": "{not json" })[0]!, /cannot read the config file/);
  });
});
