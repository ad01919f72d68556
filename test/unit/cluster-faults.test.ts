/**
 * A fault stays where it happened, in a cluster on a manual clock with fake sockets: a partial
 * CLUSTER SLOTS from one node keeps the previous owners of the slots it leaves out until a second
 * node agrees; MOVED/ASK to nodes outside the slot map open at most maxUnknownNodes of them before
 * the next map; failed refreshes are logged once per cause, with their recovery.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cluster, type ClusterOptions } from "../../src/backends/cluster/cluster.ts";
import { UpstreamRequest, type ReplySink } from "../../src/backend/request.ts";
import { Unavailable } from "../../src/backend/contract.ts";
import { encodeCommand } from "../../src/resp/encode.ts";
import { createLogger } from "../../src/log.ts";
import { Scope } from "../../src/scope/scope.ts";
import { ManualRuntime, settle, type FakeConn } from "../support/manual-runtime.ts";

const decoder = new TextDecoder();

const OPTIONS: ClusterOptions = {
  seeds: [{ host: "127.0.0.1", port: 7000 }, { host: "127.0.0.1", port: 7001 }, { host: "127.0.0.1", port: 7002 }],
  refreshIntervalMs: 60_000,
  refreshTimeoutMs: 3000,
  redirectRefreshIntervalMs: 1000,
  redirectRefreshThreshold: 0,
  maxRedirects: 5,
  opTimeoutMs: 1000,
  connectTimeoutMs: 1000,
  maxBulkBytes: 1 << 20,
  connectionsPerNode: 1,
  probeBackoffMinMs: 100,
  probeBackoffMaxMs: 2000,
  maxUnknownNodes: 100,
  maxUpstreamQueueBytes: 1 << 26,
};

/** A CLUSTER SLOTS reply: each range `[start, end, primary port]` on 127.0.0.1. */
function slots(...ranges: [number, number, number][]): string {
  const node = (port: number) => `*2\r\n$9\r\n127.0.0.1\r\n:${port}\r\n`;
  return `*${ranges.length}\r\n${ranges.map(([start, end, port]) => `*3\r\n:${start}\r\n:${end}\r\n${node(port)}`).join("")}`;
}

const FULL = slots([0, 5460, 7000], [5461, 10922, 7001], [10923, 16383, 7002]);
/** What a node that restarted knowing only a hundred-odd slots of its own would say. */
const PARTIAL = slots([0, 100, 7000]);

type Answer = string | "refuse";

function setup(options: Partial<ClusterOptions> = {}) {
  const rt = new ManualRuntime({ seed: 5 });
  const root = Scope.root(rt);
  const lines: string[] = [];
  const log = createLogger("info", (line) => lines.push(line));
  const cluster = new Cluster(root, "c", { ...OPTIONS, log, ...options });
  /** What each port answers to CLUSTER SLOTS (default: the full map). */
  const answers = new Map<number, Answer>();
  const asked: number[] = [];
  const seen = new Set<FakeConn>();
  /** Play the nodes' control side: accept (or refuse) connects, answer CLUSTER SLOTS. */
  const serve = async () => {
    for (let i = 0; i < 4; i++) {
      await settle();
      for (const pending of [...rt.pendingConnects]) {
        if (pending.settled) continue;
        if (answers.get(pending.options.port) === "refuse") pending.reject(Object.assign(new Error(`connect ECONNREFUSED 127.0.0.1:${pending.options.port}`), { code: "ECONNREFUSED" }));
        else pending.resolve();
      }
      await rt.flush();
      for (const conn of rt.conns) {
        if (seen.has(conn) || conn.destroyed || conn.written.length === 0 || !decoder.decode(conn.written[0]).includes("SLOTS")) continue;
        seen.add(conn);
        asked.push(conn.remotePort);
        conn.receive(answers.get(conn.remotePort) ?? FULL);
      }
    }
    await settle();
  };
  const replies: string[] = [];
  const sink: ReplySink = { deliver: (_request, reply) => void replies.push(decoder.decode(reply)), deliveryFailed: (_request, error) => assert.fail(String(error)) };
  const get = (slot: number) => cluster.dispatch(new UpstreamRequest(encodeCommand(["GET", `k${slot}`]), slot, sink, 1));
  /** Data connections (not CLUSTER SLOTS) to `port` that were written to. */
  const dataConns = (port: number) => rt.conns.filter((c) => c.remotePort === port && c.written.length > 0 && !decoder.decode(c.written[0]).includes("SLOTS"));
  const ownerPort = (slot: number) => {
    const node = cluster.nodeFor(slot);
    return node instanceof Unavailable ? node.kind : node.port;
  };
  return { rt, root, cluster, lines, answers, asked, serve, replies, get, dataConns, ownerPort };
}

