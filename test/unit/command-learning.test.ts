/**
 * A cluster teaching the app's command table its servers' COMMAND (src/backends/cluster/command-learning.ts),
 * on a manual clock with fake sockets: asked once the slot map is complete and never again after a
 * success; asked again after a later refresh when it failed or hung past refreshTimeoutMs; and
 * cancelled with the cluster, like any discovery work, when the cluster is removed mid-request.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cluster, type ClusterOptions } from "../../src/backends/cluster/cluster.ts";
import { CommandTable, keyIndexes } from "../../src/commands/keys.ts";
import { COMMANDS } from "../../src/commands/generated/redis-7.0.ts";
import { Scope, lateCallbacks } from "../../src/scope/scope.ts";
import { ManualRuntime, settle, type FakeConn } from "../support/manual-runtime.ts";

const SLOTS_REPLY = "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$4\r\nid-1\r\n";

/** RESP2 encoding of a test reply: strings as bulk strings, numbers as integers. */
function resp(value: unknown): string {
  if (Array.isArray(value)) return `*${value.length}\r\n${value.map(resp).join("")}`;
  if (typeof value === "number") return `:${value}\r\n`;
  const s = String(value);
  return `$${new TextEncoder().encode(s).length}\r\n${s}\r\n`;
}

/** COMMAND as a server that knows ZUNION (absent from the test's table) would answer it. */
const COMMAND_REPLY = resp([
  [
    "zunion", -3, ["readonly", "movablekeys"], 0, 0, 0, ["@read"], [],
    [["flags", ["RO", "access"], "begin_search", ["type", "index", "spec", ["index", 1]], "find_keys", ["type", "keynum", "spec", ["keynumidx", 0, "firstkey", 1, "keystep", 1]]]],
    [],
  ],
]);

const OPTIONS: Omit<ClusterOptions, "commands"> = {
  seeds: [{ host: "127.0.0.1", port: 7000 }],
  refreshIntervalMs: 5000,
  refreshTimeoutMs: 3000,
  redirectRefreshIntervalMs: 1000,
  redirectRefreshThreshold: 1,
  maxRedirects: 5,
  opTimeoutMs: 1000,
  connectTimeoutMs: 1000,
  maxBulkBytes: 1 << 20,
  connectionsPerNode: 1,
  probeBackoffMinMs: 100,
  probeBackoffMaxMs: 2000,
  maxUnknownNodes: 100,
  maxUpstreamQueueBytes: 1 << 20,
};

type Answer = "answer" | "error" | "ignore";

function setup() {
  const rt = new ManualRuntime({ seed: 11 });
  const root = Scope.root(rt);
  const table = new CommandTable(COMMANDS.filter((row) => row[0] !== "ZUNION"));
  const cluster = new Cluster(root, "c", { ...OPTIONS, commands: table });
  const seen = new Set<FakeConn>();
  const asked = { slots: 0, command: 0 };
  /** Accept every connect, then answer each new request: CLUSTER SLOTS always, COMMAND as told. */
  const serve = async (command: Answer = "answer") => {
    for (let i = 0; i < 3; i++) {
      await settle();
      for (const pending of [...rt.pendingConnects]) if (!pending.settled) pending.resolve();
      await rt.flush();
      for (const conn of rt.conns) {
        if (seen.has(conn) || conn.destroyed || conn.written.length === 0) continue;
        seen.add(conn);
        const request = new TextDecoder().decode(conn.written[0]);
        if (request.includes("SLOTS")) {
          asked.slots++;
          conn.receive(SLOTS_REPLY);
        } else if (request.includes("COMMAND")) {
          asked.command++;
          if (command === "answer") conn.receive(COMMAND_REPLY);
          if (command === "error") conn.receive("-NOPERM this user has no permissions to run the 'command' command\r\n");
        }
      }
    }
    await settle();
  };
  const knowsZunion = () => {
    const args = ["ZUNION", "2", "a", "b"].map((s) => new TextEncoder().encode(s));
    const info = table.lookup("ZUNION", args);
    return info !== null && JSON.stringify(keyIndexes(info, args)) === "[2,3]";
  };
  return { rt, root, table, cluster, serve, asked, knowsZunion };
}

