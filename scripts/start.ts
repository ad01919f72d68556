/**
 * `npm start`: run slotgate on this runtime. With no cluster configured (no SLOTGATE_SEEDS, no
 * SLOTGATE_CONFIG) it first starts a throwaway Redis Cluster — 3 primaries and 3 replicas on
 * free loopback ports, in a temp dir — and puts the proxy in front of it. Ctrl-C stops both and
 * removes the temp dir.
 */
import process from "node:process";
import { readFileSync } from "node:fs";
import { currentRuntime } from "../adapters/current.ts";
import { startLocalCluster, RedisMissingError, type LocalCluster } from "./local-cluster.ts";
import { loadConfig } from "../src/config/load.ts";
import { startSlotgate } from "../src/app.ts";
import { ConfigError } from "../src/errors.ts";

const env: Record<string, string | undefined> = { ...process.env };
let cluster: LocalCluster | null = null;
if (!env.SLOTGATE_SEEDS && !env.SLOTGATE_CONFIG) {
  console.error("slotgate: no cluster configured: starting a throwaway local Redis Cluster (3 primaries, 3 replicas)...");
  try {
    cluster = await startLocalCluster();
  } catch (error) {
    if (error instanceof RedisMissingError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }
  env.SLOTGATE_SEEDS = cluster.seeds.join(",");
  console.error(`slotgate: local cluster up on ${cluster.seeds.join(" ")} (data in ${cluster.dir})`);
}

let config;
try {
  config = loadConfig({ env, readFile: (path) => readFileSync(path, "utf8") });
} catch (error) {
  await cluster?.stop();
  if (error instanceof ConfigError) {
    for (const problem of error.problems) console.error(`slotgate: config: ${problem}`);
    process.exit(2);
  }
  throw error;
}

const runtime = await currentRuntime();
const app = await startSlotgate(runtime, config);
await Promise.race([app.ready(), new Promise((resolve) => setTimeout(resolve, 10_000))]);
const [host] = config.listen.split(":");
console.error(`slotgate: ready on ${runtime.name}. Connect with: redis-cli -h ${host} -p ${app.port}   (Ctrl-C stops${cluster ? " the proxy and the local cluster" : ""})`);
if (app.admin) console.error(`slotgate: admin API on http://${app.admin.host}:${app.admin.port} (try: curl http://${app.admin.host}:${app.admin.port}/clusters)`);

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.error(`slotgate: ${signal}: shutting down...`);
  await app.close().catch((error) => console.error("slotgate: shutdown error:", error));
  await cluster?.stop();
  process.exit(0);
};
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));
