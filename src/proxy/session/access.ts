/**
 * Whether a logged-in client (or one not logged in yet) may run a command, with Redis 7.0's
 * order and wording: an unknown command or a wrong arity gets its usual error first (the caller
 * runs it as usual to get it); then, before authentication, anything but AUTH, HELLO, QUIT and
 * RESET (the commands flagged `no_auth`) gets `-NOAUTH`; then the user's command rules, its key
 * patterns (on every key slotgate finds, split commands included: one forbidden key refuses the
 * whole command) and its channel patterns (PUBLISH, SPUBLISH, SUBSCRIBE, SSUBSCRIBE; PSUBSCRIBE
 * by Redis's rule for patterns) give `-NOPERM`.
 *
 * Scripts: EVAL, EVALSHA and FCALL are checked on their declared keys only; what a script
 * touches inside is Redis's to check, with an upstream ACL user.
 */
import { NO_AUTH, PUBSUB } from "../../commands/flags.ts";
import { checkArity, keyIndexes, type CommandInfo } from "../../commands/keys.ts";
import { errorReply } from "../../resp/replies.ts";
import type { Login } from "../../acl/users.ts";

const decoder = new TextDecoder();

export const NOAUTH = errorReply("Authentication required.", "NOAUTH");
export const WRONGPASS = errorReply("invalid username-password pair or user is disabled.", "WRONGPASS");
export const NOPERM_KEYS = errorReply("this user has no permissions to access one of the keys used as arguments", "NOPERM");
export const NOPERM_CHANNELS = errorReply("this user has no permissions to access one of the channels used as arguments", "NOPERM");

/** `-NOPERM this user has no permissions to run the 'config|get' command` */
export function nopermCommand(info: CommandInfo): Uint8Array {
  return errorReply(`this user has no permissions to run the '${info.name.toLowerCase()}' command`, "NOPERM");
}

/** The error that refuses the command, or null when it may run (or must run to give its own error). */
export function refusal(login: Login | null, info: CommandInfo | null, name: string, args: readonly Uint8Array[]): Uint8Array | null {
  // QUIT is answered before anything else, as Redis 7.0 does.
  if (name === "QUIT") return null;
  if (info === null) return null;
  if (!checkArity(info, args.length)) {
    // Answered here before authentication, so that nothing with a wrong arity (MULTI x) starts anything.
    return login === null ? errorReply(`wrong number of arguments for '${info.name.toLowerCase()}' command`) : null;
  }
  if (login === null) {
    // A container found without its subcommand: Redis's "unknown subcommand" comes first too.
    if (info.subcommands !== null && args.length > 1) {
      return errorReply(`unknown subcommand '${decoder.decode(args[1]!.subarray(0, 128))}'. Try ${decoder.decode(args[0]!).toUpperCase()} HELP.`);
    }
    return (info.flags & NO_AUTH) !== 0 ? null : NOAUTH;
  }
  const permissions = login.user.permissions;
  if (permissions.unrestricted) return null;
  // Commands flagged no_auth (AUTH, HELLO...) are never refused by command rules, as in Redis.
  if ((info.flags & NO_AUTH) === 0 && !permissions.mayRun(info)) return nopermCommand(info);
  // Pub/sub commands' key specs name channels (flagged not_key): channel patterns govern them.
  if (!permissions.allKeys && (info.flags & PUBSUB) === 0) {
    const keys = keyIndexes(info, args);
    if (keys !== null) {
      for (let i = 0; i < keys.length; i++) if (!permissions.mayAccessKey(args[keys[i]!]!)) return NOPERM_KEYS;
    }
  }
  if (!permissions.allChannels) {
    switch (name) {
      case "PUBLISH":
      case "SPUBLISH":
        return permissions.mayAccessChannel(args[1]!) ? null : NOPERM_CHANNELS;
      case "SUBSCRIBE":
      case "SSUBSCRIBE":
        for (let i = 1; i < args.length; i++) if (!permissions.mayAccessChannel(args[i]!)) return NOPERM_CHANNELS;
        return null;
      case "PSUBSCRIBE":
        for (let i = 1; i < args.length; i++) if (!permissions.mayAccessPattern(args[i]!)) return NOPERM_CHANNELS;
        return null;
    }
  }
  return null;
}
