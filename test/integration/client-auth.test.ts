/**
 * Clients authenticating to slotgate, through a real 3+3 cluster: the replies before and after
 * AUTH compared byte for byte with a real redis-server configured with the same password and ACL
 * users; redis-cli (-a, --user/--pass), ioredis and node-redis (RESP3, HELLO AUTH) logging in;
 * a split MGET/MSET with one forbidden key refused whole; a user removed live closing its
 * session; the failed-AUTH delay; protected mode refusing to start.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import net from "node:net";
import process from "node:process";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { entryCommand } from "../support/processes.ts";
import { startLocalCluster, startStandaloneRedis } from "../../scripts/local-cluster.ts";
import { freePort } from "../../scripts/free-port.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp, startProxy, type RunningProxy } from "../support/proxy.ts";
import { ReplyReader } from "../../src/resp/reply-reader.ts";
import { FREE_FAILURES, STEP_MS } from "../../src/acl/throttle.ts";
import { within } from "../support/within.ts";

const SLOW = { timeout: 120_000 };

const USERS = {
  alice: { passwords: ["alicepw"], commands: ["+@all", "-@dangerous"], keys: ["~app:*"], channels: ["&news.*"] },
  bob: { passwords: ["bobpw"], commands: ["+@read"], keys: ["allkeys"] },
};
/** The same users, as a real Redis is told them (the password last: the helper's own connection has no AUTH). */
const REDIS_SETUP: string[][] = [
  ["ACL", "SETUSER", "alice", "on", ">alicepw", "~app:*", "&news.*", "+@all", "-@dangerous"],
  ["ACL", "SETUSER", "bob", "on", ">bobpw", "~*", "resetchannels", "+@read"],
  ["CONFIG", "SET", "requirepass", "secret"],
];

async function referenceRedis() {
  const redis = await startStandaloneRedis();
  for (const command of REDIS_SETUP) await redis.command(...command);
  return redis;
}

/** Start a proxy with `requirepass secret`, then give it the users by a live change. */
async function authProxy(seeds: string[], logs: string[]): Promise<RunningProxy> {
  const proxy = await startProxy(seeds, { SLOTGATE_REQUIREPASS: "secret", SLOTGATE_LOG_LEVEL: "info" }, {}, (line) => logs.push(line));
  const result = await proxy.app.control.replaceConfig({ ...proxy.app.control.config(), users: USERS });
  assert.ok(result.ok, JSON.stringify(result));
  return proxy;
}

/** Complete replies in `bytes`. */
function frames(bytes: Uint8Array): number {
  let n = 0;
  new ReplyReader(() => n++).push(bytes);
  return n;
}

/** Send each command in turn on one connection (each after the previous reply); the replies, raw. */
async function exchange(port: number, commands: string[][]): Promise<string[]> {
  const client = await RawClient.connect(port);
  const replies: string[] = [];
  try {
    for (const command of commands) {
      const start = client.received.length;
      client.send(resp(...command));
      await client.waitFor(() => frames(client.received.subarray(start)) >= 1);
      replies.push(client.received.subarray(start).toString("latin1"));
    }
  } finally {
    client.socket.destroy();
  }
  return replies;
}

function cli(args: string[]): Promise<string> {
  return new Promise((resolve) => execFile("redis-cli", args, (_error, stdout, stderr) => resolve(stdout + stderr)));
}

