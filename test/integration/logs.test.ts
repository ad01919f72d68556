/**
 * What slotgate logs in front of a real Redis Cluster, read back from the lines the process
 * logger writes (the format and clock `main` uses): every line carries its time and level; each
 * event is logged once with its cause and the node it concerns — listening, cluster ready, a
 * killed node down and back up, a migrated slot (how many slots moved), a failover, a refused
 * admin change — and events that repeat (a failing discovery, clients over a limit) are counted
 * into one line a window rather than logged each time. The entry point writes JSON lines when
 * SLOTGATE_LOG_FORMAT=json.
 * Runs under `npx tsx --test`, `bun test` and `deno test -A`; every wait is a bounded poll.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import net from "node:net";
import process from "node:process";
import { after, describe, it } from "node:test";
import { currentRuntime } from "../../adapters/current.ts";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { freePort } from "../../scripts/free-port.ts";
import { processLogger, startSlotgate, type Slotgate } from "../../src/app.ts";
import { loadConfig } from "../../src/config/load.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { REPEAT_WINDOW_MS } from "../../src/log.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp } from "../support/proxy.ts";
import { entryCommand } from "../support/processes.ts";
import { until, within } from "../support/within.ts";

const SLOW = { timeout: 180_000 };
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const encoder = new TextEncoder();

type LogRecord = { time: string; level: string; msg: string; [field: string]: unknown };

interface Logged {
  app: Slotgate;
  /** Every line, as written. */
  lines: string[];
  /** The JSON lines, parsed (all of them, unless the format was changed). */
  records(): LogRecord[];
  /** The records of one message. */
  events(msg: string): LogRecord[];
}

