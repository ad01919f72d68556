/**
 * The discovery session of one cluster: learns the slot map with `CLUSTER SLOTS`, every
 * `refreshIntervalMs`, early after redirects or failures (never more often than
 * `redirectRefreshIntervalMs`), and with backoff after a failed round. A round asks known nodes
 * (in random order) and the seeds; a candidate that does not resolve, refuses or hangs does not
 * hold up the others, because the next candidate starts as soon as one fails or `hedgeDelayMs`
 * passes. Each round is a child scope, so whatever is still running when a round ends — a
 * lookup, a connect, a request — is cancelled with it. A failed round says why in one word per
 * candidate (`RefreshError.causes`: ECONNREFUSED, ENOTFOUND, timeout...), for the log.
 *
 * The periodic wait is jittered, and with several workers (`share`, ./topology-exchange.ts) a
 * map one worker learns is applied by every other one as its own round's result and starts its
 * wait over: the first worker to wake asks for all, so the group sends about one `CLUSTER SLOTS`
 * per `refreshIntervalMs` whatever the number of workers.
 */
import type { Scope } from "../../scope/scope.ts";
import { lookup } from "../../scope/io.ts";
import { sleep, withTimeout } from "../../scope/time.ts";
import { causeOf, isAbort } from "../../errors.ts";
import { ReplyError } from "../../resp/errors.ts";
import { controlRequest } from "./control-request.ts";
import { parseClusterSlots, type NodeAddress, type Topology, TopologyError } from "./topology.ts";
import { formatAddress, isIpLiteral } from "../../util/address.ts";
import { connectTls, type UpstreamTls } from "../../upstream/tls.ts";
import { UpstreamAuthError, type UpstreamAuth } from "../../backend/auth.ts";
import { fromShared, toShared, type SharedTopology, type TopologyExchange } from "./topology-exchange.ts";

export interface DiscoveryOptions {
  seeds: { host: string; port: number }[];
  /** Credentials said before `CLUSTER SLOTS` (absent: none). */
  auth?: UpstreamAuth;
  refreshIntervalMs: number;
  refreshTimeoutMs: number;
  redirectRefreshIntervalMs: number;
  /** Ask over TLS (a TLS cluster). */
  tls?: UpstreamTls;
  /** Share learned maps with the other workers (absent: one worker, nothing shared). */
  share?: TopologyShare;
}

/**
 * Where a cluster's maps are shared: `key` names the cluster among the workers, and changes when
 * the cluster is replaced, so a replacement never takes its old self's maps.
 */
export interface TopologyShare {
  exchange: TopologyExchange;
  key: string;
}

/** Where a topology to apply comes from: this worker's own round, or another worker's. */
export type TopologySource = "fetched" | "shared";

/** A node to ask; `hostname` is what it announced, checked against its TLS certificate. */
interface Candidate {
  host: string;
  port: number;
  hostname?: string;
}

export interface DiscoveryHost {
  /** Addresses of the nodes in the current topology, to ask first. */
  knownNodes(): Candidate[];
  /**
   * A well-formed, resolved topology to apply; `from` is the candidate that reported it
   * (`host:port`), `source` whether this worker's round fetched it or another worker's did.
   */
  apply(topology: Topology, from: string, source: TopologySource): void;
  /** A round failed; `error` says why. */
  failed(error: RefreshError): void;
  /** A candidate refused the credentials (`error.detail`: the server's words); called for each such answer. */
  authFailed?(error: UpstreamAuthError): void;
  /** Another worker sent something that is not a well-formed topology; it was ignored. */
  sharedIgnored?(): void;
}

/** No candidate of a round answered: `causes` holds one word per candidate, in the order tried. */
export class RefreshError extends Error {
  override readonly name = "RefreshError";
  constructor(message: string, readonly causes: readonly string[]) {
    super(message);
  }

  /** The distinct causes, e.g. `ECONNREFUSED` or `ENOTFOUND,timeout`. */
  get summary(): string {
    return [...new Set(this.causes)].sort().join(",") || "none";
  }
}

/** Why one candidate failed, in one word: a system code, `timeout`, or what was wrong with its reply. */
function candidateCause(error: unknown): string {
  if (error instanceof TopologyError) return "bad-reply";
  if (error instanceof ReplyError) return `reply-${error.prefix}`;
  if (error instanceof UpstreamAuthError) return "auth";
  return causeOf(error);
}

const MIN_BACKOFF_MS = 100;
/** The periodic wait is uniform in [1 - PERIODIC_JITTER, 1] × `refreshIntervalMs`. */
const PERIODIC_JITTER = 0.2;

