/**
 * `npm run bench`: redis-benchmark GET and SET, 50 clients, unpipelined and `-P 16`, straight to a
 * local cluster (`--cluster`) and through slotgate on Node, Bun and Deno, all in one run against
 * the same cluster; prints requests/s and the ratio to direct. Loopback only, bounded request
 * counts, and everything it starts is stopped at the end (also on failure).
 *
 * Options: --requests N (per unpipelined run, default 100000; pipelined runs use 5N)
 *          --runtimes node,bun,deno   --clients N (default 50)
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import net from "node:net";
import process from "node:process";
import { promisify } from "node:util";
import { startLocalCluster, type LocalCluster } from "./local-cluster.ts";
import { freePort } from "./free-port.ts";

const run = promisify(execFile);

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1]! : fallback;
}

const requests = Number(option("requests", "100000"));
const clients = Number(option("clients", "50"));
const runtimes = option("runtimes", "node,bun,deno").split(",");

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
}

async function benchmark(port: number, cluster: boolean, pipeline: number): Promise<Map<string, number>> {
  const n = pipeline > 1 ? requests * 5 : requests;
  const args = ["-h", "127.0.0.1", "-p", String(port), "-t", "set,get", "-c", String(clients), "-n", String(n), "-P", String(pipeline), "-r", "100000", "--csv"];
  if (cluster) args.push("--cluster");
  const { stdout } = await run("redis-benchmark", args, { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 });
  const rates = new Map<string, number>();
  for (const line of stdout.split("\n")) {
    const cells = line.split(",").map((c) => c.replace(/"/g, ""));
    if (cells[0] === "SET" || cells[0] === "GET") rates.set(cells[0], Number(cells[1]));
  }
  return rates;
}

async function ready(port: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port }, () => socket.write("*3\r\n$3\r\nSET\r\n$11\r\nbench:ready\r\n$1\r\n1\r\n"));
      socket.on("data", (d) => {
        socket.destroy();
        resolve(d.toString().startsWith("+OK"));
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
let proxy: ChildProcess | null = null;
try {
  cluster = await startLocalCluster({ replicasPerPrimary: 0 });
  const seed = cluster.nodes[0]!.port;
  for (const pipeline of [1, 16]) {
    for (const [test, rps] of await benchmark(seed, true, pipeline)) results.push({ target: "direct", test, pipeline, rps });
  }
  for (const runtime of runtimes) {
    const [bin, ...args] = SERVE[runtime]!;
    const port = await freePort();
    proxy = spawn(bin!, args, {
      env: { ...process.env, SLOTGATE_SEEDS: cluster.seeds.join(","), SLOTGATE_LISTEN: `127.0.0.1:${port}`, SLOTGATE_ADMIN_LISTEN: "off", SLOTGATE_LOG_LEVEL: "warn" },
      stdio: ["ignore", "inherit", "inherit"],
    });
    await ready(port);
    for (const pipeline of [1, 16]) {
      for (const [test, rps] of await benchmark(port, false, pipeline)) results.push({ target: `slotgate/${runtime}`, test, pipeline, rps });
    }
    proxy.kill("SIGTERM");
    await new Promise((r) => proxy!.once("close", r));
    proxy = null;
  }
} finally {
  proxy?.kill("SIGKILL");
  await cluster?.stop();
}

const direct = (test: string, pipeline: number) => results.find((r) => r.target === "direct" && r.test === test && r.pipeline === pipeline)?.rps ?? NaN;
console.log(`\nredis-benchmark, ${clients} clients, ${requests} requests (x5 pipelined), 3-primary local cluster\n`);
console.log(`${"target".padEnd(16)} ${"test".padEnd(5)} ${"pipeline".padEnd(9)} ${"requests/s".padStart(12)} ${"vs direct".padStart(10)}`);
for (const r of results) {
  const ratio = r.rps / direct(r.test, r.pipeline);
  console.log(`${r.target.padEnd(16)} ${r.test.padEnd(5)} ${String(r.pipeline).padEnd(9)} ${r.rps.toFixed(0).padStart(12)} ${ratio.toFixed(2).padStart(10)}`);
}
