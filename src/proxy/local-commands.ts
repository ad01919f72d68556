/**
 * Commands the proxy answers itself, per client, as a Redis server would: PING, ECHO, QUIT,
 * SELECT 0, HELLO (RESP2), CLIENT SETNAME/GETNAME/ID/SETINFO, READONLY/READWRITE and AUTH (no
 * password configured yet). INFO is the router's: it merges the primaries' keyspace.
 */
import { OK, PONG, NULL_BULK, EMPTY_ARRAY, encodeArray, encodeBulk as bulkReply, encodeInteger as integerReply } from "../resp/encode.ts";
import { errorReply } from "../resp/replies.ts";

/** What a local command may do to the client that sent it. */
export interface LocalContext {
  readonly id: number;
  clientName: string | null;
  /** The protocol `HELLO` chose: 2 (Redis's default) or 3. */
  protocol: 2 | 3;
  /** Queue a reply, in order with the client's other replies. */
  reply(frame: Uint8Array): void;
  /** Reply, then close the connection once every earlier reply is written. */
  replyAndClose(frame: Uint8Array): void;
  /** Text of the INFO reply (server-wide). */
  info(): string;
}

export type LocalHandler = (context: LocalContext, args: Uint8Array[]) => void;

const decoder = new TextDecoder();
const text = (value: Uint8Array | undefined) => (value ? decoder.decode(value) : "");

function arityError(name: string): Uint8Array {
  return errorReply(`wrong number of arguments for '${name.toLowerCase()}' command`);
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
    const db = text(args[1]);
    if (!/^-?\d+$/.test(db)) return context.reply(errorReply("value is not an integer or out of range"));
    context.reply(Number(db) === 0 ? OK : errorReply("SELECT is not allowed in cluster mode"));
  },
  READONLY(context) {
    context.reply(OK);
  },
  READWRITE(context) {
    context.reply(OK);
  },
  AUTH(context, args) {
    if (args.length < 2 || args.length > 3) return context.reply(arityError("auth"));
    context.reply(
      errorReply("AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"),
    );
  },
  HELLO(context, args) {
    const version = args.length > 1 ? text(args[1]) : "2";
    if (version !== "2") {
      // RESP3 is not served yet; Redis answers an unknown protocol version this way.
      return context.reply(errorReply("unsupported protocol version", "NOPROTO"));
    }
    for (let i = 2; i < args.length; i++) {
      const option = text(args[i]).toUpperCase();
      if (option === "SETNAME" && i + 1 < args.length) context.clientName = text(args[++i]);
      else if (option === "AUTH") return context.reply(errorReply("AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
      else return context.reply(errorReply(`Syntax error in HELLO option '${text(args[i])}'`));
    }
    const fields: [string, Uint8Array][] = [
      ["server", bulkReply("redis")],
      ["version", bulkReply("7.0.0")],
      ["proto", integerReply(2)],
      ["id", integerReply(context.id)],
      ["mode", bulkReply("standalone")],
      ["role", bulkReply("master")],
      ["modules", EMPTY_ARRAY],
    ];
    context.reply(encodeArray(fields.flatMap(([key, value]) => [bulkReply(key), value])));
  },
  CLIENT(context, args) {
    const sub = text(args[1]).toUpperCase();
    switch (sub) {
      case "SETNAME":
        if (args.length !== 3) return context.reply(arityError("client|setname"));
        if (/[\s]/.test(text(args[2]))) return context.reply(errorReply("Client names cannot contain spaces, newlines or special characters."));
        context.clientName = text(args[2]) || null;
        return context.reply(OK);
      case "GETNAME":
        return context.reply(context.clientName === null ? NULL_BULK : bulkReply(context.clientName));
      case "ID":
        return context.reply(integerReply(context.id));
      case "SETINFO":
        return context.reply(args.length === 4 ? OK : arityError("client|setinfo"));
      default:
        return context.reply(errorReply(`unsupported command 'CLIENT ${sub}'`));
    }
  },
};

/** The handler of a locally answered command, by upper-case name. */
export function localHandler(name: string): LocalHandler | undefined {
  return Object.hasOwn(handlers, name) ? handlers[name] : undefined;
}
