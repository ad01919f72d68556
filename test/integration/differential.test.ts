/**
 * Differential test: every command of the corpus (differential-corpus.ts) goes, in order, to
 * slotgate in front of a 3-primary Redis Cluster and to one standalone Redis, each over one raw
 * connection; the replies must be the same bytes, after normalisation only where Redis promises
 * no order or picks at random. Error texts are compared in full. One test per corpus group over
 * RESP2, so a failing group is visible by name and lists every mismatching command; the same
 * corpus again over RESP3 once slotgate accepts `HELLO 3`. Runs on Node, Bun and Deno.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { after, describe, it, type TestContext } from "node:test";
import { startLocalCluster, startStandaloneRedis } from "../../scripts/local-cluster.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { lazy } from "../support/lazy.ts";
import { startProxy } from "../support/proxy.ts";
import { ConnectionClosedError, Exchange } from "../support/exchange.ts";
import {
  aggregate,
  frameOf,
  normalise,
  pairsOf,
  render,
  sameBytes,
  sortFrames,
} from "../support/resp-diff.ts";
import { CORPUS, type CorpusEntry, type CorpusGroup } from "./differential-corpus.ts";

const SLOW = { timeout: 120_000 };
const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

/** The group that needs slotgate's whole-cluster commands (fan-out to every primary); the others need key routing only. */
const WHOLE_CLUSTER = "whole-cluster";

/** One side of the comparison: a connection, opened again (with HELLO 3 for RESP3) if the server closes it. */
class Side {
  #connection: Exchange | null = null;

  constructor(
    readonly port: number,
    readonly protocol: 2 | 3,
  ) {}

