/**
 * What the explorer knows of the world, to judge replies by: the keys of each kind, every value
 * a client wrote or pushed and every message it published (with when it was sent), the windows in
 * which something could touch a WATCHed key.
 */
export interface Keys {
  /** SET/GET keys (cluster a's hot slots and spread keys, then `b:` keys routed to cluster b). */
  readonly strings: string[];
  /** INCR counters (transactions run on them; other clients INCR them too). */
  readonly counters: string[];
  /** Lists (BLPOP on them, RPUSH to them). */
  readonly lists: string[];
  /** Pub/sub channels, glob patterns (PSUBSCRIBE) and shard channels. */
  readonly channels: string[];
  readonly patterns: string[];
  readonly shardChannels: string[];
}

export interface Published {
  readonly channel: string;
  readonly publisher: number;
  /** The publisher's sequence number: 0, 1, 2, ... */
  readonly seq: number;
  readonly sentAt: number;
  /** Virtual ms its reply arrived (Infinity while unanswered). */
  repliedAt(): number;
  /** Its reply (undefined while unanswered). */
  reply(): string | undefined;
}

export class Oracle {
  /** Numbers values, elements and payloads, so that each is unique in a run. */
  unique = 0;
  /** Values SET per key, and when each was sent (a GET cannot see it before). */
  readonly written = new Map<string, Set<string>>();
  readonly valueSentAt = new Map<string, number>();
  /** Elements pushed, by value: their list and when the push was sent. */
  readonly pushed = new Map<string, { key: string; sentAt: number }>();
  /** Elements a BLPOP returned, by value: who got it. */
  readonly popped = new Map<string, string>();
  /** Messages published, by payload. */
  readonly published = new Map<string, Published>();
  /** INCRs of each counter, by client, from sent until answered (`until()`: Infinity while not): another client's INCR touches a WATCH. */
  readonly incrs = new Map<string, { client: number; from: number; until: () => number }[]>();
  /** Integers INCR answered per counter (cluster a's counters only: b's restart with each b). */
  readonly incremented = new Map<string, Map<number, string>>();
  /**
   * Windows in which the topology moved (a slot migrating, a failover, a node down) or keys were
   * routed elsewhere (a config change): `to()` is Infinity until the window closes.
   */
  readonly turbulence: { from: number; to: () => number; what: string; route: boolean }[] = [];

  constructor(
    readonly keys: Keys,
    /** The most replicas a primary of the world has (what WAIT may count). */
    readonly maxReplicas = 1,
  ) {
    for (const k of keys.strings) this.written.set(k, new Set());
  }

  turbulent(from: number, to: () => number, what: string, route = false): void {
    this.turbulence.push({ from, to, what, route });
  }

  /** Did something touch `key` (another client's INCR, the topology) between `from` and `to`? */
  disturbed(key: string, client: number, from: number, to: number): boolean {
    if ((this.incrs.get(key) ?? []).some((w) => w.client !== client && w.from <= to && w.until() >= from)) return true;
    return this.turbulence.some((w) => w.from <= to && w.to() >= from);
  }

  /** Did a config change route keys elsewhere between `from` and `to`? */
  rerouted(from: number, to: number): boolean {
    return this.turbulence.some((w) => w.route && w.from <= to && w.to() >= from);
  }
}
