/**
 * SLOWLOG answered by slotgate through a real Redis Cluster, with a 0 µs threshold so that every
 * request is logged: Redis's reply shape and truncation, the client's address and name, the
 * upstream node that answered (none for the proxy's own replies, `*` for a command split over
 * nodes), redis-cli reading it, and the threshold and length changed live through the admin API
 * (each change counted by the metrics).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { launchProxy } from "../support/launch.ts";
import { lazy } from "../support/lazy.ts";
import type { RunningProxy } from "../support/proxy.ts";
import { within } from "../support/within.ts";

const SLOW = { timeout: 180_000 };
const encoder = new TextEncoder();

type Entry = [number, number, number, string[], string, string, string];

describe("SLOWLOG", () => {
  const fixture = lazy(() => startLocalCluster({ replicasPerPrimary: 0 }));
  const proxies: RunningProxy[] = [];
  const clients: Redis[] = [];
  after(async () => {
    for (const client of clients) client.disconnect();
    await Promise.all(proxies.map((proxy) => proxy.stop().catch(() => {})));
    await fixture.stop();
  });

  async function admin(proxy: RunningProxy, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const response = await within(fetch(`http://127.0.0.1:${proxy.app.admin!.port}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) }), `${method} ${path}`);
    return { status: response.status, body: await response.json() };
  }

  async function change(proxy: RunningProxy, edit: (document: any) => void): Promise<{ status: number; body: any }> {
    const current = await admin(proxy, "GET", "/config");
    edit(current.body);
    return admin(proxy, "PUT", "/config", current.body);
  }

  it("logs every request at 0 µs: Redis's shape and truncation, client address and name, the node that answered", SLOW, async () => {
    const cluster = await fixture.get();
    const proxy = await launchProxy(proxies, cluster.seeds, { SLOTGATE_SLOWLOG_THRESHOLD_US: "0" });
    const client = new Redis({ port: proxy.port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, enableReadyCheck: false, connectionName: "app1" });
    client.on("error", () => {});
    clients.push(client);
    await client.connect();
    const started = Math.floor(Date.now() / 1000);
    assert.equal(await client.call("SLOWLOG", "RESET"), "OK");
    await client.set("{s}k", "x".repeat(200));
    await client.sadd("{s}set", ...Array.from({ length: 40 }, (_, i) => `m${i}`));
    await client.mget("a", "b", "c", "d");
    assert.equal(await client.get("{s}k"), "x".repeat(200));
    const entries = (await client.call("SLOWLOG", "GET", "-1")) as Entry[];
    // ioredis spells commands in lower case; the log keeps the client's bytes.
    assert.deepEqual(entries.map((e) => e[3][0]), ["get", "mget", "sadd", "set", "SLOWLOG"], "newest first");
    const owner = await cluster.ownerOfSlot(keySlot(encoder.encode("{s}")));
    const address = `127.0.0.1:${client.stream.localPort}`;
    const [get, mget, sadd, set, reset] = entries as [Entry, Entry, Entry, Entry, Entry];
    for (const entry of entries) {
      assert.equal(entry.length, 7);
      assert.ok(Number.isInteger(entry[2]) && entry[2] >= 0, `duration in µs (${entry[2]})`);
      assert.ok(entry[1] >= started - 1 && entry[1] <= Math.floor(Date.now() / 1000) + 1, `unix seconds (${entry[1]})`);
      assert.equal(entry[4], address);
      assert.equal(entry[5], "app1");
    }
    assert.deepEqual(entries.map((e) => e[0]), [reset[0] + 4, reset[0] + 3, reset[0] + 2, reset[0] + 1, reset[0]], "ids count up");
    assert.deepEqual(get.slice(3), [["get", "{s}k"], address, "app1", `127.0.0.1:${owner.port}`]);
    assert.deepEqual(set[3], ["set", "{s}k", `${"x".repeat(128)}... (72 more bytes)`]);
    assert.equal(set[6], `127.0.0.1:${owner.port}`);
    assert.equal(sadd[3].length, 32);
    assert.deepEqual(sadd[3].slice(0, 3), ["sadd", "{s}set", "m0"]);
    assert.equal(sadd[3][31], "... (11 more arguments)");
    assert.equal(mget[6], "*", "a command split over nodes names no one node");
    assert.deepEqual(reset.slice(3), [["SLOWLOG", "RESET"], address, "app1", ""], "the proxy's own reply names no node");
    assert.equal(await client.call("SLOWLOG", "LEN"), 6, "the SLOWLOG GET itself was logged after its reply");
    assert.deepEqual(((await client.call("SLOWLOG", "GET", "1")) as Entry[]).map((e) => e[3]), [["SLOWLOG", "LEN"]]);

    // redis-cli reads the seven-element entries (run asynchronously: slotgate answers it from this process).
    const cli = await within(
      new Promise<string>((resolve, reject) => execFile("redis-cli", ["-p", String(proxy.port), "SLOWLOG", "GET", "3"], (error, stdout) => (error ? reject(error) : resolve(stdout)))),
      "redis-cli SLOWLOG GET",
    );
    assert.match(cli, /SLOWLOG/);
    assert.match(cli, /app1/);

    // Live: a longer threshold stops logging; a shorter length trims at once.
    const off = await change(proxy, (d) => (d.slowlogThresholdUs = -1));
    assert.equal(off.status, 200, JSON.stringify(off.body));
    assert.deepEqual(off.body.changes, ["updated slowlogThresholdUs (0 → -1)"]);
    const length = (await client.call("SLOWLOG", "LEN")) as number;
    await client.set("{s}k", "y");
    assert.equal(await client.call("SLOWLOG", "LEN"), length);
    const trimmed = await change(proxy, (d) => (d.slowlogMaxLen = 2));
    assert.equal(trimmed.status, 200, JSON.stringify(trimmed.body));
    assert.equal(await client.call("SLOWLOG", "LEN"), 2);
    const refused = await change(proxy, (d) => (d.metrics = false));
    assert.equal(refused.status, 409);
    assert.match(refused.body.errors.join("\n"), /metrics/);
    // The changes are counted: two applied, one refused.
    const scraped = await within(fetch(`http://127.0.0.1:${proxy.app.admin!.port}/metrics`).then((r) => r.text()), "GET /metrics");
    assert.match(scraped, /^slotgate_config_apply_total 2$/m);
    assert.match(scraped, /^slotgate_config_apply_failure_total 1$/m);
    assert.match(scraped, /^slotgate_slowlog_length 2$/m);
  });
});
