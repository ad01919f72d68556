/** Whole-cluster commands: the merges of per-primary replies, and how each command is served. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  FirstFound,
  allSucceeded,
  concatArrays,
  fanOut,
  logicalAnd,
  oneSucceeded,
  sumIntegers,
  tipMerge,
} from "../../src/proxy/multi/fanout.ts";
import { planOf } from "../../src/proxy/multi/whole-cluster.ts";
import { commandInfo } from "../../src/commands/keys.ts";
import { RouteTable } from "../../src/proxy/routing/routes.ts";
import { Unavailable, type Backend } from "../../src/backend/contract.ts";
import { fakeBackend as baseBackend } from "../support/fake-backend.ts";
import type { UpstreamRequest } from "../../src/backend/request.ts";
import { encodeCommand } from "../../src/resp/encode.ts";
import { FakeClient } from "../support/fake-client.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (text: string) => enc.encode(text);
const text = (bytes: Uint8Array | null) => (bytes === null ? null : dec.decode(bytes));
const info = (...words: string[]) => commandInfo(words[0]!, words.map(b))!;

/** A backend whose requests wait in `sent` until the test answers them. */
function fakeBackend(name: string, shards: number[]): Backend & { sent: UpstreamRequest[] } {
  const sent: UpstreamRequest[] = [];
  return {
    ...baseBackend(name, {
      dispatch: (request) => void sent.push(request),
      anyShard: () => shards[0]!,
      primaries: () => shards.slice(),
    }),
    sent,
  };
}