describe("learning the command table at discovery", () => {
  it("asks COMMAND once the slot map is complete, merges it, and never asks again", async () => {
    const { rt, root, table, cluster, serve, asked, knowsZunion } = setup();
    assert.equal(knowsZunion(), false, "ZUNION is not in the starting table");
    await serve();
    assert.equal(cluster.isReady, true, "the slot map is complete");
    assert.equal(asked.command, 1, "COMMAND was asked once");
    assert.equal(knowsZunion(), true, "ZUNION is known, with its keys");
    assert.equal(table.learnedCount, 1);
    assert.equal(cluster.commands!.learned, true);
    for (let i = 0; i < 3; i++) {
      await rt.advance(5000);
      await serve();
    }
    assert.ok(asked.slots >= 4, `refreshes went on (${asked.slots} CLUSTER SLOTS)`);
    assert.equal(asked.command, 1, "a cluster learns once in its lifetime");
    assert.ok(rt.conns.every((c) => c.destroyed), "every control connection was closed");
    await root.close();
  });

  it("a refused COMMAND is asked again after a later refresh", async () => {
    const { rt, root, cluster, serve, asked, knowsZunion } = setup();
    await serve("error");
    assert.equal(asked.command, 1);
    assert.equal(cluster.commands!.learned, false);
    assert.match(cluster.commands!.lastError ?? "", /NOPERM/);
    assert.equal(knowsZunion(), false);
    await rt.advance(5000);
    await serve("answer");
    assert.equal(asked.command, 2, "asked again with the next refresh");
    assert.equal(knowsZunion(), true);
    assert.equal(cluster.commands!.lastError, null);
    await root.close();
  });

  it("a COMMAND that hangs gives up after refreshTimeoutMs and is asked again later", async () => {
    const { rt, root, cluster, serve, asked, knowsZunion } = setup();
    await serve("ignore");
    assert.equal(asked.command, 1);
    const hanging = rt.conns.find((c) => new TextDecoder().decode(c.written[0]).includes("COMMAND"))!;
    assert.equal(hanging.destroyed, false, "still waiting");
    await rt.advance(3000);
    assert.equal(hanging.destroyed, true, "the request was given up at its deadline");
    assert.match(cluster.commands!.lastError ?? "", /COMMAND/);
    await rt.advance(2000);
    await serve("answer");
    assert.equal(asked.command, 2);
    assert.equal(knowsZunion(), true);
    await root.close();
  });

  it("removing the cluster while COMMAND is in flight cancels it, leaves nothing alive and runs no callback", async () => {
    const { rt, root, cluster, serve, asked, knowsZunion } = setup();
    const late = lateCallbacks();
    await serve("ignore");
    assert.equal(asked.command, 1);
    const inFlight = cluster.scope.inspect().children.find((c) => c.path.endsWith("/discovery"))!;
    assert.ok(inFlight.children.some((c) => c.path.includes("COMMAND from")), `the request is listed in the discovery scope: ${JSON.stringify(inFlight)}`);
    await cluster.close(0);
    assert.equal(cluster.scope.state, "closed");
    assert.deepEqual(root.inspect().children, [], "no trace of the cluster scope");
    assert.ok(rt.conns.every((c) => c.destroyed), "every connection was destroyed");
    await rt.advance(60_000);
    await serve("answer");
    assert.equal(asked.command, 1, "nothing asked after removal");
    assert.equal(knowsZunion(), false, "nothing learned after removal");
    assert.equal(rt.pendingTimers(), 0);
    assert.equal(lateCallbacks(), late);
    await root.close();
  });
});