export class Discovery {
  readonly #scope: Scope;
  readonly #options: DiscoveryOptions;
  readonly #host: DiscoveryHost;
  #rounds = 0;
  #failures = 0;
  #lastRoundAt = Number.NEGATIVE_INFINITY;
  /** When the next round is due unless an early refresh is wanted (runtime ms). */
  #nextRoundAt = 0;
  /** An early refresh was asked for since the last round started. */
  #wanted = false;
  /** A candidate to ask last in the next round (one whose answer wants a second opinion). */
  #askLast: string | null = null;
  #wake: (() => void) | null = null;

  constructor(scope: Scope, options: DiscoveryOptions, host: DiscoveryHost) {
    this.#scope = scope;
    this.#options = options;
    this.#host = host;
  }

  /** Start the refresh loop (and receiving shared maps) in the scope; both end when the scope closes. */
  start(): void {
    this.#subscribe();
    this.#scope.spawn("discovery loop", () => this.#loop());
  }

  /**
   * Ask for an early refresh (after redirects or an upstream failure); rate-limited. `askLast`
   * (`host:port`) is tried after every other candidate, for a second opinion on its answer.
   */
  requestRefresh(askLast?: string): void {
    if (askLast !== undefined) this.#askLast = askLast;
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
      this.#nextRoundAt = this.#scope.runtime.now() + (ok ? this.#periodicDelayMs() : this.#backoffMs());
      await this.#waitForNextRound();
    }
  }

  /**
   * The wait after a successful round, or after a map shared by another worker: uniform in
   * [0.8, 1.0] × `refreshIntervalMs`. Each worker's wait starts over whenever any of them learns a
   * map, so the one that draws the shortest asks for all. With one worker this only makes the
   * refresh come up to a fifth of the interval early.
   */
  #periodicDelayMs(): number {
    return Math.round(this.#options.refreshIntervalMs * (1 - PERIODIC_JITTER * this.#scope.runtime.random()));
  }

  #backoffMs(): number {
    const exp = Math.min(this.#options.refreshIntervalMs, MIN_BACKOFF_MS * 2 ** Math.min(this.#failures, 16));
    // Jitter keeps many proxies from asking the cluster in lockstep.
    return Math.round(exp * (0.5 + this.#scope.runtime.random() / 2));
  }

  /**
   * Sleep until the next round is due: at `#nextRoundAt`, or, once an early refresh is wanted,
   * `redirectRefreshIntervalMs` after the last round started. A wake (a wish for an early refresh,
   * or a map shared by another worker, which moves `#nextRoundAt`) makes it look again.
   */
  async #waitForNextRound(): Promise<void> {
    for (;;) {
      const dueAt = this.#wanted ? this.#lastRoundAt + this.#options.redirectRefreshIntervalMs : this.#nextRoundAt;
      const delayMs = dueAt - this.#scope.runtime.now();
      if (delayMs <= 0) return;
      await this.#sleepUnlessWoken(delayMs);
    }
  }

  /** Sleep `delayMs`, or less if `#wake` is called meanwhile. */
  async #sleepUnlessWoken(delayMs: number): Promise<void> {
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

  /**
   * Receive the maps other workers learn for this cluster, until the scope begins closing: a
   * removed cluster never applies one afterwards.
   */
  #subscribe(): void {
    const share = this.#options.share;
    if (share === undefined) return;
    // Owned before subscribing, so a scope that is already closing refuses before anything is subscribed.
    const subscription = this.#scope.own("resource", "shared topologies", () => {}, { stopAtClose: true });
    // A delivery after unsubscribing would be the exchange's bug: the guard drops it, counted as late.
    const receive = this.#scope.guard((data: SharedTopology) => this.#received(data));
    subscription.setDispose(share.exchange.subscribe(share.key, receive));
  }

  /**
   * A map another worker learned: applied as this worker's own round would apply it (so partial
   * maps are judged the same), and counted as a successful round for scheduling, never re-published.
   */
  #received(data: unknown): void {
    const shared = fromShared(data);
    if (shared === null) {
      this.#host.sharedIgnored?.();
      return;
    }
    // The map meets a pending wish for an early refresh; applying it may raise a new one (a
    // partial map wants a second opinion), so the wish is dropped before, not after.
    this.#wanted = false;
    // Early refreshes are rate-limited from here, as after a round of its own.
    this.#lastRoundAt = this.#scope.runtime.now();
    this.#host.apply({ ranges: shared.ranges }, shared.from, "shared");
    this.#failures = 0;
    this.#nextRoundAt = this.#scope.runtime.now() + this.#periodicDelayMs();
    this.#wake?.();
  }

  /**
   * Offer a map this worker fetched to the others. An exchange that throws is reported through
   * the scope, never taken for a failed round; a scope already torn down publishes nothing.
   */
  #publish(topology: Topology, from: string): void {
    const share = this.#options.share;
    if (share === undefined) return;
    this.#scope.call(publishTo, share, toShared(topology, from), false);
  }

  async #round(): Promise<boolean> {
    this.#wanted = false;
    this.#lastRoundAt = this.#scope.runtime.now();
    const round = this.#scope.child(`refresh ${++this.#rounds}`);
    try {
      const { topology, from } = await this.#firstSuccess(round, this.#candidates());
      this.#host.apply(topology, from, "fetched");
      this.#publish(topology, from);
      return true;
    } catch (error) {
      if (isAbort(error) && !this.#scope.isOpen) throw error;
      this.#host.failed(error instanceof RefreshError ? error : new RefreshError(error instanceof Error ? error.message : String(error), [candidateCause(error)]));
      return false;
    } finally {
      await round.destroy().catch(() => {});
    }
  }

  /** Known nodes first (shuffled), then seeds not among them. */
  #candidates(): Candidate[] {
    const known = this.#host.knownNodes();
    for (let i = known.length - 1; i > 0; i--) {
      const j = Math.floor(this.#scope.runtime.random() * (i + 1));
      [known[i], known[j]] = [known[j]!, known[i]!];
    }
    const seen = new Set(known.map((n) => `${n.host}:${n.port}`));
    const candidates = [...known, ...this.#options.seeds.filter((s) => !seen.has(`${s.host}:${s.port}`))];
    const last = this.#askLast;
    this.#askLast = null;
    if (last === null) return candidates;
    const isLast = (c: { host: string; port: number }) => formatAddress(c.host, c.port) === last;
    return [...candidates.filter((c) => !isLast(c)), ...candidates.filter(isLast)];
  }

  /**
   * Try candidates until one yields a topology. The next one starts when the previous fails or
   * after `hedgeDelayMs`, whichever comes first; the round's scope cancels the losers.
   */
  #firstSuccess(round: Scope, candidates: Candidate[]): Promise<{ topology: Topology; from: string }> {
    const hedgeDelayMs = Math.max(50, Math.floor(this.#options.refreshTimeoutMs / 3));
    return new Promise((resolve, reject) => {
      const errors: string[] = [];
      const causes: string[] = [];
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
            resolve({ topology, from: formatAddress(candidate.host, candidate.port) });
          }, (error) => {
            hedge.cancel();
            // Another candidate answered, or the round is closing: its losers are cancelled, and
            // starting one more would arm a timer in a closed scope.
            if (answered) return;
            if (error instanceof UpstreamAuthError) this.#host.authFailed?.(error);
            errors.push(`${candidate.host}:${candidate.port}: ${error instanceof Error ? error.message : String(error)}`);
            causes.push(candidateCause(error));
            running--;
            if (next < candidates.length && round.isOpen) launch();
            else if (running === 0) reject(new RefreshError(`no node answered CLUSTER SLOTS (${errors.join("; ")})`, causes));
          });
      };
      if (candidates.length === 0) reject(new RefreshError("no seeds configured", ["no-seeds"]));
      else launch();
    });
  }

  /** One candidate, bounded as a whole by `refreshTimeoutMs`: lookups, connect and reply. */
  #ask(round: Scope, candidate: Candidate): Promise<Topology> {
    const { refreshTimeoutMs } = this.#options;
    return withTimeout(round, `discovery via ${candidate.host}:${candidate.port}`, refreshTimeoutMs, async () => {
      const host = await this.#resolve(round, candidate.host);
      // A seed given by name is checked against that name, as the node's own announcement would be.
      const tls = await connectTls(this.#options.tls, candidate.hostname ?? (isIpLiteral(candidate.host) ? undefined : candidate.host));
      const reply = await controlRequest(round, host, candidate.port, ["CLUSTER", "SLOTS"], refreshTimeoutMs, this.#options.auth, tls);
      // A node that wants credentials slotgate does not have is refused credentials too.
      if (reply instanceof ReplyError && reply.prefix === "NOAUTH") throw new UpstreamAuthError(formatAddress(host, candidate.port), reply.message);
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

function publishTo(share: TopologyShare, topology: SharedTopology): void {
  share.exchange.publish(share.key, topology);
}
