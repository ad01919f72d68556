/** `readFrom`: where a cluster's read-only commands go, set per cluster, in clusterDefaults or by SLOTGATE_READ_FROM. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadConfig, validateCluster, validateConfig } from "../../src/config/load.ts";
import { resolveReadFrom } from "../../src/config/schema.ts";
import { ConfigError } from "../../src/errors.ts";

const noFile = () => {
  throw new Error("ENOENT: no such file");
};

function problems(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, "error instanceof ConfigError");
    return error.problems;
  }
  assert.fail("expected a ConfigError");
}

describe("readFrom configuration", () => {
  it("defaults to primary", () => {
    const config = loadConfig({ env: { SLOTGATE_SEEDS: "127.0.0.1:7000" }, readFile: noFile });
    assert.equal(config.clusterDefaults.readFrom, undefined);
    assert.equal(resolveReadFrom(config.clusters.default!, config.clusterDefaults), "primary");
  });

  it("SLOTGATE_READ_FROM sets the default every cluster inherits; a cluster's own value wins", () => {
    for (const value of ["primary", "preferReplica", "replica", "any"]) {
      const config = loadConfig({ env: { SLOTGATE_SEEDS: "127.0.0.1:7000", SLOTGATE_READ_FROM: value }, readFile: noFile });
      assert.equal(config.clusterDefaults.readFrom, value);
      assert.equal(resolveReadFrom(config.clusters.default!, config.clusterDefaults), value);
    }
    const file = JSON.stringify({ clusters: { main: { seeds: ["127.0.0.1:1"], readFrom: "any" }, other: { seeds: ["127.0.0.1:2"] } }, catchAll: "main" });
    const config = loadConfig({ env: { SLOTGATE_CONFIG: "/c.json", SLOTGATE_READ_FROM: "preferReplica" }, readFile: () => file });
    assert.equal(resolveReadFrom(config.clusters.main!, config.clusterDefaults), "any");
    assert.equal(resolveReadFrom(config.clusters.other!, config.clusterDefaults), "preferReplica");
  });

  it("a bad SLOTGATE_READ_FROM is reported by name, value and the accepted values", () => {
    const lines = problems(() => loadConfig({ env: { SLOTGATE_SEEDS: "127.0.0.1:7000", SLOTGATE_READ_FROM: "replicas" }, readFile: noFile }));
    assert.deepEqual(lines, ['SLOTGATE_READ_FROM="replicas": expected one of primary, preferReplica, replica, any (where read-only commands go)']);
  });

  it("a bad readFrom in a cluster or in clusterDefaults names the field; the values are case-sensitive", () => {
    const lines = problems(() =>
      validateConfig({ clusterDefaults: { readFrom: "slave" }, clusters: { main: { seeds: ["127.0.0.1:1"], readFrom: "Replica" } } }),
    );
    assert.equal(lines.length, 2, lines.join("\n"));
    assert.ok(lines.includes('clusterDefaults.readFrom = "slave": expected one of primary, preferReplica, replica, any (where read-only commands go)'), lines.join("\n"));
    assert.ok(lines.includes('clusters.main.readFrom = "Replica": expected one of primary, preferReplica, replica, any (where read-only commands go)'), lines.join("\n"));
    assert.throws(() => validateCluster({ seeds: ["127.0.0.1:1"], readFrom: 1 }), /readFrom = 1: expected one of primary, preferReplica, replica, any/);
  });

  it("standalone servers have no replicas: readFrom in their document is an unknown field, the default does not apply to them", () => {
    const lines = problems(() => validateCluster({ type: "standalone", servers: ["127.0.0.1:6379"], readFrom: "replica" }));
    assert.ok(lines.some((line) => line.startsWith("readFrom") && line.includes("unknown field")), lines.join("\n"));
    const config = validateConfig({ clusterDefaults: { readFrom: "replica" }, clusters: { cache: { type: "standalone", servers: ["127.0.0.1:6379"] } } });
    assert.equal(resolveReadFrom(config.clusters.cache!, config.clusterDefaults), "primary");
  });
});
