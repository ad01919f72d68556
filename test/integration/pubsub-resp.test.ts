/**
 * Pub/sub through slotgate byte for byte: the same sequences of commands and publishes are played
 * against slotgate (in front of a real 3-primary cluster) and against a standalone redis-server,
 * and every frame the subscriber reads must be identical: confirmations and their counts, messages,
 * PING in subscribed mode, refusals, unsubscribing in every form, RESET, QUIT; RESP3 pushes once
 * slotgate speaks RESP3. Cluster-only answers (CROSSSLOT) are compared with a cluster node's, and
 * PUBSUB introspection with what the nodes themselves report. Runs on Node, Bun and Deno.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { startLocalCluster, startStandaloneRedis } from "../../scripts/local-cluster.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp, startProxy } from "../support/proxy.ts";
import { bulks, splitFrames } from "../support/exchange.ts";
import { until } from "../support/within.ts";

const SLOW = { timeout: 120_000 };

/** Commands to send on the subscriber, or a message to publish from another connection, and how many frames the subscriber then reads. */
interface Step {
  note: string;
  send?: string[][];
  publish?: string[];
  frames: number;
}

describe("pub/sub frames through slotgate are Redis's own", () => {
  const cluster = lazy(() => startLocalCluster({ replicasPerPrimary: 0 }));
  const redis = lazy(() => startStandaloneRedis());
  const proxy = lazy(async () => startProxy((await cluster.get()).seeds));
  const raws: RawClient[] = [];
  after(async () => {
    for (const raw of raws) raw.close();
    await proxy.stop();
    await Promise.all([cluster.stop(), redis.stop()]);
  });

  async function connect(port: number): Promise<RawClient> {
    const raw = await RawClient.connect(port);
    raws.push(raw);
    return raw;
  }

  /** Play `steps` against a subscriber on `subscriberPort`; the frames read at each step, labelled. The subscriber stays open. */
  async function play(subscriberPort: number, publisherPort: number, steps: Step[]): Promise<{ transcript: string[]; subscriber: RawClient }> {
    const subscriber = await connect(subscriberPort);
    const publisher = await connect(publisherPort);
    const transcript: string[] = [];
    let seen = 0;
    let published = 0;
    for (const step of steps) {
      if (step.send) subscriber.send(step.send.map((args) => resp(...args)).join(""));
      if (step.publish) {
        publisher.send(resp(...step.publish));
        published++;
        await publisher.waitFor((text) => splitFrames(text).length >= published);
      }
      const want = seen + step.frames;
      const text = await subscriber.waitFor((received) => splitFrames(received).length >= want);
      transcript.push(`${step.note}: ${splitFrames(text).slice(seen, want).join("")}`);
      seen = want;
    }
    publisher.close();
    return { transcript, subscriber };
  }

  /** The transcripts of slotgate and of a standalone Redis for the same steps must be equal, but for the first `unequal` steps. */
  async function compare(steps: Step[], unequal = 0): Promise<{ slotgate: RawClient; expected: string[] }> {
    const server = await redis.get();
    const { port } = await proxy.get();
    const reference = await play(server.port, server.port, steps);
    reference.subscriber.close();
    const through = await play(port, port, steps);
    assert.deepEqual(through.transcript.slice(unequal), reference.transcript.slice(unequal), "slotgate's frames are Redis's, step by step");
    return { slotgate: through.subscriber, expected: reference.transcript };
  }

  it("RESP2 subscribed mode: confirmations with Redis's counts, messages of every kind, PING, refusals", SLOW, async () => {
    const { slotgate, expected } = await compare([
      { note: "subscribe, one channel twice", send: [["SUBSCRIBE", "news.a", "news.b", "news.a"]], frames: 3 },
      { note: "psubscribe", send: [["PSUBSCRIBE", "news.*"]], frames: 1 },
      { note: "ssubscribe (counted apart)", send: [["SSUBSCRIBE", "{shard}.1", "{shard}.2"]], frames: 2 },
      { note: "ping with and without an argument", send: [["PING"], ["PING", "hello"]], frames: 2 },
      { note: "refused in subscribed mode", send: [["GET", "k"], ["CLIENT", "ID"], ["ECHO", "x"], ["HELLO", "3"], ["PUBSUB", "NUMPAT"], ["PUBLISH", "c", "m"]], frames: 6 },
      { note: "errors that come before the refusal", send: [["PING", "a", "b"], ["NOSUCH", "x"], ["SUBSCRIBE"], ["GET"]], frames: 4 },
      { note: "a channel also matched by a pattern", publish: ["PUBLISH", "news.b", "one"], frames: 2 },
      { note: "a pattern alone", publish: ["PUBLISH", "news.c", "two"], frames: 1 },
      { note: "a shard channel", publish: ["SPUBLISH", "{shard}.2", "three"], frames: 1 },
      { note: "a payload with CRLF and non-ASCII bytes", publish: ["PUBLISH", "news.a", "x\r\ny é"], frames: 2 },
      { note: "unsubscribe one channel", send: [["UNSUBSCRIBE", "news.a"]], frames: 1 },
      { note: "its messages stop, the pattern's do not", publish: ["PUBLISH", "news.a", "four"], frames: 1 },
      { note: "sentinel", send: [["PING", "end"]], frames: 1 },
    ]);
    slotgate.close();
    assert.ok(expected.some((step) => step.includes("pmessage")) && expected.some((step) => step.includes("smessage")), "the script covers every message kind");
  });

  it("unsubscribing in every form, leaving subscribed mode, RESET and QUIT, as Redis answers them", SLOW, async () => {
    const { slotgate } = await compare([
      { note: "nothing subscribed yet", send: [["UNSUBSCRIBE"], ["PUNSUBSCRIBE"], ["SUNSUBSCRIBE"]], frames: 3 },
      { note: "names never subscribed", send: [["UNSUBSCRIBE", "x", "y"], ["SUNSUBSCRIBE", "{z}1", "{z}2"]], frames: 4 },
      { note: "not in subscribed mode: commands run", send: [["GET", "pubsub:missing"]], frames: 1 },
      { note: "one of each kind", send: [["SUBSCRIBE", "c1"], ["PSUBSCRIBE", "p1*"], ["SSUBSCRIBE", "{s}a"]], frames: 3 },
      { note: "sunsubscribe all", send: [["SUNSUBSCRIBE"]], frames: 1 },
      { note: "still subscribed", send: [["GET", "pubsub:missing"]], frames: 1 },
      { note: "punsubscribe all", send: [["PUNSUBSCRIBE"]], frames: 1 },
      { note: "unsubscribe all leaves subscribed mode", send: [["UNSUBSCRIBE"], ["GET", "pubsub:missing"]], frames: 2 },
      { note: "then nothing is left", send: [["UNSUBSCRIBE"], ["SUNSUBSCRIBE"]], frames: 2 },
      { note: "shard channels alone keep subscribed mode", send: [["SSUBSCRIBE", "{s}b"], ["UNSUBSCRIBE"], ["GET", "pubsub:missing"], ["SUNSUBSCRIBE", "{s}b"]], frames: 4 },
      { note: "RESET leaves subscribed mode", send: [["SUBSCRIBE", "c2"], ["RESET"], ["GET", "pubsub:missing"], ["PING"]], frames: 4 },
      { note: "QUIT while subscribed", send: [["SSUBSCRIBE", "{s}c"], ["QUIT"]], frames: 2 },
    ]);
    await slotgate.waitClosed();
  });

  it("UNSUBSCRIBE without arguments confirms every channel, counting down to the patterns left", SLOW, async () => {
    const normalise = (text: string) => {
      const frames = splitFrames(text).slice(-4);
      return { channels: frames.map((frame) => frame.split("\r\n")[4]).sort(), counts: frames.map((frame) => frame.split("\r\n")[5]) };
    };
    const results = [];
    for (const port of [(await redis.get()).port, (await proxy.get()).port]) {
      const client = await connect(port);
      client.send(resp("SUBSCRIBE", "u1", "u2", "u3", "u4") + resp("PSUBSCRIBE", "u*") + resp("UNSUBSCRIBE"));
      results.push(normalise(await client.waitFor((text) => splitFrames(text).length >= 9)));
      client.close();
    }
    assert.deepEqual(results[0], { channels: ["u1", "u2", "u3", "u4"], counts: [":4", ":3", ":2", ":1"] }, "Redis's answer, in its own order");
    assert.deepEqual(results[1], results[0], "slotgate's answer, order aside");
  });

  it("SSUBSCRIBE and SUNSUBSCRIBE across slots: the CROSSSLOT error of a cluster node", SLOW, async () => {
    const node = (await cluster.get()).nodes[0]!;
    const answers = [];
    for (const port of [node.port, (await proxy.get()).port]) {
      const client = await connect(port);
      client.send(resp("SSUBSCRIBE", "{a}1", "{b}1") + resp("SUNSUBSCRIBE", "{a}1", "{b}1") + resp("PING"));
      answers.push(splitFrames(await client.waitFor((text) => splitFrames(text).length >= 3)));
      client.close();
    }
    assert.equal(answers[0]![0], "-CROSSSLOT Keys in request don't hash to the same slot\r\n", "the node's own answer");
    assert.deepEqual(answers[1], answers[0], "slotgate answers as the node does");
  });

  it("RESP3: confirmations and messages are pushes and any command runs while subscribed", SLOW, async (t) => {
    const { port } = await proxy.get();
    const probe = await connect(port);
    probe.send(resp("HELLO", "3"));
    const hello = await probe.waitFor((text) => splitFrames(text).length >= 1);
    probe.close();
    if (hello.startsWith("-NOPROTO")) return t.skip("slotgate does not speak RESP3 yet (HELLO 3 answers -NOPROTO)");
    // HELLO's reply names the server (slotgate's fields differ): compare every step after it.
    const { slotgate, expected } = await compare(
      [
        { note: "hello 3", send: [["HELLO", "3"]], frames: 1 },
        { note: "subscribe", send: [["SUBSCRIBE", "r3.a"], ["PSUBSCRIBE", "r3.*"], ["SSUBSCRIBE", "{r3}s"]], frames: 3 },
        { note: "commands run while subscribed", send: [["PING"], ["GET", "pubsub:missing"], ["ECHO", "x"]], frames: 3 },
        { note: "a message as a push", publish: ["PUBLISH", "r3.a", "one"], frames: 2 },
        { note: "a shard message as a push", publish: ["SPUBLISH", "{r3}s", "two"], frames: 1 },
        { note: "unsubscribe", send: [["UNSUBSCRIBE"], ["UNSUBSCRIBE"], ["PUNSUBSCRIBE"], ["SUNSUBSCRIBE"]], frames: 4 },
        { note: "sentinel", send: [["PING"]], frames: 1 },
      ],
      1,
    );
    slotgate.close();
    assert.ok(expected.some((step) => step.includes(bulks(["message", "r3.a", "one"], true))), "messages arrive as pushes");
  });

  it("PUBSUB CHANNELS, NUMSUB, NUMPAT, SHARDCHANNELS and SHARDNUMSUB add up every primary's subscribers", SLOW, async () => {
    const nodes = (await cluster.get()).nodes;
    const { port } = await proxy.get();
    const through = await connect(port);
    through.send(resp("SUBSCRIBE", "intro.a", "intro.b") + resp("PSUBSCRIBE", "intro.*") + resp("SSUBSCRIBE", "{intro}.s"));
    await through.waitFor((text) => splitFrames(text).length >= 4);
    // A direct subscriber on the node owning {intro}.s: a node answers for its own clients only.
    const ownerPort = (await (await cluster.get()).ownerOfSlot(slotOfTag("intro"))).port;
    const direct = await connect(ownerPort);
    direct.send(resp("SUBSCRIBE", "intro.a") + resp("SSUBSCRIBE", "{intro}.s"));
    await direct.waitFor((text) => splitFrames(text).length >= 2);

    const ask = async (...args: string[]) => {
      const client = await connect(port);
      client.send(resp(...args));
      const [reply] = splitFrames(await client.waitFor((text) => splitFrames(text).length >= 1));
      client.close();
      return reply!;
    };
    const sumOverNodes = async (...args: string[]) => {
      let sum = 0;
      for (const node of nodes) sum += Number(await (await cluster.get()).command(node.port, ...args));
      return sum;
    };
    // Other tests' subscriber connections close asynchronously: wait for the counts to settle.
    await until("PUBSUB NUMPAT to count the one pattern", async () => (await ask("PUBSUB", "NUMPAT")) === ":1\r\n");
    assert.equal(await sumOverNodes("PUBSUB", "NUMPAT"), 1, "the nodes agree on one pattern");
    assert.equal(await ask("PUBSUB", "NUMSUB", "intro.a", "intro.b", "intro.none", "intro.a"), bulks(["intro.a", 2, "intro.b", 1, "intro.none", 0, "intro.a", 2]));
    assert.equal(await ask("PUBSUB", "NUMSUB"), "*0\r\n");
    const channels = splitFrames((await ask("PUBSUB", "CHANNELS", "intro.*")).replace(/^\*\d+\r\n/, "")).sort();
    assert.deepEqual(channels, ["$7\r\nintro.a\r\n", "$7\r\nintro.b\r\n"], "channels united over the primaries, each once");
    assert.equal(await ask("PUBSUB", "SHARDCHANNELS", "{intro}*"), bulks(["{intro}.s"]));
    assert.equal(await ask("PUBSUB", "SHARDNUMSUB", "{intro}.s", "{intro}.none"), bulks(["{intro}.s", 2, "{intro}.none", 0]));
    assert.match(await ask("PUBSUB", "HELP"), /^\*\d+\r\n\+PUBSUB <subcommand>/);
    assert.equal(await ask("PUBSUB", "NOSUCH"), "-ERR unknown subcommand 'NOSUCH'. Try PUBSUB HELP.\r\n");
    assert.equal(await ask("PUBSUB", "NUMPAT", "x"), "-ERR wrong number of arguments for 'pubsub|numpat' command\r\n");

    through.close();
    await until("slotgate's subscriptions to leave the nodes", async () => (await ask("PUBSUB", "NUMSUB", "intro.a", "intro.b")) === bulks(["intro.a", 1, "intro.b", 0]));
    assert.equal(await ask("PUBSUB", "SHARDNUMSUB", "{intro}.s"), bulks(["{intro}.s", 1]), "the direct shard subscriber remains");
    assert.equal(await ask("PUBSUB", "NUMPAT"), ":0\r\n");
  });
});

/** The hash slot of a `{tag}` key. */
function slotOfTag(tag: string): number {
  return keySlot(new TextEncoder().encode(`{${tag}}`));
}
