/**
 * The routing table: key prefix → backend, longest prefix first, plus an optional catch-all.
 * A table is immutable; reconfiguration builds a new one and swaps it in whole, so a command is
 * always routed by one consistent table.
 */
import { Unavailable, type Backend } from "../../backend/contract.ts";

export interface Route {
  readonly prefix: Uint8Array;
  readonly backend: Backend;
  /** Bytes to strip from the front of matching keys (the prefix length, or 0). */
  readonly strip: number;
  readonly caseInsensitive: boolean;
}

export interface RouteSpec {
  prefix: string;
  backend: Backend;
  removePrefix: boolean;
  caseInsensitive: boolean;
}

const encoder = new TextEncoder();
const NO_CLUSTER = new Unavailable("unrouted", "no cluster is configured");
const SEVERAL = new Unavailable("unrouted", "several clusters are configured and none is the catch-all");

export class RouteTable {
  readonly #routes: Route[];
  readonly #catchAll: Route | null;

  constructor(specs: RouteSpec[], catchAll: Backend | null) {
    this.#routes = specs
      .map((spec) => {
        const prefix = encoder.encode(spec.prefix);
        return {
          prefix: spec.caseInsensitive ? lowerAscii(prefix) : prefix,
          backend: spec.backend,
          strip: spec.removePrefix ? prefix.length : 0,
          caseInsensitive: spec.caseInsensitive,
        };
      })
      // Longest prefix wins; the sort makes the first match the longest.
      .sort((a, b) => b.prefix.length - a.prefix.length);
    this.#catchAll = catchAll ? { prefix: new Uint8Array(0), backend: catchAll, strip: 0, caseInsensitive: false } : null;
  }

  /** The route every key takes, when there are no prefix routes (only a catch-all); else null. */
  get only(): Route | null {
    return this.#routes.length === 0 ? this.#catchAll : null;
  }

  /** The route of `key`, or null when no prefix matches and there is no catch-all. */
  match(key: Uint8Array): Route | null {
    for (const route of this.#routes) {
      if (hasPrefix(key, route.prefix, route.caseInsensitive)) return route;
    }
    return this.#catchAll;
  }

  /**
   * Where commands that every node answers alike go (COMMAND, TIME, EXEC with no keys): the
   * catch-all, else any backend.
   */
  anyBackend(): Backend | Unavailable {
    return this.#catchAll?.backend ?? this.#routes[0]?.backend ?? NO_CLUSTER;
  }

  /**
   * Where commands about the whole keyspace go (KEYS, SCAN, FLUSHALL, INFO's keyspace): the
   * catch-all, or the only backend. With several and no catch-all, none: a guess would answer
   * for one cluster's keys as if they were all.
   */
  datasetBackend(): Backend | Unavailable {
    if (this.#catchAll) return this.#catchAll.backend;
    const all = this.backends();
    if (all.size === 1) return all.values().next().value!;
    return all.size === 0 ? NO_CLUSTER : SEVERAL;
  }

  /** Every backend the table routes to. */
  backends(): Set<Backend> {
    const all = new Set(this.#routes.map((r) => r.backend));
    if (this.#catchAll) all.add(this.#catchAll.backend);
    return all;
  }
}

function hasPrefix(key: Uint8Array, prefix: Uint8Array, caseInsensitive: boolean): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    let c = key[i]!;
    if (caseInsensitive && c >= 65 && c <= 90) c += 32;
    if (c !== prefix[i]) return false;
  }
  return true;
}

function lowerAscii(bytes: Uint8Array): Uint8Array {
  return bytes.map((c) => (c >= 65 && c <= 90 ? c + 32 : c));
}
