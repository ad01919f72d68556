/**
 * TLS to a cluster's nodes. The PEM material is read once per cluster (on its first connect, and
 * again only by a replacement cluster), and every connection of the cluster — shared, replica, a
 * client's own, pub/sub, CLUSTER SLOTS, COMMAND — asks `connectTls` for its options, naming the
 * node it goes to so that its certificate is checked against the right name.
 */
import type { ConnectTls } from "../runtime.ts";

/** A cluster's TLS to its nodes. */
export interface UpstreamTls {
  /**
   * The CA, client certificate and key as PEM text, `servername` and `insecure` as configured.
   * Rejects (every time, with the same error) when a file cannot be read: each connect then fails
   * saying which file and why, like a node that cannot be reached.
   */
  material(): Promise<ConnectTls>;
}

/**
 * The TLS options of one connection, or undefined without TLS. The name verified (and sent as
 * SNI) is the configured `servername`, else `hostname` — what the node announced in CLUSTER SLOTS,
 * or the seed's hostname — else the runtime's default, the address connected to.
 */
export async function connectTls(tls: UpstreamTls | undefined, hostname: string | undefined): Promise<ConnectTls | undefined> {
  if (!tls) return undefined;
  const material = await tls.material();
  const servername = material.servername ?? hostname;
  return servername === undefined ? material : { ...material, servername };
}

/** Files of a cluster's TLS, as configured; `read` reads one (the runtime's `readTextFile`). */
export interface UpstreamTlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
  insecure?: boolean;
}

/** An `UpstreamTls` that reads `files` on first use and keeps what it read (or why it failed). */
export function upstreamTls(files: UpstreamTlsFiles, read: (path: string) => Promise<string>): UpstreamTls {
  let loading: Promise<ConnectTls> | undefined;
  const file = (what: string, path: string | undefined): Promise<string | undefined> =>
    path === undefined
      ? Promise.resolve(undefined)
      : read(path).catch((error: unknown) => {
          throw new Error(`cannot read the upstream TLS ${what} ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
        });
  return {
    material() {
      loading ??= Promise.all([file("CA", files.ca), file("certificate", files.cert), file("key", files.key)]).then(([ca, cert, key]) => ({
        ...(ca !== undefined && { ca }),
        ...(cert !== undefined && { cert }),
        ...(key !== undefined && { key }),
        ...(files.servername !== undefined && { servername: files.servername }),
        ...(files.insecure && { insecure: true }),
      }));
      return loading;
    },
  };
}
