/**
 * The entry point of the runtime running this test (adapters/<runtime>/main.ts), as a real
 * process: --help, bad configuration (exit 2, one line per problem, nothing listening), and a
 * proxy that serves a real cluster and drains and exits 0 on SIGTERM.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import net from "node:net";
import { existsSync, mkdtempSync, rmSync, writeFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, describe, it } from "node:test";
import { detectRuntime } from "../../adapters/current.ts";
import { startEntry, type Exit } from "../support/processes.ts";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { freePort } from "../../scripts/free-port.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp } from "../support/proxy.ts";

const SLOW = { timeout: 120_000 };


async function waitForPort(port: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe(`the ${detectRuntime()} entry point`, () => {
  const cluster = lazy(() => startLocalCluster());
  after(() => cluster.stop());

  it("--help prints usage and every variable, exit 0", SLOW, async () => {
    const run = await startEntry(["--help"], {}).done;
    assert.equal(run.code, 0);
    assert.match(run.stdout, /Usage: slotgate/);
    assert.match(run.stdout, /SLOTGATE_SEEDS/);
    assert.match(run.stdout, /SLOTGATE_OP_TIMEOUT_MS/);
  });

  it("bad configuration exits 2 with one line per problem and listens on nothing", SLOW, async () => {
    const port = await freePort();
    const run = await startEntry([], { SLOTGATE_LISTEN: `127.0.0.1:${port}`, SLOTGATE_OP_TIMEOUT_MS: "fast", SLOTGATE_SEEDS: "nope" }).done;
    assert.equal(run.code, 2);
    const lines = run.stderr.trim().split("\n");
    assert.equal(lines.length, 2, run.stderr);
    assert.match(run.stderr, /SLOTGATE_OP_TIMEOUT_MS="fast": expected a number of milliseconds/);
    assert.match(run.stderr, /SLOTGATE_SEEDS="nope": expected host:port/);
  });

  it("serves the cluster, then on SIGTERM answers what is in flight and exits 0", SLOW, async () => {
    const { seeds } = await cluster.get();
    const port = await freePort();
    const proxy = startEntry([], { SLOTGATE_LISTEN: `127.0.0.1:${port}`, SLOTGATE_ADMIN_LISTEN: "127.0.0.1:0", SLOTGATE_SEEDS: seeds.join(","), SLOTGATE_LOG_LEVEL: "info" });
    try {
      await waitForPort(port);
      const client = await RawClient.connect(port);
      let want = "";
      // Readiness: the first refresh may still be under way.
      await client.waitFor(() => true);
      for (let attempt = 0; ; attempt++) {
        client.received = Buffer.alloc(0);
        client.send(resp("SET", "entry:k", "v"));
        const reply = await client.waitFor((t) => t.endsWith("\r\n"));
        if (reply === "+OK\r\n") break;
        if (attempt > 100) assert.fail(`proxy never became ready: ${reply}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      client.received = Buffer.alloc(0);
      let batch = "";
      for (let i = 0; i < 2000; i++) {
        batch += resp("GET", "entry:k");
        want += "$1\r\nv\r\n";
      }
      client.send(batch);
      // process.kill, not child.kill: Deno's child_process reports no exit code for a child it signalled itself.
      process.kill(proxy.child.pid!, "SIGTERM");
      const run = await proxy.done;
      assert.equal(run.code, 0, proxy.output());
      // Whatever was read before shutdown is answered; the connection then closes.
      await client.waitClosed();
      const got = client.received.toString();
      assert.ok(want.startsWith(got), "replies are a prefix of what was asked, never garbage");
      assert.match(proxy.output(), /shutting down/);
    } finally {
      proxy.child.kill("SIGKILL");
    }
  });

  it("the config file is re-read when it changes and on SIGHUP; a bad file is reported and the running config stays", SLOW, async () => {
    const { seeds } = await cluster.get();
    const dir = mkdtempSync(join(tmpdir(), "slotgate-config-"));
    const file = join(dir, "slotgate.json");
    const write = (document: unknown) => {
      // Write then rename, as editors and config management do.
      writeFileSync(`${file}.tmp`, typeof document === "string" ? document : JSON.stringify(document));
      renameSync(`${file}.tmp`, file);
    };
    const [port, adminPort] = [await freePort(), await freePort()];
    write({ clusters: { main: { seeds } }, catchAll: "main" });
    const proxy = startEntry([], { SLOTGATE_CONFIG: file, SLOTGATE_LISTEN: `127.0.0.1:${port}`, SLOTGATE_ADMIN_LISTEN: `127.0.0.1:${adminPort}`, SLOTGATE_LOG_LEVEL: "info" });
    const names = async () => {
      const response = await fetch(`http://127.0.0.1:${adminPort}/clusters`);
      return ((await response.json()) as { clusters: { name: string }[] }).clusters.map((c) => c.name).sort().join(",");
    };
    const until = async (what: () => Promise<boolean>, label: string) => {
      for (let i = 0; i < 300; i++) {
        if (await what().catch(() => false)) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.fail(`timed out waiting for ${label}; output:\n${proxy.output()}`);
    };
    try {
      await waitForPort(adminPort);
      assert.equal(await names(), "main");
      write({ clusters: { main: { seeds }, other: { seeds: [seeds[0]] } }, routes: [{ prefix: "o:", cluster: "other" }], catchAll: "main" });
      await until(async () => (await names()) === "main,other", "the file change to add cluster 'other'");
      write("{ this is not json");
      await until(async () => /config reload rejected/.test(proxy.output()), "the bad file to be reported");
      assert.equal(await names(), "main,other", "the running config stays");
      process.kill(proxy.child.pid!, "SIGTERM");
      assert.equal((await proxy.done).code, 0, proxy.output());
    } finally {
      proxy.child.kill("SIGKILL");
    }
    // Without watching, only SIGHUP re-reads the file.
    const [port2, adminPort2] = [await freePort(), await freePort()];
    write({ clusters: { main: { seeds } }, catchAll: "main" });
    const hup = startEntry([], { SLOTGATE_CONFIG: file, SLOTGATE_CONFIG_WATCH: "off", SLOTGATE_LISTEN: `127.0.0.1:${port2}`, SLOTGATE_ADMIN_LISTEN: `127.0.0.1:${adminPort2}` });
    const names2 = async () => {
      const response = await fetch(`http://127.0.0.1:${adminPort2}/clusters`);
      return ((await response.json()) as { clusters: { name: string }[] }).clusters.map((c) => c.name).sort().join(",");
    };
    try {
      await waitForPort(adminPort2);
      write({ clusters: { main: { seeds }, other: { seeds: [seeds[0]] } }, routes: [{ prefix: "o:", cluster: "other" }], catchAll: "main" });
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await names2(), "main", "not re-read without SIGHUP");
      process.kill(hup.child.pid!, "SIGHUP");
      for (let i = 0; i < 300 && (await names2()) !== "main,other"; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(await names2(), "main,other", hup.output());
      process.kill(hup.child.pid!, "SIGTERM");
      assert.equal((await hup.done).code, 0, hup.output());
    } finally {
      hup.child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("npm start's script brings up a throwaway cluster and the proxy, and Ctrl-C removes both", SLOW, async () => {
    const port = await freePort();
    const [bin, ...pre] = (() => {
      switch (detectRuntime()) {
        case "bun":
          return [process.execPath];
        case "deno":
          return [process.execPath, "run", "-A"];
        default:
          return [process.execPath, "--import", "tsx"];
      }
    })();
    const child = spawn(bin!, [...pre, "scripts/start.ts"], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", SLOTGATE_LISTEN: `127.0.0.1:${port}`, SLOTGATE_ADMIN_LISTEN: "off" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout!.on("data", (d) => (output += d));
    child.stderr!.on("data", (d) => (output += d));
    const done = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    try {
      for (let i = 0; i < 600 && !/Connect with: redis-cli/.test(output); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(output, new RegExp(`Connect with: redis-cli -h 127\\.0\\.0\\.1 -p ${port}`), output);
      const dir = /data in (\S+)\)/.exec(output)?.[1];
      assert.ok(dir && existsSync(dir), `the cluster's temp dir exists: ${output}`);
      const client = await RawClient.connect(port);
      client.send(resp("SET", "start:k", "v") + resp("GET", "start:k"));
      assert.equal(await client.waitFor((t) => t.length >= 12), "+OK\r\n$1\r\nv\r\n");
      client.close();
      process.kill(child.pid!, "SIGINT");
      assert.equal(await done, 0, output);
      assert.equal(existsSync(dir!), false, "the temp dir is removed");
      const ports = [...output.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1])).filter((p) => p !== port);
      for (const p of new Set(ports)) {
        const open = await new Promise<boolean>((resolve) => {
          const socket = net.connect({ host: "127.0.0.1", port: p }, () => {
            socket.destroy();
            resolve(true);
          });
          socket.on("error", () => resolve(false));
        });
        assert.equal(open, false, `no redis-server left on ${p}`);
      }
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("the slotgate bin prints its usage", SLOW, async (t) => {
    if (detectRuntime() !== "node") return t.skip("the bin is the Node entry point");
    const run = await new Promise<Exit>((resolve) => {
      const child = spawn(process.execPath, ["bin/slotgate.mjs", "--help"], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      child.stdout!.on("data", (d) => (stdout += d));
      child.on("close", (code) => resolve({ code, stdout, stderr: "" }));
    });
    assert.equal(run.code, 0);
    assert.match(run.stdout, /Usage: slotgate/);
  });
});
