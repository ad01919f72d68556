/**
 * Decides where each command goes: to the primary of its keys' slot, split across slots (MGET,
 * MSET, DEL, UNLINK, EXISTS, TOUCH), or refused with the error Redis Cluster itself would give
 * (CROSSSLOT, wrong arity, unknown command). Commands slotgate cannot serve correctly yet are
 * refused with `-ERR unsupported command 'NAME'`, never sent to an arbitrary node.
 */
import type { Cluster } from "../cluster/cluster.ts";
import { keySlot } from "../cluster/slot.ts";
import { commandInfo, keyIndexes, type CommandInfo } from "../commands/keys.ts";
import { BLOCKING, PUBSUB } from "../commands/table.ts";
import { commandName } from "../resp/request-parser.ts";
import { errorReply } from "../resp/replies.ts";
import { UpstreamRequest, type Pending, type ReplySink } from "./request.ts";
import { SPLIT_COMMANDS, SplitCommand, type SplitOwner } from "./split.ts";

/** The client side of a routed command. */
export interface RouteClient extends ReplySink, SplitOwner {
  readonly id: number;
  /** Append to the client's reply queue (before dispatching: a reply may come back at once). */
  expect(pending: Pending): void;
  /** Answer now, in order. */
  reply(frame: Uint8Array): void;
}

/** Keyed commands that need a client pinned to one connection or a blocking wait; later issues serve them. */
const UNSUPPORTED = new Set(["WATCH", "UNWATCH", "MULTI", "EXEC", "DISCARD", "MIGRATE", "SSUBSCRIBE", "SUNSUBSCRIBE", "SPUBLISH"]);

/** Keyless commands that are the same on every node, so any primary may answer. */
const ANY_NODE = new Set(["COMMAND"]);

const CROSSSLOT = errorReply("Keys in request don't hash to the same slot", "CROSSSLOT");
const decoder = new TextDecoder();

export class Router {
  constructor(readonly cluster: () => Cluster) {}

  commandName(arg: Uint8Array): string {
    return commandName(arg);
  }

  route(client: RouteClient, name: string, args: Uint8Array[], frame: Uint8Array): void {
    const info = commandInfo(name, args);
    if (!info) return client.reply(unknownCommand(args));
    if (!arityOk(info, args.length)) return client.reply(errorReply(`wrong number of arguments for '${info.name.toLowerCase()}' command`));
    if (ANY_NODE.has(name)) return this.#toAnyNode(client, frame);
    if (!supported(name, info, args)) return client.reply(errorReply(`unsupported command '${name}'`));
    const keys = keyIndexes(info, args);
    if (!keys || keys.length === 0) return client.reply(errorReply(`unsupported command '${name}'`));
    const slot = keySlot(args[keys[0]!]!);
    for (let i = 1; i < keys.length; i++) {
      if (keySlot(args[keys[i]!]!) !== slot) return this.#split(client, name, args);
    }
    const request = new UpstreamRequest(frame, slot, client, client.id);
    client.expect(request);
    this.cluster().dispatch(request);
  }

  #split(client: RouteClient, name: string, args: Uint8Array[]): void {
    const spec = SPLIT_COMMANDS.get(name);
    if (!spec) return client.reply(CROSSSLOT);
    const { split, parts } = SplitCommand.build(spec, args, client, client.id);
    client.expect(split);
    const cluster = this.cluster();
    for (const part of parts) cluster.dispatch(part);
  }

  #toAnyNode(client: RouteClient, frame: Uint8Array): void {
    const cluster = this.cluster();
    const request = new UpstreamRequest(frame, cluster.anySlot(), client, client.id);
    client.expect(request);
    cluster.dispatch(request);
  }
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

/** Redis's own wording: `unknown command 'foo', with args beginning with: 'a' 'b' `. */
function unknownCommand(args: Uint8Array[]): Uint8Array {
  const name = decoder.decode(args[0]!).slice(0, 128);
  const rest = args
    .slice(1)
    .map((a) => `'${decoder.decode(a).slice(0, 128)}' `)
    .join("");
  return errorReply(`unknown command '${name}', with args beginning with: ${rest}`);
}
