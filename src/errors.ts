/**
 * Error classes shared across the core. Each has a stable `name` (and a `code` where a caller
 * branches on it) so that logs, tests and the admin API can tell them apart without parsing text.
 */

/** Work was offered to a scope that has begun closing (or has closed). */
export class ScopeClosedError extends Error {
  override readonly name = "ScopeClosedError";
  readonly code = "SCOPE_CLOSED";
  constructor(readonly scopePath: string, what: string) {
    super(`scope '${scopePath}' is closed: cannot ${what}`);
  }
}

/** A scope's teardown collected one or more errors (from tasks, children or finalizers). */
export class ScopeTeardownError extends Error {
  override readonly name = "ScopeTeardownError";
  readonly code = "SCOPE_TEARDOWN";
  constructor(readonly scopePath: string, readonly errors: unknown[]) {
    super(
      `scope '${scopePath}' teardown failed with ${errors.length} error(s): ` +
        errors.map((e) => (e instanceof Error ? e.message : String(e))).join("; "),
    );
  }
}

/** A wait ran past its deadline. */
export class TimeoutError extends Error {
  override readonly name = "TimeoutError";
  readonly code = "ETIMEDOUT";
  constructor(what: string, readonly timeoutMs: number) {
    super(`${what} timed out after ${timeoutMs} ms`);
  }
}

/** The configuration is invalid; `problems` holds one line per problem. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly code = "CONFIG_INVALID";
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join("\n")}`);
  }
}

/** True when `error` is the abort reason of a cancelled wait (ours or the platform's). */
export function isAbort(error: unknown): boolean {
  return (
    error instanceof ScopeClosedError ||
    (error instanceof Error && (error.name === "AbortError" || error.name === "ScopeClosedError"))
  );
}

/**
 * An invariant of the proxy broke (a request answered twice, a part merged twice). It closes
 * the one client whose stream it would corrupt, with an internal error, and is logged with its
 * stack; it never reaches a shared connection or another client.
 */
export class InvariantError extends Error {
  override readonly name = "InvariantError";
  readonly code = "INVARIANT";
}

/** `value` as an Error (a thrown non-Error is wrapped, its text kept). */
export function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/**
 * One word for why an operation failed, for log lines (`cause=ECONNREFUSED`): the system code an
 * adapter or resolver gave (ECONNREFUSED, ECONNRESET, ENOTFOUND, EAI_AGAIN...), `timeout` for a
 * deadline that passed, `aborted` for a cancelled wait, else the error's class name.
 */
export function causeOf(error: unknown): string {
  if (error instanceof TimeoutError) return "timeout";
  if (isAbort(error)) return "aborted";
  const code = (error as { code?: unknown } | null | undefined)?.code;
  if (typeof code === "string" && code !== "") return code === "ETIMEDOUT" ? "timeout" : code;
  return error instanceof Error && error.name !== "Error" ? error.name : "error";
}
