/**
 * `INFO [section ...]`: the proxy's own sections (Server, Clients, Memory, Persistence, Stats,
 * Commandstats, Cluster, Proxy; see src/metrics/info.ts for Stats and Commandstats)
 * and a `# Keyspace` merged from every primary of the whole-cluster backend: keys and expires
 * summed per db, avg_ttl the mean of the primaries' weighted by their keys with a TTL. Sections
 * are picked as Redis picks them (case-insensitive names; no argument, `default`, `all` or
 * `everything`: all of them — but `# Commandstats`, as in Redis, only with `all`, `everything` or
 * by name) and come out in Redis's order. The Server and Persistence lines
 * clients read at connect (`redis_version`, `loading`) are always there; the keyspace is asked
 * for only when it is wanted. A primary that fails does not fail INFO: the Proxy section counts
 * it in `slotgate_keyspace_errors`.
 */
import { Unavailable, type Backend } from "../../backend/contract.ts";
import { fanOut, isErrorReply, type FanOutClient } from "./fanout.ts";
import { decode } from "../../resp/decode.ts";
import { encodeBulk, encodeCommand, utf8Length } from "../../resp/encode.ts";

interface Section {
  name: string;
  lines: string[];
}

/** Per db: keys and expires summed, TTL weighted by expires. */
interface DbTotals {
  keys: number;
  expires: number;
  ttlWeight: number;
  ttlSum: number;
}

const KEYSPACE = "Keyspace";
/** Left out of `INFO` and `INFO default`, as Redis leaves it. */
const NOT_DEFAULT = new Set(["commandstats"]);
const PROXY = "Proxy";
const EVERY = new Set(["default", "all", "everything"]);
const INFO_KEYSPACE = encodeCommand(["INFO", "keyspace"]);
const decoder = new TextDecoder();

/** Which sections `INFO args...` asks for, lower-cased; null means all of them. */
export function requestedSections(args: readonly Uint8Array[]): Set<string> | null {
  if (args.length <= 1) return null;
  const names = new Set(args.slice(1).map((arg) => decoder.decode(arg).toLowerCase()));
  for (const name of names) if (EVERY.has(name)) return null;
  return names;
}

/** Whether `INFO args...` asks for every section, those left out by default included (`all`, `everything`). */
export function wantsEverything(args: readonly Uint8Array[]): boolean {
  return args.slice(1).some((arg) => {
    const name = decoder.decode(arg).toLowerCase();
    return name === "all" || name === "everything";
  });
}

/** The proxy's INFO text split into sections (`# Name` lines start one). */
export function parseSections(text: string): Section[] {
  const sections: Section[] = [];
  for (const line of text.split("\r\n")) {
    if (line.startsWith("# ")) sections.push({ name: line.slice(2).trim(), lines: [] });
    else if (line !== "" && sections.length > 0) sections[sections.length - 1]!.lines.push(line);
  }
  return sections;
}

/** Sections as Redis writes them: `# Name`, its lines, a blank line between sections. */
export function formatSections(sections: readonly Section[]): string {
  return sections.map((s) => `# ${s.name}\r\n${s.lines.map((line) => `${line}\r\n`).join("")}`).join("\r\n");
}

/** Add one primary's `INFO keyspace` text (`db0:keys=1,expires=0,avg_ttl=0`) to `totals`. */
export function addKeyspace(totals: Map<number, DbTotals>, text: string): void {
  for (const line of text.split(/\r?\n/)) {
    const match = /^db(\d+):(.*)$/.exec(line);
    if (!match) continue;
    const fields = new Map(match[2]!.split(",").map((pair) => pair.split("=") as [string, string]));
    const db = Number(match[1]);
    const keys = Number(fields.get("keys") ?? 0);
    const expires = Number(fields.get("expires") ?? 0);
    const ttl = Number(fields.get("avg_ttl") ?? 0);
    const entry = totals.get(db) ?? { keys: 0, expires: 0, ttlWeight: 0, ttlSum: 0 };
    entry.keys += keys;
    entry.expires += expires;
    // A primary that has not sampled its TTLs yet says 0: it does not count towards the mean.
    if (ttl > 0 && expires > 0) {
      entry.ttlWeight += expires;
      entry.ttlSum += ttl * expires;
    }
    totals.set(db, entry);
  }
}

/** The `# Keyspace` lines of `totals`, by db number. */
export function keyspaceLines(totals: Map<number, DbTotals>): string[] {
  return [...totals.entries()]
    .sort(([a], [b]) => a - b)
    .map(([db, t]) => `db${db}:keys=${t.keys},expires=${t.expires},avg_ttl=${t.ttlWeight > 0 ? Math.round(t.ttlSum / t.ttlWeight) : 0}`);
}

/** INFO's reply: a bulk string, or in RESP3 a verbatim string as Redis sends it. */
export function infoReply(text: string, protocol: 2 | 3): Uint8Array {
  if (protocol === 2) return encodeBulk(text);
  const body = `txt:${text}`;
  return new TextEncoder().encode(`=${utf8Length(body)}\r\n${body}\r\n`);
}

/**
 * Answer `INFO args...`: `own` is the proxy's text; `backend` the whole-cluster backend whose
 * keyspace is merged, or why there is none.
 */
export function info(client: FanOutClient, own: string, backend: Backend | Unavailable, args: readonly Uint8Array[]): void {
  const wanted = requestedSections(args);
  const everything = wanted === null && wantsEverything(args);
  const picked = parseSections(own).filter((s) => (wanted === null ? everything || !NOT_DEFAULT.has(s.name.toLowerCase()) : wanted.has(s.name.toLowerCase())));
  if (wanted !== null && !wanted.has(KEYSPACE.toLowerCase())) return client.reply(infoReply(formatSections(picked), client.protocol));
  const proxy = picked.find((s) => s.name === PROXY);
  const shards = backend instanceof Unavailable ? [] : backend.primaries();
  if (backend instanceof Unavailable || shards.length === 0) {
    proxy?.lines.push(`slotgate_keyspace_error:${backend instanceof Unavailable ? backend.message : `cluster '${backend.name}' knows no primary yet`}`);
    return client.reply(infoReply(formatSections([...picked, { name: KEYSPACE, lines: [] }]), client.protocol));
  }
  fanOut(client, backend, shards, INFO_KEYSPACE, (replies) => {
    const totals = new Map<number, DbTotals>();
    let errors = 0;
    for (const reply of replies) {
      if (isErrorReply(reply)) {
        errors++;
        continue;
      }
      const text = decode(reply, { strings: true });
      if (typeof text === "string") addKeyspace(totals, text);
      else errors++;
    }
    proxy?.lines.push(`slotgate_keyspace_cluster:${backend.name}`, `slotgate_keyspace_primaries:${replies.length}`, `slotgate_keyspace_errors:${errors}`);
    return infoReply(formatSections([...picked, { name: KEYSPACE, lines: keyspaceLines(totals) }]), client.protocol);
  });
}
