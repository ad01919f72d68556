/**
 * Connections one client holds alone — for a blocked command or a transaction — and the budget
 * that bounds them over all clients (`limits.maxDedicatedConnections`). A link counts against the
 * budget from the moment it is opened until it is closed or lost, whichever comes first: it holds
 * one `BudgetSlot`, whose release is idempotent, so the count can never go below zero.
 */
import { Unavailable, type DedicatedConn, type NodeHandle } from "../../backend/contract.ts";
import type { UpstreamRequest } from "../../backend/request.ts";

/** One unit of a budget, given back once (a second `release` does nothing). */
export interface BudgetSlot {
  release(): void;
}

export class DedicatedBudget {
  #open = 0;

  constructor(readonly limit: () => number) {}

  /** Links open now. */
  get open(): number {
    return this.#open;
  }

  /** A slot, or null when `limit` are taken. */
  tryAcquire(): BudgetSlot | null {
    if (this.#open >= this.limit()) return null;
    this.#open++;
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.#open--;
      },
    };
  }
}

/** What a link reports to whoever holds it. */
export interface LinkEvents {
  /** A reply to `request` (redirects included: the holder decides). */
  reply(request: UpstreamRequest, frame: Uint8Array): void;
  /** The connection went away; its pending requests were already answered with `reason`. */
  lost(reason: string): void;
}

export class DedicatedLink {
  private constructor(
    readonly node: NodeHandle,
    readonly conn: DedicatedConn,
    readonly slot: BudgetSlot,
  ) {}

  /** Open a link to `node`, or say why not. */
  static open(budget: DedicatedBudget, node: NodeHandle, protocol: 2 | 3, events: LinkEvents): DedicatedLink | Unavailable {
    const slot = budget.tryAcquire();
    if (!slot) return new Unavailable("limit", `max number of dedicated upstream connections reached (${budget.limit()})`);
    const conn = node.dedicated({
      protocol,
      events: {
        reply: events.reply,
        lost: (_conn, reason) => {
          slot.release();
          events.lost(reason);
        },
      },
    });
    if (conn instanceof Unavailable) {
      slot.release();
      return conn;
    }
    return new DedicatedLink(node, conn, slot);
  }

  get isDead(): boolean {
    return this.conn.isDead;
  }

  /** Queue `request`, or say why the connection takes no more work (the request is not answered). */
  send(request: UpstreamRequest): Unavailable | null {
    return this.conn.send(request);
  }

  /** Close the connection (Redis unblocks and forgets whatever it held for it). Idempotent. */
  close(reason: string): void {
    this.slot.release();
    this.conn.fail(reason);
  }
}
