/**
 * The proxy's own INFO lines, in Redis's field names so that `redis-cli INFO` and dashboards
 * built for Redis read slotgate: `# Stats` (connections, commands, bytes), `# Commandstats`
 * (`cmdstat_<name>:calls=...,usec=...,usec_per_call=...,rejected_calls=...,failed_calls=...`).
 */
import type { ProxyMetrics } from "./proxy-metrics.ts";

export interface StatsSources {
  /** Connections accepted, refused ones included (Redis counts those too). */
  totalConnections: number;
  evictedClients: number;
  /** Monotonic ms now (instantaneous_ops_per_sec). */
  now: number;
}

/** `# Stats` lines; zeros for what only metrics count when they are off. */
export function statsLines(metrics: ProxyMetrics | null, sources: StatsSources): string[] {
  let errors = 0;
  if (metrics !== null) for (const s of metrics.commands.used()) errors += s.failed + s.rejected;
  return [
    `total_connections_received:${sources.totalConnections}`,
    `total_commands_processed:${metrics?.requests ?? 0}`,
    `instantaneous_ops_per_sec:${metrics?.opsPerSec(sources.now) ?? 0}`,
    `total_net_input_bytes:${metrics?.downstreamRxBytes ?? 0}`,
    `total_net_output_bytes:${metrics?.downstreamTxBytes ?? 0}`,
    `rejected_connections:${metrics?.downstreamCxRejected ?? 0}`,
    `evicted_clients:${sources.evictedClients}`,
    `total_error_replies:${errors}`,
  ];
}

/** `# Commandstats` lines, one per command that was called or rejected, by name. */
export function commandstatsLines(metrics: ProxyMetrics | null): string[] {
  if (metrics === null) return [];
  return metrics.commands.used().map((s) => {
    const usec = Math.round(s.usec);
    const perCall = s.calls === 0 ? 0 : s.usec / s.calls;
    return `cmdstat_${s.name}:calls=${s.calls},usec=${usec},usec_per_call=${perCall.toFixed(2)},rejected_calls=${s.rejected},failed_calls=${s.failed}`;
  });
}
