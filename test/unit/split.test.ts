/**
 * Split commands (MGET, MSET, DEL...) run in bounded steps: a chunk of parts per turn of the event
 * loop, at most two chunks unanswered, part replies merged in key order as they come. A client
 * that owns the command lends it its turns (`later`); here the test runs them one at a time.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SPLIT_COMMANDS, SplitCommand, type SplitRoute, type SplitRouting } from "../../src/proxy/multi/split.ts";
import type { UpstreamRequest } from "../../src/backend/request.ts";
import { FakeClient } from "../support/fake-client.ts";
import { fakeBackend } from "../support/fake-backend.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function setup(chunk: number, routing: (backend: ReturnType<typeof fakeBackend>) => Partial<SplitRouting> = () => ({})) {
  const sent: UpstreamRequest[] = [];
  const backend = fakeBackend("main", { dispatch: (request) => void sent.push(request), shardOf: (key) => key.length });
  const route: SplitRoute = { backend, strip: 0 };
  const client = new FakeClient(2);
  client.splitChunkParts = chunk;
  const split = (...words: string[]) => {
    const command = new SplitCommand(SPLIT_COMMANDS.get(words[0]!)!, client, words.map((w) => enc.encode(w)), {
      only: route,
      match: () => route,
      noRoute: (key) => enc.encode(`-ERR no route for key '${dec.decode(key)}'\r\n`),
      ...routing(backend),
    }, true);
    command.start();
    return command;
  };
  const answer = (request: UpstreamRequest, reply: string) => request.sink.deliver(request, enc.encode(reply));
  return { sent, client, split, answer };
}

describe("a split command in bounded steps", () => {
  it("a chunk of parts per turn, never more than two chunks unanswered, merged in key order whatever order replies come in", () => {
    const { sent, client, split, answer } = setup(100);
    const keys = Array.from({ length: 10_000 }, (_, i) => `key:${i}`);
    const command = split("MGET", ...keys);
    assert.equal(sent.length, 0, "a big command starts on the next turn, not in the caller's");
    client.runTurn();
    assert.equal(sent.length, 100, "the first step sends one chunk");
    let answered = 0;
    let turns = 0;
    let mostUnanswered = 0;
    while (command.reply === null) {
      // Answer the newer half first, then the rest: replies out of key order.
      const open = sent.slice(answered);
      mostUnanswered = Math.max(mostUnanswered, open.length);
      const half = Math.ceil(open.length / 2);
      for (const request of [...open.slice(half), ...open.slice(0, half)]) answer(request, `$${request.part.toString().length}\r\n${request.part}\r\n`);
      answered = sent.length;
      if (command.reply === null) {
        assert.ok(client.runTurn() > 0, "a step is waiting for the next turn");
        turns++;
      }
    }
    assert.ok(mostUnanswered <= 200, `at most two chunks unanswered (saw ${mostUnanswered})`);
    assert.ok(turns >= 10_000 / 200, `${turns} turns`);
    assert.equal(sent.length, 10_000);
    assert.ok(sent.every((request, i) => request.part === i && dec.decode(request.frame) === `*2\r\n$3\r\nGET\r\n$${keys[i]!.length}\r\n${keys[i]}\r\n` && request.readOnly && request.slot === keys[i]!.length));
    const expected = `*10000\r\n${keys.map((_, i) => `$${String(i).length}\r\n${i}\r\n`).join("")}`;
    assert.equal(client.replies[0], expected);
    assert.equal(client.held, 0, "what the command held is released once merged");
  });

  it("what a big MGET holds is reported to its client while it is merged, then released", () => {
    const { sent, client, split, answer } = setup(64);
    const command = split("MGET", ...Array.from({ length: 5000 }, (_, i) => `k${i}`));
    const value = `$1000\r\n${"v".repeat(1000)}\r\n`;
    let most = 0;
    let answered = 0;
    while (command.reply === null) {
      for (; answered < sent.length; answered++) answer(sent[answered]!, value);
      most = Math.max(most, client.held);
      client.runTurn();
    }
    assert.ok(most > 1_000_000, `held up to ${most} bytes`);
    assert.equal(client.held, 0);
    assert.equal(command.reply.length, "*5000\r\n".length + 5000 * value.length);
  });

  it("a small command runs whole in its first step, as before", () => {
    const { sent, client, split, answer } = setup(1024);
    split("MSET", "a", "1", "b", "2", "c", "3");
    assert.deepEqual(sent.map((r) => dec.decode(r.frame)), ["a", "b", "c"].map((k, i) => `*3\r\n$3\r\nSET\r\n$1\r\n${k}\r\n$1\r\n${i + 1}\r\n`));
    assert.equal(client.steps.length, 0, "nothing left for a later turn");
    answer(sent[1]!, "-ERR b failed\r\n");
    answer(sent[2]!, "-ERR c failed\r\n");
    answer(sent[0]!, "+OK\r\n");
    assert.deepEqual(client.replies, ["-ERR b failed\r\n"], "the first error in key order wins");
  });

  it("DEL over many steps sums the parts; an error in any part wins", () => {
    const { sent, client, split, answer } = setup(10);
    const command = split("DEL", ...Array.from({ length: 95 }, (_, i) => `k${i}`));
    for (let answered = 0; command.reply === null; client.runTurn()) for (; answered < sent.length; answered++) answer(sent[answered]!, answered % 3 === 0 ? ":1\r\n" : ":0\r\n");
    assert.deepEqual(client.replies, [":32\r\n"]);
    const failing = setup(10);
    const other = failing.split("UNLINK", ...Array.from({ length: 40 }, (_, i) => `k${i}`));
    for (let answered = 0; other.reply === null; failing.client.runTurn()) for (; answered < failing.sent.length; answered++) failing.answer(failing.sent[answered]!, answered === 25 ? "-CLUSTERDOWN down\r\n" : ":1\r\n");
    assert.deepEqual(failing.client.replies, ["-CLUSTERDOWN down\r\n"]);
  });

  it("every key is routed before the first part is sent: a key with no route fails the command with nothing sent", () => {
    const { sent, client, split } = setup(10, (backend) => ({ only: null, match: (key) => (dec.decode(key) === "k777" ? null : { backend, strip: 0 }) }));
    const command = split("MSET", ...Array.from({ length: 1000 }, (_, i) => [`k${i}`, "v"]).flat());
    while (command.reply === null && client.runTurn() > 0);
    assert.deepEqual(client.replies, ["-ERR no route for key 'k777'\r\n"]);
    assert.equal(sent.length, 0);
  });

  it("keys of several routes go each to its own backend, with the route's prefix stripped", () => {
    const other: UpstreamRequest[] = [];
    const { sent, split } = setup(1024, (backend) => {
      const users = { backend: fakeBackend("users", { dispatch: (request) => void other.push(request), shardOf: () => 9 }), strip: 5 };
      return { only: null, match: (key) => (dec.decode(key).startsWith("user:") ? users : { backend, strip: 0 }) };
    });
    split("EXISTS", "a", "user:bob", "b");
    assert.deepEqual(sent.map((r) => [r.part, dec.decode(r.frame)]), [[0, "*2\r\n$6\r\nEXISTS\r\n$1\r\na\r\n"], [2, "*2\r\n$6\r\nEXISTS\r\n$1\r\nb\r\n"]]);
    assert.deepEqual(other.map((r) => [r.part, r.slot, dec.decode(r.frame)]), [[1, 9, "*2\r\n$6\r\nEXISTS\r\n$3\r\nbob\r\n"]]);
  });

  it("a part answered twice is an invariant fault for that client, not a second merge", () => {
    const { sent, client, split, answer } = setup(1024);
    split("MGET", "a", "b");
    answer(sent[0]!, "$1\r\n1\r\n");
    answer(sent[0]!, "$1\r\n2\r\n");
    assert.equal(client.faults.length, 1);
    assert.match(client.faults[0]!.message, /answered twice/);
    answer(sent[1]!, "$1\r\n3\r\n");
    assert.deepEqual(client.replies, ["*2\r\n$1\r\n1\r\n$1\r\n3\r\n"]);
  });
});
