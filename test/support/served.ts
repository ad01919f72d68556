/**
 * Runs a slotgate command as a user would (an installed package, a compiled binary) and checks
 * that it serves: configured by environment variables only, it answers PING, a SET/GET goes
 * through to a real cluster (the key is read back from the node that owns it), and SIGTERM
 * stops it with exit 0, leaving nothing listening. Works on Node, Bun and Deno.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { keySlot } from "../../src/backends/cluster/slot.ts";
import { freePort } from "../../scripts/free-port.ts";
import type { LocalCluster } from "../../scripts/local-cluster.ts";
import { RespConn, sleep } from "../../scripts/proxy-process.ts";

export interface ServeCheck {
  /** How the spawned process itself ended after SIGTERM. */
  code: number | null;
  signal: string | null;
  /** What it logged (stderr and stdout), for further assertions. */
  output: string;
}

export interface ServeOptions {
  /**
   * Send SIGTERM to the whole process group, as a terminal's Ctrl-C or a supervisor's group kill
   * does, rather than to the spawned process only. For wrappers that do not forward signals.
   */
  signalGroup?: boolean;
  /** More variables for the command (`SLOTGATE_WORKERS`, say). */
  env?: Record<string, string>;
}

/**
 * Start `command` in `cwd` in front of `cluster`, check it serves, SIGTERM it, and return how it
 * ended and its output. Fails (with the output) if it never answers, answers wrongly, or leaves
 * anything running: a process still holding its output, or its port still accepting.
 */
export async function checkServes(command: readonly string[], cwd: string, cluster: LocalCluster, label: string, options: ServeOptions = {}): Promise<ServeCheck> {
  const port = await freePort();
  const [bin, ...args] = command;
  const child = spawn(bin!, args, {
    cwd,
    // Only what a shell would pass on, plus slotgate's own variables: no NODE_OPTIONS or tsx
    // loader inherited from the test runner.
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      SLOTGATE_SEEDS: cluster.seeds.join(","),
      SLOTGATE_LISTEN: `127.0.0.1:${port}`,
      SLOTGATE_ADMIN_LISTEN: "127.0.0.1:0",
      SLOTGATE_LOG_LEVEL: "info",
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
    // A process group of its own, so that whatever a wrapper starts can be signalled (and, on
    // failure, killed) with it.
    detached: true,
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  let exited = false;
  const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on("exit", (code, signal) => {
      exited = true;
      resolve({ code, signal });
    }),
  );
  // "close" comes once every process holding the output pipes (the wrapper's children too) is gone.
  const closed = new Promise<void>((resolve) => child.on("close", () => resolve()));
  const fail = (what: string): never => assert.fail(`${label}: ${what}\n--- output ---\n${output}`);
  try {
    const conn = await connectWhenServing(port, () => exited, fail);
    try {
      assert.equal(await conn.command("PING"), "+PONG\r\n", label);
      // The first refresh of the slot map may still be under way: retry until the SET lands.
      const key = `package:${label}`;
      const value = `served-by-${label}`;
      for (let attempt = 0; ; attempt++) {
        const reply = await conn.command("SET", key, value);
        if (reply === "+OK\r\n") break;
        if (attempt > 300 || exited) fail(`SET never succeeded: ${JSON.stringify(reply)}`);
        await sleep(100);
      }
      assert.equal(await conn.command("GET", key), `$${value.length}\r\n${value}\r\n`, label);
      const owner = await cluster.ownerOfSlot(keySlot(new TextEncoder().encode(key)));
      assert.equal(await cluster.command(owner.port, "GET", key), value, `${label}: the value is in the cluster`);
    } finally {
      conn.close();
    }
    // process.kill, not child.kill: Deno's child_process reports no exit code for a child it signalled itself.
    process.kill(options.signalGroup ? -child.pid! : child.pid!, "SIGTERM");
    const ended = await exit;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const gone = await Promise.race([closed.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(resolve, 30_000, false)))]);
    clearTimeout(timer);
    if (!gone) fail("a process it started still holds its output 30 s after it exited");
    // The server behind a wrapper must be gone too, not only the wrapper.
    const stillListening = await RespConn.open(port).then((c) => (c.close(), true), () => false);
    if (stillListening) fail(`port ${port} still accepts connections after exit`);
    return { ...ended, output };
  } finally {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // The group is empty: everything exited.
    }
  }
}
/** Poll `port` until a connection opens and answers PING, or the process exits (60 s at most). */
async function connectWhenServing(port: number, exited: () => boolean, fail: (what: string) => never): Promise<RespConn> {
  const deadline = Date.now() + 60_000;
  while (!exited()) {
    const conn = await RespConn.open(port).catch(() => null);
    if (conn) return conn;
    if (Date.now() > deadline) fail(`nothing listening on ${port} after 60 s`);
    await sleep(50);
  }
  return fail("exited before serving");
}
