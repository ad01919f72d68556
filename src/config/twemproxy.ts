/**
 * `slotgate --from-twemproxy nutcracker.yml`: a twemproxy (nutcracker) configuration turned into
 * the slotgate configuration that serves the same keys from the same servers. Each Redis pool
 * becomes a standalone cluster with the same `hash`, `hash_tag`, servers, weights and names, which
 * slotgate's ketama ring (backends/pool/ketama.ts) places exactly as twemproxy does.
 *
 * What cannot be carried over is said, one line per setting:
 * - an **error** (the caller prints no configuration and exits 2) when slotgate has no equivalent
 *   for something that decides where keys go: a `distribution` other than ketama, a `hash` slotgate
 *   lacks, a non-zero `redis_db`, a server on a unix socket, a malformed server line;
 * - a **warning** otherwise: settings that change how failures are handled or how connections are
 *   made but never where a key lives (`auto_eject_hosts`, `server_retry_timeout`, `preconnect`...),
 *   memcached pools (left out), a unix-socket `listen`, pools beyond the first (slotgate has one
 *   client port: they become clusters no route points at yet).
 *
 * Twemproxy's own defaults apply to what a pool leaves out: `hash: fnv1a_64`, `distribution:
 * ketama`, `redis: false` (a memcached pool).
 */
import { parseDocument, stringify } from "yaml";
import { KETAMA_HASHES, type KetamaHash } from "../backends/pool/ketama.ts";
import { isLoopbackHost, parseAddress } from "../util/address.ts";

export interface TwemproxyOptions {
  /** Convert only this pool (the others are ignored, without warnings). */
  pool?: string;
}

export interface TwemproxyConversion {
  /** The slotgate configuration document; null when there are errors. */
  document: Record<string, unknown> | null;
  /** Settings carried over only approximately, or left out, each with what slotgate does instead. */
  warnings: string[];
  /** Settings that would move keys if ignored: no document is given. */
  errors: string[];
}

/** Twemproxy's hash functions (nc_hashkit.h), for telling a misspelling from an unsupported one. */
const TWEMPROXY_HASHES = ["one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64", "fnv1a_64", "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins"];
const TWEMPROXY_DISTRIBUTIONS = ["ketama", "modula", "random"];

/** Settings with no slotgate equivalent that never decide where a key lives: what slotgate does instead. */
const IGNORED: Record<string, string> = {
  auto_eject_hosts:
    "slotgate never ejects a server: while one is down its keys are answered with errors instead of moving to the other servers, as with auto_eject_hosts: false",
  server_retry_timeout: "a server marked down (failed connect) or suspect (timed-out request) is probed with a backoff instead (probeBackoffMinMs / probeBackoffMaxMs)",
  server_failure_limit: "a server is marked down by a failed connect, suspect by a timed-out request, and probed until it answers (probeBackoffMinMs / probeBackoffMaxMs)",
  preconnect: "slotgate connects to every server when it starts and pings each until it answers (/readyz)",
  backlog: "the listen backlog is the runtime's default",
  client_connections: "use limits.maxClients (default 10000) to bound clients",
  tcpkeepalive: "TCP keepalive is always on (limits.tcpKeepAliveSeconds, default 300)",
};

