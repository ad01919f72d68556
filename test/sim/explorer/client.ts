/**
 * A test client of the explorer: one connection from its own simulated host to slotgate, speaking
 * RESP2 or RESP3 (its first request is then `HELLO 3`), with a log of what it sent (each request
 * carries what its reply is checked against, ./checks.ts) and of what came back, stamped with
 * virtual time. A subscriber's `message`/`smessage`/`pmessage` frames (arrays in RESP2, pushes in
 * RESP3) are kept apart from the replies to its requests.
 */
import type { SimRuntime } from "../../../adapters/sim/runtime.ts";
import type { Conn } from "../../../src/runtime.ts";
import { encodeCommand } from "../../../src/resp/encode.ts";
import { ReplyReader } from "../../../src/resp/reply-reader.ts";

const dec = new TextDecoder();

/** One transaction of a transaction client: WATCH? [GET] MULTI INCR (EXEC | DISCARD). */
export interface Txn {
  readonly key: string;
  readonly watch: boolean;
  /** Request indexes, filled in as they are sent. */
  watchAt: number;
  getAt: number;
  /** The key the pipelined GET read (the watched key, or another one). */
  getKey: string | null;
  multiAt: number;
  incrAt: number;
  endAt: number;
  readonly discard: boolean;
}

/** What a request's reply is checked against. */
export type Check =
  | { kind: "set"; key: string; value: string }
  | { kind: "get"; key: string }
  | { kind: "incr"; key: string }
  | { kind: "push"; key: string; value: string }
  | { kind: "publish"; channel: string; payload: string }
  | { kind: "watch" | "read" | "multi" | "queued" | "exec" | "discard"; txn: Txn }
  | { kind: "blpop"; key: string; timeoutMs: number }
  | { kind: "subscribe"; channel: string; sub: SubKind; count: number }
  | { kind: "wait"; replicas: number; timeoutMs: number }
  | { kind: "hello" }
  | { kind: "ping" };

/** What a subscription names: a channel (SUBSCRIBE), a glob pattern (PSUBSCRIBE), a shard channel (SSUBSCRIBE). */
export type SubKind = "channel" | "pattern" | "shard";

export interface Req {
  readonly args: string[];
  readonly check: Check;
  /** Virtual ms it was written. */
  readonly sentAt: number;
}

export interface Frame {
  readonly text: string;
  /** Virtual ms it arrived. */
  readonly at: number;
}

export type Role = "kv" | "txn" | "blocker" | "subscriber" | "waiter";

/** The first bytes of a message frame, in either protocol (`*` arrays in RESP2, `>` pushes in RESP3). */
const MESSAGE_HEADS = ["*3\r\n$7\r\nmessage\r\n", "*3\r\n$8\r\nsmessage\r\n", "*4\r\n$8\r\npmessage\r\n"].flatMap((h) => [h, `>${h.slice(1)}`]);

export class SimClient {
  readonly reqs: Req[] = [];
  readonly replies: Frame[] = [];
  readonly messages: Frame[] = [];
  conn: Conn | null = null;
  closed = false;
  /** Virtual ms a fault hit this client's own link (reset, half-close, vanished host), or null. */
  faultedAt: number | null = null;
  readonly #reader = new ReplyReader((frame) => {
    const text = dec.decode(frame);
    const at = this.sim.clock.now();
    if (this.role === "subscriber" && MESSAGE_HEADS.some((h) => text.startsWith(h))) this.messages.push({ text, at });
    else this.replies.push({ text, at });
  });

  constructor(
    readonly id: number,
    readonly role: Role,
    readonly host: string,
    readonly sim: SimRuntime,
    /** The protocol it speaks: 3 after its `HELLO 3`. */
    readonly protocol: 2 | 3 = 2,
  ) {}

  open(port: number): Promise<void> {
    return this.sim
      .forHost(this.host)
      .connect({ host: "127.0.0.1", port }, { data: (c) => this.#reader.push(c), drain: () => {}, close: () => void (this.closed = true) })
      .then(
        (c) => {
          this.conn = c;
          if (this.protocol === 3) this.send(["HELLO", "3"], { kind: "hello" });
        },
        () => {},
      );
  }

  /** Connected, not closed, not hit by a fault: it may send. */
  get usable(): boolean {
    return this.conn !== null && !this.closed && this.faultedAt === null;
  }

  /** Requests sent and not answered yet. */
  get owed(): number {
    return this.reqs.length - this.replies.length;
  }

  send(args: string[], check: Check): number {
    this.reqs.push({ args, check, sentAt: this.sim.clock.now() });
    this.conn!.write(encodeCommand(args));
    return this.reqs.length - 1;
  }

  describe(i: number): string {
    const req = this.reqs[i]!;
    const reply = this.replies[i];
    return `client ${this.id} (${this.role}${this.protocol === 3 ? ", RESP3" : ""}) request ${i} (${req.args.join(" ")}) -> ${reply ? JSON.stringify(reply.text) : "no reply"}`;
  }
}
