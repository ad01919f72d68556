/**
 * A simulated Redis Cluster node on the sim network, speaking RESP2 or, after `HELLO 3`, RESP3
 * (./resp3.ts). Small and honest: strings and lists (./keyspace.ts), transactions, one blocking
 * command (BLPOP, ./node-blocking.ts), WAIT, the one script slotgate runs (WAIT's touch) and
 * pub/sub with channels, patterns and shard channels (./node-pubsub.ts), under the redirection rules of the Redis Cluster specification
 * (./cluster-state.ts: CROSSSLOT, CLUSTERDOWN, MOVED, ASK and TRYAGAIN while a slot migrates).
 *
 * Transactions (./node-multi.ts) follow Redis 7: queued commands are checked as they come, and
 * EXEC is checked again for every queued key (a slot that moved since: `-MOVED`). A client blocked
 * on BLPOP is answered when a push reaches its key, when its timeout runs out (a nil array), when
 * its slot moves to another node (`-MOVED`), or when the node becomes a replica (`-UNBLOCKED ...`).
 * A PUBLISH reaches the subscribers of every live node of the cluster (the bus), an SPUBLISH those
 * of the slot's shard.
 *
 * WAIT: replication here is synchronous, so every live replica has acknowledged every write. A
 * primary answers the number of its live replicas at once when that is at least `numreplicas`,
 * else when the timeout runs out (0: never), counting them again then; a replica refuses WAIT, and
 * a WAIT still blocked when its node becomes a replica gets `-UNBLOCKED`, as Redis 7 does.
 *
 * The slot map is the shared `SimClusterState` (owned by `SimRedisCluster`): every node sees the
 * same topology at once, as after gossip has converged; the cluster calls `topologyChanged` when
 * it moves a slot. Writes a primary applies are copied synchronously to its replicas. Replies are
 * written synchronously from the `data` callback, one write per reply, so a client's replies come
 * back in request order.
 */
