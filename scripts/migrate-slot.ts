/**
 * A real slot migration between two primaries of a local cluster, done the way
 * `redis-cli --cluster reshard` does it, with a hook in the middle so tests can send traffic while
 * the slot is half-moved and observe -ASK redirections.
 */
import type { RespValue } from "./resp-client.ts";

/**
 * What a migration needs from a cluster. scripts/local-cluster.ts's `LocalCluster` has it all
 * (and wraps this function as `cluster.migrateSlot`); declaring it here keeps the import one way.
 */
export interface MigratableCluster {
  readonly nodes: ReadonlyArray<{ readonly host: string; readonly port: number; readonly id: string }>;
  /** Send one command to a node; the reply as text. Error replies reject. */
  command(port: number, ...args: Array<string | number>): Promise<string>;
  /** Like `command`, but resolves with the decoded reply. */
  reply(port: number, ...args: Array<string | number>): Promise<RespValue>;
  /** Running nodes whose live ROLE is master. */
  primaries(): Promise<ReadonlyArray<{ readonly port: number }>>;
  /** The node owning `slot`. */
  ownerOfSlot(slot: number): Promise<{ readonly port: number }>;
  /** Wait until every node agrees on the slot map. */
  waitForStable(): Promise<void>;
  /** The default user's password of a cluster started with one: MIGRATE passes it on (`AUTH`). */
  readonly auth?: { readonly password: string } | undefined;
}

/** Options for {@link migrateSlot}. */
export interface MigrateSlotOptions {
  /**
   * Runs once the source is MIGRATING and the target IMPORTING, and about half of the slot's keys
   * have moved: keys already moved answer -ASK on the source, the rest are still served there.
   */
  onMigrating?: () => Promise<void>;
  /** Keys per MIGRATE call. Default 100. */
  batchSize?: number;
}

/**
 * Move `slot` and its keys from primary `fromPort` to primary `toPort`: SETSLOT IMPORTING on the
 * target and MIGRATING on the source, MIGRATE the keys in batches (running `onMigrating` half-way),
 * then SETSLOT NODE on the target, the source and every other primary, and wait until all nodes
 * agree that the target owns the slot.
 */
export async function migrateSlot(
  cluster: MigratableCluster,
  slot: number,
  fromPort: number,
  toPort: number,
  options: MigrateSlotOptions = {},
): Promise<void> {
  const batchSize = options.batchSize ?? 100;
  const byPort = (port: number) => {
    const node = cluster.nodes.find((candidate) => candidate.port === port);
    if (node === undefined) throw new Error(`no node of this cluster listens on port ${port}`);
    return node;
  };
  const source = byPort(fromPort);
  const target = byPort(toPort);
  // Importing first, as redis-cli does: a client redirected by -ASK must find the target ready.
  await cluster.command(toPort, "CLUSTER", "SETSLOT", slot, "IMPORTING", source.id);
  await cluster.command(fromPort, "CLUSTER", "SETSLOT", slot, "MIGRATING", target.id);

  const moveBatch = async (limit: number): Promise<number> => {
    const keys = (await cluster.reply(fromPort, "CLUSTER", "GETKEYSINSLOT", slot, limit)) as string[];
    if (keys.length > 0) {
      const auth = cluster.auth ? ["AUTH", cluster.auth.password] : [];
      await cluster.command(fromPort, "MIGRATE", target.host, toPort, "", 0, 10_000, ...auth, "KEYS", ...keys);
    }
    return keys.length;
  };
  const half = Math.floor(Number(await cluster.command(fromPort, "CLUSTER", "COUNTKEYSINSLOT", slot)) / 2);
  for (let moved = 0; moved < half; ) {
    const count = await moveBatch(Math.min(batchSize, half - moved));
    if (count === 0) break;
    moved += count;
  }
  await options.onMigrating?.();
  while ((await moveBatch(batchSize)) > 0) {
    // keep going until the source has no key left in the slot
  }

  // Target first (it bumps its config epoch), then source, then everyone else, as the docs advise.
  const others = (await cluster.primaries()).filter((node) => node.port !== fromPort && node.port !== toPort);
  for (const node of [target, source, ...others]) {
    await cluster.command(node.port, "CLUSTER", "SETSLOT", slot, "NODE", target.id);
  }
  await cluster.waitForStable();
  const owner = await cluster.ownerOfSlot(slot);
  if (owner.port !== toPort) throw new Error(`slot ${slot} ended up on ${owner.port}, not ${toPort}`);
}
