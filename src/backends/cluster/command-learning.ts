/**
 * Teaches the app's command table what a cluster's servers know: once the cluster has a complete
 * slot map, one of its primaries is asked `COMMAND` and the rows read from the reply are merged
 * into the table (src/commands/keys.ts). One success per cluster lifetime is enough; a failure
 * (refused, timed out, unreadable) is retried after a later refresh. The request runs in a child
 * of the given scope — the cluster's discovery scope — so removing the cluster cancels it like a
 * refresh, and it is bounded by `timeoutMs`.
 */
import { connectTls, type UpstreamTls } from "../../upstream/tls.ts";
import type { Scope } from "../../scope/scope.ts";
import type { RawCommand } from "../../commands/flags.ts";
import { commandRows } from "../../commands/learn.ts";
import { isAbort } from "../../errors.ts";
import { controlRequest } from "./control-request.ts";
import type { UpstreamAuth } from "../../backend/auth.ts";

/** Where learned rows go: the app's CommandTable. */
export interface CommandLearner {
  /** Merge rows read from a server's COMMAND; returns how many were taken. */
  learn(rows: readonly RawCommand[]): number;
}

export class CommandLearning {
  readonly #scope: Scope;
  readonly #table: CommandLearner;
  readonly #timeoutMs: number;
  readonly #auth: UpstreamAuth | undefined;
  #state: "idle" | "asking" | "learned" = "idle";
  #attempts = 0;
  #lastError: string | null = null;

  readonly #tls: UpstreamTls | undefined;

  /**
   * `scope` owns every attempt; `timeoutMs` bounds each (connect, request and reply); `auth` is said
   * first; `tls` for a TLS cluster.
   */
  constructor(scope: Scope, table: CommandLearner, timeoutMs: number, auth?: UpstreamAuth, tls?: UpstreamTls) {
    this.#scope = scope;
    this.#auth = auth;
    this.#table = table;
    this.#timeoutMs = timeoutMs;
    this.#tls = tls;
  }

  /** True once a server's table was merged. */
  get learned(): boolean {
    return this.#state === "learned";
  }

  /** Attempts started so far. */
  get attempts(): number {
    return this.#attempts;
  }

  /** Why the last attempt failed, or null. */
  get lastError(): string | null {
    return this.#lastError;
  }

  /**
   * A complete slot map was applied: ask one of `nodes` (chosen at random, so a retry may find a
   * better one) unless the table was learned already or an attempt is running.
   */
  afterTopology(nodes: readonly { host: string; port: number; hostname?: string }[]): void {
    if (this.#state !== "idle" || nodes.length === 0 || !this.#scope.isOpen) return;
    const node = nodes[Math.floor(this.#scope.runtime.random() * nodes.length)]!;
    this.#state = "asking";
    this.#attempts++;
    this.#scope.spawn("learn commands", () => this.#ask(node.host, node.port, node.hostname));
  }

  async #ask(host: string, port: number, hostname: string | undefined): Promise<void> {
    let attempt: Scope | null = null;
    try {
      attempt = this.#scope.child(`COMMAND from ${host}:${port}`);
      const reply = await controlRequest(attempt, host, port, ["COMMAND"], this.#timeoutMs, this.#auth, await connectTls(this.#tls, hostname));
      if (reply instanceof Error) throw reply;
      const rows = commandRows(reply);
      if (rows.length === 0) throw new Error("COMMAND reply lists no command slotgate can read");
      this.#table.learn(rows);
      this.#state = "learned";
      this.#lastError = null;
    } catch (error) {
      this.#state = "idle";
      // The cluster is going away: nothing to retry, nothing to report.
      if (isAbort(error) && !this.#scope.isOpen) return;
      this.#lastError = `COMMAND from ${host}:${port}: ${error instanceof Error ? error.message : String(error)}`;
    } finally {
      await attempt?.destroy().catch(() => {});
    }
  }
}
