/**
 * `SLOTGATE_WORKERS=2` through the entry point of the runtime running this test, as a real
 * process in front of a real cluster: connections spread over both workers, each serving keys;
 * the admin API and the config file change every worker before they answer; `/metrics` sums
 * them; SIGTERM stops them all (exit 0, port closed); a worker that dies takes the group down.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { detectRuntime } from "../../adapters/current.ts";
import { startEntry, isAlive, type Entry } from "../support/processes.ts";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { freePort } from "../../scripts/free-port.ts";
import { RespConn, sleep } from "../../scripts/proxy-process.ts";
import { lazy } from "../support/lazy.ts";

const SLOW = { timeout: 180_000 };
const CONNECTIONS = 16;

interface Running {
  entry: Entry;
  port: number;
  admin: string;
  conns: RespConn[];
  stop(): Promise<void>;
}

/** Poll `check` until it returns true (or fail after `ms`, with what the process said). */
async function until(what: string, check: () => Promise<boolean>, entry: Entry, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms\n--- output ---\n${entry.output()}`);
    await sleep(100);
  }
}

/** The worker a connection is served by, from INFO. */
async function workerOf(conn: RespConn): Promise<number> {
  const info = await conn.command("INFO");
  const match = /slotgate_worker:(\d+)/.exec(info);
  assert.ok(match, info);
  return Number(match[1]);
}

async function metricsText(admin: string): Promise<string> {
  const response = await fetch(`${admin}/metrics`);
  assert.equal(response.status, 200);
  return response.text();
}

/** One sample's value from an exposition text; undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe(`SLOTGATE_WORKERS=2 on ${detectRuntime()}`, () => {
  const cluster = lazy(() => startLocalCluster());
  const dir = mkdtempSync(join(tmpdir(), "slotgate-workers-"));
  after(async () => {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(env: Record<string, string> = {}): Promise<Running> {
    const c = await cluster.get();
    const port = await freePort();
    const adminPort = await freePort();
    const entry = startEntry([], {
      SLOTGATE_WORKERS: "2",
      SLOTGATE_SEEDS: c.seeds.join(","),
      SLOTGATE_LISTEN: `127.0.0.1:${port}`,
      SLOTGATE_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
      SLOTGATE_LOG_LEVEL: "info",
      ...env,
    });
    const admin = `http://127.0.0.1:${adminPort}`;
    const conns: RespConn[] = [];
    const running: Running = {
      entry,
      port,
      admin,
      conns,
      async stop() {
        for (const conn of conns) conn.close();
        if (entry.child.exitCode === null) {
          entry.signal("SIGTERM");
          const exit = await entry.done;
          assert.equal(exit.code, 0, entry.output());
        }
      },
    };
    try {
      await until("every worker serves", async () => /slotgate workers serving/.test(entry.output()), entry);
      for (let i = 0; i < CONNECTIONS; i++) conns.push(await RespConn.open(port));
    } catch (error) {
      if (entry.child.exitCode === null) entry.signal("SIGKILL");
      throw error;
    }
    return running;
  }

  it("spreads clients over both workers, each serving the cluster's keys", SLOW, async () => {
    const proxy = await start();
    try {
      const workers = new Set<number>();
      for (const [i, conn] of proxy.conns.entries()) {
        workers.add(await workerOf(conn));
        // The worker's first slot map may still be on its way: retry until the SET lands.
        await until(`SET through connection ${i}`, async () => (await conn.command("SET", `workers:${i}`, `v${i}`)) === "+OK\r\n", proxy.entry);
      }
      assert.deepEqual([...workers].sort(), [0, 1], "both workers accepted clients");
      for (const [i, conn] of proxy.conns.entries()) {
        assert.equal(await conn.command("GET", `workers:${(i + 1) % CONNECTIONS}`), `$${`v${(i + 1) % CONNECTIONS}`.length}\r\nv${(i + 1) % CONNECTIONS}\r\n`);
      }
      // One scrape for both: clients connected are summed over the workers.
      await until("slotgate_downstream_cx_active sums both workers", async () => sample(await metricsText(proxy.admin), "slotgate_downstream_cx_active") === CONNECTIONS, proxy.entry);
      const text = await metricsText(proxy.admin);
      assert.ok(sample(text, "slotgate_downstream_rq_total")! >= 3 * CONNECTIONS, text);
      assert.equal(sample(text, 'slotgate_cluster_ready{cluster="default"}'), 1);
    } finally {
      await proxy.stop();
    }
    const open = await RespConn.open(proxy.port).then((c) => (c.close(), true), () => false);
    assert.equal(open, false, "nothing listens after SIGTERM");
  });

  it("applies admin API changes in every worker before answering", SLOW, async () => {
    const proxy = await start();
    try {
      const c = await cluster.get();
      for (const conn of proxy.conns) assert.equal(await conn.command("EXISTS", "workers:none"), ":0\r\n");
      const config = (await (await fetch(`${proxy.admin}/config`)).json()) as Record<string, unknown>;
      const put = await fetch(`${proxy.admin}/config`, { method: "PUT", body: JSON.stringify({ ...config, denyCommands: ["exists"] }) });
      assert.equal(put.status, 200, await put.clone().text());
      // Answered: every worker refuses EXISTS now, with no wait.
      for (const conn of proxy.conns) assert.match(await conn.command("EXISTS", "workers:none"), /^-ERR .*exists.*disabled/i);

      // A second cluster, added then removed: after DELETE answers, no worker has its scope.
      const added = await fetch(`${proxy.admin}/clusters/second`, { method: "PUT", body: JSON.stringify({ seeds: c.seeds }) });
      assert.equal(added.status, 200, await added.clone().text());
      await until("both workers have cluster 'second'", async () => sample(await metricsText(proxy.admin), 'slotgate_cluster_ready{cluster="second"}') === 1, proxy.entry);
      const scopes = sample(await metricsText(proxy.admin), 'slotgate_cluster_scopes{cluster="second"}')!;
      assert.ok(scopes >= 2, `two workers' scopes summed: ${scopes}`);
      const removed = await fetch(`${proxy.admin}/clusters/second`, { method: "DELETE" });
      assert.equal(removed.status, 200, await removed.clone().text());
      const text = await metricsText(proxy.admin);
      assert.equal(sample(text, 'slotgate_cluster_scopes{cluster="second"}'), undefined, text);
    } finally {
      await proxy.stop();
    }
  });

  it("SIGHUP re-reads the config file and every worker takes it", SLOW, async () => {
    const c = await cluster.get();
    const file = join(dir, "sighup.json");
    writeFileSync(file, JSON.stringify({ clusters: { default: { seeds: c.seeds } } }));
    const proxy = await start({ SLOTGATE_SEEDS: "", SLOTGATE_CONFIG: file, SLOTGATE_CONFIG_WATCH: "off" });
    try {
      for (const conn of proxy.conns) assert.equal(await conn.command("EXISTS", "workers:none"), ":0\r\n");
      writeFileSync(file, JSON.stringify({ clusters: { default: { seeds: c.seeds } }, denyCommands: ["exists"] }));
      proxy.entry.signal("SIGHUP");
      for (const [i, conn] of proxy.conns.entries()) {
        await until(`connection ${i} refuses EXISTS`, async () => /disabled/.test(await conn.command("EXISTS", "workers:none")), proxy.entry);
      }
    } finally {
      await proxy.stop();
    }
  });

  it("a worker process that dies takes the group down: exit 1, port closed", { ...SLOW, skip: detectRuntime() !== "node" && "workers are threads on Bun and Deno: no process to kill" }, async () => {
    const proxy = await start();
    for (const conn of proxy.conns) conn.close();
    const children = execFileSync("pgrep", ["-P", String(proxy.entry.child.pid)], { encoding: "utf8" }).trim().split("\n").map(Number);
    assert.equal(children.length, 2, `two worker processes: ${children.join(" ")}`);
    process.kill(children[1]!, "SIGKILL");
    const exit = await proxy.entry.done;
    assert.equal(exit.code, 1, proxy.entry.output());
    assert.match(proxy.entry.output(), /worker exited on its own/);
    for (const pid of children) await until(`worker ${pid} gone`, async () => !isAlive(pid), proxy.entry, 20_000);
    const open = await RespConn.open(proxy.port).then((conn) => (conn.close(), true), () => false);
    assert.equal(open, false);
  });
});
