/**
 * Secrets in the configuration (src/config/secrets.ts): redacted wherever a document is shown,
 * kept when `REDACTED` is sent back, never stored as the literal, never echoed in a problem.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isSecretPath, REDACTED, redactSecrets, restoreSecrets, SECRET_PATHS } from "../../src/config/secrets.ts";
import { loadConfig, validateConfig } from "../../src/config/load.ts";
import { ConfigError } from "../../src/errors.ts";

const TOKEN = "the-real-token";
const noFile = () => {
  throw new Error("no file");
};

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  assert.fail("expected a ConfigError");
}

describe("configuration secrets", () => {
  it("the admin token is a secret", () => {
    assert.ok(SECRET_PATHS.includes("admin.token"));
    assert.equal(isSecretPath("admin.token"), true);
    assert.equal(isSecretPath("admin.listen"), false);
    assert.equal(isSecretPath("admin"), false);
  });

  it("redaction replaces every secret that is set, in a copy, and leaves absent ones absent", () => {
    const document = { admin: { listen: "127.0.0.1:6390", token: TOKEN }, clusters: { a: { seeds: ["127.0.0.1:7000"] } } };
    const shown = redactSecrets(document);
    assert.deepEqual(shown, { admin: { listen: "127.0.0.1:6390", token: REDACTED }, clusters: { a: { seeds: ["127.0.0.1:7000"] } } });
    assert.equal(document.admin.token, TOKEN, "the document in force is untouched");
    assert.doesNotMatch(JSON.stringify(shown), new RegExp(TOKEN));
    const tokenless = { admin: { listen: "127.0.0.1:6390" } };
    assert.deepEqual(redactSecrets(tokenless), tokenless);
    assert.equal(redactSecrets(undefined), undefined);
  });

  it("a pattern with * covers every key at its place (later secrets: a password per cluster)", () => {
    const paths = ["clusters.*.password"];
    assert.equal(isSecretPath("clusters.main.password", paths), true);
    assert.equal(isSecretPath("clusters.main.seeds", paths), false);
    const current = { clusters: { a: { password: "pa" }, b: { password: "pb" }, c: {} } };
    assert.deepEqual(redactSecrets(current, paths), { clusters: { a: { password: REDACTED }, b: { password: REDACTED }, c: {} } });
    const sent = { clusters: { a: { password: REDACTED }, b: { password: "new" }, c: { password: REDACTED } } };
    const restored = restoreSecrets(sent, current, paths);
    assert.deepEqual(restored.document, { clusters: { a: { password: "pa" }, b: { password: "new" }, c: { password: REDACTED } } });
    assert.deepEqual(restored.problems, [`clusters.c.password: "${REDACTED}" stands for the secret in force, but none is set there; send the secret itself`]);
  });

  it("a document sent back with the redacted value keeps the secret in force; a new value replaces it", () => {
    const current = { admin: { token: TOKEN } };
    assert.deepEqual(restoreSecrets({ admin: { token: REDACTED }, logLevel: "debug" }, current), { document: { admin: { token: TOKEN }, logLevel: "debug" }, problems: [] });
    assert.deepEqual(restoreSecrets({ admin: { token: "another-token" } }, current).document, { admin: { token: "another-token" } });
    assert.deepEqual(restoreSecrets({ admin: {} }, current).document, { admin: {} }, "leaving the field out removes it");
    const none = restoreSecrets({ admin: { token: REDACTED } }, { admin: {} });
    assert.equal(none.problems.length, 1);
    assert.match(none.problems[0]!, /^admin\.token: .* none is set/);
  });

  it("the literal is never accepted as a secret, and a bad secret is never echoed in a problem", () => {
    const clusters = { a: { seeds: ["127.0.0.1:7000"] } };
    const literal = problemsOf(() => validateConfig({ clusters, admin: { token: REDACTED } }));
    assert.equal(literal.length, 1);
    assert.match(literal[0]!, /^admin\.token = "\[redacted\]": "\[redacted\]" stands for a secret already in force/);
    const short = problemsOf(() => validateConfig({ clusters, admin: { token: "short" } }));
    assert.match(short[0]!, /^admin\.token = "\[redacted\]": expected at least 8 characters/);
    assert.doesNotMatch(short.join("\n"), /short/);
    const fromEnv = problemsOf(() => loadConfig({ env: { SLOTGATE_SEEDS: "127.0.0.1:7000", SLOTGATE_ADMIN_TOKEN: "tiny" }, readFile: noFile }));
    assert.deepEqual(fromEnv, ['SLOTGATE_ADMIN_TOKEN="[redacted]": expected at least 8 characters']);
  });
});
