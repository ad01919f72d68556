/**
 * Decides where each command goes: by the routing table to a backend (longest key prefix wins,
 * optionally stripped), then to the shard of its keys; split across shards or backends for
 * MGET, MSET, DEL, UNLINK, EXISTS and TOUCH; or refused with the error Redis Cluster itself would
 * give (CROSSSLOT, wrong arity, unknown command). Commands slotgate cannot serve correctly yet
 * are refused with `-ERR unsupported command 'NAME'`, never sent to an arbitrary node.
 *
 * Blocking commands (and WAIT) are not dispatched on the shared connections: the client runs them
 * on a connection of its own (`RouteClient.block`). Transactions place each command with
 * `target`, which never splits.
 * PUBLISH and SPUBLISH route by channel name (unstripped) to the owner of its slot; PUBSUB
 * introspection is merged over primaries (./pubsub-info.ts); subscriptions are the session's
 * (./pubsub.ts).
 */
import { CommandTable, keyIndexes, type CommandInfo, type KeyIndexes } from "../../commands/keys.ts";
import { BLOCKING, MOVABLEKEYS, PUBSUB, READONLY, WRITE } from "../../commands/flags.ts";
import { commandName } from "../../resp/request-parser.ts";
import { encodeCommand } from "../../resp/encode.ts";
import { errorReply } from "../../resp/replies.ts";
import { UpstreamRequest } from "../../backend/request.ts";
import { SPLIT_COMMANDS, SplitCommand, type SplitClient, type SplitRouting } from "../multi/split.ts";
import { CROSSSLOT, differentClusters } from "../errors.ts";
import type { Route, RouteTable } from "./routes.ts";
import { Unavailable, type Backend } from "../../backend/contract.ts";
import { SCRIPT_CALLS, WholeCluster, planOf, type WholeClusterServices } from "../multi/whole-cluster.ts";
import { deniedReply, isDenied } from "./deny-list.ts";

/** Where one command goes: a backend, the shard of its keys (-1: keyless), its bytes to send. */
export interface Target {
  readonly backend: Backend;
  readonly shard: number;
  readonly frame: Uint8Array;
  readonly info: CommandInfo;
}
import { MERGED_PUBSUB, pubsubIntrospect } from "../multi/pubsub-info.ts";

/**
 * The client side of a routed command: a fan-out client (`expect` a reply before dispatching,
 * since one may come back at once; `reply` to answer now, in order) that can also block.
 */
export interface RouteClient extends SplitClient {
  /** Run a blocking command (or WAIT, `target.shard` -1) on a connection of the client's own. */
  block(target: Target): void;
  /** Where the client's last write went (for WAIT); set by the router. */
  lastWriteBackend: Backend | null;
  lastWriteShard: number;
}

/** Keyed commands slotgate does not serve: MIGRATE moves keys behind the slot map's back. */
const UNSUPPORTED = new Set(["MIGRATE"]);

/**
 * Keyless commands any primary of the catch-all may answer: the same everywhere (COMMAND, LOLWUT),
 * or about one clock the nodes share closely enough (TIME).
 */
const ANY_NODE = new Set(["COMMAND", "TIME", "LOLWUT"]);

/** `DEBUG PROTOCOL <type>` answers a sample of one RESP type, the same on every node; other DEBUG subcommands stay refused. */
function isDebugProtocol(name: string, args: Uint8Array[]): boolean {
  return name === "DEBUG" && args.length > 1 && decoder.decode(args[1]!).toUpperCase() === "PROTOCOL";
}

const decoder = new TextDecoder();
/** The lookup of a split part's command needs no arguments (none of them has subcommands). */
const NO_ARGS: readonly Uint8Array[] = [];

/** What the router needs besides the routing table. */
export interface RouterServices extends WholeClusterServices {
  /** The deny list in force (`denyCommands`, normalized), read once per command. */
  denied(): ReadonlySet<string>;
}

export class Router {
  readonly #wholeCluster: WholeCluster;

  /**
   * `routes` returns the table in force; it is read once per command. `commands` is the app's
   * command table, which learns from the upstreams (the built-in one alone by default).
   */
  constructor(
    readonly routes: () => RouteTable,
    readonly services: RouterServices,
    readonly commands: CommandTable = new CommandTable(),
  ) {
    this.#wholeCluster = new WholeCluster(services);
  }

  commandName(arg: Uint8Array): string {
    return commandName(arg);
  }

