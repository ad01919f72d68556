/**
 * The single-file executable (`npm run build:binary`, `bun build --compile`): built into a temp
 * folder and moved alone into an empty one, it takes its arguments, and, configured by
 * environment variables only, serves a real cluster and exits 0 on SIGTERM. Checked whichever
 * runtime runs this file (the build uses this checkout's Bun).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { detectRuntime } from "../../adapters/current.ts";
import { buildBinary } from "../../scripts/build-binary.ts";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { lazy } from "../support/lazy.ts";
import { checkServes } from "../support/served.ts";

const SLOW = { timeout: 300_000 };

describe(`the single-file binary (test run on ${detectRuntime()})`, () => {
  const cluster = lazy(() => startLocalCluster({ replicasPerPrimary: 0 }));
  const dir = mkdtempSync(join(tmpdir(), "slotgate-binary-"));
  /** Built once, then alone in an empty folder: it must need neither the checkout nor a node_modules. */
  const binary = lazy(async () => {
    const built = join(dir, "build", "slotgate");
    const bytes = buildBinary(built);
    const alone = join(dir, "alone");
    mkdirSync(alone);
    renameSync(built, join(alone, "slotgate"));
    rmSync(join(dir, "build"), { recursive: true, force: true });
    return { dir: alone, path: join(alone, "slotgate"), bytes, stop: async () => {} };
  });
  after(async () => {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("bun build --compile makes one executable that takes its arguments", SLOW, async () => {
    const { path, bytes } = await binary.get();
    assert.ok(bytes > 10 * 1024 * 1024, `Bun's runtime is inside: ${bytes} bytes`);
    const help = await new Promise<string>((resolve, reject) =>
      execFile(path, ["--help"], { env: {} }, (error, stdout) => (error ? reject(error) : resolve(stdout))),
    );
    assert.match(help, /Usage: slotgate/);
    assert.match(help, /SLOTGATE_SEEDS/);
  });

  it("the binary serves a real cluster and exits 0 on SIGTERM", SLOW, async () => {
    const { dir: alone, path } = await binary.get();
    const run = await checkServes([path], alone, await cluster.get(), "binary");
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /runtime=bun/);
  });

  it("the binary runs SLOTGATE_WORKERS=2: its worker threads' entry is compiled in", SLOW, async () => {
    const { dir: alone, path } = await binary.get();
    const run = await checkServes([path], alone, await cluster.get(), "binary-workers", { env: { SLOTGATE_WORKERS: "2" } });
    assert.equal(run.code, 0, run.output);
    // The check may stop it before worker 1 is up: it is told to stop as soon as it listens.
    assert.match(run.output, /slotgate listening worker=1 .*runtime=bun/);
    assert.match(run.output, /shut down worker=1/);
  });
});