const SESSIONS: string[][][] = [
  // Not authenticated.
  [["GET", "app:1"], ["PING"], ["HELLO", "3"], ["GET"], ["NOSUCHCOMMAND", "x"], ["AUTH", "wrong"], ["AUTH", "alice", "wrong"], ["AUTH", "nobody", "x"], ["AUTH", "a", "b", "c"], ["HELLO", "2", "AUTH", "alice", "bad"], ["CLIENT", "FOO"], ["CONFIG"], ["ACL", "WHOAMI", "x"], ["QUIT"]],
  // alice: +@all -@dangerous ~app:* &news.*
  [
    ["AUTH", "alice", "alicepw"], ["GET", "other"], ["MGET", "app:none", "other"], ["FLUSHALL"], ["CONFIG", "GET", "maxmemory"], ["KEYS", "*"],
    ["CLIENT", "KILL", "ID", "99999"], ["PUBLISH", "other", "x"], ["PUBLISH", "news.x", "hi"], ["SUBSCRIBE", "other"], ["PSUBSCRIBE", "news.x*"],
    ["ACL", "WHOAMI"], ["EVAL", "return 1", "1", "other"], ["GET", "app:none"], ["ACL", "LIST"], ["ACL", "CAT", "nope"], ["AUTH", "bob", "wrong"], ["ACL", "WHOAMI"],
    // A refusal inside a transaction makes EXEC fail.
    ["MULTI"], ["SET", "app:t", "1"], ["GET", "other"], ["EXEC"], ["GET", "app:t"],
  ],
  // bob: +@read ~*, no channels.
  [["HELLO", "3", "AUTH", "bob", "bobpw"], ["SET", "app:none", "v"], ["GET", "app:none"], ["PUBLISH", "news.x", "hi"], ["CLIENT", "ID"]],
  // default (requirepass): everything.
  [["AUTH", "secret"], ["ACL", "WHOAMI"], ["ACL", "CAT"], ["ACL", "CAT", "geo"], ["ACL", "LIST"], ["ACL", "SETUSER", "x"]],
];

/** Bulk strings of an array reply, sorted (ACL CAT's order is Redis's hash table's). */
function sortedBulks(reply: string): string[] {
  return reply.split("\r\n").filter((line, i, all) => i > 0 && all[i - 1]!.startsWith("$")).sort();
}