const CLUSTER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Convert a nutcracker.yml's text. Never throws: a YAML syntax error is an error line. */
export function fromTwemproxy(text: string, options: TwemproxyOptions = {}): TwemproxyConversion {
  const warnings: string[] = [];
  const errors: string[] = [];
  const parsed = parseDocument(text);
  if (parsed.errors.length > 0) {
    return { document: null, warnings, errors: [`invalid YAML: ${parsed.errors[0]!.message.split("\n")[0]!.replace(/:$/, "")}`] };
  }
  const root: unknown = parsed.toJS({ maxAliasCount: 100 });
  if (!isObject(root) || Object.keys(root).length === 0) {
    return { document: null, warnings, errors: ["expected a YAML mapping of pool names to pools"] };
  }
  let names = Object.keys(root);
  if (options.pool !== undefined) {
    if (!Object.hasOwn(root, options.pool)) {
      return { document: null, warnings, errors: [`no pool '${options.pool}' (pools: ${names.join(", ")})`] };
    }
    names = [options.pool];
  }
  const clusters: Record<string, unknown> = {};
  let listen: string | undefined;
  let listenPool: string | undefined;
  let auth: string | undefined;
  for (const name of names) {
    const pool = root[name];
    if (!isObject(pool)) {
      errors.push(`pool '${name}': expected a mapping of settings`);
      continue;
    }
    if (pool.redis !== true && pool.redis !== "true") {
      warnings.push(`pool '${name}': a memcached pool (redis: ${pool.redis === undefined ? "absent, false by default" : String(pool.redis)}); slotgate speaks only Redis, so it is left out: keep it on twemproxy`);
      continue;
    }
    const cluster = convertPool(name, pool, warnings, errors);
    if (!cluster) continue;
    let clusterName = name;
    if (!CLUSTER_NAME.test(name)) {
      clusterName = name.replace(/[^A-Za-z0-9_.-]/g, "-").replace(/^[^A-Za-z0-9]/, "p").slice(0, 64);
      warnings.push(`pool '${name}': renamed to cluster '${clusterName}' (cluster names are letters, digits, '_', '.', '-')`);
    }
    clusters[clusterName] = cluster.document;
    if (cluster.auth !== undefined) {
      if (auth === undefined) auth = cluster.auth;
      else if (auth !== cluster.auth) {
        warnings.push(`pool '${name}': its redis_auth differs from the first pool's; slotgate has one client password (requirepass): the first pool's is used for clients`);
      }
    }
    if (listenPool === undefined) {
      listenPool = clusterName;
      listen = cluster.listen;
    } else {
      warnings.push(
        `pool '${name}' (listen ${String(pool.listen)}): slotgate has one client port, served by cluster '${listenPool}'; cluster '${clusterName}' is configured but no route points at it: add routes (key prefixes), or run a slotgate per pool with --pool ${name}`,
      );
    }
  }
  if (errors.length > 0) return { document: null, warnings, errors };
  if (listenPool === undefined) return { document: null, warnings, errors: ["no Redis pool to convert (every pool is a memcached pool)"] };
  const document: Record<string, unknown> = {};
  if (listen !== undefined) document.listen = listen;
  document.clusters = clusters;
  document.catchAll = listenPool;
  // Twemproxy's redis_auth is asked of clients too: slotgate's requirepass does the same.
  if (auth !== undefined) document.requirepass = auth;
  else if (listen !== undefined && !isLoopbackHost(parseAddress(listen, true)!.host)) {
    document.allowUnprotected = true;
    warnings.push(`listen ${listen}: clients reached twemproxy there without a password, so allowUnprotected is set; consider requirepass (SLOTGATE_REQUIREPASS) instead`);
  }
  return { document, warnings, errors };
}

/** The document as slotgate reads it: pretty JSON, or YAML. */
export function renderConfig(document: unknown, format: "json" | "yaml"): string {
  return format === "yaml" ? stringify(document).trimEnd() : JSON.stringify(document, null, 2);
}

