/**
 * The configuration document, validated with valibot. Every time or size option names its unit.
 * Defaults follow Envoy's Redis cluster where it has one (refresh 5000 ms, refresh timeout
 * 3000 ms, redirect threshold 5) and Redis's own limits elsewhere (512 MiB bulk strings).
 *
 * Clusters are named; routes map key prefixes to them (longest prefix wins), with an optional
 * catch-all. `clusterDefaults` holds the knobs every cluster inherits unless it sets its own.
 */
import * as v from "valibot";
import { parseAddress } from "../util/address.ts";
import { KETAMA_HASHES } from "../backends/pool/ketama.ts";
import { READ_FROM, type ReadFrom } from "../backends/cluster/replica-reads.ts";
import { isLoopbackHost } from "../util/address.ts";
import { denyProblem, normalizeDenied } from "../proxy/routing/deny-list.ts";
import { localHandler } from "../proxy/session/local/local-commands.ts";
import { REDACTED } from "./secrets.ts";
import { hashPassword, passwordProblem } from "../acl/users.ts";
import { channelRuleProblem, commandRuleProblem, keyRuleProblem } from "../acl/permissions.ts";
import type { UpstreamAuth } from "../backend/auth.ts";

const answeredLocally = (name: string): boolean => localHandler(name) !== undefined;

const address = v.pipe(
  v.string("expected a host:port string"),
  v.check((value) => parseAddress(value) !== null, "expected host:port (port 1-65535)"),
);

const listenAddress = v.pipe(
  v.string("expected a host:port string"),
  v.check((value) => parseAddress(value, true) !== null, "expected host:port (port 0-65535; 0 picks a free one)"),
);

const int = (min: number, max: number, unit: string) =>
  v.pipe(
    v.number(`expected a number of ${unit}`),
    v.integer(`expected a whole number of ${unit}`),
    v.minValue(min, `expected at least ${min} ${unit}`),
    v.maxValue(max, `expected at most ${max} ${unit}`),
  );

const HOUR_MS = 3_600_000;
/** The most workers `workers` accepts: far above the cores of any machine slotgate runs on. */
export const MAX_WORKERS = 256;
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/** Knobs of one cluster; all optional here, filled from `clusterDefaults` and then the defaults below. */
const knobs = {
  refreshIntervalMs: v.optional(int(10, HOUR_MS, "milliseconds")),
  refreshTimeoutMs: v.optional(int(10, HOUR_MS, "milliseconds")),
  redirectRefreshThreshold: v.optional(int(0, 1_000_000, "redirects")),
  redirectRefreshIntervalMs: v.optional(int(0, HOUR_MS, "milliseconds")),
  opTimeoutMs: v.optional(int(1, HOUR_MS, "milliseconds")),
  connectTimeoutMs: v.optional(int(1, HOUR_MS, "milliseconds")),
  maxRedirects: v.optional(int(0, 100, "redirects")),
  connectionsPerNode: v.optional(int(1, 64, "connections")),
  readyTimeoutMs: v.optional(int(0, HOUR_MS, "milliseconds")),
  drainTimeoutMs: v.optional(int(0, HOUR_MS, "milliseconds")),
  probeBackoffMinMs: v.optional(int(1, HOUR_MS, "milliseconds")),
  probeBackoffMaxMs: v.optional(int(1, HOUR_MS, "milliseconds")),
  maxUnknownNodes: v.optional(int(0, 100_000, "nodes")),
  maxUpstreamQueueBytes: v.optional(int(64 * 1024, 16 * GIB, "bytes")),
};

export const KNOB_DEFAULTS = {
  refreshIntervalMs: 5000,
  refreshTimeoutMs: 3000,
  redirectRefreshThreshold: 5,
  redirectRefreshIntervalMs: 5000,
  opTimeoutMs: 5000,
  connectTimeoutMs: 2000,
  maxRedirects: 5,
  connectionsPerNode: 2,
  readyTimeoutMs: 10_000,
  drainTimeoutMs: 5000,
  /** A node marked down or suspect is probed after this long, then twice as long... */
  probeBackoffMinMs: 100,
  /** ...up to this long between probes. */
  probeBackoffMaxMs: 2000,
  /** Nodes outside the slot map a MOVED or ASK may open connections to (Envoy's max_upstream_unknown_connections). */
  maxUnknownNodes: 100,
  /** Unsent bytes one upstream connection may hold; past it, requests for it fail at once. */
  maxUpstreamQueueBytes: 64 * MIB,
} as const;

