/**
 * The table of what each configuration field does on a live change (src/control/live-fields.ts):
 * it covers the schema exactly, and every field either applies (listed in the change) or is
 * refused with its reason — nothing is accepted and ignored.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fieldChanges, LIVE_FIELDS, type FieldRule } from "../../src/control/live-fields.ts";
import { validateConfig } from "../../src/config/load.ts";
import { AdminSchema, ConfigSchema, LimitsSchema, type Config } from "../../src/config/schema.ts";

const TOKEN = "admin-token-1234";

const BASE = {
  listen: "127.0.0.1:6380",
  admin: { listen: "127.0.0.1:6390", token: TOKEN },
  clusters: { a: { seeds: ["127.0.0.1:7000"] }, b: { type: "standalone", servers: ["127.0.0.1:7100"] } },
  routes: [{ prefix: "b:", cluster: "b" }],
  catchAll: "a",
};

/** One valid change per field of the table (a leaf path); the test fails when a field has none. */
const SAMPLES: Record<string, (d: Record<string, any>) => void> = {
  listen: (d) => (d.listen = "127.0.0.1:6381"),
  workers: (d) => (d.workers = 4),
  tls: (d) => (d.tls = { listen: "127.0.0.1:6443", cert: "/etc/slotgate/server.crt", key: "/etc/slotgate/server.key" }),
  "admin.listen": (d) => (d.admin.listen = "127.0.0.1:6391"),
  "admin.token": (d) => (d.admin.token = "another-token-5678"),
  logLevel: (d) => (d.logLevel = "debug"),
  logFormat: (d) => (d.logFormat = "json"),
  shutdownTimeoutMs: (d) => (d.shutdownTimeoutMs = 1234),
  shutdownDelayMs: (d) => (d.shutdownDelayMs = 5000),
  "limits.maxBulkBytes": (d) => (d.limits = { maxBulkBytes: 1000 }),
  "limits.maxArrayLength": (d) => (d.limits = { maxArrayLength: 10 }),
  "limits.maxPendingRequests": (d) => (d.limits = { maxPendingRequests: 10 }),
  "limits.maxClientOutputBytes": (d) => (d.limits = { maxClientOutputBytes: 4096 }),
  "limits.maxClients": (d) => (d.limits = { maxClients: 1 }),
  "limits.maxDedicatedConnections": (d) => (d.limits = { maxDedicatedConnections: 0 }),
  "limits.maxQueryBufferBytes": (d) => (d.limits = { maxQueryBufferBytes: 2 * 1024 * 1024 }),
  "limits.maxClientOwedBytes": (d) => (d.limits = { maxClientOwedBytes: 2 * 1024 * 1024 }),
  "limits.maxClientsMemoryBytes": (d) => (d.limits = { maxClientsMemoryBytes: 0 }),
  "limits.splitChunkParts": (d) => (d.limits = { splitChunkParts: 16 }),
  "limits.clientIdleTimeoutSeconds": (d) => (d.limits = { clientIdleTimeoutSeconds: 30 }),
  "limits.tcpKeepAliveSeconds": (d) => (d.limits = { tcpKeepAliveSeconds: 60 }),
  clusterDefaults: (d) => (d.clusterDefaults = { opTimeoutMs: 100 }),
  clusters: (d) => (d.clusters.c = { seeds: ["127.0.0.1:7200"] }),
  routes: (d) => (d.routes = [{ prefix: "bb:", cluster: "b" }]),
  catchAll: (d) => (d.catchAll = "b"),
  denyCommands: (d) => (d.denyCommands = ["FLUSHALL"]),
  requirepass: (d) => (d.requirepass = "a-new-password"),
  users: (d) => (d.users = { alice: { passwords: ["pw"], commands: ["+@read"], keys: ["~app:*"] } }),
  allowUnprotected: (d) => (d.allowUnprotected = true),
  metrics: (d) => (d.metrics = false),
  slowlogThresholdUs: (d) => (d.slowlogThresholdUs = 0),
  slowlogMaxLen: (d) => (d.slowlogMaxLen = 16),
};

function leaves(rules: Readonly<Record<string, FieldRule>>, prefix = ""): [string, FieldRule][] {
  return Object.entries(rules).flatMap(([key, rule]) => (rule.kind === "fields" ? leaves(rule.fields, `${prefix}${key}.`) : [[prefix + key, rule] as [string, FieldRule]]));
}

