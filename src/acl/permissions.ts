/**
 * What one user may do, compiled from Redis-style ACL rules once, when the configuration is
 * loaded: `commands` rules (`+@all`, `-@dangerous`, `+get`, `-config|set`, `allcommands`,
 * `nocommands`), applied left to right as Redis applies them; key patterns (`~app:*`, `allkeys`,
 * `resetkeys`) and channel patterns (`&news.*`, `allchannels`, `resetchannels`). A user with no
 * key or channel pattern may use none, as in Redis 7.
 *
 * Left to right, each rule sets or clears the commands it names; so for one command the answer
 * is the sign of the last rule that names it (by name, by its container's name, or by one of its
 * categories), and no rule means denied. The rules are compiled when the configuration is loaded;
 * the answer for a command is worked out the first time the user runs it and kept per command
 * entry (a WeakMap: entries learned from an upstream's COMMAND, with its categories, are new
 * entries), so `mayRun` is one map read on the hot path; a user allowed everything skips even that.
 */
import { ACL_CATEGORIES } from "../commands/flags.ts";
import { commandInfo, type CommandInfo } from "../commands/keys.ts";
import { compileGlob, globMatch } from "../util/glob.ts";

const encoder = new TextEncoder();

type CommandRule =
  | { readonly allow: boolean; readonly kind: "all" }
  | { readonly allow: boolean; readonly kind: "category"; readonly bit: number }
  | { readonly allow: boolean; readonly kind: "command"; readonly name: string };

/** The rules of one user, as the configuration gives them (already checked by `ruleProblem`). */
export interface PermissionRules {
  readonly commands: readonly string[];
  readonly keys: readonly string[];
  readonly channels: readonly string[];
}

/** Why `rule` (a `commands` entry) is not a rule slotgate understands, or null when it is. */
export function commandRuleProblem(rule: string): string | null {
  const parsed = parseCommandRule(rule);
  return typeof parsed === "string" ? parsed : null;
}

/** Why `rule` (a `keys` entry) is not one, or null. */
export function keyRuleProblem(rule: string): string | null {
  if (rule === "allkeys" || rule === "resetkeys" || (rule.startsWith("~") && rule.length > 1)) return null;
  if (rule.startsWith("%")) return "read/write key permissions (%R~, %W~) are not supported; use ~pattern";
  return 'expected "~pattern", "allkeys" or "resetkeys"';
}

/** Why `rule` (a `channels` entry) is not one, or null. */
export function channelRuleProblem(rule: string): string | null {
  if (rule === "allchannels" || rule === "resetchannels" || (rule.startsWith("&") && rule.length > 1)) return null;
  return 'expected "&pattern", "allchannels" or "resetchannels"';
}

function parseCommandRule(raw: string): CommandRule | string {
  const rule = raw.toLowerCase();
  if (rule === "allcommands") return { allow: true, kind: "all" };
  if (rule === "nocommands") return { allow: false, kind: "all" };
  const sign = rule[0];
  if (sign !== "+" && sign !== "-") return 'expected "+name", "-name", "+@category", "-@category", "allcommands" or "nocommands"';
  const allow = sign === "+";
  const body = rule.slice(1);
  if (body.startsWith("@")) {
    const category = body.slice(1);
    if (category === "all") return { allow, kind: "all" };
    const bit = ACL_CATEGORIES.indexOf(category);
    if (bit < 0) return `unknown category '${category}' (known: all, ${ACL_CATEGORIES.join(", ")})`;
    return { allow, kind: "category", bit: 2 ** bit };
  }
  const name = body.toUpperCase();
  const [container = "", sub, extra] = name.split("|");
  if (extra !== undefined) return `'${body}': a rule names a command or one subcommand (NAME|SUB)`;
  const info = commandInfo(container, []);
  if (info === null) return `unknown command '${container.toLowerCase()}'`;
  if (sub !== undefined) {
    if (info.subcommands === null) return `'${container.toLowerCase()}' has no subcommands (a first-argument rule like '${body}' is not supported)`;
    if (!info.subcommands.has(sub)) return `unknown subcommand '${body}'`;
  }
  return { allow, kind: "command", name };
}

function ruleMatches(rule: CommandRule, info: CommandInfo): boolean {
  switch (rule.kind) {
    case "all":
      return true;
    case "category":
      return (info.categories & rule.bit) !== 0;
    case "command":
      // A rule naming a container covers its subcommands; one naming a subcommand, only it.
      return info.name === rule.name || (info.name.length > rule.name.length && info.name[rule.name.length] === "|" && info.name.startsWith(rule.name));
  }
}

