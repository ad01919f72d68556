/**
 * I/O owned by a scope: TCP connections, listeners and DNS lookups opened through the scope's
 * runtime and registered with it, so that `inspect()` lists them while they live and teardown
 * aborts or closes them. Each refuses with `ScopeClosedError` once the scope has begun closing.
 */
import { ScopeClosedError } from "../errors.ts";
import type { Conn, ConnectOptions, ConnHandlers, Listener, ListenOptions } from "../runtime.ts";
import type { Scope } from "./scope.ts";

/**
 * Open a TCP connection owned by `scope`. Its handlers are dropped once the scope is torn down;
 * teardown destroys the socket (or aborts the pending connect). Listed as `connecting host:port`
 * until it opens, then as `host:port`.
 */
export async function connect(scope: Scope, options: ConnectOptions, handlers: ConnHandlers): Promise<Conn> {
  scope.admit(`connect to ${options.host}:${options.port}`);
  const controller = new AbortController();
  const external = options.signal;
  const onExternalAbort = () => controller.abort(external!.reason);
  if (external?.aborted) controller.abort(external.reason);
  else external?.addEventListener("abort", onExternalAbort, { once: true });
  const name = `${options.host}:${options.port}`;
  const entry = scope.own("socket", `connecting ${name}`, () => controller.abort(new ScopeClosedError(scope.path, `connect to ${name}`)));
  let conn: Conn | null = null;
  const guarded: ConnHandlers = {
    data: scope.guard(handlers.data),
    drain: scope.guard(handlers.drain),
    // The close that follows our own teardown is expected, so it is dropped without counting.
    close: scope.guard((error?: Error) => {
      entry.release();
      handlers.close(error);
    }, false),
  };
  try {
    conn = await scope.runtime.connect({ ...options, signal: controller.signal }, guarded);
  } catch (error) {
    entry.release();
    throw error;
  } finally {
    external?.removeEventListener("abort", onExternalAbort);
  }
  const opened = conn;
  if (controller.signal.aborted) {
    // Resolved after (or in the same turn as) the abort: teardown already disposed the entry,
    // so nobody else would ever destroy this socket.
    entry.release();
    const reason: unknown = controller.signal.reason;
    opened.destroy(reason instanceof Error ? reason : undefined);
    throw reason;
  }
  entry.rename(name);
  entry.setDispose(() => opened.destroy(new ScopeClosedError(scope.path, "keep socket open")));
  return opened;
}

/** Listen for TCP connections on behalf of `scope`; the listener is closed on teardown. */
export async function listen(scope: Scope, options: ListenOptions, accept: (conn: Conn) => ConnHandlers): Promise<Listener> {
  scope.admit(`listen on ${options.host}:${options.port}`);
  const listener = await scope.runtime.listen(options, accept);
  if (!scope.isOpen) {
    // Close began while listening: admit nothing new, and do not leak the socket.
    await listener.close().catch(() => {});
    throw new ScopeClosedError(scope.path, `listen on ${options.host}:${options.port}`);
  }
  scope.own("listener", `${listener.host}:${listener.port}`, () => listener.close());
  return listener;
}

/** Resolve a hostname through the scope's runtime; the lookup is listed while pending and aborted on teardown. */
export async function lookup(scope: Scope, hostname: string): Promise<string[]> {
  scope.admit(`look up '${hostname}'`);
  const controller = new AbortController();
  const entry = scope.own("lookup", hostname, () => controller.abort(new ScopeClosedError(scope.path, "finish lookup")));
  try {
    return await scope.runtime.lookup(hostname, controller.signal);
  } finally {
    entry.release();
  }
}
