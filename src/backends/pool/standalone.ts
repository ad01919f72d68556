/**
 * A pool of standalone Redis servers (no `CLUSTER` command) sharded by consistent hashing,
 * placing keys exactly where twemproxy's ketama distribution does, so a twemproxy pool can move
 * behind slotgate with its data in place.
 *
 * There is no topology to learn, but each key has exactly one server, so the pool is ready only
 * once every server has answered a `PING` with `PONG`: a pool with one server down would fail
 * that server's share of the keys. A readiness probe, owned by the pool's scope, pings the
 * servers that have not answered yet, each on a connection of its own (closed once answered;
 * bounded by `connectTimeoutMs` and `opTimeoutMs`), then again after a backoff — 100 ms doubling
 * up to `refreshIntervalMs`, with jitter — until all have. When the pool begins to close, the
 * probe's connections are closed at once, so it never holds a drain. Once ready, the pool stays
 * ready: a server that fails later answers errors until it comes back (down or suspect, then
 * up again once a probe is answered: see upstream/node.ts). With credentials, every connection —
 * readiness pings included — says them first; a server that refuses them keeps the pool unready,
 * `lastError` saying so, and is logged once.
 */
import type { Scope } from "../../scope/scope.ts";
import { sleep } from "../../scope/time.ts";
import { Closing } from "../../backend/closing.ts";
import { Unavailable, type Backend, type BackendCapabilities, type BackendStatus, type DedicatedConn, type Redirect } from "../../backend/contract.ts";
import { UpstreamRequest, type ReplySink } from "../../backend/request.ts";
import { encodeCommand } from "../../resp/encode.ts";
import { KetamaRing, twemproxyServerName, type KetamaHash } from "./ketama.ts";
import { UpstreamNode, type UpstreamNodeOptions } from "../../upstream/node.ts";
import { parseAddress } from "../../util/address.ts";
import { AuthFailures } from "../../backend/auth.ts";
import { SILENT_LOGGER, type Logger } from "../../log.ts";

export interface StandaloneServer {
  address: string;
  weight?: number;
  name?: string;
}

export interface StandaloneOptions extends UpstreamNodeOptions {
  servers: StandaloneServer[];
  hash: KetamaHash;
  hashTag?: string;
  /** The longest wait between two readiness probes of servers that have not answered, in milliseconds. */
  refreshIntervalMs: number;
}

const CAPABILITIES: BackendCapabilities = { publishReachesEveryNode: false };
const PING = encodeCommand(["PING"]);
const PONG = "+PONG\r\n";
const MIN_PROBE_BACKOFF_MS = 100;

export class StandalonePool implements Backend {
  readonly scope: Scope;
  readonly capabilities = CAPABILITIES;
  readonly #ring: KetamaRing;
  readonly #nodes: UpstreamNode[];
  readonly #closing: Closing;
  readonly #noServer: Unavailable;
  readonly #refreshIntervalMs: number;
  /** Servers that refused the credentials, logged once each. */
  readonly #authFailures: AuthFailures;
  readonly #log: Logger;
  #ready = false;
  #markReady!: () => void;
  /** Why the pool is not ready yet: the last failed probe of a server. */
  #probeError: string | null = null;
  /** The probe's connections in flight. */
  readonly #probes = new Set<DedicatedConn>();
  /** Resolves once every server has answered a PING; never rejects (it stays pending if the pool closes first). */
  readonly ready: Promise<void>;