describe("clients authenticate to slotgate", () => {
  const cluster = lazy(() => startLocalCluster());
  const logs: string[] = [];
  const proxy = lazy(async () => authProxy((await cluster.get()).seeds, logs));
  const redis = lazy(referenceRedis);
  after(async () => {
    await proxy.stop();
    await redis.stop();
    await cluster.stop();
  });

  it("NOAUTH, WRONGPASS and NOPERM read as a real Redis 7.0 with the same users says them, byte for byte", SLOW, async () => {
    const { port } = await proxy.get();
    const reference = await redis.get();
    for (const commands of SESSIONS) {
      const ours = await exchange(port, commands);
      const theirs = await exchange(reference.port, commands);
      for (let i = 0; i < commands.length; i++) {
        const command = commands[i]!.join(" ");
        // Where slotgate differs on purpose: ACL LIST never shows digests; ACL SETUSER is refused
        // (users are configured); HELLO's version and id differ; ACL CAT's order is Redis's hash table's.
        if (command === "ACL LIST" && ours[i]!.startsWith("*")) {
          const lines = ["user default on #<redacted> ~* &* +@all", "user alice on #<redacted> ~app:* resetchannels &news.* +@all -@dangerous", "user bob on #<redacted> ~* resetchannels +@read"];
          assert.equal(ours[i], `*3\r\n${lines.map((line) => `$${line.length}\r\n${line}\r\n`).join("")}`);
          assert.doesNotMatch(ours[i]!, /[0-9a-f]{64}/);
          continue;
        }
        if (command.startsWith("HELLO 3 AUTH bob bobpw")) {
          // HELLO's map differs in version and id only (slotgate says 7.0.0, and ids are its own).
          const normalize = (reply: string) => reply.replace(/version\r\n\$\d+\r\n[^\r]*/, "version").replace(/id\r\n:\d+/, "id");
          assert.equal(normalize(ours[i]!), normalize(theirs[i]!), command);
          assert.ok(ours[i]!.startsWith("%7\r\n"), "RESP3 after HELLO 3 AUTH");
          continue;
        }
        if (command === "ACL SETUSER x") {
          assert.equal(ours[i], "-ERR unsupported command 'ACL SETUSER': slotgate's users are set in its configuration (users, requirepass)\r\n");
          continue;
        }
        if (command === "ACL CAT geo") {
          assert.deepEqual(sortedBulks(ours[i]!), sortedBulks(theirs[i]!));
          assert.ok(sortedBulks(ours[i]!).includes("geoadd"));
          continue;
        }
        assert.equal(ours[i], theirs[i], `${command}`);
      }
    }
  });

  it("redis-cli -a and --user/--pass, ioredis and node-redis (HELLO 3 AUTH) log in and are held to their user's rules", SLOW, async () => {
    const { port } = await proxy.get();
    const p = String(port);
    assert.equal((await cli(["-p", p, "-a", "secret", "--no-auth-warning", "SET", "app:cli", "1"])).trim(), "OK");
    assert.equal((await cli(["-p", p, "--user", "alice", "--pass", "alicepw", "--no-auth-warning", "GET", "app:cli"])).trim(), "1");
    assert.match(await cli(["-p", p, "--user", "alice", "--pass", "alicepw", "--no-auth-warning", "GET", "other"]), /NOPERM this user has no permissions to access one of the keys/);
    assert.match(await cli(["-p", p, "GET", "app:cli"]), /NOAUTH Authentication required/);
    assert.match(await cli(["-p", p, "--user", "alice", "--pass", "nope", "--no-auth-warning", "PING"]), /WRONGPASS/);

    const io = new Redis({ port, username: "alice", password: "alicepw", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    io.on("error", () => {});
    try {
      await io.connect();
      assert.equal(await io.set("app:io", "v"), "OK");
      assert.equal(await io.get("app:io"), "v");
      await assert.rejects(io.get("other"), /NOPERM/);
      await assert.rejects(io.flushall(), /NOPERM this user has no permissions to run the 'flushall' command/);
    } finally {
      io.disconnect();
    }
    const wrong = new Redis({ port, username: "alice", password: "bad", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    wrong.on("error", () => {});
    // ioredis reports a refused AUTH as a closed connection when it may not retry.
    await assert.rejects(wrong.connect());
    wrong.disconnect();

    const nr = createClient({ url: `redis://127.0.0.1:${port}`, username: "bob", password: "bobpw", RESP: 3, socket: { reconnectStrategy: false } });
    nr.on("error", () => {});
    try {
      await nr.connect();
      assert.equal(await nr.get("app:io"), "v");
      await assert.rejects(nr.set("app:io", "w"), /NOPERM this user has no permissions to run the 'set' command/);
    } finally {
      await nr.close().catch(() => {});
    }
  });

  it("a split MGET or MSET with one key outside the user's patterns is refused whole, before any part is sent", SLOW, async () => {
    const { port } = await proxy.get();
    const alice = new Redis({ port, username: "alice", password: "alicepw", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const admin = new Redis({ port, password: "secret", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    alice.on("error", () => {});
    admin.on("error", () => {});
    try {
      await alice.connect();
      await admin.connect();
      // Keys in different slots: the command is split across the cluster's primaries.
      assert.equal(await alice.mset("app:{1}a", "1", "app:{2}b", "2", "app:{3}c", "3"), "OK");
      assert.deepEqual(await alice.mget("app:{1}a", "app:{2}b", "app:{3}c"), ["1", "2", "3"]);
      await admin.set("secret:{2}x", "hidden");
      await assert.rejects(alice.mget("app:{1}a", "secret:{2}x"), /NOPERM this user has no permissions to access one of the keys/);
      await assert.rejects(alice.mset("app:{4}d", "4", "secret:{5}y", "5"), /NOPERM/);
      await assert.rejects(alice.del("app:{1}a", "secret:{2}x"), /NOPERM/);
      assert.equal(await admin.get("app:{4}d"), null, "no part of the refused MSET ran");
      assert.equal(await admin.get("secret:{5}y"), null);
      assert.equal(await admin.get("app:{1}a"), "1", "no part of the refused DEL ran");
    } finally {
      alice.disconnect();
      admin.disconnect();
    }
  });

  it("removing a user live closes that user's sessions; others stay; the admin API never shows a password", SLOW, async () => {
    const { port, app } = await proxy.get();
    const bob = await RawClient.connect(port);
    const alice = await RawClient.connect(port);
    try {
      bob.send(resp("AUTH", "bob", "bobpw"));
      alice.send(resp("AUTH", "alice", "alicepw"));
      await bob.waitFor((t) => t === "+OK\r\n");
      await alice.waitFor((t) => t === "+OK\r\n");
      const admin = app.admin!;
      const shown = await (await fetch(`http://${admin.host}:${admin.port}/config`)).text();
      assert.doesNotMatch(shown, /alicepw|bobpw|secret"|[0-9a-f]{64}/);
      assert.match(shown, /"requirepass":"\[redacted\]"/);
      assert.match(shown, /"passwords":\["\[redacted\]"\]/);
      // PUT back as shown (the secrets kept in force), minus bob.
      const document = JSON.parse(shown);
      delete document.users.bob;
      const put = await fetch(`http://${admin.host}:${admin.port}/config`, { method: "PUT", body: JSON.stringify(document) });
      assert.equal(put.status, 200, await put.text());
      await bob.waitFor(() => bob.closed);
      assert.equal(bob.closed, true, "bob's session was closed");
      alice.send(resp("GET", "app:none"));
      await alice.waitFor((t) => t === "+OK\r\n$-1\r\n");
      assert.equal(alice.closed, false);
      assert.ok(logs.some((line) => line.includes("user 'bob' removed")), "the closing is logged");
      assert.deepEqual(await exchange(port, [["AUTH", "bob", "bobpw"], ["AUTH", "alice", "alicepw"]]), ["-WRONGPASS invalid username-password pair or user is disabled.\r\n", "+OK\r\n"]);
    } finally {
      bob.socket.destroy();
      alice.socket.destroy();
    }
  });

  it(`after ${FREE_FAILURES} failed AUTHs from one address, further attempts are answered later, in order, and counted in INFO`, SLOW, async () => {
    const own: string[] = [];
    const throttled = await authProxy((await cluster.get()).seeds, own);
    const client = await RawClient.connect(throttled.port);
    try {
      const attempts = FREE_FAILURES + 3;
      const started = Date.now();
      // All pipelined in one write: the delayed ones hold back everything after them.
      client.send(resp("AUTH", "alice", "bad").repeat(attempts) + resp("AUTH", "secret") + resp("INFO"));
      const text = await client.waitFor((t) => t.includes("slotgate_auth_delayed"), 60_000);
      const elapsed = Date.now() - started;
      const wrong = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
      assert.ok(text.startsWith(wrong.repeat(attempts) + "+OK\r\n"), "every attempt answered, in order, the right password accepted last");
      assert.match(text, new RegExp(`slotgate_auth_failures:${attempts}\\r\\n`));
      assert.match(text, /slotgate_auth_delayed:4\r\n/, "the attempts after the free ones were delayed (the good one too)");
      // Four waits, each at least STEP_MS after the previous one; generous for timer slack.
      assert.ok(elapsed >= 3 * STEP_MS, `took ${elapsed} ms`);
      assert.ok(own.filter((line) => line.includes("AUTH failed")).length === attempts, "each failure logged once");
      assert.ok(!own.some((line) => line.includes('"bad"') || line.includes("=bad")), "the password is never logged");
    } finally {
      client.socket.destroy();
      await throttled.stop();
    }
  });
});


describe("protected mode", () => {
  it("slotgate refuses to start on a non-loopback address with no client authentication, unless allowed", SLOW, async () => {
    const port = await freePort();
    const run = (env: Record<string, string>) => {
      const [bin, ...rest] = entryCommand();
      const child = spawn(bin!, rest, {
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", SLOTGATE_SEEDS: "127.0.0.1:1", SLOTGATE_LISTEN: `0.0.0.0:${port}`, SLOTGATE_ADMIN_LISTEN: "off", ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout!.on("data", (d) => (output += d));
      child.stderr!.on("data", (d) => (output += d));
      const done = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
      return { child, done, output: () => output };
    };
    const refused = run({});
    assert.equal(await within(refused.done, "the refusal", 60_000), 2, refused.output());
    assert.match(refused.output(), /SLOTGATE_LISTEN="0\.0\.0\.0:\d+": is not a loopback address and no client authentication is configured: set SLOTGATE_REQUIREPASS/);
    assert.match(refused.output(), /SLOTGATE_ALLOW_UNPROTECTED=yes/);
    // Allowed explicitly (or with a password) it listens.
    const allowed: Record<string, string>[] = [{ SLOTGATE_ALLOW_UNPROTECTED: "yes" }, { SLOTGATE_REQUIREPASS: "pw" }];
    for (const env of allowed) {
      const started = run(env);
      try {
        await within(
          (async () => {
            for (;;) {
              const ok = await new Promise<boolean>((resolve) => {
                const socket = net.connect({ host: "127.0.0.1", port }, () => (socket.destroy(), resolve(true)));
                socket.on("error", () => resolve(false));
              });
              if (ok) return;
              await new Promise((r) => setTimeout(r, 100));
            }
          })(),
          `slotgate listening with ${JSON.stringify(env)}: ${started.output()}`,
          60_000,
        );
      } finally {
        started.child.kill("SIGTERM");
        await within(started.done, "the exit", 30_000);
      }
    }
  });
});
