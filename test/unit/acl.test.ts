/**
 * Client authentication's building blocks: SHA-256 against the FIPS 180-4 vectors (and
 * node:crypto), glob matching with Redis's stringmatch rules, ACL rules applied left to right,
 * key and channel patterns (PSUBSCRIBE by Redis's literal rule), users and passwords, and the
 * failed-AUTH throttle's counting, serialising and bounds.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { constantTimeEqual, sha256Hex } from "../../src/util/sha256.ts";
import { compileGlob, globMatch } from "../../src/util/glob.ts";
import { Permissions, commandRuleProblem, keyRuleProblem, channelRuleProblem } from "../../src/acl/permissions.ts";
import { Users, hashPassword, passwordProblem } from "../../src/acl/users.ts";
import { AuthThrottle, FREE_FAILURES, MAX_DELAY_MS, STEP_MS, WINDOW_MS } from "../../src/acl/throttle.ts";
import { commandInfo } from "../../src/commands/keys.ts";

const encoder = new TextEncoder();
const bytes = (s: string) => encoder.encode(s);

describe("SHA-256", () => {
  it("matches the FIPS 180-4 test vectors", () => {
    assert.equal(sha256Hex(bytes("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert.equal(sha256Hex(bytes("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert.equal(sha256Hex(bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    assert.equal(sha256Hex(bytes("a".repeat(1_000_000))), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  });

  it("agrees with node:crypto on every length around the block boundaries", () => {
    for (let n = 0; n <= 200; n++) {
      const input = new Uint8Array(n).map((_, i) => (i * 31 + n) & 0xff);
      assert.equal(sha256Hex(input), createHash("sha256").update(input).digest("hex"), `length ${n}`);
    }
  });

  it("compares digests by value, whatever the position of a difference", () => {
    const a = bytes("0123456789abcdef");
    assert.equal(constantTimeEqual(a, bytes("0123456789abcdef")), true);
    assert.equal(constantTimeEqual(a, bytes("x123456789abcdef")), false);
    assert.equal(constantTimeEqual(a, bytes("0123456789abcdex")), false);
    assert.equal(constantTimeEqual(a, bytes("0123")), false);
  });
});

describe("glob matching (Redis's stringmatch)", () => {
  const cases: [string, string, boolean][] = [
    ["*", "", true], ["*", "anything", true], ["app:*", "app:1", true], ["app:*", "ap:1", false], ["app:*", "app:", true],
    ["h?llo", "hello", true], ["h?llo", "hllo", false], ["h[ae]llo", "hallo", true], ["h[ae]llo", "hillo", false],
    ["h[^e]llo", "hallo", true], ["h[^e]llo", "hello", false], ["h[a-b]llo", "hbllo", true], ["h[b-a]llo", "hallo", true],
    ["h[a-b]llo", "hcllo", false], ["a\\*b", "a*b", true], ["a\\*b", "axb", false], ["[\\]]", "]", true],
    ["*a*b*c*", "xxaxxbxxcxx", true], ["*a*b*c*", "xxaxxcxxbxx", false], ["a*", "b", false], ["**x", "abx", true],
    ["[abc", "a", true], ["[abc", "d", false], ["news.*", "news.sports", true], ["news.*", "newsXsports", false],
  ];
  for (const [pattern, subject, expected] of cases) {
    it(`'${pattern}' ${expected ? "matches" : "does not match"} '${subject}'`, () => {
      assert.equal(globMatch(bytes(pattern), bytes(subject)), expected);
      assert.equal(compileGlob(bytes(pattern))(bytes(subject)), expected, "the compiled matcher agrees");
    });
  }

  it("a compiled prefix or literal pattern matches exactly what globMatch matches", () => {
    const patterns = ["app:*", "app:", "app", "", "*", "a*", "ab*c", "a\\*", "a?*", "[a]*"];
    const subjects = ["", "a", "ap", "app", "app:", "app:1", "app:*", "ab", "abc", "abxc", "a*", "b"];
    for (const p of patterns) for (const s of subjects) assert.equal(compileGlob(bytes(p))(bytes(s)), globMatch(bytes(p), bytes(s)), `'${p}' on '${s}'`);
  });

  it("matches the same as a real Redis for patterns that backtrack a lot, in linear steps", () => {
    const subject = bytes(`${"a".repeat(5000)}b`);
    assert.equal(globMatch(bytes("*a*a*a*a*a*a*a*c"), subject), false);
    assert.equal(globMatch(bytes("*a*a*a*a*a*a*a*b"), subject), true);
  });
});

describe("ACL rules", () => {
  const info = (...words: string[]) => commandInfo(words[0]!.toUpperCase(), words.map(bytes))!;
  const perms = (commands: string[], keys: string[] = ["allkeys"], channels: string[] = ["allchannels"]) => new Permissions({ commands, keys, channels });

  it("applies command rules left to right: the last rule that names a command decides", () => {
    const p = perms(["+@all", "-@dangerous", "+flushall"]);
    assert.equal(p.mayRun(info("get", "k")), true);
    assert.equal(p.mayRun(info("keys", "*")), false, "KEYS is @dangerous");
    assert.equal(p.mayRun(info("flushall")), true, "allowed again after -@dangerous");
    const q = perms(["+flushall", "-@dangerous"]);
    assert.equal(q.mayRun(info("flushall")), false, "order matters");
    assert.equal(q.mayRun(info("get", "k")), false, "nothing allows GET");
  });

  it("categories come from Redis 7.0's COMMAND: @read allows GET and not SET", () => {
    const p = perms(["+@read"]);
    assert.equal(p.mayRun(info("get", "k")), true);
    assert.equal(p.mayRun(info("set", "k", "v")), false);
    assert.equal(p.mayRun(info("config", "get", "x")), false);
  });

  it("a container rule covers its subcommands; a subcommand rule only itself", () => {
    const p = perms(["-@all", "+config", "-config|set"]);
    assert.equal(p.mayRun(info("config", "get", "x")), true);
    assert.equal(p.mayRun(info("config", "set", "x", "y")), false);
    const q = perms(["+client|id"]);
    assert.equal(q.mayRun(info("client", "id")), true);
    assert.equal(q.mayRun(info("client", "kill", "x")), false);
  });

  it("allcommands and nocommands are +@all and -@all; an @all rule overrides what came before it", () => {
    assert.equal(perms(["allcommands"]).allCommands, true);
    assert.equal(perms(["+get", "nocommands"]).mayRun(info("get", "k")), false);
    assert.equal(perms(["-get", "+@all"]).mayRun(info("get", "k")), true);
    assert.equal(perms([]).mayRun(info("ping")), false, "no rule: nothing allowed");
  });

  it("key patterns: allkeys, ~pattern, resetkeys, in order; none means no key", () => {
    assert.equal(perms(["+@all"], []).mayAccessKey(bytes("x")), false);
    const p = perms(["+@all"], ["~app:*", "~cache:?"]);
    assert.equal(p.allKeys, false);
    assert.equal(p.mayAccessKey(bytes("app:1")), true);
    assert.equal(p.mayAccessKey(bytes("cache:1")), true);
    assert.equal(p.mayAccessKey(bytes("cache:12")), false);
    assert.equal(perms(["+@all"], ["~app:*", "resetkeys", "~b*"]).mayAccessKey(bytes("app:1")), false);
    assert.equal(perms(["+@all"], ["~*"]).allKeys, true);
  });

  it("channel patterns glob-match channels, but PSUBSCRIBE needs one of the patterns literally (Redis's rule)", () => {
    const p = perms(["+@all"], [], ["&news.*"]);
    assert.equal(p.mayAccessChannel(bytes("news.sports")), true);
    assert.equal(p.mayAccessChannel(bytes("other")), false);
    assert.equal(p.mayAccessPattern(bytes("news.*")), true);
    assert.equal(p.mayAccessPattern(bytes("news.s*")), false, "a narrower pattern is refused too");
    assert.equal(perms(["+@all"], [], ["allchannels"]).mayAccessPattern(bytes("anything*")), true);
  });

  it("rejects rules it does not understand, with Redis's words where Redis has them", () => {
    assert.equal(commandRuleProblem("+@all"), null);
    assert.equal(commandRuleProblem("-config|set"), null);
    assert.match(commandRuleProblem("+@nope")!, /unknown category 'nope'/);
    assert.match(commandRuleProblem("+nosuchcommand")!, /unknown command 'nosuchcommand'/);
    assert.match(commandRuleProblem("get")!, /expected "\+name"/);
    assert.match(commandRuleProblem("+select|0")!, /no subcommands/);
    assert.equal(keyRuleProblem("~app:*"), null);
    assert.match(keyRuleProblem("app:*")!, /~pattern/);
    assert.match(keyRuleProblem("%R~app:*")!, /not supported/);
    assert.equal(channelRuleProblem("&news.*"), null);
    assert.match(channelRuleProblem("news")!, /&pattern/);
  });

  it("ACL LIST's description of the rules", () => {
    assert.equal(perms(["+@all", "-@dangerous"], ["~app:*"], ["&news.*"]).description, "~app:* resetchannels &news.* +@all -@dangerous");
    assert.equal(perms(["+@all"]).description, "~* &* +@all");
  });
});

describe("users and passwords", () => {
  const users = new Users({
    requirepass: hashPassword("secret"),
    users: {
      alice: { enabled: true, passwords: [hashPassword("a1"), hashPassword("a2")], commands: ["+@read"], keys: ["~app:*"], channels: [] },
      carol: { enabled: false, passwords: [hashPassword("c")], commands: ["+@all"], keys: [], channels: [] },
    },
  });

  it("a clear-text password is kept only as its SHA-256; a digest is taken as given", () => {
    assert.equal(hashPassword("secret"), `#${sha256Hex(bytes("secret"))}`);
    const digest = `#${"AB".repeat(32)}`;
    assert.equal(hashPassword(digest), digest.toLowerCase());
    assert.equal(passwordProblem(digest), null);
    assert.match(passwordProblem("#abc")!, /64 hex digits/);
    assert.match(passwordProblem("")!, /non-empty/);
  });

  it("authenticates by name and any of the user's passwords; disabled users and wrong pairs fail", () => {
    assert.equal(users.required, true);
    assert.equal(users.initialLogin, null);
    assert.equal(users.authenticate("default", bytes("secret"))?.user.name, "default");
    assert.equal(users.authenticate("alice", bytes("a2"))?.user.name, "alice");
    assert.equal(users.authenticate("alice", bytes("a2"))?.credential, hashPassword("a2"));
    assert.equal(users.authenticate("alice", bytes("secret")), null);
    assert.equal(users.authenticate("carol", bytes("c")), null, "disabled");
    assert.equal(users.authenticate("nobody", bytes("x")), null);
  });

  it("with nothing configured, every client is default with no password, and other users do not exist", () => {
    const open = new Users({});
    assert.equal(open.required, false);
    assert.equal(open.initialLogin?.user.name, "default");
    assert.equal(open.authenticate("default", bytes("whatever"))?.user.name, "default");
    assert.equal(open.authenticate("alice", bytes("x")), null);
  });

  it("ACL LIST never shows a password or its digest", () => {
    const lines = users.all().map((u) => u.describe());
    assert.deepEqual(lines, [
      "user default on #<redacted> ~* &* +@all",
      "user alice on #<redacted> #<redacted> ~app:* resetchannels +@read",
      "user carol off #<redacted> resetchannels +@all",
    ]);
    for (const line of lines) assert.doesNotMatch(line, /[0-9a-f]{64}/);
  });
});

describe("failed-AUTH throttle", () => {
  it(`answers the first ${FREE_FAILURES} failures of an address at once, then spaces its attempts ${STEP_MS} ms apart, at most ${MAX_DELAY_MS} ms`, () => {
    let now = 1000;
    const throttle = new AuthThrottle(() => now);
    for (let i = 0; i < FREE_FAILURES; i++) {
      assert.equal(throttle.delayFor("10.0.0.1"), 0, `attempt ${i + 1}`);
      throttle.failed("10.0.0.1");
    }
    assert.equal(throttle.delayFor("10.0.0.2"), 0, "another address is not affected");
    // Attempts from several connections of one address queue behind each other...
    assert.equal(throttle.delayFor("10.0.0.1"), STEP_MS);
    assert.equal(throttle.delayFor("10.0.0.1"), 2 * STEP_MS);
    // ...but never longer than the bound.
    for (let i = 0; i < 100; i++) assert.ok(throttle.delayFor("10.0.0.1") <= MAX_DELAY_MS);
    assert.equal(throttle.delayFor("10.0.0.1"), MAX_DELAY_MS);
    assert.equal(throttle.failures, FREE_FAILURES);
    // The window ends: the address starts afresh.
    now += WINDOW_MS + 1;
    assert.equal(throttle.delayFor("10.0.0.1"), 0);
    assert.equal(throttle.failuresOf("10.0.0.1"), 0);
  });

  it("remembers a bounded number of addresses, forgetting the stalest first", () => {
    const throttle = new AuthThrottle(() => 0, 3);
    for (const address of ["a", "b", "c", "a", "d"]) throttle.failed(address);
    assert.equal(throttle.size, 3);
    assert.equal(throttle.failuresOf("b"), 0, "b was the stalest");
    assert.equal(throttle.failuresOf("a"), 2);
    assert.equal(throttle.failuresOf("d"), 1);
  });
});
