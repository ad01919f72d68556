/**
 * What a change to each field of the configuration does while slotgate runs, as data: every
 * field `PUT /config` (or a re-read config file) can change either applies live — and `applies`
 * says when and to what — or is refused with 409 and `reason`. Nothing is accepted and ignored.
 *
 * The table is typed by the schema's own output (`Config`, `LimitsConfig`, `AdminConfig`), so a
 * field added to the schema does not compile until it is given a row here, and it is checked
 * against the schema's entries when the module loads. README's "Live changes" table says the same
 * in prose; keep them together.
 */
import { ConfigSchema, LimitsSchema, AdminSchema, type AdminConfig, type Config, type LimitsConfig } from "../config/schema.ts";
import { isSecretPath } from "../config/secrets.ts";

/** How one field takes a change. */
export type FieldRule =
  /** Applied by the change itself; `applies` says when and to what, e.g. "to the next command". */
  | { readonly kind: "live"; readonly applies: string; readonly listed?: "per cluster" }
  /** Refused with 409: `reason` says why, and what to do instead. */
  | { readonly kind: "restart"; readonly reason: string }
  /** An object whose fields each have their own rule. */
  | { readonly kind: "fields"; readonly fields: Readonly<Record<string, FieldRule>> };

type Rules<T> = { readonly [K in keyof Required<T>]: FieldRule };

const RESTART = "restart slotgate to change it";

const LIMITS: Rules<LimitsConfig> = {
  maxBulkBytes: {
    kind: "live",
    applies: "to clients that connect afterwards; every cluster is replaced, so its upstream connections read replies up to the new size",
  },
  maxArrayLength: { kind: "live", applies: "to clients that connect afterwards; connected clients keep the limit they connected with" },
  maxPendingRequests: { kind: "live", applies: "to clients that connect afterwards; connected clients keep the limit they connected with" },
  maxClientOutputBytes: { kind: "live", applies: "to clients that connect afterwards; connected clients keep the limit they connected with" },
  maxClients: {
    kind: "live",
    applies: "at once: every new connection is admitted against it; clients already connected stay, even over a lowered limit",
  },
  maxDedicatedConnections: {
    kind: "live",
    applies: "at once: every new blocked command, transaction or subscription is admitted against it; connections already held stay",
  },
  maxQueryBufferBytes: { kind: "live", applies: "to clients that connect afterwards; connected clients keep the limit they connected with" },
  maxClientOwedBytes: { kind: "live", applies: "to clients that connect afterwards; connected clients keep the limit they connected with" },
  maxClientsMemoryBytes: { kind: "live", applies: "at once: it bounds all clients together, checked as each one's memory changes" },
  splitChunkParts: { kind: "live", applies: "to clients that connect afterwards; connected clients keep the step they connected with" },
  clientIdleTimeoutSeconds: { kind: "live", applies: "to clients that connect afterwards; connected clients keep the timeout they connected with" },
  tcpKeepAliveSeconds: {
    kind: "live",
    applies: "to clients that connect afterwards; every cluster is replaced, so its upstream connections use it",
  },
};

const ADMIN: Rules<AdminConfig> = {
  listen: { kind: "restart", reason: `the admin API is bound once, at start (and serves this very change); ${RESTART}` },
  token: { kind: "restart", reason: `the admin API's token is fixed at start; ${RESTART}` },
};

