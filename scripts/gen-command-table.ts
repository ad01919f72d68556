/**
 * Regenerates src/commands/generated/redis-7.0.ts from a real Redis: starts a throwaway
 * redis-server (temporary directory, free port, no persistence), reads its COMMAND reply with
 * src/commands/learn.ts (the parser slotgate also learns upstream tables with) and writes the
 * compact table. Only the data is generated; the flag constants and row types it is spelled in
 * are hand-written in src/commands/flags.ts, which the output imports.
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
import { ACL_CATEGORIES, COMMAND_FLAGS, KEY_SPEC_FLAGS } from "../src/commands/flags.ts";
import { parseCommandReply, type CommandEntry, type KeySpecEntry } from "../src/commands/learn.ts";

const args = process.argv.slice(2);
function option(name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1]! : fallback;
}
const redisServer = option("--redis-server", "redis-server");
const outFile = resolve(option("--out", new URL("../src/commands/generated/redis-7.0.ts", import.meta.url).pathname));

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

/** The names of src/commands/flags.ts the rendered rows use, so the output imports just those. */
const used = new Set<string>();
/** `name`, noted as used. */
function use(name: string): string {
  used.add(name);
  return name;
}

function flagExpression(names: readonly string[], known: readonly string[], prefix: string): string {
  const parts = names.map((name) => {
    if (!known.includes(name)) throw new Error(`unknown flag "${name}": add it to src/commands/flags.ts`);
    return use(prefix + name.toUpperCase());
  });
  return parts.length === 0 ? "0" : parts.join(" | ");
}

/** One key spec as the table's compact tuple. */
function keySpec(spec: KeySpecEntry): string {
  const flags = flagExpression(spec.flags, KEY_SPEC_FLAGS, "KS_");
  const bs = spec.beginSearch;
  let begin: string;
  if (bs.type === "index") begin = `${use("BS_INDEX")}, ${bs.index}, 0`;
  else if (bs.type === "keyword") begin = `${use("BS_KEYWORD")}, ${JSON.stringify(bs.keyword)}, ${bs.startFrom}`;
  else begin = `${use("BS_UNKNOWN")}, 0, 0`;
  const fk = spec.findKeys;
  let find: string;
  if (fk.type === "range") find = `${use("FK_RANGE")}, ${fk.lastKey}, ${fk.keyStep}, ${fk.limit}`;
  else if (fk.type === "keynum") find = `${use("FK_KEYNUM")}, ${fk.keyNumIndex}, ${fk.firstKey}, ${fk.keyStep}`;
  else find = `${use("FK_UNKNOWN")}, 0, 0, 0`;
  return `[${flags}, ${begin}, ${find}]`;
}

/** Appends the row of a command, then those of its subcommands, sorted by name. */
function rows(c: CommandEntry, out: string[]): void {
  const flags = flagExpression(c.flags, COMMAND_FLAGS, "");
  const specs = c.keySpecs.map(keySpec);
  const categories = flagExpression(c.categories, ACL_CATEGORIES, "CAT_");
  // Tips are written when categories follow them, even when there are none.
  const tail = c.categories.length > 0 ? `, ${JSON.stringify(c.tips)}, ${categories}` : c.tips.length > 0 ? `, ${JSON.stringify(c.tips)}` : "";
  out.push(`  [${JSON.stringify(c.name)}, ${c.arity}, ${flags}, ${c.firstKey}, ${c.lastKey}, ${c.step}, [${specs.join(", ")}]${tail}],`);
  const subcommands = c.subcommands.slice();
  subcommands.sort((a, b) => a.name.localeCompare(b.name));
  for (const sub of subcommands) rows(sub, out);
}

function render(version: string, commands: CommandEntry[]): string {
  commands.sort((a, b) => a.name.localeCompare(b.name));
  const body: string[] = [];
  for (const command of commands) rows(command, body);
  // In flags.ts's order: command flags, key spec flags, then the begin_search and find_keys kinds.
  const order = [
    ...COMMAND_FLAGS.map((name) => name.toUpperCase()),
    ...KEY_SPEC_FLAGS.map((name) => `KS_${name.toUpperCase()}`),
    ...ACL_CATEGORIES.map((name) => `CAT_${name.toUpperCase()}`),
    "BS_UNKNOWN", "BS_INDEX", "BS_KEYWORD", "FK_UNKNOWN", "FK_RANGE", "FK_KEYNUM",
  ];
  const imports = order.filter((name) => used.has(name)).map((name) => `  ${name},\n`).join("");
  return `// Generated by scripts/gen-command-table.ts from Redis ${version}. Do not edit by hand.
/**
 * The command table of Redis ${version}: one row per command and per subcommand (named like
 * "CLUSTER|SLOTS"), with arity, flags, legacy key positions, key specs, tips and ACL categories,
 * as COMMAND reports them, spelled in ../flags.ts's constants. \`src/commands/keys.ts\` indexes it and extracts key
 * positions from it.
 */
import {
${imports}  type RawCommand,
} from "../flags.ts";

/** The Redis version the table was read from. */
export const REDIS_VERSION = ${JSON.stringify(version)};

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
    // The built-in table must be complete: any part the parser cannot read stops the generator.
    const commands = parseCommandReply(await query(port, ["COMMAND"]), (problem) => {
      throw new Error(`unexpected COMMAND reply: ${problem}`);
    });
    writeFileSync(outFile, render(version, commands));
    console.log(`wrote ${outFile}: ${commands.length} commands from Redis ${version}`);
  } finally {
    server.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