  route(client: RouteClient, name: string, args: Uint8Array[], frame: Uint8Array): void {
    const info = this.commands.lookup(name, args);
    if (!info) return client.reply(unknownCommand(args));
    if (isDenied(this.services.denied(), info)) return client.reply(deniedReply(info));
    if (!arityOk(info, args.length)) return client.reply(errorReply(`wrong number of arguments for '${info.name.toLowerCase()}' command`));
    const table = this.routes();
    if (ANY_NODE.has(name) || isDebugProtocol(name, args)) return this.#toAnyNode(client, table, frame);
    if (name === "PUBLISH" || name === "SPUBLISH") return this.#publish(client, table, args, frame);
    if (name === "PUBSUB") {
      // HELP and unknown subcommands: any node answers as Redis does.
      if (!MERGED_PUBSUB.has(info.name)) return this.#toAnyNode(client, table, frame);
      return pubsubIntrospect(client, table, info.name.slice("PUBSUB|".length), args, frame);
    }
    if (isBlocking(name, info, args)) return this.#block(client, table, name, info, args, frame);
    // Keyless commands about the whole dataset: SCAN, KEYS, FLUSHALL, SCRIPT, FUNCTION, INFO...
    if (planOf(info)) return this.#wholeCluster.route(client, table.datasetBackend(), info, args, frame);
    if (!supported(name, info)) return client.reply(errorReply(`unsupported command '${name}'`));
    const keys = keyIndexes(info, args);
    if (keys === null || keys.length === 0) {
      // EVAL/FCALL with no keys run on any primary; a numkeys slotgate cannot read is Redis's to refuse.
      if (SCRIPT_CALLS.has(name)) return this.#wholeCluster.routeKeyless(client, table.datasetBackend(), info, frame);
      // No keys found in a command that has them (a malformed or zero key count, a missing
      // keyword), or an unknown subcommand: Redis Cluster runs it on the node asked, which
      // answers it (with its own error), so any node may.
      if ((info.flags & MOVABLEKEYS) !== 0 || (info.subcommands !== null && args.length > 1)) return this.#toAnyNode(client, table, frame);
      return client.reply(errorReply(`unsupported command '${name}'`));
    }
    const target = this.#place(client, table, info, args, keys, frame, name);
    if (target === null) return;
    const { backend, shard } = target;
    const request = new UpstreamRequest(target.frame, shard, client, client.id);
    request.resp3 = client.protocol === 3;
    request.readOnly = (info.flags & READONLY) !== 0;
    if ((info.flags & WRITE) !== 0) {
      client.lastWriteBackend = backend;
      client.lastWriteShard = shard;
    }
    client.expect(request);
    backend.dispatch(request);
  }

  /**
   * Place a command without sending it, for a transaction: never split (keys in different slots
   * get CROSSSLOT); keyless commands get shard -1 on the default backend. Errors are answered to
   * the client and give null.
   */
  target(client: RouteClient, name: string, args: Uint8Array[], frame: Uint8Array): Target | null {
    const info = this.commands.lookup(name, args);
    if (!info) return client.reply(unknownCommand(args)), null;
    if (!arityOk(info, args.length)) return client.reply(errorReply(`wrong number of arguments for '${info.name.toLowerCase()}' command`)), null;
    const table = this.routes();
    if (isDenied(this.services.denied(), info)) return client.reply(deniedReply(info)), null;
    if ((info.flags & PUBSUB) !== 0 || UNSUPPORTED.has(name)) return client.reply(errorReply(`unsupported command '${name}' inside a transaction`)), null;
    const keys = keyIndexes(info, args);
    if (keys === null) return client.reply(errorReply(`unsupported command '${name}'`)), null;
    if (keys.length === 0) {
      const backend = table.anyBackend();
      if (backend instanceof Unavailable) return client.reply(backend.reply), null;
      return { backend, shard: -1, frame, info };
    }
    return this.#place(client, table, info, args, keys, frame, null);
  }

