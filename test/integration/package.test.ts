/**
 * The npm package as a user gets it: `npm pack` (whose prepack runs `npm run build`), the tarball
 * installed with npm into an empty folder, then its bin, `npx slotgate`, `bunx slotgate`,
 * `bunx --bun slotgate` and `deno run -A npm:slotgate` from that folder, each in front of a real
 * cluster. Whichever runtime runs this file, all five are checked (Bun and Deno are the ones in
 * this checkout's node_modules/.bin).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { detectRuntime } from "../../adapters/current.ts";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { lazy } from "../support/lazy.ts";
import { checkServes } from "../support/served.ts";

const SLOW = { timeout: 300_000 };
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BUN = join(ROOT, "node_modules/.bin/bun");
const DENO = join(ROOT, "node_modules/.bin/deno");

function run(bin: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { cwd, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${bin} ${args.join(" ")} failed: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** The packed tarball installed into an empty folder: packed once per run of this file. */
const installed = lazy(async () => {
  const dir = mkdtempSync(join(tmpdir(), "slotgate-package-"));
  const stop = async () => rmSync(dir, { recursive: true, force: true });
  try {
    // --json: npm pack's own summary, so the tarball's name and file list need no parsing.
    const [packed] = JSON.parse(await run("npm", ["pack", "--json", "--pack-destination", dir], ROOT)) as { filename: string; files: { path: string }[] }[];
    const app = join(dir, "app");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "slotgate-user", private: true }));
    // The dependencies come from npm's cache when they are there (they are, after `npm ci`).
    await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", join(dir, packed!.filename)], app);
    return { app, files: packed!.files.map((f) => f.path), stop };
  } catch (error) {
    await stop();
    throw error;
  }
});

describe(`the npm package (test run on ${detectRuntime()})`, () => {
  const cluster = lazy(() => startLocalCluster({ replicasPerPrimary: 0 }));
  after(async () => {
    await cluster.stop();
    await installed.stop();
  });

  it("holds compiled JavaScript and the bin, no TypeScript sources, and needs no tsx", SLOW, async () => {
    const { app, files } = await installed.get();
    assert.ok(files.includes("bin/slotgate.mjs"), files.join("\n"));
    for (const runtime of ["node", "bun", "deno"]) assert.ok(files.includes(`dist/adapters/${runtime}/main.js`), `dist/adapters/${runtime}/main.js`);
    assert.ok(files.includes("dist/src/main.js"));
    assert.deepEqual(files.filter((f) => f.endsWith(".ts")), [], "no .ts file is shipped");
    const manifest = JSON.parse(readFileSync(join(app, "node_modules/slotgate/package.json"), "utf8")) as { dependencies: Record<string, string> };
    for (const name of ["hono", "valibot", "redis-parser"]) assert.ok(name in manifest.dependencies, name);
    assert.ok(!("tsx" in manifest.dependencies) && !("typescript" in manifest.dependencies), "tsx and typescript stay devDependencies");
    assert.ok(!existsSync(join(app, "node_modules/tsx")), "installing it brought no tsx");
    assert.ok(readdirSync(join(app, "node_modules/.bin")).includes("slotgate"));
  });

  it("the installed bin serves on Node and exits 0 on SIGTERM", SLOW, async () => {
    const { app } = await installed.get();
    const run = await checkServes([join(app, "node_modules/.bin/slotgate")], app, await cluster.get(), "bin");
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /runtime=node/);
  });

  it("npx slotgate serves on Node; SIGTERM to its process group stops slotgate", SLOW, async () => {
    // npm exec runs the bin through `sh -c` and forwards no SIGTERM: signalled alone, npx dies and
    // slotgate lives on. A terminal's Ctrl-C, or a group kill, reaches slotgate; npx itself then
    // dies of the signal, so only slotgate's shutdown and its closed port are checked here.
    const { app } = await installed.get();
    const run = await checkServes(["npx", "--no-install", "slotgate"], app, await cluster.get(), "npx", { signalGroup: true });
    assert.match(run.output, /runtime=node/);
    assert.match(run.output, /shutting down: .*why=SIGTERM[\s\S]*INFO shut down/);
  });

  it("bunx slotgate honours the bin's node shebang and serves on Node", SLOW, async () => {
    const { app } = await installed.get();
    const run = await checkServes([BUN, "x", "slotgate"], app, await cluster.get(), "bunx");
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /runtime=node/);
  });

  it("bunx --bun slotgate serves on Bun's own adapter", SLOW, async () => {
    const { app } = await installed.get();
    const run = await checkServes([BUN, "x", "--bun", "slotgate"], app, await cluster.get(), "bunx-bun");
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /runtime=bun/);
  });

  it("deno run -A npm:slotgate serves on Deno's own adapter, from the folder's node_modules", SLOW, async () => {
    const { app } = await installed.get();
    // --cached-only: the package must resolve from the folder's node_modules, not from the registry.
    const run = await checkServes([DENO, "run", "-A", "--cached-only", "npm:slotgate"], app, await cluster.get(), "deno");
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /runtime=deno/);
  });

  it("the package runs SLOTGATE_WORKERS=2 from its compiled files (worker threads on Bun and Deno, processes on Node)", { ...SLOW, skip: detectRuntime() !== "node" && "the same three commands from every runtime: run once, from Node's" }, async () => {
    const { app } = await installed.get();
    const commands: [string, string[]][] = [
      ["node", [join(app, "node_modules/.bin/slotgate")]],
      ["bun", [BUN, "x", "--bun", "slotgate"]],
      // Deno's reusePort is an unstable API: outside the repo (no deno.json) it takes --unstable-net.
      ["deno", [DENO, "run", "-A", "--unstable-net", "--cached-only", "npm:slotgate"]],
    ];
    for (const [runtime, command] of commands) {
      const run = await checkServes(command, app, await cluster.get(), `workers-${runtime}`, { env: { SLOTGATE_WORKERS: "2" } });
      assert.equal(run.code, 0, run.output);
      // The check may stop it before worker 1 is up: it is told to stop as soon as it listens.
      assert.match(run.output, new RegExp(`slotgate listening worker=1 .*runtime=${runtime}`), run.output);
      assert.match(run.output, /shut down worker=1/, run.output);
    }
  });
});