/** Every top-level field of the configuration document, in the order changes are listed. */
export const LIVE_FIELDS: Rules<Config> = {
  listen: { kind: "restart", reason: `the client listener is bound once, at start; ${RESTART}` },
  tls: {
    kind: "restart",
    reason: `the TLS listener is bound once, at start (its certificate files are re-read on SIGHUP and when they change); ${RESTART}`,
  },
  admin: { kind: "fields", fields: ADMIN },
  logLevel: { kind: "live", applies: "at once, from the next log line" },
  logFormat: { kind: "live", applies: "at once, from the next log line" },
  shutdownTimeoutMs: { kind: "live", applies: "to the next shutdown (SIGINT, SIGTERM): read when it begins" },
  shutdownDelayMs: { kind: "live", applies: "to the next shutdown (SIGINT, SIGTERM): read when it begins" },
  limits: { kind: "fields", fields: LIMITS },
  clusterDefaults: { kind: "live", applies: "every cluster that inherits a changed knob is replaced (a cluster that sets the knob itself is not)" },
  clusters: { kind: "live", applies: "each cluster is added, replaced or removed as described above", listed: "per cluster" },
  routes: { kind: "live", applies: "at once: the routing table is swapped atomically, from the next command" },
  catchAll: { kind: "live", applies: "at once: the routing table is swapped atomically, from the next command" },
  denyCommands: { kind: "live", applies: "at once, from the next command" },
  requirepass: {
    kind: "live",
    applies: "at once: new AUTHs check the new password; clients logged in as 'default' with a password no longer accepted are closed",
  },
  users: {
    kind: "live",
    applies: "at once: new AUTHs check the new users; logged-in clients take their user's new permissions, and those of a removed or disabled user, or whose password was removed, are closed",
  },
  allowUnprotected: { kind: "live", applies: "checked with the rest of each change: a change that would leave a non-loopback listener without authentication is refused unless it is true" },
  workers: { kind: "restart", reason: `the workers are started once, with the process; ${RESTART}` },
  metrics: { kind: "restart", reason: `every client session and upstream connection is built counting or not; ${RESTART}` },
  slowlogThresholdUs: { kind: "live", applies: "at once, from the next reply written" },
  slowlogMaxLen: { kind: "live", applies: "at once: the oldest entries past a lowered length go" },
};

// The table covers the schema exactly: a field it misses would be accepted and ignored.
checkCovers("", LIVE_FIELDS, ConfigSchema.pipe[0].entries);
checkCovers("limits.", LIMITS, LimitsSchema.entries);
checkCovers("admin.", ADMIN, AdminSchema.entries);

function checkCovers(prefix: string, rules: object, entries: object): void {
  const missing = Object.keys(entries).filter((key) => !Object.hasOwn(rules, key));
  const extra = Object.keys(rules).filter((key) => !Object.hasOwn(entries, key));
  if (missing.length > 0 || extra.length > 0) {
    throw new Error(`LIVE_FIELDS does not match the schema: missing ${missing.map((k) => prefix + k).join(", ") || "none"}; unknown ${extra.map((k) => prefix + k).join(", ") || "none"}`);
  }
}

/** What a change from `current` to `next` does, field by field. */
export interface FieldChanges {
  /** One line per changed field that cannot change while running (the 409's problems). */
  refused: string[];
  /** One line per changed field that applies live, e.g. "updated logLevel (info → debug)". */
  updated: string[];
}

/** Compare two configurations field by field, by the rules of `LIVE_FIELDS`. */
export function fieldChanges(current: Config, next: Config): FieldChanges {
  const out: FieldChanges = { refused: [], updated: [] };
  walk("", LIVE_FIELDS, current, next, out);
  return out;
}

function walk(prefix: string, rules: Readonly<Record<string, FieldRule>>, current: unknown, next: unknown, out: FieldChanges): void {
  for (const [key, rule] of Object.entries(rules)) {
    const path = prefix + key;
    const before = field(current, key);
    const after = field(next, key);
    if (same(before, after)) continue;
    switch (rule.kind) {
      case "fields":
        walk(`${path}.`, rule.fields, before, after, out);
        break;
      case "restart":
        out.refused.push(`${path}: cannot change while running${values(path, before, after)}: ${rule.reason}`);
        break;
      case "live":
        if (rule.listed !== "per cluster") out.updated.push(`updated ${path}${values(path, before, after)}`);
        break;
    }
  }
}

function field(object: unknown, key: string): unknown {
  return object !== null && typeof object === "object" ? (object as Record<string, unknown>)[key] : undefined;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** " (before → after)" for a scalar that is no secret; nothing for objects, lists and secrets. */
function values(path: string, before: unknown, after: unknown): string {
  const shown = (value: unknown) => value === undefined || ["string", "number", "boolean"].includes(typeof value);
  if (isSecretPath(path) || !shown(before) || !shown(after)) return "";
  const text = (value: unknown) => (value === undefined ? "unset" : String(value));
  return ` (${text(before)} → ${text(after)})`;
}
