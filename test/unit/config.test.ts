/** Configuration from environment variables and a JSON file, validated with valibot. */
import { sha256Hex } from "../../src/util/sha256.ts";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadConfig, validateConfig, validateCluster, ENV_VARIABLES } from "../../src/config/load.ts";
import { resolveKnobs, resolveUpstreamTls } from "../../src/config/schema.ts";
import { ConfigError } from "../../src/errors.ts";

const noFile = () => {
  throw new Error("ENOENT: no such file");
};

function problems(env: Record<string, string>, files: Record<string, string> = {}): string[] {
  try {
    loadConfig({ env, readFile: (path) => files[path] ?? noFile() });
  } catch (error) {
    assert.ok(error instanceof ConfigError, "error instanceof ConfigError");
    return error.problems;
  }
  assert.fail("expected a ConfigError");
}

describe("configuration", () => {
  it("seeds alone give every documented default", () => {
    const config = loadConfig({ env: { SLOTGATE_SEEDS: "127.0.0.1:7000, redis-0.example:7001" }, readFile: noFile });
    assert.equal(config.listen, "127.0.0.1:6380");
    assert.equal(config.logLevel, "info");
    const cluster = config.clusters.default!;
    assert.equal(cluster.type, "cluster");
    assert.deepEqual(cluster.type === "cluster" && cluster.seeds, ["127.0.0.1:7000", "redis-0.example:7001"]);
    assert.equal(config.catchAll, "default", "a lone cluster gets the catch-all route");
    const knobs = resolveKnobs(cluster, config.clusterDefaults);
    assert.equal(knobs.refreshIntervalMs, 5000);
    assert.equal(knobs.refreshTimeoutMs, 3000);
    assert.equal(knobs.redirectRefreshThreshold, 5);
    assert.equal(knobs.redirectRefreshIntervalMs, 5000);
    assert.equal(knobs.readyTimeoutMs, 10_000);
    assert.equal(knobs.drainTimeoutMs, 5000);
    assert.equal(config.admin.listen, "127.0.0.1:6390");
    assert.equal(config.limits.maxBulkBytes, 512 * 1024 * 1024);
  });

  it("every variable sets its field", () => {
    const env: Record<string, string> = { SLOTGATE_SEEDS: "10.0.0.1:7000", SLOTGATE_LISTEN: "0.0.0.0:7777", SLOTGATE_LOG_LEVEL: "debug", SLOTGATE_ADMIN_LISTEN: "off", SLOTGATE_ADMIN_TOKEN: "secret-token", SLOTGATE_REQUIREPASS: " pass word ", SLOTGATE_ALLOW_UNPROTECTED: "yes" };
    for (const variable of ENV_VARIABLES) if (variable.kind === "number") env[variable.name] ??= "42";
    env.SLOTGATE_MAX_CLIENT_OUTPUT_BYTES = "4096";
    // Byte limits with a floor of their own.
    env.SLOTGATE_MAX_QUERY_BUFFER_BYTES = "2097152";
    env.SLOTGATE_MAX_CLIENT_OWED_BYTES = "3145728";
    env.SLOTGATE_MAX_UPSTREAM_QUEUE_BYTES = "65536";
    const config = loadConfig({ env, readFile: noFile });
    assert.equal(config.listen, "0.0.0.0:7777");
    assert.equal(config.logLevel, "debug");
    assert.equal(config.clusterDefaults.opTimeoutMs, 42);
    assert.equal(config.clusterDefaults.connectionsPerNode, 42);
    assert.equal(config.clusterDefaults.drainTimeoutMs, 42);
    assert.equal(config.admin.listen, "off");
    assert.equal(config.admin.token, "secret-token");
    assert.equal(config.limits.maxClients, 42);
    assert.equal(config.limits.maxClientOutputBytes, 4096);
    assert.equal(config.limits.maxQueryBufferBytes, 2097152);
    assert.equal(config.limits.maxClientOwedBytes, 3145728);
    assert.equal(config.limits.maxClientsMemoryBytes, 42);
    assert.equal(config.limits.splitChunkParts, 42);
    assert.equal(config.clusterDefaults.maxUpstreamQueueBytes, 65536);
    assert.equal(config.shutdownTimeoutMs, 42);
    // Kept only as its SHA-256, spaces included (a password is taken byte for byte).
    assert.equal(config.requirepass, `#${sha256Hex(new TextEncoder().encode(" pass word "))}`);
    assert.equal(config.allowUnprotected, true);
  });

  it("memory limits default to Redis's own (1 GiB query buffer, 512 MiB bulk) and a 1 GiB budget for all clients; 0 turns the budget off; a query buffer under 1 MiB is refused", () => {
    const config = loadConfig({ env: { SLOTGATE_SEEDS: "10.0.0.1:7000" }, readFile: noFile });
    assert.equal(config.limits.maxQueryBufferBytes, 1024 * 1024 * 1024);
    assert.equal(config.limits.maxBulkBytes, 512 * 1024 * 1024);
    assert.equal(config.limits.maxClientsMemoryBytes, 1024 * 1024 * 1024);
    assert.equal(config.limits.maxClientOwedBytes, 8 * 1024 * 1024);
    assert.equal(config.limits.splitChunkParts, 256);
    assert.equal(resolveKnobs({}, config.clusterDefaults).maxUpstreamQueueBytes, 64 * 1024 * 1024);
    assert.equal(loadConfig({ env: { SLOTGATE_SEEDS: "10.0.0.1:7000", SLOTGATE_MAX_CLIENTS_MEMORY_BYTES: "0" }, readFile: noFile }).limits.maxClientsMemoryBytes, 0);
    assert.match(problems({ SLOTGATE_SEEDS: "10.0.0.1:7000", SLOTGATE_MAX_QUERY_BUFFER_BYTES: "1000" })[0]!, /^SLOTGATE_MAX_QUERY_BUFFER_BYTES=1000: expected at least 1048576 bytes/);
  });

  it("the file is read first and variables override its fields", () => {
    const file = JSON.stringify({ listen: "127.0.0.1:7000", clusters: { main: { seeds: ["127.0.0.1:1"], opTimeoutMs: 100 } }, catchAll: "main", limits: { maxClients: 5 } });
    const config = loadConfig({ env: { SLOTGATE_CONFIG: "/etc/slotgate.json", SLOTGATE_OP_TIMEOUT_MS: "250" }, readFile: (p) => (p === "/etc/slotgate.json" ? file : noFile()) });
    assert.equal(config.listen, "127.0.0.1:7000");
    // The variable sets the default; the cluster's own value still wins.
    assert.equal(resolveKnobs(config.clusters.main!, config.clusterDefaults).opTimeoutMs, 100);
    assert.equal(config.clusterDefaults.opTimeoutMs, 250);
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
    assert.match(problems({})[0]!, /^clusters: missing: set SLOTGATE_SEEDS/);
    assert.match(problems({ SLOTGATE_SEDS: "x:1", SLOTGATE_SEEDS: "127.0.0.1:1" })[0]!, /^SLOTGATE_SEDS: unknown variable/);
    assert.match(problems({ SLOTGATE_CONFIG: "/nope.json" })[0]!, /^SLOTGATE_CONFIG=\/nope\.json: cannot read the config file/);
    const bad = JSON.stringify({ clusters: { a: { seeds: ["127.0.0.1:1"], refreshIntervalMs: 5, colour: "blue" } } });
    const lines = problems({ SLOTGATE_CONFIG: "/c.json" }, { "/c.json": bad });
    assert.ok(lines.some((l) => l.startsWith("clusters.a.refreshIntervalMs in /c.json = 5: expected at least 10")), lines.join("\n"));
    assert.ok(lines.some((l) => l.includes("clusters.a.colour") && l.includes("unknown field")), lines.join("\n"));
    assert.match(problems({ SLOTGATE_CONFIG: "/c.json" }, { "/c.json": "{not json" })[0]!, /cannot read the config file/);
  });

  it("the legacy single-cluster file form still works", () => {
    const config = validateConfig({ cluster: { seeds: ["127.0.0.1:7000"] } });
    assert.deepEqual(Object.keys(config.clusters), ["default"]);
    assert.equal(config.catchAll, "default");
  });

  it("several clusters with routes, a catch-all and a standalone ketama pool", () => {
    const config = validateConfig({
      clusters: {
        users: { seeds: ["127.0.0.1:7000"] },
        cache: { type: "standalone", servers: ["127.0.0.1:6379", { address: "127.0.0.1:6380", weight: 2 }], hashTag: "{}" },
      },
      routes: [
        { prefix: "user:", cluster: "users", removePrefix: true },
        { prefix: "CACHE:", cluster: "cache", caseInsensitive: true },
      ],
      catchAll: "users",
    });
    assert.equal(config.routes.length, 2);
    assert.equal(config.routes[0]!.removePrefix, true);
    assert.equal(config.routes[1]!.caseInsensitive, true);
    assert.equal(config.clusters.cache!.type, "standalone");
  });

  it("a route to an unknown cluster, no route at all, and a bad catch-all are config errors", () => {
    const explain = (doc: unknown) => {
      try {
        validateConfig(doc);
      } catch (error) {
        assert.ok(error instanceof ConfigError, "a ConfigError");
        return error.problems.join("\n");
      }
      return "valid";
    };
    assert.match(explain({ clusters: { a: { seeds: ["127.0.0.1:1"] } }, routes: [{ prefix: "x:", cluster: "b" }] }), /routes\.0\.cluster.*route to unknown cluster 'b'/);
    assert.match(explain({ clusters: { a: { seeds: ["127.0.0.1:1"] }, b: { seeds: ["127.0.0.1:2"] } } }), /no route: add routes or a catchAll cluster/);
    assert.match(explain({ clusters: { a: { seeds: ["127.0.0.1:1"] } }, catchAll: "zz" }), /catch-all to unknown cluster 'zz'/);
    assert.match(explain({ clusters: { a: { type: "standalone", seeds: ["127.0.0.1:1"] } } }), /clusters\.a/);
    assert.match(explain({ clusters: {} }), /expected at least one cluster/);
  });

  it("one cluster document is validated on its own (PUT /clusters/:name)", () => {
    assert.equal(validateCluster({ seeds: ["127.0.0.1:1"] }).type, "cluster");
    assert.throws(() => validateCluster({ seeds: [] }), /expected at least one seed/);
    assert.throws(() => validateCluster({ type: "standalone", servers: ["nope"] }), /expected host:port/);
  });

  it("a non-loopback admin address without a token is a config error; with a token it is fine", () => {
    const lines = problems({ SLOTGATE_SEEDS: "127.0.0.1:1", SLOTGATE_ADMIN_LISTEN: "0.0.0.0:6390" });
    assert.deepEqual(lines, ['SLOTGATE_ADMIN_LISTEN="0.0.0.0:6390": is not a loopback address: set SLOTGATE_ADMIN_TOKEN (admin.token) to expose the admin API']);
    const config = loadConfig({ env: { SLOTGATE_SEEDS: "127.0.0.1:1", SLOTGATE_ADMIN_LISTEN: "0.0.0.0:6390", SLOTGATE_ADMIN_TOKEN: "long-enough" }, readFile: noFile });
    assert.equal(config.admin.listen, "0.0.0.0:6390");
    assert.equal(loadConfig({ env: { SLOTGATE_SEEDS: "127.0.0.1:1", SLOTGATE_ADMIN_LISTEN: "[::1]:0" }, readFile: noFile }).admin.listen, "[::1]:0");
  });

  it("fault knobs: probe backoff, unknown nodes, idle clients and keepalive have documented defaults and variables", () => {
    const config = loadConfig({ env: { SLOTGATE_SEEDS: "127.0.0.1:1" }, readFile: noFile });
    const knobs = resolveKnobs(config.clusters.default!, config.clusterDefaults);
    assert.equal(knobs.probeBackoffMinMs, 100);
    assert.equal(knobs.probeBackoffMaxMs, 2000);
    assert.equal(knobs.maxUnknownNodes, 100);
    assert.equal(config.limits.clientIdleTimeoutSeconds, 0, "off by default, as Redis's timeout");
    assert.equal(config.limits.tcpKeepAliveSeconds, 300, "Redis's tcp-keepalive default");
    const set = loadConfig({
      env: {
        SLOTGATE_SEEDS: "127.0.0.1:1",
        SLOTGATE_PROBE_BACKOFF_MIN_MS: "50",
        SLOTGATE_PROBE_BACKOFF_MAX_MS: "60000",
        SLOTGATE_MAX_UNKNOWN_NODES: "0",
        SLOTGATE_CLIENT_IDLE_TIMEOUT_SECONDS: "300",
        SLOTGATE_TCP_KEEPALIVE_SECONDS: "0",
      },
      readFile: noFile,
    });
    assert.deepEqual(
      [set.clusterDefaults.probeBackoffMinMs, set.clusterDefaults.probeBackoffMaxMs, set.clusterDefaults.maxUnknownNodes, set.limits.clientIdleTimeoutSeconds, set.limits.tcpKeepAliveSeconds],
      [50, 60000, 0, 300, 0],
    );
  });

  it("a probe backoff whose minimum exceeds its maximum is refused where it was set", () => {
    assert.deepEqual(problems({ SLOTGATE_SEEDS: "127.0.0.1:1", SLOTGATE_PROBE_BACKOFF_MIN_MS: "5000" }), [
      "SLOTGATE_PROBE_BACKOFF_MIN_MS=5000: expected at most probeBackoffMaxMs (2000 ms)",
    ]);
    assert.throws(
      () => validateConfig({ clusters: { a: { seeds: ["127.0.0.1:1"], probeBackoffMaxMs: 50 } } }),
      (error: ConfigError) => {
        assert.deepEqual(error.problems, ["clusters.a.probeBackoffMinMs = 100: expected at most probeBackoffMaxMs (50 ms)"]);
        return true;
      },
    );
    assert.throws(() => loadConfig({ env: { SLOTGATE_SEEDS: "127.0.0.1:1", SLOTGATE_CLIENT_IDLE_TIMEOUT_SECONDS: "-1" }, readFile: noFile }), /SLOTGATE_CLIENT_IDLE_TIMEOUT_SECONDS=-1: expected at least 0 seconds/);
  });

  it("TLS: a client port from variables, upstream TLS on every cluster, a cluster's own tls winning", () => {
    const config = loadConfig({
      env: {
        SLOTGATE_SEEDS: "127.0.0.1:7000",
        SLOTGATE_TLS_LISTEN: "0.0.0.0:6443",
        SLOTGATE_REQUIREPASS: "client-password",
        SLOTGATE_TLS_CERT: "/etc/slotgate/tls.crt",
        SLOTGATE_TLS_KEY: "/etc/slotgate/tls.key",
        SLOTGATE_TLS_CA: "/etc/slotgate/clients.crt",
        SLOTGATE_UPSTREAM_TLS: "on",
        SLOTGATE_UPSTREAM_TLS_CA: "/etc/redis/ca.crt",
        SLOTGATE_UPSTREAM_TLS_SERVERNAME: "redis.internal",
      },
      readFile: noFile,
    });
    assert.deepEqual(config.tls, { listen: "0.0.0.0:6443", cert: "/etc/slotgate/tls.crt", key: "/etc/slotgate/tls.key", ca: "/etc/slotgate/clients.crt" });
    assert.deepEqual(resolveUpstreamTls(config.clusters.default!, config.clusterDefaults), { enabled: true, ca: "/etc/redis/ca.crt", servername: "redis.internal" });
    const plain = loadConfig({ env: { SLOTGATE_SEEDS: "127.0.0.1:7000" }, readFile: noFile });
    assert.equal(plain.tls, undefined, "no TLS port unless asked for");
    assert.equal(resolveUpstreamTls(plain.clusters.default!, plain.clusterDefaults), undefined, "no upstream TLS unless asked for");
    const off = loadConfig({ env: { SLOTGATE_SEEDS: "127.0.0.1:7000", SLOTGATE_UPSTREAM_TLS: "off", SLOTGATE_UPSTREAM_TLS_CA: "/ca" }, readFile: noFile });
    assert.equal(resolveUpstreamTls(off.clusters.default!, off.clusterDefaults), undefined);
    const mixed = validateConfig({
      clusterDefaults: { tls: { enabled: true, ca: "/ca" } },
      clusters: { a: { seeds: ["127.0.0.1:1"] }, b: { seeds: ["127.0.0.1:2"], tls: { enabled: false } }, p: { type: "standalone", servers: ["127.0.0.1:3"], tls: { enabled: true, insecure: true } } },
      catchAll: "a",
    });
    assert.deepEqual(resolveUpstreamTls(mixed.clusters.a!, mixed.clusterDefaults), { enabled: true, ca: "/ca" });
    assert.equal(resolveUpstreamTls(mixed.clusters.b!, mixed.clusterDefaults), undefined);
    assert.deepEqual(resolveUpstreamTls(mixed.clusters.p!, mixed.clusterDefaults), { enabled: true, insecure: true });
  });

  it("TLS: a port without its certificate, half a client certificate, or a bad switch is refused", () => {
    assert.deepEqual(problems({ SLOTGATE_SEEDS: "127.0.0.1:1", SLOTGATE_TLS_LISTEN: "127.0.0.1:6443", SLOTGATE_TLS_CERT: "/c" }), [
      "tls.key = missing: a TLS port needs listen, cert and key (ca and minVersion are optional)",
    ]);
    assert.deepEqual(problems({ SLOTGATE_SEEDS: "127.0.0.1:1", SLOTGATE_UPSTREAM_TLS: "maybe" }), ['SLOTGATE_UPSTREAM_TLS="maybe": expected true or false (on or off in a variable)']);
    assert.throws(() => validateConfig({ clusters: { a: { seeds: ["127.0.0.1:1"], tls: { enabled: true, cert: "/c" } } } }), /clusters\.a\.tls.*expected both cert and key, or neither/);
    assert.throws(() => validateConfig({ clusters: { a: { seeds: ["127.0.0.1:1"], tls: { ca: "/c" } } } }), /clusters\.a\.tls\.enabled/);
    assert.throws(() => validateConfig({ tls: { listen: "127.0.0.1:1", cert: "/c", key: "/k", minVersion: "TLSv1.0" }, clusters: { a: { seeds: ["127.0.0.1:1"] } } }), /expected TLSv1\.2 or TLSv1\.3/);
    assert.ok(ENV_VARIABLES.some((v) => v.name === "SLOTGATE_UPSTREAM_TLS" && v.path === "clusterDefaults.tls.enabled"));
    // Protected mode covers the TLS port: a non-loopback one needs client authentication.
    assert.deepEqual(problems({ SLOTGATE_SEEDS: "127.0.0.1:1", SLOTGATE_TLS_LISTEN: "0.0.0.0:6443", SLOTGATE_TLS_CERT: "/c", SLOTGATE_TLS_KEY: "/k" }), [
      'SLOTGATE_TLS_LISTEN="0.0.0.0:6443": is not a loopback address and no client authentication is configured: set SLOTGATE_REQUIREPASS (requirepass) or users, or SLOTGATE_ALLOW_UNPROTECTED=yes (allowUnprotected: true) to accept clients from anywhere without a password',
    ]);
  });
});
