/**
 * `slotgate --check-config` (and `SLOTGATE_CHECK=1`) on a real process: the configuration is
 * loaded exactly as a start would (variables, the JSON or YAML file, *_FILE variables, TLS files),
 * "slotgate: config OK" and exit 0, or one line per problem and exit 2, never opening a socket.
 * And YAML config files: the loader's parsing, and a slotgate started from one.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { detectRuntime } from "../../adapters/current.ts";
import { loadConfig } from "../../src/config/load.ts";
import { ConfigError } from "../../src/errors.ts";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { freePort } from "../../scripts/free-port.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp } from "../support/proxy.ts";
import { until } from "./lifecycle-helpers.ts";
import { startEntry } from "../support/processes.ts";

const SLOW = { timeout: 120_000 };

function problems(env: Record<string, string>, files: Record<string, string>): string[] {
  try {
    loadConfig({ env, readFile: (path) => (Object.hasOwn(files, path) ? files[path]! : (() => { throw new Error(`ENOENT: ${path}`); })()) });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("YAML config files", () => {
  it("a .yaml or .yml file is read as YAML, anything else as JSON", () => {
    const yaml = "listen: 127.0.0.1:7777\nshutdownDelayMs: 5000\nclusters:\n  main:\n    seeds:\n      - 127.0.0.1:7000\n";
    for (const path of ["/etc/slotgate.yaml", "/etc/slotgate.yml", "/etc/SLOTGATE.YML"]) {
      const config = loadConfig({ env: { SLOTGATE_CONFIG: path }, readFile: () => yaml });
      assert.equal(config.listen, "127.0.0.1:7777");
      assert.equal(config.shutdownDelayMs, 5000);
      assert.deepEqual(config.clusters.main?.type === "cluster" && config.clusters.main.seeds, ["127.0.0.1:7000"]);
      assert.equal(config.catchAll, "main");
    }
    // The same text in a .json file is not JSON.
    assert.match(problems({ SLOTGATE_CONFIG: "/c.json" }, { "/c.json": yaml })[0]!, /^SLOTGATE_CONFIG=\/c\.json: cannot read the config file: invalid JSON/);
  });

  it("a YAML syntax error names its line; duplicate keys and a non-mapping are refused", () => {
    const [syntax] = problems({ SLOTGATE_CONFIG: "/c.yaml" }, { "/c.yaml": "clusters:\n  main:\n    seeds: [127.0.0.1:7000\nlisten: x\n" });
    assert.match(syntax!, /^SLOTGATE_CONFIG=\/c\.yaml: cannot read the config file: invalid YAML: .* at line 4, column 1$/);
    assert.match(problems({ SLOTGATE_CONFIG: "/c.yml" }, { "/c.yml": "listen: a\nlisten: b\n" })[0]!, /invalid YAML: Map keys must be unique at line 2, column 1/);
    assert.deepEqual(problems({ SLOTGATE_CONFIG: "/c.yml" }, { "/c.yml": "- a\n- b\n" }), ["/c.yml: expected a YAML mapping"]);
  });

  it("YAML values are validated like JSON ones, named by their path in the file; variables still override", () => {
    const yaml = "logLevel: loud\nclusters:\n  main:\n    seeds: [127.0.0.1:7000]\n    opTimeoutMs: soon\n";
    assert.deepEqual(problems({ SLOTGATE_CONFIG: "/c.yaml" }, { "/c.yaml": yaml }), [
      'logLevel in /c.yaml = "loud": expected one of debug, info, warn, error, silent',
      'clusters.main.opTimeoutMs in /c.yaml = "soon": expected a number of milliseconds',
    ]);
    // YAML 1.2: `yes` is a string, not true.
    assert.match(problems({ SLOTGATE_CONFIG: "/c.yaml" }, { "/c.yaml": "allowUnprotected: yes\nclusters: { m: { seeds: [127.0.0.1:7000] } }\n" })[0]!, /allowUnprotected in \/c\.yaml = "yes": expected true or false/);
    const config = loadConfig({ env: { SLOTGATE_CONFIG: "/c.yaml", SLOTGATE_LOG_LEVEL: "warn" }, readFile: () => "logLevel: debug\nclusters: { m: { seeds: [127.0.0.1:7000] } }\n" });
    assert.equal(config.logLevel, "warn");
  });
});

describe(`--check-config on the ${detectRuntime()} entry point`, () => {
  let dir = "";
  // Ports held by the test: a slotgate that tried to listen on them would fail to start.
  const held: net.Server[] = [];
  let port = 0;
  let adminPort = 0;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "slotgate-check-"));
    for (let i = 0; i < 2; i++) {
      const server = net.createServer();
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      held.push(server);
    }
    port = (held[0]!.address() as net.AddressInfo).port;
    adminPort = (held[1]!.address() as net.AddressInfo).port;
  });
  after(async () => {
    for (const server of held) await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });
  const cluster = lazy(() => startLocalCluster());
  after(() => cluster.stop());

  it("a good configuration: config OK and a summary, exit 0, no socket opened (its ports are taken)", SLOW, async () => {
    const file = join(dir, "ok.yaml");
    writeFileSync(file, `listen: 127.0.0.1:${port}\nadmin:\n  listen: 127.0.0.1:${adminPort}\nclusters:\n  main:\n    seeds: [127.0.0.1:1]\n  cache:\n    type: standalone\n    servers: [127.0.0.1:2, 127.0.0.1:3]\nroutes:\n  - { prefix: "c:", cluster: cache }\ncatchAll: main\n`);
    const secret = join(dir, "token");
    writeFileSync(secret, "a-long-admin-token\n");
    for (const [args, extra] of [[["--check-config"], {}], [[], { SLOTGATE_CHECK: "1" }], [["-t"], {}]] as const) {
      const run = await startEntry([...args], { SLOTGATE_CONFIG: file, SLOTGATE_ADMIN_TOKEN_FILE: secret, ...extra }).done;
      assert.equal(run.code, 0, run.stderr + run.stdout);
      assert.equal(run.stdout, `slotgate: config OK\nslotgate: listen 127.0.0.1:${port}, admin 127.0.0.1:${adminPort}; clusters main (cluster, 1 seeds), cache (standalone, 2 servers), 1 routes, catch-all main\n`);
      assert.equal(run.stderr, "");
    }
  });

  it("bad variables: one line per problem (valibot's messages), exit 2", SLOW, async () => {
    const run = await startEntry(["--check-config"], { SLOTGATE_OP_TIMEOUT_MS: "fast", SLOTGATE_SEEDS: "nope", SLOTGATE_SHUTDOWN_DELAY_MS: "-1" }).done;
    assert.equal(run.code, 2);
    assert.equal(run.stdout, "");
    assert.deepEqual(run.stderr.trim().split("\n").sort(), [
      'slotgate: config: SLOTGATE_OP_TIMEOUT_MS="fast": expected a number of milliseconds',
      'slotgate: config: SLOTGATE_SEEDS="nope": expected host:port (port 1-65535)',
      "slotgate: config: SLOTGATE_SHUTDOWN_DELAY_MS=-1: expected at least 0 milliseconds",
    ]);
  });

  it("a bad YAML file: the line of the error, exit 2", SLOW, async () => {
    const file = join(dir, "bad.yml");
    writeFileSync(file, "clusters:\n  main:\n\tseeds: [127.0.0.1:7000]\n");
    const run = await startEntry(["--check-config"], { SLOTGATE_CONFIG: file }).done;
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^slotgate: config: SLOTGATE_CONFIG=\S+bad\.yml: cannot read the config file: invalid YAML: .*at line 3, column 1\n$/);
  });

  it("files a start would read: a *_FILE secret and the TLS port's certificate must be readable", SLOW, async () => {
    const run = await startEntry(["--check-config"], {
      SLOTGATE_SEEDS: "127.0.0.1:7000",
      SLOTGATE_REQUIREPASS_FILE: join(dir, "no-such-secret"),
      SLOTGATE_TLS_LISTEN: "127.0.0.1:0",
      SLOTGATE_TLS_CERT: join(dir, "no-such.crt"),
      SLOTGATE_TLS_KEY: join(dir, "no-such.key"),
    }).done;
    assert.equal(run.code, 2);
    assert.match(run.stderr, /SLOTGATE_REQUIREPASS_FILE=\S+no-such-secret: cannot read the file/);
    const tls = await startEntry(["--check-config"], {
      SLOTGATE_SEEDS: "127.0.0.1:7000",
      SLOTGATE_TLS_LISTEN: "127.0.0.1:0",
      SLOTGATE_TLS_CERT: join(dir, "no-such.crt"),
      SLOTGATE_TLS_KEY: join(dir, "no-such.key"),
    }).done;
    assert.equal(tls.code, 2);
    const lines = tls.stderr.trim().split("\n");
    assert.equal(lines.length, 2, tls.stderr);
    assert.match(lines[0]!, /^slotgate: config: tls\.cert \S+no-such\.crt: cannot read the file/);
    assert.match(lines[1]!, /^slotgate: config: tls\.key \S+no-such\.key: cannot read the file/);
  });

  it("a slotgate started from a YAML file serves its cluster", SLOW, async () => {
    const { seeds } = await cluster.get();
    const [clientPort, admin] = [await freePort(), await freePort()];
    const file = join(dir, "run.yaml");
    writeFileSync(file, `# slotgate in YAML\nlisten: 127.0.0.1:${clientPort}\nadmin:\n  listen: 127.0.0.1:${admin}\nclusters:\n  main:\n    seeds:\n${seeds.map((s) => `      - ${s}\n`).join("")}`);
    const proxy = startEntry([], { SLOTGATE_CONFIG: file });
    try {
      await until(async () => (await fetch(`http://127.0.0.1:${admin}/readyz`)).status === 200, "slotgate to be ready").catch((error) => {
        throw new Error(`${error.message}; output:\n${proxy.output()}`);
      });
      const client = await RawClient.connect(clientPort);
      client.send(resp("SET", "yaml:k", "v") + resp("GET", "yaml:k"));
      assert.equal(await client.waitFor((t) => t.length >= 12), "+OK\r\n$1\r\nv\r\n");
      client.close();
      proxy.signal("SIGTERM");
      assert.equal((await proxy.done).code, 0, proxy.output());
    } finally {
      proxy.child.kill("SIGKILL");
    }
  });
});
