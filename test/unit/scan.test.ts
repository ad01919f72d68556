/**
 * SCAN over a whole cluster: the cursor codec, the walk from primary to primary, and the
 * guarantee (a key that stays on its primary for the whole scan is returned) against a model
 * cluster whose slots migrate and whose primaries fail over between pages.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeCursor, encodeCursor, nextSlot, nodeTag, scan, topologyTag, type ScanPosition } from "../../src/proxy/multi/scan.ts";
import { Unavailable, type Backend } from "../../src/backend/contract.ts";
import { fakeBackend } from "../support/fake-backend.ts";

const SLOT_NOT_SERVED = new Unavailable("clusterDown", "Hash slot not served");
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { decode } from "../../src/resp/decode.ts";
import { encodeArray, encodeBulk } from "../../src/resp/encode.ts";
import { FakeClient } from "../support/fake-client.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const SLOTS = 16384;
/** Buckets of a model node's table (its SCAN cursors run over them). */
const BUCKETS = 256;

/** A primary of the model: its keys sit in buckets laid out by a per-node seed, as Redis's are. */
class ModelNode {
  /** Key → its slot; each slot's keys; each bucket's keys. */
  readonly keys = new Map<string, number>();
  readonly slots = new Map<number, Set<string>>();
  readonly #buckets: Set<string>[] = Array.from({ length: BUCKETS }, () => new Set());
  constructor(readonly address: string) {}
  #bucket(key: string): number {
    let h = 0x811c9dc5;
    for (const c of `${this.address}/${key}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
    return (h >>> 0) % BUCKETS;
  }
  set(key: string, slot: number): void {
    this.keys.set(key, slot);
    if (!this.slots.has(slot)) this.slots.set(slot, new Set());
    this.slots.get(slot)!.add(key);
    this.#buckets[this.#bucket(key)]!.add(key);
  }
  delete(key: string): void {
    this.slots.get(this.keys.get(key)!)?.delete(key);
    this.keys.delete(key);
    this.#buckets[this.#bucket(key)]!.delete(key);
  }
  /** SCAN: the keys of buckets [cursor, cursor + count), and the next cursor (0 at the end). */
  scan(cursor: number, count: number): { next: number; keys: string[] } {
    const end = Math.min(BUCKETS, cursor + count);
    const keys: string[] = [];
    for (let b = cursor; b < end; b++) keys.push(...this.#buckets[b]!);
    return { next: end >= BUCKETS ? 0 : end, keys };
  }
}

/** A cluster of model nodes behind the `Backend` interface; requests are answered at once. */
class ModelCluster {
  readonly owners: (ModelNode | undefined)[] = new Array(SLOTS);
  readonly #listeners = new Set<() => void>();

  constructor(ranges: [number, number, ModelNode][]) {
    for (const [start, end, node] of ranges) for (let s = start; s <= end; s++) this.owners[s] = node;
  }

  add(key: string): void {
    this.owners[keySlot(enc.encode(key))]!.set(key, keySlot(enc.encode(key)));
  }

  /** Move a slot and its keys, as a finished migration does. */
  migrate(slot: number, to: ModelNode): void {
    const from = this.owners[slot]!;
    for (const key of [...(from.slots.get(slot) ?? [])]) {
      from.delete(key);
      to.set(key, slot);
    }
    this.owners[slot] = to;
    this.#changed();
  }

  /** A replica takes over every slot and key of `old` (its table laid out anew). */
  failover(old: ModelNode, replacement: ModelNode): void {
    for (const [key, s] of [...old.keys]) {
      old.delete(key);
      replacement.set(key, s);
    }
    for (let s = 0; s < SLOTS; s++) if (this.owners[s] === old) this.owners[s] = replacement;
    this.#changed();
  }

  /** As a cluster applying a new slot map does. */
  #changed(): void {
    for (const listener of this.#listeners) listener();
  }

  readonly backend: Backend = fakeBackend("model", {
    shardOf: () => 0,
    anyShard: () => 0,
    primaries: () => [],
    nodeFor: (slot) => (this.owners[slot] as never) ?? SLOT_NOT_SERVED,
    redirect: () => null,
    onTopology: (listener) => {
      this.#listeners.add(listener);
      return () => void this.#listeners.delete(listener);
    },
    dispatch: (request) => {
      const args = (decode(request.frame, { strings: true }) as string[]).map(String);
      const node = this.owners[request.slot]!;
      const { next, keys } = node.scan(Number(args[1]), Number(args[3] ?? 10));
      request.sink.deliver(request, encodeArray([encodeBulk(String(next)), encodeArray(keys.map((k) => encodeBulk(k)))]));
    },
  });
}

/** One SCAN page through slotgate's walk: the client's next cursor and the keys. */
function page(cluster: ModelCluster, cursor: string, count = 20): { cursor: string; keys: string[] } {
  const client = new FakeClient(2, 1);
  scan(client, cluster.backend, ["SCAN", cursor, "COUNT", String(count)].map((s) => enc.encode(s)));
  const reply = client.queue[0]!.reply!;
  if (reply[0] === 45) throw new Error(dec.decode(reply));
  const [next, keys] = decode(reply, { strings: true }) as [string, string[]];
  return { cursor: next, keys };
}

/** xorshift32: a reproducible sequence per seed. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function threeNodes(): { cluster: ModelCluster; nodes: ModelNode[] } {
  const nodes = [new ModelNode("10.0.0.1:6379"), new ModelNode("10.0.0.2:6379"), new ModelNode("10.0.0.3:6379")];
  const cluster = new ModelCluster([[0, 5460, nodes[0]!], [5461, 10922, nodes[1]!], [10923, 16383, nodes[2]!]]);
  return { cluster, nodes };
}

describe("whole-cluster SCAN cursor", () => {
  it("encodes and decodes every field, upstream cursors up to 64 bits included", () => {
    for (const position of [
      { upstream: 0n, topology: 0, node: 0, slot: 1 },
      { upstream: 1n, topology: 255, node: 4095, slot: 16383 },
      { upstream: 77n, topology: 0, node: 0, slot: 0 },
      { upstream: 123456789n, topology: 17, node: 42, slot: 5461 },
      { upstream: 2n ** 64n - 1n, topology: 5, node: 9, slot: 10923 },
    ] satisfies ScanPosition[]) {
      assert.deepEqual(decodeCursor(enc.encode(encodeCursor(position))), position);
    }
  });

  it("cursors fit in 64 bits while the node's own cursor is below 2^30, and stay below 2^53 below 2^19", () => {
    const unsigned = BigInt(encodeCursor({ upstream: 2n ** 30n - 1n, topology: 255, node: 4095, slot: 16383 }));
    assert.equal(unsigned, 2n ** 64n - 1n, "every bit of 64 used, none beyond");
    const double = BigInt(encodeCursor({ upstream: 2n ** 19n - 1n, topology: 255, node: 4095, slot: 16383 }));
    assert.ok(double < 2n ** 53n, `${double} < 2^53`);
  });

  it("0 starts the scan; anything but decimal digits is an invalid cursor", () => {
    assert.equal(decodeCursor(enc.encode("0")), "start");
    assert.equal(decodeCursor(enc.encode("000")), "start");
    for (const bad of ["", "-1", "abc", "12a", " 1", "1".repeat(41)]) assert.equal(decodeCursor(enc.encode(bad)), null, JSON.stringify(bad));
  });

  it("tags: a node's from its address; the slot map's (never 0) changes when one slot changes hands", () => {
    assert.equal(nodeTag("10.0.0.1:6379"), nodeTag("10.0.0.1:6379"));
    const tags = new Set(Array.from({ length: 65536 }, (_, i) => nodeTag(`10.0.${i >> 8}.${i & 255}:6379`)));
    assert.equal(tags.size, 4096, "node tags use all 12 bits");
    // Loopback primaries on nearby ports (as in a local cluster) hardly ever share a tag.
    const ports = Array.from({ length: 200 }, (_, i) => nodeTag(`127.0.0.1:${30000 + i}`));
    assert.ok(new Set(ports).size >= 190, `${new Set(ports).size} distinct tags for 200 ports`);
    const { cluster, nodes } = threeNodes();
    const same = threeNodes().cluster;
    assert.equal(topologyTag(cluster.backend), topologyTag(same.backend), "equal maps of equal addresses, other objects");
    const before = topologyTag(cluster.backend);
    assert.ok(before >= 1 && before <= 255, `${before} in 1-255`);
    cluster.migrate(100, nodes[1]!);
    assert.notEqual(topologyTag(cluster.backend), before, "recomputed after the backend's topology event");
  });
});

describe("the walk from primary to primary", () => {
  it("an unchanged slot map: each primary once, by its lowest slot, even when it owns several runs", () => {
    const { cluster, nodes } = threeNodes();
    cluster.migrate(100, nodes[1]!);
    cluster.migrate(12000, nodes[0]!);
    const [a, b, c] = nodes as [ModelNode, ModelNode, ModelNode];
    assert.equal(nextSlot(cluster.backend, -1, null, true), 0);
    assert.equal(nextSlot(cluster.backend, 0, a, true), 100);
    assert.equal(nextSlot(cluster.backend, 100, b, true), 10923);
    assert.equal(nextSlot(cluster.backend, 10923, c, true), null);
  });

  it("a changed slot map: every later run of another primary, so none is skipped", () => {
    const { cluster, nodes } = threeNodes();
    cluster.migrate(100, nodes[1]!);
    const [a, b, c] = nodes as [ModelNode, ModelNode, ModelNode];
    assert.equal(nextSlot(cluster.backend, 0, a, false), 100);
    assert.equal(nextSlot(cluster.backend, 100, b, false), 101);
    assert.equal(nextSlot(cluster.backend, 101, a, false), 5461);
    assert.equal(nextSlot(cluster.backend, 5461, b, false), 10923);
    assert.equal(nextSlot(cluster.backend, 10923, c, false), null);
  });

  it("a stable cluster: every key exactly once, over fragmented slot ownership", () => {
    const { cluster, nodes } = threeNodes();
    for (const slot of [7, 100, 6000, 15000]) cluster.migrate(slot, nodes[(slot % 2) + 1]!);
    const keys = Array.from({ length: 1500 }, (_, i) => `key:${i}`);
    for (const key of keys) cluster.add(key);
    const seen = new Map<string, number>();
    let cursor = "0";
    do {
      const result = page(cluster, cursor);
      for (const key of result.keys) seen.set(key, (seen.get(key) ?? 0) + 1);
      cursor = result.cursor;
    } while (cursor !== "0");
    assert.equal(seen.size, keys.length, "every key returned");
    assert.ok([...seen.values()].every((n) => n === 1), "no key twice");
  });

  it("the slot being scanned moves to a new primary mid-scan: the new owner is scanned from its start", () => {
    const { cluster } = threeNodes();
    let tag = "";
    for (let i = 0; tag === ""; i++) if (keySlot(enc.encode(`{t${i}}`)) === 5461) tag = `{t${i}}`;
    const keys = Array.from({ length: 3000 }, (_, i) => `key:${i}`);
    keys.push(...Array.from({ length: 200 }, (_, i) => `${tag}:${i}`));
    for (const key of keys) cluster.add(key);
    const seen = new Set<string>();
    let cursor = "0";
    let moved = false;
    do {
      const result = page(cluster, cursor, 10);
      for (const key of result.keys) seen.add(key);
      cursor = result.cursor;
      const position = decodeCursor(enc.encode(cursor));
      // Half-way through the second primary, its lowest slot (the walk's position) moves away.
      if (!moved && position !== "start" && position !== null && position.slot === 5461 && position.upstream >= BigInt(BUCKETS / 2)) {
        moved = true;
        cluster.migrate(5461, new ModelNode("10.0.0.4:6379"));
      }
    } while (cursor !== "0");
    assert.ok(moved, "the migration happened mid-scan");
    assert.deepEqual(keys.filter((k) => !seen.has(k)), [], "every key returned, the moved slot's included");
  });

  it("random migrations and failovers between pages: every key that stayed on its primary is returned (100 seeds)", () => {
    for (let seed = 1; seed <= 100; seed++) {
      const random = prng(seed);
      const { cluster, nodes } = threeNodes();
      const keys = Array.from({ length: 400 }, (_, i) => `k${seed}:${i}`);
      for (const key of keys) cluster.add(key);
      const migrated = new Set<number>();
      const seen = new Set<string>();
      let cursor = "0";
      let pages = 0;
      let spare = 5;
      do {
        const result = page(cluster, cursor, 1 + Math.floor(random() * 30));
        for (const key of result.keys) seen.add(key);
        cursor = result.cursor;
        assert.ok(++pages < 5000, `seed ${seed}: the scan ends`);
        const roll = random();
        if (roll < 0.15) {
          // A run of slots moves to another primary (maybe a new one).
          const start = Math.floor(random() * SLOTS);
          const length = 1 + Math.floor(random() * 2000);
          const target = random() < 0.2 ? new ModelNode(`10.0.1.${spare++}:6379`) : nodes[Math.floor(random() * nodes.length)]!;
          if (!nodes.includes(target)) nodes.push(target);
          for (let s = start; s < Math.min(SLOTS, start + length); s++) {
            if (cluster.owners[s] === target) continue;
            migrated.add(s);
            cluster.migrate(s, target);
          }
        } else if (roll < 0.2) {
          // A primary fails over: its keys stay together, on a node of another address.
          const index = Math.floor(random() * nodes.length);
          const replacement = new ModelNode(`10.0.2.${spare++}:6379`);
          cluster.failover(nodes[index]!, replacement);
          nodes[index] = replacement;
        }
      } while (cursor !== "0");
      const missed = keys.filter((key) => !seen.has(key) && !migrated.has(keySlot(enc.encode(key))));
      assert.deepEqual(missed, [], `seed ${seed}: keys that stayed with their primary`);
    }
  });

  it("an invalid cursor: Redis's error", () => {
    const { cluster } = threeNodes();
    const client = new FakeClient(2, 1);
    scan(client, cluster.backend, ["SCAN", "x1"].map((s) => enc.encode(s)));
    assert.equal(dec.decode(client.queue[0]!.reply!), "-ERR invalid cursor\r\n");
  });
});
