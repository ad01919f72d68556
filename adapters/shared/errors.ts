/**
 * The errors every adapter's `connect` and `lookup` reject with, one class each, so callers can
 * rely on one `name` and `code` whatever the runtime (adapters/current.ts lists the rules):
 * a cancelled operation is an `AbortError` with `code` ABORT_ERR, a hostname that did not resolve
 * is a `LookupError` whose `code` is the resolver's (ENOTFOUND, EAI_AGAIN, ...).
 */

/** A cancelled `connect` or `lookup`; `cause` is the signal's reason. */
export class AbortError extends Error {
  override readonly name = "AbortError";
  readonly code = "ABORT_ERR";
  constructor(what: string, cause?: unknown) {
    super(`${what} was aborted`, { cause });
  }
}

/**
 * A hostname that did not resolve. `code` defaults to the cause's own string `code`, else
 * ENOTFOUND; an adapter whose resolver spells codes differently passes the normalised one.
 */
export class LookupError extends Error {
  override readonly name = "LookupError";
  readonly code: string;
  constructor(readonly hostname: string, cause: unknown, code: string | undefined = codeOf(cause)) {
    super(`lookup of '${hostname}' failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.code = code ?? "ENOTFOUND";
  }
}

/** The string `code` property of `error`, if it has one (Node-style system errors do). */
export function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

/**
 * A TLS handshake or TLS setup that failed: a certificate not trusted, expired or for another
 * name, a peer that does not speak TLS, unusable PEM. The message names where and says why (the
 * TLS library's words); `code` is the library's (CERT_HAS_EXPIRED, ...), else TLS_FAILED.
 */
export class TlsError extends Error {
  override readonly name = "TlsError";
  readonly code: string;
  constructor(where: string, cause: unknown) {
    super(`TLS with ${where} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.code = codeOf(cause) ?? "TLS_FAILED";
  }
}
