/**
 * The admin HTTP API (issue "Live configuration"): a runtime-free hono app over a `ControlPlane`.
 * `src/admin/server.ts` serves it through `Runtime.serveHttp`; tests drive `app.fetch` directly.
 *
 * Routes (every answer is JSON, `content-type: application/json`, `cache-control: no-store`):
 *
 * | route                              | answer                                                        |
 * |------------------------------------|---------------------------------------------------------------|
 * | `GET /healthz`            (open)   | 200 `{ status: "ok" }`: the process is alive                  |
 * | `GET /readyz`             (open)   | 200 `{ ready: true, notReady: [] }` or 503 `{ ready: false, notReady, reasons }`; 503 `{ ready: false, reason: "shutting down", notReady }` once shutdown began |
 * | `GET /version`                     | 200 `{ name: "slotgate", version }`                           |
 * | `GET /config`                      | 200 the configuration document in force, secrets redacted     |
 * | `PUT /config`                      | replace the whole document: 200 `{ changes }`, or 400/404/409 `{ errors }` |
 * | `GET /clusters`                    | 200 `{ clusters: ClusterView[] }`                             |
 * | `GET /clusters/:name`              | 200 `ClusterView`, or 404 `{ error: "cluster 'x' is not configured" }` |
 * | `PUT /clusters/:name`              | add or replace one cluster: 200 `{ changes }` or 400/404/409 `{ errors }` |
 * | `DELETE /clusters/:name[?force=true]` | 200 `{ changes }`; 404 unknown; 409 a route still points at it |
 * | `GET /debug/scopes`                | 200 the whole scope tree                                      |
 * | `GET /metrics`                     | 200 Prometheus text (0.0.4; OpenMetrics 1.0 when `Accept` asks), or 404 when metrics are off |
 *
 * `HEAD` works wherever `GET` does. Unknown paths answer 404 `{ error }`; a known path with another
 * method answers 405 `{ error }` with an `Allow` header. A handler failure answers 500 `{ error }`.
 *
 * Decisions:
 * - **Auth.** `/healthz` and `/readyz` are always open: Kubernetes probes cannot send a token, and
 *   they reveal nothing but liveness and the names of clusters not ready. Every other request —
 *   unknown paths included, so the route map is not probeable — needs `Authorization: Bearer
 *   TOKEN` when a token is configured; the token is compared in constant time over its UTF-8
 *   bytes, and a missing or wrong one answers 401 with `WWW-Authenticate: Bearer`.
 * - **No token means loopback only.** `startAdminServer` refuses a non-loopback listen address
 *   without a token. To stop a web page from reaching such a server through DNS rebinding (a
 *   hostile name resolving to 127.0.0.1, which makes its requests same-origin), protected routes
 *   then also require the request's `Host` to be a loopback name or address (else 403).
 *   Cross-origin browser writes are already blocked: PUT and DELETE need a CORS preflight, and no
 *   CORS header is ever sent.
 * - **Bodies.** Write bodies are parsed as JSON whatever their content type (so `curl -d` works);
 *   an empty, non-UTF-8 or malformed body answers 400 `{ error: "invalid JSON body: ..." }`. A
 *   body over `maxBodyBytes` (default 1 MiB, by `content-length` or as read) answers 413 as soon
 *   as it is known, without reading further. The token check runs before any handler reads the
 *   body, and `Runtime.serveHttp` hands the body over as a stream, so a refused request's body is
 *   never read at all.
 * - **Writes are serialised.** PUT and DELETE run their `ControlPlane` call one at a time, in
 *   arrival order (a promise chain in the app, whatever the control plane does itself). The body is
 *   read and parsed before the write queues, so a slow upload never holds up other writes; a
 *   failed write never blocks the next one. Reads never wait for writes.
 */
import { Hono, type Context, type MiddlewareHandler } from "hono";
import type { ChangeResult, ControlPlane } from "../control/types.ts";
import { isLoopbackHost } from "../util/address.ts";
import { redactSecrets } from "../config/secrets.ts";
import { wantsOpenMetrics } from "../metrics/exposition.ts";

export { isLoopbackHost };

export interface AdminAppOptions {
  /**
   * Bearer token every protected route requires. Absent: no token is needed, but protected routes
   * require a loopback `Host`. Must be printable ASCII without spaces (it travels in a header).
   */
  token?: string;
  /** slotgate's version, shown by `GET /version`. */
  version: string;
  /** Largest accepted request body in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** True once slotgate began shutting down: `/readyz` answers 503 from then on, whatever the clusters say. */
  shuttingDown?: () => boolean;
  /** One Prometheus scrape for `GET /metrics`; absent: metrics are off (the route answers 404). */
  metrics?: MetricsScrape | undefined;
}

