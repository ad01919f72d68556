/**
 * The discovery session of one cluster: learns the slot map with `CLUSTER SLOTS`, every
 * `refreshIntervalMs`, early after redirects or failures (never more often than
 * `redirectRefreshIntervalMs`), and with backoff after a failed round. A round asks known nodes
 * (in random order) and the seeds; a candidate that does not resolve, refuses or hangs does not
 * hold up the others, because the next candidate starts as soon as one fails or `hedgeDelayMs`
 * passes. Each round is a child scope, so whatever is still running when a round ends — a
 * lookup, a connect, a request — is cancelled with it.
 */
import type { Scope } from "../../scope/scope.ts";
import { lookup } from "../../scope/io.ts";
import { sleep, withTimeout } from "../../scope/time.ts";
import { isAbort } from "../../errors.ts";
import { controlRequest } from "./control-request.ts";
import { parseClusterSlots, type NodeAddress, type Topology, TopologyError } from "./topology.ts";
import { isIpLiteral } from "../../util/address.ts";

export interface DiscoveryOptions {
  seeds: { host: string; port: number }[];
  refreshIntervalMs: number;
  refreshTimeoutMs: number;
  redirectRefreshIntervalMs: number;
}

export interface DiscoveryHost {
  /** Addresses of the nodes in the current topology, to ask first. */
  knownNodes(): { host: string; port: number }[];
  /** A complete, resolved topology to apply. */
  apply(topology: Topology): void;
  /** A round failed; `error` says why. */
  failed(error: Error): void;
}

const MIN_BACKOFF_MS = 100;

export class Discovery {
  readonly #scope: Scope;
  readonly #options: DiscoveryOptions;
  readonly #host: DiscoveryHost;
  #rounds = 0;
  #failures = 0;
  #lastRoundAt = Number.NEGATIVE_INFINITY;
  /** An early refresh was asked for since the last round started. */
  #wanted = false;
  #wake: (() => void) | null = null;

  constructor(scope: Scope, options: DiscoveryOptions, host: DiscoveryHost) {
    this.#scope = scope;
    this.#options = options;
    this.#host = host;
  }

  /** Start the refresh loop in the scope; it ends when the scope closes. */
  start(): void {
    this.#scope.spawn("discovery loop", () => this.#loop());
  }

  /** Ask for an early refresh (after redirects or an upstream failure); rate-limited. */
  requestRefresh(): void {
    this.#wanted = true;
    this.#wake?.();
  }

  get rounds(): number {
    return this.#rounds;
  }

