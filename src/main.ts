/**
 * The program every entry point runs (`adapters/<runtime>/main.ts` supply the process): parse the
 * command line, load the configuration (exit 2 with one line per problem), start slotgate, and on
 * SIGINT or SIGTERM shut it down — `/readyz` answers 503 at once, clients are still served for
 * `shutdownDelayMs`, then accepting stops and in-flight requests drain (bounded by
 * `shutdownTimeoutMs`) — then exit 0. A second SIGINT or SIGTERM exits at once, 130 or 143
 * (128 + the signal's number, as a shell reports a process killed by it). SIGHUP and file changes
 * re-read the config file and the TLS port's certificate files.
 *
 * Two commands start nothing: `--check-config` (or `SLOTGATE_CHECK=1`) loads the configuration
 * exactly as a start would and exits 0 or 2; `--from-twemproxy FILE` prints the configuration
 * equivalent to a twemproxy one (./config/twemproxy.ts).
 */
import type { Runtime } from "./runtime.ts";
import { processLogger, startSlotgate, VERSION } from "./app.ts";
import { loadConfig, ENV_VARIABLES } from "./config/load.ts";
import { validateConfig } from "./config/load.ts";
import type { Config } from "./config/schema.ts";
import { fromTwemproxy, renderConfig } from "./config/twemproxy.ts";
import { ConfigError } from "./errors.ts";
import { workerIdentity, type WorkerLink, type WorkerSpawner } from "./workers/protocol.ts";
import { WorkerChannel } from "./workers/channel.ts";
import { supervise } from "./workers/supervisor.ts";

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
  /** How this runtime starts workers (`SLOTGATE_WORKERS`); absent: it cannot, and workers is refused. */
  workers?: WorkerSpawner;
  /** Present when this program runs as a worker: its line to the supervisor. */
  workerLink?: WorkerLink;
}

export const USAGE = `slotgate ${VERSION} — a Redis Cluster proxy

Usage: slotgate [--help] [--version]
       slotgate --check-config
       slotgate --from-twemproxy nutcracker.yml [--pool NAME] [--format json|yaml]

Clients speak plain RESP to one address; slotgate learns the cluster's slot map and
routes every command to the node that owns its key.

  --check-config, -t  load the configuration as a start would, print "slotgate: config OK"
                      and exit 0, or print each problem and exit 2; opens no socket
  --from-twemproxy F  print the slotgate configuration equivalent to twemproxy's file F
                      (warnings on stderr; exit 2 when keys would move)
  --pool NAME         with --from-twemproxy: convert only that pool
  --format json|yaml  with --from-twemproxy: the output's format (default json)

Configuration comes from environment variables, and from a JSON or YAML file (.yaml/.yml)
named by SLOTGATE_CONFIG (variables override the file). Variables:
${ENV_VARIABLES.map((v) => `  ${v.name.padEnd(40)} ${v.path}`).join("\n")}
  ${"SLOTGATE_CONFIG".padEnd(40)} path of a JSON or YAML config file (re-read on SIGHUP)
  ${"SLOTGATE_CONFIG_WATCH".padEnd(40)} "off": do not re-read the file when it changes
  ${"SLOTGATE_CHECK".padEnd(40)} "1": check the configuration and exit, as --check-config

On SIGTERM or SIGINT: /readyz answers 503, clients are served for shutdownDelayMs, then
accepting stops and in-flight requests drain (shutdownTimeoutMs); exit 0. A second signal
exits at once (130 for SIGINT, 143 for SIGTERM).

Example:
  SLOTGATE_SEEDS=127.0.0.1:7000,127.0.0.1:7001 slotgate
`;

/** Exit code of a second signal: 128 + its number, as a shell reports a process killed by it. */
const FORCED_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

export async function main(host: ProcessHost): Promise<void> {
  if (host.args.includes("--help") || host.args.includes("-h")) {
    host.print(USAGE);
    return host.exit(0);
  }
  if (host.args.includes("--version")) {
    host.print(VERSION);
    return host.exit(0);
  }
  const options = parseArgs(host.args);
  if (typeof options === "string") {
    host.printError(`slotgate: ${options} (see --help)`);
    return host.exit(2);
  }
  if (options.fromTwemproxy !== undefined) return host.exit(convertTwemproxy(host, options.fromTwemproxy, options));
  if (options.checkConfig || host.env.SLOTGATE_CHECK === "1") return host.exit(checkConfig(host));
  let config;
  try {
    config = loadConfig({ env: host.env, readFile: host.readFile });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) host.printError(`slotgate: config: ${problem}`);
    return host.exit(2);
  }
  const identity = workerIdentity(host.env);
  if (typeof identity === "string" || (identity !== null && !host.workerLink)) {
    host.printError(`slotgate: ${typeof identity === "string" ? identity : "SLOTGATE_WORKER is set by slotgate for its workers, not by hand"}`);
    return host.exit(2);
  }
  const workers = config.workers === "auto" ? (host.workers?.cores ?? 1) : config.workers;
  if (identity === null && workers > 1) {
    const log = processLogger(host.runtime, config, host.printError, { worker: "supervisor" });
    if (!host.workers) {
      log.error("workers are not available on this runtime; set SLOTGATE_WORKERS=1", { runtime: host.runtime.name, workers });
      return host.exit(2);
    }
    return supervise(host as ProcessHost & { workers: WorkerSpawner }, workers, log);
  }
  // A worker takes its orders (shutdown, reload) from the supervisor, not from signals.
  const channel = identity && new WorkerChannel(host.workerLink!, identity);
  if (channel) host = workerHost(host, channel);
  const log = processLogger(host.runtime, config, host.printError, identity ? { worker: identity.index } : undefined);
  let app;
  try {
    app = await startSlotgate(host.runtime, config, log, channel ? { worker: { channel, identity: identity!, processes: host.workers?.kind !== "threads" } } : {});
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
    const result = await running.configure.replaceConfig(next);
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
    if (stopping) {
      log.warn("second signal during shutdown: exiting at once", { signal });
      return host.exit(FORCED_EXIT[signal] ?? 1);
    }
    stopping = true;
    unwatch();
    running.shutdown(signal).then(
      () => host.exit(0),
      (error) => {
        log.error("shutdown finished with errors", { error });
        host.exit(0);
      },
    );
  });
}

