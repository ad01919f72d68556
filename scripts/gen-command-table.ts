/**
 * Regenerates src/commands/table.ts from a real Redis: starts a throwaway redis-server (temporary
 * directory, free port, no persistence), reads its COMMAND reply and writes the compact table.
 *
 *   npx tsx scripts/gen-command-table.ts [--redis-server PATH] [--out FILE]
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { decode, type RespValue } from "../src/resp/decode.ts";
import { encodeCommand } from "../src/resp/encode.ts";
import { ReplyError } from "../src/resp/errors.ts";
import { ReplyReader } from "../src/resp/reply-reader.ts";

/** Command flags in bit order; appending keeps existing bits stable. */
const COMMAND_FLAGS = [
  "write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript", "blocking", "loading",
  "stale", "skip_monitor", "skip_slowlog", "asking", "fast", "no_auth", "may_replicate",
  "sentinel", "only_sentinel", "no_mandatory_keys", "protected", "module_no_cluster", "no_multi",
  "movablekeys", "allow_busy", "no_async_loading", "touches_arbitrary_keys",
];

/** Key spec flags in bit order. */
const KEY_SPEC_FLAGS = [
  "RO", "RW", "OW", "RM", "access", "update", "insert", "delete", "not_key", "incomplete",
  "variable_flags",
];

const args = process.argv.slice(2);
function option(name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1]! : fallback;
}
const redisServer = option("--redis-server", "redis-server");
const outFile = resolve(option("--out", new URL("../src/commands/table.ts", import.meta.url).pathname));

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = net.createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => done(port));
    });
  });
}

