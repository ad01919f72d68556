/**
 * slotgate while the cluster changes under it: a live slot migration (ASK while the slot is
 * half-moved, MOVED once it has moved), seeds that refuse or never answer, a primary that stops
 * answering (op timeout), and a primary killed and failed over, all with traffic running.
 * Runs under `npx tsx --test`, `bun test` and `deno test -A`. No assertion depends on timing: every
 * wait is a poll with a generous bound.
 */
import assert from "node:assert/strict";
import net from "node:net";
import process from "node:process";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { freePorts } from "../../scripts/free-port.ts";
import { startLocalCluster, type ClusterNode } from "../../scripts/local-cluster.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import type { Topology } from "../../src/backends/cluster/topology.ts";
import { splitFrames } from "../support/exchange.ts";
import { connectIoredis, launchProxy } from "../support/launch.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp, type RunningProxy } from "../support/proxy.ts";
import { sleep, until } from "../support/within.ts";

const SLOW = { timeout: 120_000 };
const encoder = new TextEncoder();
const slotOf = (key: string) => keySlot(encoder.encode(key));


/** The primary port owning `slot` in a topology. */
function ownerPort(topology: Topology, slot: number): number | undefined {
  return topology.ranges.find((range) => range.start <= slot && slot <= range.end)?.primary.port;
}

/** `count` keys `prefix:<i>` whose slots `wanted(ownerPort)` accepts. */
function keysWhere(topology: Topology, prefix: string, count: number, wanted: (port: number | undefined) => boolean): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) {
    const key = `${prefix}:${i}`;
    if (wanted(ownerPort(topology, slotOf(key)))) keys.push(key);
  }
  return keys;
}

/**
 * Sequential traffic on one client over keys it alone writes: SET a fresh value, GET it back, GET
 * another of its keys; every read must return the value last written. `reads` only reads keys
 * with known values (for keys whose writes may be lost, e.g. around a kill).
 */
class Traffic {
  ops = 0;
  readonly errors: string[] = [];
  readonly mismatches: string[] = [];
  readonly done: Promise<void>;
  #stopped = false;

  /** Every loop started, so that `after` can end those a failed test left running. */
  static readonly all: Traffic[] = [];

  constructor(
    readonly client: Redis,
    readonly name: string,
    readonly keys: string[],
    readonly last: Map<string, string> = new Map(),
    readonly readOnly = false,
  ) {
    this.done = this.#run();
    Traffic.all.push(this);
  }

  stop(): Promise<void> {
    this.#stopped = true;
    return this.done;
  }

  async #run(): Promise<void> {
    for (let n = 0; !this.#stopped; n++) {
      const key = this.keys[n % this.keys.length]!;
      try {
        if (!this.readOnly) {
          const value = `${this.name}-${n}`;
          const ok = await this.client.set(key, value);
          if (ok !== "OK") this.mismatches.push(`SET ${key} answered ${ok}`);
          this.last.set(key, value);
        }
        await this.#check(key);
        await this.#check(this.keys[(n * 7 + 3) % this.keys.length]!);
      } catch (error) {
        this.errors.push(`${key}: ${(error as Error).message}`);
        // A failing node must not turn the loop into a busy spin.
        await sleep(20);
      }
      this.ops++;
    }
  }

  async #check(key: string): Promise<void> {
    const expected = this.last.get(key);
    if (expected === undefined) return;
    const got = await this.client.get(key);
    if (got !== expected) this.mismatches.push(`GET ${key}: got ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`);
  }
}

