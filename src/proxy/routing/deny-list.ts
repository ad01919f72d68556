/**
 * The deny list (`denyCommands`): commands slotgate refuses instead of sending upstream, such as
 * FLUSHALL on a shared cluster. An entry names a command (`FLUSHALL`), which denies all its
 * subcommands too, or one subcommand (`SCRIPT|FLUSH`, or `SCRIPT FLUSH`), in any case. Commands
 * the proxy answers itself (PING, HELLO, CLIENT...) never reach Redis and cannot be denied.
 */
import { commandInfo, type CommandInfo } from "../../commands/keys.ts";
import { errorReply } from "../../resp/replies.ts";

const encoder = new TextEncoder();

/** An entry as the deny list stores it: upper case, subcommands as `NAME|SUB`. */
export function normalizeDenied(entry: string): string {
  return entry.trim().toUpperCase().replace(/\s+/, "|");
}

/**
 * Why a normalized entry cannot be in the deny list, or null when it can. `answeredLocally` says
 * which commands the proxy answers itself (they never reach Redis, so denying them means nothing).
 */
export function denyProblem(entry: string, answeredLocally: (name: string) => boolean): string | null {
  const [name = "", sub] = entry.split("|");
  if (answeredLocally(name)) return `'${entry}' is answered by slotgate itself and never reaches Redis`;
  const info = commandInfo(name, sub === undefined ? [encoder.encode(name)] : [encoder.encode(name), encoder.encode(sub)]);
  if (info === null || (sub !== undefined && info.name !== entry)) return `unknown command '${entry}'`;
  return null;
}

/** True when `info` (a command or subcommand) is denied by `denied`. */
export function isDenied(denied: ReadonlySet<string>, info: CommandInfo): boolean {
  if (denied.size === 0) return false;
  if (denied.has(info.name)) return true;
  const bar = info.name.indexOf("|");
  return bar > 0 && denied.has(info.name.slice(0, bar));
}

/** `-ERR command 'flushall' is disabled by slotgate configuration` */
export function deniedReply(info: CommandInfo): Uint8Array {
  return errorReply(`command '${info.name.toLowerCase()}' is disabled by slotgate configuration`);
}

/** A cached set of the deny list in force, rebuilt only when the configuration object changes. */
export function denyListOf(config: () => { readonly denyCommands: readonly string[] }): () => ReadonlySet<string> {
  let source: object | null = null;
  let set: ReadonlySet<string> = new Set();
  return () => {
    const current = config();
    if (current !== source) {
      source = current;
      set = new Set(current.denyCommands);
    }
    return set;
  };
}
