/**
 * The local-cluster helper itself: a real 3+3 Redis Cluster is started once, inspected, made to
 * fail over, and stopped; then a start that fails half-way must leave nothing behind.
 * Runs under `npx tsx --test`, `bun test` and `deno test -A`.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, describe, it } from "node:test";
import {
  RedisMissingError,
  RespReplyError,
  liveRedisPids,
  startLocalCluster,
  type LocalCluster,
} from "../../scripts/local-cluster.ts";
import { PortInUseError, requireRedisBinaries, runTool, spawnRedis, killRedis } from "../../scripts/redis-process.ts";
import { startStandaloneRedis } from "../../scripts/standalone-redis.ts";
import { lazy } from "../support/lazy.ts";
import { Exchange } from "../support/exchange.ts";
import { isAlive } from "../support/processes.ts";

// Generous: a loaded 2-core CI box. Bun's default per-test timeout is only 5 s, and Bun ignores
// the timeout option of hooks, so the cluster starts lazily inside the first test (see lazy.ts).
const SLOW = { timeout: 90_000 };

describe("startLocalCluster", () => {
  const fixture = lazy(() => startLocalCluster());
  let cluster: LocalCluster;
  const started = async () => (cluster = await fixture.get());

  after(() => fixture.stop());

  it("starts 3 primaries and 3 replicas", SLOW, async () => {
    await started();
    assert.equal(cluster.nodes.length, 6);
    assert.deepEqual(cluster.seeds, cluster.nodes.map((node) => `127.0.0.1:${node.port}`));
    assert.equal((await cluster.primaries()).length, 3);
    const replicas = await cluster.replicas();
    assert.equal(replicas.length, 3);
    for (const replica of replicas) {
      const role = (await cluster.reply(replica.port, "ROLE")) as unknown[];
      assert.equal(role[3], "connected", `replica ${replica.port} is in sync`);
    }
  });

  it("covers all 16384 slots, as seen by every node", SLOW, async () => {
    await started();
    for (const node of cluster.nodes) {
      const info = await cluster.command(node.port, "CLUSTER", "INFO");
      assert.match(info, /cluster_state:ok/);
      assert.match(info, /cluster_slots_assigned:16384/);
      const slots = (await cluster.reply(node.port, "CLUSTER", "SLOTS")) as Array<[number, number]>;
      assert.equal(slots.reduce((sum, [start, end]) => sum + end - start + 1, 0), 16384);
    }
  });

  it("serves a key from its owner and redirects elsewhere (redis-cli -c semantics)", SLOW, async () => {
    await started();
    const slot = Number(await cluster.command(cluster.nodes[0]!.port, "CLUSTER", "KEYSLOT", "greeting"));
    const owner = await cluster.ownerOfSlot(slot);
    const other = (await cluster.primaries()).find((node) => node.port !== owner.port)!;
    // redis-cli -c against a non-owner follows the MOVED redirection.
    const { cli } = requireRedisBinaries();
    const set = await runTool(cli, ["-c", "-h", "127.0.0.1", "-p", String(other.port), "SET", "greeting", "hello"]);
    assert.equal(set.output.trim(), "OK");
    assert.equal(await cluster.command(owner.port, "GET", "greeting"), "hello");
    await assert.rejects(cluster.command(other.port, "GET", "greeting"), (error: unknown) => {
      assert.ok(error instanceof RespReplyError, "error instanceof RespReplyError");
      assert.equal(error.message, `MOVED ${slot} 127.0.0.1:${owner.port}`);
      return true;
    });
  });

  it("migrates a slot, answering ASK for moved keys half-way", SLOW, async () => {
    await started();
    const slot = Number(await cluster.command(cluster.nodes[0]!.port, "CLUSTER", "KEYSLOT", "{mig}"));
    const source = await cluster.ownerOfSlot(slot);
    const target = (await cluster.primaries()).find((node) => node.port !== source.port)!;
    const keys = Array.from({ length: 10 }, (_, i) => `{mig}${i}`);
    for (const key of keys) await cluster.command(source.port, "SET", key, key);
    let asked = 0;
    await cluster.migrateSlot(slot, source.port, target.port, {
      onMigrating: async () => {
        for (const key of keys) {
          try {
            assert.equal(await cluster.command(source.port, "GET", key), key);
          } catch (error) {
            assert.equal((error as Error).message, `ASK ${slot} 127.0.0.1:${target.port}`);
            asked++;
          }
        }
      },
    });
    assert.equal(asked, 5);
    assert.equal((await cluster.ownerOfSlot(slot)).port, target.port);
    assert.equal(await cluster.command(target.port, "GET", "{mig}7"), "{mig}7");
  });

  it("fails over to a replica when a primary is killed", SLOW, async () => {
    await started();
    const victim = (await cluster.primaries())[0]!;
    const slot = Number(await cluster.command(victim.port, "CLUSTER", "KEYSLOT", "survivor"));
    const owner = await cluster.ownerOfSlot(slot);
    // WAIT counts replicas that have this connection's writes: SET and WAIT on one connection.
    const writer = await Exchange.connect(owner.port);
    try {
      assert.deepEqual(await writer.send(["SET", "survivor", "yes"], ["WAIT", 1, 10_000]), ["+OK\r\n", ":1\r\n"], "the replica has it");
    } finally {
      writer.close();
    }
    await cluster.killNode(owner.port);
    assert.equal(isAlive(owner.pid), false);
    const promoted = await cluster.waitForFailover(owner.port);
    assert.notEqual(promoted.port, owner.port);
    assert.equal((await cluster.primaries()).length, 3);
    assert.ok((await cluster.primaries()).some((node) => node.port === promoted.port), "(await cluster.primaries()).some((node) => node.port === promoted.port)");
    assert.equal(await cluster.command(promoted.port, "GET", "survivor"), "yes");
    for (const node of cluster.nodes.filter((candidate) => candidate.running)) {
      assert.match(await cluster.command(node.port, "CLUSTER", "INFO"), /cluster_state:ok/);
    }
  });

  it("stop() kills every node and removes the temp dir", SLOW, async () => {
    await started();
    const pids = cluster.nodes.map((node) => node.pid);
    assert.ok(existsSync(cluster.dir), "existsSync(cluster.dir)");
    await cluster.stop();
    await cluster.stop(); // idempotent
    assert.equal(existsSync(cluster.dir), false);
    for (const pid of pids) assert.equal(isAlive(pid), false, `pid ${pid} is gone`);
    for (const pid of pids) assert.equal(liveRedisPids().includes(pid), false);
  });
});

describe("startLocalCluster failures", () => {
  it("cleans up processes and the temp dir when the start fails half-way", SLOW, async () => {
    const root = mkdtempSync(join(tmpdir(), "slotgate-test-"));
    const before = liveRedisPids();
    try {
      // The servers start fine (not in cluster mode), so `redis-cli --cluster create` fails.
      await assert.rejects(startLocalCluster({ tmpRoot: root, extraConfig: ["cluster-enabled no"] }), /cluster create failed/);
      assert.deepEqual(readdirSync(root), []);
      assert.deepEqual(liveRedisPids(), before);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("cleans up when the start is aborted", SLOW, async () => {
    const root = mkdtempSync(join(tmpdir(), "slotgate-test-"));
    const before = liveRedisPids();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error("test abort")), 300);
    try {
      await assert.rejects(startLocalCluster({ tmpRoot: root, signal: controller.signal }), /test abort/);
      assert.deepEqual(readdirSync(root), []);
      assert.deepEqual(liveRedisPids(), before);
    } finally {
      clearTimeout(timer);
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("a server that finds its port taken is never taken for ready because another one answers PING there", SLOW, async () => {
    // Found by CI: two clusters and two standalone servers starting at once; one node's port went
    // to a standalone server, whose PONG made the node look up, and `--cluster create` then failed
    // with "Node ... is not configured as a cluster node". The node must report PortInUseError
    // (its caller retries on fresh ports) however soon the other server answers.
    const other = await startStandaloneRedis();
    const dir = mkdtempSync(join(tmpdir(), "slotgate-port-taken-"));
    try {
      await assert.rejects(
        spawnRedis({ serverPath: requireRedisBinaries().server, host: "127.0.0.1", port: other.port, dir, config: [] }).then(async (proc) => {
          await killRedis(proc);
          return proc;
        }),
        (error: unknown) => error instanceof PortInUseError,
      );
    } finally {
      await other.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("throws RedisMissingError with install instructions when redis-server is not on PATH", async () => {
    const path = process.env.PATH;
    process.env.PATH = mkdtempSync(join(tmpdir(), "slotgate-empty-path-"));
    try {
      await assert.rejects(startLocalCluster(), (error: unknown) => {
        assert.ok(error instanceof RedisMissingError, "error instanceof RedisMissingError");
        assert.match(error.message, /^redis-server not found on PATH: install Redis 7 \(Debian\/Ubuntu: sudo apt-get install/);
        return true;
      });
    } finally {
      rmSync(process.env.PATH, { recursive: true, force: true });
      process.env.PATH = path;
    }
  });
});
