/**
 * SCAN through slotgate while the cluster's slots move: a key present for the whole scan is
 * returned at least once, across live slot migrations and the topology refreshes that follow
 * them — including a migration of the very slot the scan's cursor points at. Real Redis Cluster,
 * real migrations (`migrateSlot`), ioredis as the client.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { startLocalCluster, type LocalCluster } from "../../scripts/local-cluster.ts";
import { connectIoredis } from "../support/launch.ts";
import { lazy } from "../support/lazy.ts";
import { startProxy, type RunningProxy } from "../support/proxy.ts";
import { until, within } from "../support/within.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { decodeCursor } from "../../src/proxy/multi/scan.ts";

const SLOW = { timeout: 240_000 };
const encoder = new TextEncoder();
const slotOf = (key: string) => keySlot(encoder.encode(key));

/** A hash tag whose keys all fall in `slot`. */
function tagFor(slot: number): string {
  for (let i = 0; ; i++) if (slotOf(`{m${i}}`) === slot) return `{m${i}}`;
}

/** Where the walk stands after `cursor`: the slot of the primary being scanned, and its own cursor. */
function where(cursor: string): { slot: number; upstream: bigint } | null {
  const position = decodeCursor(encoder.encode(cursor));
  return position === null || position === "start" ? null : { slot: position.slot, upstream: position.upstream };
}

