/**
 * Memory is bounded, per client and in total, against a real Redis Cluster, with limits small
 * enough for a test (a few MiB): the query buffer limit cuts off an unfinished request while it
 * is read, the clients' budget disconnects the client holding the most, a client that does not
 * read stops being served, an upstream node that does not read gets its requests refused past
 * its queue limit, and a split command run a chunk at a time still answers exactly as Redis
 * would. A well-behaved client is served throughout. Runs under Node, Bun and Deno.
 */
import assert from "node:assert/strict";
import net from "node:net";
import process from "node:process";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp, startProxy, type RunningProxy } from "../support/proxy.ts";
import { sleep, until } from "../support/within.ts";

const SLOW = { timeout: 180_000 };
const MIB = 1024 * 1024;
const KIB = 1024;

describe("memory bounded per client and in total", () => {
  // A node stopped for a few seconds must not be failed by its peers: a long node timeout.
  const cluster = lazy(() => startLocalCluster({ replicasPerPrimary: 0, extraConfig: ["cluster-node-timeout 60000"] }));
  const proxies: RunningProxy[] = [];
  const clients: Redis[] = [];
  const raws: RawClient[] = [];
  const sockets: net.Socket[] = [];
  const stopped: number[] = [];

  after(async () => {
    for (const pid of stopped) process.kill(pid, "SIGCONT");
    for (const socket of sockets) socket.destroy();
    for (const raw of raws) raw.close();
    for (const client of clients) client.disconnect();
    await Promise.all(proxies.map((proxy) => proxy.stop()));
    await cluster.stop();
  });

  /** A proxy with these limits; every log line goes to `logs`. */
  async function proxy(env: Record<string, string>, logs: string[] = []): Promise<RunningProxy> {
    const started = await startProxy((await cluster.get()).seeds, { SLOTGATE_SHUTDOWN_TIMEOUT_MS: "1000", ...env }, {}, (line) => logs.push(line));
    proxies.push(started);
    return started;
  }

  async function ioredis(port: number): Promise<Redis> {
    const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 });
    client.on("error", () => {});
    clients.push(client);
    await client.connect();
    return client;
  }

  async function raw(port: number): Promise<{ client: RawClient; id: number }> {
    const client = await RawClient.connect(port);
    raws.push(client);
    client.send(resp("CLIENT", "ID"));
    const text = await client.waitFor((t) => t.endsWith("\r\n"));
    client.received = Buffer.alloc(0);
    return { client, id: Number(text.slice(1, -2)) };
  }

  /** GETs one after another until stopped; what went wrong. */
  function steadyGets(client: Redis, key: string, value: string) {
    const errors: string[] = [];
    let served = 0;
    let running = true;
    const done = (async () => {
      while (running) {
        try {
          const got = await client.get(key);
          if (got !== value) errors.push(`GET ${key} returned ${JSON.stringify(got)}`);
          served++;
        } catch (error) {
          errors.push((error as Error).message);
          await sleep(20);
        }
      }
    })();
    return {
      errors,
      get served() {
        return served;
      },
      async stop() {
        running = false;
        await done;
      },
    };
  }

  it("a query buffer over SLOTGATE_MAX_QUERY_BUFFER_BYTES gets Redis's protocol error and a close while it is still being read; others are served", SLOW, async () => {
    const logs: string[] = [];
    const { app, port } = await proxy({ SLOTGATE_MAX_QUERY_BUFFER_BYTES: String(4 * MIB) }, logs);
    const other = await ioredis(port);
    await other.set("qb:other", "fine");
    const { client, id } = await raw(port);
    const value = "q".repeat(1.5 * MIB);
    // MSET of three 1.5 MiB values, each far under maxBulkBytes (512 MiB): 4.5 MiB in all.
    client.send(resp("PING") + `*7\r\n$4\r\nMSET\r\n$1\r\na\r\n$${value.length}\r\n${value}\r\n$1\r\nb\r\n$${value.length}\r\n${value}\r\n$1\r\nc\r\n$${value.length}\r\n`);
    client.send(value);
    await client.waitClosed();
    assert.equal(client.received.toString("latin1"), `+PONG\r\n-ERR Protocol error: query buffer limit reached (maxQueryBufferBytes ${4 * MIB})\r\n`);
    assert.ok(logs.some((line) => line.startsWith("WARN Closing client that reached max query buffer length") && line.includes(`id=${id}`) && line.includes("limit=maxQueryBufferBytes")), logs.join("\n"));
    assert.equal(await other.get("qb:other"), "fine");
    await until("the request's bytes to be released", () => app.server.memory.totalBytes < 64 * KIB);
    assert.equal(await other.exists("a", "b", "c"), 0, "nothing of the cut request ran");
  });

  it("past SLOTGATE_MAX_CLIENTS_MEMORY_BYTES the client holding the most is disconnected first, logged with the limit's name; a fifth client's GETs are answered throughout", SLOW, async () => {
    const logs: string[] = [];
    const { app, port } = await proxy({ SLOTGATE_MAX_CLIENTS_MEMORY_BYTES: String(8 * MIB) }, logs);
    const fifth = await ioredis(port);
    await fifth.set("budget:fifth", "fine");
    const gets = steadyGets(fifth, "budget:fifth", "fine");
    const unfinished = (bytes: number) => `*3\r\n$3\r\nSET\r\n$8\r\nbudget:k\r\n$${bytes + 10}\r\n${"u".repeat(bytes)}`;
    try {
      const a = await raw(port);
      const b = await raw(port);
      const c = await raw(port);
      a.client.send(unfinished(4 * MIB));
      await until("A's 4 MiB to be held", () => app.server.memory.totalBytes >= 4 * MIB);
      b.client.send(unfinished(3 * MIB));
      await until("B's 3 MiB to be held", () => app.server.memory.totalBytes >= 7 * MIB);
      assert.equal(app.server.memory.evicted, 0);
      const before = gets.served;
      // C tips the total over 8 MiB; A holds the most.
      c.client.send(unfinished(2 * MIB));
      await a.client.waitClosed();
      await until("C's 2 MiB to be held", () => app.server.memory.totalBytes >= 5 * MIB);
      assert.equal(app.server.memory.evicted, 1);
      assert.match(await fifth.info("proxy"), /slotgate_evicted_clients:1\r\n/);
      assert.ok(!b.client.closed && !c.client.closed, "B and C are still connected");
      const line = logs.find((l) => l.includes("maxmemory-clients"));
      assert.ok(line?.startsWith(`WARN client disconnected: maxmemory-clients reached limit=maxClientsMemoryBytes id=${a.id} bytes=`), logs.join("\n"));
      // B and C finish their requests and are answered.
      b.client.send("0123456789\r\n");
      c.client.send("0123456789\r\n");
      await b.client.waitFor((t) => t === "+OK\r\n");
      await c.client.waitFor((t) => t === "+OK\r\n");
      await until("the fifth client to be served after", () => gets.served > before + 10);
    } finally {
      await gets.stop();
    }
    assert.deepEqual(gets.errors, []);
    assert.equal((await fifth.strlen("budget:k")) >= 2 * MIB, true);
  });

  it("a client that pipelines big GETs and does not read stops being served once it owes SLOTGATE_MAX_CLIENT_OWED_BYTES; it gets everything, in order, once it reads", SLOW, async () => {
    const c = await cluster.get();
    const { port } = await proxy({ SLOTGATE_MAX_CLIENT_OWED_BYTES: String(1 * MIB) });
    const writer = await ioredis(port);
    const value = "o".repeat(256 * KIB);
    await writer.set("owed:big", value);
    const owner = await c.ownerOfSlot(keySlot(Buffer.from("owed:big")));
    const calls = async () => Number(/cmdstat_get:calls=(\d+)/.exec(await c.command(owner.port, "INFO", "commandstats"))?.[1] ?? 0);
    const before = await calls();
    const flood = net.connect({ host: "127.0.0.1", port });
    sockets.push(flood);
    flood.on("error", () => {});
    await new Promise<void>((resolve) => flood.once("connect", () => resolve()));
    flood.pause();
    flood.write(resp("GET", "owed:big").repeat(400));
    // Wait until nothing more reaches Redis for a while.
    let seen = -1;
    for (let stable = 0; stable < 5; ) {
      await sleep(200);
      const now = await calls();
      stable = now === seen ? stable + 1 : 0;
      seen = now;
    }
    const sent = seen - before;
    assert.ok(sent < 200, `${sent} of 400 GETs reached Redis while the client read nothing`);
    // It reads: every reply comes, in order.
    const reply = Buffer.from(`$${value.length}\r\n${value}\r\n`);
    const chunks: Buffer[] = [];
    let received = 0;
    flood.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
    });
    flood.resume();
    await until("all 400 replies", () => received >= 400 * reply.length, 120_000);
    const all = Buffer.concat(chunks);
    assert.equal(all.length, 400 * reply.length);
    for (let i = 0; i < 400; i++) assert.ok(all.subarray(i * reply.length, (i + 1) * reply.length).equals(reply), `reply ${i}`);
    assert.equal((await calls()) - before, 400);
  });

  it("a node that stops reading gets no more than SLOTGATE_MAX_UPSTREAM_QUEUE_BYTES queued for it: past that its requests fail at once with an error naming the limit, and the rest are answered when it is back", SLOW, async () => {
    const c = await cluster.get();
    const { app, port } = await proxy({ SLOTGATE_MAX_UPSTREAM_QUEUE_BYTES: String(1 * MIB), SLOTGATE_CONNECTIONS_PER_NODE: "1", SLOTGATE_OP_TIMEOUT_MS: "60000" });
    const other = await ioredis(port);
    const owner = await c.ownerOfSlot(keySlot(Buffer.from("bp")));
    const pending = () => app.cluster.nodes().find((n) => n.address.endsWith(`:${owner.port}`))?.pending ?? 0;
    const value = "p".repeat(256 * KIB);
    const writers = await Promise.all([0, 1, 2, 3].map(() => raw(port)));
    process.kill(owner.pid, "SIGSTOP");
    stopped.push(owner.pid);
    let most = 0;
    try {
      for (const [w, { client }] of writers.entries()) client.send(Array.from({ length: 40 }, (_, i) => resp("SET", `{bp}:${w}:${i}`, value)).join(""));
      let seen = -1;
      for (let stable = 0; stable < 5; ) {
        await sleep(200);
        const now = pending();
        most = Math.max(most, now);
        stable = now === seen ? stable + 1 : 0;
        seen = now;
      }
    } finally {
      process.kill(owner.pid, "SIGCONT");
      stopped.splice(stopped.indexOf(owner.pid), 1);
    }
    // Each writer's 40 replies, in order: +OK for what reached the node, the error for the rest.
    const full = `-ERR upstream 127.0.0.1:${owner.port} is not keeping up: its connection's send queue is full (maxUpstreamQueueBytes ${MIB})\r\n`;
    let refused = 0;
    for (const { client } of writers) {
      const text = await client.waitFor((t) => t.split("\r\n").length > 40, 60_000);
      const lines = text.split("\r\n").slice(0, 40);
      for (const line of lines) {
        if (line === "+OK") continue;
        assert.equal(`${line}\r\n`, full);
        refused++;
      }
    }
    assert.ok(refused > 0, "some requests were refused");
    assert.ok(most < 100, `at most ${most} of 160 SETs were held for the stopped node`);
    assert.equal(await other.strlen("{bp}:0:0"), value.length);
    assert.equal(await other.set("{bp}:after", "1"), "OK");
  });

  it("MGET, MSET, EXISTS and DEL over thousands of keys, run a few parts at a time (SLOTGATE_SPLIT_CHUNK_PARTS), answer exactly as Redis would", SLOW, async () => {
    const { port } = await proxy({ SLOTGATE_SPLIT_CHUNK_PARTS: "50" });
    const client = await ioredis(port);
    const keys = Array.from({ length: 3000 }, (_, i) => `chunked:${i}`);
    assert.equal(await client.mset(...keys.flatMap((key, i) => [key, `value ${i}`])), "OK");
    await client.hset("chunked:hash", "f", "v");
    const values = await client.mget(...keys, "chunked:missing", "chunked:hash");
    assert.deepEqual(values, [...keys.map((_, i) => `value ${i}`), null, null]);
    assert.equal(await client.exists(...keys, "chunked:missing"), 3000);
    assert.equal(await client.del(...keys.slice(0, 2500), "chunked:missing"), 2500);
    assert.equal(await client.exists(...keys), 500);
  });
});
