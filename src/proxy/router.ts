/**
 * Decides where each command goes: by the routing table to a backend (longest key prefix wins,
 * optionally stripped), then to the shard of its keys; split across shards or backends for
 * MGET, MSET, DEL, UNLINK, EXISTS and TOUCH; or refused with the error Redis Cluster itself would
 * give (CROSSSLOT, wrong arity, unknown command). Commands slotgate cannot serve correctly yet
 * are refused with `-ERR unsupported command 'NAME'`, never sent to an arbitrary node. PUBLISH and
 * SPUBLISH route by channel name (unstripped) to the owner of its slot; PUBSUB introspection is
 * merged over primaries (./pubsub-info.ts); subscriptions are the session's (./pubsub.ts).
 */
import { commandInfo, keyIndexes, type CommandInfo } from "../commands/keys.ts";
import { BLOCKING, PUBSUB, READONLY } from "../commands/table.ts";
import { commandName } from "../resp/request-parser.ts";
import { encodeCommand } from "../resp/encode.ts";
import { errorReply } from "../resp/replies.ts";
import { UpstreamRequest, type Pending, type ReplySink } from "./request.ts";
import { SPLIT_COMMANDS, SplitCommand, type SplitOwner } from "./split.ts";
import type { Route, RouteTable } from "./routes.ts";
import { MERGED_PUBSUB, pubsubIntrospect } from "./pubsub-info.ts";

/** The client side of a routed command. */
export interface RouteClient extends ReplySink, SplitOwner {
  readonly id: number;
  /** 3 after `HELLO 3`: its requests travel on RESP3 connections. */
  readonly protocol: 2 | 3;
  /** Append to the client's reply queue (before dispatching: a reply may come back at once). */
  expect(pending: Pending): void;
  /** Answer now, in order. */
  reply(frame: Uint8Array): void;
}

/** Keyed commands that need a client pinned to one connection or a blocking wait; later issues serve them. */
const UNSUPPORTED = new Set(["WATCH", "UNWATCH", "MULTI", "EXEC", "DISCARD", "MIGRATE"]);

/** Keyless commands that are the same on every node, so any primary of the catch-all may answer. */
const ANY_NODE = new Set(["COMMAND"]);

const CROSSSLOT = errorReply("Keys in request don't hash to the same slot", "CROSSSLOT");
const decoder = new TextDecoder();

export class Router {
  /** `routes` returns the table in force; it is read once per command. */
  constructor(readonly routes: () => RouteTable) {}

  commandName(arg: Uint8Array): string {
    return commandName(arg);
  }

  route(client: RouteClient, name: string, args: Uint8Array[], frame: Uint8Array): void {
    const info = commandInfo(name, args);
    if (!info) return client.reply(unknownCommand(args));
    if (!arityOk(info, args.length)) return client.reply(errorReply(`wrong number of arguments for '${info.name.toLowerCase()}' command`));
    const table = this.routes();
    if (ANY_NODE.has(name)) return this.#toAnyNode(client, table, frame);
    if (name === "PUBLISH" || name === "SPUBLISH") return this.#publish(client, table, args, frame);
    if (name === "PUBSUB") {
      // HELP and unknown subcommands: any node answers as Redis does.
      if (!MERGED_PUBSUB.has(info.name)) return this.#toAnyNode(client, table, frame);
      return pubsubIntrospect(client, table, info.name.slice("PUBSUB|".length), args, frame);
    }
    if (!supported(name, info, args)) return client.reply(errorReply(`unsupported command '${name}'`));
    const keys = keyIndexes(info, args);
    if (!keys || keys.length === 0) return client.reply(errorReply(`unsupported command '${name}'`));
    const first = table.match(args[keys[0]!]!);
    if (!first) return client.reply(noRoute(args[keys[0]!]!));
    const backend = first.backend;
    const shard = backend.shardOf(stripped(args[keys[0]!]!, first));
    let rewrite = first.strip > 0;
    for (let i = 1; i < keys.length; i++) {
      const key = args[keys[i]!]!;
      const route = table.match(key);
      if (!route) return client.reply(noRoute(key));
      if (route.backend !== backend || backend.shardOf(stripped(key, route)) !== shard) {
        return this.#split(client, table, name, args, route.backend !== backend ? `${first.backend.name}', '${route.backend.name}` : null);
      }
      if (route.strip > 0) rewrite = true;
    }
    const request = new UpstreamRequest(rewrite ? rewriteKeys(table, args, keys) : frame, shard, client, client.id);
    request.resp3 = client.protocol === 3;
    request.readOnly = (info.flags & READONLY) !== 0;
    client.expect(request);
    backend.dispatch(request);
  }

  /** Keys span shards (or backends): split the command if it splits, otherwise refuse it. */
  #split(client: RouteClient, table: RouteTable, name: string, args: Uint8Array[], backends: string | null): void {
    const spec = SPLIT_COMMANDS.get(name);
    if (!spec) {
      return client.reply(backends ? errorReply(`keys in request route to different clusters ('${backends}')`) : CROSSSLOT);
    }
    // Route every key on its own; a split part carries one key (or one key-value pair).
    const routed: Route[] = [];
    const parts: Uint8Array[] = args.slice();
    for (let at = 1; at < args.length; at += spec.stride) {
      const route = table.match(args[at]!);
      if (!route) return client.reply(noRoute(args[at]!));
      routed.push(route);
      parts[at] = stripped(args[at]!, route);
    }
    const { split, parts: requests } = SplitCommand.build(spec, parts, client, client.id);
    client.expect(split);
    for (let i = 0; i < requests.length; i++) {
      const request = requests[i]!;
      const backend = routed[i]!.backend;
      request.slot = backend.shardOf(parts[1 + i * spec.stride]!);
      request.resp3 = client.protocol === 3;
      backend.dispatch(request);
    }
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
    const backend = table.match(new Uint8Array(0))?.backend ?? [...table.backends()][0];
    if (!backend) return client.reply(errorReply("no cluster is configured"));
    const request = new UpstreamRequest(frame, backend.anyShard(), client, client.id);
    request.resp3 = client.protocol === 3;
    client.expect(request);
    backend.dispatch(request);
  }
}

function stripped(key: Uint8Array, route: Route): Uint8Array {
  return route.strip > 0 ? key.subarray(route.strip) : key;
}

/** Re-encode the command with each key's routed prefix removed. */
function rewriteKeys(table: RouteTable, args: Uint8Array[], keys: number[]): Uint8Array {
  const out = args.slice();
  for (const index of keys) out[index] = stripped(args[index]!, table.match(args[index]!)!);
  return encodeCommand(out);
}

function arityOk(info: CommandInfo, count: number): boolean {
  return info.arity >= 0 ? count === info.arity : count >= -info.arity;
}

function supported(name: string, info: CommandInfo, args: Uint8Array[]): boolean {
  if (UNSUPPORTED.has(name) || (info.flags & PUBSUB) !== 0) return false;
  if ((info.flags & BLOCKING) === 0) return true;
  // XREAD/XREADGROUP block only with BLOCK; without it they are plain reads.
  if (name === "XREAD" || name === "XREADGROUP") {
    return !args.some((arg) => arg.length === 5 && decoder.decode(arg).toUpperCase() === "BLOCK");
  }
  return false;
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