/** The exposition text of a scrape and its content type; OpenMetrics when asked. */
export type MetricsScrape = (openMetrics: boolean) => { body: string; contentType: string } | Promise<{ body: string; contentType: string }>;

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

type Handler = (c: Context) => Response | Promise<Response>;
type Method = "GET" | "PUT" | "DELETE";

interface Route {
  path: string;
  /** Open routes never require the token (or a loopback Host). */
  open?: boolean;
  methods: Partial<Record<Method, Handler>>;
}

const JSON_HEADERS = {
  "content-type": "application/json",
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
} as const;

/** A JSON response; `undefined` (e.g. from a control plane without a document) becomes `null`. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body) ?? "null", { status, headers: { ...JSON_HEADERS, ...headers } });
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The admin API as a hono app; serve `app.fetch` (see the module comment for routes and decisions). */
export function createAdminApp(control: ControlPlane, options: AdminAppOptions): Hono {
  const token = options.token;
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) {
    throw new Error("admin token must be a non-empty string of printable ASCII characters without spaces");
  }
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 0) {
    throw new Error(`maxBodyBytes must be a non-negative integer, got ${maxBodyBytes}`);
  }
  const expected = token === undefined ? null : new TextEncoder().encode(token);

  const authorize: MiddlewareHandler = async (c, next) => {
    const refusal = expected ? checkToken(c.req.header("authorization"), expected) : checkLoopbackHost(c.req.raw);
    if (refusal) return refusal;
    await next();
  };

  // Writes: each one waits for the previous one to settle (success or failure) before it starts.
  let writes: Promise<unknown> = Promise.resolve();
  const serialised = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = writes.then(fn);
    writes = run.catch(() => {});
    return run;
  };
  const write = async (fn: () => Promise<ChangeResult>): Promise<Response> => {
    const result = await serialised(fn);
    return result.ok ? json({ changes: result.changes }) : json({ errors: result.problems }, result.status);
  };

  const routes: Route[] = [
    { path: "/healthz", open: true, methods: { GET: () => json({ status: "ok" }) } },
    {
      path: "/readyz",
      open: true,
      methods: {
        GET: () => {
          const { ready, notReady, reasons } = control.ready();
          // Load balancers and Kubernetes withdraw the endpoint while clients are still served.
          if (options.shuttingDown?.()) return json({ ready: false, reason: "shutting down", notReady }, 503);
          // `reasons` only when some cluster says why (refused credentials, an unreachable server...).
          const said = reasons !== undefined && Object.keys(reasons).length > 0;
          return json(said ? { ready, notReady, reasons } : { ready, notReady }, ready ? 200 : 503);
        },
      },
    },
    { path: "/version", methods: { GET: () => json({ name: "slotgate", version: options.version }) } },
    {
      path: "/config",
      methods: {
        // Never a secret: each one reads REDACTED, which a PUT may send back to keep it.
        GET: () => json(redactSecrets(control.config())),
        PUT: async (c) => {
          const body = await readJson(c.req.raw, maxBodyBytes);
          if (body instanceof Response) return body;
          return write(() => control.replaceConfig(body.value));
        },
      },
    },
    { path: "/clusters", methods: { GET: () => json({ clusters: control.clusters() }) } },
    {
      path: "/clusters/:name",
      methods: {
        GET: (c) => {
          const name = c.req.param("name")!;
          const view = control.cluster(name);
          return view ? json(view) : json({ error: `cluster '${name}' is not configured` }, 404);
        },
        PUT: async (c) => {
          const name = c.req.param("name")!;
          const body = await readJson(c.req.raw, maxBodyBytes);
          if (body instanceof Response) return body;
          return write(() => control.putCluster(name, body.value));
        },
        DELETE: (c) => {
          const name = c.req.param("name")!;
          const force = parseFlag(c.req.query("force"));
          if (force === null) {
            return json({ error: `query parameter force must be true or false, got '${c.req.query("force")}'` }, 400);
          }
          return write(() => control.deleteCluster(name, force));
        },
      },
    },
    { path: "/debug/scopes", methods: { GET: () => json(control.scopes()) } },
    {
      path: "/metrics",
      methods: {
        GET: async (c) => {
          if (!options.metrics) return json({ error: "metrics are off (SLOTGATE_METRICS=off)" }, 404);
          const { body, contentType } = await options.metrics(wantsOpenMetrics(c.req.header("accept")));
          return new Response(body, { headers: { "content-type": contentType, "cache-control": "no-store" } });
        },
      },
    },
  ];

  const app = new Hono();
  for (const route of routes) {
    if (!route.open) app.use(route.path, authorize);
    const methods = Object.keys(route.methods) as Method[];
    for (const method of methods) app.on(method, route.path, route.methods[method]!);
    const allow = methods.flatMap((m) => (m === "GET" ? ["GET", "HEAD"] : [m])).join(", ");
    app.all(route.path, (c) =>
      json({ error: `method ${c.req.method} is not allowed on ${route.path}; allowed: ${allow}` }, 405, { allow }),
    );
  }
  // Unknown paths are protected too: without the token they answer 401, never 404.
  app.notFound(async (c) => {
    const refusal = expected ? checkToken(c.req.header("authorization"), expected) : checkLoopbackHost(c.req.raw);
    return refusal ?? json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404);
  });
  app.onError((error) => json({ error: `internal error: ${message(error)}` }, 500));
  return app;
}

