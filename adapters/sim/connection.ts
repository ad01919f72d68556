/**
 * One simulated TCP connection: two endpoints (`SimConn`, the `Conn` each owner holds) joined by a
 * `SimLink`. Each direction is an ordered pipe. A `write` is split into 1..`maxChunksPerWrite`
 * pieces (short reads) that arrive one by one, in order, after a one-way delay; arrived pieces
 * wait in the receiver's inbox while it is paused. A sender's "unread" count is what it wrote and
 * its peer has not yet been handed through `data` (wire plus peer's receive buffer): `write`
 * returns false once it exceeds `inFlightBudgetBytes`, and `drain` follows when it falls back to
 * 0. `bufferedBytes` reports that same count. (Both knobs are `NetworkOptions`, in network.ts.)
 *
 * An endpoint only decides what it sends and delivers what has arrived; the wire itself — delays,
 * partitions, resets, and deciding `close` — is the network's (network.ts), reached through the
 * `SimWire` it is constructed with.
 */
import type { Conn, ConnHandlers } from "../../src/runtime.ts";
import type { SimClock } from "./clock.ts";

/** What travels one way on a link: a piece of a write, or the FIN behind the last one. */
export type Piece = { bytes: Uint8Array } | { fin: true };

/** What an endpoint needs from the network it lives on (`SimNetwork` is one). */
export interface SimWire {
  readonly clock: SimClock;
  readonly options: { readonly inFlightBudgetBytes: number };
  /** Splits a write into the pieces that travel separately (short reads). */
  split(chunk: Uint8Array): Uint8Array[];
  /** Puts a piece on the wire from `from` to its peer, behind everything it sent before. */
  send(from: SimConn, piece: Piece): void;
  /** Sends a reset from `from`: its peer closes with ECONNRESET after a one-way trip. */
  sendReset(from: SimConn): void;
  /** Decides `close(error)` for `conn` now; delivered from the next clock event, once only. */
  finish(conn: SimConn, error: Error | undefined, why: string): void;
  /** Schedules `drain` for `sender` if it is owed one and its peer has read everything. */
  maybeDrain(sender: SimConn): void;
  /** Closes `conn` once it has read the peer's FIN and its own FIN has arrived. */
  maybeClose(conn: SimConn): void;
}

/** One side of a simulated connection. */
export class SimConn implements Conn {
  readonly id: string;
  readonly localHost: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  handlers: ConnHandlers | null = null;
  peer!: SimConn;
  readonly link: SimLink;
  readonly #net: SimWire;
  /** Arrived pieces not yet handed to `data`. */
  readonly inbox: Piece[] = [];
  paused = false;
  /** `close` is decided (it is then delivered by a clock event); nothing else is delivered. */
  closed = false;
  destroyed = false;
  /** `end()` called (or the peer's FIN read): a FIN is on its way. */
  ending = false;
  /** We read the peer's FIN. */
  finIn = false;
  /** Our FIN reached the peer. */
  finArrived = false;
  /** This endpoint's host vanished (half-open): it receives nothing and sends nothing more. */
  vanished = false;
  /** Bytes we wrote that the peer has not been handed yet. */
  unreadOut = 0;
  needDrain = false;
  /** Arrival time of our last piece: pieces never overtake each other. */
  lastArrival = 0;
  /**
   * The keepalive idle time the owner asked for (0: off). Only recorded: the simulated network
   * has no kernel to probe a silent peer, and a vanished host is modelled by `vanished`.
   */
  keepAliveMs = 0;
  #pumping = false;

  constructor(net: SimWire, link: SimLink, id: string, local: [string, number], remote: [string, number]) {
    this.#net = net;
    this.link = link;
    this.id = id;
    [this.localHost, this.localPort] = local;
    [this.remoteAddress, this.remotePort] = remote;
  }

  get bufferedBytes(): number {
    return this.closed ? 0 : this.unreadOut;
  }

  write(chunk: Uint8Array): boolean {
    if (this.closed || this.destroyed || this.ending) return false;
    if (chunk.byteLength === 0) return this.unreadOut <= this.#net.options.inFlightBudgetBytes;
    this.unreadOut += chunk.byteLength;
    for (const piece of this.#net.split(chunk)) this.#net.send(this, { bytes: piece });
    if (this.unreadOut > this.#net.options.inFlightBudgetBytes) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.schedulePump();
  }

  end(): void {
    if (this.closed || this.destroyed || this.ending) return;
    this.ending = true;
    this.#net.send(this, { fin: true });
  }

  setKeepAlive(idleMs: number): void {
    if (!this.closed) this.keepAliveMs = idleMs;
  }

  destroy(error?: Error): void {
    if (this.closed || this.destroyed) return;
    this.destroyed = true;
    const discarded = this.inbox.some((p) => "bytes" in p);
    this.inbox.length = 0;
    if (discarded) this.#net.sendReset(this);
    else if (!this.ending) {
      this.ending = true;
      this.#net.send(this, { fin: true });
    }
    this.#net.finish(this, error, "destroy");
  }

  /** Deliver the inbox, one piece per clock event, while not paused. */
  schedulePump(): void {
    if (this.#pumping || this.inbox.length === 0) return;
    this.#pumping = true;
    this.#net.clock.defer(() => {
      this.#pumping = false;
      this.#pumpOne();
    });
  }

  #pumpOne(): void {
    if (this.closed || this.paused) return;
    const piece = this.inbox.shift();
    if (!piece) return;
    if ("bytes" in piece) {
      this.peer.unreadOut -= piece.bytes.byteLength;
      this.#net.maybeDrain(this.peer);
      this.handlers!.data(piece.bytes);
    } else {
      this.finIn = true;
      // allowHalfOpen false: reading the peer's FIN ends our side once our bytes are sent.
      if (!this.ending) {
        this.ending = true;
        this.#net.send(this, { fin: true });
      }
      this.#net.maybeClose(this);
    }
    this.schedulePump();
  }
}

/** Both endpoints of one connection, plus pieces held back by a partition. */
export class SimLink {
  dead = false;
  /** Pieces that reached a partition, in order; re-sent by `heal()`. */
  readonly held: { from: SimConn; piece: Piece }[] = [];
  client!: SimConn;
  server!: SimConn;
  constructor(readonly id: number) {}
}
