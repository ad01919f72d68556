/**
 * `npm run bench:cold-start`: how long each form of slotgate takes from spawn to serving, i.e.
 * to the first PING answered on its client port (a new connection and a PING every 2 ms until
 * one answers +PONG). Each form is started in front of the same running local cluster, one at a
 * time; the forms take turns, so a slow moment of a shared machine is spread over all of them.
 * Prints median, min and max per form, and the single-file binary's size.
 *
 * Forms: tsx (the TypeScript sources on Node through tsx), node-js (dist/ on Node: what the npm
 * package runs), bun (sources), bun-js (dist/), deno (sources), deno-js (dist/), bun-binary
 * (dist/slotgate, `npm run build:binary`). dist/ and the binary are built first (--no-build
 * uses what is there).
 *
 * Options: --runs N (per form, default 10)   --forms tsx,node-js,...   --no-build
 */
import { execFileSync, spawn } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { buildBinary } from "./build-binary.ts";
import { freePort } from "./free-port.ts";
import { startLocalCluster } from "./local-cluster.ts";
import { RespConn, option, sleep } from "./proxy-process.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const bin = (name: string) => join(ROOT, "node_modules/.bin", name);

/** How each form is started, from the checkout's root. */
const FORMS: Record<string, string[]> = {
  tsx: [process.execPath, "--import", "tsx", "adapters/node/main.ts"],
  "node-js": [process.execPath, "dist/adapters/node/main.js"],
  bun: [bin("bun"), "adapters/bun/main.ts"],
  "bun-js": [bin("bun"), "dist/adapters/bun/main.js"],
  deno: [bin("deno"), "run", "-A", "adapters/deno/main.ts"],
  "deno-js": [bin("deno"), "run", "-A", "dist/adapters/deno/main.js"],
  "bun-binary": [join(ROOT, "dist/slotgate")],
};

const runs = Number(option("runs", "10"));
const forms = option("forms", Object.keys(FORMS).join(",")).split(",");
for (const form of forms) if (!FORMS[form]) throw new Error(`unknown form '${form}' (known: ${Object.keys(FORMS).join(", ")})`);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer (got ${option("runs", "")})`);

if (!process.argv.includes("--no-build")) {
  console.error("building dist/ and dist/slotgate...");
  execFileSync(process.execPath, ["--import", "tsx", "scripts/build.ts"], { cwd: ROOT, stdio: "inherit" });
  buildBinary(join(ROOT, "dist/slotgate"));
}

/** Spawn `form`, return milliseconds until the first PING is answered, then stop it (SIGTERM). */
async function coldStart(form: string, seeds: string[]): Promise<number> {
  const port = await freePort();
  const [command, ...args] = FORMS[form]!;
  const started = performance.now();
  const child = spawn(command!, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", SLOTGATE_SEEDS: seeds.join(","), SLOTGATE_LISTEN: `127.0.0.1:${port}`, SLOTGATE_ADMIN_LISTEN: "off", SLOTGATE_LOG_LEVEL: "warn" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once("exit", () => ((exited = true), resolve())));
  try {
    for (;;) {
      if (exited) throw new Error(`${form} exited before serving:\n${stderr}`);
      if (performance.now() - started > 60_000) throw new Error(`${form} did not answer PING within 60 s:\n${stderr}`);
      const conn = await RespConn.open(port).catch(() => null);
      if (conn) {
        const reply = await conn.command("PING");
        conn.close();
        if (reply === "+PONG\r\n") return performance.now() - started;
      }
      await sleep(2);
    }
  } finally {
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exit;
    clearTimeout(timer);
  }
}

const cluster = await startLocalCluster({ replicasPerPrimary: 0 });
const times = new Map<string, number[]>(forms.map((form) => [form, []]));
try {
  for (let run = 0; run < runs; run++) {
    for (const form of forms) times.get(form)!.push(await coldStart(form, cluster.seeds));
    console.error(`run ${run + 1}/${runs} done`);
  }
} finally {
  await cluster.stop();
}

const ms = (x: number) => `${x.toFixed(0)} ms`;
console.log(`\ncold start to the first PING answered, ${runs} runs each (${process.platform}-${process.arch})\n`);
console.log("| form | median | min | max |");
console.log("|---|---:|---:|---:|");
for (const [form, list] of times) {
  const sorted = [...list].sort((a, b) => a - b);
  console.log(`| ${form} | ${ms(sorted[Math.floor((sorted.length - 1) / 2)]!)} | ${ms(sorted[0]!)} | ${ms(sorted.at(-1)!)} |`);
}
if (forms.includes("bun-binary")) console.log(`\ndist/slotgate: ${(statSync(join(ROOT, "dist/slotgate")).size / 1024 / 1024).toFixed(1)} MiB`);