// ---- auth ----------------------------------------------------------------------------------------

const BEARER = /^Bearer +([^ ]+) *$/i;

/** null when `header` carries the expected bearer token, else the 401 to answer. */
function checkToken(header: string | undefined, expected: Uint8Array): Response | null {
  const match = header === undefined ? null : BEARER.exec(header);
  if (!match) {
    return json({ error: "missing bearer token: send 'Authorization: Bearer TOKEN'" }, 401, {
      "www-authenticate": 'Bearer realm="slotgate-admin"',
    });
  }
  if (!timingSafeEqual(new TextEncoder().encode(match[1]!), expected)) {
    return json({ error: "invalid bearer token" }, 401, {
      "www-authenticate": 'Bearer realm="slotgate-admin", error="invalid_token"',
    });
  }
  return null;
}

/**
 * Whether two byte strings are equal, in time that depends only on `expected`'s length (never on
 * where they first differ, nor on the length of `given`, which the sender knows anyway).
 */
export function timingSafeEqual(given: Uint8Array, expected: Uint8Array): boolean {
  let diff = given.length ^ expected.length;
  const n = given.length;
  for (let i = 0; i < expected.length; i++) {
    // Reading given[i % n] keeps every iteration alike even when `given` is shorter.
    diff |= (n === 0 ? 0 : given[i % n]!) ^ expected[i]!;
  }
  return diff === 0;
}

/** null when the request's Host is a loopback name or address (DNS rebinding guard), else 403. */
function checkLoopbackHost(request: Request): Response | null {
  const host = request.headers.get("host") ?? new URL(request.url).host;
  if (isLoopbackHost(hostOfAuthority(host))) return null;
  return json(
    { error: `host '${host}' is not a loopback address: without a token the admin API only answers requests to localhost` },
    403,
  );
}

/** The host part of `host[:port]` or `[ipv6][:port]`. */
function hostOfAuthority(authority: string): string {
  if (authority.startsWith("[")) {
    const end = authority.indexOf("]");
    return end < 0 ? authority : authority.slice(1, end);
  }
  const colon = authority.indexOf(":");
  return colon < 0 ? authority : authority.slice(0, colon);
}

// ---- bodies --------------------------------------------------------------------------------------

/** The request's body parsed as JSON, or the 400/413 response to answer. */
async function readJson(request: Request, limit: number): Promise<{ value: unknown } | Response> {
  const tooLarge = () => json({ error: `request body exceeds ${limit} bytes` }, 413);
  const declared = request.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > limit) {
    await request.body?.cancel().catch(() => {});
    return tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (request.body) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        return tooLarge();
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  if (size === 0) return json({ error: "invalid JSON body: the body is empty" }, 400);
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return { value: JSON.parse(text) as unknown };
  } catch (error) {
    return json({ error: `invalid JSON body: ${message(error)}` }, 400);
  }
}

/** `?force`, `?force=true|1` → true; absent, `false|0` → false; anything else → null. */
function parseFlag(value: string | undefined): boolean | null {
  if (value === undefined || value === "false" || value === "0") return false;
  if (value === "" || value === "true" || value === "1") return true;
  return null;
}
