/** Choosing the replica that serves a read, backing off from one that failed, and the errors that send a read to the primary. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Replica, fallsAway, pickReplica } from "../../src/backends/cluster/replica-reads.ts";
import type { UpstreamNode } from "../../src/upstream/node.ts";

const clock = { now: 0 };

/** A replica over a stand-in node: only `isUp`, `address` and the clock are read. */
function replica(address: string, isUp = true): Replica {
  return new Replica({ address, isUp, scope: { runtime: { now: () => clock.now } } } as unknown as UpstreamNode);
}

/** Mark the replica's node down (a failed connect) or up again. */
function setUp(r: Replica, isUp: boolean): void {
  (r.node as unknown as { isUp: boolean }).isUp = isUp;
}

const bytes = (text: string) => new TextEncoder().encode(text);

describe("replica reads", () => {
  it("primary never picks a replica; preferReplica and replica pick one by affinity; any counts the primary as one more choice", () => {
    const replicas = [replica("a"), replica("b")];
    for (let affinity = 0; affinity < 6; affinity++) assert.equal(pickReplica("primary", replicas, affinity), null);
    assert.deepEqual([0, 1, 2, 3].map((a) => pickReplica("preferReplica", replicas, a)?.node.address), ["a", "b", "a", "b"]);
    assert.deepEqual([0, 1, 2, 3].map((a) => pickReplica("replica", replicas, a)?.node.address), ["a", "b", "a", "b"]);
    assert.deepEqual([0, 1, 2, 3].map((a) => pickReplica("any", replicas, a)?.node.address ?? "primary"), ["a", "b", "primary", "a"]);
    assert.equal(pickReplica("replica", [], 7), null, "a slot without replicas reads from its primary");
  });

  it("replicas that are down are skipped; none up sends every read to the primary", () => {
    const [a, b, c] = [replica("a"), replica("b", false), replica("c")];
    assert.deepEqual([0, 1, 2].map((n) => pickReplica("replica", [a, b, c], n)?.node.address), ["a", "c", "a"]);
    setUp(a, false);
    setUp(c, false);
    for (const policy of ["preferReplica", "replica", "any"] as const) assert.equal(pickReplica(policy, [a, b, c], 1), null, policy);
  });

  it("a replica that failed a read is avoided for 100 ms, doubling per incident up to 2 s; reads that fail together count once; a served read starts over", () => {
    clock.now = 1000;
    const r = replica("r");
    assert.equal(r.usable, true);
    r.failed();
    r.failed(); // a second read of the same incident
    assert.equal(r.usable, false);
    clock.now += 99;
    assert.equal(r.usable, false, "still avoided after 99 ms");
    clock.now += 1;
    assert.equal(r.usable, true, "usable after 100 ms");
    const windows: number[] = [];
    for (let i = 0; i < 6; i++) {
      r.failed();
      const start = clock.now;
      while (!r.usable) clock.now += 1;
      windows.push(clock.now - start);
    }
    assert.deepEqual(windows, [200, 400, 800, 1600, 2000, 2000]);
    r.served();
    r.failed();
    const start = clock.now;
    while (!r.usable) clock.now += 1;
    assert.equal(clock.now - start, 100, "after a served read the backoff starts over");
  });

  it("LOADING, MASTERDOWN and CLUSTERDOWN send a read to the primary; other replies, errors included, reach the client", () => {
    assert.equal(fallsAway(bytes("-LOADING Redis is loading the dataset in memory\r\n")), true);
    assert.equal(fallsAway(bytes("-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n")), true);
    assert.equal(fallsAway(bytes("-CLUSTERDOWN The cluster is down\r\n")), true);
    assert.equal(fallsAway(bytes("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")), false);
    assert.equal(fallsAway(bytes("-ERR LOADING is not a prefix here\r\n")), false);
    assert.equal(fallsAway(bytes("$7\r\nLOADING\r\n")), false);
    assert.equal(fallsAway(bytes("+OK\r\n")), false);
  });
});