const warnings = (lines: string[]) => lines.filter((l) => l.startsWith("WARN"));

describe("a partial CLUSTER SLOTS", () => {
  it("keeps the previous owners of the slots it leaves out, reports it, and drops them once a second node agrees", async () => {
    const { rt, root, cluster, lines, answers, asked, serve, ownerPort } = setup();
    await serve();
    assert.equal(cluster.stats.coveredSlots, 16384);
    assert.equal(ownerPort(9000), 7001);

    // Every node now reports the partial map; the next round's first answer comes from one of them.
    for (const port of [7000, 7001, 7002]) answers.set(port, PARTIAL);
    cluster.requestRefresh();
    await rt.advance(1000);
    await serve();
    const first = `127.0.0.1:${asked.at(-1)}`;
    assert.equal(cluster.stats.coveredSlots, 16384, "coverage did not fall to 101");
    assert.equal(cluster.isReady, true);
    assert.equal(ownerPort(9000), 7001, "the slot kept its previous owner");
    assert.equal(ownerPort(50), 7000);
    assert.equal(cluster.stats.partialMapsRefused, 1);
    assert.equal(cluster.stats.keptSlots, 16384 - 101);
    assert.equal(cluster.stats.keptSlotsFrom, first);
    assert.deepEqual(cluster.status().partialMaps, { refused: 1, keptSlots: 16283, from: first });
    assert.deepEqual(warnings(lines), [`WARN partial slot map refused cluster=c from=${first} covered=101 kept=16283`]);

    // The refusal asked for an early round, which asks the other nodes first: a second node agrees.
    await rt.advance(1000);
    await serve();
    const second = `127.0.0.1:${asked.at(-1)}`;
    assert.notEqual(second, first, "the second opinion comes from another node");
    assert.equal(cluster.stats.coveredSlots, 101);
    assert.equal(ownerPort(9000), "clusterDown");
    assert.equal(cluster.stats.keptSlots, 0);
    assert.equal(warnings(lines)[1], `WARN slots without an owner, confirmed by a second node cluster=c from=${second} firstFrom=${first} slots=16283`);
    await root.close();
  });

  it("the same node saying it again confirms nothing (and is not logged again); a complete map ends it", async () => {
    const { rt, root, cluster, lines, answers, asked, serve, ownerPort } = setup({ seeds: [{ host: "127.0.0.1", port: 7000 }] });
    answers.set(7000, slots([0, 16383, 7000]));
    await serve();
    assert.equal(cluster.stats.coveredSlots, 16384);
    answers.set(7000, PARTIAL);
    for (let round = 0; round < 3; round++) {
      cluster.requestRefresh();
      await rt.advance(1000);
      await serve();
    }
    assert.ok(asked.length >= 4, `asked ${asked.length} times`);
    assert.equal(cluster.stats.coveredSlots, 16384);
    assert.equal(ownerPort(9000), 7000);
    assert.ok(cluster.stats.partialMapsRefused >= 3);
    assert.equal(warnings(lines).length, 1, warnings(lines).join("\n"));

    answers.set(7000, slots([0, 16383, 7000]));
    await rt.advance(1000);
    await serve();
    assert.equal(cluster.stats.keptSlots, 0);
    assert.equal(cluster.status().partialMaps.from, null);
    await root.close();
  });

  it("a map that gives the left-out slots a new owner is applied at once", async () => {
    const { rt, root, cluster, answers, serve, ownerPort } = setup();
    await serve();
    for (const port of [7000, 7001, 7002]) answers.set(port, PARTIAL);
    cluster.requestRefresh();
    await rt.advance(1000);
    await serve();
    assert.equal(cluster.stats.keptSlots, 16283);
    for (const port of [7000, 7001, 7002]) answers.set(port, slots([0, 8000, 7000], [8001, 16383, 7002]));
    await rt.advance(1000);
    await serve();
    assert.equal(cluster.stats.keptSlots, 0);
    assert.equal(ownerPort(9000), 7002);
    assert.equal(cluster.stats.coveredSlots, 16384);
    await root.close();
  });
});

