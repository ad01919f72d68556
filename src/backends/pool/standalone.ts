/**
 * A pool of standalone Redis servers (no `CLUSTER` command) sharded by consistent hashing,
 * placing keys exactly where twemproxy's ketama distribution does, so a twemproxy pool can move
 * behind slotgate with its data in place. There is no topology to learn: the pool is ready as
 * soon as it is configured, and a server that fails answers errors until it comes back (down or
 * suspect, then up again once a probe is answered: see upstream/node.ts).
 */
import type { Scope } from "../../scope/scope.ts";
import { Closing } from "../../backend/closing.ts";
import { Unavailable, type Backend, type BackendCapabilities, type BackendStatus, type Redirect } from "../../backend/contract.ts";
import type { UpstreamRequest } from "../../backend/request.ts";
import { KetamaRing, twemproxyServerName, type KetamaHash } from "./ketama.ts";
import { UpstreamNode, type UpstreamNodeOptions } from "../../upstream/node.ts";
import { parseAddress } from "../../util/address.ts";

export interface StandaloneServer {
  address: string;
  weight?: number;
  name?: string;
}

export interface StandaloneOptions extends UpstreamNodeOptions {
  servers: StandaloneServer[];
  hash: KetamaHash;
  hashTag?: string;
}

const CAPABILITIES: BackendCapabilities = { publishReachesEveryNode: false };

export class StandalonePool implements Backend {
  readonly scope: Scope;
  readonly capabilities = CAPABILITIES;
  readonly #ring: KetamaRing;
  readonly #nodes: UpstreamNode[];
  readonly #closing: Closing;
  readonly #noServer: Unavailable;

  constructor(parent: Scope, readonly name: string, options: StandaloneOptions) {
    this.scope = parent.child(`cluster ${name}`);
    this.#closing = new Closing(name);
    this.#noServer = new Unavailable("noServer", `no server available in '${name}'`);
    const servers = options.servers.map((s) => ({ ...s, ...parseAddress(s.address)! }));
    this.#ring = new KetamaRing(
      servers.map((s) => ({ name: twemproxyServerName(s.host, s.port, s.name), weight: s.weight })),
      { hash: options.hash, hashTag: options.hashTag },
    );
    this.#nodes = servers.map(
      (s) =>
        new UpstreamNode(this.scope, s.host, s.port, { ...options, cluster: name }, {
          reply: (_node, request, frame) => request.sink.deliver(request, frame),
          failure: () => {},
        }, () => this.#closing.reason),
    );
  }

  get isReady(): boolean {
    return true;
  }

  readonly ready: Promise<void> = Promise.resolve();

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
      lastError: null,
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
