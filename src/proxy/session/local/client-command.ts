/**
 * CLIENT, answered by the proxy for the client's own connection, with Redis's arities, validation
 * and error texts: SETNAME, GETNAME, ID, INFO, SETINFO (Redis 7.2's LIB-NAME/LIB-VER), NO-EVICT
 * (accepted and ignored: with no ACL to reserve it to admins, every client counts against
 * maxClientsMemoryBytes) and HELP. Subcommands that act on other connections or change how replies
 * flow (LIST, KILL, PAUSE, TRACKING, REPLY...) are refused as unsupported;
 * a subcommand Redis does not know gets Redis's own "unknown subcommand".
 *
 * CLIENT INFO reports, in Redis 7.2's format, what slotgate knows of the connection: id, addr,
 * laddr (the listener's configured host, so a wildcard listener shows the wildcard), name, age
 * and idle (from the runtime clock), resp, lib-name and lib-ver. The rest is fixed: fd=-1 (no
 * descriptor is exposed by the runtime), flags=N, db=0, sub/psub/ssub=0, multi=-1, buffer and
 * memory sizes 0, events=r, cmd=client|info, redir=-1; user is the user the client is logged in as.
 */
import { OK, encodeArray, encodeBulk, encodeInteger, encodeSimpleString, encodeVerbatim, nullReply } from "../../../resp/encode.ts";
import { errorReply } from "../../../resp/replies.ts";
import { commandInfo } from "../../../commands/keys.ts";
import { INVALID_NAME, isValidName, type ConnectionInfo, type LocalContext } from "./context.ts";

const SYNTAX_ERROR = errorReply("syntax error");

const decoder = new TextDecoder();
const text = (value: Uint8Array) => decoder.decode(value);

interface Subcommand {
  /** Redis's arity, subcommand name included: exact. */
  readonly arity: number;
  run(context: LocalContext, args: Uint8Array[]): void;
}

const SUBCOMMANDS: Record<string, Subcommand> = {
  SETNAME: {
    arity: 3,
    run(context, args) {
      if (!isValidName(args[2]!)) return context.reply(INVALID_NAME);
      context.clientName = args[2]!.length > 0 ? text(args[2]!) : null;
      context.reply(OK);
    },
  },
  GETNAME: {
    arity: 2,
    run(context) {
      context.reply(context.clientName === null ? nullReply(context.protocol) : encodeBulk(context.clientName));
    },
  },
  ID: {
    arity: 2,
    run(context) {
      context.reply(encodeInteger(context.id));
    },
  },
  INFO: {
    arity: 2,
    run(context) {
      const line = clientInfoLine(context);
      context.reply(context.protocol === 3 ? encodeVerbatim(line) : encodeBulk(line));
    },
  },
  SETINFO: {
    arity: 4,
    run(context, args) {
      const attribute = text(args[2]!);
      const key = attribute.toUpperCase();
      if (key !== "LIB-NAME" && key !== "LIB-VER") return context.reply(errorReply(`Unrecognized option '${attribute}'`));
      if (!isValidName(args[3]!)) return context.reply(errorReply(`${attribute} cannot contain spaces, newlines or special characters.`));
      if (key === "LIB-NAME") context.libName = text(args[3]!);
      else context.libVer = text(args[3]!);
      context.reply(OK);
    },
  },
  "NO-EVICT": {
    arity: 3,
    run(context, args) {
      const mode = text(args[2]!).toUpperCase();
      context.reply(mode === "ON" || mode === "OFF" ? OK : SYNTAX_ERROR);
    },
  },
  HELP: {
    arity: 2,
    run(context) {
      context.reply(HELP);
    },
  },
};

/** Redis's help layout (a title, then the subcommands with indented descriptions), for what slotgate serves. */
const HELP = encodeArray(
  [
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "NO-EVICT (ON|OFF)",
    "    Accepted for compatibility; every client counts against maxClientsMemoryBytes.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "HELP",
    "    Prints this help.",
    "Other subcommands (LIST, KILL, PAUSE, TRACKING, REPLY...) are not served by slotgate.",
  ].map(encodeSimpleString),
);

/** CLIENT <subcommand> [args]: the client's own connection, answered locally. */
export function clientCommand(context: LocalContext, args: Uint8Array[]): void {
  if (args.length < 2) return context.reply(errorReply("wrong number of arguments for 'client' command"));
  const given = text(args[1]!);
  const name = given.toUpperCase();
  const sub = Object.hasOwn(SUBCOMMANDS, name) ? SUBCOMMANDS[name]! : undefined;
  if (sub) {
    if (args.length !== sub.arity) return context.reply(errorReply(`wrong number of arguments for 'client|${name.toLowerCase()}' command`));
    return sub.run(context, args);
  }
  // Known to Redis (the container's table has it) but not served: say so plainly.
  if (commandInfo("CLIENT", args)?.name !== "CLIENT") return context.reply(errorReply(`unsupported command 'CLIENT ${name}'`));
  context.reply(errorReply(`unknown subcommand '${given.slice(0, 128)}'. Try CLIENT HELP.`));
}

/** `host:port`, IPv6 hosts in brackets, as Redis writes addr and laddr. */
function address(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The line CLIENT INFO answers, in Redis 7.2's field order, newline-terminated. */
export function clientInfoLine(context: LocalContext): string {
  const c: ConnectionInfo = context.connectionInfo();
  const fields: [string, string | number][] = [
    ["id", context.id],
    ["addr", address(c.remoteAddress, c.remotePort)],
    ["laddr", address(c.localAddress, c.localPort)],
    ["fd", -1],
    ["name", context.clientName ?? ""],
    ["age", Math.floor(c.ageMs / 1000)],
    ["idle", Math.floor(c.idleMs / 1000)],
    ["flags", "N"],
    ["db", 0],
    ["sub", 0],
    ["psub", 0],
    ["ssub", 0],
    ["multi", -1],
    ["qbuf", 0],
    ["qbuf-free", 0],
    ["argv-mem", 0],
    ["multi-mem", 0],
    ["rbs", 0],
    ["rbp", 0],
    ["obl", 0],
    ["oll", 0],
    ["omem", 0],
    ["tot-mem", 0],
    ["events", "r"],
    ["cmd", "client|info"],
    ["user", context.login?.user.name ?? "default"],
    ["redir", -1],
    ["resp", context.protocol],
    ["lib-name", context.libName],
    ["lib-ver", context.libVer],
  ];
  return `${fields.map(([key, value]) => `${key}=${value}`).join(" ")}\n`;
}
