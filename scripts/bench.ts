/**
 * `npm run bench`: one run, on one machine, of everything issue 14 judges performance by.
 * Loopback only; every load is bounded and stops by itself; everything started is stopped at the
 * end, also on failure and on Ctrl-C (SIGINT/SIGTERM).
 *
 * 1. Throughput and CPU ("rows"): redis-benchmark GET and SET, `--clients` clients, unpipelined
 *    (P1) and `-P 16` (P16), against:
 *      direct        a local 3-primary cluster, `redis-benchmark --cluster`;
 *      redis         one standalone redis-server, straight;
 *      twemproxy     nutcracker in front of that one redis-server (its pool has that one server);
 *      slotgate/R    slotgate on runtime R (node, bun, deno) in front of the cluster, per variant:
 *        plain      no client authentication, metrics on (the default);
 *        nometrics  SLOTGATE_METRICS=off; a summary compares it with plain (the metrics' cost);
 *        auth       clients log in as a user with a key pattern and a category rule
 *                   (`+@all -@dangerous`, `~key:*`), so every command pays the permission checks;
 *        tls        TLS on both sides: redis-benchmark --tls to slotgate's TLS port, slotgate to a
 *                   second, TLS-only cluster; compared with `direct/tls` (--tls --cluster to it);
 *        workers    SLOTGATE_WORKERS=--workers (default: the machine's cores)
 *    The redis and twemproxy rows need nutcracker (Debian: apt-get install nutcracker; `npm run
 *    setup` installs it); without it they are skipped with a note.
 *    CPU columns, in µs per request (user + system time from /proc/<pid>/stat, of the process and
 *    its children, over the redis-benchmark run, divided by its requests; redis-benchmark's own
 *    CPU is never counted):
 *      all    every serving process: direct = the cluster's primaries; redis = the redis-server;
 *             twemproxy = nutcracker + the redis-server; slotgate = slotgate + the primaries of the
 *             cluster it serves (the TLS cluster for tls);
 *      proxy  the proxy alone: nutcracker, or slotgate; empty for the direct rows.
 *    Ratios: "vs base" is requests/s against the same test straight to what the proxy fronts
 *    (slotgate: direct cluster; tls: direct/tls; twemproxy: the one redis); "/twemproxy" is the
 *    proxy's own CPU per request over twemproxy's own (the issue's target: "Node CPU / twemproxy
 *    CPU" ≤ 1.25 at P1 and P16; a summary prints it per runtime, as medians over the rounds).
 * 2. Idle clients ("idle"): `--idle-clients N` (default 10,000, lowered with a note when `ulimit -n`
 *    is too small) connections to slotgate on each runtime (and to nutcracker, for reference), one
 *    PING each, then idle; VmRSS of the server before and after, and KiB per client.
 * 3. Added latency ("latency"): an open-loop GET load (scripts/open-loop.ts; `--latency-rate` per
 *    second, default 20,000, over `--latency-connections` 50, for `--latency-seconds` 5 of which
 *    the first second is not counted) of one key straight to the primary owning its slot, then
 *    through slotgate, per runtime (and to the one redis, then through nutcracker); p50/p99/p99.9
 *    of each and "added" = through the proxy − direct.
 *
 * 4. The metrics' cost ("metrics"): on each runtime, slotgate with metrics on and slotgate with
 *    SLOTGATE_METRICS=off run side by side in front of the same cluster, and every test (SET/GET,
 *    P1/P16, `--requests` / 2 each, x5 pipelined) loads both at the same time, half the clients
 *    each, `--metrics-pairs` times (default 7). Each pair gives on/off ratios of requests/s and of
 *    the proxy's CPU per request; the summary prints their medians, the issue 13 target being a
 *    throughput cost ≤ 5% (on/off ≥ 0.95). Both live through the same moments of a shared machine,
 *    so its drift cancels out, which runs one after the other (the rows' medians) cannot do. An
 *    A/A run (both with metrics on) gives medians within ±3% on this 2-core machine: the noise floor.
 *
 * Performance is judged from these figures, never asserted by a timed test. The machine may be
 * shared: requests/s and latency are noisy; CPU µs per request is the steadier figure.
 *
 * Options: --requests N (per unpipelined run, default 100000; pipelined runs use 5N)
 *          --runtimes node,bun,deno   --clients N (default 50)   --rounds N (default 1; every
 *          target N times, interleaved; summaries take the median)
 *          --variants plain,nometrics,auth,tls,workers   --workers N
 *          --sections rows,idle,latency,metrics   --metrics-pairs N
 *          --idle-clients N   --latency-rate N   --latency-connections N   --latency-seconds N
 *          --json FILE (every figure, with commit, date and cores)   --compare OLD.json
 */
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import tls from "node:tls";
import { keySlot } from "../src/backends/cluster/slot.ts";
import { compareWith, median, medianRow, type BenchReport, type BenchRow, type IdleFigure, type LatencyFigure, type MetricsCostFigure } from "./bench-figures.ts";
import { freePort } from "./free-port.ts";
import { idleClientLimit, measureIdleClients } from "./idle-clients.ts";
import { startLocalCluster, startStandaloneRedis, type LocalCluster, type StandaloneRedis } from "./local-cluster.ts";
import { openLoop, type OpenLoopResult } from "./open-loop.ts";
import { cpuMs } from "./proc-cpu.ts";
import { option, serveCommand, startProxyProcess, type ProxyProcess } from "./proxy-process.ts";
import { makeTestCerts, type TestCerts } from "./tls-certs.ts";