  /** The reply to `args`; a connection closed before replying answers `(connection closed)`. */
  async send(args: readonly string[]): Promise<Uint8Array> {
    if (this.#connection === null || this.#connection.closed) {
      this.#connection = await Exchange.connect(this.port);
      this.#connection.timeoutMs = 10_000;
      if (this.protocol === 3) await this.#connection.command("HELLO", "3");
    }
    try {
      const reply = Uint8Array.from(Buffer.from(await this.#connection.command(...args), "latin1"));
      // Redis and slotgate close the connection after a protocol error: wait for it, so the
      // next command deterministically goes over a new connection.
      if (latin1.decode(reply.subarray(0, 32)).startsWith("-ERR Protocol error")) await this.#connection.closedWithin(2_000);
      return reply;
    } catch (error) {
      if (error instanceof ConnectionClosedError) return encoder.encode("(connection closed)");
      throw error;
    }
  }

  close(): void {
    this.#connection?.close();
  }
}

/** What `side` answers to `entry`, normalised. A SCAN-family entry is looped to the end and answers the sorted set of elements it collected. */
async function answer(side: Side, entry: CorpusEntry): Promise<Uint8Array> {
  if (!entry.scan) return normalise(await side.send(entry.args), entry.normalise);
  const args = [...entry.args];
  const cursorAt = args[0]!.toUpperCase() === "SCAN" ? 1 : 2;
  const seen = new Map<string, Uint8Array>();
  for (let round = 1; ; round++) {
    const reply = await side.send(args);
    const parts = aggregate(reply);
    const page = parts?.elements.length === 2 ? aggregate(parts.elements[1]!) : null;
    if (parts === null || page === null) return reply; // an error: compared as it is
    for (const item of entry.normalise === "pairs" ? pairsOf(page) : page.elements) seen.set(latin1.decode(item), item);
    const cursor = latin1.decode(parts.elements[0]!).split("\r\n")[1]!;
    if (cursor === "0") break;
    if (round >= 10_000) throw new Error(`${args.join(" ")} still had a cursor after ${round} rounds`);
    args[cursorAt] = cursor;
  }
  return frameOf(`*${seen.size}`, sortFrames([...seen.values()]));
}

interface Mismatch {
  group: string;
  index: number;
  entry: CorpusEntry;
  slotgate: Uint8Array;
  redis: Uint8Array;
}

/** Run `groups` in order on both sides; every entry whose answers differ. */
async function differences(groups: readonly CorpusGroup[], slotgate: Side, redis: Side): Promise<Mismatch[]> {
  const mismatches: Mismatch[] = [];
  for (const group of groups) {
    for (const [index, entry] of group.entries.entries()) {
      const fromSlotgate = await answer(slotgate, entry);
      const fromRedis = await answer(redis, entry);
      if (!sameBytes(fromSlotgate, fromRedis)) mismatches.push({ group: group.name, index, entry, slotgate: fromSlotgate, redis: fromRedis });
    }
  }
  return mismatches;
}

/** A command for a failure message: long arguments cut, long argument lists elided. */
function showCommand(args: readonly string[]): string {
  const shown = args.slice(0, 10).map((arg) => JSON.stringify(arg.length > 50 ? `${arg.slice(0, 50)}…` : arg));
  return shown.join(" ") + (args.length > 10 ? ` …(+${args.length - 10} args)` : "");
}

function report(mismatches: readonly Mismatch[], total: number): string {
  const lines = mismatches.map(
    (m) =>
      `  [${m.group} #${m.index}${m.entry.normalise === "exact" ? "" : `, ${m.entry.normalise}`}${m.entry.scan ? ", scan loop" : ""}] ${showCommand(m.entry.args)}\n` +
      `      slotgate: ${render(m.slotgate)}\n` +
      `      redis:    ${render(m.redis)}`,
  );
  return `${mismatches.length} of ${total} commands answered differently:\n${lines.join("\n")}`;
}

/** Print through the runner's diagnostics where it has them. */
function diagnostic(t: TestContext, message: string): void {
  if (typeof t.diagnostic === "function") t.diagnostic(message);
  else console.log(message);
}

describe("differential: slotgate in front of a cluster answers like one standalone Redis", () => {
  // Three primaries and no replicas: fewer processes on a small machine; replicas change no reply.
  const cluster = lazy(() => startLocalCluster({ primaries: 3, replicasPerPrimary: 0 }));
  const standalone = lazy(() => startStandaloneRedis());
  const proxy = lazy(async () => startProxy((await cluster.get()).seeds));
  const sides: Side[] = [];
  after(async () => {
    for (const side of sides) side.close();
    await proxy.stop();
    await Promise.all([cluster.stop(), standalone.stop()]);
  });

  /** Empty every primary and the standalone server (keys, scripts, functions), directly. */
  async function flushBothSides(): Promise<void> {
    const [c, s] = await Promise.all([cluster.get(), standalone.get()]);
    const flush = async (send: (...args: string[]) => Promise<unknown>) => {
      await send("FLUSHALL");
      await send("SCRIPT", "FLUSH");
      await send("FUNCTION", "FLUSH");
    };
    await Promise.all([
      ...(await c.primaries()).map((node) => flush((...args) => c.reply(node.port, ...args))),
      flush((...args) => s.reply(...args)),
    ]);
  }

  /** Fresh, empty servers and a connection to each side speaking `protocol`. */
  async function session(protocol: 2 | 3): Promise<{ slotgate: Side; redis: Side }> {
    const [{ port }, s] = await Promise.all([proxy.get(), standalone.get()]);
    await flushBothSides();
    const slotgate = new Side(port, protocol);
    const redis = new Side(s.port, protocol);
    sides.push(slotgate, redis);
    return { slotgate, redis };
  }

  const resp2 = lazy(async () => ({ ...(await session(2)), stop: async () => {} }));

  it("the corpus has at least 300 commands over every data type, in groups spread over every primary", SLOW, async (t) => {
    const total = CORPUS.reduce((n, group) => n + group.entries.length, 0);
    diagnostic(t, `corpus: ${total} commands; ${CORPUS.map((g) => `${g.name} ${g.entries.length}`).join(", ")}`);
    assert.ok(total >= 300, `the corpus has ${total} commands, fewer than 300`);
    const names = CORPUS.map((group) => group.name);
    for (const type of ["strings", "lists", "hashes", "sets", "sorted sets", "streams", "geo", "hyperloglog", "bitmaps/bitfield", "scripting", "keys/expiry"]) {
      assert.ok(names.includes(type), `the corpus has a group for ${type}`);
    }
    for (const group of CORPUS) assert.ok(group.entries.length >= 10, `group ${group.name} has ${group.entries.length} commands`);
    // Each tagged group's keys share one slot, and the groups together reach every primary.
    const c = await cluster.get();
    const tags = CORPUS.flatMap((group) => (group.tag === null ? [] : [group.tag]));
    const owners = await Promise.all(tags.map((tag) => c.ownerOfSlot(keySlot(encoder.encode(`{${tag}}`)))));
    assert.equal(new Set(owners.map((node) => node.port)).size, (await c.primaries()).length, "the groups' tags land on every primary");
    // The cross-slot group's multi-key commands really do span slots.
    for (const entry of CORPUS.find((group) => group.name === "cross-slot")!.entries) {
      const keys = entry.args[0] === "MSET" ? entry.args.filter((_, i) => i % 2 === 1) : entry.args.slice(1);
      if (new Set(keys).size < 2) continue;
      const slots = new Set(keys.map((key) => keySlot(encoder.encode(key))));
      assert.ok(slots.size >= 2, `cross-slot entry ${showCommand(entry.args)} spans ${slots.size} slot`);
    }
  });

  for (const group of CORPUS) {
    const needs = group.name === WHOLE_CLUSTER ? " (needs slotgate's whole-cluster commands)" : "";
    it(`RESP2: the ${group.name} group answers byte for byte like standalone Redis${needs}`, SLOW, async () => {
      const { slotgate, redis } = await resp2.get();
      const mismatches = await differences([group], slotgate, redis);
      assert.equal(mismatches.length, 0, report(mismatches, group.entries.length));
    });
  }

  /** Skip (with the reason) while slotgate refuses RESP3; true when the test should go on. */
  async function resp3Served(t: TestContext): Promise<boolean> {
    const { port } = await proxy.get();
    const probe = await Exchange.connect(port);
    try {
      const hello = await probe.command("HELLO", "3");
      if (hello.startsWith("-NOPROTO")) {
        t.skip(`slotgate does not serve RESP3 yet: HELLO 3 answers ${hello.trim()}`);
        return false;
      }
      return true;
    } finally {
      probe.close();
    }
  }

  const resp3 = lazy(async () => ({ ...(await session(3)), stop: async () => {} }));

  it("RESP3 (HELLO 3): every data-type and cross-slot group answers byte for byte like standalone Redis", SLOW, async (t) => {
    if (!(await resp3Served(t))) return;
    const { slotgate, redis } = await resp3.get();
    const groups = CORPUS.filter((group) => group.name !== WHOLE_CLUSTER);
    const mismatches = await differences(groups, slotgate, redis);
    assert.equal(mismatches.length, 0, report(mismatches, groups.reduce((n, g) => n + g.entries.length, 0)));
  });

  it("RESP3 (HELLO 3): the whole-cluster group answers byte for byte like standalone Redis (needs slotgate's whole-cluster commands)", SLOW, async (t) => {
    if (!(await resp3Served(t))) return;
    const { slotgate, redis } = await resp3.get();
    const groups = CORPUS.filter((group) => group.name === WHOLE_CLUSTER);
    const mismatches = await differences(groups, slotgate, redis);
    assert.equal(mismatches.length, 0, report(mismatches, groups[0]!.entries.length));
  });
});
