/**
 * The program every entry point runs (`adapters/<runtime>/main.ts` supply the process): parse the
 * command line, load the configuration (exit 2 with one line per problem), start slotgate, and on
 * SIGINT or SIGTERM close it — stop accepting, drain in-flight requests (bounded by
 * `shutdownTimeoutMs`) — then exit 0. SIGHUP and file changes re-read the config file and the TLS
 * port's certificate files.
 */
import type { Runtime } from "./runtime.ts";
import { processLogger, startSlotgate, VERSION } from "./app.ts";
import { loadConfig, ENV_VARIABLES } from "./config/load.ts";
import { ConfigError } from "./errors.ts";

/** What an entry point provides from its process. */
export interface ProcessHost {
  runtime: Runtime;
  args: string[];
  env: Record<string, string | undefined>;
  readFile(path: string): string;
  /** Call `handler` on SIGINT and SIGTERM. */
  onShutdownSignal(handler: (signal: string) => void): void;
  /** Call `handler` on SIGHUP. */
  onReloadSignal(handler: () => void): void;
  /** Call `handler` when the file at `path` may have changed (events may repeat). Returns a stop function. */
  watchFile(path: string, handler: () => void): () => void;
  print(line: string): void;
  printError(line: string): void;
  exit(code: number): void;
}

export const USAGE = `slotgate ${VERSION} — a Redis Cluster proxy

Usage: slotgate [--help] [--version]

Clients speak plain RESP to one address; slotgate learns the cluster's slot map and
routes every command to the node that owns its key.

Configuration comes from environment variables, and from a JSON file named by
SLOTGATE_CONFIG (variables override the file). Variables:
${ENV_VARIABLES.map((v) => `  ${v.name.padEnd(40)} ${v.path}`).join("\n")}
  ${"SLOTGATE_CONFIG".padEnd(40)} path of a JSON config file (re-read on SIGHUP)
  ${"SLOTGATE_CONFIG_WATCH".padEnd(40)} "off": do not re-read the file when it changes

Example:
  SLOTGATE_SEEDS=127.0.0.1:7000,127.0.0.1:7001 slotgate
`;

export async function main(host: ProcessHost): Promise<void> {
  if (host.args.includes("--help") || host.args.includes("-h")) {
    host.print(USAGE);
    return host.exit(0);
  }
  if (host.args.includes("--version")) {
    host.print(VERSION);
    return host.exit(0);
  }
  const unknown = host.args.filter((a) => a !== "");
  if (unknown.length > 0) {
    host.printError(`slotgate: unknown argument '${unknown[0]}' (see --help)`);
    return host.exit(2);
  }
  let config;
  try {
    config = loadConfig({ env: host.env, readFile: host.readFile });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) host.printError(`slotgate: config: ${problem}`);
    return host.exit(2);
  }
  const log = processLogger(host.runtime, config, host.printError);
  let app;
  try {
    app = await startSlotgate(host.runtime, config, log);
  } catch (error) {
    log.error("cannot start", { error });
    return host.exit(1);
  }
  const running = app;
  const file = host.env.SLOTGATE_CONFIG;
  const reload = async (why: string) => {
    let next;
    try {
      next = loadConfig({ env: host.env, readFile: host.readFile });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      log.error("config reload rejected; the running configuration stays", { why, problems: error.problems.join("; ") });
      return;
    }
    const result = await running.control.replaceConfig(next);
    if (result.ok) log.info("config reloaded", { why, changes: result.changes.join("; ") || "none" });
    else log.error("config reload refused; the running configuration stays", { why, problems: result.problems.join("; ") });
  };
  const reloadSoon = debounce(running, (why) => reload(why).catch((error) => log.error("config reload failed", { error })));
  // Certificates are renewed in place (cert-manager, certbot): their files are watched too. A
  // renewal writes cert and key one after the other, so the debounce waits for both.
  const reloadTlsSoon = debounce(running, () => void running.reloadTls());
  host.onReloadSignal(() => {
    reloadSoon("SIGHUP");
    if (config.tls) reloadTlsSoon("SIGHUP");
  });
  const watching = file && host.env.SLOTGATE_CONFIG_WATCH !== "off";
  const unwatchers = watching ? [host.watchFile(file, () => reloadSoon(`${file} changed`))] : [];
  if (config.tls && host.env.SLOTGATE_CONFIG_WATCH !== "off") {
    for (const path of [config.tls.cert, config.tls.key, config.tls.ca]) {
      if (path !== undefined) unwatchers.push(host.watchFile(path, () => reloadTlsSoon(`${path} changed`)));
    }
  }
  const unwatch = () => unwatchers.forEach((stop) => stop());
  let stopping = false;
  host.onShutdownSignal((signal) => {
    if (stopping) return;
    stopping = true;
    unwatch();
    log.info("shutting down", { signal });
    running.close().then(
      () => host.exit(0),
      (error) => {
        log.error("shutdown finished with errors", { error });
        host.exit(0);
      },
    );
  });
}

/** Coalesce bursts (an editor saving writes a file several times) into one reload 100 ms later. */
function debounce(app: { scope: { isOpen: boolean; timer(name: string, ms: number, fn: () => void): { cancel(): void } } }, fn: (why: string) => void) {
  let pending: { cancel(): void } | null = null;
  return (why: string) => {
    if (!app.scope.isOpen) return;
    pending?.cancel();
    pending = app.scope.timer("config reload", 100, () => {
      pending = null;
      fn(why);
    });
  };
}
