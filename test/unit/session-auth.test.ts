/**
 * A session's authentication state machine on the manual runtime: NOAUTH before AUTH (with the
 * usual errors first), AUTH and HELLO AUTH, NOPERM on commands, keys and channels, RESET logging
 * out, the failed-AUTH delay holding everything pipelined after it, and a live change that
 * closes the sessions whose login no longer holds.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sessionHarness } from "../support/session-harness.ts";
import { hashPassword } from "../../src/acl/users.ts";
import { FREE_FAILURES, STEP_MS } from "../../src/acl/throttle.ts";
import type { AuthConfig } from "../../src/acl/users.ts";

const NOAUTH = "-NOAUTH Authentication required.\r\n";
const WRONGPASS = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
const NOPERM_KEYS = "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n";
const NOPERM_CHANNELS = "-NOPERM this user has no permissions to access one of the channels used as arguments\r\n";

const AUTH: AuthConfig = {
  requirepass: hashPassword("secret"),
  users: {
    alice: { enabled: true, passwords: [hashPassword("alicepw")], commands: ["+@all", "-@dangerous"], keys: ["~app:*"], channels: ["&news.*"] },
    bob: { enabled: true, passwords: [hashPassword("bobpw")], commands: ["+@read"], keys: ["allkeys"], channels: [] },
  },
};

describe("session authentication", () => {
  it("before AUTH only AUTH, HELLO AUTH, QUIT and RESET run; unknown commands and wrong arities get their own errors first", async () => {
    const h = sessionHarness({ auth: AUTH });
    const c = h.client(1);
    c.send(["GET", "k"], ["PING"], ["HELLO", "3"], ["GET"], ["CLIENT", "ID"]);
    await h.runtime.flush();
    assert.equal(
      c.written(),
      NOAUTH +
        NOAUTH +
        "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n" +
        "-ERR wrong number of arguments for 'get' command\r\n" +
        NOAUTH,
    );
    assert.equal(h.router.routed.length, 0, "nothing reached the router");
    c.send(["NOSUCHCOMMAND"]);
    await h.runtime.flush();
    assert.equal(h.router.routed.length, 1, "an unknown command goes on to get Redis's unknown-command error");
  });

  it("AUTH password logs in as default, AUTH user password as that user; a failure keeps the current login", async () => {
    const h = sessionHarness({ auth: AUTH });
    const c = h.client(1);
    c.send(["AUTH", "wrong"], ["AUTH", "alice", "secret"], ["AUTH", "nobody", "x"], ["AUTH", "secret"], ["ACL", "WHOAMI"], ["AUTH", "alice", "alicepw"], ["ACL", "WHOAMI"], ["AUTH", "bob", "nope"], ["ACL", "WHOAMI"]);
    await h.runtime.flush();
    assert.equal(c.written(), WRONGPASS + WRONGPASS + WRONGPASS + "+OK\r\n" + "$7\r\ndefault\r\n" + "+OK\r\n" + "$5\r\nalice\r\n" + WRONGPASS + "$5\r\nalice\r\n");
    assert.ok(h.logs.some((line) => line.includes("AUTH failed") && line.includes("nobody")), "failures are logged with the user");
    assert.ok(!h.logs.some((line) => line.includes("wrong") || line.includes("nope")), "never the password");
  });

  it("HELLO 3 AUTH logs in and switches the protocol; a wrong pair switches nothing", async () => {
    const h = sessionHarness({ auth: AUTH });
    const c = h.client(1);
    c.send(["HELLO", "3", "AUTH", "alice", "bad"], ["HELLO", "3", "AUTH", "alice", "alicepw"]);
    await h.runtime.flush();
    assert.ok(c.written().startsWith(WRONGPASS + "%7\r\n"), JSON.stringify(c.written()));
    assert.equal(c.session.protocol, 3);
    assert.equal(c.session.login?.user.name, "alice");
  });

  it("NOPERM for a denied command, a key outside the patterns (any key of a split command) and a channel", async () => {
    const h = sessionHarness({ auth: AUTH });
    const c = h.client(1);
    c.send(["AUTH", "alice", "alicepw"], ["FLUSHALL"], ["CONFIG", "GET", "x"], ["GET", "other"], ["MGET", "app:1", "other"], ["PUBLISH", "sports", "x"], ["SUBSCRIBE", "news.a", "sports"], ["PSUBSCRIBE", "news.a*"], ["EVAL", "return 1", "1", "other"]);
    await h.runtime.flush();
    assert.equal(
      c.written(),
      "+OK\r\n" +
        "-NOPERM this user has no permissions to run the 'flushall' command\r\n" +
        "-NOPERM this user has no permissions to run the 'config|get' command\r\n" +
        NOPERM_KEYS + NOPERM_KEYS + NOPERM_CHANNELS + NOPERM_CHANNELS + NOPERM_CHANNELS + NOPERM_KEYS,
    );
    assert.equal(h.router.routed.length, 0);
    c.send(["MGET", "app:1", "app:2"], ["PUBLISH", "news.x", "hi"], ["EVAL", "return 1", "1", "app:1"]);
    await h.runtime.flush();
    assert.equal(h.router.routed.length, 3, "allowed keys and channels are routed");
  });

  it("RESET logs the client out when default needs a password", async () => {
    const h = sessionHarness({ auth: AUTH });
    const c = h.client(1);
    c.send(["AUTH", "secret"], ["RESET"], ["GET", "k"]);
    await h.runtime.flush();
    assert.equal(c.written(), "+OK\r\n+RESET\r\n" + NOAUTH);
  });

  it("with no authentication configured, clients are default and AUTH answers as Redis does without a password", async () => {
    const h = sessionHarness();
    const c = h.client(1);
    c.send(["AUTH", "x"], ["AUTH", "default", "x"], ["AUTH", "alice", "x"], ["ACL", "WHOAMI"], ["GET", "k"]);
    await h.runtime.flush();
    assert.equal(
      c.written(),
      "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n+OK\r\n" + WRONGPASS + "$7\r\ndefault\r\n",
    );
    assert.equal(h.router.routed.length, 1);
  });

  it(`after ${FREE_FAILURES} failures from one address an AUTH waits, and what is pipelined after it waits too`, async () => {
    const h = sessionHarness({ auth: AUTH });
    const c = h.client(1);
    for (let i = 0; i < FREE_FAILURES; i++) c.send(["AUTH", "alice", "bad"]);
    await h.runtime.flush();
    assert.equal(c.written(), WRONGPASS.repeat(FREE_FAILURES));
    // The next attempt, then a command that would run at once if it could overtake it.
    c.send(["AUTH", "alice", "alicepw"], ["ACL", "WHOAMI"]);
    await h.runtime.flush();
    assert.equal(c.written(), WRONGPASS.repeat(FREE_FAILURES), "nothing answered before the delay");
    await h.runtime.advance(STEP_MS);
    await h.runtime.flush();
    assert.equal(c.written(), WRONGPASS.repeat(FREE_FAILURES) + "+OK\r\n$5\r\nalice\r\n", "checked after the delay, in order");
    // Another connection from the same address is throttled as well.
    const d = h.client(2);
    d.send(["AUTH", "bob", "bobpw"]);
    await h.runtime.flush();
    assert.equal(d.written(), "");
    await h.runtime.advance(STEP_MS);
    await h.runtime.flush();
    assert.equal(d.written(), "+OK\r\n");
  });

  it("a live change closes the sessions of a removed or disabled user, or whose password was removed, and keeps the others with their new rules", async () => {
    const h = sessionHarness({ auth: AUTH });
    const alice = h.client(1);
    const bob = h.client(2);
    const admin = h.client(3);
    const waiting = h.client(4);
    alice.send(["AUTH", "alice", "alicepw"]);
    bob.send(["AUTH", "bob", "bobpw"]);
    admin.send(["AUTH", "secret"]);
    await h.runtime.flush();
    const users = { ...AUTH.users! };
    delete (users as Record<string, unknown>).alice;
    users.bob = { ...users.bob!, commands: ["+@read", "+@write"] };
    assert.equal(h.host.auth!.update({ requirepass: AUTH.requirepass, users }), 1);
    assert.equal(alice.conn.destroyed, true, "alice was removed");
    assert.equal(bob.conn.destroyed, false);
    assert.equal(bob.session.login?.user.permissions.description.includes("+@write"), true, "bob has his new rules");
    assert.ok(h.logs.some((line) => line.includes("user 'alice' removed")));
    // Disabled; then the default password changed.
    assert.equal(h.host.auth!.update({ requirepass: AUTH.requirepass, users: { bob: { ...users.bob!, enabled: false } } }), 1);
    assert.equal(bob.conn.destroyed, true);
    assert.equal(admin.conn.destroyed, false);
    assert.equal(h.host.auth!.update({ requirepass: hashPassword("new"), users: {} }), 1);
    assert.equal(admin.conn.destroyed, true);
    // Authentication turned off: a client that had not logged in is default now.
    assert.equal(h.host.auth!.update({}), 0);
    waiting.send(["GET", "k"]);
    await h.runtime.flush();
    assert.equal(waiting.written(), "");
    assert.equal(waiting.conn.destroyed, false);
  });
});
