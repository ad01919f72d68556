/**
 * Counters of the connections and requests to one upstream node, kept per cluster and node
 * address (Envoy's `upstream_cx_*` and `upstream_rq_*`). A node's connections add to plain
 * fields as things happen; the object outlives the node (a node that leaves the topology and
 * comes back keeps counting where it was), so counters never go back. Gauges that can be read at
 * scrape time (requests pending) are read there, not kept here.
 */

export class NodeStats {
  /** Connections opened (the connect succeeded), and open now. */
  cxTotal = 0;
  cxActive = 0;
  /** Connects that failed or timed out. */
  cxConnectFail = 0;
  /** Requests written to the node (clients' commands; ASKING and preludes not counted). */
  rqTotal = 0;
  /** Requests that got no reply within `opTimeoutMs`. */
  rqTimeout = 0;
  /** Bytes received from and sent to the node. */
  rxBytes = 0;
  txBytes = 0;

  constructor(readonly cluster: string, readonly node: string) {}
}

/** Counts nothing anyone reads: what a node counts into when metrics are off. */
export const UNCOUNTED = new NodeStats("", "");

/** Every node's counters, by cluster name and node address; bounded by the nodes ever opened. */
export class UpstreamStats {
  readonly #clusters = new Map<string, Map<string, NodeStats>>();

  /** The counters of `node` (`host:port`) of `cluster`, made on first use. Looked up once per node. */
  node(cluster: string, node: string): NodeStats {
    let nodes = this.#clusters.get(cluster);
    if (!nodes) this.#clusters.set(cluster, (nodes = new Map()));
    let stats = nodes.get(node);
    if (!stats) nodes.set(node, (stats = new NodeStats(cluster, node)));
    return stats;
  }

  /** Every node's counters, by cluster then address. */
  all(): NodeStats[] {
    const out: NodeStats[] = [];
    for (const cluster of [...this.#clusters.keys()].sort()) {
      const nodes = this.#clusters.get(cluster)!;
      for (const address of [...nodes.keys()].sort()) out.push(nodes.get(address)!);
    }
    return out;
  }
}
