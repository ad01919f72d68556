/**
 * A simulated Redis Cluster node speaking RESP2 on the sim network. Small and honest: string
 * registers only, and the redirection rules of the Redis Cluster specification
 * (https://redis.io/docs/reference/cluster-spec/):
 *
 * - a keyed command whose keys hash to different slots: `-CROSSSLOT ...`;
 * - a slot nobody owns: `-CLUSTERDOWN Hash slot not served`;
 * - a slot owned by another node: `-MOVED <slot> <host>:<port>` (a replica of the owner serves
 *   read-only commands after READONLY);
 * - a slot this node owns and is MIGRATING: served when every key is here, `-ASK <slot> <target>`
 *   when none is, `-TRYAGAIN ...` when only some are;
 * - a slot this node is IMPORTING: served only for the command right after ASKING (a multi-key
 *   command with some keys missing gets `-TRYAGAIN`), else MOVED to the owner.
 *
 * The slot map is the shared `SimClusterState` (owned by `SimRedisCluster`): every node sees the
 * same topology at once, as after gossip has converged. Writes a primary applies are copied
 * synchronously to its replicas. Replies are written synchronously from the `data` callback, one
 * write per reply, so a client's replies come back in request order.
 */
import type { Conn, ConnHandlers, Listener, Runtime } from "../../../src/runtime.ts";
import { RequestParser } from "../../../src/resp/request-parser.ts";
import { encodeArray, encodeBulk, encodeError, encodeInteger, NULL_BULK, OK, PONG } from "../../../src/resp/encode.ts";
import { keySlot } from "../../../src/backends/cluster/slot.ts";
import type { SimNetwork } from "../../../adapters/sim/network.ts";
import type { SimConn } from "../../../adapters/sim/connection.ts";

/** The topology every node of one simulated cluster shares. */
export interface SimClusterState {
  /** Primary node id owning each slot, or null (unserved). */
  readonly owner: (string | null)[];
  /** slot -> id of the node it is migrating to (set on the source side). */
  readonly migrating: Map<number, string>;
  /** slot -> id of the node it is importing from (set on the target side). */
  readonly importing: Map<number, string>;
  /** Every node by id (dead ones included). */
  readonly nodes: Map<string, SimRedisNode>;
}

export type Keyspace = Map<string, Uint8Array>;

const latin1 = (bytes: Uint8Array): string => {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return s;
};
const fromLatin1 = (s: string): Uint8Array => {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
};
const utf8 = new TextEncoder();

/** Key positions of the keyed commands this node knows; `write` marks commands that change data. */
const KEYED: Record<string, { keys: (argc: number) => number[]; write: boolean; arity: number }> = {
  GET: { keys: () => [1], write: false, arity: 2 },
  SET: { keys: () => [1], write: true, arity: -3 },
  INCR: { keys: () => [1], write: true, arity: 2 },
  DEL: { keys: (n) => range(1, n, 1), write: true, arity: -2 },
  UNLINK: { keys: (n) => range(1, n, 1), write: true, arity: -2 },
  EXISTS: { keys: (n) => range(1, n, 1), write: false, arity: -2 },
  TOUCH: { keys: (n) => range(1, n, 1), write: false, arity: -2 },
  MGET: { keys: (n) => range(1, n, 1), write: false, arity: -2 },
  MSET: { keys: (n) => range(1, n, 2), write: true, arity: -3 },
};

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i += step) out.push(i);
  return out;
}

export interface ClientState {
  asking: boolean;
  readonly: boolean;
}

export interface SimRedisNodeOptions {
  /** Unique node id (40 hex chars in real Redis; any string here). */
  id: string;
  host: string;
  port: number;
  /** The runtime of the node's host (`sim.forHost(host)`). */
  runtime: Runtime;
  /** The sim network, used to reset connections when the node dies. */
  network: SimNetwork;
  state: SimClusterState;
  /** Optional trace sink (`sim.note`). */
  log?: (event: string) => void;
}

