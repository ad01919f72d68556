/**
 * A simulated Redis Cluster node speaking RESP2 on the sim network. Small and honest: strings and
 * lists (./keyspace.ts), transactions, one blocking command (BLPOP, ./node-blocking.ts) and
 * pub/sub (./node-pubsub.ts), under the redirection rules of the Redis Cluster specification
 * (./cluster-state.ts: CROSSSLOT, CLUSTERDOWN, MOVED, ASK and TRYAGAIN while a slot migrates).
 *
 * Transactions (./node-multi.ts) follow Redis 7: queued commands are checked as they come, and
 * EXEC is checked again for every queued key (a slot that moved since: `-MOVED`). A client blocked
 * on BLPOP is answered when a push reaches its key, when its timeout runs out (a nil array), when
 * its slot moves to another node (`-MOVED`), or when the node becomes a replica (`-UNBLOCKED ...`).
 * A PUBLISH reaches the subscribers of every live node of the cluster (the bus), an SPUBLISH those
 * of the slot's shard.
 *
 * The slot map is the shared `SimClusterState` (owned by `SimRedisCluster`): every node sees the
 * same topology at once, as after gossip has converged; the cluster calls `topologyChanged` when
 * it moves a slot. Writes a primary applies are copied synchronously to its replicas. Replies are
 * written synchronously from the `data` callback, one write per reply, so a client's replies come
 * back in request order.
 */
import type { Conn, ConnHandlers, Listener, Runtime } from "../../../src/runtime.ts";
import { RequestParser } from "../../../src/resp/request-parser.ts";
import { encodeArray, encodeBulk, encodeError, encodeInteger, EMPTY_BULK, OK, PONG } from "../../../src/resp/encode.ts";
import { keySlot } from "../../../src/backends/cluster/slot.ts";
import type { SimNetwork } from "../../../adapters/sim/network.ts";
import type { SimConn } from "../../../adapters/sim/connection.ts";
import { newClientState, type ClientState } from "./client-state.ts";
import { KEYED, blockTimeoutMs, fromLatin1, latin1, popFirst, runData, type Store, type Value } from "./keyspace.ts";
import { NodeBlocking } from "./node-blocking.ts";
import { NodePubSub, allowedWhenSubscribed, subscribed } from "./node-pubsub.ts";
import { NodeMulti } from "./node-multi.ts";
import { clusterSlots, redirection, type ClusterState } from "./cluster-state.ts";

export type { ClientState } from "./client-state.ts";
/** The topology every node of one simulated cluster shares. */
export type SimClusterState = ClusterState<SimRedisNode>;
export type { Value } from "./keyspace.ts";

const UNBLOCKED = encodeError("UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)");
const PONG_WORD = encodeBulk("pong");
/** Pub/sub commands whose arguments are shard channels, checked like keys. */
const SHARD_PUBSUB: Record<string, { arity: number; write: boolean }> = {
  SSUBSCRIBE: { arity: -2, write: false },
  SUNSUBSCRIBE: { arity: -1, write: false },
  SPUBLISH: { arity: 3, write: false },
};
/** Known keyless commands and their arity (unknown ones are answered as Redis answers them). */
const KEYLESS: Record<string, number> = {
  PING: -1, ECHO: 2, ASKING: 1, READONLY: 1, READWRITE: 1, CLUSTER: -2,
  MULTI: 1, EXEC: 1, DISCARD: 1, WATCH: -2, UNWATCH: 1,
  SUBSCRIBE: -2, UNSUBSCRIBE: -1, PUBLISH: 3,
};

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

