/**
 * Commands the proxy answers itself, per client, as a Redis server would: PING, ECHO, QUIT,
 * SELECT 0 (another database gets Redis Cluster's error), HELLO (RESP2 or RESP3), CLIENT (see
 * ./client-command.ts), READONLY/READWRITE, AUTH (against the configured users; with none,
 * Redis's answers for a server whose default user has no password) and ACL (./acl-command.ts:
 * WHOAMI, LIST, CAT) and SLOWLOG (./slowlog-command.ts: the proxy's own slow log). Every reply
 * is in the client's protocol.
 * INFO is the router's: it merges the primaries' keyspace.
 */
import { OK, PONG, EMPTY_ARRAY, encodeArray, encodeMap, encodeBulk as bulkReply, encodeInteger as integerReply } from "../../../resp/encode.ts";
import { errorReply } from "../../../resp/replies.ts";
import { clientCommand } from "./client-command.ts";
import { INVALID_NAME, isValidName, type LocalContext, type LocalHandler } from "./context.ts";
import { aclCommand } from "./acl-command.ts";
import { slowlogCommand } from "./slowlog-command.ts";


const decoder = new TextDecoder();
const text = (value: Uint8Array | undefined) => (value ? decoder.decode(value) : "");

function arityError(name: string): Uint8Array {
  return errorReply(`wrong number of arguments for '${name.toLowerCase()}' command`);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const INT32_MIN = -(2n ** 31n);
const INT32_MAX = 2n ** 31n - 1n;

/**
 * The integer `text` spells with the strictness of Redis's string2ll: an optional '-', no '+',
 * no spaces, no leading zeros, no "-0", within 64 bits. Null otherwise.
 */
export function parseInteger(text: string): bigint | null {
  if (!/^(?:0|-?[1-9][0-9]{0,18})$/.test(text)) return null;
  const n = BigInt(text);
  return n >= INT64_MIN && n <= INT64_MAX ? n : null;
}

const NO_PASSWORD = errorReply(
  "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
);
/** HELLO without AUTH from a client not authenticated yet (Redis 7.0's wording). */
const HELLO_NOAUTH = errorReply(
  "HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
  "NOAUTH",
);

/** HELLO's description of the server in the client's protocol: a map in RESP3, a flat array in RESP2. */
function helloReply(context: LocalContext): Uint8Array {
  // "standalone", as INFO says: slotgate is one endpoint and serves no CLUSTER SLOTS, so a
  // client told "cluster" could try a topology discovery the proxy does not offer.
  const fields = [
    bulkReply("server"), bulkReply("redis"),
    bulkReply("version"), bulkReply("7.0.0"),
    bulkReply("proto"), integerReply(context.protocol),
    bulkReply("id"), integerReply(context.id),
    bulkReply("mode"), bulkReply("standalone"),
    bulkReply("role"), bulkReply("master"),
    bulkReply("modules"), EMPTY_ARRAY,
  ];
  return context.protocol === 3 ? encodeMap(fields) : encodeArray(fields);
}

const handlers: Record<string, LocalHandler> = {
  PING(context, args) {
    if (args.length > 2) context.reply(arityError("ping"));
    else context.reply(args.length === 2 ? bulkReply(args[1]!) : PONG);
  },
  ECHO(context, args) {
    context.reply(args.length === 2 ? bulkReply(args[1]!) : arityError("echo"));
  },
  QUIT(context) {
    context.replyAndClose(OK);
  },
  SELECT(context, args) {
    if (args.length !== 2) return context.reply(arityError("select"));
    const db = parseInteger(text(args[1]));
    if (db === null) return context.reply(errorReply("value is not an integer or out of range"));
    if (db < INT32_MIN || db > INT32_MAX) return context.reply(errorReply(`value is out of range, value must between ${INT32_MIN} and ${INT32_MAX}`));
    context.reply(db === 0n ? OK : errorReply("SELECT is not allowed in cluster mode"));
  },
  READONLY(context) {
    context.reply(OK);
  },
  READWRITE(context) {
    context.reply(OK);
  },
  AUTH(context, args) {
    if (args.length < 2) return context.reply(arityError("auth"));
    if (args.length > 3) return context.reply(errorReply("syntax error"));
    // The one-argument form names no user: Redis refuses it while the default user has no password.
    if (args.length === 2 && !context.authRequired) return context.reply(NO_PASSWORD);
    const refused = args.length === 2 ? context.authenticate(null, args[1]!) : context.authenticate(text(args[1]), args[2]!);
    context.reply(refused ?? OK);
  },
  HELLO(context, args) {
    let protocol = context.protocol;
    if (args.length > 1) {
      const version = parseInteger(text(args[1]));
      if (version === null) return context.reply(errorReply("Protocol version is not an integer or out of range"));
      if (version !== 2n && version !== 3n) return context.reply(errorReply("unsupported protocol version", "NOPROTO"));
      protocol = version === 3n ? 3 : 2;
    }
    // As in Redis 7.0, each option takes effect where it appears and the first failure is the
    // answer: a name set before a failing option stays set. The protocol switches only on success.
    for (let i = 2; i < args.length; i++) {
      const more = args.length - 1 - i;
      const option = text(args[i]);
      const upper = option.toUpperCase();
      if (upper === "AUTH" && more >= 2) {
        const refused = context.authenticate(text(args[i + 1]), args[i + 2]!);
        if (refused) return context.reply(refused);
        i += 2;
      } else if (upper === "SETNAME" && more >= 1) {
        const name = args[++i]!;
        if (!isValidName(name)) return context.reply(INVALID_NAME);
        context.clientName = name.length > 0 ? text(name) : null;
      } else {
        return context.reply(errorReply(`Syntax error in HELLO option '${option}'`));
      }
    }
    if (context.login === null) return context.reply(HELLO_NOAUTH);
    context.protocol = protocol;
    context.reply(helloReply(context));
  },
  CLIENT(context, args) {
    clientCommand(context, args);
  },
  ACL(context, args) {
    aclCommand(context, args);
  },
  SLOWLOG(context, args) {
    slowlogCommand(context, args);
  },
};

/** The handler of a locally answered command, by upper-case name. */
export function localHandler(name: string): LocalHandler | undefined {
  return Object.hasOwn(handlers, name) ? handlers[name] : undefined;
}
