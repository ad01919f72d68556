/**
 * The container image's steps, outside a container: deploy/image/slotgate-image.sh, the script
 * the Dockerfile runs, builds and packs slotgate, installs the tarball into an empty temp folder,
 * and runs it from there on the runtime running this test (the image's RUNTIME), configured by
 * environment variables only, as in the image but on loopback free ports: it serves a real
 * password-protected cluster behind its own password, answers the image's health check, and
 * exits 0 on SIGTERM.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { parseAllDocuments } from "yaml";
import { detectRuntime } from "../../adapters/current.ts";
import { freePort } from "../../scripts/free-port.ts";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { lazy } from "../support/lazy.ts";
import { until, within } from "../support/within.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const SCRIPT = join(ROOT, "deploy/image/slotgate-image.sh");
const RUNTIME = detectRuntime();
const SLOW = { timeout: 300_000 };
// The packed package runs without tsx only once `npm run build` exists (the pack branch).
const NO_BUILD = !(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts?: Record<string, string> }).scripts?.build;
const SKIP = { ...SLOW, skip: NO_BUILD && "package.json has no build script yet: the packed package would need tsx" };

/** PATH with this repo's bun and deno and the running runtime first, then the system's. */
const PATH = [join(ROOT, "node_modules/.bin"), dirname(process.execPath), process.env.PATH ?? ""].join(delimiter);

interface Exit {
  code: number | null;
  output: string;
}