export type Knobs = { -readonly [K in keyof typeof KNOB_DEFAULTS]: number };

/**
 * Credentials slotgate says to every node of a cluster or pool (`AUTH`, or `HELLO 3 AUTH`): a
 * password alone is Redis's `default` user. They go as a pair: a cluster that sets either one
 * takes neither from `clusterDefaults`. The password is a secret (./secrets.ts).
 */
const credentials = {
  username: v.optional(v.pipe(v.string("expected a string (an ACL user name)"), v.minLength(1, "expected a non-empty user name"), v.regex(/^\S+$/, "expected a user name without spaces"))),
  password: v.optional(secret(v.pipe(v.string("expected a string"), v.minLength(1, "expected a non-empty password")))),
};

/** Where a Redis Cluster's read-only commands go; standalone servers have no replicas. */
const readFrom = v.optional(v.picklist(READ_FROM, `expected one of ${READ_FROM.join(", ")} (where read-only commands go)`));

const filePath = v.pipe(v.string("expected a file path"), v.minLength(1, "expected a file path"));
const flag = v.boolean("expected true or false (on or off in a variable)");

/**
 * TLS to a cluster's nodes: every connection slotgate opens to them (shared, replica, a client's
 * own, pub/sub, CLUSTER SLOTS, COMMAND). Files are PEM, read when the cluster starts. The node's
 * certificate is verified unless `insecure`; its name is `servername`, else the hostname the
 * node announced in CLUSTER SLOTS (or the seed's hostname), else its address.
 */
export const UpstreamTlsSchema = v.pipe(
  v.strictObject({
    enabled: flag,
    /** CA certificates to trust instead of the system's. */
    ca: v.optional(filePath),
    servername: v.optional(v.pipe(v.string("expected a hostname"), v.minLength(1, "expected a hostname"))),
    /** A client certificate and its key, for nodes that ask for one (tls-auth-clients). */
    cert: v.optional(filePath),
    key: v.optional(filePath),
    /** Skip verifying the nodes' certificates (logged as a warning when the cluster starts). */
    insecure: v.optional(flag),
  }, "expected { enabled, ca?, servername?, cert?, key?, insecure? }"),
  v.check((tls) => (tls.cert === undefined) === (tls.key === undefined), "expected both cert and key, or neither"),
);

/** The client-facing TLS port, in addition to `listen` (Redis's `tls-port` next to `port`). */
export const DownstreamTlsSchema = v.strictObject({
  listen: listenAddress,
  cert: filePath,
  key: filePath,
  /** When set, clients must present a certificate signed by this CA (mTLS). */
  ca: v.optional(filePath),
  minVersion: v.optional(v.picklist(["TLSv1.2", "TLSv1.3"], "expected TLSv1.2 or TLSv1.3")),
}, "a TLS port needs listen, cert and key (ca and minVersion are optional)");

const upstreamTls = v.optional(UpstreamTlsSchema);

export const ClusterDefaultsSchema = v.strictObject({ ...knobs, readFrom, ...credentials, tls: upstreamTls });

const server = v.union(
  [address, v.strictObject({ address, weight: v.optional(int(1, 1_000_000, "weight units")), name: v.optional(v.pipe(v.string(), v.minLength(1))) })],
  "expected host:port or { address, weight?, name? }",
);

/** A Redis Cluster, found through its seeds. */
export const RedisClusterSchema = v.strictObject({
  type: v.optional(v.literal("cluster", 'expected "cluster" or "standalone"'), "cluster"),
  seeds: v.pipe(v.array(address, "expected a list of host:port"), v.minLength(1, "expected at least one seed host:port")),
  ...knobs,
  readFrom,
  ...credentials,
  tls: upstreamTls,
});

