/**
 * The seeded schedule of things that go wrong during a run:
 *
 * - upstream: slot migrations of cluster a's hot slots, failovers (the old primary killed or
 *   demoted), nodes killed and restarted, partitions between slotgate and a node, resets of a
 *   connection from slotgate to a node, DNS delays and failures of a hostname seed;
 * - client links (between a test client and slotgate): a reset, a half-close (the client ends its
 *   side), a vanished client host (slotgate's writes go unread), a delay (a partition, healed);
 * - configuration: cluster b added, replaced (1 to 3 times) and removed while clients use its keys.
 *
 * Each fault is noted as an event and, when it moves the topology, as turbulence in the oracle
 * (something that may touch a WATCHed key).
 */
import type { SimRuntime } from "../../../adapters/sim/runtime.ts";
import type { SimRandom } from "../../../adapters/sim/random.ts";
import type { SimRedisCluster, SlotMigration } from "../world/redis-cluster.ts";
import type { SimConn } from "../../../adapters/sim/connection.ts";
import { keySlot } from "../../../src/backends/cluster/slot.ts";
import type { SimClient } from "./client.ts";
import type { Oracle } from "./oracle.ts";
import type { Slotgate } from "../../../src/app.ts";
import type { Cluster } from "../../../src/backends/cluster/cluster.ts";

const enc = new TextEncoder();

export interface ScheduleContext {
  readonly sim: SimRuntime;
  readonly rnd: SimRandom;
  readonly oracle: Oracle;
  readonly a: SimRedisCluster;
  readonly hot: string[];
  readonly useDns: boolean;
  readonly clients: SimClient[];
  readonly migrations: SlotMigration[];
  /** Run `fn` at virtual ms `ms` from now, noted as event `what`. */
  at(ms: number, what: string, fn: () => void): void;
}