/** Start `sh slotgate-image.sh ...args` with exactly `env` (plus PATH and HOME). */
function script(args: string[], env: Record<string, string> = {}) {
  const child = spawn("sh", [SCRIPT, ...args], {
    env: { PATH, HOME: process.env.HOME ?? "/tmp", IMAGE_RUNTIME: RUNTIME, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const exit = new Promise<Exit>((resolve) => child.on("close", (code) => resolve({ code, output })));
  return { child, exit, output: () => output };
}

/** The ENV defaults of the Dockerfile's final stage, as the image sets them. */
function imageDefaults(): Record<string, string> {
  const lines = readFileSync(join(ROOT, "Dockerfile"), "utf8").replace(/\\\n/g, " ").split("\n");
  const env: Record<string, string> = {};
  for (const line of lines.filter((l) => /^ENV\s/.test(l))) {
    for (const [, key, value] of line.matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)) if (key!.startsWith("SLOTGATE_")) env[key!] = value!;
  }
  return env;
}

describe(`the image's steps on ${RUNTIME}`, () => {
  const dir = mkdtempSync(join(tmpdir(), "slotgate-image-"));
  const app = join(dir, "app");
  // build + install once per runtime's run of this file.
  const installed = lazy(async () => {
    const build = await script(["build", ROOT, join(dir, "pack")]).exit;
    assert.equal(build.code, 0, build.output);
    const tarballs = readdirSync(join(dir, "pack")).filter((f) => f.endsWith(".tgz"));
    assert.equal(tarballs.length, 1, `one tarball: ${tarballs.join(", ")}`);
    const install = await script(["install", join(dir, "pack", tarballs[0]!), app]).exit;
    assert.equal(install.code, 0, install.output);
    return { stop: async () => {} };
  });
  const password = "cluster-pw";
  const cluster = lazy(() => startLocalCluster({ auth: { password } }));
  after(async () => {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("build packs slotgate and install puts it, without dev dependencies, into an empty folder", SKIP, async () => {
    await installed.get();
    assert.ok(existsSync(join(app, "node_modules/slotgate/bin/slotgate.mjs")));
    for (const dev of ["tsx", "typescript", "ioredis", "bun", "deno"]) assert.ok(!existsSync(join(app, "node_modules", dev)), `no ${dev}`);
    // Never on top of something else.
    const busy = join(dir, "busy");
    mkdirSync(busy);
    writeFileSync(join(busy, "x"), "");
    const refused = await script(["install", join(dir, "pack", readdirSync(join(dir, "pack"))[0]!), busy]).exit;
    assert.equal(refused.code, 2);
    assert.match(refused.output, /is not empty/);
  });

  it("with the image's defaults and no password, slotgate refuses to start (protected mode)", SKIP, async () => {
    await installed.get();
    const defaults = imageDefaults();
    assert.equal(defaults.SLOTGATE_LISTEN, "0.0.0.0:6380");
    // Same hosts as the image, free ports; the refusal comes before anything listens.
    const env = { ...defaults, SLOTGATE_LISTEN: `0.0.0.0:${await freePort()}`, SLOTGATE_ADMIN_LISTEN: `0.0.0.0:${await freePort()}`, SLOTGATE_SEEDS: "127.0.0.1:1" };
    const run = await script(["run"], { IMAGE_APP_DIR: app, ...env }).exit;
    assert.equal(run.code, 2, run.output);
    assert.match(run.output, /SLOTGATE_LISTEN="0\.0\.0\.0:\d+": is not a loopback address and no client authentication is configured/);
  });

  it("run passes its arguments: --check-config accepts the Kubernetes ConfigMap with the Secret's files", SKIP, async () => {
    await installed.get();
    const docs = (name: string) => parseAllDocuments(readFileSync(join(ROOT, "deploy/kubernetes", name), "utf8"), { version: "1.1" }).map((d) => d.toJS());
    const configMap = docs("configmap.yaml")[0] as { data: Record<string, string> };
    const secret = docs("secret.yaml")[0] as { stringData: Record<string, string> };
    const secrets = join(dir, "k8s-secrets");
    mkdirSync(secrets, { recursive: true });
    const env: Record<string, string> = { ...configMap.data };
    for (const [key, value] of Object.entries(secret.stringData)) writeFileSync(join(secrets, key), value);
    env.SLOTGATE_REQUIREPASS_FILE = join(secrets, "requirepass");
    env.SLOTGATE_ADMIN_TOKEN_FILE = join(secrets, "admin-token");
    env.SLOTGATE_UPSTREAM_PASSWORD_FILE = join(secrets, "redis-password");
    const check = await script(["run", "--check-config"], { IMAGE_APP_DIR: app, ...env }).exit;
    assert.equal(check.code, 0, check.output);
    assert.match(check.output, /config OK/);
  });

  it("health tells alive from ready: /healthz answers while /readyz fails with no reachable seed", SKIP, async () => {
    await installed.get();
    const [port, adminPort, deadSeed] = [await freePort(), await freePort(), await freePort()];
    const admin = { SLOTGATE_ADMIN_LISTEN: `127.0.0.1:${adminPort}` };
    const proxy = script(["run"], { IMAGE_APP_DIR: app, SLOTGATE_LISTEN: `127.0.0.1:${port}`, ...admin, SLOTGATE_SEEDS: `127.0.0.1:${deadSeed}` });
    try {
      const health = async (...path: string[]) => (await script(["health", ...path], admin).exit).code;
      await until(`/healthz through the image script; output:\n${proxy.output()}`, async () => (await health()) === 0, 120_000);
      assert.equal(await health("/readyz"), 1, "not ready: no slot map");
      process.kill(proxy.child.pid!, "SIGTERM");
      assert.equal((await within(proxy.exit, "exit after SIGTERM", 60_000)).code, 0, proxy.output());
    } finally {
      proxy.child.kill("SIGKILL");
    }
  });

  it("run serves a real cluster configured by env vars and secret files only, and exits 0 on SIGTERM", SKIP, async () => {
    await installed.get();
    const { seeds } = await cluster.get();
    const secrets = join(dir, "secrets");
    mkdirSync(secrets, { recursive: true });
    // As Kubernetes mounts a Secret: one file per key, trailing newline included.
    writeFileSync(join(secrets, "requirepass"), "proxy-pw\n");
    writeFileSync(join(secrets, "admin-token"), "admin-token\n");
    writeFileSync(join(secrets, "redis-password"), `${password}\n`);
    const [port, adminPort] = [await freePort(), await freePort()];
    const admin = `127.0.0.1:${adminPort}`;
    const proxy = script(["run"], {
      IMAGE_APP_DIR: app,
      SLOTGATE_LISTEN: `127.0.0.1:${port}`,
      SLOTGATE_ADMIN_LISTEN: admin,
      SLOTGATE_SEEDS: seeds.join(","),
      SLOTGATE_REQUIREPASS_FILE: join(secrets, "requirepass"),
      SLOTGATE_ADMIN_TOKEN_FILE: join(secrets, "admin-token"),
      SLOTGATE_UPSTREAM_PASSWORD_FILE: join(secrets, "redis-password"),
      SLOTGATE_LOG_LEVEL: "info",
    });
    const client = new Redis({ host: "127.0.0.1", port, password: "proxy-pw", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on("error", () => {});
    try {
      // The HEALTHCHECK (alive), then readiness (a complete slot map), as Compose's check asks.
      const health = async (path?: string, env: Record<string, string> = { SLOTGATE_ADMIN_LISTEN: admin }) =>
        (await script(["health", ...(path ? [path] : [])], env).exit).code === 0;
      await until(`/healthz through the image script; output:\n${proxy.output()}`, () => health(), 120_000);
      await until("/readyz", () => health("/readyz"), 120_000);
      // A wildcard admin address (the image's default) is checked on loopback.
      assert.ok(await health(undefined, { SLOTGATE_ADMIN_LISTEN: `0.0.0.0:${adminPort}` }));
      // The admin token came from its file: other routes need it.
      assert.equal((await fetch(`http://${admin}/clusters`)).status, 401);
      const clusters = await fetch(`http://${admin}/clusters`, { headers: { authorization: "Bearer admin-token" } });
      assert.equal(clusters.status, 200);
      await clusters.body?.cancel();

      await client.connect();
      assert.equal(await client.ping(), "PONG");
      for (let i = 0; i < 50; i++) assert.equal(await client.set(`image:${i}`, `v${i}`), "OK");
      for (let i = 0; i < 50; i++) assert.equal(await client.get(`image:${i}`), `v${i}`);
      client.disconnect();

      // process.kill, not child.kill: Deno's child_process reports no exit code for a child it signalled itself.
      process.kill(proxy.child.pid!, "SIGTERM");
      // Bounded: if the script did not exec the runtime, sh would sit on the signal and never exit.
      const exit = await within(proxy.exit, `exit after SIGTERM; output:\n${proxy.output()}`, 60_000);
      assert.equal(exit.code, 0, exit.output);
      assert.match(exit.output, /shutting down/);
      assert.equal(await health(), false, "nothing answers once it stopped");
    } finally {
      client.disconnect();
      proxy.child.kill("SIGKILL");
    }
  });
});