/** Plain Redis servers sharded by consistent hashing (ketama, as twemproxy does). */
export const StandaloneSchema = v.strictObject({
  type: v.literal("standalone", 'expected "cluster" or "standalone"'),
  servers: v.pipe(v.array(server, "expected a list of servers"), v.minLength(1, "expected at least one server")),
  hash: v.optional(v.picklist(KETAMA_HASHES, `expected one of ${KETAMA_HASHES.join(", ")}`), "fnv1a_64"),
  hashTag: v.optional(v.pipe(v.string(), v.length(2, 'expected two characters, like "{}"'))),
  ...knobs,
  ...credentials,
  tls: upstreamTls,
});

export const ClusterSchema = v.variant("type", [RedisClusterSchema, StandaloneSchema], 'expected "type" to be "cluster" or "standalone"');

/** A cluster document without `type` is a Redis Cluster. */
export function withClusterType(document: unknown): unknown {
  if (document !== null && typeof document === "object" && !Array.isArray(document) && !("type" in document)) {
    return { type: "cluster", ...document };
  }
  return document;
}

export const RouteSchema = v.strictObject({
  prefix: v.pipe(v.string("expected a string"), v.minLength(1, "expected a non-empty prefix (use catchAll for every key)")),
  cluster: v.pipe(v.string("expected a cluster name"), v.minLength(1)),
  /** Strip the prefix from keys before they are sent. */
  removePrefix: v.optional(v.boolean("expected true or false"), false),
  /** Match the prefix ignoring ASCII case. */
  caseInsensitive: v.optional(v.boolean("expected true or false"), false),
});

export const LimitsSchema = v.strictObject({
  maxBulkBytes: v.optional(int(1, 4 * GIB, "bytes"), 512 * 1024 * 1024),
  maxArrayLength: v.optional(int(1, 2 ** 31 - 1, "elements"), 1024 * 1024),
  maxPendingRequests: v.optional(int(1, 10_000_000, "requests"), 10_000),
  maxClientOutputBytes: v.optional(int(1024, 16 * GIB, "bytes"), 256 * 1024 * 1024),
  /** A client's query buffer (unfinished request, requests read but not run); Redis's client-query-buffer-limit. */
  maxQueryBufferBytes: v.optional(int(MIB, 4 * GIB, "bytes"), GIB),
  /** Bytes owed to a client (replies it has not read) from which its next requests wait, unsent. */
  maxClientOwedBytes: v.optional(int(MIB, 16 * GIB, "bytes"), 8 * MIB),
  /** Memory of all clients together, past which the largest is disconnected; Redis's maxmemory-clients. 0: off. */
  maxClientsMemoryBytes: v.optional(int(0, 1024 * GIB, "bytes"), GIB),
  /** Parts of a split command (MGET, MSET, DEL...) sent per turn of the event loop. */
  splitChunkParts: v.optional(int(1, 1_000_000, "parts"), 256),
  maxClients: v.optional(int(1, 1_000_000, "clients"), 10_000),
  /** Upstream connections held by one client each (blocked commands, transactions), over all clients. */
  maxDedicatedConnections: v.optional(int(0, 1_000_000, "connections"), 1024),
  /** Close a client idle this long (Redis's `timeout`); 0: never. */
  clientIdleTimeoutSeconds: v.optional(int(0, 31_536_000, "seconds"), 0),
  /** TCP keepalive idle time of client and upstream sockets (Redis's `tcp-keepalive`); 0: off. */
  tcpKeepAliveSeconds: v.optional(int(0, 86_400, "seconds"), 300),
});

export const AdminSchema = v.strictObject({
  /** host:port, or "off" to disable the admin API. */
  listen: v.optional(v.union([v.literal("off"), listenAddress], 'expected host:port or "off"'), "127.0.0.1:6390"),
  token: v.optional(secret(v.pipe(v.string(), v.minLength(8, "expected at least 8 characters")))),
});

/** A secret field (see secrets.ts): `REDACTED` stands for the secret in force, never for a value. */
function secret<T extends v.GenericSchema<unknown, string>>(schema: T) {
  return v.pipe(schema, v.check((value: string) => value !== REDACTED, `"${REDACTED}" stands for a secret already in force; send the secret itself`));
}

