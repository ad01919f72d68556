/**
 * The regression suite for the crash slotgate exists to make impossible (docs/why.md): Envoy
 * segfaulted when a config update removed a Redis cluster while its discovery session had a timer
 * armed, a DNS lookup or a CLUSTER SLOTS request in flight. Here a cluster "victim" (keys `gone:*`)
 * is removed, or replaced, through the admin API or the control plane, while it has each kind of
 * work in flight: a seed's DNS lookup, a connect to a seed, CLUSTER SLOTS to a seed that never
 * answers, an armed refresh timer, a refresh asked for by a MOVED, and pipelined client requests.
 * Next to it a steady cluster "main" takes traffic throughout.
 *
 * Real redis-server clusters (one per cluster, so ports tell them apart) and real sockets; slotgate
 * runs in this process on the current runtime's adapter, wrapped by test/support/hooked-runtime.ts,
 * which holds lookups and connects, stalls reads, and counts any callback of the removed cluster
 * that runs after the removal. Runs under `npx tsx --test`, `bun test` and `deno test -A`. No
 * assertion depends on timing: waits are polls with generous bounds.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { currentRuntime } from "../../adapters/current.ts";
import { startLocalCluster, type LocalCluster } from "../../scripts/local-cluster.ts";
import { startSlotgate, type Slotgate } from "../../src/app.ts";
import { Cluster } from "../../src/backends/cluster/cluster.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { validateConfig } from "../../src/config/load.ts";
import { createLogger } from "../../src/log.ts";
import { lateCallbacks, type ScopeInfo } from "../../src/scope/scope.ts";
import { hookRuntime, type LookupRecord, type RuntimeHook, type SocketRecord, type TimerRecord } from "../support/hooked-runtime.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp } from "../support/proxy.ts";

const SLOW = { timeout: 120_000 };
const VICTIM = "victim";
/** Async-context tag of everything the victim's first instance starts. */
const TAG = "victim";
/** A seed hostname the hook resolves only when told to. */
const SLOW_SEED = "slow-seed.test";
/** Long enough that no refresh or hedge fires on its own during a case. */
const NEVER_MS = 60_000;
/** How long in-flight work of a removed cluster may run, when the case does not say otherwise. */
const SHORT_DRAIN_MS = 200;

const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Poll `check` until it holds; fail with `what` (and `detail()`) after `timeoutMs`. */
async function until(what: string, check: () => boolean | Promise<boolean>, detail: () => string = () => "", timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} ${detail()}`);
    await sleep(5);
  }
}

// --- RESP replies ------------------------------------------------------------------------------

/** End offset of the reply starting at `at` in `text` (latin1), or -1 while it is incomplete. */
function replyEnd(text: string, at: number): number {
  const eol = text.indexOf("\r\n", at);
  if (eol < 0) return -1;
  const type = text[at];
  if (type === "$") {
    const length = Number(text.slice(at + 1, eol));
    if (length < 0) return eol + 2;
    const end = eol + 2 + length + 2;
    return end <= text.length ? end : -1;
  }
  if (type === "*") {
    let p = eol + 2;
    for (let i = Number(text.slice(at + 1, eol)); i > 0; i--) {
      p = replyEnd(text, p);
      if (p < 0) return -1;
    }
    return p;
  }
  return eol + 2;
}

function splitReplies(text: string): string[] {
  const out: string[] = [];
  for (let p = 0; p < text.length; ) {
    const end = replyEnd(text, p);
    if (end < 0) break;
    out.push(text.slice(p, end));
    p = end;
  }
  return out;
}

const bulk = (value: string) => `$${Buffer.byteLength(value)}\r\n${value}\r\n`;

type Expect = string | RegExp;

/**
 * A raw client for the victim's keys that knows what each of its requests should be answered,
 * and checks that every request got exactly one reply, in order.
 */
class VictimClient {
  readonly #expected: { command: string; expect: Expect }[] = [];
  #sentinels = 0;

  constructor(readonly raw: RawClient) {}

  get port(): number {
    return this.raw.socket.localPort!;
  }

  /** Send `commands` in one write (so they are pipelined), each with the reply it should get. */
  send(...commands: [string[], Expect][]): void {
    this.raw.send(commands.map(([args]) => resp(...args)).join(""));
    for (const [args, expect] of commands) this.#expected.push({ command: args.join(" "), expect });
  }

  get sent(): number {
    return this.#expected.length;
  }

  replies(): string[] {
    return splitReplies(this.raw.received.toString("latin1"));
  }

  /**
   * Wait until everything sent so far is answered and check every reply. A sentinel ECHO goes
   * last: replies come in request order, so a missing or doubled reply shows up as a mismatch.
   */
  async settle(): Promise<void> {
    const token = `sentinel-${++this.#sentinels}`;
    this.send([["ECHO", token], bulk(token)]);
    await this.raw.waitFor(() => this.replies().length >= this.#expected.length, 30_000);
    const replies = this.replies();
    assert.equal(replies.length, this.#expected.length, `one reply per request, got ${JSON.stringify(replies)}`);
    replies.forEach((reply, i) => {
      const { command, expect } = this.#expected[i]!;
      if (typeof expect === "string") assert.equal(reply, expect, `reply ${i} (to ${command})`);
      else assert.match(reply, expect, `reply ${i} (to ${command})`);
    });
  }
}

/** SET then GET on `steady:*` keys (routed to "main") on one client, back to back, until stopped. */
class Steady {
  ops = 0;
  readonly errors: string[] = [];
  readonly #done: Promise<void>;
  #stopped = false;

  constructor(readonly client: Redis) {
    this.#done = this.#run();
  }

  async #run(): Promise<void> {
    for (let n = 0; !this.#stopped; n++) {
      const key = `steady:${n % 64}`;
      const value = `value-${n}`;
      try {
        const ok = await this.client.set(key, value);
        if (ok !== "OK") this.errors.push(`SET ${key} answered ${ok}`);
        const got = await this.client.get(key);
        if (got !== value) this.errors.push(`GET ${key} answered ${got}, wanted ${value}`);
        this.ops++;
      } catch (error) {
        this.errors.push(`${key}: ${(error as Error).message}`);
        await sleep(50);
      }
    }
  }

  stop(): Promise<void> {
    this.#stopped = true;
    return this.#done;
  }
}

