/**
 * What the admin API (src/admin/app.ts) needs from the running proxy: read the configuration,
 * replace it whole or cluster by cluster, and look at clusters and scopes. The implementation
 * (src/control/control-plane.ts) validates, serialises writes and applies them atomically.
 */
import type { ScopeInfo } from "../scope/scope.ts";
import type { BackendStatus } from "../backend/contract.ts";

/** A change was refused; nothing changed. `status` is the HTTP status the admin API answers. */
export interface ChangeRefused {
  ok: false;
  status: 400 | 404 | 409;
  /** One line per problem, naming the field, the value and what is expected. */
  problems: string[];
}

export interface ChangeApplied {
  ok: true;
  /** What the change did, e.g. ["added cluster 'a'", "replaced cluster 'b'", "removed cluster 'c'"]. */
  changes: string[];
}

export type ChangeResult = ChangeApplied | ChangeRefused;

/** One cluster as `GET /clusters/:name` shows it. */
export interface ClusterView extends BackendStatus {
  name: string;
}

export interface ControlPlane {
  /** The configuration document in force, secrets included (`GET /config` shows it redacted). */
  config(): unknown;
  /**
   * Replace the whole document: validated, applied atomically or not at all. A secret field
   * holding `REDACTED` (src/config/secrets.ts) keeps the secret in force. A changed field that
   * cannot change while running refuses the whole change with 409.
   */
  replaceConfig(document: unknown): Promise<ChangeResult>;
  /** Add or replace one cluster (secrets as in `replaceConfig`). */
  putCluster(name: string, document: unknown): Promise<ChangeResult>;
  /** Remove one cluster: 404 when unknown; 409 while a route points at it unless `force`, which removes those routes too. */
  deleteCluster(name: string, force: boolean): Promise<ChangeResult>;
  clusters(): ClusterView[];
  cluster(name: string): ClusterView | null;
  /** The whole scope tree. */
  scopes(): ScopeInfo;
  /**
   * Every routed cluster has a complete slot map (or all its servers, for standalone); `reasons`
   * says, per cluster not ready, its last error when it has one (refused credentials, say).
   */
  ready(): { ready: boolean; notReady: string[]; reasons?: Record<string, string> };
}
