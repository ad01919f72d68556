/**
 * Credentials slotgate presents to Redis (`username`/`password` of a cluster or pool), and what
 * a refusal of them becomes. Every upstream connection says them first: `AUTH [user] pass`, or
 * `HELLO 3 AUTH user pass` on a RESP3 connection (one command; user `default` when only a
 * password is set, as Redis's own `AUTH pass` means).
 *
 * A refusal is never relayed (`WRONGPASS`, `NOAUTH` would read as the client's own fault): the
 * client gets `-ERR upstream authentication failed for cluster 'NAME'`, and the server's words
 * go to the log, once per node (`AuthFailures`). No message here ever holds the password.
 */
import type { Logger } from "../log.ts";
import { Unavailable } from "./contract.ts";

export interface UpstreamAuth {
  /** An ACL user; absent: Redis's `default` user. */
  readonly username?: string;
  readonly password: string;
}

/** The arguments of the prelude that authenticates a connection speaking `protocol`. */
export function authArgs(auth: UpstreamAuth, protocol: 2 | 3): string[] {
  if (protocol === 3) return ["HELLO", "3", "AUTH", auth.username ?? "default", auth.password];
  return auth.username === undefined ? ["AUTH", auth.password] : ["AUTH", auth.username, auth.password];
}

/** What a client reads when the backend `cluster` (or, without a name, the node `address`) refused slotgate's credentials. */
export function authRefusal(cluster: string | undefined, address?: string): Unavailable {
  return new Unavailable("auth", cluster === undefined ? `upstream authentication failed for ${address ?? "a node"}` : `upstream authentication failed for cluster '${cluster}'`);
}

/** A control request (`CLUSTER SLOTS`, `COMMAND`) whose credentials the node refused; `detail` is the server's error text. */
export class UpstreamAuthError extends Error {
  override readonly name = "UpstreamAuthError";
  readonly code = "auth";
  constructor(readonly address: string, readonly detail: string) {
    super(`upstream ${address} refused slotgate's credentials: ${detail}`);
  }
}

/**
 * Auth failures of one backend, logged once per node however many connections, probes or
 * refresh rounds meet them; `last` says why the backend is not ready.
 */
export class AuthFailures {
  readonly #logged = new Set<string>();
  #last: string | null = null;

  constructor(readonly cluster: string, readonly log: Logger) {}

  /** `address` refused the credentials; `detail` is the server's error text (never holds the password). */
  failed(address: string, detail: string): void {
    this.#last = `upstream authentication failed for cluster '${this.cluster}': ${address} answered ${detail}`;
    if (this.#logged.has(address)) return;
    this.#logged.add(address);
    this.log.warn("upstream authentication failed", { cluster: this.cluster, address, error: detail });
  }

  /** The last refusal, or null when none was met (or one succeeded since: see `succeeded`). */
  get last(): string | null {
    return this.#last;
  }

  /**
   * Credentials were accepted (by `address`, when given: a later refusal there is a new incident,
   * logged again): the backend's reason to be unready is no longer them.
   */
  succeeded(address?: string): void {
    if (address !== undefined) this.#logged.delete(address);
    this.#last = null;
  }
}