/** Sends one command on a fresh connection (retrying while the server starts) and decodes the reply. */
async function query(port: number, command: string[]): Promise<RespValue> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await new Promise<RespValue>((done, fail) => {
        const socket = net.connect(port, "127.0.0.1");
        const reader = new ReplyReader((frame) => {
          socket.destroy();
          done(decode(frame, { strings: true }));
        });
        socket.on("data", (chunk: Uint8Array) => reader.push(chunk));
        socket.on("error", fail);
        socket.on("connect", () => socket.write(encodeCommand(command)));
      });
    } catch (error) {
      if (attempt >= 50) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A RESP2 key-value list (["type", "index", "spec", [...]]) as an object. */
function pairs(list: RespValue): Record<string, RespValue> {
  const out: Record<string, RespValue> = {};
  const items = list as RespValue[];
  for (let i = 0; i < items.length; i += 2) out[String(items[i])] = items[i + 1]!;
  return out;
}

function flagExpression(names: string[], known: string[], prefix: string): string {
  const parts = names.map((name) => {
    if (!known.includes(name)) throw new Error(`unknown flag "${name}": add it to the generator`);
    return prefix + name.toUpperCase();
  });
  return parts.length === 0 ? "0" : parts.join(" | ");
}

/** One key spec as the table's compact tuple. */
function keySpec(raw: RespValue): string {
  const spec = pairs(raw);
  const flags = flagExpression((spec["flags"] as string[]) ?? [], KEY_SPEC_FLAGS, "KS_");
  const bs = pairs(spec["begin_search"]!);
  const bsSpec = pairs(bs["spec"] ?? []);
  let begin: string;
  if (bs["type"] === "index") begin = `BS_INDEX, ${bsSpec["index"]}, 0`;
  else if (bs["type"] === "keyword") begin = `BS_KEYWORD, ${JSON.stringify(bsSpec["keyword"])}, ${bsSpec["startfrom"]}`;
  else begin = "BS_UNKNOWN, 0, 0";
  const fk = pairs(spec["find_keys"]!);
  const fkSpec = pairs(fk["spec"] ?? []);
  let find: string;
  if (fk["type"] === "range") find = `FK_RANGE, ${fkSpec["lastkey"]}, ${fkSpec["keystep"]}, ${fkSpec["limit"]}`;
  else if (fk["type"] === "keynum") find = `FK_KEYNUM, ${fkSpec["keynumidx"]}, ${fkSpec["firstkey"]}, ${fkSpec["keystep"]}`;
  else find = "FK_UNKNOWN, 0, 0, 0";
  return `[${flags}, ${begin}, ${find}]`;
}

/** Appends the row of a command, then those of its subcommands, sorted by name. */
function rows(raw: RespValue, out: string[]): void {
  const c = raw as RespValue[];
  const name = String(c[0]).toUpperCase();
  const flags = flagExpression((c[2] as string[]).map(String), COMMAND_FLAGS, "");
  const specs = ((c[8] as RespValue[]) ?? []).map(keySpec);
  const tips = ((c[7] as RespValue[]) ?? []).map(String);
  const tail = tips.length > 0 ? `, ${JSON.stringify(tips)}` : "";
  out.push(`  [${JSON.stringify(name)}, ${c[1]}, ${flags}, ${c[3]}, ${c[4]}, ${c[5]}, [${specs.join(", ")}]${tail}],`);
  const subcommands = ((c[9] as RespValue[]) ?? []).slice();
  subcommands.sort((a, b) => String((a as RespValue[])[0]).localeCompare(String((b as RespValue[])[0])));
  for (const sub of subcommands) rows(sub, out);
}

function render(version: string, commands: RespValue[]): string {
  commands.sort((a, b) => String((a as RespValue[])[0]).localeCompare(String((b as RespValue[])[0])));
  const body: string[] = [];
  for (const command of commands) rows(command, body);
  const bit = (names: string[], prefix: string, doc: (name: string) => string) =>
    names.map((name, i) => `/** ${doc(name)} */\nexport const ${prefix}${name.toUpperCase()} = ${2 ** i};`).join("\n");
  return `// Generated by scripts/gen-command-table.ts from Redis ${version}. Do not edit by hand.
/**
 * The command table of Redis ${version}: one row per command and per subcommand (named like
 * "CLUSTER|SLOTS"), with arity, flags, legacy key positions and key specs, as COMMAND reports
 * them. \`src/commands/keys.ts\` indexes it and extracts key positions from it.
 */

/** The Redis version the table was read from. */
export const REDIS_VERSION = ${JSON.stringify(version)};

// Command flags (bitmask).
${bit(COMMAND_FLAGS, "", (name) => `Command flag "${name}".`)}

// Key spec flags (bitmask).
${bit(KEY_SPEC_FLAGS, "KS_", (name) => `Key spec flag "${name}".`)}

/** begin_search types. */
export const BS_UNKNOWN = 0;
export const BS_INDEX = 1;
export const BS_KEYWORD = 2;
/** find_keys types. */
export const FK_UNKNOWN = 0;
export const FK_RANGE = 1;
export const FK_KEYNUM = 2;

/**
 * A key spec: flags; begin_search as [BS_INDEX, index, 0] or [BS_KEYWORD, keyword, startfrom];
 * find_keys as [FK_RANGE, lastkey, keystep, limit] or [FK_KEYNUM, keynumidx, firstkey, keystep].
 */
export type RawKeySpec = readonly [
  flags: number,
  beginSearch: number,
  indexOrKeyword: number | string,
  startFrom: number,
  findKeys: number,
  a: number,
  b: number,
  c: number,
];

/** A command: name, arity, flags, first key, last key, key step, key specs, and tips if any. */
export type RawCommand = readonly [
  name: string,
  arity: number,
  flags: number,
  firstKey: number,
  lastKey: number,
  step: number,
  keySpecs: readonly RawKeySpec[],
  tips?: readonly string[],
];

/** Every command of Redis ${version}, each followed by its subcommands. */
export const COMMANDS: readonly RawCommand[] = [
${body.join("\n")}
];
`;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "slotgate-gen-"));
  const port = await freePort();
  const server = spawn(
    redisServer,
    ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"],
    { stdio: "ignore" },
  );
  try {
    const info = await query(port, ["INFO", "server"]);
    if (info instanceof ReplyError) throw info;
    const version = /redis_version:([^\r\n]+)/.exec(String(info))?.[1] ?? "unknown";
    const commands = await query(port, ["COMMAND"]);
    if (!Array.isArray(commands)) throw new Error("unexpected COMMAND reply");
    writeFileSync(outFile, render(version, commands));
    console.log(`wrote ${outFile}: ${commands.length} commands from Redis ${version}`);
  } finally {
    server.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
