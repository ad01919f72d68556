/**
 * Fixtures for integration tests that start and stop proxies and clients themselves: each is
 * registered on the test's own list (for its `after`) before anything can fail, so that a proxy
 * that never becomes ready, or a client that never connects, is still cleaned up.
 */
import { Redis } from "ioredis";
import { currentRuntime } from "../../adapters/current.ts";
import { startSlotgate } from "../../src/app.ts";
import { loadConfig } from "../../src/config/load.ts";
import { createLogger, type Logger } from "../../src/log.ts";
import type { RunningProxy } from "./proxy.ts";
import { until } from "./within.ts";

/**
 * Start slotgate in this process as `startProxy` does, push it onto `started`, then wait until it
 * has learnt a complete slot map. `env` overrides any SLOTGATE_* variable; `log`, when given,
 * hears every line (whatever SLOTGATE_LOG_LEVEL says).
 */
export async function launchProxy(started: RunningProxy[], seeds: string[], env: Record<string, string> = {}, log?: Logger): Promise<RunningProxy> {
  const runtime = await currentRuntime();
  const config = loadConfig({
    env: {
      SLOTGATE_SEEDS: seeds.join(","),
      SLOTGATE_LISTEN: "127.0.0.1:0",
      SLOTGATE_ADMIN_LISTEN: "127.0.0.1:0",
      SLOTGATE_LOG_LEVEL: "error",
      // Bun gives `after` 5 s whatever its timeout option says: the drain at close must be short.
      SLOTGATE_SHUTDOWN_TIMEOUT_MS: "1000",
      ...env,
    },
    readFile: () => {
      throw new Error("no config file in tests");
    },
  });
  const app = await startSlotgate(runtime, config, log ?? createLogger(config.logLevel));
  const proxy: RunningProxy = { app, port: app.port, stop: () => app.close() };
  started.push(proxy);
  await until("the proxy to learn a complete slot map", () => app.cluster.isReady);
  return proxy;
}

/** An ioredis client connected to `proxy`, pushed onto `clients` (to disconnect in `after`). */
export async function connectIoredis(proxy: RunningProxy, clients: Redis[]): Promise<Redis> {
  const client = new Redis({ port: proxy.port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 });
  client.on("error", () => {});
  clients.push(client);
  await client.connect();
  return client;
}