export class SimRedisNode {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /** Id of the primary this node replicates, or null when it is a primary. */
  replicaOf: string | null = null;
  /** The node's data (key bytes as latin1 strings). */
  readonly data: Keyspace = new Map();
  /** Commands served (by name), for assertions. */
  readonly served = new Map<string, number>();
  readonly #runtime: Runtime;
  readonly #network: SimNetwork;
  readonly #state: SimClusterState;
  readonly #log: (event: string) => void;
  #listener: Listener | null = null;
  readonly #conns = new Set<Conn>();

  constructor(options: SimRedisNodeOptions) {
    this.id = options.id;
    this.host = options.host;
    this.port = options.port;
    this.#runtime = options.runtime;
    this.#network = options.network;
    this.#state = options.state;
    this.#log = options.log ?? (() => {});
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  get alive(): boolean {
    return this.#listener !== null;
  }

  /** Start listening (again, after `kill`). */
  async start(): Promise<void> {
    if (this.#listener) return;
    this.#listener = await this.#runtime.listen({ host: this.host, port: this.port }, (conn) => this.#accept(conn));
    this.#log(`redis ${this.id} up at ${this.address}`);
  }

  /** Die: stop listening (connects are refused) and reset every open connection. Data is kept. */
  kill(): void {
    if (!this.#listener) return;
    void this.#listener.close();
    this.#listener = null;
    for (const conn of this.#conns) this.#network.reset(conn as SimConn, `redis ${this.id} died`);
    this.#conns.clear();
    this.#log(`redis ${this.id} killed`);
  }

  /** Open client connections. */
  get connections(): number {
    return this.#conns.size;
  }

  #accept(conn: Conn): ConnHandlers {
    this.#conns.add(conn);
    const client: ClientState = { asking: false, readonly: false };
    const parser = new RequestParser((args) => conn.write(this.execute(client, args)));
    return {
      data: (chunk) => {
        try {
          parser.push(chunk);
        } catch (error) {
          conn.write(encodeError(`ERR Protocol error: ${(error as Error).message}`));
          conn.end();
        }
      },
      drain: () => {},
      close: () => void this.#conns.delete(conn),
    };
  }

  /** Run one command for a client and return its reply bytes. Exposed for direct tests. */
  execute(client: ClientState, args: Uint8Array[]): Uint8Array {
    const name = latin1(args[0]!).toUpperCase();
    const asking = client.asking;
    client.asking = false;
    this.served.set(name, (this.served.get(name) ?? 0) + 1);
    switch (name) {
      case "PING":
        return args.length > 1 ? encodeBulk(args[1]!) : PONG;
      case "ECHO":
        return args.length === 2 ? encodeBulk(args[1]!) : arityError(name);
      case "ASKING":
        client.asking = true;
        return OK;
      case "READONLY":
        client.readonly = true;
        return OK;
      case "READWRITE":
        client.readonly = false;
        return OK;
      case "CLUSTER":
        return this.#cluster(args);
    }
    const spec = KEYED[name];
    if (!spec) {
      const rest = args.slice(1).map((a) => `'${latin1(a)}'`).join(" ");
      return encodeError(`ERR unknown command '${latin1(args[0]!)}', with args beginning with: ${rest}${rest ? " " : ""}`);
    }
    if (spec.arity > 0 ? args.length !== spec.arity : args.length < -spec.arity) return arityError(name);
    if (name === "MSET" && args.length % 2 === 0) return arityError(name);
    const keys = spec.keys(args.length).map((i) => args[i]!);
    const denied = this.#route(keys, spec.write, asking, client.readonly);
    if (denied) return denied;
    return this.#run(name, args, keys);
  }

  /** The redirection rules; null when this node serves the command. */
  #route(keys: Uint8Array[], write: boolean, asking: boolean, readonly: boolean): Uint8Array | null {
    const slot = keySlot(keys[0]!);
    for (const key of keys) if (keySlot(key) !== slot) return encodeError("CROSSSLOT Keys in request don't hash to the same slot");
    const owner = this.#state.owner[slot] ?? null;
    const present = keys.filter((k) => this.data.has(latin1(k))).length;
    if (this.replicaOf === null && owner === this.id) {
      const to = this.#state.migrating.get(slot);
      if (to === undefined || present === keys.length) return null;
      if (present > 0) return encodeError("TRYAGAIN Multiple keys request during rehashing of slot");
      return encodeError(`ASK ${slot} ${this.#state.nodes.get(to)!.address}`);
    }
    if (this.replicaOf === null && asking && this.#state.importing.get(slot) !== undefined) {
      if (keys.length > 1 && present < keys.length) return encodeError("TRYAGAIN Multiple keys request during rehashing of slot");
      return null;
    }
    if (owner === null) return encodeError("CLUSTERDOWN Hash slot not served");
    if (this.replicaOf === owner && readonly && !write) return null;
    return encodeError(`MOVED ${slot} ${this.#state.nodes.get(owner)!.address}`);
  }

  #run(name: string, args: Uint8Array[], keys: Uint8Array[]): Uint8Array {
    const d = this.data;
    switch (name) {
      case "GET": {
        const v = d.get(latin1(keys[0]!));
        return v ? encodeBulk(v) : NULL_BULK;
      }
      case "SET":
        if (args.length !== 3) return encodeError("ERR syntax error");
        this.write(latin1(keys[0]!), args[2]!.slice());
        return OK;
      case "INCR": {
        const key = latin1(keys[0]!);
        const old = d.get(key);
        const text = old ? latin1(old) : "0";
        if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(Number(text))) return encodeError("ERR value is not an integer or out of range");
        const next = Number(text) + 1;
        this.write(key, utf8.encode(String(next)));
        return encodeInteger(next);
      }
      case "DEL":
      case "UNLINK": {
        let n = 0;
        for (const k of keys) if (this.write(latin1(k), null)) n++;
        return encodeInteger(n);
      }
      case "EXISTS":
      case "TOUCH":
        return encodeInteger(keys.filter((k) => d.has(latin1(k))).length);
      case "MGET":
        return encodeArray(keys.map((k) => {
          const v = d.get(latin1(k));
          return v ? encodeBulk(v) : NULL_BULK;
        }));
      case "MSET":
        for (let i = 1; i < args.length; i += 2) this.write(latin1(args[i]!), args[i + 1]!.slice());
        return OK;
    }
    return encodeError(`ERR unknown command '${name}'`);
  }

