/**
 * A simulated Redis Cluster: `SimRedisNode`s on one shared topology, with the operations a test
 * or a seeded scenario drives — slot migration in stages, failover, kill and restart — and an
 * oracle view of the true data. Every change of slot ownership is announced to the nodes
 * (`topologyChanged`), so clients blocked on a slot that moved and shard channels follow it. Node i (from 0) lives on host `10.0.1.<i+1>` (`hostBase`), port
 * 6379; node ids are `node-<i>`. Primaries come first; replica j of primary p is created after
 * them. Everything happens synchronously at a call (no timers) unless `SlotMigration.schedule`
 * arms steps on the sim clock.
 */
import { keySlot, SLOT_COUNT } from "../../../src/backends/cluster/slot.ts";
import type { SimRuntime } from "../../../adapters/sim/runtime.ts";
import { latin1, SimRedisNode, type SimClusterState } from "./redis-node.ts";
import type { TimerHandle } from "../../../src/runtime.ts";

export interface SimRedisClusterOptions {
  /** Number of primaries (default 3). */
  primaries?: number;
  /** Replicas per primary (default 0). */
  replicasPerPrimary?: number;
  /** The first three octets of the nodes' hosts (default "10.0.1"). */
  hostBase?: string;
  port?: number;
}

export interface MigrateOptions {
  /** Keys moved per step (default 1). */
  batchSize?: number;
}

/**
 * One slot moving from its owner to `to`, in stages, as redis-cli --cluster reshard does:
 * step 1 sets IMPORTING on the target and MIGRATING on the source; each later step MIGRATEs up
 * to `batchSize` keys of the slot; the step that finds no key left hands the slot to the target
 * (CLUSTER SETSLOT NODE on both sides) and clears both states.
 */
export class SlotMigration {
  stage: "pending" | "moving" | "done" = "pending";
  /** Virtual ms the slot was handed over, once done. */
  doneAt: number | null = null;
  steps = 0;
  keysMoved = 0;
  #timer: TimerHandle | null = null;

  constructor(
    readonly cluster: SimRedisCluster,
    readonly slot: number,
    public from: string,
    public to: string,
    readonly batchSize: number,
  ) {}

  get done(): boolean {
    return this.stage === "done";
  }

  /** Advance one stage; false once done. */
  step(): boolean {
    if (this.done) return false;
    this.steps++;
    const state = this.cluster.state;
    if (this.stage === "pending") {
      state.importing.set(this.slot, this.from);
      state.migrating.set(this.slot, this.to);
      this.stage = "moving";
      this.cluster.note(`migrate slot ${this.slot} ${this.from} -> ${this.to}: started`);
      return true;
    }
    // Failover may have replaced either side: follow the current primaries.
    const source = this.cluster.node(this.from);
    const target = this.cluster.node(this.to);
    const keys = source.keysIn(this.slot).slice(0, this.batchSize);
    for (const key of keys) {
      target.write(key, source.valueAt(key)!);
      source.write(key, null);
      this.keysMoved++;
    }
    // A list that arrived may wake a client blocked at the target (after ASKING).
    target.serveBlocked();
    if (keys.length === 0) {
      state.owner[this.slot] = this.to;
      state.importing.delete(this.slot);
      state.migrating.delete(this.slot);
      this.stage = "done";
      this.doneAt = this.cluster.sim.clock.now();
      this.cluster.note(`migrate slot ${this.slot}: done (${this.keysMoved} keys)`);
      this.cluster.topologyChanged();
    }
    return true;
  }

  /** Run a step every `everyMs` of virtual time until done. */
  schedule(runtime: SimRuntime, everyMs: number): void {
    const tick = () => {
      this.#timer = null;
      if (this.step() && !this.done) this.#timer = runtime.setTimer(everyMs, tick);
    };
    this.#timer = runtime.setTimer(everyMs, tick);
  }

  /** Stop scheduled steps (the migration stays where it is). */
  cancel(): void {
    this.#timer?.cancel();
    this.#timer = null;
  }

  /** Run every remaining step now. */
  finish(): void {
    this.cancel();
    while (this.step());
  }
}

export class SimRedisCluster {
  readonly state: SimClusterState = { owner: new Array<string | null>(SLOT_COUNT).fill(null), migrating: new Map(), importing: new Map(), nodes: new Map() };
  readonly sim: SimRuntime;
  readonly #migrations: SlotMigration[] = [];

  private constructor(sim: SimRuntime) {
    this.sim = sim;
  }

