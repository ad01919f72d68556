/**
 * Connections one client holds alone — for a blocked command or a transaction — and the budget
 * that bounds them over all clients (`limits.maxDedicatedConnections`). A link counts against the
 * budget from the moment it is opened until it is closed or lost, whichever comes first.
 */
import type { UpstreamConn } from "../../upstream/conn.ts";
import type { UpstreamNode } from "../../upstream/node.ts";
import type { UpstreamRequest } from "../../backend/request.ts";
import { encodeError } from "../../resp/encode.ts";
import { errorReply } from "../../resp/replies.ts";

export class DedicatedBudget {
  #open = 0;

  constructor(readonly limit: () => number) {}

  /** Links open now. */
  get open(): number {
    return this.#open;
  }

  tryAcquire(): boolean {
    if (this.#open >= this.limit()) return false;
    this.#open++;
    return true;
  }

  release(): void {
    this.#open--;
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
  #released = false;

  private constructor(
    readonly node: UpstreamNode,
    readonly conn: UpstreamConn,
    readonly budget: DedicatedBudget,
  ) {}

  /** Open a link to `node`, or say why not (as an error reply). */
  static open(budget: DedicatedBudget, node: UpstreamNode, protocol: 2 | 3, events: LinkEvents): DedicatedLink | Uint8Array {
    if (!budget.tryAcquire()) return errorReply(`max number of dedicated upstream connections reached (${budget.limit()})`);
    let link: DedicatedLink | null = null;
    const conn = node.dedicated({
      protocol,
      events: {
        reply: events.reply,
        lost: (_conn, reason) => {
          if (link) link.#release();
          events.lost(reason);
        },
      },
    });
    if (typeof conn === "string") {
      budget.release();
      return reasonReply(conn);
    }
    link = new DedicatedLink(node, conn, budget);
    return link;
  }

  get isDead(): boolean {
    return this.#released || this.conn.isDead;
  }

  send(request: UpstreamRequest): void {
    this.conn.send(request);
  }

  /** Close the connection (Redis unblocks and forgets whatever it held for it). Idempotent. */
  close(reason: string): void {
    if (this.#released) return;
    this.#release();
    this.conn.fail(reason);
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.budget.release();
  }
}

/** A reason from a backend or node as an error reply: kept as it is when it names its own code. */
export function reasonReply(reason: string): Uint8Array {
  return reason.startsWith("CLUSTERDOWN ") ? encodeError(reason) : errorReply(reason);
}