import type { Conn, ConnHandlers, Listener, Runtime } from "../../../src/runtime.ts";
import { RequestParser } from "../../../src/resp/request-parser.ts";
import { EMPTY_ARRAY, encodeArray, encodeBulk, encodeError, encodeInteger, encodeMap, EMPTY_BULK, OK, PONG } from "../../../src/resp/encode.ts";
import { keySlot } from "../../../src/backends/cluster/slot.ts";
import type { SimNetwork } from "../../../adapters/sim/network.ts";
import type { SimConn } from "../../../adapters/sim/connection.ts";
import { newClientState, type ClientState } from "./client-state.ts";
import { KEYED, blockTimeoutMs, fromLatin1, latin1, popFirst, runData, type Store, type Value } from "./keyspace.ts";
import { NodeBlocking } from "./node-blocking.ts";
import { NodePubSub, allowedWhenSubscribed, subscribed, type SubKind } from "./node-pubsub.ts";
import { resp3Nulls } from "./resp3.ts";
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
  SUBSCRIBE: -2, UNSUBSCRIBE: -1, PSUBSCRIBE: -2, PUNSUBSCRIBE: -1, PUBLISH: 3,
  HELLO: -1, WAIT: 3, EVAL: -3,
};
/** The subscription kind of each (un)subscribe command. */
const SUBSCRIPTIONS: Record<string, { kind: SubKind; unsubscribe: boolean }> = {
  SUBSCRIBE: { kind: "channel", unsubscribe: false },
  UNSUBSCRIBE: { kind: "channel", unsubscribe: true },
  PSUBSCRIBE: { kind: "pattern", unsubscribe: false },
  PUNSUBSCRIBE: { kind: "pattern", unsubscribe: true },
  SSUBSCRIBE: { kind: "shard", unsubscribe: false },
  SUNSUBSCRIBE: { kind: "shard", unsubscribe: true },
};
/** The only script a simulated node runs: slotgate's WAIT touch (src/proxy/own-conn/blocking.ts). */
const TOUCH_SCRIPT = "redis.call('SET', KEYS[1], '1') redis.call('DEL', KEYS[1]) return 1";
const WAIT_ON_REPLICA = encodeError(
  "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.",
);
const INTEGER_ARG = /^-?\d+$/;

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
  /** Connections accepted so far (HELLO's `id`). */
  #accepted = 0;
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
    const id = ++this.#accepted;
    const client: ClientState = newClientState((frame) => void conn.write(client.protocol === 3 ? resp3Nulls(frame) : frame));
    client.id = id;
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
    if (client.protocol === 2 && subscribed(client) && !allowedWhenSubscribed(name)) {
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
        if (client.protocol === 2 && subscribed(client)) return encodeArray([PONG_WORD, args.length > 1 ? encodeBulk(args[1]!) : EMPTY_BULK]);
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
      case "PSUBSCRIBE":
      case "PUNSUBSCRIBE": {
        const { kind, unsubscribe } = SUBSCRIPTIONS[name]!;
        return this.#pubsub[unsubscribe ? "unsubscribe" : "subscribe"](client, args.slice(1).map(latin1), kind);
      }
      case "PUBLISH":
        return encodeInteger(this.#publish(latin1(args[1]!), args[2]!));
      case "HELLO":
        return this.#hello(client, args);
      case "WAIT":
        return this.#wait(client, args, inExec);
      case "EVAL":
        return this.#eval(args, asking, client.readonly);
    }
    const shard = SHARD_PUBSUB[name];
    if (shard) {
      const channels = keysOf(name, args);
      if (channels.length > 0) {
        const denied = this.#route(channels, shard.write, asking, true);
        if (denied) return denied;
      }
      if (name === "SPUBLISH") return encodeInteger(this.#spublish(latin1(args[1]!), args[2]!));
      return this.#pubsub[name === "SSUBSCRIBE" ? "subscribe" : "unsubscribe"](client, channels.map(latin1), "shard");
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

  /** HELLO [protover [AUTH user pass] [SETNAME name]]: the server's description, in the protocol asked for. */
  #hello(client: ClientState, args: Uint8Array[]): Uint8Array {
    let protocol = client.protocol;
    if (args.length > 1) {
      const version = latin1(args[1]!);
      if (!INTEGER_ARG.test(version)) return encodeError("ERR Protocol version is not an integer or out of range");
      if (version !== "2" && version !== "3") return encodeError("NOPROTO unsupported protocol version");
      protocol = version === "3" ? 3 : 2;
    }
    for (let i = 2; i < args.length; i++) {
      const option = latin1(args[i]!).toUpperCase();
      if (option === "AUTH" && i + 2 < args.length) i += 2;
      else if (option === "SETNAME" && i + 1 < args.length) i += 1;
      else return encodeError(`ERR Syntax error in HELLO option '${latin1(args[i]!)}'`);
    }
    client.protocol = protocol;
    const fields = [
      encodeBulk("server"), encodeBulk("redis"),
      encodeBulk("version"), encodeBulk("7.2.0"),
      encodeBulk("proto"), encodeInteger(protocol),
      encodeBulk("id"), encodeInteger(client.id),
      encodeBulk("mode"), encodeBulk("cluster"),
      encodeBulk("role"), encodeBulk(this.replicaOf === null ? "master" : "replica"),
      encodeBulk("modules"), EMPTY_ARRAY,
    ];
    return protocol === 3 ? encodeMap(fields) : encodeArray(fields);
  }

  /** WAIT numreplicas timeout: see the header (replication is synchronous here). */
  #wait(client: ClientState, args: Uint8Array[], inExec: boolean): Uint8Array | null {
    if (this.replicaOf !== null) return WAIT_ON_REPLICA;
    const wanted = latin1(args[1]!);
    const timeout = latin1(args[2]!);
    if (!INTEGER_ARG.test(wanted) || !INTEGER_ARG.test(timeout)) return encodeError("ERR value is not an integer or out of range");
    if (Number(timeout) < 0) return encodeError("ERR timeout is negative");
    const acked = () => encodeInteger(this.replicas().filter((n) => n.alive).length);
    if (inExec || Number(wanted) <= 0 || this.replicas().filter((n) => n.alive).length >= Number(wanted)) return acked();
    this.#blocking.wait(client, Number(timeout), acked);
    return null;
  }

  /** EVAL of the one script a simulated node knows (WAIT's touch): its key checked like a write's. */
  #eval(args: Uint8Array[], asking: boolean, readonly: boolean): Uint8Array {
    const numkeys = latin1(args[2]!);
    if (!INTEGER_ARG.test(numkeys) || Number(numkeys) < 0) return encodeError("ERR Number of keys can't be negative");
    if (Number(numkeys) > args.length - 3) return encodeError("ERR Number of keys can't be greater than number of args");
    const keys = args.slice(3, 3 + Number(numkeys));
    if (keys.length > 0) {
      const denied = this.#route(keys, true, asking, readonly);
      if (denied) return denied;
    }
    if (latin1(args[1]!) !== TOUCH_SCRIPT || keys.length !== 1) return encodeError("ERR a simulated node runs no script but slotgate's WAIT touch");
    const key = latin1(keys[0]!);
    this.write(key, fromLatin1("1"));
    this.write(key, null);
    return encodeInteger(1);
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
    if (this.replicaOf !== null) this.#blocking.eachWait((client) => this.#blocking.unblock(client, UNBLOCKED));
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