/** A command to refuse: `FLUSHALL`, or a subcommand as `SCRIPT|FLUSH`; stored upper-case. */
const deniedCommand = v.pipe(
  v.string("expected a command name"),
  v.transform(normalizeDenied),
  v.check((entry) => denyProblem(entry, answeredLocally) === null, (issue) => denyProblem(issue.input as string, answeredLocally) ?? "cannot be denied"),
);

/**
 * A client password (secret): clear text, hashed here with SHA-256 and kept only as `#<64 hex>`,
 * or a digest given as `#<64 hex>` (as Redis's ACL takes it).
 */
const clientPassword = v.pipe(
  v.string("expected a password string"),
  v.check((value: string) => value !== REDACTED, `"${REDACTED}" stands for a secret already in force; send the secret itself`),
  v.check((value: string) => passwordProblem(value) === null, (issue) => passwordProblem(issue.input as string) ?? "bad password"),
  v.transform(hashPassword),
);

const rules = (problem: (rule: string) => string | null, what: string) =>
  v.optional(
    v.array(
      v.pipe(
        v.string(`expected ${what} rule strings`),
        v.check((rule: string) => problem(rule) === null, (issue) => problem(issue.input as string) ?? "bad rule"),
      ),
      `expected a list of ${what} rules`,
    ),
    [],
  );

/** A user clients authenticate as (Redis ACL style); rules apply left to right. */
export const UserSchema = v.strictObject({
  enabled: v.optional(v.boolean("expected true or false"), true),
  passwords: v.pipe(v.array(clientPassword, "expected a list of passwords"), v.minLength(1, "expected at least one password")),
  /** `+@all`, `-@dangerous`, `+get`, `-config|set`, `allcommands`, `nocommands`. */
  commands: rules(commandRuleProblem, "command"),
  /** `~app:*`, `allkeys`, `resetkeys`. */
  keys: rules(keyRuleProblem, "key"),
  /** `&news.*`, `allchannels`, `resetchannels`. */
  channels: rules(channelRuleProblem, "channel"),
});

const userName = v.pipe(v.string(), v.regex(/^[!-~]{1,128}$/, "expected a user name of printable characters, no spaces (at most 128)"));

const clusterName = v.pipe(v.string(), v.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "expected a name of letters, digits, '_', '.', '-' (at most 64)"));