describe("merges of per-primary replies", () => {
  it("KEYS: arrays concatenated in shard order; an empty or nil array adds nothing; an error wins", () => {
    const merged = concatArrays([b("*2\r\n$1\r\na\r\n$2\r\nbb\r\n"), b("*0\r\n"), b("*-1\r\n"), b("*1\r\n$1\r\nc\r\n")]);
    assert.equal(text(merged), "*3\r\n$1\r\na\r\n$2\r\nbb\r\n$1\r\nc\r\n");
    assert.equal(text(concatArrays([b("*0\r\n"), b("*0\r\n")])), "*0\r\n");
    assert.equal(text(concatArrays([b("*1\r\n$1\r\na\r\n"), b("-ERR boom\r\n"), b("-ERR later\r\n")])), "-ERR boom\r\n");
  });

  it("DBSIZE: integers summed; an error wins; anything else is reported, not summed as 0", () => {
    assert.equal(text(sumIntegers([b(":3\r\n"), b(":0\r\n"), b(":1200\r\n")])), ":1203\r\n");
    assert.equal(text(sumIntegers([b(":3\r\n"), b("-CLUSTERDOWN down\r\n")])), "-CLUSTERDOWN down\r\n");
    assert.match(text(sumIntegers([b(":3\r\n"), b("+OK\r\n")]))!, /^-ERR unexpected reply/);
  });

  it("FLUSHALL, SCRIPT LOAD, FUNCTION LOAD: the first reply when all succeeded, else the first error", () => {
    assert.equal(text(allSucceeded([b("+OK\r\n"), b("+OK\r\n")])), "+OK\r\n");
    const sha = "$40\r\ne0e1f9fabfc9d4800c877a703b823ac0578ff8db\r\n";
    assert.equal(text(allSucceeded([b(sha), b(sha), b(sha)])), sha);
    assert.equal(text(allSucceeded([b("$3\r\nlib\r\n"), b("-ERR Library 'lib' already exists\r\n")])), "-ERR Library 'lib' already exists\r\n");
  });

  it("SCRIPT KILL: OK when one primary killed it; UNKILLABLE says more than NOTBUSY; NOTBUSY when none was busy", () => {
    const notBusy = "-NOTBUSY No scripts in execution right now.\r\n";
    const unkillable = "-UNKILLABLE Sorry the script already executed write commands\r\n";
    assert.equal(text(oneSucceeded([b(notBusy), b("+OK\r\n"), b(notBusy)])), "+OK\r\n");
    assert.equal(text(oneSucceeded([b(notBusy), b(unkillable), b(notBusy)])), unkillable);
    assert.equal(text(oneSucceeded([b(notBusy), b(notBusy)])), notBusy);
  });

  it("SCRIPT EXISTS: per position, 1 only where every primary has the script", () => {
    const merged = logicalAnd([b("*3\r\n:1\r\n:1\r\n:0\r\n"), b("*3\r\n:1\r\n:0\r\n:0\r\n"), b("*3\r\n:1\r\n:1\r\n:1\r\n")]);
    assert.equal(text(merged), "*3\r\n:1\r\n:0\r\n:0\r\n");
    assert.equal(text(logicalAnd([b("*1\r\n:1\r\n"), b("-ERR x\r\n")])), "-ERR x\r\n");
  });

  it("the merge comes from the command's tips", () => {
    assert.equal(tipMerge(info("DBSIZE")), sumIntegers);
    assert.equal(tipMerge(info("FLUSHALL")), allSucceeded);
    assert.equal(tipMerge(info("KEYS", "*")), concatArrays, "KEYS: no response policy, so default_keyless");
    assert.equal(tipMerge(info("SCRIPT", "EXISTS")), logicalAnd);
    assert.equal(tipMerge(info("SCRIPT", "KILL")), oneSucceeded);
    assert.equal(tipMerge(info("INFO")), null, "INFO's response policy is special");
  });

  it("every whole-cluster command has a plan; keyed and per-client commands have none", () => {
    const kinds = (words: string[]) => planOf(info(...words))?.kind;
    assert.equal(kinds(["KEYS", "*"]), "all");
    assert.equal(kinds(["DBSIZE"]), "all");
    assert.equal(kinds(["FLUSHDB", "ASYNC"]), "all");
    assert.equal(kinds(["SCRIPT", "LOAD", "return 1"]), "all");
    assert.equal(kinds(["SCRIPT", "FLUSH"]), "all");
    assert.equal(kinds(["FUNCTION", "LOAD", "x"]), "all");
    assert.equal(kinds(["FUNCTION", "RESTORE", "x"]), "all");
    assert.equal(kinds(["FUNCTION", "LIST"]), "one");
    assert.equal(kinds(["FUNCTION", "DUMP"]), "one");
    assert.equal(kinds(["FUNCTION", "STATS"]), "one");
    assert.equal(kinds(["SCRIPT", "KILL"]), "alone");
    assert.equal(kinds(["FUNCTION", "KILL"]), "alone");
    assert.equal(kinds(["RANDOMKEY"]), "random");
    assert.equal(kinds(["SCAN", "0"]), "scan");
    assert.equal(kinds(["INFO"]), "info");
    assert.equal(kinds(["SCRIPT", "NOSUCH"]), "one", "an unknown subcommand gets Redis's own error");
    assert.equal(kinds(["GET", "k"]), undefined);
    assert.equal(kinds(["CONFIG", "SET", "a", "b"]), undefined);
    assert.equal(kinds(["SCRIPT", "DEBUG", "YES"]), undefined);
  });

  it("a refusal replies with its own code: CLUSTERDOWN for a slot no node serves, else ERR", () => {
    assert.equal(text(new Unavailable("clusterDown", "Hash slot not served").reply), "-CLUSTERDOWN Hash slot not served\r\n");
    assert.equal(text(new Unavailable("closing", "cluster 'a' is closing").reply), "-ERR cluster 'a' is closing\r\n");
    assert.equal(text(new Unavailable("limit", "max number of dedicated upstream connections reached (1)").reply), "-ERR max number of dedicated upstream connections reached (1)\r\n");
  });
});

