/**
 * ACL, answered by the proxy from its own configured users (Redis's own users, upstream, are
 * another matter): WHOAMI, LIST, CAT [category] and HELP, with Redis 7.0's arities and errors.
 * ACL LIST shows each user's rules as Redis does, but never a password or its digest: each
 * password reads `#<redacted>` (GET /config hides them too). Users are changed in slotgate's
 * configuration, so SETUSER, DELUSER and the other subcommands are refused as unsupported.
 */
import { encodeArray, encodeBulk } from "../../../resp/encode.ts";
import { errorReply } from "../../../resp/replies.ts";
import { ACL_CATEGORIES } from "../../../commands/flags.ts";
import { allCommands } from "../../../commands/keys.ts";
import type { LocalContext } from "./context.ts";

const decoder = new TextDecoder();

const HELP = [
  "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
  "CAT [<category>]",
  "    List all commands that belong to <category>, or all command categories",
  "    when no category is specified.",
  "LIST",
  "    Show users details in config file format.",
  "WHOAMI",
  "    Return the current connection username.",
  "HELP",
  "    Print this help.",
];

/** Redis 7.0's subcommands of ACL, with their arities (subcommand included). */
const ARITY: Record<string, number> = {
  CAT: -2, DELUSER: -3, DRYRUN: -4, GENPASS: -2, GETUSER: 3, HELP: 2, LIST: 2, LOAD: 2, LOG: -2, SAVE: 2, SETUSER: -3, USERS: 2, WHOAMI: 2,
};

export function aclCommand(context: LocalContext, args: Uint8Array[]): void {
  if (args.length < 2) return context.reply(errorReply("wrong number of arguments for 'acl' command"));
  const sub = decoder.decode(args[1]!);
  const upper = sub.toUpperCase();
  const arity = Object.hasOwn(ARITY, upper) ? ARITY[upper]! : undefined;
  if (arity === undefined) return context.reply(errorReply(`unknown subcommand '${sub.slice(0, 128)}'. Try ACL HELP.`));
  if (arity >= 0 ? args.length !== arity : args.length < -arity) return context.reply(errorReply(`wrong number of arguments for 'acl|${upper.toLowerCase()}' command`));
  switch (upper) {
    case "WHOAMI":
      return context.reply(encodeBulk(context.login?.user.name ?? "default"));
    case "LIST":
      return context.reply(encodeArray(context.users().all().map((user) => encodeBulk(user.describe()))));
    case "USERS":
      return context.reply(encodeArray(context.users().all().map((user) => encodeBulk(user.name))));
    case "CAT":
      return context.reply(category(args));
    case "HELP":
      return context.reply(encodeArray(HELP.map((line) => encodeBulk(line))));
    default:
      return context.reply(errorReply(`unsupported command 'ACL ${upper}': slotgate's users are set in its configuration (users, requirepass)`));
  }
}

function category(args: Uint8Array[]): Uint8Array {
  if (args.length === 2) return encodeArray(ACL_CATEGORIES.map((name) => encodeBulk(name)));
  if (args.length > 3) return errorReply("wrong number of arguments for 'acl|cat' command");
  const name = decoder.decode(args[2]!);
  const bit = ACL_CATEGORIES.indexOf(name.toLowerCase());
  if (bit < 0) return errorReply(`Unknown category '${name.slice(0, 128)}'`);
  const mask = 2 ** bit;
  return encodeArray(allCommands().filter((info) => (info.categories & mask) !== 0).map((info) => encodeBulk(info.name.toLowerCase())));
}