export const ConfigSchema = v.pipe(
  v.strictObject({
    listen: v.optional(listenAddress, "127.0.0.1:6380"),
    tls: v.optional(DownstreamTlsSchema),
    logLevel: v.optional(v.picklist(["debug", "info", "warn", "error", "silent"], "expected one of debug, info, warn, error, silent"), "info"),
    /** `text` (one readable line an event) or `json` (one object a line, for log stores). */
    logFormat: v.optional(v.picklist(["text", "json"], "expected text or json"), "text"),
    shutdownTimeoutMs: v.optional(int(0, HOUR_MS, "milliseconds"), 10_000),
    /** On SIGINT/SIGTERM, how long /readyz answers 503 while clients are still served, before accepting stops. */
    shutdownDelayMs: v.optional(int(0, HOUR_MS, "milliseconds"), 0),
    admin: v.optional(AdminSchema, {}),
    limits: v.optional(LimitsSchema, {}),
    clusterDefaults: v.optional(ClusterDefaultsSchema, {}),
    clusters: v.record(clusterName, ClusterSchema),
    routes: v.optional(v.array(RouteSchema), []),
    catchAll: v.optional(v.pipe(v.string(), v.minLength(1))),
    /** Commands refused with `-ERR command 'name' is disabled by slotgate configuration`. */
    denyCommands: v.optional(v.array(deniedCommand, "expected a list of command names"), []),
    /** The password of the user `default` (Redis's requirepass); a secret, kept hashed. */
    requirepass: v.optional(clientPassword),
    /** Named users clients authenticate as with `AUTH user password`. */
    users: v.optional(v.record(userName, UserSchema, "expected an object of users by name"), {}),
    /** Accept clients on a non-loopback address with no authentication configured (Redis's `protected-mode no`). */
    allowUnprotected: v.optional(v.boolean("expected true or false (yes or no in SLOTGATE_ALLOW_UNPROTECTED)"), false),
    /**
     * Event loops serving the client port (`SLOTGATE_WORKERS`): each worker owns its clusters,
     * slot maps and upstream connections; "auto" is one per CPU core. Only the entry point honours
     * it (src/workers/); 1 runs everything in the process itself.
     */
    workers: v.optional(
      v.union([int(1, MAX_WORKERS, "workers"), v.literal("auto")], `expected a number of workers from 1 to ${MAX_WORKERS}, or "auto" (one per CPU core)`),
      1,
    ),
    /** Count requests per command, time them, keep the slow log (GET /metrics, INFO, SLOWLOG). */
    metrics: v.optional(v.boolean("expected true or false (on or off in SLOTGATE_METRICS)"), true),
    /** Requests slower than this through slotgate go to the slow log (Redis's slowlog-log-slower-than; -1: none, 0: all). */
    slowlogThresholdUs: v.optional(int(-1, HOUR_MS * 1000, "microseconds"), 10_000),
    /** Entries the slow log keeps (Redis's slowlog-max-len). */
    slowlogMaxLen: v.optional(int(0, 100_000, "entries"), 128),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const config = dataset.value;
    const names = Object.keys(config.clusters);
    if (names.length === 0) {
      addIssue({ message: "expected at least one cluster", path: [pathItem(config, "clusters", config.clusters)] });
    }
    config.routes.forEach((route, index) => {
      if (!Object.hasOwn(config.clusters, route.cluster)) {
        addIssue({
          message: `route to unknown cluster '${route.cluster}' (configured: ${names.join(", ") || "none"})`,
          path: [pathItem(config, "routes", config.routes), pathItem(config.routes, index, route), pathItem(route, "cluster", route.cluster)],
        });
      }
    });
    if (config.admin.listen !== "off" && !config.admin.token && !isLoopbackHost(parseAddress(config.admin.listen, true)!.host)) {
      addIssue({
        message: "is not a loopback address: set SLOTGATE_ADMIN_TOKEN (admin.token) to expose the admin API",
        path: [pathItem(config, "admin", config.admin), pathItem(config.admin, "listen", config.admin.listen)],
      });
    }
    if (config.requirepass !== undefined && Object.hasOwn(config.users, "default")) {
      addIssue({
        message: "the user 'default' is defined twice: by requirepass and in users; keep one",
        path: [pathItem(config, "users", config.users), pathItem(config.users, "default", config.users.default)],
      });
    }
    // Protected mode, as Redis's: clients from anywhere need a password unless explicitly allowed.
    if (!config.allowUnprotected && config.requirepass === undefined && Object.keys(config.users).length === 0 && !isLoopbackHost(parseAddress(config.listen, true)!.host)) {
      addIssue({
        message:
          "is not a loopback address and no client authentication is configured: set SLOTGATE_REQUIREPASS (requirepass) or users, " +
          "or SLOTGATE_ALLOW_UNPROTECTED=yes (allowUnprotected: true) to accept clients from anywhere without a password",
        path: [pathItem(config, "listen", config.listen)],
      });
    }
    // The TLS port is a client port like the other: the same protection (a client certificate is
    // not a password; Redis's protected mode does not count it either).
    if (config.tls && !config.allowUnprotected && config.requirepass === undefined && Object.keys(config.users).length === 0 && !isLoopbackHost(parseAddress(config.tls.listen, true)!.host)) {
      addIssue({
        message:
          "is not a loopback address and no client authentication is configured: set SLOTGATE_REQUIREPASS (requirepass) or users, " +
          "or SLOTGATE_ALLOW_UNPROTECTED=yes (allowUnprotected: true) to accept clients from anywhere without a password",
        path: [pathItem(config, "tls", config.tls), pathItem(config.tls, "listen", config.tls.listen)],
      });
    }
    if (config.catchAll !== undefined && !Object.hasOwn(config.clusters, config.catchAll)) {
      addIssue({ message: `catch-all to unknown cluster '${config.catchAll}'`, path: [pathItem(config, "catchAll", config.catchAll)] });
    }
    if (names.length > 0 && config.routes.length === 0 && config.catchAll === undefined) {
      addIssue({ message: "no route: add routes or a catchAll cluster", path: [pathItem(config, "routes", config.routes)] });
    }
    // A user name needs its password: Redis has no AUTH without one.
    const clustersPath = pathItem(config, "clusters", config.clusters);
    const lonelyUser = (document: { username?: string; password?: string }, path: [ReturnType<typeof pathItem>, ...ReturnType<typeof pathItem>[]]) => {
      if (document.username !== undefined && document.password === undefined) {
        addIssue({ message: "a username needs a password (set password too)", path: [...path, pathItem(document, "username", document.username)] });
      }
    };
    lonelyUser(config.clusterDefaults, [pathItem(config, "clusterDefaults", config.clusterDefaults)]);
    for (const name of names) lonelyUser(config.clusters[name]!, [clustersPath, pathItem(config.clusters, name, config.clusters[name])]);
    for (const name of names) {
      const cluster = config.clusters[name]!;
      const knobs = resolveKnobs(cluster, config.clusterDefaults);
      if (knobs.probeBackoffMinMs > knobs.probeBackoffMaxMs) {
        // Reported where the offending value was set: the cluster's own document, else the defaults.
        const own = cluster.probeBackoffMinMs !== undefined || cluster.probeBackoffMaxMs !== undefined;
        const message = `expected at most probeBackoffMaxMs (${knobs.probeBackoffMaxMs} ms)`;
        const field = (document: object) => pathItem(document, "probeBackoffMinMs", knobs.probeBackoffMinMs);
        addIssue({
          message,
          path: own
            ? [pathItem(config, "clusters", config.clusters), pathItem(config.clusters, name, cluster), field(cluster)]
            : [pathItem(config, "clusterDefaults", config.clusterDefaults), field(config.clusterDefaults)],
        });
      }
    }
  }),
);