function convertPool(name: string, pool: Record<string, unknown>, warnings: string[], errors: string[]): { document: Record<string, unknown>; listen?: string; auth?: string } | null {
  const at = `pool '${name}'`;
  const before = errors.length;
  const cluster: Record<string, unknown> = { type: "standalone" };
  const servers = Array.isArray(pool.servers) ? pool.servers : [];
  if (servers.length === 0) errors.push(`${at}: servers: expected a list of "host:port:weight [name]"`);
  cluster.servers = servers.flatMap((line) => {
    const server = parseServer(line);
    if (typeof server === "object" && "problem" in server) {
      errors.push(`${at}: server ${JSON.stringify(line)}: ${server.problem}`);
      return [];
    }
    return [server];
  });
  const hash = pool.hash === undefined ? "fnv1a_64" : String(pool.hash);
  if (KETAMA_HASHES.includes(hash as KetamaHash)) {
    if (hash !== "fnv1a_64") cluster.hash = hash;
  } else {
    const known = TWEMPROXY_HASHES.includes(hash) ? "slotgate has no such hash" : "not a twemproxy hash";
    errors.push(`${at}: hash: ${hash}: ${known}; slotgate hashes keys with ${KETAMA_HASHES.join(", ")}, and any other would move keys`);
  }
  const distribution = pool.distribution === undefined ? "ketama" : String(pool.distribution);
  if (distribution !== "ketama") {
    const known = TWEMPROXY_DISTRIBUTIONS.includes(distribution) ? "slotgate places keys only by ketama" : "not a twemproxy distribution";
    errors.push(`${at}: distribution: ${distribution}: ${known}, and any other would move keys`);
  }
  if (pool.hash_tag !== undefined) {
    const tag = String(pool.hash_tag);
    if (tag.length !== 2) errors.push(`${at}: hash_tag: ${JSON.stringify(tag)}: expected two characters, like "{}"`);
    else cluster.hashTag = tag;
  }
  if (pool.redis_db !== undefined && Number(pool.redis_db) !== 0) {
    errors.push(`${at}: redis_db: ${String(pool.redis_db)}: slotgate always uses database 0, where these keys are not`);
  }
  if (pool.timeout !== undefined) {
    const ms = Number(pool.timeout);
    // Twemproxy's timeout bounds both connecting and waiting for a reply.
    if (Number.isInteger(ms) && ms >= 1) {
      cluster.opTimeoutMs = ms;
      cluster.connectTimeoutMs = ms;
    } else warnings.push(`${at}: timeout: ${String(pool.timeout)}: not a positive number of milliseconds; slotgate's defaults apply (opTimeoutMs 5000, connectTimeoutMs 2000)`);
  }
  if (pool.server_connections !== undefined) {
    const count = Number(pool.server_connections);
    if (Number.isInteger(count) && count >= 1) {
      if (count > 64) warnings.push(`${at}: server_connections: ${count}: slotgate opens at most 64 per server; 64 it is`);
      cluster.connectionsPerNode = Math.min(count, 64);
    } else warnings.push(`${at}: server_connections: ${String(pool.server_connections)}: not a positive number; slotgate's default applies (2)`);
  }
  let auth: string | undefined;
  if (pool.redis_auth !== undefined) {
    auth = String(pool.redis_auth);
    cluster.password = auth;
  }
  let listen: string | undefined;
  if (pool.listen !== undefined) {
    const text = String(pool.listen).trim();
    const address = parseAddress(text.split(/\s+/)[0]!);
    if (address) listen = text.split(/\s+/)[0]!;
    else warnings.push(`${at}: listen ${text}: slotgate listens on TCP host:port only; its default (127.0.0.1:6380, or SLOTGATE_LISTEN) applies`);
  }
  const known = new Set(["listen", "hash", "hash_tag", "distribution", "timeout", "redis", "redis_auth", "redis_db", "server_connections", "servers"]);
  for (const [key, value] of Object.entries(pool)) {
    if (known.has(key)) continue;
    const instead = IGNORED[key];
    // Settings equal to what slotgate does anyway need no word.
    if (key === "auto_eject_hosts" && (value === false || value === "false")) continue;
    warnings.push(instead ? `${at}: ${key}: ${String(value)}: not carried over: ${instead}` : `${at}: ${key}: not a setting slotgate knows; left out`);
  }
  if (errors.length > before) return null;
  return { document: cluster, ...(listen !== undefined && { listen }), ...(auth !== undefined && { auth }) };
}

/**
 * A twemproxy server line, `host:port:weight [name]`, as a slotgate server: `"host:port"` when
 * the weight is 1 and there is no name, else `{ address, weight?, name? }`. The name (or else
 * `host:port`) is what ketama hashes, so it is kept exactly.
 */
function parseServer(line: unknown): string | { address: string; weight?: number; name?: string } | { problem: string } {
  if (typeof line !== "string") return { problem: 'expected a string "host:port:weight [name]"' };
  const [spec, name, ...rest] = line.trim().split(/\s+/);
  if (!spec || rest.length > 0) return { problem: 'expected "host:port:weight [name]"' };
  if (spec.startsWith("/")) return { problem: "a unix socket: slotgate connects to servers over TCP only, and the ring would hash another name" };
  const parts = /^(.+):(\d+):(\d+)$/.exec(spec);
  if (!parts) return { problem: 'expected "host:port:weight [name]"' };
  const [, host, port, weightText] = parts;
  const weight = Number(weightText);
  if (weight < 1 || weight > 1_000_000) return { problem: `weight ${weight}: expected 1 to 1000000` };
  const address = host!.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  if (!parseAddress(address)) return { problem: `${address}: expected host:port (port 1-65535)` };
  if (weight === 1 && name === undefined) return address;
  return { address, ...(weight !== 1 && { weight }), ...(name !== undefined && { name }) };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