describe("slotgate while the cluster topology changes", () => {
  // Full coverage off: while a killed primary's slots wait for failover, the other primaries keep
  // serving (otherwise Redis itself answers CLUSTERDOWN everywhere). A node timeout of 3 s leaves
  // room for the short SIGSTOP of the op-timeout test without triggering a failover.
  const fixture = lazy(() => startLocalCluster({ extraConfig: ["cluster-require-full-coverage no", "cluster-node-timeout 3000"] }));
  const proxies: RunningProxy[] = [];
  const clients: Redis[] = [];
  const raws: RawClient[] = [];
  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();
  const stopped = new Set<number>();

  after(async () => {
    for (const traffic of Traffic.all) void traffic.stop();
    for (const pid of stopped) {
      try {
        process.kill(pid, "SIGCONT");
      } catch {
        // already gone
      }
    }
    for (const raw of raws) raw.close();
    for (const client of clients) client.disconnect();
    for (const socket of sockets) socket.destroy();
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    await Promise.all(proxies.map((proxy) => proxy.stop().catch(() => {})));
    await fixture.stop();
  });

  /** Start slotgate in this process, registered for `after` before it is ready. */
  const launch = (seeds: string[], env: Record<string, string> = {}) => launchProxy(proxies, seeds, env);

  const connect = (proxy: RunningProxy) => connectIoredis(proxy, clients);

  async function raw(proxy: RunningProxy): Promise<RawClient> {
    const client = await RawClient.connect(proxy.port);
    raws.push(client);
    return client;
  }

  it("a slot migrating under steady traffic: ASK while half-moved, MOVED after, every read sees the last write", SLOW, async () => {
    const cluster = await fixture.get();
    // S never refreshes on its own and redirects never trigger a refresh: only MOVED can update
    // its routing, so it must see ASK during the migration and MOVED after it. F refreshes fast.
    const s = await launch(cluster.seeds, { SLOTGATE_REFRESH_INTERVAL_MS: "3600000", SLOTGATE_REDIRECT_REFRESH_THRESHOLD: "0" });
    const f = await launch(cluster.seeds, {
      SLOTGATE_REFRESH_INTERVAL_MS: "1000",
      SLOTGATE_REDIRECT_REFRESH_INTERVAL_MS: "200",
      SLOTGATE_REDIRECT_REFRESH_THRESHOLD: "1",
    });
    const [source, target] = (await cluster.primaries()) as [ClusterNode, ClusterNode];
    const range = s.app.cluster.topology.ranges.find((r) => r.primary.port === source.port)!;
    const slot = range.start + Math.floor((range.end - range.start) / 2);
    let tag = "";
    for (let i = 0; tag === ""; i++) if (slotOf(`{t${i}}`) === slot) tag = `{t${i}}`;

    const sClient = await connect(s);
    const fClient = await connect(f);
    const expected = new Map<string, string>();
    const write = async (client: Redis, entries: [string, string][]) => {
      const pipeline = client.pipeline();
      for (const [key, value] of entries) pipeline.set(key, value);
      const results = (await pipeline.exec())!;
      results.forEach(([error, reply], i) => assert.deepEqual([error, reply], [null, "OK"], `SET ${entries[i]![0]}`));
      for (const [key, value] of entries) expected.set(key, value);
    };
    const readAll = async (client: Redis, keys: string[], via: string) => {
      const pipeline = client.pipeline();
      for (const key of keys) pipeline.get(key);
      const results = (await pipeline.exec())!;
      results.forEach(([error, value], i) =>
        assert.deepEqual([error, value], [null, expected.get(keys[i]!)], `GET ${keys[i]} via ${via}`),
      );
    };
    const preKeys = Array.from({ length: 300 }, (_, i) => `${tag}:pre:${i}`);
    await write(sClient, preKeys.map((key, i) => [key, `pre-${i}-0`]));
    assert.equal(Number(await cluster.command(source.port, "CLUSTER", "COUNTKEYSINSLOT", slot)), 300);

    // Two writers per proxy, each on its own keys: half in the migrating slot, half elsewhere.
    const workers: Traffic[] = [];
    for (const [name, proxy] of [["s0", s], ["s1", s], ["f0", f], ["f1", f]] as const) {
      const keys = Array.from({ length: 20 }, (_, j) => (j % 2 === 0 ? `${tag}:${name}:${j}` : `${name}:other:${j}`));
      workers.push(new Traffic(await connect(proxy), name, keys));
    }
    const totalOps = () => workers.reduce((sum, w) => sum + w.ops, 0);
    await until("traffic to start", () => workers.every((w) => w.ops > 5));

    let hookRan = false;
    const newKeys: string[] = [];
    await cluster.migrateSlot(slot, source.port, target.port, {
      onMigrating: async () => {
        hookRan = true;
        const onSource = Number(await cluster.command(source.port, "CLUSTER", "COUNTKEYSINSLOT", slot));
        const onTarget = Number(await cluster.command(target.port, "CLUSTER", "COUNTKEYSINSLOT", slot));
        assert.ok(onSource > 0 && onTarget > 0, `the slot is half-moved (source ${onSource}, target ${onTarget})`);
        const askBefore = { s: s.app.cluster.stats.ask, f: f.app.cluster.stats.ask };
        // Reads of keys already moved (ASK) and not yet moved (served by the source).
        await readAll(sClient, preKeys, "S while migrating");
        await readAll(fClient, preKeys, "F while migrating");
        assert.ok(s.app.cluster.stats.ask > askBefore.s, "S followed ASK redirects");
        assert.ok(f.app.cluster.stats.ask > askBefore.f, "F followed ASK redirects");
        // Writes of new keys (the source has none of them: ASK to the importing target), and of
        // existing ones, moved or not.
        for (let i = 0; i < 100; i++) newKeys.push(`${tag}:new:${i}`);
        await write(sClient, newKeys.slice(0, 50).map((key) => [key, `new-${key}-s`]));
        await write(fClient, newKeys.slice(50).map((key) => [key, `new-${key}-f`]));
        await write(sClient, preKeys.filter((_, i) => i % 3 === 0).map((key) => [key, `${key}-1`]));
        await readAll(fClient, [...preKeys, ...newKeys], "F while migrating");
        await readAll(sClient, [...preKeys, ...newKeys], "S while migrating");
        // Let the steady traffic run in the half-moved state too.
        const ops = totalOps();
        await until("traffic while migrating", () => totalOps() >= ops + 100);
      },
    });
    assert.ok(hookRan);
    assert.equal(Number(await cluster.command(source.port, "CLUSTER", "COUNTKEYSINSLOT", slot)), 0);
    assert.equal(Number(await cluster.command(target.port, "CLUSTER", "COUNTKEYSINSLOT", slot)), 300 + 100 + 40);

    // The slot has moved: S still routes it to the source until a MOVED tells it otherwise; F
    // meets MOVED until its next refresh.
    const refreshes = f.app.cluster.stats.refreshes;
    const ops = totalOps();
    await until("traffic after the migration and a refresh of F", () => totalOps() >= ops + 200 && f.app.cluster.stats.refreshes > refreshes + 1);
    await Promise.all(workers.map((w) => w.stop()));
    await readAll(sClient, [...preKeys, ...newKeys], "S after the migration");
    await readAll(fClient, [...preKeys, ...newKeys], "F after the migration");

    for (const worker of workers) {
      assert.deepEqual(worker.errors, [], `${worker.name}: no client error`);
      assert.deepEqual(worker.mismatches, [], `${worker.name}: every read saw the last write`);
      assert.ok(worker.ops > 0);
    }
    assert.ok(s.app.cluster.stats.ask > 0, "S saw ASK");
    assert.ok(s.app.cluster.stats.moved > 0, "S saw MOVED");
    assert.equal(s.app.cluster.stats.refreshes, 1, "S learned the move from MOVED alone");
    assert.equal(ownerPort(f.app.cluster.topology, slot), target.port, "F's refresh shows the new owner");
  });

  it("discovery skips seeds that refuse or never answer and becomes ready from the one good seed", SLOW, async () => {
    const cluster = await fixture.get();
    const dead = await freePorts(2);
    // A seed that accepts connections and never answers.
    let silentClosed = 0;
    const silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => silentClosed++);
      socket.resume();
    });
    servers.push(silent);
    await new Promise<void>((resolve) => silent.listen({ host: "127.0.0.1", port: 0 }, () => resolve()));
    const silentPort = (silent.address() as net.AddressInfo).port;
    const good = (await cluster.primaries())[0]!;
    // Tried in this order: a refusal moves on at once, the silent seed only after the hedge
    // delay; the good seed's answer ends the round while the silent one and a dead one are left.
    const seeds = [`127.0.0.1:${dead[0]}`, `127.0.0.1:${silentPort}`, `127.0.0.1:${good.port}`, `127.0.0.1:${dead[1]}`];
    const proxy = await launch(seeds, { SLOTGATE_REFRESH_TIMEOUT_MS: "2000", SLOTGATE_REFRESH_INTERVAL_MS: "3600000" });
    assert.equal(proxy.app.cluster.stats.coveredSlots, 16384);
    assert.equal(proxy.app.cluster.stats.refreshes, 1);
    assert.equal(proxy.app.cluster.stats.refreshFailures, 0);
    await until("the silent seed to have been tried", () => sockets.size > 0);
    // The round's losers are cancelled with it (a cancelled candidate must not start another).
    await until("the silent seed's connection to be closed", () => silentClosed === sockets.size);
    const client = await raw(proxy);
    client.send(resp("SET", "seeds:key", "ok") + resp("GET", "seeds:key"));
    assert.equal(await client.waitFor((text) => text.length >= 12), "+OK\r\n$2\r\nok\r\n");
  });

  it("a primary that stops answering (SIGSTOP): requests get a timeout error; after SIGCONT a fresh connection returns the right values", SLOW, async () => {
    const cluster = await fixture.get();
    const proxy = await launch(cluster.seeds, {
      SLOTGATE_OP_TIMEOUT_MS: "1000",
      // One connection per node, shared by every client: a misdelivered late reply would show.
      SLOTGATE_CONNECTIONS_PER_NODE: "1",
      SLOTGATE_REFRESH_INTERVAL_MS: "1000",
    });
    const victim = (await cluster.primaries())[0]!;
    const topology = proxy.app.cluster.topology;
    const keys = keysWhere(topology, "stop", 30, (port) => port === victim.port);
    const others = keysWhere(topology, "stop-other", 10, (port) => port !== undefined && port !== victim.port);
    const value = (key: string) => `value of ${key}`;
    const a = await connect(proxy);
    const b = await connect(proxy);
    await Promise.all([...keys, ...others].map((key) => a.set(key, value(key))));
    const client = await raw(proxy);

    process.kill(victim.pid, "SIGSTOP");
    stopped.add(victim.pid);
    try {
      client.send(resp("GET", keys[0]!) + resp("GET", keys[1]!) + resp("GET", keys[2]!));
      const fromB = b.get(keys[3]!).then(
        (v) => `answered ${v}`,
        (error: Error) => error.message,
      );
      // The other primaries keep answering meanwhile.
      for (const key of others) assert.equal(await a.get(key), value(key));
      const got = splitFrames(await client.waitFor((text) => splitFrames(text).length >= 3));
      assert.equal(got.length, 3);
      // The oldest request times out; the others on its connection fail with it (which one is
      // oldest depends on the order the two clients' bytes reached the proxy). All were sent:
      // each may have been applied.
      const errors = [...got, `-${await fromB}\r\n`];
      for (const error of errors) {
        assert.match(error, new RegExp(`^-ERR upstream (127\\.0\\.0\\.1:${victim.port} did not answer within 1000 ms|connection to 127\\.0\\.0\\.1:${victim.port} reset after a timed-out request): the command may have been applied\\r\\n$`));
      }
      assert.ok(errors.some((error) => error.includes("did not answer within 1000 ms")), errors.join(""));
    } finally {
      process.kill(victim.pid, "SIGCONT");
      stopped.delete(victim.pid);
    }

    // The node answers again (its stale replies went to the closed connection, not to us).
    await until("the resumed primary to answer through the proxy", async () => (await a.get(keys[0]!).catch(() => null)) === value(keys[0]!));
    client.send(keys.map((key) => resp("GET", key)).join(""));
    const want = keys.map((key) => `$${value(key).length}\r\n${value(key)}\r\n`).join("");
    assert.equal((await client.waitFor((text) => splitFrames(text).length >= 3 + keys.length)).slice(-want.length), want);
    const [fromA, fromBAfter] = await Promise.all([Promise.all(keys.map((key) => a.get(key))), Promise.all([...keys].reverse().map((key) => b.get(key)))]);
    assert.deepEqual(fromA, keys.map(value));
    assert.deepEqual(fromBAfter, [...keys].reverse().map(value));
    await Promise.all(keys.map((key, i) => (i % 2 === 0 ? a : b).set(key, `${value(key)} v2`)));
    assert.deepEqual(await Promise.all(keys.map((key) => b.get(key))), keys.map((key) => `${value(key)} v2`));
    // Whatever the pause did to the cluster, leave it settled for the next test.
    await cluster.waitForStable();
  });

  it("a primary killed under traffic: its in-flight requests get error replies, its slots serve again after failover, other primaries serve throughout", SLOW, async () => {
    const cluster = await fixture.get();
    const proxy = await launch(cluster.seeds, {
      SLOTGATE_REFRESH_INTERVAL_MS: "1000",
      SLOTGATE_REDIRECT_REFRESH_INTERVAL_MS: "200",
      SLOTGATE_REDIRECT_REFRESH_THRESHOLD: "1",
    });
    const victim = (await cluster.primaries())[1]!;
    const address = `127.0.0.1:${victim.port}`;
    const topology = proxy.app.cluster.topology;
    const victimKeys = keysWhere(topology, "kill", 100, (port) => port === victim.port);
    const otherKeys = keysWhere(topology, "kill-other", 100, (port) => port !== undefined && port !== victim.port);
    const known = new Map(victimKeys.map((key) => [key, `before the kill: ${key}`]));
    const writer = await connect(proxy);
    await Promise.all(victimKeys.map((key) => writer.set(key, known.get(key)!)));
    // Only values a replica has acknowledged are sure to survive the failover.
    // Through slotgate: WAIT goes to the node of the writer's last write (the victim) and covers
    // the writer's writes there (a fresh connection of our own to the node would carry none).
    assert.ok(Number(await writer.call("WAIT", "1", "10000")) >= 1, "a replica acknowledged the writes");

    const others = [0, 1].map(async (i) => new Traffic(await connect(proxy), `other${i}`, otherKeys.filter((_, j) => j % 2 === i)));
    const [other0, other1] = await Promise.all(others);
    const victimReader = new Traffic(await connect(proxy), "victim", victimKeys, known, true);
    const traffic = [other0!, other1!];
    await until("traffic to start", () => traffic.every((t) => t.ops > 5) && victimReader.ops > 5);
    assert.deepEqual(victimReader.errors, []);

    // Freeze the primary so requests are certainly in flight on it when it dies.
    const client = await raw(proxy);
    process.kill(victim.pid, "SIGSTOP");
    stopped.add(victim.pid);
    client.send(victimKeys.slice(0, 50).map((key) => resp("GET", key)).join(""));
    await until("50 requests in flight on the frozen primary", () => (proxy.app.cluster.nodes().find((n) => n.address === address)?.pending ?? 0) >= 50);
    await cluster.killNode(victim.port);
    stopped.delete(victim.pid);
    const opsAtKill = traffic.map((t) => t.ops);

    // Exactly one reply per request: 50 errors, then the PONG of a PING sent afterwards.
    const inFlight = splitFrames(await client.waitFor((text) => splitFrames(text).length >= 50));
    assert.equal(inFlight.length, 50);
    for (const reply of inFlight) assert.match(reply, /^-ERR upstream /);
    client.send(resp("PING"));
    const all = splitFrames(await client.waitFor((text) => splitFrames(text).length >= 51));
    assert.equal(all.length, 51);
    assert.equal(all[50], "+PONG\r\n");
    assert.equal(client.closed, false);

    const promoted = await cluster.waitForFailover(victim.port);
    assert.notEqual(promoted.port, victim.port);
    const opsAtFailover = traffic.map((t) => t.ops);
    await until("the failed-over slots to answer through the proxy", async () => (await writer.get(victimKeys[0]!).catch(() => null)) === known.get(victimKeys[0]!));
    assert.deepEqual(await Promise.all(victimKeys.map((key) => writer.get(key))), victimKeys.map((key) => known.get(key)));
    // New keys in the same slots (the key itself as hash tag) are written to the promoted replica.
    const afterKeys = victimKeys.slice(0, 20).map((key) => `{${key}}:after`);
    await Promise.all(afterKeys.map((key) => writer.set(key, `after ${key}`)));
    assert.deepEqual(await Promise.all(afterKeys.map((key) => writer.get(key))), afterKeys.map((key) => `after ${key}`));
    assert.equal(await cluster.command(promoted.port, "GET", afterKeys[0]!), `after ${afterKeys[0]}`);
    const readerOps = victimReader.ops;
    await until("reads of the failed-over keys to go on", () => victimReader.ops > readerOps + 20);
    await Promise.all([...traffic, victimReader].map((t) => t.stop()));

    for (const t of traffic) {
      assert.deepEqual(t.errors, [], `${t.name}: keys on the other primaries never failed`);
      assert.deepEqual(t.mismatches, [], `${t.name}: every read saw the last write`);
    }
    traffic.forEach((t, i) => assert.ok(opsAtFailover[i]! > opsAtKill[i]!, `${t.name} was served between the kill and the failover`));
    // Reads of the victim's keys failed while it was down, but never returned a wrong value.
    assert.deepEqual(victimReader.mismatches, []);
    assert.ok(victimReader.errors.length > 0);
    assert.ok(victimReader.errors.every((e) => /upstream|CLUSTERDOWN|Hash slot not served/.test(e)), victimReader.errors[0]);
  });
});