  /** Set (or delete, with null) a key here and on every replica; true when the key existed. */
  write(key: string, value: Uint8Array | null): boolean {
    const existed = this.data.has(key);
    for (const node of [this, ...this.replicas()]) {
      if (value === null) node.data.delete(key);
      else node.data.set(key, value);
    }
    return existed;
  }

  /** Nodes replicating this one. */
  replicas(): SimRedisNode[] {
    return [...this.#state.nodes.values()].filter((n) => n.replicaOf === this.id);
  }

  #cluster(args: Uint8Array[]): Uint8Array {
    const sub = args[1] ? latin1(args[1]).toUpperCase() : "";
    if (sub === "KEYSLOT" && args.length === 3) return encodeInteger(keySlot(args[2]!));
    if (sub === "SLOTS" && args.length === 2) return clusterSlots(this.#state);
    if (sub === "MYID" && args.length === 2) return encodeBulk(this.id);
    return encodeError(`ERR unknown subcommand '${args[1] ? latin1(args[1]) : ""}'. Try CLUSTER HELP.`);
  }
}

function arityError(name: string): Uint8Array {
  return encodeError(`ERR wrong number of arguments for '${name.toLowerCase()}' command`);
}

/** CLUSTER SLOTS: contiguous ranges per owner, each `[start, end, [host, port, id], ...replicas]`. */
export function clusterSlots(state: SimClusterState): Uint8Array {
  const entries: Uint8Array[] = [];
  let start = 0;
  for (let slot = 1; slot <= state.owner.length; slot++) {
    const owner = state.owner[start] ?? null;
    if (slot < state.owner.length && (state.owner[slot] ?? null) === owner) continue;
    if (owner !== null) {
      const primary = state.nodes.get(owner)!;
      const nodes = [primary, ...primary.replicas()].map((n) => encodeArray([encodeBulk(n.host), encodeInteger(n.port), encodeBulk(n.id)]));
      entries.push(encodeArray([encodeInteger(start), encodeInteger(slot - 1), ...nodes]));
    }
    start = slot;
  }
  return encodeArray(entries);
}

export { latin1, fromLatin1 };
