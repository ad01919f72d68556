/**
 * Deterministic-simulation explorer: one seed builds a random scenario — the real proxy
 * (startSlotgate) on the simulator in front of one or two simulated Redis Clusters, 1-3 clients
 * pipelining SET/GET, and a seeded schedule of faults (slot migrations, failovers, node
 * kill/restart, partitions between the proxy host and a node, DNS delays/failures of a hostname
 * seed, config churn add → replace → remove of a second cluster) — and checks invariants:
 *
 * - every request gets exactly one reply, in order, each one Redis could have given (a GET sees
 *   nil or a value some SET wrote to that key) or a documented proxy error (-ERR, -CLUSTERDOWN,
 *   -TRYAGAIN);
 * - no callback of a closed scope runs (`lateCallbacks()` unchanged);
 * - after quiescing, retired (removed/replaced) clusters hold zero live resources; after close
 *   the app's scope holds none and no sim timer is pending;
 * - config changes all settle; no promise rejection goes unhandled.
 *
 * The same seed gives the same trace, byte for byte (`runSeed(s).traceHash`).
 */
import { createSimRuntime, type SimRuntime } from "../../adapters/sim/runtime.ts";
import { SimRedisCluster, type SlotMigration } from "./world/redis-cluster.ts";
import { SimRandom } from "../../adapters/sim/random.ts";
import { encodeCommand } from "../../src/resp/encode.ts";
import { ReplyReader } from "../../src/resp/reply-reader.ts";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { startSlotgate, type Slotgate } from "../../src/app.ts";
import { validateConfig } from "../../src/config/load.ts";
import { KNOB_DEFAULTS } from "../../src/config/schema.ts";
import { lateCallbacks } from "../../src/scope/scope.ts";
import type { Conn } from "../../src/runtime.ts";
import type { Cluster } from "../../src/backends/cluster/cluster.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface Violation {
  invariant: string;
  detail: string;
}

export interface SeedResult {
  seed: number;
  violations: Violation[];
  trace: string[];
  traceHash: string;
  requests: number;
  replies: number;
  errors: number;
  events: string[];
  /** Redirects cluster a followed, and retired clusters whose release was checked. */
  ask: number;
  moved: number;
  retiredChecked: number;
}