function pathItem(input: unknown, key: string | number, value: unknown) {
  return { type: "object" as const, origin: "value" as const, input: input as Record<string, unknown>, key: key as string, value };
}

export type Config = v.InferOutput<typeof ConfigSchema>;
export type ClusterDocument = v.InferOutput<typeof ClusterSchema>;
export type RouteConfig = v.InferOutput<typeof RouteSchema>;
export type LimitsConfig = v.InferOutput<typeof LimitsSchema>;
export type AdminConfig = v.InferOutput<typeof AdminSchema>;
export type UserDocument = v.InferOutput<typeof UserSchema>;
export type UpstreamTlsConfig = v.InferOutput<typeof UpstreamTlsSchema>;
export type DownstreamTlsConfig = v.InferOutput<typeof DownstreamTlsSchema>;

/** A cluster's knobs with `clusterDefaults` and the built-in defaults filled in. */
export function resolveKnobs(cluster: Partial<Knobs>, defaults: Partial<Knobs>): Knobs {
  const out = { ...KNOB_DEFAULTS } as Knobs;
  for (const key of Object.keys(KNOB_DEFAULTS) as (keyof Knobs)[]) {
    out[key] = cluster[key] ?? defaults[key] ?? KNOB_DEFAULTS[key];
  }
  return out;
}

/** The credentials a cluster says: its own pair when it sets either field, else `clusterDefaults`'; none without a password. */
export function resolveAuth(cluster: ClusterDocument, defaults: { username?: string; password?: string }): UpstreamAuth | undefined {
  const source = cluster.username !== undefined || cluster.password !== undefined ? cluster : defaults;
  if (source.password === undefined) return undefined;
  return source.username === undefined ? { password: source.password } : { username: source.username, password: source.password };
}

/** A cluster's `readFrom`: its own, else `clusterDefaults`', else `primary` (always, for standalone servers). */
export function resolveReadFrom(cluster: ClusterDocument, defaults: { readFrom?: ReadFrom }): ReadFrom {
  if (cluster.type === "standalone") return "primary";
  return cluster.readFrom ?? defaults.readFrom ?? "primary";
}

/** A cluster's upstream TLS: its own `tls`, else `clusterDefaults`'; undefined when off. */
export function resolveUpstreamTls(cluster: ClusterDocument, defaults: { tls?: UpstreamTlsConfig }): UpstreamTlsConfig | undefined {
  const tls = cluster.tls ?? defaults.tls;
  return tls?.enabled ? tls : undefined;
}