describe("fan-out to every primary", () => {
  it("one request per primary, in the client's protocol, merged in shard order whatever order replies arrive in", () => {
    const backend = fakeBackend("main", [0, 5461, 10923]);
    const client = new FakeClient(3);
    const frame = encodeCommand(["KEYS", "*"]);
    fanOut(client, backend, backend.primaries(), frame, concatArrays);
    assert.deepEqual(backend.sent.map((r) => [r.slot, r.part, r.resp3, r.affinity]), [[0, 0, true, 7], [5461, 1, true, 7], [10923, 2, true, 7]]);
    assert.equal(client.queue.length, 1, "one entry in the reply queue");
    const [a, c, d] = backend.sent as [UpstreamRequest, UpstreamRequest, UpstreamRequest];
    d.sink.deliver(d, b("*1\r\n$1\r\nd\r\n"));
    a.sink.deliver(a, b("*1\r\n$1\r\na\r\n"));
    assert.equal(client.replies[0], null, "no reply before every primary answered");
    c.sink.deliver(c, b("*0\r\n"));
    assert.deepEqual(client.replies, ["*2\r\n$1\r\na\r\n$1\r\nd\r\n"]);
  });

  it("no primary known: CLUSTERDOWN, nothing sent", () => {
    const backend = fakeBackend("main", []);
    const client = new FakeClient();
    fanOut(client, backend, backend.primaries(), encodeCommand(["DBSIZE"]), sumIntegers);
    assert.deepEqual(client.replies, ["-CLUSTERDOWN The cluster is down\r\n"]);
    assert.equal(backend.sent.length, 0);
  });

  it("RANDOMKEY asks primaries one at a time, in the order given, until one is not empty", () => {
    const backend = fakeBackend("main", [0, 5461, 10923]);
    const client = new FakeClient(3);
    FirstFound.send(client, backend, [10923, 0, 5461], encodeCommand(["RANDOMKEY"]));
    assert.deepEqual(backend.sent.map((r) => r.slot), [10923], "one primary at a time");
    backend.sent[0]!.sink.deliver(backend.sent[0]!, b("_\r\n"));
    assert.deepEqual(backend.sent.map((r) => r.slot), [10923, 0]);
    assert.equal(backend.sent[1]!.resp3, true);
    backend.sent[1]!.sink.deliver(backend.sent[1]!, b("$3\r\nkey\r\n"));
    assert.deepEqual(client.replies, ["$3\r\nkey\r\n"]);
    assert.equal(backend.sent.length, 2, "the third primary is not asked");
  });

  it("RANDOMKEY on an empty cluster: the nil of the client's protocol, after asking every primary", () => {
    const backend = fakeBackend("main", [0, 5461]);
    const client = new FakeClient(2);
    FirstFound.send(client, backend, [5461, 0], encodeCommand(["RANDOMKEY"]));
    backend.sent[0]!.sink.deliver(backend.sent[0]!, b("$-1\r\n"));
    backend.sent[1]!.sink.deliver(backend.sent[1]!, b("$-1\r\n"));
    assert.deepEqual(client.replies, ["$-1\r\n"]);
    assert.equal(backend.sent.length, 2);
  });

  it("RANDOMKEY: an error ends the search", () => {
    const backend = fakeBackend("main", [0, 5461]);
    const client = new FakeClient();
    FirstFound.send(client, backend, [0, 5461], encodeCommand(["RANDOMKEY"]));
    backend.sent[0]!.sink.deliver(backend.sent[0]!, b("-ERR down\r\n"));
    assert.deepEqual(client.replies, ["-ERR down\r\n"]);
    assert.equal(backend.sent.length, 1);
  });
});

describe("the backend of whole-cluster commands", () => {
  const [main, users, cache] = [fakeBackend("main", [0]), fakeBackend("users", [0]), fakeBackend("cache", [0])];
  const route = (prefix: string, backend: Backend) => ({ prefix, backend, removePrefix: false, caseInsensitive: false });

  it("the catch-all cluster, when there is one", () => {
    assert.equal(new RouteTable([route("user:", users), route("cache:", cache)], main).datasetBackend(), main);
  });

  it("the only cluster, even with no catch-all", () => {
    assert.equal(new RouteTable([route("user:", users), route("u2:", users)], null).datasetBackend(), users);
  });

  it("several clusters and no catch-all: a reason, not a guess", () => {
    const none = new RouteTable([route("user:", users), route("cache:", cache)], null).datasetBackend();
    assert.ok(none instanceof Unavailable);
    assert.match(none.message, /several clusters/);
  });

  it("commands every node answers alike go to the catch-all, else to any backend; none configured is a reason", () => {
    assert.equal(new RouteTable([route("user:", users)], main).anyBackend(), main);
    const any = new RouteTable([route("user:", users), route("cache:", cache)], null).anyBackend();
    assert.ok(any === users || any === cache);
    const none = new RouteTable([], null).anyBackend();
    assert.ok(none instanceof Unavailable);
    assert.equal(none.message, "no cluster is configured");
  });
});
