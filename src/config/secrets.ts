/**
 * Secrets in the configuration document (the admin token, upstream and client passwords): which fields
 * hold one, as data, and the two operations on them. `GET /config` shows every secret as
 * `REDACTED`; a document sent back with `REDACTED` in a secret field keeps the secret in force
 * there, so a client can read the configuration, change one knob and `PUT` it back without
 * knowing (or erasing) the secrets. A new secret field is one more entry in `SECRET_PATHS`.
 */

/** What a secret reads as in every document slotgate shows. */
export const REDACTED = "[redacted]";

/**
 * Dotted paths of the fields that hold secrets; `*` stands for any one key (a cluster's name, say)
 * or any index of a list (each of a user's passwords is a secret of its own).
 */
export const SECRET_PATHS: readonly string[] = ["admin.token", "clusterDefaults.password", "clusters.*.password", "requirepass", "users.*.passwords.*"];

const patterns = (paths: readonly string[]) => paths.map((path) => path.split("."));

/** Whether the dotted `path` (e.g. "admin.token") is a secret field. */
export function isSecretPath(path: string, paths: readonly string[] = SECRET_PATHS): boolean {
  const segments = path.split(".");
  return patterns(paths).some((pattern) => pattern.length === segments.length && pattern.every((p, i) => p === "*" || p === segments[i]));
}

/** A copy of `document` with every secret that is set replaced by `REDACTED`. */
export function redactSecrets<T>(document: T, paths: readonly string[] = SECRET_PATHS): T {
  const copy = cloneJson(document);
  for (const pattern of patterns(paths)) {
    visit(copy, pattern, [], (holder, key) => {
      if (holder[key] !== undefined) holder[key] = REDACTED;
    });
  }
  return copy;
}

/**
 * A copy of `document` in which every secret field holding `REDACTED` holds the secret in force
 * at the same place in `current` instead; `problems` names each `REDACTED` with no secret in
 * force to stand for (the caller refuses the document: `REDACTED` is never stored as a secret).
 */
export function restoreSecrets(document: unknown, current: unknown, paths: readonly string[] = SECRET_PATHS): { document: unknown; problems: string[] } {
  const copy = cloneJson(document);
  const problems: string[] = [];
  for (const pattern of patterns(paths)) {
    visit(copy, pattern, [], (holder, key, path) => {
      if (holder[key] !== REDACTED) return;
      const kept = lookup(current, path);
      if (typeof kept === "string") holder[key] = kept;
      else problems.push(`${path.join(".")}: "${REDACTED}" stands for the secret in force, but none is set there; send the secret itself`);
    });
  }
  return { document: copy, problems };
}

type Holder = Record<string, unknown>;

/** An object, or a list (whose indexes are its keys). */
function isHolder(value: unknown): value is Holder {
  return value !== null && typeof value === "object";
}

/** Call `fn` for every field of `node` that the pattern names (its last segment, in its holder). */
function visit(node: unknown, pattern: readonly string[], path: string[], fn: (holder: Holder, key: string, path: string[]) => void): void {
  if (!isHolder(node)) return;
  const [head, ...rest] = pattern;
  const keys = head === "*" ? Object.keys(node) : Object.hasOwn(node, head!) ? [head!] : [];
  for (const key of keys) {
    if (rest.length === 0) fn(node, key, [...path, key]);
    else visit(node[key], rest, [...path, key], fn);
  }
}

function lookup(node: unknown, path: readonly string[]): unknown {
  let at = node;
  for (const key of path) {
    if (!isHolder(at) || !Object.hasOwn(at, key)) return undefined;
    at = at[key];
  }
  return at;
}

/** A deep copy of a JSON document (configuration documents are plain JSON). */
function cloneJson<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}