interface Options {
  checkConfig: boolean;
  fromTwemproxy?: string;
  pool?: string;
  format: "json" | "yaml";
}

/** The command line (--help and --version are handled before), or what is wrong with it. */
function parseArgs(args: string[]): Options | string {
  const options: Options = { checkConfig: false, format: "json" };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = () => {
      const next = args[i + 1];
      if (next === undefined || next.startsWith("--")) return null;
      i++;
      return next;
    };
    if (arg === "") continue;
    if (arg === "--check-config" || arg === "-t") options.checkConfig = true;
    else if (arg === "--from-twemproxy" || arg === "--pool" || arg === "--format") {
      const given = value();
      if (given === null) return `${arg} needs a value`;
      if (arg === "--from-twemproxy") options.fromTwemproxy = given;
      else if (arg === "--pool") options.pool = given;
      else if (given === "json" || given === "yaml") options.format = given;
      else return `--format ${given}: expected json or yaml`;
    } else return `unknown argument '${arg}'`;
  }
  if ((options.pool !== undefined || options.format !== "json") && options.fromTwemproxy === undefined) return "--pool and --format go with --from-twemproxy";
  return options;
}

/**
 * `--check-config`: the configuration as a start would load it (variables, the file, files named
 * by *_FILE variables), plus the files a start reads next (TLS certificates, keys, CAs) and the
 * admin token's form. Opens no socket. Returns the exit code.
 */
function checkConfig(host: ProcessHost): number {
  let config: Config;
  try {
    config = loadConfig({ env: host.env, readFile: host.readFile });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) host.printError(`slotgate: config: ${problem}`);
    return 2;
  }
  const problems: string[] = [];
  for (const [what, path] of filesOf(config)) {
    try {
      host.readFile(path);
    } catch (error) {
      problems.push(`${what} ${path}: cannot read the file: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (config.admin.token !== undefined && !/^[\x21-\x7e]+$/.test(config.admin.token)) {
    problems.push("admin.token: expected printable ASCII characters without spaces (it travels in an HTTP header)");
  }
  if (problems.length > 0) {
    for (const problem of problems) host.printError(`slotgate: config: ${problem}`);
    return 2;
  }
  host.print("slotgate: config OK");
  host.print(`slotgate: ${summary(config)}`);
  return 0;
}

/** Every file a start reads after the configuration, with the field naming it. */
function filesOf(config: Config): [string, string][] {
  const files: [string, string][] = [];
  const tls = (at: string, t: { cert?: string; key?: string; ca?: string } | undefined) => {
    for (const field of ["cert", "key", "ca"] as const) {
      const path = t?.[field];
      if (path !== undefined) files.push([`${at}.${field}`, path]);
    }
  };
  tls("tls", config.tls);
  tls("clusterDefaults.tls", config.clusterDefaults.tls?.enabled ? config.clusterDefaults.tls : undefined);
  for (const [name, cluster] of Object.entries(config.clusters)) tls(`clusters.${name}.tls`, cluster.tls?.enabled ? cluster.tls : undefined);
  return files;
}

/** One line: where slotgate would listen, and what it would serve. */
function summary(config: Config): string {
  const clusters = Object.entries(config.clusters).map(([name, c]) =>
    c.type === "standalone" ? `${name} (standalone, ${c.servers.length} servers)` : `${name} (cluster, ${c.seeds.length} seeds)`,
  );
  const routes = config.routes.length > 0 ? `, ${config.routes.length} routes` : "";
  const catchAll = config.catchAll !== undefined ? `, catch-all ${config.catchAll}` : "";
  return `listen ${config.listen}${config.tls ? `, tls ${config.tls.listen}` : ""}, admin ${config.admin.listen}; clusters ${clusters.join(", ")}${routes}${catchAll}`;
}

/** `--from-twemproxy FILE`: print the equivalent configuration; returns the exit code. */
function convertTwemproxy(host: ProcessHost, file: string, options: Options): number {
  let text: string;
  try {
    text = host.readFile(file);
  } catch (error) {
    host.printError(`slotgate: ${file}: cannot read the file: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }
  const result = fromTwemproxy(text, options.pool === undefined ? {} : { pool: options.pool });
  for (const warning of result.warnings) host.printError(`slotgate: warning: ${warning}`);
  const errors = [...result.errors];
  if (result.document) {
    // What is printed must start slotgate as it is.
    try {
      validateConfig(result.document);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      errors.push(...error.problems);
    }
  }
  if (errors.length > 0 || !result.document) {
    for (const error of errors) host.printError(`slotgate: ${file}: ${error}`);
    return 2;
  }
  host.print(renderConfig(result.document, options.format));
  return 0;
}

/**
 * The host as a worker sees it: shutdown and reload come from the supervisor (a terminal's Ctrl-C
 * reaches every process of the group; the supervisor decides), and only the leader watches files.
 */
function workerHost(host: ProcessHost, channel: WorkerChannel): ProcessHost {
  return {
    ...host,
    onShutdownSignal: (handler) => channel.onShutdown(handler),
    onReloadSignal: (handler) => channel.onReload(() => handler()),
    watchFile: (path, handler) => (channel.isLeader ? host.watchFile(path, handler) : () => {}),
  };
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