function config(change: (d: Record<string, any>) => void = () => {}): Config {
  const document = structuredClone(BASE) as Record<string, any>;
  change(document);
  return validateConfig(document);
}

describe("live configuration fields", () => {
  it("the table has one rule for every field of the schema, and only those", () => {
    assert.deepEqual(Object.keys(LIVE_FIELDS).sort(), Object.keys(ConfigSchema.pipe[0].entries).sort());
    const nested = (name: "limits" | "admin") => {
      const rule = LIVE_FIELDS[name];
      assert.equal(rule.kind, "fields");
      return Object.keys(rule.kind === "fields" ? rule.fields : {}).sort();
    };
    assert.deepEqual(nested("limits"), Object.keys(LimitsSchema.entries).sort());
    assert.deepEqual(nested("admin"), Object.keys(AdminSchema.entries).sort());
  });

  it("a change to any field is either listed as applied or refused with its reason", () => {
    const fields = leaves(LIVE_FIELDS);
    assert.deepEqual(Object.keys(SAMPLES).sort(), fields.map(([path]) => path).sort(), "every field has a sample change");
    const base = config();
    for (const [path, rule] of fields) {
      const { refused, updated } = fieldChanges(base, config(SAMPLES[path]));
      if (rule.kind === "restart") {
        assert.equal(refused.length, 1, `${path}: refused ${JSON.stringify(refused)}`);
        assert.ok(refused[0]!.startsWith(`${path}: cannot change while running`), refused[0]);
        assert.ok(refused[0]!.endsWith(rule.reason), refused[0]);
        assert.deepEqual(updated, [], path);
      } else if (rule.kind === "live") {
        assert.deepEqual(refused, [], path);
        if (rule.listed === "per cluster") assert.deepEqual(updated, [], `${path}: listed cluster by cluster by the control plane`);
        else assert.ok(updated.length === 1 && updated[0]!.startsWith(`updated ${path}`), `${path}: ${JSON.stringify(updated)}`);
      }
    }
  });

  it("the change lines show scalar values, never a secret's", () => {
    const base = config();
    assert.deepEqual(fieldChanges(base, config(SAMPLES.logLevel)).updated, ["updated logLevel (info → debug)"]);
    assert.deepEqual(fieldChanges(base, config(SAMPLES["limits.maxClients"])).updated, ["updated limits.maxClients (10000 → 1)"]);
    assert.deepEqual(fieldChanges(base, config(SAMPLES.routes)).updated, ["updated routes"]);
    const noCatchAll = config((d) => {
      delete d.catchAll;
      d.routes.push({ prefix: "a", cluster: "a" });
    });
    assert.deepEqual(fieldChanges(base, noCatchAll).updated, ["updated routes", "updated catchAll (a → unset)"]);
    const token = fieldChanges(base, config(SAMPLES["admin.token"])).refused;
    assert.deepEqual(token, ["admin.token: cannot change while running: the admin API's token is fixed at start; restart slotgate to change it"]);
    assert.deepEqual(fieldChanges(base, config(SAMPLES.listen)).refused, [
      "listen: cannot change while running (127.0.0.1:6380 → 127.0.0.1:6381): the client listener is bound once, at start; restart slotgate to change it",
    ]);
  });

  it("no change, no line; several changes, one line each", () => {
    const base = config();
    assert.deepEqual(fieldChanges(base, config()), { refused: [], updated: [] });
    const both = fieldChanges(base, config((d) => {
      d.logLevel = "warn";
      d.shutdownTimeoutMs = 5;
      d.listen = "127.0.0.1:1";
    }));
    assert.equal(both.refused.length, 1);
    assert.deepEqual(both.updated, ["updated logLevel (info → warn)", "updated shutdownTimeoutMs (10000 → 5)"]);
  });

  it("an upstream password change (clusterDefaults or a cluster's) applies as a replacement and never shows the secret", () => {
    const base = config((d) => {
      d.clusterDefaults = { username: "app", password: "old-defaults-pw" };
      d.clusters.a.password = "old-a-pw";
    });
    const next = config((d) => {
      d.clusterDefaults = { username: "app", password: "new-defaults-pw" };
      d.clusters.a.password = "new-a-pw";
    });
    const changes = fieldChanges(base, next);
    // A cluster's own document is listed per cluster ("replaced cluster 'a'") by the change itself.
    assert.deepEqual(changes, { refused: [], updated: ["updated clusterDefaults"] });
    assert.doesNotMatch(JSON.stringify(changes), /pw/);
  });
});