  /** Create and start the nodes; slots are split evenly over the primaries in order. */
  static async create(sim: SimRuntime, options: SimRedisClusterOptions = {}): Promise<SimRedisCluster> {
    const cluster = new SimRedisCluster(sim);
    const primaries = options.primaries ?? 3;
    const perPrimary = options.replicasPerPrimary ?? 0;
    const base = options.hostBase ?? "10.0.1";
    const port = options.port ?? 6379;
    const total = primaries * (1 + perPrimary);
    for (let i = 0; i < total; i++) {
      const host = `${base}.${i + 1}`;
      const node = new SimRedisNode({ id: `node-${i}`, host, port, runtime: sim.forHost(host), network: sim.network, state: cluster.state, log: (e) => sim.note(e) });
      if (i >= primaries) node.replicaOf = `node-${(i - primaries) % primaries}`;
      cluster.state.nodes.set(node.id, node);
    }
    // As redis-cli --cluster create: 0-5460, 5461-10922, 10923-16383 for three primaries.
    const perNode = SLOT_COUNT / primaries;
    let cursor = 0;
    for (let i = 0; i < primaries; i++) {
      const last = i === primaries - 1 ? SLOT_COUNT - 1 : Math.round(cursor + perNode - 1);
      for (let slot = cursor; slot <= last; slot++) cluster.state.owner[slot] = `node-${i}`;
      cursor = last + 1;
    }
    for (const node of cluster.state.nodes.values()) await node.start();
    return cluster;
  }

  note(event: string): void {
    this.sim.note(event);
  }

  get nodes(): SimRedisNode[] {
    return [...this.state.nodes.values()];
  }

  /** Current primaries (alive or not) that own at least one slot or have no master. */
  get primaries(): SimRedisNode[] {
    return this.nodes.filter((n) => n.replicaOf === null);
  }

  /** `host:port` of every node: seeds for the proxy. */
  get seeds(): string[] {
    return this.nodes.map((n) => n.address);
  }

  node(id: string): SimRedisNode {
    const node = this.state.nodes.get(id);
    if (!node) throw new Error(`no node ${id}`);
    return node;
  }

  /** The primary owning `key`'s slot. */
  ownerOf(key: string | Uint8Array): SimRedisNode {
    const id = this.state.owner[keySlot(typeof key === "string" ? new TextEncoder().encode(key) : key)];
    if (!id) throw new Error("slot not served");
    return this.node(id);
  }

  /** Start moving `slot` from its owner to node `to`. Drive it with `step()`/`schedule()`/`finish()`. */
  migrateSlot(slot: number, to: string, options: MigrateOptions = {}): SlotMigration {
    const from = this.state.owner[slot];
    if (!from || from === to) throw new Error(`slot ${slot} is not owned by another node than ${to}`);
    // One migration per slot at a time (redis-cli refuses a second): a second one, created before
    // the first started, would move keys from a node that no longer owns them, losing them.
    if (this.state.migrating.has(slot) || this.#migrations.some((m) => m.slot === slot && !m.done)) throw new Error(`slot ${slot} is already migrating`);
    const migration = new SlotMigration(this, slot, from, to, options.batchSize ?? 1);
    this.#migrations.push(migration);
    return migration;
  }

  /**
   * Promote the first replica of `primary`: it takes every slot (and migration role) of the old
   * primary. The old primary dies (`oldPrimary: "kill"`, the default) or becomes a replica of the
   * new one, its data replaced by a full sync (`"demote"`). Returns the new primary.
   */
  failover(primary: string, options: { oldPrimary?: "kill" | "demote" } = {}): SimRedisNode {
    const old = this.node(primary);
    const replica = old.replicas()[0];
    if (!replica) throw new Error(`${primary} has no replica to promote`);
    replica.replicaOf = null;
    for (const other of old.replicas()) other.replicaOf = replica.id;
    const { owner, migrating, importing } = this.state;
    for (let slot = 0; slot < SLOT_COUNT; slot++) if (owner[slot] === primary) owner[slot] = replica.id;
    for (const map of [migrating, importing]) for (const [slot, id] of map) if (id === primary) map.set(slot, replica.id);
    for (const m of this.#migrations) {
      if (m.from === primary) m.from = replica.id;
      if (m.to === primary) m.to = replica.id;
    }
    this.note(`failover ${primary} -> ${replica.id}`);
    if ((options.oldPrimary ?? "kill") === "kill") old.kill();
    else {
      old.replicaOf = replica.id;
      old.resync(replica);
    }
    this.topologyChanged();
    return replica;
  }

  /** Tell every live node the slot map changed (blocked clients and shard channels follow it). */
  topologyChanged(): void {
    for (const node of this.nodes) if (node.alive) node.topologyChanged();
  }

  kill(id: string): void {
    this.node(id).kill();
  }

  restart(id: string): Promise<void> {
    return this.node(id).start();
  }

  /**
   * The oracle: the key's current value in the cluster (at the owning primary, or at the
   * migration target when the owner no longer has it), or null.
   */
  valueOf(key: string | Uint8Array): Uint8Array | null {
    const bytes = typeof key === "string" ? new TextEncoder().encode(key) : key;
    const name = latin1(bytes);
    const slot = keySlot(bytes);
    const owner = this.state.owner[slot];
    if (!owner) return null;
    const here = this.node(owner).data.get(name);
    if (here) return here;
    const to = this.state.migrating.get(slot);
    return (to && this.node(to).data.get(name)) || null;
  }
}