/** A burst of pipelined SET/GET on "main", all of whose replies must be right. */
async function mainBurst(client: Redis, label: string): Promise<void> {
  const keys = Array.from({ length: 40 }, (_, i) => `steady:${label}:${i}`);
  const results = await Promise.allSettled(keys.flatMap((key) => [client.set(key, key), client.get(key)]));
  const wrong = results
    .map((result, i) => ({ result, want: i % 2 === 0 ? "OK" : keys[i >> 1] }))
    .filter(({ result, want }) => result.status !== "fulfilled" || result.value !== want);
  assert.deepEqual(wrong, [], `every ${label} request to "main" answered right`);
}

// --- fixtures ----------------------------------------------------------------------------------

/** A server that accepts connections, reads what it is sent and never answers. */
interface SilentServer {
  readonly port: number;
  readonly connections: { socket: net.Socket; bytes: number; closed: boolean }[];
  stop(): Promise<void>;
}

async function startSilentServer(): Promise<SilentServer> {
  const connections: SilentServer["connections"] = [];
  const server = net.createServer((socket) => {
    const entry = { socket, bytes: 0, closed: false };
    connections.push(entry);
    // Read and ignore requests: a paused socket would never see the peer's FIN.
    socket.resume();
    socket.on("data", (chunk: Buffer) => void (entry.bytes += chunk.length));
    socket.on("close", () => void (entry.closed = true));
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections,
    async stop() {
      for (const { socket } of connections) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type Routing = "catch-all" | "prefixes";

/** One slotgate with "main" (and, once added, "victim"), its clients and its hooked runtime. */
interface Harness {
  readonly hook: RuntimeHook;
  readonly app: Slotgate;
  readonly main: LocalCluster;
  readonly victim: LocalCluster;
  readonly client: VictimClient;
  readonly mainClient: Redis;
  readonly steady: Steady;
  /** WARN and ERROR lines slotgate logged. */
  readonly logged: string[];
  close(): Promise<void>;
}

type Change = "remove" | "replace";
type How =
  | "admin DELETE /clusters/victim?force=true"
  | "admin PUT /config"
  | "admin PUT /clusters/victim"
  | "LiveConfig.deleteCluster"
  | "LiveConfig.replaceConfig"
  | "LiveConfig.putCluster";

type Doc = Record<string, unknown>;

/** Everything a scenario learns while arming, for its checks. */
interface Armed {
  /** Records the scenario expects the change to abort (held lookups and connects). */
  held?: (LookupRecord | SocketRecord)[];
  /** Runs while the change is in progress (before it resolves). */
  whileChanging?: (changing: { settled: boolean }) => Promise<void>;
  /** Runs once the change resolved. */
  afterChange?: () => Promise<void>;
  /** More sockets that belonged to the old instance (not on the victim's redis ports). */
  ports?: number[];
  /** Checks specific to the scenario, after the common ones. */
  check?: () => Promise<void>;
}

interface Scenario {
  /** "a seed's DNS lookup is pending", completing "... while <this>". */
  while: string;
  victim(h: Harness): Doc;
  /** The replacement document: a changed knob or seed list... */
  replacement(h: Harness): Doc;
  /** ...namely this one, for the test name. */
  changed: string;
  /** Called before the victim is added. */
  prepare?(h: Harness): void | Promise<void>;
  /** Bring the freshly added victim into the scenario's state. */
  arm(h: Harness, old: Cluster, change: Change): Promise<Armed>;
  /** How long to watch for late callbacks after the change (they would come within it). */
  observeMs?: number;
}

function ownerPort(cluster: Cluster, key: string): number {
  const slot = keySlot(encoder.encode(key));
  const range = cluster.topology.ranges.find((r) => r.start <= slot && slot <= r.end);
  assert.ok(range, `slot ${slot} of ${key} has an owner`);
  return range.primary.port;
}

/** `count` keys `prefix:<i>` owned by the primary on `port`. */
function keysOn(cluster: Cluster, port: number, prefix: string, count: number): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) if (ownerPort(cluster, `${prefix}:${i}`) === port) keys.push(`${prefix}:${i}`);
  return keys;
}

function primaryPorts(cluster: Cluster): number[] {
  return [...new Set(cluster.topology.ranges.map((r) => r.primary.port))];
}

function flatten(info: ScopeInfo): ScopeInfo[] {
  return [info, ...info.children.flatMap(flatten)];
}

function findScope(info: ScopeInfo, path: RegExp): ScopeInfo[] {
  return flatten(info).filter((s) => path.test(s.path));
}

// --- scenarios ---------------------------------------------------------------------------------

const CLUSTERDOWN = "-CLUSTERDOWN Hash slot not served\r\n";

/**
 * A held lookup or connect is either never answered (the change must abort it) or answered once
 * the old instance has begun closing: discovery is cancelled as soon as close begins (a refresh is
 * not in-flight work worth draining for), so the late answer must find it already aborted, and the
 * long drain must end at once rather than wait for it.
 */
type Answer = "never" | "while draining";
// Victims that never learn a slot map set readyTimeoutMs 0: adding a routed cluster otherwise
// waits (up to readyTimeoutMs) for it to become ready.
const LONG_DRAIN_MS = 59_000;

/** The drain of a change answered "while draining" ended because the work did, not by its deadline. */
function drainEndedEarly(h: Harness): void {
  const deadlines = h.hook.timers.filter((t) => t.ms === LONG_DRAIN_MS && t.context !== TAG);
  assert.ok(deadlines.length > 0 && deadlines.every((t) => t.cancelled && !t.fired), `the drain deadline was cancelled, not reached: ${JSON.stringify(deadlines)}`);
}

function dnsPending(answer: Answer): Scenario {
  const drainTimeoutMs = answer === "never" ? SHORT_DRAIN_MS : LONG_DRAIN_MS;
  return {
    while: answer === "never" ? "the DNS lookup of its only seed is pending" : "the DNS lookup of its only seed is pending and is answered after close began",
    changed: "seed list",
    victim: (h) => ({ seeds: [`${SLOW_SEED}:${h.victim.nodes[0]!.port}`], refreshTimeoutMs: NEVER_MS, readyTimeoutMs: 0, drainTimeoutMs }),
    replacement: (h) => ({ seeds: [`127.0.0.1:${h.victim.nodes[1]!.port}`], drainTimeoutMs }),
    prepare: (h) => h.hook.holdLookups(SLOW_SEED),
    async arm(h, old) {
      await until(`a held lookup of ${SLOW_SEED}`, () => h.hook.held().some((op) => op.kind === "lookup" && op.record.context === TAG));
      const scope = old.scope.inspect();
      assert.ok(flatten(scope).some((s) => s.resources.some((r) => r.kind === "lookup" && r.name === SLOW_SEED)), `the victim's scope lists the pending lookup: ${JSON.stringify(scope)}`);
      // Not ready: its keys are answered at once, by CLUSTERDOWN.
      h.client.send([["SET", "gone:a:1", "x"], CLUSTERDOWN], [["GET", "gone:a:1"], CLUSTERDOWN]);
      await h.client.settle();
      const held = h.hook.held();
      if (answer === "never") return { held: held.map((op) => op.record) };
      return {
        async whileChanging() {
          await until("the old instance to start closing", () => old.scope.state !== "open");
          for (const op of held) op.release();
        },
        async check() {
          assert.deepEqual(held.map((op) => op.record.state), held.map(() => "aborted"), "the lookup was aborted when close began, before its answer");
          drainEndedEarly(h);
        },
      };
    },
  };
}

function connectPending(answer: Answer): Scenario {
  const drainTimeoutMs = answer === "never" ? SHORT_DRAIN_MS : LONG_DRAIN_MS;
  return {
    while: answer === "never" ? "a connect to its only seed is pending" : "a connect to its only seed is pending and completes after close began",
    changed: "refreshTimeoutMs",
    victim: (h) => ({ seeds: [`127.0.0.1:${h.victim.nodes[0]!.port}`], refreshTimeoutMs: NEVER_MS, readyTimeoutMs: 0, drainTimeoutMs }),
    replacement: (h) => ({ seeds: [`127.0.0.1:${h.victim.nodes[0]!.port}`], refreshTimeoutMs: 3000, drainTimeoutMs }),
    prepare: (h) => h.hook.holdConnects(h.victim.nodes[0]!.port),
    async arm(h, old) {
      await until("a held connect to the seed", () => h.hook.held().some((op) => op.kind === "connect" && op.record.context === TAG));
      // Only this connect stays held: a replacement must be able to reach the same seed.
      h.hook.stopHolding();
      h.client.send([["GET", "gone:b:1"], CLUSTERDOWN]);
      await h.client.settle();
      const held = h.hook.held();
      if (answer === "never") return { held: held.map((op) => op.record) };
      return {
        async whileChanging() {
          await until("the old instance to start closing", () => old.scope.state !== "open");
          // Releasing it now must change nothing: close already aborted the connect.
          for (const op of held) op.release();
        },
        async check() {
          assert.ok(held.every((op) => op.record.state === "aborted"), `the connect was aborted when close began: ${JSON.stringify(held.map((op) => op.record))}`);
          drainEndedEarly(h);
        },
      };
    },
  };
}

function clusterSlotsInFlight(silent: () => Promise<SilentServer>): Scenario {
  let server: SilentServer;
  let first = 0;
  return {
    while: "CLUSTER SLOTS to its only seed is in flight",
    changed: "seed list",
    victim: () => ({ seeds: [`127.0.0.1:${server.port}`], refreshTimeoutMs: NEVER_MS, readyTimeoutMs: 0, drainTimeoutMs: SHORT_DRAIN_MS }),
    replacement: (h) => ({ seeds: h.victim.seeds, drainTimeoutMs: SHORT_DRAIN_MS }),
    async prepare() {
      server = await silent();
      first = server.connections.length;
    },
    async arm(h) {
      const mine = () => server.connections.slice(first);
      await until("CLUSTER SLOTS to reach the silent seed", () => mine().some((c) => c.bytes > 0));
      h.client.send([["GET", "gone:c:1"], CLUSTERDOWN]);
      await h.client.settle();
      return {
        ports: [server.port],
        async check() {
          await until("the silent seed to see its connections closed", () => mine().every((c) => c.closed), () => `${mine().filter((c) => !c.closed).length} open`);
        },
      };
    },
  };
}

const REFRESH_MS = 300;

const timerArmed: Scenario = {
  while: "its refresh timer is armed",
  changed: "refreshIntervalMs",
  victim: (h) => ({ seeds: h.victim.seeds, refreshIntervalMs: REFRESH_MS, drainTimeoutMs: SHORT_DRAIN_MS }),
  replacement: (h) => ({ seeds: h.victim.seeds, refreshIntervalMs: REFRESH_MS + 100, drainTimeoutMs: SHORT_DRAIN_MS }),
  observeMs: 5 * REFRESH_MS,
  async arm(h, old) {
    await until("the victim to learn its slot map", () => old.isReady);
    const keys = ["gone:d:1", "gone:d:2", "gone:d:3"];
    h.client.send(...keys.map((k): [string[], Expect] => [["SET", k, k], "+OK\r\n"]), ...keys.map((k): [string[], Expect] => [["GET", k], bulk(k)]));
    await h.client.settle();
    let refreshTimer: TimerRecord | undefined;
    // Idle between rounds: the sleep is armed and no round is running. The change is submitted
    // in the same turn as this check, so the timer cannot fire in between.
    await until("the refresh timer to be armed with no round running", () => {
      // Discovery runs in the cluster's "discovery" child scope.
      const scope = old.scope.inspect().children.find((c) => c.path.endsWith("/discovery"));
      const sleeping = scope !== undefined && scope.resources.some((r) => r.kind === "timer" && r.name === "sleep") && !scope.children.some((c) => /refresh \d+$/.test(c.path));
      // The periodic wait is jittered: 0.8–1.0 × refreshIntervalMs.
      refreshTimer = [...h.hook.timers].reverse().find((t) => t.context === TAG && t.ms >= 0.8 * REFRESH_MS && t.ms <= REFRESH_MS && !t.fired && !t.cancelled);
      return sleeping && refreshTimer !== undefined;
    });
    const timer = refreshTimer!;
    return {
      async check() {
        assert.ok(timer.cancelled && !timer.fired, `the refresh timer armed at the change was cancelled and never fired (cancelled ${timer.cancelled}, fired ${timer.fired})`);
      },
    };
  },
};

const refreshAfterMoved: Scenario = {
  while: "a refresh asked for by a MOVED is in flight",
  changed: "refreshIntervalMs",
  victim: (h) => ({
    seeds: h.victim.seeds,
    refreshIntervalMs: NEVER_MS,
    refreshTimeoutMs: NEVER_MS,
    redirectRefreshThreshold: 1,
    redirectRefreshIntervalMs: 0,
    connectionsPerNode: 1,
    drainTimeoutMs: SHORT_DRAIN_MS,
  }),
  replacement: (h) => ({ seeds: h.victim.seeds, refreshIntervalMs: NEVER_MS - 1, drainTimeoutMs: SHORT_DRAIN_MS }),
  async arm(h, old, change) {
    await until("the victim to learn its slot map", () => old.isReady);
    const ports = primaryPorts(old);
    const from = ports[0]!;
    const to = ports[1]!;
    const moved = keysOn(old, from, "gone:e:moved", 1)[0]!;
    // Open the client's connection to every primary now: the redirect must not need a connect.
    const warm = ports.map((port) => keysOn(old, port, "gone:e:warm", 1)[0]!);
    h.client.send([["SET", moved, "moved-value"], "+OK\r\n"], ...warm.map((k): [string[], Expect] => [["SET", k, k], "+OK\r\n"]));
    await h.client.settle();
    // From here every new connection to the victim's nodes hangs: the refresh cannot finish.
    for (const port of h.victim.nodes.map((n) => n.port)) h.hook.holdConnects(port);
    await h.victim.migrateSlot(keySlot(encoder.encode(moved)), from, to);
    // slotgate still sends the key to its old owner, which answers MOVED; slotgate follows it.
    h.client.send([["GET", moved], bulk("moved-value")]);
    await h.client.settle();
    assert.ok(old.stats.moved >= 1, `the victim followed a MOVED (moved=${old.stats.moved})`);
    await until(
      "the refresh the MOVED asked for to hang on a connect",
      () => h.hook.held().some((op) => op.record.context === TAG) && findScope(old.scope.inspect(), /\/refresh \d+$/).length > 0,
      () => JSON.stringify(old.scope.inspect()),
    );
    const held = h.hook.held().map((op) => op.record);
    // A replacement must reach the nodes; the refresh's own connects stay held.
    if (change === "replace") h.hook.stopHolding();
    return { held };
  },
};

/** Requests stalled on one primary (its replies held back by the hook) when the change comes. */
function requestsInFlight(drain: "short" | "long"): Scenario {
  const drainTimeoutMs = drain === "short" ? SHORT_DRAIN_MS : 60_000;
  let stalledPort = 0;
  return {
    while:
      drain === "short"
        ? "pipelined requests are in flight on its connections and outlive its drain timeout"
        : "pipelined requests are in flight on its connections and finish within its drain timeout",
    changed: "seed list",
    victim: (h) => ({ seeds: h.victim.seeds, refreshIntervalMs: NEVER_MS, connectionsPerNode: 1, drainTimeoutMs }),
    // The replacement's discovery must not ask the stalled node.
    replacement: (h) => ({
      seeds: h.victim.seeds.filter((seed) => !seed.endsWith(`:${stalledPort}`)),
      refreshIntervalMs: NEVER_MS,
      connectionsPerNode: 1,
      drainTimeoutMs,
    }),
    async arm(h, old, change) {
      await until("the victim to learn its slot map", () => old.isReady);
      stalledPort = primaryPorts(old)[0]!;
      const keys = keysOn(old, stalledPort, "gone:f", 10);
      h.client.send(...keys.map((k): [string[], Expect] => [["SET", k, `v-${k}`], "+OK\r\n"]));
      await h.client.settle();
      h.hook.stallReads(stalledPort);
      const cut = `-ERR cluster '${VICTIM}' was ${change === "remove" ? "removed" : "replaced"}\r\n`;
      h.client.send(...keys.map((k): [string[], Expect] => [["GET", k], drain === "short" ? cut : bulk(`v-${k}`)]));
      const pending = () => old.nodes().find((n) => n.address === `127.0.0.1:${stalledPort}`)?.pending ?? 0;
      await until(`${keys.length} requests in flight on ${stalledPort}`, () => pending() === keys.length, () => `(pending ${pending()})`);
      const flow = async () => h.hook.flowReads(stalledPort);
      return drain === "short"
        ? { afterChange: flow }
        : {
            async whileChanging(changing) {
              await until("the old instance to start closing", () => old.scope.state !== "open");
              assert.equal(changing.settled, false, "the change waits for the requests in flight");
              await flow();
            },
          };
    },
  };
}

/**
 * A request in flight on a primary that is demoted meanwhile (a manual failover to its replica)
 * is answered MOVED to a node the cluster has never met. The reply is held back until the change
 * has begun, so it arrives while the old instance drains and cannot open a node any more.
 */
const movedToNewNodeWhileDraining: Scenario = {
  while: "a MOVED to a node it has not met yet comes back as it drains",
  changed: "drainTimeoutMs",
  victim: (h) => ({ seeds: h.victim.seeds, refreshIntervalMs: NEVER_MS, redirectRefreshThreshold: 0, connectionsPerNode: 1, drainTimeoutMs: 60_000 }),
  replacement: (h) => ({ seeds: h.victim.seeds, refreshIntervalMs: NEVER_MS, connectionsPerNode: 1, drainTimeoutMs: 30_000 }),
  async arm(h, old, change) {
    await until("the victim to learn its slot map", () => old.isReady);
    const demoted = primaryPorts(old)[0]!;
    const key = keysOn(old, demoted, "gone:g", 1)[0]!;
    h.client.send([["SET", key, "before-failover"], "+OK\r\n"]);
    await h.client.settle();
    const roles = await Promise.all(h.victim.nodes.map(async (n) => ({ port: n.port, role: (await h.victim.reply(n.port, "ROLE")) as unknown[] })));
    const promoted = roles.find((r) => r.role[0] === "slave" && Number(r.role[2]) === demoted)?.port;
    assert.ok(promoted !== undefined, `${demoted} has a replica: ${JSON.stringify(roles)}`);
    assert.ok(!old.nodes().some((n) => n.address.endsWith(`:${promoted}`)), "the victim has not met the replica");
    await h.victim.command(promoted, "CLUSTER", "FAILOVER");
    await until("the replica to take over", async () => (await h.victim.ownerOfSlot(keySlot(encoder.encode(key)))).port === promoted);
    await h.victim.waitForStable();
    h.hook.stallReads(demoted);
    const cut = `-ERR cluster '${VICTIM}' was ${change === "remove" ? "removed" : "replaced"}\r\n`;
    h.client.send([["GET", key], cut]);
    const pending = () => old.nodes().find((n) => n.address === `127.0.0.1:${demoted}`)?.pending ?? 0;
    await until(`the GET in flight on ${demoted}`, () => pending() === 1, () => `(pending ${pending()}, nodes ${JSON.stringify(old.nodes())})`);
    return {
      async whileChanging(changing) {
        await until("the old instance to start closing", () => old.scope.state !== "open");
        assert.equal(changing.settled, false, "the change waits for the request in flight");
        h.hook.flowReads(demoted);
      },
    };
  },
};

// --- the suite ---------------------------------------------------------------------------------

describe("removing or replacing a cluster while it has work in flight", () => {
  const mainRedis = lazy(() => startLocalCluster({ replicasPerPrimary: 0 }));
  // Replicas: a failover must be able to move a slot to a node the victim has never met.
  const victimRedis = lazy(() => startLocalCluster({ replicasPerPrimary: 1 }));
  const silent = lazy(startSilentServer);
  const open = new Set<Harness>();
  after(async () => {
    for (const h of open) await h.close().catch(() => {});
    await silent.stop();
    await Promise.all([mainRedis.stop(), victimRedis.stop()]);
  });

  async function startHarness(routing: Routing): Promise<Harness> {
    const [main, victim] = await Promise.all([mainRedis.get(), victimRedis.get()]);
    const hook = hookRuntime(await currentRuntime());
    const config = validateConfig({
      listen: "127.0.0.1:0",
      logLevel: "warn",
      shutdownTimeoutMs: 2000,
      admin: { listen: "127.0.0.1:0" },
      clusters: { main: { seeds: main.seeds } },
      ...(routing === "catch-all" ? { catchAll: "main" } : { routes: [{ prefix: "steady:", cluster: "main" }] }),
    });
    const logged: string[] = [];
    const app = await startSlotgate(hook.runtime, config, createLogger("warn", (line) => logged.push(line)));
    const closers: (() => Promise<void> | void)[] = [];
    let closing: Promise<void> | null = null;
    const h: Harness = {
      hook,
      app,
      main,
      victim,
      logged,
      client: null!,
      mainClient: null!,
      steady: null!,
      close: () =>
        (closing ??= (async () => {
          open.delete(h);
          for (const close of closers.reverse()) await close();
          hook.stopHolding();
          for (const op of hook.held()) op.release();
          await app.close();
        })()),
    };
    open.add(h);
    await until("main to learn its slot map", () => (app.control.backend("main") as Cluster).isReady);
    const mainClient = new Redis({ port: app.port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 });
    closers.push(() => mainClient.disconnect());
    await mainClient.connect();
    const steady = new Steady(mainClient);
    closers.push(() => steady.stop());
    const raw = await RawClient.connect(app.port);
    closers.push(() => raw.close());
    const client = new VictimClient(raw);
    // What this client's requests start (upstream connections, their op timers) is the victim's.
    hook.tagClient(client.port, TAG);
    Object.assign(h, { client, mainClient, steady });
    return h;
  }

  /** Add "victim" with route `gone:` under the victim's tag, so that the hook knows its resources. */
  async function addVictim(h: Harness, doc: Doc): Promise<Cluster> {
    const current = h.app.control.config();
    const result = await h.hook.within(TAG, () =>
      h.app.control.replaceConfig({ ...current, clusters: { ...current.clusters, [VICTIM]: doc }, routes: [...current.routes, { prefix: "gone:", cluster: VICTIM }] }),
    );
    assert.ok(result.ok, `adding the victim was accepted: ${JSON.stringify(result)}`);
    const backend = h.app.control.backend(VICTIM);
    assert.ok(backend instanceof Cluster, "the victim is a Redis Cluster backend");
    return backend;
  }

  async function admin(h: Harness, method: string, path: string, body?: unknown): Promise<{ status: number; body: { changes?: string[]; errors?: string[] } }> {
    const response = await fetch(`http://127.0.0.1:${h.app.admin!.port}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as { changes?: string[]; errors?: string[] } };
  }

  /** Submit the change; resolves with its `changes` once it is fully applied. */
  async function submit(h: Harness, how: How, replacement: Doc | null): Promise<string[]> {
    const current = h.app.control.config();
    const clusters: Doc = { ...current.clusters };
    if (replacement) clusters[VICTIM] = replacement;
    else delete clusters[VICTIM];
    const routes = replacement ? current.routes : current.routes.filter((r) => r.cluster !== VICTIM);
    const whole = { ...current, clusters, routes };
    const viaControl = async (change: Promise<{ ok: boolean; changes?: string[]; problems?: string[] }>) => {
      const result = await change;
      assert.ok(result.ok, `${how} applied: ${JSON.stringify(result)}`);
      return result.changes!;
    };
    const viaAdmin = async (change: Promise<{ status: number; body: { changes?: string[]; errors?: string[] } }>) => {
      const { status, body } = await change;
      assert.equal(status, 200, `${how} answered 200: ${JSON.stringify(body)}`);
      return body.changes!;
    };
    switch (how) {
      case "admin DELETE /clusters/victim?force=true":
        return viaAdmin(admin(h, "DELETE", `/clusters/${VICTIM}?force=true`));
      case "admin PUT /config":
        return viaAdmin(admin(h, "PUT", "/config", whole));
      case "admin PUT /clusters/victim":
        return viaAdmin(admin(h, "PUT", `/clusters/${VICTIM}`, replacement));
      case "LiveConfig.deleteCluster":
        return viaControl(h.app.control.deleteCluster(VICTIM, true));
      case "LiveConfig.replaceConfig":
        return viaControl(h.app.control.replaceConfig(whole));
      case "LiveConfig.putCluster":
        return viaControl(h.app.control.putCluster(VICTIM, replacement));
    }
  }

  async function runCase(scenario: Scenario, change: Change, how: How, routing: Routing): Promise<void> {
    const h = await startHarness(routing);
    try {
      await scenario.prepare?.(h);
      await mainBurst(h.mainClient, "before");
      const old = await addVictim(h, scenario.victim(h));
      const armed = await scenario.arm(h, old, change);
      const victimPorts = new Set([...h.victim.nodes.map((n) => n.port), ...(armed.ports ?? [])]);
      const late0 = lateCallbacks();
      const opsBefore = h.steady.ops;
      // From here on the victim client's requests start nothing of the old instance's.
      h.hook.tagClient(h.client.port, undefined);
      const changeSeq = h.hook.seq();

      // --- the change, with traffic to "main" during it ---
      const changing = { settled: false };
      const submitted = submit(h, how, change === "replace" ? scenario.replacement(h) : null).finally(() => void (changing.settled = true));
      const during = mainBurst(h.mainClient, "during");
      await armed.whileChanging?.(changing);
      const changes = await submitted;
      const markSeq = h.hook.mark();
      await during;
      await armed.afterChange?.();
      assert.ok(changes.includes(`${change === "remove" ? "removed" : "replaced"} cluster '${VICTIM}'`), `the change says what it did: ${JSON.stringify(changes)}`);

      // --- what belonged to the old instance ---
      const oldSocket = (s: SocketRecord) => s.context === TAG || (victimPorts.has(s.port) && (change === "remove" || s.seq < changeSeq));
      const oldLookup = (l: LookupRecord) => l.context === TAG || l.hostname === SLOW_SEED;
      const beforeMark = (r: { seq: number }) => r.seq < markSeq;

      // Its scope is gone (removal) or replaced by exactly one new instance.
      const tree = h.app.control.scopes();
      const victimScopes = findScope(tree, /\/cluster victim$/);
      if (change === "remove") {
        assert.deepEqual(findScope(tree, /cluster victim/).map((s) => s.path), [], "no scope of the removed cluster is left");
        assert.equal(h.app.control.backend(VICTIM), undefined, "the victim is no longer configured");
      } else {
        const current = h.app.control.backend(VICTIM);
        assert.ok(current instanceof Cluster && current !== old, "a new instance serves the victim");
        assert.equal(victimScopes.length, 1, `only the new instance's scope is left: ${JSON.stringify(victimScopes.map((s) => s.path))}`);
        assert.equal(current.scope.state, "open", "the new instance is open");
      }
      assert.equal(old.scope.state, "closed", "the old instance's scope is closed");
      assert.equal(old.scope.liveCount(), 0, `the old instance holds nothing: ${JSON.stringify(old.scope.inspect())}`);
      assert.equal(findScope(tree, /\/cluster main$/).length, 1, "main's scope is still there");
      if (how.startsWith("admin")) {
        const { status, body } = await admin(h, "GET", "/debug/scopes");
        assert.equal(status, 200, "GET /debug/scopes answers");
        assert.equal(findScope(body as unknown as ScopeInfo, /\/cluster victim$/).length, change === "remove" ? 0 : 1, "the admin API shows the same scopes");
      }

      // Nothing it started is still pending at the runtime.
      assert.deepEqual(h.hook.held().map((op) => op.target), [], "every held lookup and connect was aborted");
      for (const record of armed.held ?? []) assert.equal(record.state, "aborted", `held ${record.kind} ${"hostname" in record ? record.hostname : `${record.host}:${record.port}`} was aborted`);
      const armedTimers = h.hook.timers.filter((t) => t.context === TAG && beforeMark(t) && !t.fired && !t.cancelled);
      assert.deepEqual(armedTimers.map((t) => `${t.ms} ms: ${t.stack}`), [], "every timer of the old instance was cancelled or had fired");
      const unsettledLookups = () => h.hook.lookups.filter((l) => oldLookup(l) && (l.state === "held" || l.state === "pending"));
      await until("every lookup of the old instance to settle", () => unsettledLookups().length === 0, () => JSON.stringify(unsettledLookups()));
      const openSockets = () => h.hook.sockets.filter((s) => oldSocket(s) && beforeMark(s) && (s.state === "open" || s.state === "connecting" || s.state === "held"));
      await until("every socket of the old instance to close", () => openSockets().length === 0, () => JSON.stringify(openSockets()));
      await armed.check?.();

      // Watch a while: a callback of the old instance would run in this window.
      await sleep(scenario.observeMs ?? 400);
      assert.deepEqual(h.hook.lateRuns((r) => beforeMark(r) && (r.kind === "timer" ? r.context === TAG : oldSocket(r))), [], "no callback of the old instance ran after the change");
      assert.deepEqual(h.hook.violations, [], "the adapter kept the runtime contract");
      assert.equal(lateCallbacks() - late0, 0, "no scope dropped a late callback");

      // Its prefix now goes where the new routing says.
      const key = "gone:after";
      if (change === "replace") {
        h.client.send([["SET", key, "new"], "+OK\r\n"], [["GET", key], bulk("new")]);
      } else if (routing === "catch-all") {
        h.client.send([["SET", key, "main"], "+OK\r\n"], [["GET", key], bulk("main")]);
      } else {
        const noRoute = `-ERR no route for key '${key}'\r\n`;
        h.client.send([["SET", key, "x"], noRoute], [["GET", key], noRoute]);
      }
      await h.client.settle();
      if (change === "replace" || routing === "catch-all") {
        // Straight from the redis-server that should hold it.
        const owner = change === "replace" ? (h.app.control.backend(VICTIM) as Cluster) : (h.app.control.backend("main") as Cluster);
        const store = change === "replace" ? h.victim : h.main;
        assert.equal(await store.command(ownerPort(owner, key), "GET", key), change === "replace" ? "new" : "main", `${key} was stored by the ${change === "replace" ? "victim's" : "main"} cluster`);
      }

      // "main" served throughout, and still does.
      await mainBurst(h.mainClient, "after");
      await h.steady.stop();
      assert.deepEqual(h.steady.errors, [], "steady traffic to main never failed");
      assert.ok(h.steady.ops > opsBefore, `steady traffic to main went on (${opsBefore} → ${h.steady.ops} round trips)`);
      assert.ok((h.app.control.backend("main") as Cluster).isReady, "main is still ready");
      assert.deepEqual(h.logged.filter((line) => line.startsWith("ERROR")), [], "slotgate logged no error");
    } finally {
      await h.close();
    }
  }

  const silentScenario = clusterSlotsInFlight(() => silent.get());
  const cases: [Scenario, Change, How, Routing][] = [
    [dnsPending("never"), "remove", "admin DELETE /clusters/victim?force=true", "catch-all"],
    [dnsPending("never"), "replace", "LiveConfig.putCluster", "prefixes"],
    [dnsPending("while draining"), "remove", "admin PUT /config", "prefixes"],
    [connectPending("never"), "remove", "LiveConfig.deleteCluster", "prefixes"],
    [connectPending("never"), "replace", "admin PUT /clusters/victim", "catch-all"],
    [connectPending("while draining"), "remove", "LiveConfig.replaceConfig", "catch-all"],
    [silentScenario, "remove", "LiveConfig.replaceConfig", "catch-all"],
    [silentScenario, "replace", "admin PUT /config", "prefixes"],
    [timerArmed, "remove", "LiveConfig.deleteCluster", "catch-all"],
    [timerArmed, "replace", "LiveConfig.putCluster", "prefixes"],
    [refreshAfterMoved, "remove", "admin DELETE /clusters/victim?force=true", "prefixes"],
    [refreshAfterMoved, "replace", "LiveConfig.replaceConfig", "catch-all"],
    [requestsInFlight("short"), "remove", "admin DELETE /clusters/victim?force=true", "catch-all"],
    [requestsInFlight("long"), "remove", "LiveConfig.deleteCluster", "prefixes"],
    [requestsInFlight("short"), "replace", "admin PUT /clusters/victim", "prefixes"],
    [requestsInFlight("long"), "replace", "LiveConfig.putCluster", "catch-all"],
    [movedToNewNodeWhileDraining, "remove", "LiveConfig.deleteCluster", "catch-all"],
    [movedToNewNodeWhileDraining, "replace", "admin PUT /clusters/victim", "prefixes"],
  ];

  for (const [scenario, change, how, routing] of cases) {
    const name =
      change === "remove"
        ? `removing a cluster (${how}) while ${scenario.while} leaves nothing of it running, and its keys ${routing === "catch-all" ? "go to the catch-all" : "get no route"}`
        : `replacing a cluster (${scenario.changed}, ${how}) while ${scenario.while} leaves only the new instance running`;
    it(name, SLOW, () => runCase(scenario, change, how, routing));
  }

  it("deleting a cluster that a route still points at is refused without force and changes nothing", SLOW, async () => {
    const h = await startHarness("catch-all");
    try {
      const old = await addVictim(h, { seeds: h.victim.seeds });
      const { status, body } = await admin(h, "DELETE", `/clusters/${VICTIM}`);
      assert.equal(status, 409, `refused: ${JSON.stringify(body)}`);
      assert.equal(h.app.control.backend(VICTIM), old, "the victim is still the same instance");
      assert.equal(old.scope.state, "open", "and still open");
    } finally {
      await h.close();
    }
  });
});