  /**
   * Where a command whose keys all route to one backend and one shard goes. Otherwise null: the
   * command named `split` (when given) is split if it splits, or the client gets the error.
   */
  #place(client: RouteClient, table: RouteTable, info: CommandInfo, args: Uint8Array[], keys: KeyIndexes, frame: Uint8Array, split: string | null): Target | null {
    const first = table.match(args[keys[0]!]!);
    if (!first) return client.reply(noRoute(args[keys[0]!]!)), null;
    const backend = first.backend;
    const shard = backend.shardOf(stripped(args[keys[0]!]!, first));
    let rewrite = first.strip > 0;
    for (let i = 1; i < keys.length; i++) {
      const key = args[keys[i]!]!;
      const route = table.match(key);
      if (!route) return client.reply(noRoute(key)), null;
      if (route.backend !== backend || backend.shardOf(stripped(key, route)) !== shard) {
        this.#split(client, table, split, args, route.backend !== backend ? [backend.name, route.backend.name] : null);
        return null;
      }
      if (route.strip > 0) rewrite = true;
    }
    return { backend, shard, frame: rewrite ? rewriteKeys(table, args, keys) : frame, info };
  }

  /** A blocking command, or WAIT (which goes where the client's last write went). */
  #block(client: RouteClient, table: RouteTable, name: string, info: CommandInfo, args: Uint8Array[], frame: Uint8Array): void {
    if (name === "WAIT") {
      const backend = client.lastWriteBackend ?? table.anyBackend();
      if (backend instanceof Unavailable) return client.reply(backend.reply);
      return client.block({ backend, shard: client.lastWriteBackend ? client.lastWriteShard : backend.anyShard(), frame, info });
    }
    const keys = keyIndexes(info, args);
    if (!keys || keys.length === 0) return client.reply(errorReply(`unsupported command '${name}'`));
    const target = this.#place(client, table, info, args, keys, frame, null);
    if (target) client.block(target);
  }

  /** Keys span shards (or backends): split the command if it splits, otherwise refuse it. */
  #split(client: RouteClient, table: RouteTable, name: string | null, args: Uint8Array[], backends: [string, string] | null): void {
    const spec = name === null ? undefined : SPLIT_COMMANDS.get(name);
    if (!spec) return client.reply(backends ? differentClusters(...backends) : CROSSSLOT);
    // MSET with a key and no value: Redis's arity error, as a single node would give it.
    if ((args.length - 1) % spec.stride !== 0) return client.reply(errorReply(`wrong number of arguments for '${name!.toLowerCase()}' command`));
    // Every key is routed on its own; a split part carries one key (or one key-value pair).
    // A part may go to a replica when the part command (GET of MGET, EXISTS) is read-only.
    const readOnly = ((this.commands.lookup(spec.partName, NO_ARGS)?.flags ?? 0) & READONLY) !== 0;
    const routing: SplitRouting = { only: table.only, match: (key) => table.match(key), noRoute: (key) => noRoute(key) };
    new SplitCommand(spec, client, args, routing, readOnly).start();
  }

  /**
   * To the owner of the channel's slot. Any node of a cluster would do (a message reaches every
   * node), but one node per channel keeps a client's messages to a channel in order.
   */
  #publish(client: RouteClient, table: RouteTable, args: Uint8Array[], frame: Uint8Array): void {
    const channel = args[1]!;
    const backend = table.match(channel)?.backend;
    if (!backend) return client.reply(noRoute(channel, "channel"));
    const request = new UpstreamRequest(frame, backend.shardOf(channel), client, client.id);
    request.resp3 = client.protocol === 3;
    client.expect(request);
    backend.dispatch(request);
  }

  #toAnyNode(client: RouteClient, table: RouteTable, frame: Uint8Array): void {
    const backend = table.anyBackend();
    if (backend instanceof Unavailable) return client.reply(backend.reply);
    const request = new UpstreamRequest(frame, backend.anyShard(), client, client.id);
    request.resp3 = client.protocol === 3;
    client.expect(request);
    backend.dispatch(request);
  }
}

/** A command that blocks: BLPOP and the like, XREAD/XREADGROUP with BLOCK, and WAIT. */
function isBlocking(name: string, info: CommandInfo, args: Uint8Array[]): boolean {
  if ((info.flags & BLOCKING) === 0) return name === "WAIT";
  // XREAD/XREADGROUP block only with BLOCK; without it they are plain reads.
  if (name === "XREAD" || name === "XREADGROUP") {
    return args.some((arg) => arg.length === 5 && decoder.decode(arg).toUpperCase() === "BLOCK");
  }
  return true;
}

function stripped(key: Uint8Array, route: Route): Uint8Array {
  return route.strip > 0 ? key.subarray(route.strip) : key;
}

/** Re-encode the command with each key's routed prefix removed. */
function rewriteKeys(table: RouteTable, args: Uint8Array[], keys: KeyIndexes): Uint8Array {
  const out = args.slice();
  for (let i = 0; i < keys.length; i++) {
    const index = keys[i]!;
    out[index] = stripped(args[index]!, table.match(args[index]!)!);
  }
  return encodeCommand(out);
}

function arityOk(info: CommandInfo, count: number): boolean {
  return info.arity >= 0 ? count === info.arity : count >= -info.arity;
}

function supported(name: string, info: CommandInfo): boolean {
  return !UNSUPPORTED.has(name) && (info.flags & PUBSUB) === 0;
}

function noRoute(key: Uint8Array, what = "key"): Uint8Array {
  return errorReply(`no route for ${what} '${decoder.decode(key.subarray(0, 128))}'`);
}

/** Redis's own wording: `unknown command 'foo', with args beginning with: 'a' 'b' `. */
function unknownCommand(args: Uint8Array[]): Uint8Array {
  const name = decoder.decode(args[0]!).slice(0, 128);
  const rest = args
    .slice(1)
    .map((a) => `'${decoder.decode(a).slice(0, 128)}' `)
    .join("");
  return errorReply(`unknown command '${name}', with args beginning with: ${rest}`);
}