describe("SCAN across slot migrations", () => {
  const cluster = lazy(() => startLocalCluster({ replicasPerPrimary: 0 }));
  // Fast refreshes: slotgate learns each migration's outcome while the scan is still running.
  const proxy = lazy(async () => startProxy((await cluster.get()).seeds, { SLOTGATE_REFRESH_INTERVAL_MS: "200" }));
  const clients: Redis[] = [];
  after(async () => {
    for (const client of clients) client.disconnect();
    await proxy.stop();
    await cluster.stop();
  });

  const connect = (p: RunningProxy) => connectIoredis(p, clients);

  /** The primaries' ports by the lowest slot each owns, as slotgate sees them. */
  function primaries(p: RunningProxy): { port: number; start: number }[] {
    const ranges = p.app.cluster.topology.ranges.slice().sort((a, b) => a.start - b.start);
    const seen = new Map<number, number>();
    for (const range of ranges) if (!seen.has(range.primary.port)) seen.set(range.primary.port, range.start);
    return [...seen].map(([port, start]) => ({ port, start }));
  }

  async function learnt(p: RunningProxy, slot: number, port: number): Promise<void> {
    await until(`slotgate to learn that ${port} owns slot ${slot}`, () =>
      p.app.cluster.topology.ranges.some((r) => r.primary.port === port && r.start <= slot && slot <= r.end),
    );
  }

  /** Fill the cluster: keys over every slot range, and `perSlot` keys in each of `slots`. */
  async function fill(client: Redis, spread: number, slots: number[], perSlot: number): Promise<string[]> {
    await client.flushall();
    const keys = Array.from({ length: spread }, (_, i) => `spread:${i}`);
    for (const slot of slots) for (let i = 0; i < perSlot; i++) keys.push(`${tagFor(slot)}:${i}`);
    const pipeline = client.pipeline();
    for (const key of keys) pipeline.set(key, "x");
    await pipeline.exec();
    return keys;
  }

  it("a scan paced around two live migrations returns every key, the moved slots' and the cursor's own slot's included", SLOW, async () => {
    const c: LocalCluster = await cluster.get();
    const p = await proxy.get();
    const client = await connect(p);
    const [a, b, last] = primaries(p) as [{ port: number; start: number }, { port: number; start: number }, { port: number; start: number }];
    // U: a slot of the last primary, moved to the second before the walk reaches either.
    // B: the second primary's lowest slot — the cursor's own slot while it is scanned — moved mid-scan
    // to the first primary, which the walk has passed: it must be scanned again, from its start.
    const u = last.start + 100;
    const keys = await fill(client, 2000, [u, b.start], 150);
    const seen = new Set<string>();
    let cursor = "0";
    const next = async () => {
      const [following, batch] = (await client.call("SCAN", cursor, "COUNT", "20")) as [string, string[]];
      batch.forEach((k) => seen.add(k));
      cursor = following;
      return where(cursor);
    };

    // Into the first primary, then move U while the walk is there; pages run while U is half-moved.
    while ((await next())?.slot !== a.start);
    let pagesWhileMigrating = 0;
    await c.migrateSlot(u, last.port, b.port, {
      onMigrating: async () => {
        for (let i = 0; i < 3 && cursor !== "0"; i++, pagesWhileMigrating++) await next();
      },
    });
    assert.ok(pagesWhileMigrating > 0, "SCAN pages ran while the slot was half-moved");
    await learnt(p, u, b.port);

    // Into the second primary, half-way: its lowest slot (the cursor's slot) moves to the first one.
    let position = where(cursor);
    while (cursor !== "0" && !(position?.slot === b.start && position.upstream > 0n)) position = await next();
    assert.notEqual(cursor, "0", "the walk reached the second primary before the end");
    await c.migrateSlot(b.start, b.port, a.port);
    await learnt(p, b.start, a.port);

    for (let pages = 0; cursor !== "0"; pages++) {
      assert.ok(pages < 10_000, "the scan ends");
      await next();
    }
    assert.deepEqual(keys.filter((k) => !seen.has(k)), [], "every key returned");
  });

  it("ioredis scanStream while slots migrate in parallel: every key of a slot that stayed put is returned", SLOW, async () => {
    const c: LocalCluster = await cluster.get();
    const p = await proxy.get();
    const client = await connect(p);
    // One slot in the middle of each primary's largest range (the first test moved some slots).
    const ports = primaries(p).map((primary) => primary.port);
    const moving = ports.map((port) => {
      const range = p.app.cluster.topology.ranges.filter((r) => r.primary.port === port).sort((x, y) => y.end - y.start - (x.end - x.start))[0]!;
      return Math.floor((range.start + range.end) / 2);
    });
    const keys = await fill(client, 3000, moving, 100);
    // Each slot moves to the next primary, one after another, while the scan runs.
    let migrated = 0;
    let firstMigrated!: () => void;
    const firstDone = new Promise<void>((resolve) => (firstMigrated = resolve));
    const migrations = (async () => {
      for (let i = 0; i < moving.length; i++) {
        await c.migrateSlot(moving[i]!, ports[i]!, ports[(i + 1) % ports.length]!);
        migrated++;
        firstMigrated();
      }
    })();
    // Paced so the scan overlaps the migrations: it waits at page 100 for the first one to end,
    // and runs at most one page per 20 ms until the last one has.
    const seen = new Map<string, number>();
    let pages = 0;
    let migratedDuringScan = 0;
    const stream = client.scanStream({ count: 10 });
    stream.on("data", (batch: string[]) => {
      batch.forEach((k) => seen.set(k, (seen.get(k) ?? 0) + 1));
      migratedDuringScan = migrated;
      if (migrated === moving.length) return;
      stream.pause();
      if (++pages >= 100 && migrated === 0) void firstDone.then(() => stream.resume());
      else setTimeout(() => stream.resume(), 20);
    });
    const ended = new Promise<void>((resolve, reject) => {
      stream.on("end", resolve);
      stream.on("error", reject);
    });
    await within(Promise.all([ended, migrations]), "the scan and the migrations", 180_000);
    assert.ok(migratedDuringScan > 0, "a migration ended while the scan ran");
    const stayed = keys.filter((k) => !moving.includes(slotOf(k)));
    assert.deepEqual(stayed.filter((k) => !seen.has(k)), [], "no key of a slot that stayed put is missed");
    assert.ok([...seen.keys()].every((k) => keys.includes(k)), "nothing but the keys");
  });
});
