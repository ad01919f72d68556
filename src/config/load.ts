/**
 * Build the configuration from environment variables and an optional file, JSON or YAML (by its
 * extension: `.yaml`/`.yml` is YAML, anything else JSON): the file (`SLOTGATE_CONFIG`) is read first, then each variable that is set overrides its field. Every
 * problem becomes one line naming the variable or field, the value and what is expected; the
 * caller exits with code 2 and starts nothing.
 */
import * as v from "valibot";
import { parseDocument } from "yaml";
import { ConfigError } from "../errors.ts";
import { ClusterSchema, ConfigSchema, withClusterType, type ClusterDocument, type Config } from "./schema.ts";
import { isSecretPath, REDACTED } from "./secrets.ts";

/**
 * `secret`: taken as it is (a password may start or end with spaces); `file`: a file's content,
 * trailing newline trimmed; `yesno`: yes/true or no/false; `switch`: on/off (also yes/no, true/false, 1/0).
 */
type Kind = "string" | "number" | "list" | "secret" | "file" | "yesno" | "switch";

/** Every variable slotgate reads, with the config field it sets. The README's table mirrors it. */
export const ENV_VARIABLES: readonly { name: string; path: string; kind: Kind }[] = [
  { name: "SLOTGATE_LISTEN", path: "listen", kind: "string" },
  { name: "SLOTGATE_SEEDS", path: "clusters.default.seeds", kind: "list" },
  { name: "SLOTGATE_TLS_LISTEN", path: "tls.listen", kind: "string" },
  { name: "SLOTGATE_TLS_CERT", path: "tls.cert", kind: "string" },
  { name: "SLOTGATE_TLS_KEY", path: "tls.key", kind: "string" },
  { name: "SLOTGATE_TLS_CA", path: "tls.ca", kind: "string" },
  { name: "SLOTGATE_LOG_LEVEL", path: "logLevel", kind: "string" },
  { name: "SLOTGATE_LOG_FORMAT", path: "logFormat", kind: "string" },
  { name: "SLOTGATE_SHUTDOWN_TIMEOUT_MS", path: "shutdownTimeoutMs", kind: "number" },
  { name: "SLOTGATE_SHUTDOWN_DELAY_MS", path: "shutdownDelayMs", kind: "number" },
  { name: "SLOTGATE_ADMIN_LISTEN", path: "admin.listen", kind: "string" },
  { name: "SLOTGATE_ADMIN_TOKEN", path: "admin.token", kind: "string" },
  { name: "SLOTGATE_ADMIN_TOKEN_FILE", path: "admin.token", kind: "file" },
  { name: "SLOTGATE_REFRESH_INTERVAL_MS", path: "clusterDefaults.refreshIntervalMs", kind: "number" },
  { name: "SLOTGATE_REFRESH_TIMEOUT_MS", path: "clusterDefaults.refreshTimeoutMs", kind: "number" },
  { name: "SLOTGATE_REDIRECT_REFRESH_THRESHOLD", path: "clusterDefaults.redirectRefreshThreshold", kind: "number" },
  { name: "SLOTGATE_REDIRECT_REFRESH_INTERVAL_MS", path: "clusterDefaults.redirectRefreshIntervalMs", kind: "number" },
  { name: "SLOTGATE_OP_TIMEOUT_MS", path: "clusterDefaults.opTimeoutMs", kind: "number" },
  { name: "SLOTGATE_CONNECT_TIMEOUT_MS", path: "clusterDefaults.connectTimeoutMs", kind: "number" },
  { name: "SLOTGATE_MAX_REDIRECTS", path: "clusterDefaults.maxRedirects", kind: "number" },
  { name: "SLOTGATE_CONNECTIONS_PER_NODE", path: "clusterDefaults.connectionsPerNode", kind: "number" },
  { name: "SLOTGATE_READY_TIMEOUT_MS", path: "clusterDefaults.readyTimeoutMs", kind: "number" },
  { name: "SLOTGATE_DRAIN_TIMEOUT_MS", path: "clusterDefaults.drainTimeoutMs", kind: "number" },
  { name: "SLOTGATE_PROBE_BACKOFF_MIN_MS", path: "clusterDefaults.probeBackoffMinMs", kind: "number" },
  { name: "SLOTGATE_PROBE_BACKOFF_MAX_MS", path: "clusterDefaults.probeBackoffMaxMs", kind: "number" },
  { name: "SLOTGATE_MAX_UNKNOWN_NODES", path: "clusterDefaults.maxUnknownNodes", kind: "number" },
  { name: "SLOTGATE_MAX_UPSTREAM_QUEUE_BYTES", path: "clusterDefaults.maxUpstreamQueueBytes", kind: "number" },
  { name: "SLOTGATE_READ_FROM", path: "clusterDefaults.readFrom", kind: "string" },
  { name: "SLOTGATE_UPSTREAM_USERNAME", path: "clusterDefaults.username", kind: "string" },
  { name: "SLOTGATE_UPSTREAM_PASSWORD", path: "clusterDefaults.password", kind: "secret" },
  { name: "SLOTGATE_UPSTREAM_PASSWORD_FILE", path: "clusterDefaults.password", kind: "file" },
  { name: "SLOTGATE_UPSTREAM_TLS", path: "clusterDefaults.tls.enabled", kind: "switch" },
  { name: "SLOTGATE_UPSTREAM_TLS_CA", path: "clusterDefaults.tls.ca", kind: "string" },
  { name: "SLOTGATE_UPSTREAM_TLS_SERVERNAME", path: "clusterDefaults.tls.servername", kind: "string" },
  { name: "SLOTGATE_MAX_BULK_BYTES", path: "limits.maxBulkBytes", kind: "number" },
  { name: "SLOTGATE_MAX_ARRAY_LENGTH", path: "limits.maxArrayLength", kind: "number" },
  { name: "SLOTGATE_MAX_PENDING_REQUESTS", path: "limits.maxPendingRequests", kind: "number" },
  { name: "SLOTGATE_MAX_CLIENT_OUTPUT_BYTES", path: "limits.maxClientOutputBytes", kind: "number" },
  { name: "SLOTGATE_MAX_QUERY_BUFFER_BYTES", path: "limits.maxQueryBufferBytes", kind: "number" },
  { name: "SLOTGATE_MAX_CLIENT_OWED_BYTES", path: "limits.maxClientOwedBytes", kind: "number" },
  { name: "SLOTGATE_MAX_CLIENTS_MEMORY_BYTES", path: "limits.maxClientsMemoryBytes", kind: "number" },
  { name: "SLOTGATE_SPLIT_CHUNK_PARTS", path: "limits.splitChunkParts", kind: "number" },
  { name: "SLOTGATE_MAX_CLIENTS", path: "limits.maxClients", kind: "number" },
  { name: "SLOTGATE_MAX_DEDICATED_CONNECTIONS", path: "limits.maxDedicatedConnections", kind: "number" },
  { name: "SLOTGATE_CLIENT_IDLE_TIMEOUT_SECONDS", path: "limits.clientIdleTimeoutSeconds", kind: "number" },
  { name: "SLOTGATE_TCP_KEEPALIVE_SECONDS", path: "limits.tcpKeepAliveSeconds", kind: "number" },
  { name: "SLOTGATE_DENY_COMMANDS", path: "denyCommands", kind: "list" },
  { name: "SLOTGATE_REQUIREPASS", path: "requirepass", kind: "secret" },
  { name: "SLOTGATE_REQUIREPASS_FILE", path: "requirepass", kind: "file" },
  { name: "SLOTGATE_ALLOW_UNPROTECTED", path: "allowUnprotected", kind: "yesno" },
  { name: "SLOTGATE_METRICS", path: "metrics", kind: "switch" },
  { name: "SLOTGATE_WORKERS", path: "workers", kind: "number" },
  { name: "SLOTGATE_SLOWLOG_THRESHOLD_US", path: "slowlogThresholdUs", kind: "number" },
  { name: "SLOTGATE_SLOWLOG_MAX_LEN", path: "slowlogMaxLen", kind: "number" },
];

