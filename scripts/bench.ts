/**
 * `npm run bench`: redis-benchmark GET and SET, 50 clients, unpipelined and `-P 16`, straight to a
 * local cluster (`--cluster`) and through slotgate on Node, Bun and Deno, all in one run against
 * the same cluster; prints requests/s and the ratio to direct. Loopback only, bounded request
 * counts, and everything it starts is stopped at the end (also on failure).
 *
 * Variants of slotgate, each against the same cluster in the same run:
 *   plain      no client authentication (metrics on, the default);
 *   nometrics  as plain, with SLOTGATE_METRICS=off: the summary at the end gives the metrics'
 *              cost, plain against nometrics (requests/s ratio, CPU µs per request);
 *   auth   clients log in as a user with a key pattern and a category rule (`+@all -@dangerous`,
 *          `~key:*`), so every command pays the permission and key-pattern checks;
 *   tls    TLS on both sides: redis-benchmark --tls to slotgate's TLS port, slotgate to a second,
 *          TLS-only cluster; its ratios are against redis-benchmark --tls --cluster to that cluster.
 * Besides requests/s, each slotgate row gives the proxy's CPU time per 1,000 requests (user +
 * system, from /proc), steadier than throughput on a shared machine.
 *
 * Options: --requests N (per unpipelined run, default 100000; pipelined runs use 5N)
 *          --runtimes node,bun,deno   --clients N (default 50)   --variants plain,nometrics,auth,tls
 *          --rounds N (default 1): every variant N times per runtime, interleaved; the metrics
 *          summary takes the median of the rounds (on a shared machine one run varies by ±30%)
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import net from "node:net";
import process from "node:process";
import { promisify } from "node:util";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalCluster, type LocalCluster } from "./local-cluster.ts";
import { freePort } from "./free-port.ts";
import { makeTestCerts, type TestCerts } from "./tls-certs.ts";
import tls from "node:tls";

const run = promisify(execFile);

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1]! : fallback;
}

const requests = Number(option("requests", "100000"));
const clients = Number(option("clients", "50"));
const runtimes = option("runtimes", "node,bun,deno").split(",");
const variants = option("variants", "plain,nometrics,auth,tls").split(",");
const rounds = Number(option("rounds", "1"));

/** The user the `auth` variant logs in as: a key pattern and a category rule to check per command. */
const BENCH_USER = { name: "bench", password: "bench-password" };
const AUTH_CONFIG = {
  users: { [BENCH_USER.name]: { passwords: [BENCH_USER.password], commands: ["+@all", "-@dangerous"], keys: ["~key:*"], channels: [] } },
};

const SERVE: Record<string, string[]> = {
  node: [process.execPath, "--import", "tsx", "adapters/node/main.ts"],
  bun: ["node_modules/.bin/bun", "adapters/bun/main.ts"],
  deno: ["node_modules/.bin/deno", "run", "-A", "adapters/deno/main.ts"],
};

interface Result {
  target: string;
  test: string;
  pipeline: number;
  rps: number;
  /** Proxy CPU milliseconds per 1,000 requests (null for direct). */
  cpuPerK: number | null;
}

