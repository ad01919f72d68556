/**
 * slotgate learns its command table from a real Redis Cluster at discovery: the proxy's table
 * ends up with every command `COMMAND COUNT` counts, and a command missing from its built-in rows
 * (the test starts it without ZUNION) is routed by its key specs once learned. Multi-key commands
 * slotgate does not split answer Redis Cluster's own CROSSSLOT when their keys are in different
 * slots. Runs on Node, Bun and Deno.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { CommandTable } from "../../src/commands/keys.ts";
import { COMMANDS } from "../../src/commands/generated/redis-7.0.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp, startProxy } from "../support/proxy.ts";
import { until } from "../support/within.ts";

const SLOW = { timeout: 120_000 };
const CROSSSLOT = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";
const encoder = new TextEncoder();
const slotOf = (key: string) => keySlot(encoder.encode(key));

describe("a command table learned from the cluster", () => {
  const cluster = lazy(() => startLocalCluster());
  // Built without ZUNION: only the cluster can teach it.
  const commands = new CommandTable(COMMANDS.filter((row) => row[0] !== "ZUNION"));
  const proxy = lazy(async () => startProxy((await cluster.get()).seeds, {}, { commands }));
  const clients: RawClient[] = [];
  after(async () => {
    for (const client of clients) client.close();
    await proxy.stop();
    await cluster.stop();
  });

  async function raw(): Promise<RawClient> {
    const client = await RawClient.connect((await proxy.get()).port);
    clients.push(client);
    return client;
  }

  /** Send one command and wait for its whole reply (`done` says when the text is complete). */
  async function ask(client: RawClient, args: string[], done: (reply: string) => boolean = (r) => r.endsWith("\r\n")): Promise<string> {
    const from = client.received.length;
    client.send(resp(...args));
    const text = await client.waitFor((all) => all.length > from && done(all.slice(from)));
    return text.slice(from);
  }

  it("learns as many commands as COMMAND COUNT says, ZUNION among them", SLOW, async () => {
    assert.equal(commands.lookup("ZUNION", []), null, "ZUNION is not in the starting table");
    const { app } = await proxy.get();
    const local = await cluster.get();
    await until("the proxy to learn the cluster's commands", () => commands.learnedCount > 0);
    assert.equal(app.commands, commands, "the app uses the table it was given");
    const count = Number(await local.command(local.nodes[0]!.port, "COMMAND", "COUNT"));
    assert.ok(count > 200, `COMMAND COUNT is ${count}`);
    assert.equal(commands.learnedCount, count, "every command the server counts was learned");
    assert.equal(commands.size, count, "the table now holds exactly the server's commands");
    assert.ok(commands.lookup("ZUNION", []), "ZUNION was learned");
    const client = await raw();
    const info = await ask(client, ["INFO"], (r) => r.includes("cluster_enabled"));
    assert.match(info, new RegExp(`slotgate_commands_learned:${count}\\r\\n`), "INFO shows the learned table");
  });

  it("a learned command is routed by its keys: same slot served, different slots CROSSSLOT", SLOW, async () => {
    const { app } = await proxy.get();
    await until("the proxy to learn the cluster's commands", () => commands.learnedCount > 0);
    const client = await raw();
    const a = "{learned}:a";
    const b = "{learned}:b";
    assert.equal(await ask(client, ["ZADD", a, "1", "x"]), ":1\r\n");
    assert.equal(await ask(client, ["ZADD", b, "2", "y"]), ":1\r\n");
    const moved = app.cluster.stats.moved;
    const union = await ask(client, ["ZUNION", "2", a, b, "WITHSCORES"], (r) => r.split("\r\n").length >= 10);
    assert.equal(union, "*4\r\n$1\r\nx\r\n$1\r\n1\r\n$1\r\ny\r\n$1\r\n2\r\n");
    assert.equal(app.cluster.stats.moved, moved, "sent straight to the owner of the keys' slot, never redirected");
    assert.notEqual(slotOf("zu:a"), slotOf("zu:b"), "the test keys are in different slots");
    assert.equal(await ask(client, ["ZUNION", "2", "zu:a", "zu:b"]), CROSSSLOT);
  });

  it("multi-key commands slotgate does not split answer Redis Cluster's CROSSSLOT", SLOW, async () => {
    const client = await raw();
    assert.notEqual(slotOf("{a}x"), slotOf("{b}y"), "the keys are in different slots");
    assert.equal(await ask(client, ["SUNION", "{a}x", "{b}y"]), CROSSSLOT);
    assert.equal(await ask(client, ["EVAL", "return 1", "2", "{a}x", "{b}y"]), CROSSSLOT);
    assert.equal(await ask(client, ["XREAD", "STREAMS", "{a}x", "{b}y", "0", "0"]), CROSSSLOT);
    assert.equal(await ask(client, ["SORT", "{a}x", "STORE", "{b}y"]), CROSSSLOT);
    // One slot: served, the STORE destination included.
    assert.equal(await ask(client, ["RPUSH", "{s}list", "3", "1", "2"]), ":3\r\n");
    assert.equal(await ask(client, ["SORT", "{s}list", "STORE", "{s}sorted"]), ":3\r\n");
    assert.equal(await ask(client, ["LRANGE", "{s}sorted", "0", "-1"], (r) => r.split("\r\n").length >= 8), "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");
  });
});
