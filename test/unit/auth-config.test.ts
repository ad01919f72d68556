/**
 * Client authentication in the configuration: `requirepass` and `users` validated with one line
 * per problem (never echoing a password), passwords kept only as digests, redacted by GET /config
 * and restored from `"[redacted]"` on PUT, protected mode (a non-loopback listener needs a
 * password, or `allowUnprotected`), and the live-change lines of the new fields.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadConfig, validateConfig } from "../../src/config/load.ts";
import { redactSecrets, restoreSecrets } from "../../src/config/secrets.ts";
import { fieldChanges } from "../../src/control/live-fields.ts";
import { ConfigError } from "../../src/errors.ts";
import { hashPassword } from "../../src/acl/users.ts";

const BASE = { clusters: { main: { seeds: ["127.0.0.1:7000"] } } };
const noFile = () => {
  throw new Error("no file");
};

function problems(document: unknown): string[] {
  try {
    validateConfig(document);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  assert.fail("expected the configuration to be refused");
}

describe("client authentication configuration", () => {
  it("users default to enabled, with no key or channel; clear-text passwords are kept as SHA-256 digests only", () => {
    const config = validateConfig({ ...BASE, requirepass: "secret", users: { alice: { passwords: ["pw", `#${"A".repeat(64)}`], commands: ["+@all", "-@dangerous"], keys: ["~app:*"] } } });
    assert.equal(config.requirepass, hashPassword("secret"));
    assert.deepEqual(config.users.alice, { enabled: true, passwords: [hashPassword("pw"), `#${"a".repeat(64)}`], commands: ["+@all", "-@dangerous"], keys: ["~app:*"], channels: [] });
    assert.equal(JSON.stringify(config).includes('"pw"'), false);
    assert.equal(config.allowUnprotected, false);
  });

  it("refuses bad rules, empty password lists and a second 'default', one line each, never echoing a password", () => {
    const lines = problems({
      ...BASE,
      requirepass: "topsecret",
      users: {
        default: { passwords: ["x"] },
        bad: { passwords: [], commands: ["+@nope", "get"], keys: ["app:*"], channels: ["news"] },
        "has space": { passwords: ["y"] },
        worse: { passwords: ["#123", "hunter2"] },
      },
    });
    const text = lines.join("\n");
    assert.match(text, /users\.bad\.passwords = \[\]: expected at least one password/);
    assert.match(text, /users\.bad\.commands\.0 = "\+@nope": unknown category 'nope'/);
    assert.match(text, /users\.bad\.commands\.1 = "get": expected "\+name"/);
    assert.match(text, /users\.bad\.keys\.0 = "app:\*": expected "~pattern"/);
    assert.match(text, /users\.bad\.channels\.0 = "news": expected "&pattern"/);
    assert.match(text, /users\.worse\.passwords\.0 = "\[redacted\]": a password starting with "#" is a SHA-256 digest/);
    assert.match(text, /user name of printable characters/);
    assert.doesNotMatch(text, /#123|hunter2|topsecret/);
    // The 'default' clash is a cross-field check: reported once the fields themselves are valid.
    assert.match(problems({ ...BASE, requirepass: "topsecret", users: { default: { passwords: ["x"] } } }).join("\n"), /the user 'default' is defined twice/);
  });

  it("protected mode: a non-loopback listener with no password refuses to start, unless allowUnprotected", () => {
    const env = { SLOTGATE_SEEDS: "127.0.0.1:7000", SLOTGATE_LISTEN: "0.0.0.0:6380" };
    assert.throws(() => loadConfig({ env, readFile: noFile }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.problems.join("\n"), /^SLOTGATE_LISTEN="0\.0\.0\.0:6380": is not a loopback address and no client authentication is configured/);
      return true;
    });
    assert.equal(loadConfig({ env: { ...env, SLOTGATE_ALLOW_UNPROTECTED: "yes" }, readFile: noFile }).allowUnprotected, true);
    assert.ok(loadConfig({ env: { ...env, SLOTGATE_REQUIREPASS: "pw" }, readFile: noFile }).requirepass);
    assert.ok(validateConfig({ ...BASE, listen: "[::]:6380", users: { a: { passwords: ["p"] } } }));
    assert.ok(validateConfig({ ...BASE, listen: "127.0.0.1:6380" }), "loopback needs nothing");
    assert.match(problems({ ...BASE, listen: "10.1.2.3:6380", allowUnprotected: false }).join("\n"), /SLOTGATE_ALLOW_UNPROTECTED=yes/);
    assert.throws(() => loadConfig({ env: { ...env, SLOTGATE_ALLOW_UNPROTECTED: "maybe" }, readFile: noFile }), /SLOTGATE_ALLOW_UNPROTECTED="maybe": expected true or false/);
  });

  it("GET /config redacts every password; a document sent back with [redacted] keeps them, index by index", () => {
    const config = validateConfig({ ...BASE, requirepass: "secret", users: { alice: { passwords: ["one", "two"] } } });
    const shown = redactSecrets(config);
    assert.equal(shown.requirepass, "[redacted]");
    assert.deepEqual(shown.users.alice!.passwords, ["[redacted]", "[redacted]"]);
    assert.doesNotMatch(JSON.stringify(shown), /[0-9a-f]{64}/);
    const edited = JSON.parse(JSON.stringify(shown));
    edited.users.alice.commands = ["+@read"];
    const { document, problems: restoreProblems } = restoreSecrets(edited, config);
    assert.deepEqual(restoreProblems, []);
    const next = validateConfig(document);
    assert.deepEqual(next.users.alice!.passwords, config.users.alice!.passwords);
    assert.equal(next.requirepass, config.requirepass);
    // A [redacted] where nothing is in force is refused.
    edited.users.bob = { passwords: ["[redacted]"] };
    assert.match(restoreSecrets(edited, config).problems.join("\n"), /users\.bob\.passwords\.0: "\[redacted\]" stands for the secret in force, but none is set there/);
  });

  it("a live change to the users or the password is listed without showing them", () => {
    const before = validateConfig({ ...BASE, requirepass: "a" });
    const after = validateConfig({ ...BASE, requirepass: "b", users: { alice: { passwords: ["pw"] } } });
    const { refused, updated } = fieldChanges(before, after);
    assert.deepEqual(refused, []);
    assert.deepEqual(updated, ["updated requirepass", "updated users"]);
  });
});
