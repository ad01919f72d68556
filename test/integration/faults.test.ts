/**
 * A fault stays where it happened, against a real Redis Cluster and real sockets: a stopped
 * primary (SIGSTOP) is suspect after one timeout, and its requests fail at once until a probe is
 * answered; a killed primary is down until it is restarted and a probe gets through; client and
 * upstream sockets carry TCP keepalive; a protocol error closes the connection for good; idle
 * clients are closed, blocked and subscribed ones are not; a node that answers MOVED to random
 * hosts opens at most maxUnknownNodes of them. Each event is logged once.
 * Runs under `npx tsx --test`, `bun test` and `deno test -A`; every wait is a bounded poll.
 */
import assert from "node:assert/strict";
import net from "node:net";
import process from "node:process";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { freePort } from "../../scripts/free-port.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { createLogger } from "../../src/log.ts";
import { RequestParser } from "../../src/resp/request-parser.ts";
import { connectIoredis, launchProxy } from "../support/launch.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp, type RunningProxy } from "../support/proxy.ts";
import { splitFrames } from "../support/exchange.ts";
import { until } from "../support/within.ts";
import { canReadTcpTimers, tcpTimers, type TcpTimer } from "../support/tcp-timers.ts";

const SLOW = { timeout: 120_000 };
const encoder = new TextEncoder();

/** `count` keys `prefix:<i>` whose slot the node on `port` owns (or, with `on` false, does not). */
function keysOf(proxy: RunningProxy, port: number, prefix: string, count: number, on = true): string[] {
  const ranges = proxy.app.cluster.topology.ranges;
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) {
    const key = `${prefix}:${i}`;
    const slot = keySlot(encoder.encode(key));
    const owner = ranges.find((r) => r.start <= slot && slot <= r.end)?.primary.port;
    if ((owner === port) === on && owner !== undefined) keys.push(key);
  }
  return keys;
}

/** The kernel's timers of the matching connections, once none is retransmitting (which hides keepalive). */
async function idleTimers(find: () => TcpTimer[]): Promise<TcpTimer[]> {
  let timers: TcpTimer[] = [];
  await until("the connections to settle in /proc/net/tcp", () => {
    timers = find();
    return timers.length > 0 && timers.every((t) => t.timer !== 1);
  });
  return timers;
}

