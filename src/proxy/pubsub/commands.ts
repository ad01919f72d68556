/**
 * Pub/sub commands for one client: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs, the
 * RESP2 subscribed context (only those, PING, QUIT and RESET; PING answers `pong` as an array),
 * and RESET. A channel or pattern routes like a key, by its own name (never stripped of a route's
 * prefix), to a backend. In a Redis Cluster a message reaches every node, so the client's channels
 * and patterns of one backend share one subscriber connection to any of its primaries; shard
 * channels live with their slot, so they get one connection per primary that owns some of them.
 * On a standalone pool a channel lives on the server its name hashes to, and patterns are refused.
 * The subscriptions themselves are ./subscriptions.ts's.
 */
import type { Scope } from "../../scope/scope.ts";
import type { Backend } from "../../backend/contract.ts";
import type { RouteTable } from "../routing/routes.ts";
import { checkArity, commandInfo } from "../../commands/keys.ts";
import { EMPTY_BULK, encodeArray, encodeBulk, encodeSimpleString } from "../../resp/encode.ts";
import { errorReply } from "../../resp/replies.ts";
import { Kind, UNSUBSCRIBE_WORDS } from "./link.ts";
import { CROSSSLOT, differentClusters } from "../errors.ts";
import { PubSub, confirmation, join, type PubSubClient, type PubSubHost } from "./subscriptions.ts";

const COMMANDS: Record<string, { kind: Kind; unsubscribe: boolean }> = {
  SUBSCRIBE: { kind: Kind.Channel, unsubscribe: false },
  PSUBSCRIBE: { kind: Kind.Pattern, unsubscribe: false },
  SSUBSCRIBE: { kind: Kind.Shard, unsubscribe: false },
  UNSUBSCRIBE: { kind: Kind.Channel, unsubscribe: true },
  PUNSUBSCRIBE: { kind: Kind.Pattern, unsubscribe: true },
  SUNSUBSCRIBE: { kind: Kind.Shard, unsubscribe: true },
};

const RESET_REPLY = encodeSimpleString("RESET");
const PONG_WORD = encodeBulk("pong");
const decoder = new TextDecoder();

/**
 * Run `name` if pub/sub answers it: a (un)subscribe, RESET, or, for a RESP2 client in subscribed
 * mode, PING and the refusal of anything else. False: the session runs it as usual.
 */
export function pubsubCommand(client: PubSubClient, scope: Scope, host: PubSubHost, name: string, args: Uint8Array[]): boolean {
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name]! : null;
  if (command) {
    subscription(client, scope, host, name, command.kind, command.unsubscribe, args);
    return true;
  }
  if (name === "RESET" && args.length === 1) {
    // Redis also discards a transaction, stops tracking and re-authenticates the default user;
    // slotgate has none of these per client yet, and SELECT is always 0.
    client.pubsub?.close();
    client.clientName = null;
    client.protocol = 2;
    client.reply(RESET_REPLY);
    return true;
  }
  if (name === "QUIT") {
    // No message is wanted after QUIT: close the subscriber connections now, not when the
    // client's socket is finally closed (which may wait for the peer).
    client.pubsub?.close();
    return false;
  }
  if (client.pubsub === null || client.protocol !== 2) return false;
  if (name === "PING") {
    // PING checks its own arity (it accepts any in the command table): too many, and it says so.
    if (args.length > 2) return false;
    client.reply(encodeArray([PONG_WORD, args.length === 2 ? encodeBulk(args[1]!) : EMPTY_BULK]));
    return true;
  }
  // Unknown commands, unknown subcommands and wrong arities get their usual errors first.
  const info = commandInfo(name, args);
  if (!info || info.subcommands !== null || !checkArity(info, args.length)) return false;
  client.reply(
    errorReply(`Can't execute '${info.name.toLowerCase()}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`),
  );
  return true;
}

function subscription(client: PubSubClient, scope: Scope, host: PubSubHost, name: string, kind: Kind, unsubscribe: boolean, args: Uint8Array[]): void {
  if (args.length < 2 && !unsubscribe) return client.reply(errorReply(`wrong number of arguments for '${name.toLowerCase()}' command`));
  const names = args.slice(1);
  if (!unsubscribe || (kind === Kind.Shard && names.length > 1)) {
    const targets = route(host.router.routes(), kind, names);
    if (targets instanceof Uint8Array) return client.reply(targets);
    if (!unsubscribe) {
      // A client that is going away subscribes to nothing more.
      if (!scope.isOpen) return;
      client.pubsub ??= new PubSub(client, scope, host);
      return client.pubsub.subscribe(kind, names, targets);
    }
  }
  if (client.pubsub) return client.pubsub.unsubscribe(kind, names);
  const frames = names.length === 0 ? [confirmation(client.protocol, UNSUBSCRIBE_WORDS[kind], null, 0)] : names.map((n) => confirmation(client.protocol, UNSUBSCRIBE_WORDS[kind], n, 0));
  client.reply(join(frames));
}

/** Where each name goes, or the error Redis (Cluster) would give for the command. */
function route(table: RouteTable, kind: Kind, names: Uint8Array[]): { backend: Backend; slot: number }[] | Uint8Array {
  const targets: { backend: Backend; slot: number }[] = [];
  for (const name of names) {
    const backend = table.match(name)?.backend;
    if (!backend) return errorReply(`no route for channel '${decoder.decode(name.subarray(0, 128))}'`);
    if (kind === Kind.Pattern && !backend.capabilities.publishReachesEveryNode) return errorReply(`patterns are not supported on standalone pool '${backend.name}'`);
    const slot = backend.shardOf(name);
    const first = targets[0];
    if (kind === Kind.Shard && first) {
      if (first.backend !== backend) return differentClusters(first.backend.name, backend.name);
      if (first.slot !== slot) return CROSSSLOT;
    }
    targets.push({ backend, slot });
  }
  return targets;
}