export class Permissions {
  /** Every command is allowed (the last `all` rule allows and nothing after it denies). */
  readonly allCommands: boolean;
  /** Every key is allowed: key patterns are never looked at. */
  readonly allKeys: boolean;
  readonly allChannels: boolean;
  /** Everything is allowed: commands, keys and channels (the session skips every check). */
  readonly unrestricted: boolean;
  readonly #rules: readonly CommandRule[];
  readonly #keys: readonly Uint8Array[];
  /** `#keys`, compiled: checked on every key of every command. */
  readonly #keyMatchers: readonly ((key: Uint8Array) => boolean)[];
  readonly #channels: readonly Uint8Array[];
  /** The answer for each command entry seen (entries are immutable; learned tables bring new ones). */
  readonly #decided = new WeakMap<CommandInfo, boolean>();
  /** The rules as ACL LIST shows them. */
  readonly description: string;

  constructor(rules: PermissionRules) {
    const parsed: CommandRule[] = [];
    for (const raw of rules.commands) {
      const rule = parseCommandRule(raw);
      if (typeof rule === "string") throw new Error(`bad ACL rule '${raw}': ${rule}`);
      parsed.push(rule);
    }
    // Rules before the last `all` rule are overridden by it, whatever they name.
    let lastAll = -1;
    parsed.forEach((rule, i) => rule.kind === "all" && (lastAll = i));
    this.#rules = lastAll > 0 ? parsed.slice(lastAll) : parsed;
    this.allCommands = this.#rules.length === 1 && this.#rules[0]!.kind === "all" && this.#rules[0]!.allow;
    const keys = patterns(rules.keys, "~", "allkeys", "resetkeys");
    const channels = patterns(rules.channels, "&", "allchannels", "resetchannels");
    this.allKeys = keys === "all";
    this.allChannels = channels === "all";
    this.#keys = keys === "all" ? [] : keys;
    this.#keyMatchers = this.#keys.map(compileGlob);
    this.#channels = channels === "all" ? [] : channels;
    this.unrestricted = this.allCommands && this.allKeys && this.allChannels;
    this.description = describe(this.#rules, keys, channels);
  }

  /** May the user run this command (or subcommand)? */
  mayRun(info: CommandInfo): boolean {
    if (this.allCommands) return true;
    let decided = this.#decided.get(info);
    if (decided === undefined) {
      decided = false;
      for (let i = this.#rules.length - 1; i >= 0; i--) {
        const rule = this.#rules[i]!;
        if (ruleMatches(rule, info)) {
          decided = rule.allow;
          break;
        }
      }
      this.#decided.set(info, decided);
    }
    return decided;
  }

  /** May the user touch this key? */
  mayAccessKey(key: Uint8Array): boolean {
    if (this.allKeys) return true;
    const matchers = this.#keyMatchers;
    for (let i = 0; i < matchers.length; i++) if (matchers[i]!(key)) return true;
    return false;
  }

  /** May the user publish to, or subscribe to, this channel (a name, not a pattern)? */
  mayAccessChannel(channel: Uint8Array): boolean {
    if (this.allChannels) return true;
    for (const pattern of this.#channels) if (globMatch(pattern, channel)) return true;
    return false;
  }

  /**
   * May the user PSUBSCRIBE to this pattern? Redis's rule: only a pattern equal to one of the
   * user's channel patterns (a pattern could otherwise match channels outside them).
   */
  mayAccessPattern(pattern: Uint8Array): boolean {
    if (this.allChannels) return true;
    for (const own of this.#channels) if (sameBytes(own, pattern)) return true;
    return false;
  }
}

/** Everything allowed: the user of a slotgate with no authentication configured. */
export const ALL_PERMISSIONS = new Permissions({ commands: ["+@all"], keys: ["allkeys"], channels: ["allchannels"] });

/** Key or channel rules applied left to right: "all", or the patterns (bytes) in force. */
function patterns(rules: readonly string[], prefix: string, all: string, reset: string): Uint8Array[] | "all" {
  let out: Uint8Array[] | "all" = [];
  for (const rule of rules) {
    if (rule === all || rule === `${prefix}*`) out = "all";
    else if (rule === reset) out = [];
    else if (out !== "all") out.push(encoder.encode(rule.slice(prefix.length)));
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const decoder = new TextDecoder();

/** ACL LIST's spelling of the rules: keys, channels, then the command rules in order. */
function describe(rules: readonly CommandRule[], keys: Uint8Array[] | "all", channels: Uint8Array[] | "all"): string {
  const parts: string[] = [];
  if (keys === "all") parts.push("~*");
  else for (const key of keys) parts.push(`~${decoder.decode(key)}`);
  if (channels === "all") parts.push("&*");
  else {
    parts.push("resetchannels");
    for (const channel of channels) parts.push(`&${decoder.decode(channel)}`);
  }
  if (rules.length === 0) parts.push("-@all");
  for (const rule of rules) {
    const sign = rule.allow ? "+" : "-";
    if (rule.kind === "all") parts.push(`${sign}@all`);
    else if (rule.kind === "category") parts.push(`${sign}@${ACL_CATEGORIES[Math.log2(rule.bit)]}`);
    else parts.push(`${sign}${rule.name.toLowerCase()}`);
  }
  return parts.join(" ");
}