/** Schedule `count` upstream faults within `duration` ms. */
export function scheduleUpstreamFaults(ctx: ScheduleContext, count: number, duration: number): void {
  const { sim, rnd, a, hot, oracle, at } = ctx;
  const aliveOther = (not: string) => a.primaries.filter((n) => n.alive && n.id !== not);
  for (let i = 0; i < count; i++) {
    const t = rnd.int(duration);
    const kind = rnd.pick(["migrate", "migrate", "failover", "kill", "partition", "dns", "reset"] as const);
    if (kind === "migrate") {
      const tag = rnd.pick(hot);
      at(t, `migrate slot of {${tag}}`, () => {
        const slot = keySlot(enc.encode(tag));
        const from = a.state.owner[slot]!;
        const to = rnd.pick(aliveOther(from));
        const m = a.migrateSlot(slot, to.id, { batchSize: 1 + rnd.int(2) });
        ctx.migrations.push(m);
        oracle.turbulent(sim.clock.now(), () => m.doneAt ?? Number.POSITIVE_INFINITY, `migration of slot ${slot}`);
        m.schedule(sim, 2 + rnd.int(10));
      });
    } else if (kind === "failover") {
      at(t, "failover", () => {
        const p = rnd.pick(a.primaries.filter((n) => n.alive && n.replicas().length > 0));
        const mode = rnd.pick(["kill", "demote"] as const);
        const now = sim.clock.now();
        oracle.turbulent(now, () => now, "failover");
        a.failover(p.id, { oldPrimary: mode });
      });
    } else if (kind === "kill") {
      const node = rnd.pick(a.nodes).id;
      const downFor = 20 + rnd.int(200);
      at(t, `kill ${node} for ${downFor}ms`, () => {
        if (!a.node(node).alive) return;
        a.kill(node);
        const until = sim.clock.now() + downFor;
        oracle.turbulent(sim.clock.now(), () => until, `${node} down`);
        at(downFor, `restart ${node}`, () => {
          if (a.node(node).alive) return;
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
      // A connection from the proxy to a Redis node (the client side stays up).
      at(t, "reset a proxy-to-node connection", () => {
        const links = [...sim.network.links].filter((l) => !l.dead && l.client.localHost === sim.host);
        if (links.length > 0) sim.network.reset(rnd.pick(links).client, "explorer");
      });
    } else if (ctx.useDns) {
      const len = 10 + rnd.int(200);
      const bad = rnd.chance(0.5) ? { fail: rnd.pick(["EAI_AGAIN", "ENOTFOUND"]) } : { addresses: [a.nodes[0]!.host], delayMs: 50 + rnd.int(300) };
      at(t, `dns seed-a.sim ${JSON.stringify(bad)} for ${len}ms`, () => {
        sim.dns.set("seed-a.sim", bad);
        at(len, "dns seed-a.sim restored", () => sim.dns.set("seed-a.sim", { addresses: [a.nodes[0]!.host], delayMs: 1 }));
      });
    }
  }
}

/** Schedule `count` faults on the links between clients and slotgate within `duration` ms. */
export function scheduleClientFaults(ctx: ScheduleContext, count: number, duration: number): void {
  const { sim, rnd, at } = ctx;
  for (let i = 0; i < count; i++) {
    const t = rnd.int(duration);
    const kind = rnd.pick(["reset", "half-close", "vanish", "delay", "delay"] as const);
    const client = rnd.pick(ctx.clients);
    // The client's own connection: its side is the one whose local host is the client's.
    const link = () => [...sim.network.links].find((l) => !l.dead && l.client.localHost === client.host);
    if (kind === "delay") {
      const len = 5 + rnd.int(150);
      at(t, `delay client ${client.id}'s link for ${len}ms`, () => {
        sim.network.partition(client.host, sim.host);
        at(len, `heal client ${client.id}'s link`, () => sim.network.heal(client.host, sim.host));
      });
      continue;
    }
    at(t, `${kind} client ${client.id}'s link`, () => {
      const l = link();
      if (!l || client.faultedAt !== null) return;
      client.faultedAt = sim.clock.now();
      if (kind === "reset") sim.network.reset(l.client as SimConn, "explorer");
      else if (kind === "half-close") client.conn!.end();
      // The client's host vanishes: slotgate's side sees nothing, its writes are never read.
      else sim.network.halfOpen(l.server as SimConn);
    });
  }
}

export interface ChurnContext {
  readonly app: Slotgate;
  /** The simulated cluster behind slotgate's cluster b. */
  readonly b: SimRedisCluster;
  /** The configuration document with cluster a only, and cluster a's entry. */
  readonly base: Record<string, unknown>;
  readonly clusterA: Record<string, unknown>;
  /** Cluster knobs, given to every b too. */
  readonly knobs: Record<string, unknown>;
  readonly duration: number;
  readonly fail: (invariant: string, detail: string) => void;
}

/**
 * Cluster b added, replaced 1 to 3 times, then removed, spread over the run, so that clients
 * start transactions and block on each b before it goes. Returns the changes (to wait for) and
 * the clusters they retired (to check that they hold nothing).
 */
export function scheduleConfigChurn(ctx: ScheduleContext, churn: ChurnContext): { control: Promise<void>[]; retired: { what: string; backend: Cluster }[] } {
  const { sim, rnd, oracle, at } = ctx;
  const { app: started, b, base, clusterA, knobs, duration, fail } = churn;
  const control: Promise<void>[] = [];
  const retired: { what: string; backend: Cluster }[] = [];
  const docB = (refresh: number) => ({ seeds: [b.seeds[rnd.int(3)]!], ...knobs, refreshIntervalMs: refresh });
  // Spread over the run, so that clients start transactions and block on each b before it goes.
  const t1 = rnd.int(Math.floor(duration / 5));
  const count = 2 + rnd.int(2);
  const gap = Math.floor((duration - t1) / count);
  const times = [t1];
  for (let n = 0; n < count; n++) times.push(times.at(-1)! + Math.floor(gap / 2) + rnd.int(Math.ceil(gap / 2)));
  const replaces = times.slice(1, -1);
  const t3 = times.at(-1)!;
  const seen = new Set<Cluster>();
  const change = (what: string, fn: () => Promise<{ ok: boolean; problems?: string[] }>) => {
    const from = sim.clock.now();
    let settledAt = Number.POSITIVE_INFINITY;
    oracle.turbulent(from, () => settledAt, what, true);
    control.push(
      fn().then(
        (r) => {
          settledAt = sim.clock.now();
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
  for (const [n, t] of replaces.entries()) {
    at(t, `config: replace b (${n + 1})`, () => change(`replace b (${n + 1})`, () => started.control.putCluster("b", docB(300 - n))));
  }
  at(t3, "config: remove b", () => change("remove b", () => started.control.deleteCluster("b", true)));
  return { control, retired };
}