  constructor(parent: Scope, readonly name: string, options: StandaloneOptions) {
    this.scope = parent.child(`cluster ${name}`);
    this.#closing = new Closing(name);
    this.#noServer = new Unavailable("noServer", `no server available in '${name}'`);
    const servers = options.servers.map((s) => ({ ...s, ...parseAddress(s.address)! }));
    this.#ring = new KetamaRing(
      servers.map((s) => ({ name: twemproxyServerName(s.host, s.port, s.name), weight: s.weight })),
      { hash: options.hash, hashTag: options.hashTag },
    );
    this.#log = options.log ?? SILENT_LOGGER;
    this.#authFailures = new AuthFailures(name, this.#log);
    this.#nodes = servers.map(
      (s) =>
        new UpstreamNode(this.scope, s.host, s.port, { ...options, cluster: name, authFailures: this.#authFailures }, {
          reply: (_node, request, frame) => request.sink.deliver(request, frame),
          failure: () => {},
        }, () => this.#closing.reason),
    );
    this.#refreshIntervalMs = options.refreshIntervalMs;
    this.ready = new Promise((resolve) => (this.#markReady = resolve));
    // The probe stops as soon as close begins: its pings are failed rather than waited for.
    this.scope.onDrain(() => {
      for (const conn of this.#probes) conn.fail(this.#closing.reason ?? `pool '${name}' is closing`);
    });
    this.scope.spawn("readiness probe", () => this.#probe());
  }

  /** Every server has answered a PING. */
  get isReady(): boolean {
    return this.#ready;
  }

  async #probe(): Promise<void> {
    const waiting = new Set(this.#nodes);
    for (let round = 0; ; round++) {
      const answers = await Promise.all([...waiting].map(async (node) => ({ node, reply: await this.#ping(node) })));
      for (const { node, reply } of answers) {
        if (reply === PONG) waiting.delete(node);
        else this.#probeError = `${node.address} did not answer PING: ${reply.startsWith("-") ? reply.slice(1).trimEnd() : JSON.stringify(reply)}`;
      }
      // Refused credentials say more than the PING that could not be sent: the server's words.
      if (waiting.size > 0 && this.#authFailures.last !== null) this.#probeError = this.#authFailures.last;
      if (waiting.size === 0) break;
      // Said once, with the first cause: the probe keeps trying, quietly.
      if (round === 0) this.#log.warn("cluster not ready", { cluster: this.name, cause: this.#probeError, servers: this.#nodes.length, waiting: waiting.size });
      const backoffMs = Math.min(this.#refreshIntervalMs, MIN_PROBE_BACKOFF_MS * 2 ** Math.min(round, 16));
      // Jitter keeps many proxies from probing a recovering server in lockstep.
      await sleep(this.scope, Math.round(backoffMs * (0.5 + this.scope.runtime.random() / 2)));
    }
    this.#ready = true;
    this.#probeError = null;
    this.#log.info("cluster ready", { cluster: this.name, servers: this.#nodes.length });
    this.#markReady();
  }

  /**
   * PING `node` on a connection of its own, closed once answered; resolves with the reply's text
   * (an error reply when the server cannot be reached or does not answer in time), never rejects.
   */
  async #ping(node: UpstreamNode): Promise<string> {
    let answered!: (frame: Uint8Array) => void;
    const reply = new Promise<Uint8Array>((resolve) => (answered = resolve));
    const conn = node.dedicated({ protocol: 2, events: { reply: (_request, frame) => answered(frame), lost: () => {} } });
    if (conn instanceof Unavailable) return `-${conn.message}\r\n`;
    this.#probes.add(conn);
    // A reply comes to `events`; an error (unreachable, timed out, closed) to the request's sink.
    const sink: ReplySink = { deliver: (_request, frame) => answered(frame), deliveryFailed: () => {} };
    const refused = conn.send(new UpstreamRequest(PING, 0, sink, 0));
    if (refused) answered(refused.reply);
    try {
      return new TextDecoder().decode(await reply);
    } finally {
      this.#probes.delete(conn);
      conn.fail("readiness probe done"); // nothing is pending any more: this only closes it
    }
  }

  nodes(): { address: string; pending: number; health: "up" | "down" | "suspect" }[] {
    return this.#nodes.map((n) => ({ address: n.address, pending: n.pendingCount, health: n.health }));
  }

  shardOf(key: Uint8Array): number {
    return this.#ring.serverFor(key);
  }

  anyShard(): number {
    return 0;
  }

  /** Every server, by index. */
  primaries(): number[] {
    return this.#nodes.map((_, index) => index);
  }

  dispatch(request: UpstreamRequest): void {
    const node = this.#nodes[request.slot];
    if (node) node.send(request);
    else request.sink.deliver(request, this.#noServer.reply);
  }

  nodeFor(shard: number): UpstreamNode | Unavailable {
    if (!this.scope.isOpen) return this.#closing.refusal;
    return this.#nodes[shard] ?? this.#noServer;
  }

  /** Standalone servers do not redirect. */
  redirect(): Redirect | Unavailable | null {
    return null;
  }

  /** The ring never changes while the pool lives. */
  onTopology(): () => void {
    return () => {};
  }

  status(): BackendStatus {
    const nodes = this.nodes();
    return {
      type: "standalone",
      ready: this.isReady,
      coveredSlots: nodes.length,
      nodes,
      lastRefreshAt: null,
      lastError: this.#probeError,
      redirects: { moved: 0, ask: 0 },
      refreshes: 0,
      refreshFailures: 0,
      partialMaps: { refused: 0, keptSlots: 0, from: null },
      unknownNodes: { open: 0, refused: 0 },
      scope: this.scope.inspect(),
    };
  }

  /** Close the pool: requests in flight may finish until `deadlineMs`; the rest get `reason`. */
  close(deadlineMs: number, reason: string): Promise<void> {
    this.#closing.begin(reason);
    return this.scope.close({ deadlineMs });
  }

  /** Close with no grace: what is pending is answered `-ERR <reason>` now. */
  destroy(reason: string): Promise<void> {
    this.#closing.begin(reason);
    return this.scope.destroy();
  }
}