describe("redirects to nodes outside the slot map", () => {
  it("open at most maxUnknownNodes nodes; beyond, the client is told its command was not applied and a refresh is asked for; the next map starts over", async () => {
    const { rt, root, cluster, lines, serve, replies, get, dataConns } = setup({ maxUnknownNodes: 2 });
    await serve();
    const sent = (slot: number) => get(slot);
    for (const slot of [1, 2, 3, 4]) sent(slot);
    await serve();
    const [conn] = dataConns(7000);
    assert.ok(conn);
    // Four MOVEDs from 7000 to four different hosts nobody has heard of.
    conn.receive([1, 2, 3, 4].map((slot) => `-MOVED ${slot} 10.0.0.${slot}:7100\r\n`).join(""));
    await settle();
    assert.equal(replies.length, 2, "the first two are followed (their nodes are connecting)");
    for (const reply of replies) {
      assert.match(reply, /^-ERR MOVED to 10\.0\.0\.[34]:7100 not followed: the node is outside the slot map and maxUnknownNodes \(2\) is reached; the command was not applied, the slot map is being refreshed\r\n$/);
    }
    assert.deepEqual(cluster.nodes().map((n) => n.address).sort(), ["10.0.0.1:7100", "10.0.0.2:7100", "127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"]);
    assert.equal(cluster.stats.unknownRedirectsRefused, 2);
    assert.deepEqual(cluster.status().unknownNodes, { open: 2, refused: 2 });
    assert.deepEqual(warnings(lines), ["WARN redirect outside the slot map refused cluster=c target=10.0.0.3:7100 limit=maxUnknownNodes max=2"], "logged once");

    // A MOVED to a node the map names is followed whatever the count.
    get(9000);
    await serve();
    dataConns(7001)[0]!.receive("-MOVED 9000 127.0.0.1:7002\r\n");
    await serve();
    assert.ok(dataConns(7002).length > 0, "followed to 7002");

    // The refresh the refusal asked for retires the strangers and starts the count over.
    await rt.advance(1000);
    await serve();
    assert.equal(cluster.nodes().length, 3);
    assert.equal(cluster.stats.unknownNodes, 0);
    get(10);
    await serve();
    dataConns(7000).at(-1)!.receive("-MOVED 10 10.0.0.9:7100\r\n");
    await settle();
    assert.ok(cluster.nodes().some((n) => n.address === "10.0.0.9:7100"), "followed again after the new map");
    await root.close();
  });

  it("maxUnknownNodes 0 follows redirects only to nodes the slot map names", async () => {
    const { root, serve, replies, get, dataConns, cluster } = setup({ maxUnknownNodes: 0 });
    await serve();
    get(1);
    await serve();
    dataConns(7000)[0]!.receive("-ASK 1 10.0.0.1:7100\r\n");
    await settle();
    assert.match(replies[0]!, /^-ERR ASK to 10\.0\.0\.1:7100 not followed/);
    assert.equal(cluster.stats.ask, 1);
    await root.close();
  });
});

describe("refresh failures", () => {
  it("are logged once per cause, with the recovery", async () => {
    const { rt, root, cluster, lines, answers, serve } = setup({ seeds: [{ host: "127.0.0.1", port: 7000 }] });
    answers.set(7000, "refuse");
    for (let i = 0; i < 3; i++) {
      await serve();
      await rt.runNextTimer();
    }
    await serve();
    assert.ok(cluster.stats.refreshFailures >= 3, `${cluster.stats.refreshFailures} failures`);
    const failed = warnings(lines);
    assert.equal(failed.length, 1, failed.join("\n"));
    assert.match(failed[0]!, /^WARN refresh failed cluster=c cause=ECONNREFUSED error="no node answered CLUSTER SLOTS \(127\.0\.0\.1:7000: connect ECONNREFUSED/);
    answers.set(7000, slots([0, 16383, 7000]));
    await rt.runNextTimer();
    await serve();
    assert.equal(cluster.isReady, true);
    const info = lines.filter((l) => l.startsWith("INFO"));
    assert.match(info[0]!, /^INFO refresh recovered cluster=c from=127\.0\.0\.1:7000 failedRounds=\d+$/);
    assert.equal(info[1], "INFO slot map applied cluster=c from=127.0.0.1:7000 covered=16384 primaries=1");
    await root.close();
  });
});
