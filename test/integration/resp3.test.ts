/**
 * RESP3 through slotgate, against a real Redis Cluster (DEBUG enabled, so `DEBUG PROTOCOL` makes
 * a node produce every RESP3 type): a client that said `HELLO 3` gets each reply byte for byte as
 * a node sends it to its own RESP3 client, RESP2 clients on the same proxy keep RESP2, split
 * commands and local replies follow the client's protocol, real clients (node-redis with RESP3,
 * ioredis with RESP2) work, and HELLO/AUTH/SELECT/CLIENT errors are the ones a node gives.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { encodeVerbatim } from "../../src/resp/encode.ts";
import { lazy } from "../support/lazy.ts";
import { startProxy } from "../support/proxy.ts";
import { Exchange } from "../support/exchange.ts";

const SLOW = { timeout: 120_000 };
const encoder = new TextEncoder();
const latin1 = (bytes: Uint8Array) => Array.from(bytes, (b) => String.fromCharCode(b)).join("");

/** HELLO's reply with the fields that differ between a node and the proxy (version, id, mode) blanked. */
function helloShape(frame: string): string {
  return frame
    .replace(/(\$7\r\nversion\r\n)\$\d+\r\n[^\r]*\r\n/, "$1<version>")
    .replace(/(\$2\r\nid\r\n):\d+\r\n/, "$1<id>")
    .replace(/(\$4\r\nmode\r\n)\$\d+\r\n[^\r]*\r\n/, "$1<mode>");
}

