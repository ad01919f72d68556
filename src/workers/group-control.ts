/**
 * The leader's control plane over its group of workers: each change (admin API, config file,
 * SIGHUP) is applied here first, with the single-process rules (./../control/control-plane.ts);
 * once applied, the whole configuration now in force goes to every other worker, and the change
 * is answered only when all of them have applied it — so a removed cluster's scope is closed in
 * every worker before the API answers, and a route added is in force on every worker. Reads
 * (`GET /config`, `/clusters`, `/readyz`) show the leader's view: every worker is given the same
 * configuration and learns the same slot maps.
 *
 * A worker that joins late (they start once the leader listens) is brought up to date the same
 * way. Followers apply with the same validation the leader passed, so they refuse nothing in
 * practice; if one does, or does not answer in time, the change still answers 200 (it is in force
 * on the leader) with a line saying which worker did not follow, and the error is logged.
 */
import type { Logger } from "../log.ts";
import { KNOB_DEFAULTS, type Config } from "../config/schema.ts";
import type { ChangeResult, ClusterView, ControlPlane } from "../control/types.ts";
import type { ScopeInfo } from "../scope/scope.ts";
import type { WorkerChannel } from "./channel.ts";

/** The leader's own control plane, as this wrapper uses it. */
export interface LocalControl extends ControlPlane {
  config(): Config;
}

export class GroupControl implements ControlPlane {
  readonly #local: LocalControl;
  readonly #channel: WorkerChannel;
  readonly #log: Logger;
  /** Changes spread one after another, in the order they were applied here. */
  #spreading: Promise<unknown> = Promise.resolve();

  constructor(local: LocalControl, channel: WorkerChannel, log: Logger) {
    this.#local = local;
    this.#channel = channel;
    this.#log = log;
  }

  config(): Config {
    return this.#local.config();
  }

  replaceConfig(document: unknown): Promise<ChangeResult> {
    return this.#everywhere(() => this.#local.replaceConfig(document));
  }

  putCluster(name: string, document: unknown): Promise<ChangeResult> {
    return this.#everywhere(() => this.#local.putCluster(name, document));
  }

  deleteCluster(name: string, force: boolean): Promise<ChangeResult> {
    return this.#everywhere(() => this.#local.deleteCluster(name, force));
  }

  clusters(): ClusterView[] {
    return this.#local.clusters();
  }

  cluster(name: string): ClusterView | null {
    return this.#local.cluster(name);
  }

  scopes(): ScopeInfo {
    return this.#local.scopes();
  }

  ready(): { ready: boolean; notReady: string[]; reasons?: Record<string, string> } {
    return this.#local.ready();
  }

  /** Bring one worker (just joined) up to date with the configuration in force. */
  joined(index: number): void {
    void this.#queue(async () => {
      const problem = await this.#push(index);
      if (problem !== null) this.#log.error("a worker did not take the configuration in force", { worker: index, problem });
    });
  }

  async #everywhere(change: () => Promise<ChangeResult>): Promise<ChangeResult> {
    return this.#queue(async () => {
      const result = await change();
      if (!result.ok) return result;
      const problems = (await Promise.all(this.#channel.joined.map((index) => this.#push(index)))).filter((p): p is string => p !== null);
      for (const problem of problems) this.#log.error("a worker did not apply the change", { problem });
      return { ok: true, changes: [...result.changes, ...problems] };
    });
  }

  #queue<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#spreading.then(work);
    this.#spreading = run.catch(() => {});
    return run;
  }

  /** Give worker `index` the configuration in force here; null when it applied it, else why not. */
  async #push(index: number): Promise<string | null> {
    const config = this.#local.config();
    try {
      const result = (await this.#channel.request(index, { kind: "config", document: config }, applyBoundMs(config))) as ChangeResult;
      return result.ok ? null : `worker ${index} refused it: ${result.problems.join("; ")}`;
    } catch (error) {
      return `worker ${index} did not apply it: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
}

/**
 * How long a worker may take to apply a configuration: waiting for new clusters to be ready, then
 * draining removed ones, each bounded by its own setting; plus room for the messages.
 */
export function applyBoundMs(config: Config): number {
  const defaults = config.clusterDefaults;
  let ready = 0;
  let drain = 0;
  for (const cluster of Object.values(config.clusters) as { readyTimeoutMs?: number; drainTimeoutMs?: number }[]) {
    ready = Math.max(ready, cluster.readyTimeoutMs ?? defaults.readyTimeoutMs ?? KNOB_DEFAULTS.readyTimeoutMs);
    drain = Math.max(drain, cluster.drainTimeoutMs ?? defaults.drainTimeoutMs ?? KNOB_DEFAULTS.drainTimeoutMs);
  }
  return ready + drain + 10_000;
}