/** CPU time (user + system) of process `pid` so far, in milliseconds. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat (utime, stime), counted from the state field (3): indexes 11 and 12.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** One redis-benchmark run per test (SET, then GET), with the proxy's CPU time per run when `pid` is given. */
async function benchmark(port: number, cluster: boolean, pipeline: number, pid: number | null, extra: string[] = []): Promise<{ test: string; rps: number; cpuPerK: number | null }[]> {
  const n = pipeline > 1 ? requests * 5 : requests;
  const out: { test: string; rps: number; cpuPerK: number | null }[] = [];
  for (const test of ["set", "get"]) {
    const args = ["-h", "127.0.0.1", "-p", String(port), "-t", test, "-c", String(clients), "-n", String(n), "-P", String(pipeline), "-r", "100000", "--csv", ...extra];
    if (cluster) args.push("--cluster");
    const before = pid === null ? 0 : cpuMs(pid);
    const { stdout } = await run("redis-benchmark", args, { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 });
    const cpuPerK = pid === null ? null : ((cpuMs(pid) - before) * 1000) / n;
    for (const line of stdout.split("\n")) {
      const cells = line.split(",").map((c) => c.replace(/"/g, ""));
      if (cells[0] === test.toUpperCase()) out.push({ test: cells[0], rps: Number(cells[1]), cpuPerK });
    }
  }
  return out;
}

/** Wait until slotgate on `port` serves a SET (after logging in as `user`, when given). */
async function ready(port: number, user: { name: string; password: string } | null, ca: string | null = null): Promise<void> {
  const resp = (...args: string[]) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`;
  const request = (user ? resp("AUTH", user.name, user.password) : "") + resp("SET", "key:ready", "1");
  const replies = user ? 2 : 1;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      let got = "";
      const socket: net.Socket = ca === null ? net.connect({ host: "127.0.0.1", port }, () => socket.write(request)) : tls.connect({ host: "127.0.0.1", port, ca }, () => socket.write(request));
      socket.on("data", (d: Buffer) => {
        got += d.toString();
        if (got.split("\r\n").length - 1 < replies) return;
        socket.destroy();
        resolve(got === "+OK\r\n".repeat(replies));
      });
      socket.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`slotgate on port ${port} did not become ready`);
}

const results: Result[] = [];
let cluster: LocalCluster | null = null;
let tlsCluster: LocalCluster | null = null;
let certs: TestCerts | null = null;
let proxy: ChildProcess | null = null;
const dir = mkdtempSync(join(tmpdir(), "slotgate-bench-"));
try {
  cluster = await startLocalCluster({ replicasPerPrimary: 0 });
  const seed = cluster.nodes[0]!.port;
  for (const pipeline of [1, 16]) {
    for (const r of await benchmark(seed, true, pipeline, null)) results.push({ target: "direct", pipeline, ...r });
  }
  if (variants.includes("tls")) {
    certs = makeTestCerts();
    tlsCluster = await startLocalCluster({ replicasPerPrimary: 0, tls: { caFile: certs.caFile, certFile: certs.server.certFile, keyFile: certs.server.keyFile } });
    const tlsArgs = ["--tls", "--cacert", certs.caFile];
    for (const pipeline of [1, 16]) {
      for (const r of await benchmark(tlsCluster.nodes[0]!.port, true, pipeline, null, tlsArgs)) results.push({ target: "direct/tls", pipeline, ...r });
    }
  }
  const authFile = join(dir, "auth.json");
  writeFileSync(authFile, JSON.stringify(AUTH_CONFIG));
  for (const runtime of runtimes) {
    for (let round = 0; round < rounds; round++) for (const variant of variants) {
      const [bin, ...args] = SERVE[runtime]!;
      const port = await freePort();
      const env: Record<string, string> = { SLOTGATE_SEEDS: cluster.seeds.join(","), SLOTGATE_LISTEN: `127.0.0.1:${port}`, SLOTGATE_ADMIN_LISTEN: "off", SLOTGATE_LOG_LEVEL: "warn" };
      const login: string[] = [];
      let clientPort = port;
      let ca: string | null = null;
      if (variant === "auth") {
        env.SLOTGATE_CONFIG = authFile;
        login.push("--user", BENCH_USER.name, "-a", BENCH_USER.password);
      } else if (variant === "tls") {
        clientPort = await freePort();
        ca = certs!.ca;
        Object.assign(env, {
          SLOTGATE_SEEDS: tlsCluster!.seeds.join(","),
          SLOTGATE_UPSTREAM_TLS: "on",
          SLOTGATE_UPSTREAM_TLS_CA: certs!.caFile,
          SLOTGATE_TLS_LISTEN: `127.0.0.1:${clientPort}`,
          SLOTGATE_TLS_CERT: certs!.server.certFile,
          SLOTGATE_TLS_KEY: certs!.server.keyFile,
        });
        login.push("--tls", "--cacert", certs!.caFile);
      } else if (variant === "nometrics") {
        env.SLOTGATE_METRICS = "off";
      } else if (variant !== "plain") {
        throw new Error(`unknown variant '${variant}' (plain, nometrics, auth, tls)`);
      }
      proxy = spawn(bin!, args, { env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit"] });
      await ready(clientPort, variant === "auth" ? BENCH_USER : null, ca);
      const target = `slotgate/${runtime}${variant === "plain" ? "" : `+${variant}`}`;
      for (const pipeline of [1, 16]) {
        for (const r of await benchmark(clientPort, false, pipeline, proxy.pid!, login)) results.push({ target, pipeline, ...r });
      }
      proxy.kill("SIGTERM");
      await new Promise((r) => proxy!.once("close", r));
      proxy = null;
    }
  }
} finally {
  proxy?.kill("SIGKILL");
  await cluster?.stop();
  await tlsCluster?.stop();
  certs?.remove();
  rmSync(dir, { recursive: true, force: true });
}

const direct = (target: string, test: string, pipeline: number) => results.find((r) => r.target === target && r.test === test && r.pipeline === pipeline)?.rps ?? NaN;
console.log(`\nredis-benchmark, ${clients} clients, ${requests} requests (x5 pipelined), 3-primary local cluster\n`);
console.log(`${"target".padEnd(22)} ${"test".padEnd(5)} ${"pipeline".padEnd(9)} ${"requests/s".padStart(12)} ${"vs direct".padStart(10)} ${"CPU ms/1k".padStart(10)}`);
for (const r of results) {
  // TLS rows are compared with TLS straight to the TLS cluster; the rest with plain TCP.
  const ratio = r.rps / direct(r.target.endsWith("tls") ? "direct/tls" : "direct", r.test, r.pipeline);
  const cpu = r.cpuPerK === null ? "" : r.cpuPerK.toFixed(1);
  console.log(`${r.target.padEnd(22)} ${r.test.padEnd(5)} ${String(r.pipeline).padEnd(9)} ${r.rps.toFixed(0).padStart(12)} ${ratio.toFixed(2).padStart(10)} ${cpu.padStart(10)}`);
}

// The metrics' cost: slotgate with metrics on (plain) against off (nometrics), same run, same
// cluster; with several rounds, the median of each.
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const medianOf = (target: string, test: string, pipeline: number): Result | undefined => {
  const rows = results.filter((r) => r.target === target && r.test === test && r.pipeline === pipeline);
  if (rows.length === 0) return undefined;
  return { target, test, pipeline, rps: median(rows.map((r) => r.rps)), cpuPerK: rows.some((r) => r.cpuPerK === null) ? null : median(rows.map((r) => r.cpuPerK!)) };
};
if (variants.includes("plain") && variants.includes("nometrics")) {
  console.log(`\nmetrics overhead: metrics on (plain) vs off (nometrics)${rounds > 1 ? `, median of ${rounds} rounds` : ""}\n`);
  console.log(`${"runtime".padEnd(8)} ${"test".padEnd(5)} ${"pipeline".padEnd(9)} ${"rps on/off".padStart(11)} ${"CPU µs/req on".padStart(14)} ${"off".padStart(6)} ${"CPU on/off".padStart(11)}`);
  for (const runtime of runtimes) {
    for (const [test, pipeline] of [["SET", 1], ["GET", 1], ["SET", 16], ["GET", 16]] as const) {
      const on = medianOf(`slotgate/${runtime}`, test, pipeline);
      const off = medianOf(`slotgate/${runtime}+nometrics`, test, pipeline);
      if (!on || !off || on.cpuPerK === null || off.cpuPerK === null) continue;
      // CPU ms per 1,000 requests is CPU µs per request.
      console.log(
        `${runtime.padEnd(8)} ${on.test.padEnd(5)} ${String(on.pipeline).padEnd(9)} ${(on.rps / off.rps).toFixed(3).padStart(11)} ${on.cpuPerK.toFixed(2).padStart(14)} ${off.cpuPerK.toFixed(2).padStart(6)} ${(on.cpuPerK / off.cpuPerK).toFixed(3).padStart(11)}`,
      );
    }
  }
}
