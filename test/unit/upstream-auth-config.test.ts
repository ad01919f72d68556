/**
 * Upstream credentials in the configuration: `username`/`password` per cluster, pool and in
 * `clusterDefaults`; SLOTGATE_UPSTREAM_USERNAME, SLOTGATE_UPSTREAM_PASSWORD and
 * SLOTGATE_UPSTREAM_PASSWORD_FILE (a Docker/Kubernetes secret file: its trailing newline is no
 * part of the password); the password is a secret wherever a document or a problem is shown.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadConfig, validateConfig } from "../../src/config/load.ts";
import { resolveAuth } from "../../src/config/schema.ts";
import { isSecretPath, REDACTED, redactSecrets, restoreSecrets } from "../../src/config/secrets.ts";
import { ConfigError } from "../../src/errors.ts";

const PASSWORD = "  pa55 with spaces ";
const SEEDS = { SLOTGATE_SEEDS: "127.0.0.1:7000" };

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  assert.fail("expected a ConfigError");
}

function load(env: Record<string, string>, files: Record<string, string> = {}) {
  return loadConfig({
    env: { ...SEEDS, ...env },
    readFile: (path) => {
      if (Object.hasOwn(files, path)) return files[path]!;
      throw new Error(`ENOENT: no such file or directory, open '${path}'`);
    },
  });
}

describe("upstream credentials in the configuration", () => {
  it("SLOTGATE_UPSTREAM_USERNAME and SLOTGATE_UPSTREAM_PASSWORD set clusterDefaults, which the cluster says; the password is taken as it is", () => {
    const config = load({ SLOTGATE_UPSTREAM_USERNAME: "app", SLOTGATE_UPSTREAM_PASSWORD: PASSWORD });
    assert.equal(config.clusterDefaults.username, "app");
    assert.equal(config.clusterDefaults.password, PASSWORD);
    assert.deepEqual(resolveAuth(config.clusters.default!, config.clusterDefaults), { username: "app", password: PASSWORD });
  });

  it("a password alone is Redis's default user; no password, no credentials", () => {
    const config = load({ SLOTGATE_UPSTREAM_PASSWORD: "pw" });
    assert.deepEqual(resolveAuth(config.clusters.default!, config.clusterDefaults), { password: "pw" });
    const none = load({});
    assert.equal(resolveAuth(none.clusters.default!, none.clusterDefaults), undefined);
  });

  it("SLOTGATE_UPSTREAM_PASSWORD_FILE reads the password from a file, its trailing newline trimmed", () => {
    assert.equal(load({ SLOTGATE_UPSTREAM_PASSWORD_FILE: "/run/secrets/redis" }, { "/run/secrets/redis": "from-file\n" }).clusterDefaults.password, "from-file");
    assert.equal(load({ SLOTGATE_UPSTREAM_PASSWORD_FILE: "/s" }, { "/s": "crlf\r\n" }).clusterDefaults.password, "crlf");
    assert.equal(load({ SLOTGATE_UPSTREAM_PASSWORD_FILE: "/s" }, { "/s": " inner \n" }).clusterDefaults.password, " inner ", "only the newline goes");
  });

  it("setting both SLOTGATE_UPSTREAM_PASSWORD and SLOTGATE_UPSTREAM_PASSWORD_FILE is a config error naming both, never the password", () => {
    const found = problems(() => load({ SLOTGATE_UPSTREAM_PASSWORD: "one-secret", SLOTGATE_UPSTREAM_PASSWORD_FILE: "/s" }, { "/s": "two-secret\n" }));
    assert.deepEqual(found, ["SLOTGATE_UPSTREAM_PASSWORD_FILE: SLOTGATE_UPSTREAM_PASSWORD is set too; set only one of them"]);
    assert.doesNotMatch(found.join("\n"), /one-secret|two-secret/);
  });

  it("an unreadable or empty password file is a config error that shows no content", () => {
    const unreadable = problems(() => load({ SLOTGATE_UPSTREAM_PASSWORD_FILE: "/missing" }));
    assert.equal(unreadable.length, 1);
    assert.match(unreadable[0]!, /^SLOTGATE_UPSTREAM_PASSWORD_FILE=\/missing: cannot read the file: ENOENT/);
    const empty = problems(() => load({ SLOTGATE_UPSTREAM_PASSWORD_FILE: "/empty" }, { "/empty": "\n" }));
    assert.deepEqual(empty, [`SLOTGATE_UPSTREAM_PASSWORD_FILE="${REDACTED}": expected a non-empty password`]);
  });

  it("a username with no password is a config error, where it was set", () => {
    assert.deepEqual(problems(() => load({ SLOTGATE_UPSTREAM_USERNAME: "app" })), ['SLOTGATE_UPSTREAM_USERNAME="app": a username needs a password (set password too)']);
    const found = problems(() => validateConfig({ clusters: { a: { seeds: ["127.0.0.1:7000"], username: "app" } } }));
    assert.deepEqual(found, ['clusters.a.username = "app": a username needs a password (set password too)']);
  });

  it("a cluster's or pool's own pair wins over clusterDefaults', as a pair", () => {
    const config = validateConfig({
      clusterDefaults: { username: "shared", password: "shared-pw" },
      clusters: {
        inherits: { seeds: ["127.0.0.1:7000"] },
        own: { seeds: ["127.0.0.1:7001"], password: "own-pw" },
        pool: { type: "standalone", servers: ["127.0.0.1:7100"], username: "pool", password: "pool-pw" },
      },
      catchAll: "inherits",
    });
    assert.deepEqual(resolveAuth(config.clusters.inherits!, config.clusterDefaults), { username: "shared", password: "shared-pw" });
    assert.deepEqual(resolveAuth(config.clusters.own!, config.clusterDefaults), { password: "own-pw" }, "not half of each");
    assert.deepEqual(resolveAuth(config.clusters.pool!, config.clusterDefaults), { username: "pool", password: "pool-pw" });
  });

  it("passwords are secrets: redacted when shown, kept when sent back redacted, never echoed in a problem", () => {
    assert.equal(isSecretPath("clusterDefaults.password"), true);
    assert.equal(isSecretPath("clusters.main.password"), true);
    assert.equal(isSecretPath("clusters.main.username"), false);
    const document = {
      clusterDefaults: { password: "defaults-pw" },
      clusters: { main: { type: "cluster", seeds: ["127.0.0.1:7000"], username: "app", password: "main-pw" } },
    };
    const shown = redactSecrets(document);
    assert.deepEqual(shown, { clusterDefaults: { password: REDACTED }, clusters: { main: { type: "cluster", seeds: ["127.0.0.1:7000"], username: "app", password: REDACTED } } });
    const restored = restoreSecrets(shown, document);
    assert.deepEqual([restored.document, restored.problems], [document, []]);
    const literal = problems(() => validateConfig({ clusters: { main: { seeds: ["127.0.0.1:7000"], password: REDACTED } } }));
    assert.equal(literal.length, 1);
    assert.match(literal[0]!, /^clusters\.main\.password = "\[redacted\]": "\[redacted\]" stands for a secret already in force/);
    const wrongType = problems(() => validateConfig({ clusters: { main: { seeds: ["127.0.0.1:7000"], password: "" } } }));
    assert.deepEqual(wrongType, [`clusters.main.password = "${REDACTED}": expected a non-empty password`]);
  });

});