describe("RESP3 through slotgate", () => {
  const cluster = lazy(() => startLocalCluster({ replicasPerPrimary: 0, extraConfig: ["enable-debug-command yes"] }));
  const proxy = lazy(async () => startProxy((await cluster.get()).seeds));
  const open: Exchange[] = [];
  after(async () => {
    for (const client of open) client.close();
    await proxy.stop();
    await cluster.stop();
  });

  /** A raw connection to the proxy, or to a node; RESP3 after `HELLO 3` when `resp3`. */
  async function connect(port: number, resp3: boolean): Promise<Exchange> {
    const client = await Exchange.connect(port);
    open.push(client);
    if (resp3) assert.match(await client.command("HELLO", "3"), /^%7\r\n/, "HELLO 3 answered with a map");
    return client;
  }

  /** The port of the node serving `key`. */
  async function ownerOf(key: string): Promise<number> {
    return (await (await cluster.get()).ownerOfSlot(keySlot(encoder.encode(key)))).port;
  }

  /** Data of every type, written through the proxy. */
  async function seed(port: number): Promise<void> {
    const client = await connect(port, false);
    const commands = [
      ["DEL", "r3:hash", "r3:set", "r3:zset", "r3:str"],
      ["HSET", "r3:hash", "field", "value", "n", "42", "empty", ""],
      ["SADD", "r3:set", "x", "y", "z", "12"],
      ["ZADD", "r3:zset", "1.5", "a", "0.1", "b", "-2.25", "c", "1e300", "d"],
      ["SET", "r3:str", "héllo"],
    ];
    for (const command of commands) assert.doesNotMatch(await client.command(...command), /^-/, command.join(" "));
  }

  /** Keyed commands and the key that routes them; keyless ones (DEBUG PROTOCOL) go to any node. */
  const KEYED: string[][] = [
    ["HGETALL", "r3:hash"],
    ["HGET", "r3:hash", "missing"],
    ["SMEMBERS", "r3:set"],
    ["ZSCORE", "r3:zset", "b"],
    ["ZINCRBY", "r3:zset", "0", "a"],
    ["ZRANGE", "r3:zset", "0", "-1", "WITHSCORES"],
    ["ZRANGEBYSCORE", "r3:zset", "-inf", "+inf", "WITHSCORES", "LIMIT", "0", "2"],
    ["HLEN", "r3:hash"],
    ["GET", "r3:str"],
    ["GET", "r3:missing"],
    ["TYPE", "r3:set"],
    ["OBJECT", "ENCODING", "r3:hash"],
    ["GET", "r3:hash"],
  ];
  const DEBUG_TYPES = ["bignum", "attrib", "double", "true", "false", "null", "verbatim", "map", "set", "array", "string", "integer"];

  /** Each command's reply through the proxy and straight from the node that serves it, in one protocol. */
  async function compare(proxyClient: Exchange, resp3: boolean): Promise<void> {
    const nodes = new Map<number, Exchange>();
    const node = async (port: number) => {
      if (!nodes.has(port)) nodes.set(port, await connect(port, resp3));
      return nodes.get(port)!;
    };
    for (const command of KEYED) {
      const key = command[1] === "ENCODING" ? command[2]! : command[1]!;
      const direct = await (await node(await ownerOf(key))).command(...command);
      assert.equal(await proxyClient.command(...command), direct, `${command.join(" ")} (RESP${resp3 ? 3 : 2})`);
    }
    const anyNode = await node((await cluster.get()).nodes[0]!.port);
    for (const type of DEBUG_TYPES) {
      const direct = await anyNode.command("DEBUG", "PROTOCOL", type);
      assert.equal(await proxyClient.command("DEBUG", "PROTOCOL", type), direct, `DEBUG PROTOCOL ${type} (RESP${resp3 ? 3 : 2})`);
    }
  }

  it("HELLO 3 through slotgate answers the map a node answers, with the proxy's own id", SLOW, async () => {
    const { port } = await proxy.get();
    const viaProxy = await Exchange.connect(port);
    const direct = await Exchange.connect((await cluster.get()).nodes[0]!.port);
    open.push(viaProxy, direct);
    const proxied = await viaProxy.command("HELLO", "3");
    assert.equal(helloShape(proxied), helloShape(await direct.command("HELLO", "3")));
    const id = (await viaProxy.command("CLIENT", "ID")).slice(1, -2);
    assert.match(proxied, new RegExp(`\\$2\\r\\nid\\r\\n:${id}\\r\\n`), "the id is the client's CLIENT ID");
    assert.match(proxied, /\$4\r\nmode\r\n\$10\r\nstandalone\r\n/, "slotgate presents itself as one standalone server");
    // Without a version, HELLO answers in the protocol in force; HELLO 2 switches back.
    assert.equal(helloShape(await viaProxy.command("HELLO")), helloShape(await direct.command("HELLO")));
    assert.equal(helloShape(await viaProxy.command("HELLO", "2")), helloShape(await direct.command("HELLO", "2")));
  });

  it("every RESP3 reply type reaches a RESP3 client exactly as a node sends it", SLOW, async () => {
    const { port } = await proxy.get();
    await seed(port);
    const client = await connect(port, true);
    await compare(client, true);
    assert.equal(await client.command("DEBUG", "SLEEP", "0"), "-ERR unsupported command 'DEBUG'\r\n", "only DEBUG PROTOCOL is relayed");
  });

  it("a push frame on the shared upstream connection is dropped: the client gets the reply that follows it", SLOW, async () => {
    const { port } = await proxy.get();
    const viaProxy = await connect(port, true);
    const direct = await connect((await cluster.get()).nodes[1]!.port, true);
    direct.write(["DEBUG", "PROTOCOL", "push"]);
    const push = await direct.next();
    assert.match(push, /^>2\r\n/, "the node sends a push frame first");
    const reply = await direct.next();
    assert.equal(await viaProxy.command("DEBUG", "PROTOCOL", "push"), reply, "the proxy relays only the real reply");
    assert.equal(await viaProxy.command("PING"), "+PONG\r\n", "and nothing else is owed to the client");
    assert.equal(viaProxy.unread, 0, "no stray frame");
  });

  it("a RESP2 client on the same proxy keeps RESP2 replies; HELLO 2 switches a RESP3 client back", SLOW, async () => {
    const { port } = await proxy.get();
    await seed(port);
    await compare(await connect(port, false), false);
    const switching = await connect(port, true);
    assert.match(await switching.command("HELLO", "2"), /^\*14\r\n/, "HELLO 2 answers with a flat array");
    await compare(switching, false);
    assert.equal(await switching.command("DEBUG", "PROTOCOL", "push"), "-ERR RESP2 is not supported by this command\r\n");
  });

  it("the proxy's verbatim encoder writes what Redis writes", SLOW, async () => {
    const direct = await connect((await cluster.get()).nodes[0]!.port, true);
    const verbatim = await direct.command("DEBUG", "PROTOCOL", "verbatim");
    const text = verbatim.slice(verbatim.indexOf("txt:") + 4, -2);
    assert.equal(latin1(encodeVerbatim(text)), verbatim);
  });

  it("MGET across slots in RESP3: missing keys and keys of another type are `_`, as a node's own MGET", SLOW, async () => {
    const { port } = await proxy.get();
    const keys = ["mget3:a", "mget3:b", "mget3:c", "mget3:d", "mget3:e"];
    const owners = await Promise.all(keys.map(ownerOf));
    assert.ok(new Set(owners).size >= 2, "the keys live on several nodes");
    const writer = await connect(port, false);
    assert.match(await writer.command("DEL", ...keys), /^:\d+\r\n$/);
    assert.equal(await writer.command("SET", "mget3:a", "1"), "+OK\r\n");
    assert.equal(await writer.command("HSET", "mget3:b", "f", "v"), ":1\r\n");
    assert.equal(await writer.command("SET", "mget3:d", "four"), "+OK\r\n");
    for (const resp3 of [true, false]) {
      // What each key's node answers to an MGET of that key alone, without the `*1` header.
      let expected = `*${keys.length}\r\n`;
      for (const [i, key] of keys.entries()) {
        const node = await connect(owners[i]!, resp3);
        expected += (await node.command("MGET", key)).replace(/^\*1\r\n/, "");
      }
      const client = await connect(port, resp3);
      const reply = await client.command("MGET", ...keys);
      assert.equal(reply, expected, `RESP${resp3 ? 3 : 2}`);
      assert.equal(reply, resp3 ? "*5\r\n$1\r\n1\r\n_\r\n_\r\n$4\r\nfour\r\n_\r\n" : "*5\r\n$1\r\n1\r\n$-1\r\n$-1\r\n$4\r\nfour\r\n$-1\r\n");
    }
  });

  it("pipelined protocol switches keep every reply in order and in the protocol of its turn", SLOW, async () => {
    const { port } = await proxy.get();
    const client = await connect(port, false);
    const commands: string[][] = [];
    const expected: (string | RegExp)[] = [];
    for (let i = 0; i < 100; i++) {
      const key = `switch:${i}`;
      commands.push(["SET", key, String(i)], ["HELLO", "3"], ["GET", key], ["INCR", `${key}:n`], ["HELLO", "2"], ["GET", `${key}:n`], ["GET", `${key}:none`]);
      expected.push("+OK\r\n", /^%7\r\n/, `$${String(i).length}\r\n${i}\r\n`, ":1\r\n", /^\*14\r\n/, "$1\r\n1\r\n", "$-1\r\n");
    }
    for (let i = 0; i < 100; i++) {
      commands.push(["DEL", `switch:${i}`, `switch:${i}:n`]);
      expected.push(":2\r\n");
    }
    client.write(...commands);
    for (const [i, want] of expected.entries()) {
      const got = await client.next();
      if (typeof want === "string") assert.equal(got, want, `reply ${i} to ${commands[i]!.join(" ")}`);
      else assert.match(got, want, `reply ${i} to ${commands[i]!.join(" ")}`);
    }
  });

  it("node-redis 5 with RESP: 3 through slotgate: maps, sets, doubles, pipelines, split MGET, CLIENT and errors", SLOW, async () => {
    const { port } = await proxy.get();
    const libVer = JSON.parse(readFileSync(new URL("../../node_modules/@redis/client/package.json", import.meta.url), "utf8")).version;
    const client = createClient({ url: `redis://127.0.0.1:${port}`, RESP: 3, name: "nr3" });
    client.on("error", () => {});
    await client.connect();
    try {
      // HELLO 3 SETNAME, then CLIENT SETINFO, during the handshake.
      assert.equal(await client.clientGetName(), "nr3");
      const id = await client.clientId();
      assert.ok(Number.isInteger(id) && id > 0, `CLIENT ID is a positive integer (${id})`);
      const info = await client.clientInfo();
      assert.equal(info.id, id);
      assert.equal(info.name, "nr3");
      assert.equal(info.resp, 3);
      assert.equal(info.libName, "node-redis");
      assert.equal(info.libVer, libVer);
      assert.equal(info.laddr, `127.0.0.1:${port}`);
      assert.match(info.addr, /^127\.0\.0\.1:\d+$/);
      assert.equal(await client.clientSetName("renamed"), "OK");
      assert.equal(await client.clientGetName(), "renamed");

      await client.del(["nr3:s", "nr3:h", "nr3:set", "nr3:z", "nr3:n"]);
      assert.equal(await client.set("nr3:s", "héllo wörld"), "OK");
      assert.equal(await client.get("nr3:s"), "héllo wörld");
      assert.equal(await client.get("nr3:none"), null);
      await client.hSet("nr3:h", { a: "1", b: "2", c: "" });
      assert.deepEqual({ ...(await client.hGetAll("nr3:h")) }, { a: "1", b: "2", c: "" });
      assert.equal(await client.sAdd("nr3:set", ["x", "y", "z"]), 3);
      assert.deepEqual([...(await client.sMembers("nr3:set"))].sort(), ["x", "y", "z"]);
      await client.zAdd("nr3:z", [{ score: 1.5, value: "a" }, { score: -2.25, value: "b" }]);
      assert.equal(await client.zScore("nr3:z", "a"), 1.5);
      assert.equal(await client.zIncrBy("nr3:z", 0.25, "b"), -2);
      assert.deepEqual(await client.zRangeWithScores("nr3:z", 0, -1), [{ value: "b", score: -2 }, { value: "a", score: 1.5 }]);
      assert.equal(await client.incrByFloat("nr3:n", 0.5), "0.5");

      const results = await client.multi().set("nr3:p1", "one").get("nr3:p1").hGetAll("nr3:h").sCard("nr3:set").zScore("nr3:z", "b").execAsPipeline();
      assert.deepEqual(results.map((r) => (r && typeof r === "object" ? { ...r } : r)), ["OK", "one", { a: "1", b: "2", c: "" }, 3, -2]);

      const keys = Array.from({ length: 20 }, (_, i) => `nr3:m:${i}`);
      assert.ok(new Set(keys.map((k) => keySlot(encoder.encode(k)))).size > 10, "the keys span slots");
      await client.mSet(Object.fromEntries(keys.map((k, i) => [k, `v${i}`])));
      assert.deepEqual(await client.mGet([...keys, "nr3:absent", "nr3:h"]), [...keys.map((_, i) => `v${i}`), null, null]);

      await assert.rejects(client.get("nr3:h"), /WRONGTYPE Operation against a key holding the wrong kind of value/);
      await assert.rejects(client.sendCommand(["CLIENT", "LIST"]), /unsupported command 'CLIENT LIST'/);
      await assert.rejects(client.sendCommand(["SELECT", "3"]), /SELECT is not allowed in cluster mode/);
      assert.equal(await client.del([...keys, "nr3:s", "nr3:h", "nr3:set", "nr3:z", "nr3:n", "nr3:p1"]), keys.length + 6);
    } finally {
      await client.close().catch(() => {});
    }
  });

  it("ioredis (RESP2) gets RESP2 values while RESP3 clients share the proxy and its nodes", SLOW, async () => {
    const { port } = await proxy.get();
    await seed(port);
    const resp3 = await connect(port, true);
    assert.match(await resp3.command("HGETALL", "r3:hash"), /^%3\r\n/);
    const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await client.connect();
      assert.deepEqual(await client.hgetall("r3:hash"), { field: "value", n: "42", empty: "" });
      assert.deepEqual((await client.smembers("r3:set")).sort(), ["12", "x", "y", "z"]);
      assert.equal(await client.zscore("r3:zset", "a"), "1.5");
      assert.deepEqual(await client.zrange("r3:zset", 0, 1, "WITHSCORES"), ["c", "-2.25", "b", "0.10000000000000001"]);
      assert.deepEqual(await client.mget("r3:str", "r3:missing", "r3:hash"), ["héllo", null, null]);
      assert.equal(await client.client("GETNAME"), null);
      assert.match(String(await client.client("INFO")), / resp=2 /);
      assert.match(await resp3.command("CLIENT", "INFO"), /^=\d+\r\ntxt:.* resp=3 /);
    } finally {
      client.disconnect();
    }
  });

  it("HELLO, AUTH, SELECT and CLIENT answer what a Redis Cluster node answers", SLOW, async () => {
    const { port } = await proxy.get();
    const viaProxy = await connect(port, false);
    const direct = await connect((await cluster.get()).nodes[2]!.port, false);
    const same: string[][] = [
      ["HELLO", "4"], ["HELLO", "0"], ["HELLO", "abc"], ["HELLO", "03"], ["HELLO", "+3"], ["HELLO", "-0"], ["HELLO", "2.0"], ["HELLO", ""],
      ["HELLO", "9223372036854775808"], ["HELLO", "9223372036854775807"],
      ["HELLO", "3", "AUTH", "default"], ["HELLO", "3", "SETNAME"], ["HELLO", "3", "FOO"], ["HELLO", "3", "setname", "x", "bar"], ["HELLO", "3", "SETNAME", "", "bar"],
      ["HELLO", "3", "SETNAME", "a b"], ["HELLO", "3", "SETNAME", "caf\u00e9"], ["HELLO", "3", "AUTH", "alice", "x"], ["HELLO", "2", "AUTH", "Default", "x"],
      ["HELLO", "3", "SETNAME", "a b", "AUTH", "alice", "x"], ["HELLO", "3", "AUTH", "alice", "x", "SETNAME", "a b"],
      ["HELLO", "3", "AUTH", "alice", "x", "FOO"], ["HELLO", "3", "AUTH", "default", "x", "FOO"],
      ["AUTH"], ["AUTH", "x"], ["AUTH", "default", "x"], ["AUTH", "alice", "x"], ["AUTH", "a", "b", "c"],
      ["SELECT", "0"], ["SELECT", "1"], ["SELECT", "-1"], ["SELECT", "00"], ["SELECT", "x"], ["SELECT", "99999999999"], ["SELECT", "1", "2"],
      ["CLIENT"], ["CLIENT", "SETNAME"], ["CLIENT", "SETNAME", "a", "b"], ["CLIENT", "SETNAME", "a b"], ["CLIENT", "SETNAME", "caf\u00e9"],
      ["CLIENT", "GETNAME", "x"], ["CLIENT", "ID", "x"], ["CLIENT", "INFO", "x"], ["CLIENT", "HELP", "x"],
      ["CLIENT", "NO-EVICT"], ["CLIENT", "NO-EVICT", "maybe"], ["CLIENT", "NO-EVICT", "on"], ["CLIENT", "no-evict", "OFF"], ["CLIENT", "NO-EVICT", "on", "off"],
      ["CLIENT", "foo"], ["CLIENT", "GETNAME"], ["CLIENT", "SETNAME", "n1"], ["CLIENT", "GETNAME"],
    ];
    for (const command of same) {
      assert.equal(await viaProxy.command(...command), await direct.command(...command), command.join(" "));
      // Side effects too: a name set by an option before a failing one stays set.
      assert.equal(await viaProxy.command("CLIENT", "GETNAME"), await direct.command("CLIENT", "GETNAME"), `GETNAME after ${command.join(" ")}`);
    }
    // Successful HELLOs: the same map, and the same name and protocol afterwards.
    const hellos: string[][] = [["HELLO", "3", "AUTH", "default", "x", "SETNAME", "n2"], ["HELLO"], ["HELLO", "2", "SETNAME", ""], ["HELLO", "3", "SETNAME", "n3", "setname", "n4"]];
    for (const command of hellos) {
      assert.equal(helloShape(await viaProxy.command(...command)), helloShape(await direct.command(...command)), command.join(" "));
      assert.equal(await viaProxy.command("CLIENT", "GETNAME"), await direct.command("CLIENT", "GETNAME"), `GETNAME after ${command.join(" ")}`);
    }
    assert.equal(await viaProxy.command("CLIENT", "SETNAME", ""), await direct.command("CLIENT", "SETNAME", ""));
    assert.equal(await viaProxy.command("CLIENT", "GETNAME"), "_\r\n");
    assert.equal(await direct.command("CLIENT", "GETNAME"), "_\r\n");
    // CLIENT INFO: a verbatim string in RESP3, Redis 7.0's fields in Redis's order, then 7.2's lib-name and lib-ver.
    const fields = (frame: string) => [...frame.matchAll(/ ?([a-z-]+)=/g)].map((m) => m[1]);
    const mine = await viaProxy.command("CLIENT", "INFO");
    const theirs = await direct.command("CLIENT", "INFO");
    assert.match(mine, /^=\d+\r\ntxt:id=/);
    assert.match(theirs, /^=\d+\r\ntxt:id=/);
    assert.deepEqual(fields(mine), [...fields(theirs), "lib-name", "lib-ver"]);
    // CLIENT HELP: Redis's title line, simple strings.
    const title = (frame: string) => frame.split("\r\n")[1];
    assert.equal(title(await viaProxy.command("CLIENT", "HELP")), title(await direct.command("CLIENT", "HELP")));
  });
});
