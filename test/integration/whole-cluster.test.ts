/**
 * Whole-cluster commands through slotgate, in front of a real 3-primary Redis Cluster, with real
 * clients (ioredis, node-redis, redis-cli): KEYS, DBSIZE, RANDOMKEY, FLUSHALL/FLUSHDB, SCAN,
 * SCRIPT and FUNCTION on every primary, EVAL/FCALL by their keys or on any primary, INFO with a
 * merged keyspace, the deny list, and a standalone pool as the backend. Each result is checked
 * against what the nodes themselves hold.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { startLocalCluster, startStandaloneRedis, type LocalCluster } from "../../scripts/local-cluster.ts";
import { connectIoredis } from "../support/launch.ts";
import { lazy } from "../support/lazy.ts";
import { startProxy, type RunningProxy } from "../support/proxy.ts";
import { until, within } from "../support/within.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { startSlotgate } from "../../src/app.ts";
import { validateConfig } from "../../src/config/load.ts";
import { createLogger } from "../../src/log.ts";
import { currentRuntime } from "../../adapters/current.ts";

const SLOW = { timeout: 180_000 };
const run = promisify(execFile);
const encoder = new TextEncoder();
const slotOf = (key: string) => keySlot(encoder.encode(key));

const LIBRARY = [
  "#!lua name=wholecluster",
  "redis.register_function('wc_set', function(keys, args) return redis.call('SET', keys[1], args[1]) end)",
  "redis.register_function{function_name='wc_get', callback=function(keys) return redis.call('GET', keys[1]) end, flags={'no-writes'}}",
  "redis.register_function('wc_ping', function() return 'pong' end)",
].join("\n");

describe("whole-cluster commands through slotgate", () => {
  // busy-reply-threshold: a busy script lets SCRIPT KILL in after 100 ms (Redis's default is 5 s).
  const cluster = lazy(() => startLocalCluster({ replicasPerPrimary: 0, extraConfig: ["busy-reply-threshold 100"] }));
  const proxy = lazy(async () => startProxy((await cluster.get()).seeds));
  const clients: { quit(): Promise<unknown> }[] = [];
  after(async () => {
    for (const client of clients) await client.quit().catch(() => {});
    await proxy.stop();
    await cluster.stop();
  });

  async function ioredis(): Promise<Redis> {
    const { port } = await proxy.get();
    const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 });
    clients.push(client);
    await client.connect();
    return client;
  }

  /** Every primary's port, by the lowest slot it owns. */
  async function primaryPorts(): Promise<number[]> {
    const ranges = (await proxy.get()).app.cluster.topology.ranges.slice().sort((a, b) => a.start - b.start);
    return [...new Set(ranges.map((r) => r.primary.port))];
  }

  /** One key (with `prefix`) in the slots of each primary. */
  async function keyPerPrimary(prefix: string): Promise<string[]> {
    const { app } = await proxy.get();
    return (await primaryPorts()).map((port) => {
      for (let i = 0; ; i++) {
        const key = `${prefix}:${i}`;
        if (app.cluster.topology.ranges.some((r) => r.primary.port === port && slotOf(key) >= r.start && slotOf(key) <= r.end)) return key;
      }
    });
  }

  async function nodeDbsizes(c: LocalCluster): Promise<number[]> {
    return Promise.all((await primaryPorts()).map(async (port) => Number(await c.command(port, "DBSIZE"))));
  }

  it("KEYS, DBSIZE and RANDOMKEY see the keys of every primary; FLUSHDB and FLUSHALL empty them all", SLOW, async () => {
    const c = await cluster.get();
    const client = await ioredis();
    assert.equal(await client.flushall(), "OK");
    const keys = Array.from({ length: 300 }, (_, i) => `wc:key:${i}`);
    await client.mset(Object.fromEntries(keys.map((k) => [k, "v"])));
    const perNode = await nodeDbsizes(c);
    assert.ok(perNode.every((n) => n > 0), `keys on every primary (${perNode})`);
    assert.deepEqual((await client.keys("*")).sort(), keys.slice().sort());
    assert.deepEqual((await client.keys("wc:key:1?")).sort(), keys.filter((k) => /^wc:key:1\d$/.test(k)).sort());
    assert.equal(await client.dbsize(), 300);
    assert.equal(await client.dbsize(), perNode.reduce((a, b) => a + b, 0), "DBSIZE is the sum of the primaries'");

    const owners = new Set<number>();
    const ports = await primaryPorts();
    for (let i = 0; i < 40; i++) {
      const key = await client.randomkey();
      assert.ok(key !== null && keys.includes(key), `RANDOMKEY gave a stored key (${key})`);
      owners.add((await c.ownerOfSlot(slotOf(key))).port);
      if (owners.size === ports.length) break;
    }
    assert.ok(owners.size >= 2, `RANDOMKEY draws from several primaries (${[...owners]})`);

    assert.equal(await client.flushdb("ASYNC"), "OK");
    await until("FLUSHDB ASYNC to empty every primary", async () => (await nodeDbsizes(c)).every((n) => n === 0));
    assert.equal(await client.dbsize(), 0);
    assert.deepEqual(await client.keys("*"), []);
    assert.equal(await client.randomkey(), null, "an empty cluster: nil after asking every primary");
    await client.set("wc:again", "1");
    assert.equal(await client.flushall(), "OK");
    assert.deepEqual(await nodeDbsizes(c), ports.map(() => 0));
  });

  it("ioredis scanStream over 2000 keys in every slot range returns every key", SLOW, async () => {
    const client = await ioredis();
    await client.flushall();
    const keys = Array.from({ length: 2000 }, (_, i) => `scan:${i}`);
    const slots = new Set(keys.map(slotOf));
    assert.ok(slots.size > 1500, `keys spread over many slots (${slots.size})`);
    const pipeline = client.pipeline();
    for (const key of keys) pipeline.set(key, "x");
    await pipeline.exec();
    const seen = new Map<string, number>();
    const stream = client.scanStream({ count: 50 });
    await within(
      new Promise<void>((resolve, reject) => {
        stream.on("data", (batch: string[]) => batch.forEach((k) => seen.set(k, (seen.get(k) ?? 0) + 1)));
        stream.on("end", resolve);
        stream.on("error", reject);
      }),
      "scanStream to end",
      60_000,
    );
    assert.deepEqual(keys.filter((k) => !seen.has(k)), [], "no key missed");
    assert.equal(seen.size, keys.length, "nothing but the keys");
  });

  it("SCAN passes MATCH, COUNT and TYPE through; an invalid cursor gets Redis's error", SLOW, async () => {
    const client = await ioredis();
    await client.flushall();
    const pipeline = client.pipeline();
    for (let i = 0; i < 200; i++) {
      pipeline.set(`t:str:${i}`, "x");
      pipeline.hset(`t:hash:${i}`, "f", "v");
      pipeline.sadd(`t:set:${i}`, "m");
    }
    await pipeline.exec();
    const scanAll = async (...options: string[]) => {
      const found: string[] = [];
      let cursor = "0";
      let calls = 0;
      do {
        const [next, batch] = (await client.call("SCAN", cursor, ...options)) as [string, string[]];
        found.push(...batch);
        cursor = next;
        calls++;
      } while (cursor !== "0");
      return { found: [...new Set(found)].sort(), calls };
    };
    const hashes = Array.from({ length: 200 }, (_, i) => `t:hash:${i}`).sort();
    assert.deepEqual((await scanAll("MATCH", "t:hash:*")).found, hashes);
    assert.deepEqual((await scanAll("TYPE", "hash")).found, hashes);
    assert.deepEqual((await scanAll("MATCH", "t:s*", "TYPE", "set")).found, Array.from({ length: 200 }, (_, i) => `t:set:${i}`).sort());
    const small = await scanAll("COUNT", "5");
    const large = await scanAll("COUNT", "1000");
    assert.equal(small.found.length, 600);
    assert.equal(large.found.length, 600);
    assert.ok(large.calls < small.calls, `COUNT reaches the primaries (${large.calls} pages with COUNT 1000, ${small.calls} with COUNT 5)`);
    await assert.rejects(client.call("SCAN", "not-a-number"), /^ReplyError: ERR invalid cursor/);
    await assert.rejects(client.call("SCAN", "0", "COUNT", "0"), /ERR syntax error/, "Redis's own argument errors");
  });

  it("redis-cli: --scan, KEYS, DBSIZE and INFO keyspace", SLOW, async () => {
    const { port } = await proxy.get();
    const client = await ioredis();
    await client.flushall();
    await client.mset({ "cli:a": "1", "cli:b": "2", "cli:c": "3", "{x}cli:d": "4" });
    const cli = async (...args: string[]) => (await run("redis-cli", ["-p", String(port), ...args])).stdout.trim();
    assert.deepEqual((await cli("--scan")).split("\n").sort(), ["cli:a", "cli:b", "cli:c", "{x}cli:d"]);
    assert.deepEqual((await cli("--scan", "--pattern", "cli:*")).split("\n").sort(), ["cli:a", "cli:b", "cli:c"]);
    assert.deepEqual((await cli("KEYS", "*")).split("\n").sort(), ["cli:a", "cli:b", "cli:c", "{x}cli:d"]);
    assert.equal(await cli("DBSIZE"), "4");
    assert.match(await cli("INFO", "keyspace"), /^# Keyspace\s+db0:keys=4,expires=0,avg_ttl=0$/);
  });

  it("SCRIPT LOAD reaches every primary: EVALSHA runs on keys of each; SCRIPT EXISTS and FLUSH agree with the nodes", SLOW, async () => {
    const c = await cluster.get();
    const client = await ioredis();
    const sha = (await client.script("LOAD", "return redis.call('SET', KEYS[1], ARGV[1])")) as string;
    assert.match(sha, /^[0-9a-f]{40}$/);
    for (const port of await primaryPorts()) assert.equal(await c.command(port, "SCRIPT", "EXISTS", sha), "1", `loaded on ${port}`);
    for (const key of await keyPerPrimary("sha")) {
      assert.equal(await client.evalsha(sha, 1, key, `v-${key}`), "OK");
      assert.equal(await client.get(key), `v-${key}`);
    }
    // A script one primary has and the others lack is not there for the cluster.
    const partial = await c.command((await primaryPorts())[1]!, "SCRIPT", "LOAD", "return 'partial'");
    assert.deepEqual(await client.script("EXISTS", sha, partial, "0".repeat(40)), [1, 0, 0]);
    assert.equal(await client.script("FLUSH"), "OK");
    assert.deepEqual(await client.script("EXISTS", sha, partial), [0, 0]);
    for (const port of await primaryPorts()) assert.equal(await c.command(port, "SCRIPT", "EXISTS", sha), "0", `flushed on ${port}`);
    await assert.rejects(client.evalsha(sha, 1, "sha:0", "x"), /NOSCRIPT/);
  });

  it("EVAL routes by its keys, refuses keys of different slots, and runs on any primary without keys", SLOW, async () => {
    const client = await ioredis();
    const [a, b] = (await keyPerPrimary("ev")) as [string, string];
    assert.equal(await client.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, a, "1"), "OK");
    assert.equal(await client.eval("return redis.call('GET', KEYS[1])", 1, a), "1");
    assert.equal(await client.call("EVAL_RO", "return redis.call('GET', KEYS[1])", "1", a), "1");
    assert.deepEqual(await client.eval("return {KEYS[1], KEYS[2]}", 2, "{t}1", "{t}2"), ["{t}1", "{t}2"]);
    await assert.rejects(client.eval("return 1", 2, a, b), /CROSSSLOT Keys in request don't hash to the same slot/);
    assert.equal(await client.eval("return 'no keys'", 0), "no keys");
    const sha = (await client.script("LOAD", "return ARGV[1]")) as string;
    assert.equal(await client.evalsha(sha, 0, "any"), "any");
    assert.equal(await client.call("EVALSHA_RO", sha, "0", "ro"), "ro");
    await assert.rejects(client.call("EVAL", "return 1", "5", "k"), /Number of keys can't be greater than number of args/, "Redis judges a bad numkeys");
    await assert.rejects(client.call("EVAL", "return 1", "x"), /value is not an integer or out of range/);
  });

  it("FUNCTION LOAD on every primary: FCALL on keys of each, LIST, DUMP/RESTORE, DELETE and FLUSH agree with the nodes", SLOW, async () => {
    const c = await cluster.get();
    const client = await ioredis();
    await client.function("FLUSH");
    assert.equal(await client.function("LOAD", LIBRARY), "wholecluster");
    await assert.rejects(client.function("LOAD", LIBRARY), /Library 'wholecluster' already exists/);
    assert.equal(await client.function("LOAD", "REPLACE", LIBRARY), "wholecluster");
    const ports = await primaryPorts();
    const libraries = async (port: number) => ((await c.reply(port, "FUNCTION", "LIST")) as unknown[]).length;
    for (const port of ports) assert.equal(await libraries(port), 1, `library on ${port}`);
    for (const key of await keyPerPrimary("fn")) {
      assert.equal(await client.fcall("wc_set", 1, key, `f-${key}`), "OK");
      assert.equal(await client.fcall_ro("wc_get", 1, key), `f-${key}`);
    }
    assert.equal(await client.fcall("wc_ping", 0), "pong");
    const list = (await client.function("LIST")) as unknown[][];
    assert.equal(list.length, 1);
    assert.equal(list[0]![1], "wholecluster");
    const dump = (await client.callBuffer("FUNCTION", "DUMP")) as Buffer;
    assert.equal(await client.function("FLUSH"), "OK");
    for (const port of ports) assert.equal(await libraries(port), 0, `flushed on ${port}`);
    await assert.rejects(client.fcall("wc_ping", 0), /Function not found/);
    assert.equal(await client.call("FUNCTION", "RESTORE", dump), "OK");
    for (const port of ports) assert.equal(await libraries(port), 1, `restored on ${port}`);
    assert.equal(await client.function("DELETE", "wholecluster"), "OK");
    for (const port of ports) assert.equal(await libraries(port), 0, `deleted on ${port}`);
    await assert.rejects(client.function("DELETE", "wholecluster"), /Library not found/);
    assert.ok(Array.isArray(await client.function("STATS")), "FUNCTION STATS answers");
  });

  it("SCRIPT KILL stops a busy script on whichever primary runs it; NOTBUSY when none does", SLOW, async () => {
    const c = await cluster.get();
    const client = await ioredis();
    const busy = await ioredis();
    await assert.rejects(client.script("KILL"), /^ReplyError: NOTBUSY/);
    await assert.rejects(client.function("KILL"), /^ReplyError: NOTBUSY/);
    const running = busy.eval("while true do end", 0).then(
      () => assert.fail("the busy script returned"),
      (error: Error) => error.message,
    );
    let killed = "";
    await until("SCRIPT KILL to find the busy script", async () => {
      killed = String(await client.script("KILL").catch((error: Error) => error.message));
      return killed === "OK";
    });
    assert.match(await within(running, "the killed script's reply"), /Script killed by user/);
    await c.waitForStable();
  });

  it("INFO: the proxy's sections and a keyspace that sums the primaries'; single sections on demand", SLOW, async () => {
    const c = await cluster.get();
    const client = await ioredis();
    await client.flushall();
    const pipeline = client.pipeline();
    for (let i = 0; i < 500; i++) {
      if (i % 5 === 0) pipeline.set(`info:${i}`, "v", "EX", 1000);
      else pipeline.set(`info:${i}`, "v");
    }
    await pipeline.exec();
    const info = await client.info();
    for (const line of ["redis_version:", "loading:0", "# Server", "# Clients", "# Persistence", "# Cluster", "# Proxy", "# Keyspace"]) {
      assert.ok(info.includes(line), `INFO has ${line}`);
    }
    const totals = { keys: 0, expires: 0 };
    for (const port of await primaryPorts()) {
      const own = /db0:keys=(\d+),expires=(\d+)/.exec(await c.command(port, "INFO", "keyspace"))!;
      totals.keys += Number(own[1]);
      totals.expires += Number(own[2]);
    }
    const merged = /db0:keys=(\d+),expires=(\d+),avg_ttl=(\d+)/.exec(info)!;
    assert.deepEqual([Number(merged[1]), Number(merged[2])], [totals.keys, totals.expires], "the sum of the nodes' own");
    assert.deepEqual([totals.keys, totals.expires], [500, 100]);
    assert.ok(Number(merged[3]) <= 1_000_000, `avg_ttl in ms, at most the TTL (${merged[3]})`);
    assert.match(info, /slotgate_keyspace_primaries:3\r\nslotgate_keyspace_errors:0/);
    const keyspace = await client.info("keyspace");
    assert.match(keyspace, /^# Keyspace\r\ndb0:keys=500,expires=100,avg_ttl=\d+\r\n$/);
    const server = await client.info("server");
    assert.ok(server.startsWith("# Server\r\n") && !server.includes("Keyspace"), "INFO server: the server section alone");
    assert.match(await client.call("INFO", "CLIENTS", "proxy") as string, /^# Clients\r\nconnected_clients:\d+\r\n(?:[a-z_]+:\d+\r\n)*\r\n# Proxy\r\nslotgate_version:/);
  });

  it("node-redis: KEYS, DBSIZE, scanIterator, INFO, SCRIPT LOAD and EVALSHA", SLOW, async () => {
    const { port } = await proxy.get();
    const client = createClient({ socket: { host: "127.0.0.1", port } });
    await client.connect();
    clients.push({ quit: () => client.close() });
    await client.flushAll();
    const keys = Array.from({ length: 500 }, (_, i) => `nr:${i}`);
    await client.mSet(keys.map((k) => [k, "1"] as [string, string]));
    assert.equal(await client.dbSize(), 500);
    assert.deepEqual((await client.keys("nr:*")).sort(), keys.slice().sort());
    const seen = new Set<string>();
    for await (const batch of client.scanIterator({ COUNT: 40, MATCH: "nr:*" })) for (const key of batch) seen.add(key);
    assert.equal(seen.size, 500);
    assert.match(await client.info("keyspace"), /db0:keys=500,/);
    const sha = await client.scriptLoad("return #KEYS");
    for (const key of await keyPerPrimary("nr")) assert.equal(await client.evalSha(sha, { keys: [key] }), 1);
  });
});

describe("the deny list and the choice of backend", () => {
  const cluster = lazy(() => startLocalCluster({ replicasPerPrimary: 0 }));
  const proxy = lazy(async () => startProxy((await cluster.get()).seeds, { SLOTGATE_DENY_COMMANDS: "FLUSHALL, script flush" }));
  const clients: Redis[] = [];
  after(async () => {
    for (const client of clients) client.disconnect();
    await proxy.stop();
    await cluster.stop();
  });

  const connect = (p: RunningProxy) => connectIoredis(p, clients);

  it("denied commands are refused with a clear error; others run; a live config change applies at once", SLOW, async () => {
    const p = await proxy.get();
    const client = await connect(p);
    await client.set("deny:a", "1");
    await assert.rejects(client.flushall(), /^ReplyError: ERR command 'flushall' is disabled by slotgate configuration$/);
    await assert.rejects(client.script("FLUSH"), /ERR command 'script\|flush' is disabled by slotgate configuration/);
    assert.match(String(await client.script("LOAD", "return 1")), /^[0-9a-f]{40}$/, "other SCRIPT subcommands run");
    assert.equal(await client.dbsize(), 1, "nothing was flushed");
    const changed = await p.app.control.replaceConfig({ ...p.app.control.config(), denyCommands: ["keys", "SCRIPT"] });
    assert.deepEqual(changed, { ok: true, changes: ["updated denyCommands"] });
    await assert.rejects(client.keys("*"), /ERR command 'keys' is disabled by slotgate configuration/);
    await assert.rejects(client.script("LOAD", "return 1"), /ERR command 'script\|load' is disabled/, "a command denies its subcommands");
    assert.equal(await client.flushall(), "OK", "no longer denied");
    const refused = await p.app.control.replaceConfig({ ...p.app.control.config(), denyCommands: ["FLUSHAL", "PING"] });
    assert.equal(refused.ok, false);
    assert.match(JSON.stringify(refused), /unknown command 'FLUSHAL'/);
    assert.match(JSON.stringify(refused), /'PING' is answered by slotgate itself/);
  });

  it("with several clusters and no catch-all, whole-cluster commands are refused; INFO still answers", SLOW, async () => {
    const c = await cluster.get();
    const p = await proxy.get();
    const client = await connect(p);
    const before = p.app.control.config();
    const changed = await p.app.control.replaceConfig({
      ...before,
      clusters: { a: { seeds: c.seeds }, b: { seeds: c.seeds } },
      routes: [
        { prefix: "a:", cluster: "a" },
        { prefix: "b:", cluster: "b" },
      ],
      catchAll: undefined,
    });
    assert.ok(changed.ok, JSON.stringify(changed));
    await assert.rejects(client.dbsize(), /ERR 'dbsize' goes to every primary of one cluster, but several clusters are configured and none is the catch-all/);
    await assert.rejects(client.call("SCAN", "0"), /several clusters are configured/);
    await assert.rejects(client.eval("return 1", 0), /several clusters are configured/);
    assert.equal(await client.eval("return redis.call('SET', KEYS[1], 'x')", 1, "a:key"), "OK", "EVAL with keys still routes");
    const info = await client.info();
    assert.match(info, /slotgate_keyspace_error:several clusters/);
    assert.match(info, /# Keyspace\r\n$/);
    const restored = await p.app.control.replaceConfig({ ...before, clusters: { a: { seeds: c.seeds }, b: { seeds: c.seeds } }, catchAll: "b", routes: [{ prefix: "a:", cluster: "a" }] });
    assert.ok(restored.ok, JSON.stringify(restored));
    assert.equal(await client.dbsize(), 1, "the catch-all cluster's keys (here the same cluster)");
  });
});

describe("whole-cluster commands over a standalone pool", () => {
  const servers = lazy(async () => {
    const all = await Promise.all([startStandaloneRedis(), startStandaloneRedis(), startStandaloneRedis()]);
    return { all, stop: async () => void (await Promise.all(all.map((s) => s.stop()))) };
  });
  const proxy = lazy(async () => {
    const ports = (await servers.get()).all.map((s) => s.port);
    const config = validateConfig({
      listen: "127.0.0.1:0",
      logLevel: "warn",
      admin: { listen: "off" },
      // md5 spreads these similar keys over every server; fnv1a_64 (the default) may not.
      clusters: { pool: { type: "standalone", hash: "md5", servers: ports.map((port) => `127.0.0.1:${port}`) } },
    });
    const app = await startSlotgate(await currentRuntime(), config, createLogger(config.logLevel));
    return { port: app.port, stop: () => app.close() };
  });
  after(async () => {
    await proxy.stop();
    await servers.stop();
  });

  it("KEYS, DBSIZE, SCAN and INFO cover every server of the pool", SLOW, async () => {
    const p = await proxy.get();
    const { all } = await servers.get();
    const client = new Redis({ port: p.port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await client.connect();
      const keys = Array.from({ length: 300 }, (_, i) => `pool:${i}`);
      await client.mset(Object.fromEntries(keys.map((k) => [k, "1"])));
      const sizes = await Promise.all(all.map(async (s) => Number(await s.command("DBSIZE"))));
      assert.ok(sizes.every((n) => n > 0), `keys on every server (${sizes})`);
      assert.equal(await client.dbsize(), 300);
      assert.deepEqual((await client.keys("*")).sort(), keys.slice().sort());
      const seen = new Set<string>();
      let cursor = "0";
      do {
        const [next, batch] = (await client.scan(cursor, "COUNT", 20)) as [string, string[]];
        batch.forEach((k) => seen.add(k));
        cursor = next;
      } while (cursor !== "0");
      assert.equal(seen.size, 300);
      assert.match(await client.info("keyspace"), /db0:keys=300,/);
      assert.equal(await client.flushall(), "OK");
      assert.deepEqual(await Promise.all(all.map(async (s) => Number(await s.command("DBSIZE")))), [0, 0, 0]);
    } finally {
      client.disconnect();
    }
  });
});