/** FNV-1a 32-bit, hex: enough to compare two traces. */
export function hashText(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

// ---- unhandled rejections: one listener for the process, counted per seed -------------------
let unhandled = 0;
let installed = false;
function installRejectionListener(): void {
  if (installed) return;
  installed = true;
  const g = globalThis as unknown as {
    process?: { on?: (e: string, f: (r: unknown) => void) => void };
    Deno?: unknown;
    addEventListener?: (e: string, f: (ev: { preventDefault(): void }) => void) => void;
  };
  if (g.Deno && g.addEventListener) {
    g.addEventListener("unhandledrejection", (ev) => {
      ev.preventDefault();
      unhandled++;
    });
  } else if (g.process?.on) {
    g.process.on("unhandledRejection", () => void unhandled++);
  }
}
/** Let the host runtime run its unhandled-rejection detection (it runs between macrotasks). */
function macrotask(): Promise<void> {
  return new Promise((resolve) => (globalThis as unknown as { setTimeout(f: () => void, ms: number): unknown }).setTimeout(resolve, 0));
}

// ---- a client on the sim network ---------------------------------------------------------------
interface Req {
  op: "SET" | "GET";
  key: string;
  value?: string;
}

class Client {
  readonly replies: string[] = [];
  /** Virtual time each reply arrived. */
  readonly replyAt: number[] = [];
  readonly reqs: Req[] = [];
  conn: Conn | null = null;
  closed = false;
  readonly #reader = new ReplyReader((frame) => {
    this.replies.push(dec.decode(frame));
    this.replyAt.push(this.sim.clock.now());
  });
  constructor(
    readonly id: number,
    readonly sim: SimRuntime,
  ) {}
  open(sim: SimRuntime, host: string, port: number): Promise<void> {
    return sim
      .forHost(host)
      .connect({ host: "127.0.0.1", port }, { data: (c) => this.#reader.push(c), drain: () => {}, close: () => void (this.closed = true) })
      .then(
        (c) => void (this.conn = c),
        () => {},
      );
  }
  send(req: Req): void {
    this.reqs.push(req);
    this.conn!.write(encodeCommand(req.value === undefined ? [req.op, req.key] : [req.op, req.key, req.value]));
  }
}

/** Drive the clock until `done()` or `maxMs` virtual ms passed. */
async function driveUntil(sim: SimRuntime, done: () => boolean, maxMs: number, chunk = 5): Promise<boolean> {
  const end = sim.clock.now() + maxMs;
  while (!done() && sim.clock.now() < end) await sim.clock.advance(chunk);
  return done();
}

const ALLOWED_ERROR = /^-(ERR |CLUSTERDOWN |CLUSTERDOWN\r|TRYAGAIN )/;

export interface RunOptions {
  /** Clock settle rounds (speed vs. realism of interleavings; default 8). */
  settleQuietRounds?: number;
}

/** Build and run the scenario of `seed`, check every invariant, return what broke. */
export async function runSeed(seed: number, options: RunOptions = {}): Promise<SeedResult> {
  installRejectionListener();
  const violations: Violation[] = [];
  const events: string[] = [];
  const fail = (invariant: string, detail: string) => {
    if (violations.length < 20) violations.push({ invariant, detail });
  };
  const rnd = new SimRandom(seed).fork("explorer");
  const sim = createSimRuntime({ seed, settleQuietRounds: options.settleQuietRounds ?? 8, dnsDelayMeanMs: 1, connectTimeoutMs: 150 });
  const late0 = lateCallbacks();
  const unhandled0 = unhandled;
  const event = (text: string) => {
    events.push(text);
    sim.note(`explorer: ${text}`);
  };
  let app: Slotgate | null = null;
  const clients: Client[] = [];
  try {
    // --- the world ---
    const a = await SimRedisCluster.create(sim, { primaries: 3, replicasPerPrimary: rnd.chance(0.7) ? 1 : 0 });
    const withB = rnd.chance(0.7);
    const b = withB ? await SimRedisCluster.create(sim, { primaries: 3, hostBase: "10.0.2" }) : null;
    const useDns = rnd.chance(0.5);
    if (useDns) sim.dns.set("seed-a.sim", { addresses: [a.nodes[0]!.host], delayMs: rnd.int(5) });
    const knobs = {
      refreshIntervalMs: 200,
      redirectRefreshIntervalMs: 50,
      opTimeoutMs: 100 + rnd.int(300),
      connectTimeoutMs: 100,
      readyTimeoutMs: rnd.pick([0, 50, 150]),
      drainTimeoutMs: rnd.pick([0, 20, 100]),
      refreshTimeoutMs: 100,
    };
    const clusterA = { seeds: useDns ? ["seed-a.sim:6379", a.seeds[1]!] : a.seeds.slice(0, 2), ...knobs };
    const base = { clusters: { a: clusterA }, catchAll: "a", listen: "127.0.0.1:0", admin: { listen: "off" }, logLevel: "silent", shutdownTimeoutMs: 300 };
    app = await startSlotgate(sim, validateConfig(base));
    const started = app;
    // Wait (bounded) for readiness; traffic starts anyway.
    let ready = false;
    void started.ready().then(() => void (ready = true));
    await driveUntil(sim, () => ready, 100, 1);

    // --- keys: two hot slots of cluster a (hash tags) + spread keys + keys routed to b ---
    const hotTag = (prefix: string, owner: string) => {
      for (let i = 0; ; i++) if (a.ownerOf(`${prefix}${i}`).id === owner) return `${prefix}${i}`;
    };
    const hot = [hotTag("h", "node-0"), hotTag("g", "node-1")];
    const keys = [
      ...hot.flatMap((t) => Array.from({ length: 4 }, (_, i) => `{${t}}${i}`)),
      ...Array.from({ length: 6 }, (_, i) => `k${i}`),
      ...(withB ? Array.from({ length: 4 }, (_, i) => `b:${i}`) : []),
    ];
    const written = new Map<string, Set<string>>(keys.map((k) => [k, new Set<string>()]));
    /** When each value's SET was sent (virtual ms): a GET cannot see it before then. */
    const sentAt = new Map<string, number>();

    // --- clients ---
    const nClients = 1 + rnd.int(3);
    for (let i = 0; i < nClients; i++) {
      const c = new Client(i, sim);
      clients.push(c);
      let opened = false;
      void c.open(sim, `10.0.0.${20 + i}`, started.port).then(() => void (opened = true));
      await driveUntil(sim, () => opened, 50, 1);
      if (!opened) fail("client-connect", `client ${i} could not connect`);
    }
    let nextValue = 0;
    const sendRandom = (c: Client) => {
      const key = rnd.pick(keys);
      if (rnd.chance(0.45)) {
        const value = `v${c.id}.${nextValue++}`;
        written.get(key)!.add(value);
        sentAt.set(value, sim.clock.now());
        c.send({ op: "SET", key, value });
      } else c.send({ op: "GET", key });
    };

    // --- the fault schedule ---
    const duration = 200 + rnd.int(400);
    const at = (ms: number, what: string, fn: () => void) =>
      sim.setTimer(ms, () => {
        event(what);
        try {
          fn();
        } catch (error) {
          sim.note(`explorer: ${what} skipped: ${(error as Error).message}`);
        }
      });
    const migrations: SlotMigration[] = [];
    const killed = new Set<string>();
    const aliveOther = (cluster: SimRedisCluster, not: string) => cluster.primaries.filter((n) => n.alive && n.id !== not);
    const nEvents = 2 + rnd.int(5);
    for (let i = 0; i < nEvents; i++) {
      const t = rnd.int(duration);
      const kind = rnd.pick(["migrate", "migrate", "failover", "kill", "partition", "dns", "reset"] as const);
      if (kind === "migrate") {
        const tag = rnd.pick(hot);
        at(t, `migrate slot of {${tag}}`, () => {
          const slot = keySlot(enc.encode(tag));
          const from = a.state.owner[slot]!;
          const to = rnd.pick(aliveOther(a, from));
          const m = a.migrateSlot(slot, to.id, { batchSize: 1 + rnd.int(2) });
          migrations.push(m);
          m.schedule(sim, 2 + rnd.int(10));
        });
      } else if (kind === "failover") {
        at(t, "failover", () => {
          const p = rnd.pick(a.primaries.filter((n) => n.alive && n.replicas().length > 0));
          const mode = rnd.pick(["kill", "demote"] as const);
          a.failover(p.id, { oldPrimary: mode });
          if (mode === "kill") killed.add(p.id);
        });
      } else if (kind === "kill") {
        const node = rnd.pick(a.nodes).id;
        const downFor = 20 + rnd.int(200);
        at(t, `kill ${node} for ${downFor}ms`, () => {
          if (!a.node(node).alive) return;
          a.kill(node);
          killed.add(node);
          at(downFor, `restart ${node}`, () => {
            if (a.node(node).alive) return;
            killed.delete(node);
            void a.restart(node);
          });
        });
      } else if (kind === "partition") {
        const node = rnd.pick(a.nodes).host;
        const len = 10 + rnd.int(rnd.chance(0.3) ? 600 : 150);
        at(t, `partition proxy ${node} for ${len}ms`, () => {
          sim.network.partition(sim.host, node);
          at(len, "heal", () => sim.network.heal());
        });
      } else if (kind === "reset") {
        // Reset a random live connection from the proxy to a Redis node (the client side stays up).
        at(t, "reset a proxy-to-node connection", () => {
          const links = [...sim.network.links].filter((l) => !l.dead && l.client.localHost === sim.host);
          if (links.length > 0) sim.network.reset(rnd.pick(links).client, "explorer");
        });
      } else if (useDns) {
        const len = 10 + rnd.int(200);
        const bad = rnd.chance(0.5) ? { fail: rnd.pick(["EAI_AGAIN", "ENOTFOUND"]) } : { addresses: [a.nodes[0]!.host], delayMs: 50 + rnd.int(300) };
        at(t, `dns seed-a.sim ${JSON.stringify(bad)} for ${len}ms`, () => {
          sim.dns.set("seed-a.sim", bad);
          at(len, "dns seed-a.sim restored", () => sim.dns.set("seed-a.sim", { addresses: [a.nodes[0]!.host], delayMs: 1 }));
        });
      }
    }
    // Config churn on cluster b: add → replace → remove.
    const control: Promise<void>[] = [];
    const retired: { what: string; backend: Cluster }[] = [];
    if (b) {
      const docB = (refresh: number) => ({ seeds: [b.seeds[rnd.int(3)]!], ...knobs, refreshIntervalMs: refresh });
      const t1 = rnd.int(Math.floor(duration / 2));
      const t2 = t1 + rnd.int(Math.floor(duration / 2));
      const t3 = t2 + rnd.int(Math.floor(duration / 2));
      const seen = new Set<Cluster>();
      const change = (what: string, fn: () => Promise<{ ok: boolean; problems?: string[] }>) => {
        control.push(
          fn().then(
            (r) => {
              sim.note(`explorer: ${what} -> ${r.ok ? "ok" : JSON.stringify(r.problems)}`);
              if (!r.ok) fail("config-change", `${what}: ${JSON.stringify(r.problems)}`);
              const now = started.control.backend("b") as Cluster | undefined;
              for (const old of seen) if (old !== now && !retired.some((x) => x.backend === old)) retired.push({ what: `cluster b retired by ${what}`, backend: old });
              if (now) seen.add(now);
            },
            (e) => fail("config-change", `${what} rejected: ${(e as Error).message}`),
          ),
        );
      };
      const add = { ...base, clusters: { a: clusterA, b: docB(200) }, routes: [{ prefix: "b:", cluster: "b" }] };
      at(t1, "config: add b", () => change("add b", () => started.control.replaceConfig(add)));
      at(t2, "config: replace b", () => change("replace b", () => started.control.putCluster("b", docB(300))));
      at(t3, "config: remove b", () => change("remove b", () => started.control.deleteCluster("b", true)));
    }

    // --- traffic ---
    for (let t = 0; t < duration; t += 2) {
      for (const c of clients) if (c.conn && !c.closed && rnd.chance(0.35)) for (let n = rnd.int(3); n >= 0; n--) sendRandom(c);
      await sim.clock.advance(2);
    }

    // --- quiesce: heal, restore DNS, restart the dead, let migrations and changes finish ---
    event("quiesce");
    sim.network.heal();
    if (useDns) sim.dns.set("seed-a.sim", { addresses: [a.nodes[0]!.host], delayMs: 1 });
    for (const n of a.nodes) if (!n.alive) void a.restart(n.id);
    const allReplied = () => clients.every((c) => c.closed || c.replies.length >= c.reqs.length);
    const settled = { control: false };
    void Promise.all(control).then(() => void (settled.control = true));
    await driveUntil(sim, () => allReplied() && settled.control && migrations.every((m) => m.done), 5000, 10);
    await sim.clock.advance(50); // any stray extra reply would arrive now

    // --- invariants on replies ---
    let errors = 0;
    for (const c of clients) {
      if (c.closed) fail("client-closed", `client ${c.id}'s connection was closed by the proxy`);
      if (c.replies.length !== c.reqs.length) fail("one-reply-each", `client ${c.id}: ${c.reqs.length} requests, ${c.replies.length} replies`);
      const n = Math.min(c.replies.length, c.reqs.length);
      for (let i = 0; i < n; i++) {
        const req = c.reqs[i]!;
        const reply = c.replies[i]!;
        const what = `client ${c.id} request ${i} (${req.op} ${req.key}${req.value ? ` ${req.value}` : ""}) -> ${JSON.stringify(reply)}`;
        if (reply.startsWith("-")) {
          errors++;
          if (!ALLOWED_ERROR.test(reply)) fail("valid-reply", `undocumented error: ${what}`);
          continue;
        }
        if (req.op === "SET") {
          if (reply !== "+OK\r\n") fail("valid-reply", what);
        } else if (reply !== "$-1\r\n") {
          const m = /^\$(\d+)\r\n(.*)\r\n$/s.exec(reply);
          if (!m || !written.get(req.key)!.has(m[2]!)) fail("valid-reply", `GET saw a value no SET wrote: ${what}`);
          else if (sentAt.get(m[2]!)! > c.replyAt[i]!) fail("valid-reply", `GET saw a value before its SET was sent: ${what}`);
        }
      }
    }
    if (!settled.control) fail("config-change", "config changes did not settle");
    for (const m of migrations) if (!m.done) fail("quiesce", `migration of slot ${m.slot} stuck at ${m.stage}`);

    // --- retired clusters hold nothing ---
    for (const r of retired) {
      const live = r.backend.scope.liveCount();
      if (live !== 0 || r.backend.scope.state !== "closed") {
        fail("retired-cluster-released", `${r.what}: scope ${r.backend.scope.state}, ${live} live resources: ${JSON.stringify(r.backend.scope.inspect()).slice(0, 300)}`);
      }
    }

    // --- after the dust settles, the proxy reads what the oracle holds (catch-all a serves all keys now) ---
    const reader = clients.find((c) => c.conn && !c.closed);
    if (reader && violations.length === 0 && started.control.backend("b") === undefined) {
      // A node marked down or suspect comes back once a probe is answered: probes are at most
      // probeBackoffMaxMs apart, and one takes at most a connect and a PING (upstream/node.ts).
      await sim.clock.advance(KNOB_DEFAULTS.probeBackoffMaxMs + knobs.connectTimeoutMs + knobs.opTimeoutMs + 100);
      const first = reader.reqs.length;
      for (const k of keys) reader.send({ op: "GET", key: k });
      await driveUntil(sim, () => reader.replies.length >= reader.reqs.length, 3000, 5);
      keys.forEach((k, j) => {
        const reply = reader.replies[first + j];
        const value = a.valueOf(k);
        const want = value ? `$${value.length}\r\n${dec.decode(value)}\r\n` : "$-1\r\n";
        if (reply !== want) fail("read-back", `GET ${k} after quiesce -> ${JSON.stringify(reply)}, the cluster holds ${JSON.stringify(want)}`);
      });
    }
    const { ask, moved } = started.cluster.stats;
    // --- close ---
    for (const c of clients) c.conn?.end();
    let closed = false;
    void started.close().then(() => void (closed = true));
    await driveUntil(sim, () => closed, 2000, 10);
    if (!closed) fail("close", "app.close() did not resolve");
    if (started.scope.liveCount() !== 0) fail("close", `app scope holds ${started.scope.liveCount()} live resources: ${JSON.stringify(started.scope.inspect()).slice(0, 300)}`);
    const idle = await sim.clock.runUntilIdle({ maxSteps: 50_000 });
    if (idle.reason !== "idle" || sim.clock.pendingTimers() !== 0) fail("close", `sim not idle after close (${idle.reason}, ${sim.clock.pendingTimers()} timers)`);
    sim.checkpoint("end");
    if (lateCallbacks() !== late0) fail("no-late-callbacks", `${lateCallbacks() - late0} callbacks of closed scopes ran`);
    await macrotask();
    if (unhandled !== unhandled0) fail("no-unhandled-rejection", `${unhandled - unhandled0} unhandled rejections`);
    const requests = clients.reduce((s, c) => s + c.reqs.length, 0);
    const replies = clients.reduce((s, c) => s + c.replies.length, 0);
    const trace = [...sim.trace, ...clients.map((c) => c.replies.join(""))];
    return { seed, violations, trace: sim.trace, traceHash: hashText(trace.join("\n")), requests, replies, errors, events, ask, moved, retiredChecked: retired.length };
  } catch (error) {
    fail("crash", (error as Error)?.stack ?? String(error));
    return { seed, violations, trace: sim.trace, traceHash: hashText(sim.trace.join("\n")), requests: 0, replies: 0, errors: 0, events, ask: 0, moved: 0, retiredChecked: 0 };
  }
}

export interface ExploreResult {
  ran: number;
  failures: SeedResult[];
  requests: number;
  elapsedMs: number;
}

/** Run seeds start, start+1, ... until `count` ran, `budgetMs` (wall) passed, or `stopAtFirst` found one. */
export async function explore(start: number, count: number, options: RunOptions & { budgetMs?: number; stopAtFirst?: boolean; onResult?: (r: SeedResult) => void } = {}): Promise<ExploreResult> {
  const t0 = wallMs();
  const failures: SeedResult[] = [];
  let ran = 0;
  let requests = 0;
  for (let s = start; ran < count; s++) {
    if (options.budgetMs !== undefined && wallMs() - t0 > options.budgetMs) break;
    const r = await runSeed(s >>> 0, options);
    ran++;
    requests += r.requests;
    options.onResult?.(r);
    if (r.violations.length > 0) {
      failures.push(r);
      if (options.stopAtFirst) break;
    }
  }
  return { ran, failures, requests, elapsedMs: wallMs() - t0 };
}

/** Wall time for throughput reports only (never inside a scenario). */
export function wallMs(): number {
  return (globalThis as unknown as { performance: { now(): number } }).performance.now();
}

/** A failure as printed by the CLI: seed, invariants, the last `lines` trace lines. */
export function describeFailure(r: SeedResult, lines = 20): string {
  const out = [`seed ${r.seed}: ${r.violations.length} violation(s) — replay with --seed ${r.seed}`];
  for (const v of r.violations.slice(0, 5)) out.push(`  [${v.invariant}] ${v.detail}`);
  out.push(`  events: ${r.events.join("; ")}`);
  out.push("  trace (last lines):");
  for (const l of r.trace.slice(-lines)) out.push(`    ${l}`);
  return out.join("\n");
}