export class SimRedisNode implements Store {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /** Id of the primary this node replicates, or null when it is a primary. */
  replicaOf: string | null = null;
  /** The node's strings (key bytes as latin1 strings). */
  readonly data = new Map<string, Uint8Array>();
  /** The node's lists (a key is in `data` or here, never both). */
  readonly lists = new Map<string, Uint8Array[]>();
  /** Commands served (by name), for assertions. */
  readonly served = new Map<string, number>();
  readonly #runtime: Runtime;
  readonly #network: SimNetwork;
  readonly #state: SimClusterState;
  readonly #log: (event: string) => void;
  #listener: Listener | null = null;
  readonly #conns = new Map<Conn, ClientState>();
  readonly #multi = new NodeMulti({
    route: (keys, write, asking, readonly) => this.#route(keys, write, asking, readonly),
    run: (client, name, args, asking) => this.#dispatch(client, name, args, asking, true)!,
  });
  readonly #pubsub = new NodePubSub();
  readonly #blocking: NodeBlocking;

  constructor(options: SimRedisNodeOptions) {
    this.id = options.id;
    this.host = options.host;
    this.port = options.port;
    this.#runtime = options.runtime;
    this.#network = options.network;
    this.#state = options.state;
    this.#log = options.log ?? (() => {});
    this.#blocking = new NodeBlocking(options.runtime, (client) => this.#drainBacklog(client));
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  get alive(): boolean {
    return this.#listener !== null;
  }

  /** Clients blocked on this node now. */
  get blockedClients(): number {
    return this.#blocking.count;
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
    for (const [conn, client] of this.#conns) {
      this.#forget(client);
      this.#network.reset(conn as SimConn, `redis ${this.id} died`);
    }
    this.#conns.clear();
    this.#log(`redis ${this.id} killed`);
  }

  /** Open client connections. */
  get connections(): number {
    return this.#conns.size;
  }

  #accept(conn: Conn): ConnHandlers {
    const client = newClientState((frame) => void conn.write(frame));
    this.#conns.set(conn, client);
    const parser = new RequestParser((args) => this.#onCommand(client, args));
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
      close: () => {
        this.#conns.delete(conn);
        this.#forget(client);
      },
    };
  }

  /** A client's connection is gone: Redis forgets its transaction, its blocked command, its subscriptions. */
  #forget(client: ClientState): void {
    client.gone = true;
    this.#multi.unwatch(client);
    this.#blocking.forget(client);
    this.#pubsub.forget(client);
  }

  #onCommand(client: ClientState, args: Uint8Array[]): void {
    if (client.gone) return;
    if (client.blocked || client.backlog.length > 0) client.backlog.push(args);
    else this.#serve(client, args);
  }

  #serve(client: ClientState, args: Uint8Array[]): void {
    const reply = this.execute(client, args);
    if (reply !== null) client.send(reply);
    // Clients blocked on keys this command pushed to are served after its reply.
    this.#blocking.serveReady(this);
  }

  #drainBacklog(client: ClientState): void {
    while (!client.blocked && !client.gone && client.backlog.length > 0) this.#serve(client, client.backlog.shift()!);
  }

  /** Run one command for a client; its reply bytes, or null when it blocked (answered later). */
  execute(client: ClientState, args: Uint8Array[]): Uint8Array | null {
    const name = latin1(args[0]!).toUpperCase();
    this.served.set(name, (this.served.get(name) ?? 0) + 1);
    const reply = this.#execute(client, name, args, client.asking);
    // ASKING covers the next command only, or a whole MULTI ... EXEC.
    if (client.multi === null && name !== "ASKING") client.asking = false;
    return reply;
  }

  #execute(client: ClientState, name: string, args: Uint8Array[], asking: boolean): Uint8Array | null {
    const known = KEYED[name]?.arity ?? SHARD_PUBSUB[name]?.arity ?? KEYLESS[name];
    if (known === undefined) return this.#multi.refuse(client, unknownCommand(args));
    if (known > 0 ? args.length !== known : args.length < -known) return this.#multi.refuse(client, arityError(name));
    if (subscribed(client) && !allowedWhenSubscribed(name)) {
      return encodeError(`ERR Can't execute '${name.toLowerCase()}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`);
    }
    switch (name) {
      case "MULTI":
        return this.#multi.multi(client);
      case "EXEC":
        return this.#multi.exec(client, asking);
      case "DISCARD":
        if (!client.multi) return encodeError("ERR DISCARD without MULTI");
        this.#multi.discard(client);
        return OK;
      case "WATCH":
        return this.#multi.watch(client, args.slice(1), asking);
    }
    if (client.multi) return this.#multi.queue(client, name, args, keysOf(name, args), (KEYED[name] ?? SHARD_PUBSUB[name])?.write ?? false, asking);
    return this.#dispatch(client, name, args, asking, false);
  }

  /** Every command but the transaction's own; `inExec`: run from EXEC, so BLPOP does not block. */
  #dispatch(client: ClientState, name: string, args: Uint8Array[], asking: boolean, inExec: boolean): Uint8Array | null {
    switch (name) {
      case "PING":
        if (subscribed(client)) return encodeArray([PONG_WORD, args.length > 1 ? encodeBulk(args[1]!) : EMPTY_BULK]);
        return args.length > 1 ? encodeBulk(args[1]!) : PONG;
      case "ECHO":
        return encodeBulk(args[1]!);
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
      case "UNWATCH":
        this.#multi.unwatch(client);
        return OK;
      case "SUBSCRIBE":
      case "UNSUBSCRIBE":
        return this.#pubsub[name === "SUBSCRIBE" ? "subscribe" : "unsubscribe"](client, args.slice(1).map(latin1), false);
      case "PUBLISH":
        return encodeInteger(this.#publish(latin1(args[1]!), args[2]!));
    }
    const shard = SHARD_PUBSUB[name];
    if (shard) {
      const channels = keysOf(name, args);
      if (channels.length > 0) {
        const denied = this.#route(channels, shard.write, asking, true);
        if (denied) return denied;
      }
      if (name === "SPUBLISH") return encodeInteger(this.#spublish(latin1(args[1]!), args[2]!));
      return this.#pubsub[name === "SSUBSCRIBE" ? "subscribe" : "unsubscribe"](client, channels.map(latin1), true);
    }
    const spec = KEYED[name]!;
    if (name === "MSET" && args.length % 2 === 0) return arityError(name);
    const keys = keysOf(name, args);
    const denied = this.#route(keys, spec.write, asking, client.readonly);
    if (denied) return denied;
    if (name === "BLPOP" && !inExec) return this.#blpop(client, args, keys);
    return runData(this, name, args, keys);
  }

  #blpop(client: ClientState, args: Uint8Array[], keys: Uint8Array[]): Uint8Array | null {
    const timeout = blockTimeoutMs(args[args.length - 1]!);
    if (timeout instanceof Uint8Array) return timeout;
    const popped = popFirst(this, keys);
    if (popped) return popped;
    this.#blocking.block(client, keys, timeout);
    return null;
  }

  // --- pub/sub --------------------------------------------------------------------------------

  /** PUBLISH: every live node of the cluster delivers (the bus); the count is this node's. */
  #publish(channel: string, message: Uint8Array): number {
    let here = 0;
    for (const node of this.#state.nodes.values()) {
      if (!node.alive) continue;
      const n = node.#pubsub.publish(channel, message, false);
      if (node === this) here = n;
    }
    return here;
  }

  /** SPUBLISH: the nodes of the slot's shard deliver; the count is this node's. */
  #spublish(channel: string, message: Uint8Array): number {
    const primary = this.replicaOf === null ? this : this.#state.nodes.get(this.replicaOf)!;
    let here = 0;
    for (const node of [primary, ...primary.replicas()]) {
      if (!node.alive) continue;
      const n = node.#pubsub.publish(channel, message, true);
      if (node === this) here = n;
    }
    return here;
  }

  // --- topology -------------------------------------------------------------------------------

  /**
   * The slot map changed: a blocked client whose slot this node no longer serves is redirected
   * (`-UNBLOCKED` if the node became a replica), and shard channels of slots it lost are dropped.
   */
  topologyChanged(): void {
    this.#blocking.each((client, keys) => {
      if (this.replicaOf !== null) return this.#blocking.unblock(client, UNBLOCKED);
      const slot = keySlot(keys[0]!);
      const owner = this.#state.owner[slot] ?? null;
      if (owner === this.id || this.#state.importing.has(slot)) return;
      this.#blocking.unblock(client, owner === null ? encodeError("CLUSTERDOWN Hash slot not served") : encodeError(`MOVED ${slot} ${this.#state.nodes.get(owner)!.address}`));
    });
    this.#pubsub.dropShardChannels((channel) => {
      const owner = this.#state.owner[keySlot(fromLatin1(channel))] ?? null;
      return owner !== null && (owner === this.id || owner === this.replicaOf);
    });
  }

  /** The redirection rules for this node; null when it serves the command. */
  #route(keys: Uint8Array[], write: boolean, asking: boolean, readonly: boolean): Uint8Array | null {
    return redirection(this.#state, this, keys, write, asking, readonly);
  }

  // --- data -----------------------------------------------------------------------------------

  /** Set (or delete, with null) a key here and on every replica; true when the key existed here. */
  write(key: string, value: Value | null): boolean {
    const existed = this.data.has(key) || this.lists.has(key);
    for (const node of [this, ...this.replicas()]) node.#set(key, value);
    return existed;
  }

  #set(key: string, value: Value | null): void {
    this.data.delete(key);
    this.lists.delete(key);
    if (value instanceof Uint8Array) this.data.set(key, value);
    else if (value !== null && value.length > 0) {
      this.lists.set(key, value.slice());
      this.#blocking.signal(key);
    }
    this.#multi.touch(key);
  }

  /** Every key of `slot` (sorted), strings and lists. */
  keysIn(slot: number): string[] {
    return [...this.data.keys(), ...this.lists.keys()].filter((k) => keySlot(fromLatin1(k)) === slot).sort();
  }

  /** A key's value (a copy of a list), or null. */
  valueAt(key: string): Value | null {
    return this.data.get(key) ?? this.lists.get(key)?.slice() ?? null;
  }

  /** Replace the whole dataset with `from`'s (a replica's full sync): every watched key is touched. */
  resync(from: SimRedisNode): void {
    const touched = new Set([...this.data.keys(), ...this.lists.keys(), ...from.data.keys(), ...from.lists.keys(), ...this.#multi.watchedKeys()]);
    this.data.clear();
    this.lists.clear();
    for (const [k, v] of from.data) this.data.set(k, v);
    for (const [k, v] of from.lists) this.lists.set(k, v.slice());
    for (const key of touched) this.#multi.touch(key);
  }

  /** Serve clients blocked on keys written outside a command (a migration step). */
  serveBlocked(): void {
    this.#blocking.serveReady(this);
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

/** The keys a command is checked by: its keys, or its shard channels (none for other commands). */
function keysOf(name: string, args: Uint8Array[]): Uint8Array[] {
  const spec = KEYED[name];
  if (spec) return spec.keys(args.length).map((i) => args[i]!);
  if (name === "SPUBLISH") return [args[1]!];
  return SHARD_PUBSUB[name] ? args.slice(1) : [];
}

function arityError(name: string): Uint8Array {
  return encodeError(`ERR wrong number of arguments for '${name.toLowerCase()}' command`);
}

function unknownCommand(args: Uint8Array[]): Uint8Array {
  const rest = args.slice(1).map((a) => `'${latin1(a)}'`).join(" ");
  return encodeError(`ERR unknown command '${latin1(args[0]!)}', with args beginning with: ${rest}${rest ? " " : ""}`);
}

export { latin1, fromLatin1 };
