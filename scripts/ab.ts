/**
 * `npx tsx scripts/ab.ts --a DIR [--b DIR]`: two slotgate checkouts (or one checkout with two
 * environments) side by side, loaded at the same time, to tell a small change from the noise of
 * a shared machine: both live through the same moments, so the machine's drift cancels out.
 *
 * Starts a throwaway 3-primary cluster, slotgate A (checkout `--a`, environment `--env-a`) and
 * slotgate B (checkout `--b`, default this one; `--env-b`) on `--runtime` (node, bun, deno), then
 * for each test (SET/GET, P1/P16) runs redis-benchmark against both at once (half the clients
 * each) `--pairs` times, and prints the medians of the B/A ratios of requests/s and of each
 * proxy's own CPU per request (/proc). An A/A run (same checkout, same environment) shows the
 * noise floor: about ±3% on a 2-core machine. Loopback only; every run is bounded; everything is
 * stopped at the end.
 *
 * Options: --requests N (per unpipelined run, default 50000; pipelined runs use 5N)
 *          --clients N (default 50)   --pairs N (default 9)   --tests set1,get1,set16,get16
 *          --env-a NAME=VALUE   --env-b NAME=VALUE (each repeatable)
 */
import { execFile } from "node:child_process";
import process from "node:process";
import { median } from "./bench-figures.ts";
import { startLocalCluster } from "./local-cluster.ts";
import { cpuMs } from "./proc-cpu.ts";
import { envOptions, option, startProxyProcess, type ProxyProcess } from "./proxy-process.ts";

/** One redis-benchmark run; requests/s and the proxy's CPU µs per request. */
function run(proxy: ProxyProcess, test: string, pipeline: number, requests: number, clients: number): Promise<{ rps: number; cpu: number }> {
  const before = cpuMs([proxy.pid]);
  const args = ["-h", "127.0.0.1", "-p", String(proxy.port), "-t", test, "-c", String(clients), "-n", String(requests), "-P", String(pipeline), "-r", "100000", "--csv"];
  return new Promise((resolve, reject) => {
    execFile("redis-benchmark", args, { timeout: 300_000 }, (error, stdout) => {
      if (error) return reject(error);
      const line = stdout.split("\n").find((l) => l.startsWith(`"${test.toUpperCase()}"`));
      const rps = Number(line?.split(",")[1]?.replace(/"/g, ""));
      resolve({ rps, cpu: ((cpuMs([proxy.pid]) - before) * 1000) / requests });
    });
  });
}

async function main(): Promise<void> {
  const a = option("a", ".");
  const b = option("b", ".");
  const runtime = option("runtime", "node");
  const requests = Number(option("requests", "50000"));
  const clients = Number(option("clients", "50"));
  const pairs = Number(option("pairs", "9"));
  const tests = option("tests", "set1,get1,set16,get16").split(",").map((t) => ({ test: t.replace(/\d+$/, ""), pipeline: Number(/\d+$/.exec(t)?.[0] ?? "1") }));
  const cluster = await startLocalCluster({ replicasPerPrimary: 0 });
  const started: ProxyProcess[] = [];
  try {
    const proxyA = await startProxyProcess(runtime, a, cluster.seeds, envOptions("env-a"));
    started.push(proxyA);
    const proxyB = await startProxyProcess(runtime, b, cluster.seeds, envOptions("env-b"));
    started.push(proxyB);
    const show = (env: Record<string, string>) => Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ");
    console.log(`A: ${a} ${show(envOptions("env-a"))}\nB: ${b} ${show(envOptions("env-b"))}\non ${runtime}, ${pairs} pairs, ${clients / 2} clients each, medians of B/A`);
    console.log(`${"test".padEnd(5)} ${"P".padStart(3)} ${"rps B/A".padStart(8)} ${"CPU B/A".padStart(8)} ${"CPU µs/req A".padStart(13)} ${"B".padStart(6)}`);
    const half = Math.max(1, Math.round(clients / 2));
    for (const { test, pipeline } of tests) {
      const count = pipeline > 1 ? requests * 5 : requests;
      await Promise.all([run(proxyA, test, pipeline, Math.round(count / 4), half), run(proxyB, test, pipeline, Math.round(count / 4), half)]);
      const rps: number[] = [];
      const cpu: number[] = [];
      const cpuA: number[] = [];
      const cpuB: number[] = [];
      for (let i = 0; i < pairs; i++) {
        const [ra, rb] = await Promise.all([run(proxyA, test, pipeline, count, half), run(proxyB, test, pipeline, count, half)]);
        rps.push(rb.rps / ra.rps);
        cpu.push(rb.cpu / ra.cpu);
        cpuA.push(ra.cpu);
        cpuB.push(rb.cpu);
      }
      console.log(`${test.toUpperCase().padEnd(5)} ${String(pipeline).padStart(3)} ${median(rps).toFixed(3).padStart(8)} ${median(cpu).toFixed(3).padStart(8)} ${median(cpuA).toFixed(2).padStart(13)} ${median(cpuB).toFixed(2).padStart(6)}`);
    }
  } finally {
    for (const proxy of started) await proxy.stop();
    await cluster.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
