/**
 * The configuration document, validated with valibot. Every time or size option names its unit.
 * Defaults follow Envoy's Redis cluster where it has one (refresh 5000 ms, refresh timeout
 * 3000 ms, redirect threshold 5) and Redis's own limits elsewhere (512 MiB bulk strings).
 */
import * as v from "valibot";
import { parseAddress } from "../cluster/topology.ts";

const address = v.pipe(
  v.string(),
  v.check((value) => parseAddress(value) !== null, "expected host:port (port 1-65535)"),
);

const listenAddress = v.pipe(
  v.string(),
  v.check((value) => parseAddress(value, true) !== null, "expected host:port (port 0-65535; 0 picks a free port)"),
);

const int = (min: number, max: number, unit: string) =>
  v.pipe(
    v.number(`expected a number of ${unit}`),
    v.integer(`expected a whole number of ${unit}`),
    v.minValue(min, `expected at least ${min} ${unit}`),
    v.maxValue(max, `expected at most ${max} ${unit}`),
  );

const HOUR_MS = 3_600_000;
const GIB = 1024 * 1024 * 1024;

export const ClusterSchema = v.strictObject({
  seeds: v.pipe(v.array(address), v.minLength(1, "expected at least one seed host:port")),
  refreshIntervalMs: v.optional(int(10, HOUR_MS, "milliseconds"), 5000),
  refreshTimeoutMs: v.optional(int(10, HOUR_MS, "milliseconds"), 3000),
  redirectRefreshThreshold: v.optional(int(0, 1_000_000, "redirects"), 5),
  redirectRefreshIntervalMs: v.optional(int(0, HOUR_MS, "milliseconds"), 5000),
  opTimeoutMs: v.optional(int(1, HOUR_MS, "milliseconds"), 5000),
  connectTimeoutMs: v.optional(int(1, HOUR_MS, "milliseconds"), 2000),
  maxRedirects: v.optional(int(0, 100, "redirects"), 5),
  connectionsPerNode: v.optional(int(1, 64, "connections"), 2),
});

export const LimitsSchema = v.strictObject({
  maxBulkBytes: v.optional(int(1, 4 * GIB, "bytes"), 512 * 1024 * 1024),
  maxArrayLength: v.optional(int(1, 2 ** 31 - 1, "elements"), 1024 * 1024),
  maxPendingRequests: v.optional(int(1, 10_000_000, "requests"), 10_000),
  maxClientOutputBytes: v.optional(int(1024, 16 * GIB, "bytes"), 256 * 1024 * 1024),
  maxClients: v.optional(int(1, 1_000_000, "clients"), 10_000),
});

export const ConfigSchema = v.strictObject({
  listen: v.optional(listenAddress, "127.0.0.1:6380"),
  logLevel: v.optional(v.picklist(["debug", "info", "warn", "error", "silent"], "expected one of debug, info, warn, error, silent"), "info"),
  shutdownTimeoutMs: v.optional(int(0, HOUR_MS, "milliseconds"), 10_000),
  cluster: ClusterSchema,
  limits: v.optional(LimitsSchema, {}),
});

export type Config = v.InferOutput<typeof ConfigSchema>;
export type ClusterConfig = v.InferOutput<typeof ClusterSchema>;
export type LimitsConfig = v.InferOutput<typeof LimitsSchema>;