const requests = Number(option("requests", "100000"));
const clients = Number(option("clients", "50"));
const runtimes = option("runtimes", "node,bun,deno").split(",");
const variants = option("variants", "plain,nometrics,auth,tls,workers").split(",");
const rounds = Number(option("rounds", "1"));
const sections = option("sections", "rows,idle,latency,metrics").split(",");
const metricsPairs = Number(option("metrics-pairs", "7"));
const workers = option("workers", String(cpus().length));
const idleWanted = Number(option("idle-clients", "10000"));
const latencyRate = Number(option("latency-rate", "20000"));
const latencyConnections = Number(option("latency-connections", "50"));
const latencySeconds = Number(option("latency-seconds", "5"));
const jsonFile = option("json", "");
const compareFile = option("compare", "");
for (const variant of variants) {
  if (!["plain", "nometrics", "auth", "tls", "workers"].includes(variant)) throw new Error(`unknown variant '${variant}' (plain, nometrics, auth, tls, workers)`);
}
for (const section of sections) {
  if (!["rows", "idle", "latency", "metrics"].includes(section)) throw new Error(`unknown section '${section}' (rows, idle, latency, metrics)`);
}

/** The user the `auth` variant logs in as: a key pattern and a category rule to check per command. */
const BENCH_USER = { name: "bench", password: "bench-password" };
const AUTH_CONFIG = {
  users: { [BENCH_USER.name]: { passwords: [BENCH_USER.password], commands: ["+@all", "-@dangerous"], keys: ["~key:*"], channels: [] } },
};