describe("log lines of a real slotgate", () => {
  // Replicas for a failover; a node timeout longer than any test, so a killed primary is never
  // failed over on its own (only CLUSTER FAILOVER promotes a replica here).
  const fixture = lazy(() => startLocalCluster({ extraConfig: ["cluster-require-full-coverage no", "cluster-node-timeout 60000"] }));
  const apps: Slotgate[] = [];
  const raws: RawClient[] = [];
  after(async () => {
    for (const raw of raws) raw.close();
    await Promise.all(apps.map((app) => app.close().catch(() => {})));
    await fixture.stop();
  });

  async function launch(seeds: string[], env: { [name: string]: string } = {}, waitReady = true): Promise<Logged> {
    const runtime = await currentRuntime();
    const config = loadConfig({
      env: {
        SLOTGATE_SEEDS: seeds.join(","),
        SLOTGATE_LISTEN: "127.0.0.1:0",
        SLOTGATE_ADMIN_LISTEN: "127.0.0.1:0",
        SLOTGATE_LOG_LEVEL: "info",
        SLOTGATE_LOG_FORMAT: "json",
        SLOTGATE_SHUTDOWN_TIMEOUT_MS: "1000",
        ...env,
      },
      readFile: () => assert.fail("no config file in tests"),
    });
    const lines: string[] = [];
    const app = await startSlotgate(runtime, config, processLogger(runtime, config, (line) => lines.push(line)));
    apps.push(app);
    if (waitReady) await until("the proxy to learn a complete slot map", () => app.cluster.isReady);
    const records = () => lines.filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as LogRecord);
    return { app, lines, records, events: (msg) => records().filter((r) => r.msg === msg) };
  }

  async function raw(port: number): Promise<RawClient> {
    const client = await RawClient.connect(port);
    raws.push(client);
    return client;
  }

  /** A key whose slot the node on `port` owns in slotgate's map. */
  function keyOn(app: Slotgate, port: number, prefix: string): string {
    const ranges = app.cluster.topology.ranges;
    for (let i = 0; ; i++) {
      const key = `${prefix}:${i}`;
      const slot = keySlot(encoder.encode(key));
      if (ranges.find((r) => r.start <= slot && slot <= r.end)?.primary.port === port) return key;
    }
  }

  it("every line is one JSON object with time, level and msg; listening and cluster ready are logged once", SLOW, async () => {
    const cluster = await fixture.get();
    const { app, lines, records, events } = await launch(cluster.seeds);
    await until("the readiness line", () => events("cluster ready").length > 0);
    for (const record of records()) {
      assert.match(record.time, ISO_TIME, JSON.stringify(record));
      assert.ok(["debug", "info", "warn", "error"].includes(record.level), JSON.stringify(record));
      assert.deepEqual(Object.keys(record).slice(0, 3), ["time", "level", "msg"]);
    }
    assert.equal(records().length, lines.length, "every line is JSON");
    const [listening, ...more] = events("slotgate listening");
    assert.equal(more.length, 0);
    assert.equal(listening!.address, `127.0.0.1:${app.port}`);
    assert.equal(listening!.admin, `http://127.0.0.1:${app.admin!.port}`);
    assert.deepEqual(events("cluster ready").map((r) => [r.level, r.cluster, r.primaries]), [["info", "default", 3]]);
    assert.equal(events("slot map applied").length, 1);
  });

  it("a killed primary: one 'node down' line naming it and why; restarted, one 'node up'", SLOW, async () => {
    const cluster = await fixture.get();
    const { app, events } = await launch(cluster.seeds, { SLOTGATE_PROBE_BACKOFF_MAX_MS: "200", SLOTGATE_REFRESH_INTERVAL_MS: "3600000" });
    const victim = (await cluster.primaries())[1]!;
    const address = `127.0.0.1:${victim.port}`;
    const key = keyOn(app, victim.port, "logs-down");
    const client = await raw(app.port);
    await cluster.killNode(victim.port);
    // Requests keep failing while it is down: still one line.
    await until("the node to be marked down", async () => {
      client.received = Buffer.alloc(0);
      client.send(resp("GET", key));
      await client.waitFor((text) => text.endsWith("\r\n"));
      return app.cluster.nodes().find((n) => n.address === address)?.health === "down";
    });
    for (let i = 0; i < 20; i++) {
      client.received = Buffer.alloc(0);
      client.send(resp("GET", key));
      assert.match(await client.waitFor((text) => text.endsWith("\r\n")), /^-ERR upstream .* unreachable/);
    }
    await cluster.restartNode(victim.port);
    await until("the node to be back up", () => events("node up").some((r) => r.address === address));
    const down = events("node down").filter((r) => r.address === address);
    assert.equal(down.length, 1, JSON.stringify(down));
    assert.equal(down[0]!.level, "warn");
    assert.equal(down[0]!.cluster, "default");
    assert.equal(down[0]!.cause, "ECONNREFUSED");
    const up = events("node up").filter((r) => r.address === address);
    assert.equal(up.length, 1);
    assert.equal(up[0]!.was, "down");
  });

  it("a migrated slot: one 'slot map changed' line saying one slot moved", SLOW, async () => {
    const cluster = await fixture.get();
    const { app, events } = await launch(cluster.seeds, { SLOTGATE_REFRESH_INTERVAL_MS: "200" });
    const [source, target] = await cluster.primaries();
    const slot = keySlot(encoder.encode(keyOn(app, source!.port, "logs-migrate")));
    await cluster.migrateSlot(slot, source!.port, target!.port);
    await until("the new map to be applied", () => app.cluster.topology.ranges.some((r) => r.start <= slot && slot <= r.end && r.primary.port === target!.port));
    await until("its line", () => events("slot map changed").length > 0);
    const changed = events("slot map changed");
    assert.equal(changed.length, 1, JSON.stringify(changed));
    assert.equal(changed[0]!.moved, 1);
    assert.equal(changed[0]!.primaries, 3);
    assert.equal(changed[0]!.previousPrimaries, 3);
    assert.equal(changed[0]!.covered, 16384);
    assert.equal(events("failover seen").length, 0);
    // Put it back for the tests that follow (they count primaries by their slots).
    await cluster.migrateSlot(slot, target!.port, source!.port);
  });

  it("a replica promoted by CLUSTER FAILOVER: one 'failover seen' line naming both nodes and the slots", SLOW, async () => {
    const cluster = await fixture.get();
    await cluster.waitForStable();
    const replica = (await cluster.replicas())[0]!;
    // ROLE on a replica: ["slave", primary host, primary port, ...].
    const primaryPort = Number(((await cluster.reply(replica.port, "ROLE")) as unknown[])[2]);
    const { app, events } = await launch(cluster.seeds, { SLOTGATE_REFRESH_INTERVAL_MS: "200" });
    // A failover is seen against the map before it: one that names the replica.
    await until("slotgate's map to name the replica", () =>
      app.cluster.topology.ranges.some((r) => r.primary.port === primaryPort && r.replicas.some((n) => n.port === replica.port)),
    );
    const slots = app.cluster.topology.ranges.filter((r) => r.primary.port === primaryPort).reduce((n, r) => n + r.end - r.start + 1, 0);
    assert.ok(slots > 0);
    await cluster.command(replica.port, "CLUSTER", "FAILOVER");
    await until("the replica to be a primary", async () => (await cluster.primaries()).some((p) => p.port === replica.port));
    await cluster.waitForStable();
    await until("the failover's line", () => events("failover seen").length > 0);
    const [seen, ...more] = events("failover seen");
    assert.equal(more.length, 0);
    assert.equal(seen!.level, "warn");
    assert.equal(seen!.primary, `127.0.0.1:${replica.port}`);
    assert.equal(seen!.was, `127.0.0.1:${primaryPort}`);
    assert.equal(seen!.slots, slots);
    assert.equal(events("slot map changed")[0]!.moved, slots);
  });

  it("a discovery that keeps failing: the first failure at once, then one line counting the repeats", SLOW, async () => {
    const port = await freePort();
    const { app, lines } = await launch([`127.0.0.1:${port}`], { SLOTGATE_LOG_FORMAT: "text", SLOTGATE_REFRESH_INTERVAL_MS: "100" }, false);
    const failed = () => lines.filter((line) => line.includes(" WARN refresh failed "));
    await until("the repeats to be counted into one line", () => failed().some((line) => / repeated=\d+$/.test(line)), REPEAT_WINDOW_MS * 6);
    const [first, second] = failed();
    assert.match(first!, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z WARN refresh failed cluster=default cause=ECONNREFUSED /);
    assert.ok(!first!.includes("repeated="));
    const repeated = Number(/ repeated=(\d+)$/.exec(second!)![1]);
    assert.ok(repeated >= 2, second);
    assert.ok(app.cluster.stats.refreshFailures >= repeated + 1, `${app.cluster.stats.refreshFailures} failures, ${repeated + 1} accounted for`);
    assert.equal(app.cluster.isReady, false);
  });

  it("clients over a limit: one line with the limit and the client's address, the others counted", SLOW, async () => {
    const cluster = await fixture.get();
    const { app, events } = await launch(cluster.seeds, { SLOTGATE_MAX_CLIENTS: "1", SLOTGATE_MAX_QUERY_BUFFER_BYTES: String(1 << 20) });
    const first = await raw(app.port);
    first.send(resp("PING"));
    await first.waitFor((text) => text === "+PONG\r\n");
    const REFUSED = 5;
    for (let i = 0; i < REFUSED; i++) {
      const client = await raw(app.port);
      assert.equal(await client.waitFor((text) => text.endsWith("\r\n")), "-ERR max number of clients reached\r\n");
    }
    // A query buffer over its limit, from the one admitted client (a limit of its own).
    first.received = Buffer.alloc(0);
    const firstAddr = `127.0.0.1:${first.socket.localPort}`;
    const value = "q".repeat(1 << 19);
    first.send(`*7\r\n$4\r\nMSET\r\n$1\r\na\r\n$${value.length}\r\n${value}\r\n$1\r\nb\r\n$${value.length}\r\n${value}\r\n$1\r\nc\r\n$${value.length}\r\n${value}`);
    await first.waitClosed();
    const refusals = () => events("client refused");
    // A line stands for one refusal, or for the `repeated` ones counted since the last line.
    const accounted = () => refusals().reduce((n, r) => n + (typeof r.repeated === "number" ? r.repeated : 1), 0);
    await until("every refusal to be accounted for", () => accounted() >= REFUSED, REPEAT_WINDOW_MS * 6).catch((error) => assert.fail(`${error}: ${JSON.stringify(refusals())}`));
    assert.equal(accounted(), REFUSED, JSON.stringify(refusals()));
    const lines = refusals();
    assert.ok(lines.length < REFUSED, JSON.stringify(lines));
    assert.equal(lines[0]!.limit, "maxClients");
    assert.equal(lines[0]!.level, "warn");
    assert.match(String(lines[0]!.addr), /^127\.0\.0\.1:\d+$/);
    assert.equal(lines[0]!.repeated, undefined);
    const [query, ...more] = events("Closing client that reached max query buffer length");
    assert.equal(more.length, 0);
    assert.equal(query!.limit, "maxQueryBufferBytes");
    assert.equal(query!.addr, firstAddr);
  });

  it("a refused admin change is logged with why; a live logFormat change applies from the next line", SLOW, async () => {
    const cluster = await fixture.get();
    const { app, lines, events } = await launch(cluster.seeds);
    const base = `http://127.0.0.1:${app.admin!.port}`;
    const put = async (document: unknown) => (await within(fetch(`${base}/config`, { method: "PUT", body: JSON.stringify(document) }), "PUT /config")).status;
    const current = await (await within(fetch(`${base}/config`), "GET /config")).json();
    assert.equal(await put({ ...current, listen: "127.0.0.1:1" }), 409);
    const [refused, ...more] = events("config change refused");
    assert.equal(more.length, 0);
    assert.equal(refused!.request, "PUT /config");
    assert.equal(refused!.status, 409);
    assert.match(String(refused!.problems), /listen/);
    assert.equal(await put({ ...current, logFormat: "text" }), 200);
    await until("the change's own line", () => lines.some((line) => line.includes("updated logFormat")));
    assert.match(lines.find((line) => line.includes("updated logFormat"))!, /^\S+Z INFO updated logFormat \(json → text\)$/);
  });

  it("the entry point writes JSON lines to stderr with SLOTGATE_LOG_FORMAT=json", SLOW, async () => {
    const cluster = await fixture.get();
    const port = await freePort();
    const [bin, ...rest] = entryCommand();
    const child = spawn(bin!, rest, {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", SLOTGATE_SEEDS: cluster.seeds.join(","), SLOTGATE_LISTEN: `127.0.0.1:${port}`, SLOTGATE_ADMIN_LISTEN: "off", SLOTGATE_LOG_FORMAT: "json" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
    try {
      await until(`the ready line (${stderr})`, () => stderr.includes('"msg":"cluster ready"'));
      const records = stderr.trim().split("\n").map((line) => JSON.parse(line) as LogRecord);
      assert.ok(records.every((r) => ISO_TIME.test(r.time) && typeof r.level === "string"), stderr);
      assert.equal(records.find((r) => r.msg === "slotgate listening")?.address, `127.0.0.1:${port}`);
      const socket = net.connect({ host: "127.0.0.1", port });
      await new Promise<void>((resolve, reject) => socket.on("connect", resolve).on("error", reject));
      socket.destroy();
    } finally {
      child.kill("SIGTERM");
      await within(exited, "the entry point to exit");
    }
  });
});