  async #loop(): Promise<void> {
    for (;;) {
      const ok = await this.#round();
      this.#failures = ok ? 0 : this.#failures + 1;
      await this.#waitForNextRound(ok ? this.#options.refreshIntervalMs : this.#backoffMs());
    }
  }

  #backoffMs(): number {
    const exp = Math.min(this.#options.refreshIntervalMs, MIN_BACKOFF_MS * 2 ** Math.min(this.#failures, 16));
    // Jitter keeps many proxies from asking the cluster in lockstep.
    return Math.round(exp * (0.5 + this.#scope.runtime.random() / 2));
  }

  async #waitForNextRound(delayMs: number): Promise<void> {
    if (!this.#wanted) {
      const early = new AbortController();
      this.#wake = () => early.abort();
      try {
        await sleep(this.#scope, delayMs, early.signal);
      } catch (error) {
        if (!early.signal.aborted) throw error;
      } finally {
        this.#wake = null;
      }
    }
    const sinceLast = this.#scope.runtime.now() - this.#lastRoundAt;
    if (this.#wanted && sinceLast < this.#options.redirectRefreshIntervalMs) {
      await sleep(this.#scope, this.#options.redirectRefreshIntervalMs - sinceLast);
    }
  }

  async #round(): Promise<boolean> {
    this.#wanted = false;
    this.#lastRoundAt = this.#scope.runtime.now();
    const round = this.#scope.child(`refresh ${++this.#rounds}`);
    try {
      const topology = await this.#firstSuccess(round, this.#candidates());
      this.#host.apply(topology);
      return true;
    } catch (error) {
      if (isAbort(error) && !this.#scope.isOpen) throw error;
      this.#host.failed(error instanceof Error ? error : new Error(String(error)));
      return false;
    } finally {
      await round.destroy().catch(() => {});
    }
  }

  /** Known nodes first (shuffled), then seeds not among them. */
  #candidates(): { host: string; port: number }[] {
    const known = this.#host.knownNodes();
    for (let i = known.length - 1; i > 0; i--) {
      const j = Math.floor(this.#scope.runtime.random() * (i + 1));
      [known[i], known[j]] = [known[j]!, known[i]!];
    }
    const seen = new Set(known.map((n) => `${n.host}:${n.port}`));
    return [...known, ...this.#options.seeds.filter((s) => !seen.has(`${s.host}:${s.port}`))];
  }

  /**
   * Try candidates until one yields a topology. The next one starts when the previous fails or
   * after `hedgeDelayMs`, whichever comes first; the round's scope cancels the losers.
   */
  #firstSuccess(round: Scope, candidates: { host: string; port: number }[]): Promise<Topology> {
    const hedgeDelayMs = Math.max(50, Math.floor(this.#options.refreshTimeoutMs / 3));
    return new Promise<Topology>((resolve, reject) => {
      const errors: string[] = [];
      let next = 0;
      let running = 0;
      let answered = false;
      const launch = () => {
        if (next >= candidates.length) return;
        const candidate = candidates[next++]!;
        running++;
        const hedge = round.timer("hedge", hedgeDelayMs, launch);
        round
          .run(`ask ${candidate.host}:${candidate.port}`, () => this.#ask(round, candidate))
          .then((topology) => {
            answered = true;
            resolve(topology);
          }, (error) => {
            hedge.cancel();
            // Another candidate answered, or the round is closing: its losers are cancelled, and
            // starting one more would arm a timer in a closed scope.
            if (answered) return;
            errors.push(`${candidate.host}:${candidate.port}: ${error instanceof Error ? error.message : String(error)}`);
            running--;
            if (next < candidates.length && round.isOpen) launch();
            else if (running === 0) reject(new Error(`no node answered CLUSTER SLOTS (${errors.join("; ")})`));
          });
      };
      if (candidates.length === 0) reject(new Error("no seeds configured"));
      else launch();
    });
  }

  /** One candidate, bounded as a whole by `refreshTimeoutMs`: lookups, connect and reply. */
  #ask(round: Scope, candidate: { host: string; port: number }): Promise<Topology> {
    const { refreshTimeoutMs } = this.#options;
    return withTimeout(round, `discovery via ${candidate.host}:${candidate.port}`, refreshTimeoutMs, async () => {
      const host = await this.#resolve(round, candidate.host);
      const reply = await controlRequest(round, host, candidate.port, ["CLUSTER", "SLOTS"], refreshTimeoutMs);
      if (reply instanceof Error) throw reply;
      const topology = parseClusterSlots(reply, host);
      if (topology.ranges.length === 0) throw new TopologyError("node reports no slots (not part of a cluster yet?)");
      await this.#resolveNodes(round, topology);
      return topology;
    });
  }

  async #resolve(round: Scope, host: string): Promise<string> {
    if (isIpLiteral(host)) return host;
    const addresses = await lookup(round, host);
    if (addresses.length === 0) throw new Error(`${host} resolved to no address`);
    return addresses[0]!;
  }

  /** Resolve hostnames in the reply: a primary that fails aborts the update, a replica is dropped. */
  async #resolveNodes(round: Scope, topology: Topology): Promise<void> {
    const resolveNode = async (node: NodeAddress) => {
      if (!isIpLiteral(node.host)) node.host = await this.#resolve(round, node.host);
    };
    await Promise.all(
      topology.ranges.map(async (range) => {
        await resolveNode(range.primary);
        const kept: NodeAddress[] = [];
        for (const replica of range.replicas) {
          try {
            await resolveNode(replica);
            kept.push(replica);
          } catch (error) {
            if (isAbort(error)) throw error;
          }
        }
        range.replicas = kept;
      }),
    );
  }
}