/** Read by the entry points, not part of the document. */
const META_VARIABLES = new Set(["SLOTGATE_CONFIG", "SLOTGATE_CONFIG_WATCH", "SLOTGATE_CHECK", "SLOTGATE_WORKER", "SLOTGATE_WORKER_PORTS"]);

export interface ConfigSources {
  env: Record<string, string | undefined>;
  /** Reads the file named by SLOTGATE_CONFIG (or a `_FILE` variable); throws when it cannot. */
  readFile(path: string): string;
}

export function loadConfig(sources: ConfigSources): Config {
  const problems: string[] = [];
  const origin = new Map<string, string>();
  let document: Record<string, unknown> = {};
  const file = sources.env.SLOTGATE_CONFIG;
  if (file) {
    let text: string | null = null;
    try {
      text = sources.readFile(file);
    } catch (error) {
      problems.push(`SLOTGATE_CONFIG=${file}: cannot read the config file: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (text !== null) {
      const parsed = parseConfigText(file, text);
      if ("problem" in parsed) problems.push(`SLOTGATE_CONFIG=${file}: cannot read the config file: ${parsed.problem}`);
      else if (parsed.value === null || typeof parsed.value !== "object" || Array.isArray(parsed.value)) problems.push(`${file}: expected ${isYamlPath(file) ? "a YAML mapping" : "a JSON object"}`);
      else document = parsed.value as Record<string, unknown>;
    }
  }
  const known = new Set(ENV_VARIABLES.map((e) => e.name));
  for (const [name, raw] of Object.entries(sources.env)) {
    if (name.startsWith("SLOTGATE_") && !known.has(name) && !META_VARIABLES.has(name) && !name.startsWith("SLOTGATE_TEST")) {
      problems.push(`${name}: unknown variable (see the README's configuration table)`);
    }
    void raw;
  }
  for (const variable of ENV_VARIABLES) {
    const raw = sources.env[variable.name];
    if (raw === undefined || raw === "") continue;
    // Two variables for one field (a secret and its _FILE form): which one was meant is unclear.
    const other = origin.get(variable.path);
    if (other !== undefined) {
      problems.push(`${variable.name}: ${other} is set too; set only one of them`);
      continue;
    }
    let value: unknown;
    if (variable.kind === "file") {
      try {
        // Docker and Kubernetes secrets end in a newline that is no part of the secret.
        value = sources.readFile(raw).replace(/[\r\n]+$/, "");
      } catch (error) {
        problems.push(`${variable.name}=${raw}: cannot read the file: ${error instanceof Error ? error.message : String(error)}`);
        continue;
      }
    } else {
      value = convert(raw, variable.kind);
    }
    setPath(document, variable.path, value);
    origin.set(variable.path, variable.name);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return validateConfig(document, (issue, path) => describe(issue, path, origin, file));
}

/** Whether a config file is YAML (by its name), not JSON. */
export function isYamlPath(path: string): boolean {
  return /\.ya?ml$/i.test(path);
}

/**
 * A config file's text as a document: YAML for `.yaml`/`.yml` (YAML 1.2: `yes` stays a string,
 * duplicate keys are an error), JSON otherwise; a syntax error is one line naming where it is.
 */
export function parseConfigText(path: string, text: string): { value: unknown } | { problem: string } {
  if (isYamlPath(path)) {
    const document = parseDocument(text);
    const error = document.errors[0];
    // The yaml package's messages end in "at line L, column C:" and a snippet; the first line says it all.
    if (error) return { problem: `invalid YAML: ${error.message.split("\n")[0]!.replace(/:$/, "")}` };
    try {
      return { value: document.toJS({ maxAliasCount: 100 }) };
    } catch (error) {
      return { problem: `invalid YAML: ${error instanceof Error ? error.message : String(error)}` };
    }
  }
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    return { problem: `invalid JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/**
 * Validate a whole document (from the file and variables, or from `PUT /config`). A legacy
 * `cluster` field is one cluster named "default"; a lone cluster gets the catch-all route.
 */
export function validateConfig(input: unknown, explain: (issue: v.BaseIssue<unknown>, path: string) => string = (issue, path) => describe(issue, path, new Map(), undefined)): Config {
  const document = normalize(input);
  const result = v.safeParse(ConfigSchema, document);
  if (result.success) return result.output;
  throw new ConfigError(result.issues.map((issue) => explain(issue, v.getDotPath(issue) ?? "")));
}

/** Validate one cluster document (from `PUT /clusters/:name`). */
export function validateCluster(input: unknown): ClusterDocument {
  const result = v.safeParse(ClusterSchema, withClusterType(input));
  if (result.success) return result.output;
  throw new ConfigError(result.issues.map((issue) => describe(issue, v.getDotPath(issue) ?? "", new Map(), undefined)));
}

function normalize(input: unknown): unknown {
  if (input === null || typeof input !== "object" || Array.isArray(input)) return input;
  const document: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  if ("cluster" in document) {
    const legacy = document.cluster;
    delete document.cluster;
    const clusters = isObject(document.clusters) ? { ...document.clusters } : {};
    clusters.default = isObject(clusters.default) && isObject(legacy) ? { ...legacy, ...clusters.default } : legacy;
    document.clusters = clusters;
  }
  if (isObject(document.clusters)) {
    const clusters: Record<string, unknown> = {};
    for (const [name, cluster] of Object.entries(document.clusters)) clusters[name] = withClusterType(cluster);
    document.clusters = clusters;
    const names = Object.keys(clusters);
    const routes = document.routes;
    if (names.length === 1 && document.catchAll === undefined && (routes === undefined || (Array.isArray(routes) && routes.length === 0))) {
      document.catchAll = names[0];
    }
  }
  return document;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function describe(issue: v.BaseIssue<unknown>, path: string, origin: Map<string, string>, file: string | undefined): string {
  if (path === "clusters" && issue.input === undefined) {
    return "clusters: missing: set SLOTGATE_SEEDS (comma-separated host:port) or clusters in the config file";
  }
  // An issue inside a list (cluster.seeds.0) belongs to the variable that set the list.
  const fieldPath = [...origin.keys()].find((p) => path === p || path.startsWith(`${p}.`));
  const variable = fieldPath ? origin.get(fieldPath) : undefined;
  // Cross-field checks report on the whole document; the path's last item holds the field's value.
  const input = issue.path?.length ? issue.path[issue.path.length - 1]!.value : issue.input;
  // A secret is never echoed, even a wrong one: problems are logged and answered over HTTP.
  const value = input === undefined ? "missing" : isSecretPath(path) ? JSON.stringify(REDACTED) : JSON.stringify(input);
  if (variable) return `${variable}=${value}: ${issue.message}`;
  const where = file ? `${path || "(document)"} in ${file}` : path || "(document)";
  if (issue.type === "strict_object" && issue.input !== undefined) return `${where}: unknown field (${issue.message})`;
  return `${where} = ${value}: ${issue.message}`;
}

function convert(raw: string, kind: Kind): unknown {
  if (kind === "list") return raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (kind === "number") return /^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : raw;
  // A password is taken byte for byte: spaces are part of it.
  if (kind === "secret") return raw;
  if (kind === "yesno") {
    const word = raw.trim().toLowerCase();
    return word === "yes" || word === "true" ? true : word === "no" || word === "false" ? false : raw;
  }
  if (kind === "switch") {
    const word = raw.trim().toLowerCase();
    return ["on", "true", "yes", "1"].includes(word) ? true : ["off", "false", "no", "0"].includes(word) ? false : raw;
  }
  return raw.trim();
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split(".");
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (next === null || typeof next !== "object" || Array.isArray(next)) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
}
