/**
 * SLOWLOG GET [count] | LEN | RESET | HELP, answered by the proxy from its own slow log
 * (src/metrics/slowlog.ts): requests whose total time through slotgate reached
 * `slowlogThresholdUs`, newest first, in Redis's reply shape — id, unix time, microseconds,
 * arguments, client address, client name — with one element more: the upstream node that
 * answered (`""` when the proxy answered itself, `*` when several nodes did). Clients read the
 * first six by position and leave the rest (redis-cli prints it), so Redis's client-name field
 * keeps its meaning.
 */
import { OK, encodeArray, encodeBulk, encodeInteger, encodeSimpleString } from "../../../resp/encode.ts";
import { errorReply } from "../../../resp/replies.ts";
import type { LocalContext } from "./context.ts";
import type { SlowlogEntry } from "../../../metrics/slowlog.ts";

const decoder = new TextDecoder();

const HELP = encodeArray(
  [
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name, upstream node (slotgate: the node that answered)",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
  ].map(encodeSimpleString),
);

function entryReply(entry: SlowlogEntry): Uint8Array {
  return encodeArray([
    encodeInteger(entry.id),
    encodeInteger(entry.time),
    encodeInteger(entry.durationUs),
    encodeArray(entry.args.map((arg) => encodeBulk(arg))),
    encodeBulk(entry.client),
    encodeBulk(entry.clientName),
    encodeBulk(entry.node),
  ]);
}

/** The count of SLOWLOG GET, by Redis's rules (an integer from -1 up), or the error to answer. */
function parseCount(arg: Uint8Array): number | Uint8Array {
  const text = decoder.decode(arg);
  if (!/^-?(?:0|[1-9][0-9]{0,18})$/.test(text)) return errorReply("value is not an integer or out of range");
  const n = Number(text);
  if (n < -1) return errorReply("count should be greater than or equal to -1");
  return n;
}

export function slowlogCommand(context: LocalContext, args: Uint8Array[]): void {
  if (args.length < 2) return context.reply(errorReply("wrong number of arguments for 'slowlog' command"));
  const given = decoder.decode(args[1]!);
  const sub = given.toUpperCase();
  const slowlog = context.slowlog?.() ?? null;
  if (sub === "GET" && args.length <= 3) {
    const count = args.length === 3 ? parseCount(args[2]!) : 10;
    if (count instanceof Uint8Array) return context.reply(count);
    return context.reply(encodeArray((slowlog?.newest(count) ?? []).map(entryReply)));
  }
  if (sub === "LEN" && args.length === 2) return context.reply(encodeInteger(slowlog?.length ?? 0));
  if (sub === "RESET" && args.length === 2) {
    slowlog?.reset();
    return context.reply(OK);
  }
  if (sub === "HELP" && args.length === 2) return context.reply(HELP);
  if (sub === "GET" || sub === "LEN" || sub === "RESET" || sub === "HELP") {
    return context.reply(errorReply(`wrong number of arguments for 'slowlog|${sub.toLowerCase()}' command`));
  }
  context.reply(errorReply(`unknown subcommand '${given.slice(0, 128)}'. Try SLOWLOG HELP.`));
}