describe("a fault stays where it happened", () => {
  // No replicas, and a node timeout longer than any test: a stopped or killed primary is never
  // failed over, so the proxy alone decides what its clients see.
  const fixture = lazy(() => startLocalCluster({ replicasPerPrimary: 0, extraConfig: ["cluster-require-full-coverage no", "cluster-node-timeout 60000"] }));
  const proxies: RunningProxy[] = [];
  const clients: Redis[] = [];
  const raws: RawClient[] = [];
  const sockets: net.Socket[] = [];
  const servers: net.Server[] = [];
  const stopped = new Set<number>();

  after(async () => {
    for (const pid of stopped) {
      try {
        process.kill(pid, "SIGCONT");
      } catch {
        // already gone
      }
    }
    for (const raw of raws) raw.close();
    for (const client of clients) client.disconnect();
    await Promise.all(proxies.map((proxy) => proxy.stop().catch(() => {})));
    for (const socket of sockets) socket.destroy();
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    await fixture.stop();
  });

  /** Start slotgate; its log lines (info and up) are collected in `lines`. */
  const launch = (seeds: string[], env: Record<string, string> = {}, lines: string[] = []) =>
    launchProxy(proxies, seeds, env, createLogger("info", (line) => lines.push(line)));
  const connect = (proxy: RunningProxy) => connectIoredis(proxy, clients);
  async function raw(proxy: RunningProxy): Promise<RawClient> {
    const client = await RawClient.connect(proxy.port);
    raws.push(client);
    return client;
  }
  const healthOf = (proxy: RunningProxy, address: string) => proxy.app.cluster.nodes().find((n) => n.address === address)?.health;

  it("client and upstream sockets get TCP keepalive after tcpKeepAliveSeconds; 0 leaves it off", { ...SLOW, skip: !canReadTcpTimers() && "no /proc/net/tcp" }, async () => {
    const cluster = await fixture.get();
    const nodePorts = new Set(cluster.nodes.map((n) => n.port));
    // No periodic refresh: its short-lived control connections carry no keepalive.
    const env = { SLOTGATE_REFRESH_INTERVAL_MS: "3600000" };
    for (const seconds of [60, 0]) {
      const proxy = await launch(cluster.seeds, { ...env, SLOTGATE_TCP_KEEPALIVE_SECONDS: String(seconds) });
      const client = await raw(proxy);
      client.send(resp("SET", "keepalive:a", "1") + resp("SET", "keepalive:b", "1") + resp("SET", "keepalive:c", "1"));
      await client.waitFor((text) => splitFrames(text).length >= 3);
      const clientSide = await idleTimers(() => tcpTimers((local, remote) => local === proxy.port && remote === client.socket.localPort));
      const upstream = await idleTimers(() => tcpTimers((_local, remote) => nodePorts.has(remote)));
      for (const [what, timers] of [["client", clientSide], ["upstream", upstream]] as const) {
        for (const timer of timers) {
          if (seconds === 0) {
            assert.equal(timer.timer, 0, `${what}: no keepalive`);
            continue;
          }
          assert.equal(timer.timer, 2, `${what}: keepalive armed`);
          // Deno cannot set the idle time: it keeps the system's.
          if (proxy.app.scope.runtime.name !== "deno") assert.ok(timer.seconds > 30 && timer.seconds <= 60, `${what}: probes after ${timer.seconds} s`);
        }
      }
      client.close();
      await proxy.stop();
      await until("the proxy's upstream connections to close", () => tcpTimers((_local, remote) => nodePorts.has(remote)).length === 0);
    }
  });

  it("a stopped primary: the timed-out request may have been applied; the node is suspect and its requests fail at once; a probe brings it back after SIGCONT; logged once each way", SLOW, async () => {
    const cluster = await fixture.get();
    const lines: string[] = [];
    const proxy = await launch(cluster.seeds, { SLOTGATE_OP_TIMEOUT_MS: "1000", SLOTGATE_PROBE_BACKOFF_MAX_MS: "200", SLOTGATE_REFRESH_INTERVAL_MS: "3600000" }, lines);
    const victim = (await cluster.primaries())[0]!;
    const address = `127.0.0.1:${victim.port}`;
    const keys = keysOf(proxy, victim.port, "suspect", 10);
    const others = keysOf(proxy, victim.port, "suspect-other", 10, false);
    const value = (key: string) => `value of ${key}`;
    const client = await connect(proxy);
    await Promise.all([...keys, ...others].map((key) => client.set(key, value(key))));
    const stream = await raw(proxy);

    process.kill(victim.pid, "SIGSTOP");
    stopped.add(victim.pid);
    try {
      stream.send(resp("GET", keys[0]!));
      const [timedOut] = splitFrames(await stream.waitFor((text) => splitFrames(text).length >= 1));
      assert.equal(timedOut, `-ERR upstream ${address} did not answer within 1000 ms: the command may have been applied\r\n`);
      assert.equal(healthOf(proxy, address), "suspect");
      // The next requests are not each sent to wait out a timeout of their own.
      stream.send(keys.slice(1).map((key) => resp("GET", key)).join(""));
      const failedFast = splitFrames(await stream.waitFor((text) => splitFrames(text).length >= keys.length)).slice(1);
      assert.deepEqual(failedFast, keys.slice(1).map(() => `-ERR upstream ${address} is suspect (a request got no reply within 1000 ms): command not sent\r\n`));
      for (const key of others) assert.equal(await client.get(key), value(key), "the other primaries serve meanwhile");
    } finally {
      process.kill(victim.pid, "SIGCONT");
      stopped.delete(victim.pid);
    }
    await until("a probe to bring the node back", () => healthOf(proxy, address) === "up");
    assert.deepEqual(await Promise.all(keys.map((key) => client.get(key))), keys.map(value));
    const events = lines.filter((line) => line.includes(`address=${address}`));
    assert.equal(events.length, 2, events.join("\n"));
    assert.match(events[0]!, new RegExp(`^WARN node suspect cluster=default address=127\\.0\\.0\\.1:${victim.port} cause=timeout `));
    assert.match(events[1]!, new RegExp(`^INFO node up cluster=default address=127\\.0\\.0\\.1:${victim.port} was=suspect forMs=\\d+$`));
    await proxy.stop();
  });

  it("a killed primary is down (ECONNREFUSED), its requests fail at once; restarted, it serves as soon as a probe gets through", SLOW, async () => {
    const cluster = await fixture.get();
    const lines: string[] = [];
    const proxy = await launch(cluster.seeds, { SLOTGATE_PROBE_BACKOFF_MAX_MS: "200", SLOTGATE_REFRESH_INTERVAL_MS: "3600000" }, lines);
    const victim = (await cluster.primaries())[1]!;
    const address = `127.0.0.1:${victim.port}`;
    const [key] = keysOf(proxy, victim.port, "down", 1);
    const client = await connect(proxy);
    assert.equal(await client.set(key!, "before"), "OK");
    await cluster.killNode(victim.port);
    await until("the node to be marked down", async () => {
      await client.get(key!).catch(() => null);
      return healthOf(proxy, address) === "down";
    });
    await assert.rejects(client.get(key!), (error: Error) => {
      assert.match(error.message, new RegExp(`^ERR upstream 127\\.0\\.0\\.1:${victim.port} unreachable: `));
      return true;
    });
    await cluster.restartNode(victim.port);
    await until("a probe to bring the node back", () => healthOf(proxy, address) === "up");
    // The restarted node has no persistence: its data is gone, but it serves.
    assert.equal(await client.set(key!, "after"), "OK");
    assert.equal(await client.get(key!), "after");
    const events = lines.filter((line) => line.includes(`address=${address}`));
    assert.equal(events.length, 2, events.join("\n"));
    assert.match(events[0]!, new RegExp(`^WARN node down cluster=default address=127\\.0\\.0\\.1:${victim.port} cause=ECONNREFUSED `));
    assert.match(events[1]!, /^INFO node up .* was=down forMs=\d+$/);
    await proxy.stop();
  });

  it("after a protocol error the connection is closed for good, though the client keeps its side open: it is no longer counted", SLOW, async () => {
    const cluster = await fixture.get();
    const lines: string[] = [];
    const proxy = await launch(cluster.seeds, {}, lines);
    const socket = net.connect({ host: "127.0.0.1", port: proxy.port, allowHalfOpen: true });
    sockets.push(socket);
    let received = "";
    let ended = false;
    let closed = false;
    socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
    socket.on("end", () => (ended = true));
    socket.on("close", () => (closed = true));
    socket.on("error", () => {});
    await until("the client to be counted", () => proxy.app.server.connectedClients === 1);
    socket.write("*1\r\n$abc\r\n");
    await until("the error and the proxy's FIN", () => ended);
    assert.equal(received, "-ERR Protocol error: invalid bulk length\r\n");
    assert.equal(closed, false, "our side is still open");
    await until("the proxy to count the client gone", () => proxy.app.server.connectedClients === 0);
    // Nothing listens on the proxy's side any more: our bytes are answered with a reset.
    await until("our socket to be reset", () => {
      if (!closed) socket.write("PING\r\n");
      return closed;
    });
    assert.ok(lines.some((line) => /^INFO client disconnected id=\d+ addr=127\.0\.0\.1:\d+ reason="protocol error" error="invalid bulk length"$/.test(line)), lines.join("\n"));
    await proxy.stop();
  });

  it("clientIdleTimeoutSeconds closes an idle client; a blocked client gets its reply first and a subscriber stays", SLOW, async () => {
    const cluster = await fixture.get();
    const lines: string[] = [];
    const proxy = await launch(cluster.seeds, { SLOTGATE_CLIENT_IDLE_TIMEOUT_SECONDS: "1" }, lines);
    const idle = await raw(proxy);
    const blocked = await raw(proxy);
    const subscriber = await raw(proxy);
    idle.send(resp("PING"));
    blocked.send(resp("BLPOP", "idle:empty", "3"));
    subscriber.send(resp("SUBSCRIBE", "idle:channel"));
    await subscriber.waitFor((text) => splitFrames(text).length >= 1);
    assert.equal(await idle.waitFor((text) => text === "+PONG\r\n"), "+PONG\r\n");
    await idle.waitClosed();
    // BLPOP times out after 3 s, well past the idle limit: it was not idle while blocked.
    assert.equal(await blocked.waitFor((text) => text.length > 0), "*-1\r\n");
    await blocked.waitClosed();
    assert.equal(subscriber.closed, false, "a subscriber is never idle");
    const publisher = await connect(proxy);
    await publisher.publish("idle:channel", "still here");
    await subscriber.waitFor((text) => text.includes("still here"));
    await proxy.stop();
    // Two idle closes: the first logged at once, the second (within the log's repeat window)
    // counted and logged as `repeated=1` when the proxy stops.
    const idleLines = lines.filter((line) => line.includes("reason=idle limit=clientIdleTimeoutSeconds seconds=1"));
    assert.equal(idleLines.length, 2, lines.join("\n"));
    assert.equal(idleLines.filter((line) => / repeated=1\b/.test(line)).length, 1, idleLines.join("\n"));
  });

  it("a node answering MOVED to random hosts: at most maxUnknownNodes of them get connections; beyond, the client is told its command was not applied", SLOW, async () => {
    // A fake node (real sockets, no Redis can be made to do this): it owns every slot, and
    // answers every GET with a MOVED to a random loopback host on a port nothing listens on.
    const closedPort = await freePort();
    let port = 0;
    const fake = net.createServer((socket) => {
      sockets.push(socket);
      socket.on("error", () => {});
      const parser = new RequestParser((args) => {
        const name = new TextDecoder().decode(args[0]!).toUpperCase();
        if (name === "CLUSTER") socket.write(`*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:${port}\r\n`);
        else if (name === "GET") {
          const host = `127.${1 + Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
          socket.write(`-MOVED ${keySlot(args[1]!)} ${host}:${closedPort}\r\n`);
        } else if (name === "COMMAND") socket.write("*0\r\n");
        else socket.write("+OK\r\n");
      });
      socket.on("data", (chunk: Buffer) => parser.push(new Uint8Array(chunk)));
    });
    servers.push(fake);
    await new Promise<void>((resolve) => fake.listen({ host: "127.0.0.1", port: 0 }, () => resolve()));
    port = (fake.address() as net.AddressInfo).port;
    const lines: string[] = [];
    // No refresh during the flood: the count of nodes outside the map starts over only with a new map.
    const proxy = await launch([`127.0.0.1:${port}`], { SLOTGATE_REFRESH_INTERVAL_MS: "3600000", SLOTGATE_REDIRECT_REFRESH_INTERVAL_MS: "3600000" }, lines);
    const client = await raw(proxy);
    const count = 3000;
    client.send(Array.from({ length: count }, (_, i) => resp("GET", `flood:${i}`)).join(""));
    const replies = splitFrames(await client.waitFor((text) => splitFrames(text).length >= count, 60_000));
    assert.equal(replies.length, count);
    const notFollowed = replies.filter((r) => /^-ERR MOVED to 127\.\d+\.\d+\.\d+:\d+ not followed: the node is outside the slot map and maxUnknownNodes \(100\) is reached; the command was not applied, the slot map is being refreshed\r\n$/.test(r));
    const unreachable = replies.filter((r) => /^-ERR upstream 127\.\d+\.\d+\.\d+:\d+ unreachable: /.test(r));
    assert.equal(notFollowed.length + unreachable.length, count, replies.find((r) => !notFollowed.includes(r) && !unreachable.includes(r)));
    assert.ok(notFollowed.length > 0);
    const nodeScopes = proxy.app.cluster.scope.inspect().children.filter((c) => /\/node [^/]+$/.test(c.path));
    assert.ok(nodeScopes.length <= 1 + 100, `${nodeScopes.length} node scopes`);
    assert.equal(proxy.app.cluster.status().unknownNodes.open, nodeScopes.length - 1);
    assert.equal(proxy.app.cluster.stats.unknownRedirectsRefused, notFollowed.length);
    assert.equal(lines.filter((line) => line.startsWith("WARN redirect outside the slot map refused cluster=default ")).length, 1);
    await proxy.stop();
  });
});