const HAVE_NUTCRACKER = (() => {
  try {
    execFileSync("nutcracker", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

// ---- Stopping everything: a stack of teardowns, run once, in reverse, on the way out or on a signal.

const teardowns: (() => Promise<void> | void)[] = [];
let stopping: Promise<void> | null = null;
/** Tools running now (redis-benchmark), killed first by stopAll. */
const tools = new Set<ChildProcess>();
function stopAll(): Promise<void> {
  stopping ??= (async () => {
    for (const child of tools) child.kill("SIGKILL");
    while (teardowns.length > 0) {
      try {
        await teardowns.pop()!();
      } catch (error) {
        console.error(`bench: cleanup: ${(error as Error).message}`);
      }
    }
  })();
  return stopping;
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.error(`\nbench: ${signal}: stopping everything it started`);
    void stopAll().finally(() => process.exit(130));
  });
}

function runTool(command: string, args: string[]): Promise<string> {
  return new Promise((done, fail) => {
    if (stopping) return fail(new Error("stopping"));
    const child = execFile(command, args, { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      tools.delete(child);
      if (error) fail(new Error(`${command} ${args.join(" ")}: ${error.message}\n${stderr}`));
      else done(stdout);
    });
    tools.add(child);
  });
}

// ---- redis-benchmark.

interface Serving {
  /** Every serving process (CPU "all"). */
  all: number[];
  /** The proxy's process, if any (CPU "proxy"). */
  proxy: number | null;
}

/** One redis-benchmark run per test (SET, then GET), with the serving processes' CPU per request. */
async function benchmark(port: number, cluster: boolean, pipeline: number, serving: Serving, extra: string[] = []): Promise<TestResult[]> {
  const n = pipeline > 1 ? requests * 5 : requests;
  const out: TestResult[] = [];
  for (const test of ["set", "get"]) {
    const result = await benchmarkTest(port, cluster, test, pipeline, n, serving, extra);
    if (result) out.push(result);
  }
  return out;
}

interface TestResult {
  test: string;
  rps: number;
  cpuAll: number;
  cpuProxy: number | null;
}

/** One redis-benchmark run of `test` ("set", "get") with `n` requests over `clientCount` clients; undefined if it printed no figure. */
async function benchmarkTest(port: number, cluster: boolean, test: string, pipeline: number, n: number, serving: Serving, extra: string[] = [], clientCount = clients): Promise<TestResult | undefined> {
  const args = ["-h", "127.0.0.1", "-p", String(port), "-t", test, "-c", String(clientCount), "-n", String(n), "-P", String(pipeline), "-r", "100000", "--csv", ...extra];
  if (cluster) args.push("--cluster");
  const allBefore = cpuMs(serving.all);
  const proxyBefore = serving.proxy === null ? 0 : cpuMs([serving.proxy]);
  const stdout = await runTool("redis-benchmark", args);
  // CPU ms per 1,000 requests is CPU µs per request.
  const cpuAll = ((cpuMs(serving.all) - allBefore) * 1000) / n;
  const cpuProxy = serving.proxy === null ? null : ((cpuMs([serving.proxy]) - proxyBefore) * 1000) / n;
  for (const line of stdout.split("\n")) {
    const cells = line.split(",").map((c) => c.replace(/"/g, ""));
    if (cells[0] === test.toUpperCase()) return { test: cells[0], rps: Number(cells[1]), cpuAll, cpuProxy };
  }
  return undefined;
}

/** Wait until a server on `port` serves a SET (after logging in as `user`, when given). */
async function ready(port: number, user: { name: string; password: string } | null, ca: string | null = null, exited: () => boolean = () => false): Promise<void> {
  const resp = (...args: string[]) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`;
  const request = (user ? resp("AUTH", user.name, user.password) : "") + resp("SET", "key:ready", "1");
  const replies = user ? 2 : 1;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && !exited()) {
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
  throw new Error(`the server on port ${port} ${exited() ? "exited" : "did not become ready"}`);
}

/** A spawned process, killed by stopAll if still running; `stop()` ends it and waits. */
function track(child: ChildProcess): { child: ChildProcess; exited: () => boolean; stop: () => Promise<void> } {
  let gone = false;
  const exit = new Promise<void>((done) => child.once("exit", () => ((gone = true), done())));
  const stop = async () => {
    if (gone) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exit;
    clearTimeout(timer);
  };
  // Started while everything is being stopped (a signal came during a start): stop it at once.
  if (stopping) void stop();
  else teardowns.push(stop);
  return { child, exited: () => gone, stop };
}

/** slotgate from this checkout on `runtime` (scripts/proxy-process.ts), stopped by stopAll too. */
async function startProxy(runtime: string, cluster: LocalCluster, env: Record<string, string>): Promise<ProxyProcess> {
  const proxy = await startProxyProcess(runtime, ".", cluster.seeds, env);
  if (stopping) await proxy.stop();
  else teardowns.push(() => proxy.stop());
  return proxy;
}

// ---- twemproxy in front of one redis-server.

interface Twemproxy {
  port: number;
  pid: number;
}

/** Start nutcracker with a one-server pool (the given redis) on a free port; retries a taken port. */
async function startTwemproxy(redis: StandaloneRedis, dir: string): Promise<Twemproxy> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const stats = await freePort();
    const file = join(dir, `nutcracker-${attempt}.yml`);
    writeFileSync(
      file,
      `bench:\n  listen: 127.0.0.1:${port}\n  hash: fnv1a_64\n  distribution: ketama\n  auto_eject_hosts: false\n  redis: true\n  servers:\n   - 127.0.0.1:${redis.port}:1\n`,
    );
    const proc = track(spawn("nutcracker", ["-c", file, "-s", String(stats), "-a", "127.0.0.1", "-o", join(dir, `nutcracker-${attempt}.log`)], { stdio: "ignore" }));
    try {
      await redis.command("DEL", "key:ready");
      await ready(port, null, null, proc.exited);
      // A port found free may have been taken by another process since: the key must be in our redis.
      if ((await redis.command("EXISTS", "key:ready")) === "1") return { port, pid: proc.child.pid! };
    } catch (error) {
      if (attempt >= 3) throw error;
    }
    await proc.stop();
    if (attempt >= 3) throw new Error("nutcracker did not start on ports of its own");
  }
}

// ---- The run.

const notes: string[] = [];
const note = (text: string) => {
  notes.push(text);
  console.log(`note: ${text}`);
};
const rows: BenchRow[] = [];
const idle: IdleFigure[] = [];
const latency: LatencyFigure[] = [];
const metricsCost: MetricsCostFigure[] = [];
let workersFigure = "not measured (variant workers not asked)";
const pidsOf = (c: LocalCluster) => c.nodes.map((node) => node.pid);

const dir = mkdtempSync(join(tmpdir(), "slotgate-bench-"));
teardowns.push(() => rmSync(dir, { recursive: true, force: true }));
try {
  const cluster = await startLocalCluster({ replicasPerPrimary: 0 });
  teardowns.push(() => cluster.stop());
  let redis: StandaloneRedis | null = null;
  let twemproxy: Twemproxy | null = null;
  if (HAVE_NUTCRACKER) {
    const one = await startStandaloneRedis();
    teardowns.push(() => one.stop());
    redis = one;
    twemproxy = await startTwemproxy(one, dir);
  } else {
    note("nutcracker (twemproxy) is not installed: the redis and twemproxy rows are skipped (Debian: apt-get install nutcracker)");
  }
  if (sections.includes("rows")) await throughput(cluster, redis, twemproxy);
  if (sections.includes("idle")) await idleMemory(cluster, twemproxy);
  if (sections.includes("latency")) await addedLatency(cluster, redis, twemproxy);
  if (sections.includes("metrics")) await metricsOverhead(cluster);
} finally {
  await stopAll();
}

async function throughput(cluster: LocalCluster, redis: StandaloneRedis | null, twemproxy: Twemproxy | null): Promise<void> {
  const seed = cluster.nodes[0]!.port;
  let tlsCluster: LocalCluster | null = null;
  let certs: TestCerts | null = null;
  if (variants.includes("tls")) {
    const made = makeTestCerts();
    certs = made;
    teardowns.push(() => made.remove());
    const started = await startLocalCluster({ replicasPerPrimary: 0, tls: { caFile: made.caFile, certFile: made.server.certFile, keyFile: made.server.keyFile } });
    tlsCluster = started;
    teardowns.push(() => started.stop());
  }
  const authFile = join(dir, "auth.json");
  writeFileSync(authFile, JSON.stringify(AUTH_CONFIG));
  const add = (round: number, target: string, pipeline: number, results: Awaited<ReturnType<typeof benchmark>>) => {
    for (const r of results) {
      rows.push({ round, target, pipeline, ...r });
      console.log(`  ${target} ${r.test} P${pipeline}: ${r.rps.toFixed(0)} req/s, CPU µs/req all ${r.cpuAll.toFixed(2)}${r.cpuProxy === null ? "" : `, proxy ${r.cpuProxy.toFixed(2)}`}`);
    }
  };
  for (let round = 0; round < rounds; round++) {
    for (const pipeline of [1, 16]) add(round, "direct", pipeline, await benchmark(seed, true, pipeline, { all: pidsOf(cluster), proxy: null }));
    if (tlsCluster && certs) {
      for (const pipeline of [1, 16]) add(round, "direct/tls", pipeline, await benchmark(tlsCluster.nodes[0]!.port, true, pipeline, { all: pidsOf(tlsCluster), proxy: null }, ["--tls", "--cacert", certs.caFile]));
    }
    if (redis && twemproxy) {
      for (const pipeline of [1, 16]) add(round, "redis", pipeline, await benchmark(redis.port, false, pipeline, { all: [redis.pid], proxy: null }));
      for (const pipeline of [1, 16]) add(round, "twemproxy", pipeline, await benchmark(twemproxy.port, false, pipeline, { all: [twemproxy.pid, redis.pid], proxy: twemproxy.pid }));
    }
    for (const runtime of runtimes) {
      for (const variant of variants) {
        const [bin, ...args] = serveCommand(runtime, ".");
        const port = await freePort();
        const env: Record<string, string> = { SLOTGATE_SEEDS: cluster.seeds.join(","), SLOTGATE_LISTEN: `127.0.0.1:${port}`, SLOTGATE_ADMIN_LISTEN: "off", SLOTGATE_LOG_LEVEL: "warn" };
        const login: string[] = [];
        let clientPort = port;
        let ca: string | null = null;
        let upstream = cluster;
        if (variant === "auth") {
          env.SLOTGATE_CONFIG = authFile;
          login.push("--user", BENCH_USER.name, "-a", BENCH_USER.password);
        } else if (variant === "tls") {
          clientPort = await freePort();
          ca = certs!.ca;
          upstream = tlsCluster!;
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
        } else if (variant === "workers") {
          env.SLOTGATE_WORKERS = workers;
        }
        const proxy = track(spawn(bin!, args, { env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit"] }));
        await ready(clientPort, variant === "auth" ? BENCH_USER : null, ca, proxy.exited);
        const target = `slotgate/${runtime}${variant === "plain" ? "" : `+${variant}`}`;
        const serving = { all: [proxy.child.pid!, ...pidsOf(upstream)], proxy: proxy.child.pid! };
        for (const pipeline of [1, 16]) add(round, target, pipeline, await benchmark(clientPort, false, pipeline, serving, login));
        await proxy.stop();
      }
    }
  }
  if (variants.includes("workers")) workersFigure = `SLOTGATE_WORKERS=${workers}: rows slotgate/<runtime>+workers`;
}

async function idleMemory(cluster: LocalCluster, twemproxy: Twemproxy | null): Promise<void> {
  const { count, note: lowered } = idleClientLimit(idleWanted);
  if (lowered) note(lowered);
  if (count <= 0) return;
  for (const runtime of runtimes) {
    const proxy = await startProxy(runtime, cluster, { SLOTGATE_MAX_CLIENTS: String(count + 100) });
    const result = await measureIdleClients(proxy.port, proxy.pid, count);
    idle.push({ target: `slotgate/${runtime}`, ...result });
    console.log(`  idle: slotgate/${runtime} ${result.kibPerClient.toFixed(2)} KiB per client`);
    await proxy.stop();
  }
  if (twemproxy) {
    const result = await measureIdleClients(twemproxy.port, twemproxy.pid, count);
    idle.push({ target: "twemproxy", ...result });
    console.log(`  idle: twemproxy ${result.kibPerClient.toFixed(2)} KiB per client`);
  }
}

async function addedLatency(cluster: LocalCluster, redis: StandaloneRedis | null, twemproxy: Twemproxy | null): Promise<void> {
  const key = "bench:latency";
  const owner = await cluster.ownerOfSlot(keySlot(Buffer.from(key)));
  await cluster.command(owner.port, "SET", key, "x".repeat(16));
  const load = (port: number) => openLoop({ port, rate: latencyRate, connections: latencyConnections, durationMs: latencySeconds * 1000, warmupMs: Math.min(1000, (latencySeconds * 1000) / 5), key });
  const figure = (target: string, directName: string, direct: OpenLoopResult, through: OpenLoopResult): LatencyFigure => {
    const f: LatencyFigure = {
      target,
      direct: directName,
      rate: latencyRate,
      connections: latencyConnections,
      seconds: latencySeconds,
      p50: [direct.p50, through.p50, through.p50 - direct.p50],
      p99: [direct.p99, through.p99, through.p99 - direct.p99],
      p999: [direct.p999, through.p999, through.p999 - direct.p999],
      counts: [direct.count, through.count],
      lost: [direct.lost, through.lost],
      errors: [direct.errors, through.errors],
    };
    console.log(`  latency: ${target} adds p50 ${f.p50[2].toFixed(3)} ms, p99 ${f.p99[2].toFixed(3)} ms (achieved ${through.achievedRate.toFixed(0)}/s)`);
    return f;
  };
  for (const runtime of runtimes) {
    // Direct just before each proxied run, so both see the same moment of a shared machine.
    const direct = await load(owner.port);
    const proxy = await startProxy(runtime, cluster, {});
    const through = await load(proxy.port);
    await proxy.stop();
    latency.push(figure(`slotgate/${runtime}`, `primary :${owner.port}`, direct, through));
  }
  if (redis && twemproxy) {
    await redis.command("SET", key, "x".repeat(16));
    const direct = await load(redis.port);
    const through = await load(twemproxy.port);
    latency.push(figure("twemproxy", "redis", direct, through));
  }
}

/** Metrics on against off, both loaded at the same time (section 4 of the header). */
async function metricsOverhead(cluster: LocalCluster): Promise<void> {
  const n = Math.max(1000, Math.round(requests / 2));
  const pairs = Math.max(1, metricsPairs);
  for (const runtime of runtimes) {
    const on = await startProxy(runtime, cluster, {});
    const off = await startProxy(runtime, cluster, { SLOTGATE_METRICS: "off" });
    const serving = (p: ProxyProcess) => ({ all: [p.pid, ...pidsOf(cluster)], proxy: p.pid });
    for (const [test, pipeline] of [["set", 1], ["get", 1], ["set", 16], ["get", 16]] as const) {
      const count = pipeline > 1 ? n * 5 : n;
      // Half the clients each: the two proxies together carry the load one carries in the rows.
      const run = (p: ProxyProcess, requestsEach: number) => benchmarkTest(p.port, false, test, pipeline, requestsEach, serving(p), [], Math.max(1, Math.round(clients / 2)));
      // One unmeasured run first: both JITs warm before the first pair.
      await Promise.all([run(on, Math.round(count / 4)), run(off, Math.round(count / 4))]);
      const rps: number[] = [];
      const cpu: number[] = [];
      for (let pair = 0; pair < pairs; pair++) {
        const [a, b] = await Promise.all([run(on, count), run(off, count)]);
        if (!a || !b || a.cpuProxy === null || b.cpuProxy === null) continue;
        rps.push(a.rps / b.rps);
        cpu.push(a.cpuProxy / b.cpuProxy);
      }
      const figure: MetricsCostFigure = { runtime, test: test.toUpperCase(), pipeline, pairs: rps.length, rpsOnOff: median(rps), cpuOnOff: median(cpu), rpsRatios: rps, cpuRatios: cpu };
      metricsCost.push(figure);
      console.log(`  metrics ${runtime} ${figure.test} P${pipeline}: rps on/off ${figure.rpsOnOff.toFixed(3)}, CPU on/off ${figure.cpuOnOff.toFixed(3)} (median of ${figure.pairs} pairs)`);
    }
    await on.stop();
    await off.stop();
  }
}

// ---- The report.

const report: BenchReport = {
  commit: gitHead(),
  date: new Date().toISOString(),
  cores: cpus().length,
  cpuModel: cpus()[0]?.model ?? "unknown",
  options: { requests, clients, runtimes, variants, rounds, sections, idleClients: idleWanted, latencyRate, latencyConnections, latencySeconds, metricsPairs },
  notes,
  rows,
  idle,
  latency,
  metricsCost,
  workers: workersFigure,
};

function gitHead(): string {
  try {
    const head = execFileSync("git", ["rev-parse", "HEAD"], { encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { encoding: "utf8" }).trim() !== "";
    return dirty ? `${head}+dirty` : head;
  } catch {
    return "unknown";
  }
}

const num = (value: number | null | undefined, digits = 2) => (value === null || value === undefined || !Number.isFinite(value) ? "" : value.toFixed(digits));
const title = (runtime: string) => runtime.charAt(0).toUpperCase() + runtime.slice(1);
const baseOf = (target: string): string | null => (target === "twemproxy" ? "redis" : target.startsWith("slotgate/") ? (target.endsWith("+tls") ? "direct/tls" : "direct") : null);

const shortCommit = `${report.commit.slice(0, 12)}${report.commit.endsWith("+dirty") ? " (with uncommitted changes)" : ""}`;
console.log(`\nslotgate benchmark: commit ${shortCommit}, ${report.date}, ${report.cores} cores (${report.cpuModel})`);
for (const text of notes) console.log(`note: ${text}`);
console.log(`workers: ${workersFigure}`);

if (rows.length > 0) {
  console.log(`\nredis-benchmark, ${clients} clients, ${requests} requests (x5 pipelined), 3-primary local cluster${rounds > 1 ? `, ${rounds} rounds (one line each)` : ""}`);
  console.log("CPU µs/req: user+system time from /proc per request. all = every serving process (direct: the primaries; redis: the");
  console.log("redis-server; twemproxy: nutcracker + redis-server; slotgate: slotgate + primaries); proxy = nutcracker or slotgate alone.");
  console.log("vs base = requests/s against the same test straight to what it fronts; /twemproxy = proxy CPU over twemproxy's proxy CPU.\n");
  console.log(`${"target".padEnd(24)} ${"test".padEnd(4)} ${"P".padStart(3)} ${"requests/s".padStart(11)} ${"vs base".padStart(8)} ${"CPU all".padStart(8)} ${"proxy".padStart(7)} ${"/twemproxy".padStart(11)}`);
  for (const r of rows) {
    const base = baseOf(r.target);
    const baseRow = base === null ? undefined : rows.find((b) => b.round === r.round && b.target === base && b.test === r.test && b.pipeline === r.pipeline);
    const twem = r.target.startsWith("slotgate/") && !r.target.endsWith("+tls") ? rows.find((b) => b.round === r.round && b.target === "twemproxy" && b.test === r.test && b.pipeline === r.pipeline) : undefined;
    const vsTwem = twem && r.cpuProxy !== null && twem.cpuProxy !== null ? r.cpuProxy / twem.cpuProxy : null;
    console.log(
      `${r.target.padEnd(24)} ${r.test.padEnd(4)} ${String(r.pipeline).padStart(3)} ${r.rps.toFixed(0).padStart(11)} ${num(baseRow ? r.rps / baseRow.rps : null).padStart(8)} ${num(r.cpuAll).padStart(8)} ${num(r.cpuProxy).padStart(7)} ${num(vsTwem).padStart(11)}`,
    );
  }

  const tests = [["SET", 1], ["GET", 1], ["SET", 16], ["GET", 16]] as const;
  if (rows.some((r) => r.target === "twemproxy")) {
    console.log(`\nthe target (issue 14): proxy CPU per request against twemproxy's, ≤ 1.25 at P1 and P16${rounds > 1 ? ` (medians of ${rounds} rounds)` : ""}`);
    for (const runtime of runtimes) {
      const parts = tests.map(([test, pipeline]) => {
        const own = medianRow(rows, `slotgate/${runtime}`, test, pipeline)?.cpuProxy;
        const twem = medianRow(rows, "twemproxy", test, pipeline)?.cpuProxy;
        return own && twem ? `${test} P${pipeline} ${(own / twem).toFixed(2)} (${own.toFixed(2)}/${twem.toFixed(2)} µs)` : `${test} P${pipeline} -`;
      });
      console.log(`${title(runtime)} CPU / twemproxy CPU: ${parts.join(", ")}`);
    }
  }
  console.log(`\nslotgate against the direct cluster${rounds > 1 ? `, medians of ${rounds} rounds` : ""}: requests/s ratio, and CPU µs/req of slotgate + primaries over the primaries' alone`);
  console.log(`${"runtime".padEnd(8)} ${"test".padEnd(4)} ${"P".padStart(3)} ${"rps ratio".padStart(10)} ${"CPU all".padStart(8)} ${"direct".padStart(7)} ${"all/direct".padStart(11)}`);
  for (const runtime of runtimes) {
    for (const [test, pipeline] of tests) {
      const s = medianRow(rows, `slotgate/${runtime}`, test, pipeline);
      const d = medianRow(rows, "direct", test, pipeline);
      if (!s || !d) continue;
      console.log(`${runtime.padEnd(8)} ${test.padEnd(4)} ${String(pipeline).padStart(3)} ${num(s.rps / d.rps).padStart(10)} ${num(s.cpuAll).padStart(8)} ${num(d.cpuAll).padStart(7)} ${num(s.cpuAll / d.cpuAll).padStart(11)}`);
    }
  }

  // The metrics' cost: slotgate with metrics on (plain) against off (nometrics), same run, same cluster.
  if (variants.includes("plain") && variants.includes("nometrics")) {
    console.log(`\nmetrics overhead: metrics on (plain) vs off (nometrics)${rounds > 1 ? `, median of ${rounds} rounds` : ""}; CPU is slotgate's own\n`);
    console.log(`${"runtime".padEnd(8)} ${"test".padEnd(4)} ${"P".padStart(3)} ${"rps on/off".padStart(11)} ${"CPU µs/req on".padStart(14)} ${"off".padStart(6)} ${"CPU on/off".padStart(11)}`);
    for (const runtime of runtimes) {
      for (const [test, pipeline] of tests) {
        const on = medianRow(rows, `slotgate/${runtime}`, test, pipeline);
        const off = medianRow(rows, `slotgate/${runtime}+nometrics`, test, pipeline);
        if (!on || !off || on.cpuProxy === null || off.cpuProxy === null) continue;
        console.log(`${runtime.padEnd(8)} ${test.padEnd(4)} ${String(pipeline).padStart(3)} ${(on.rps / off.rps).toFixed(3).padStart(11)} ${on.cpuProxy.toFixed(2).padStart(14)} ${off.cpuProxy.toFixed(2).padStart(6)} ${(on.cpuProxy / off.cpuProxy).toFixed(3).padStart(11)}`);
      }
    }
  }
}

if (metricsCost.length > 0) {
  console.log(`\nmetrics cost (issue 13: ≤ 5% throughput): slotgate with metrics on and off, side by side, both loaded at the same`);
  console.log("time (half the clients each); medians of the pairs' on/off ratios (rps ≥ 0.95 meets the target; CPU is slotgate's own)");
  console.log(`${"runtime".padEnd(8)} ${"test".padEnd(4)} ${"P".padStart(3)} ${"pairs".padStart(6)} ${"rps on/off".padStart(11)} ${"CPU on/off".padStart(11)}  target`);
  for (const f of metricsCost) {
    console.log(`${f.runtime.padEnd(8)} ${f.test.padEnd(4)} ${String(f.pipeline).padStart(3)} ${String(f.pairs).padStart(6)} ${num(f.rpsOnOff, 3).padStart(11)} ${num(f.cpuOnOff, 3).padStart(11)}  ${f.rpsOnOff >= 0.95 ? "met" : "NOT met"}`);
  }
}

if (idle.length > 0) {
  console.log(`\nidle clients: ${idle[0]!.clients} connections, one PING each, then idle; the server's VmRSS (target: ≤ 4 KiB per client)`);
  console.log(`${"target".padEnd(16)} ${"RSS before".padStart(11)} ${"after".padStart(9)} ${"KiB/client".padStart(11)}`);
  for (const f of idle) console.log(`${f.target.padEnd(16)} ${`${(f.rssBefore / 1048576).toFixed(1)} MiB`.padStart(11)} ${`${(f.rssAfter / 1048576).toFixed(1)} MiB`.padStart(9)} ${f.kibPerClient.toFixed(2).padStart(11)}`);
}

if (latency.length > 0) {
  console.log(`\nadded latency: open-loop GET of one key, ${latencyRate}/s over ${latencyConnections} connections, ${latencySeconds} s (first ${Math.min(1, latencySeconds / 5)} s not counted);`);
  console.log("ms from when each GET was due; direct = the primary owning the key (twemproxy: the one redis); added = through − direct");
  console.log(`${"target".padEnd(16)} ${"p50 direct".padStart(11)} ${"through".padStart(8)} ${"added".padStart(7)} ${"p99 direct".padStart(11)} ${"through".padStart(8)} ${"added".padStart(7)} ${"p99.9 added".padStart(12)} ${"GETs".padStart(7)}`);
  for (const f of latency) {
    const trouble = f.lost[0] + f.lost[1] + f.errors[0] + f.errors[1] > 0 ? `  (lost ${f.lost.join("/")}, errors ${f.errors.join("/")})` : "";
    console.log(
      `${f.target.padEnd(16)} ${num(f.p50[0], 3).padStart(11)} ${num(f.p50[1], 3).padStart(8)} ${num(f.p50[2], 3).padStart(7)} ${num(f.p99[0], 3).padStart(11)} ${num(f.p99[1], 3).padStart(8)} ${num(f.p99[2], 3).padStart(7)} ${num(f.p999[2], 3).padStart(12)} ${String(f.counts[1]).padStart(7)}${trouble}`,
    );
  }
}

console.log("\nfigures are from a possibly shared machine: requests/s and latency are noisy, CPU µs per request is the steadier figure");
if (jsonFile) {
  writeFileSync(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`wrote ${jsonFile}`);
}
if (compareFile) {
  if (existsSync(compareFile)) compareWith(compareFile, report);
  else console.log(`--compare: ${compareFile} does not exist`);
}
