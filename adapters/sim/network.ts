/**
 * An in-memory TCP network on the virtual clock. Every callback (`data`, `drain`, `close`, and
 * the settling of `connect`) runs from a clock event, never synchronously inside `write`, `end`,
 * `destroy` or an abort, and every random choice comes from the network's own PRNG stream.
 *
 * The model of one connection (two endpoints, ordered pipes, the unread-bytes budget) is in
 * connection.ts; this file holds the world around it: listeners, connecting, the wire's delays,
 * and faults.
 *
 * Endings follow the adapters' shared rules (adapters/current.ts): `end()` sends a FIN behind the
 * queued bytes; a side that reads a FIN ends too; each side's `close()` (without error) comes once
 * it has read the peer's FIN and its own FIN has reached the peer — so a side left paused never
 * sees the FIN and stays open. `destroy()` discards the inbox and sends a FIN (or a reset, when
 * unread bytes were discarded, as a real stack does); bytes that then reach a closed endpoint
 * reset their sender. Faults: `reset(conn)`, `halfOpen(conn)`, `partition(a, b)` / `heal(a?, b?)`,
 * plus the random knobs below.
 */
import type { Conn, ConnectOptions, ConnHandlers, Listener } from "../../src/runtime.ts";
import { AbortError } from "../shared/errors.ts";
import type { SimClock } from "./clock.ts";
import type { SimRandom } from "./random.ts";
import { SimConn, SimLink, type Piece, type SimWire } from "./connection.ts";

/** Tunables. Every duration is in virtual milliseconds, every probability in [0, 1]. */
export interface NetworkOptions {
  /** Fixed part of every one-way trip (SYN, SYN-ACK, data piece, FIN, RST), ms. Default 0.05. */
  oneWayDelayMinMs?: number;
  /** Mean of the exponential part added to each one-way trip, ms. Default 0.5. */
  oneWayDelayMeanMs?: number;
  /** Probability that a connect's SYN is lost: the connect hangs until `connectTimeoutMs`/abort. Default 0. */
  connectDropProbability?: number;
  /** How long an unanswered connect waits before rejecting with ETIMEDOUT, ms. Default 75 000. */
  connectTimeoutMs?: number;
  /** Probability, per data piece arriving, that the connection is reset instead. Default 0. */
  resetProbability?: number;
  /** Probability that a write is split into several pieces (short reads). Default 0.5. */
  splitProbability?: number;
  /** Most pieces one write is split into. Default 4. */
  maxChunksPerWrite?: number;
  /** Unread bytes per direction above which `write` returns false, bytes. Default 65 536. */
  inFlightBudgetBytes?: number;
  /** First ephemeral port handed to connecting sides and `listen(port 0)`. Default 40 000. */
  ephemeralPortStart?: number;
}

const DEFAULTS: Required<NetworkOptions> = {
  oneWayDelayMinMs: 0.05,
  oneWayDelayMeanMs: 0.5,
  connectDropProbability: 0,
  connectTimeoutMs: 75_000,
  resetProbability: 0,
  splitProbability: 0.5,
  maxChunksPerWrite: 4,
  inFlightBudgetBytes: 64 * 1024,
  ephemeralPortStart: 40_000,
};

/** A network failure carrying a Node-style `code` (ECONNREFUSED, ECONNRESET, ETIMEDOUT, ...). */
export class SimNetError extends Error {
  override readonly name = "SimNetError";
  constructor(readonly code: string, message: string) {
    super(`${message} ${code}`);
  }
}

class SimListener implements Listener {
  #closed = false;
  constructor(
    readonly host: string,
    readonly port: number,
    readonly accept: (conn: Conn) => ConnHandlers,
    readonly onClose: () => void,
  ) {}
  get closed(): boolean {
    return this.#closed;
  }
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.onClose();
    }
    return Promise.resolve();
  }
}

/**
 * The network of one simulated world: listeners by `host:port`, every live link, partitions, and
 * the wire between endpoints (delays, ordering, resets). Every host's runtime view shares it.
 */
export class SimNetwork implements SimWire {
  readonly clock: SimClock;
  readonly random: SimRandom;
  readonly options: Required<NetworkOptions>;
  readonly #log: (event: string) => void;
  readonly #listeners = new Map<string, SimListener>();
  readonly #nextPort = new Map<string, number>();
  readonly #partitions = new Set<string>();
  #nextLink = 1;
  /** Every connection not yet closed on both sides, oldest first. */
  readonly links = new Set<SimLink>();

  constructor(clock: SimClock, random: SimRandom, options: NetworkOptions = {}, log: (event: string) => void = () => {}) {
    this.clock = clock;
    this.random = random;
    this.options = { ...DEFAULTS, ...options };
    this.#log = log;
  }

  /** One one-way trip, quantized to 1 µs so traces stay short and exact. */
  delay(): number {
    const ms = this.options.oneWayDelayMinMs + this.random.exponential(this.options.oneWayDelayMeanMs);
    return Math.round(ms * 1000) / 1000;
  }

  #port(host: string): number {
    const port = this.#nextPort.get(host) ?? this.options.ephemeralPortStart;
    this.#nextPort.set(host, port + 1);
    return port;
  }

  /** Split a write into pieces (views of `chunk`: the sender must not mutate it, as the contract says). */
  split(chunk: Uint8Array): Uint8Array[] {
    const n = chunk.byteLength;
    if (n < 2 || !this.random.chance(this.options.splitProbability)) return [chunk];
    const pieces = Math.min(n, 2 + this.random.int(Math.max(1, this.options.maxChunksPerWrite - 1)));
    const cuts = new Set<number>();
    while (cuts.size < pieces - 1) cuts.add(1 + this.random.int(n - 1));
    const sorted = [...cuts].sort((a, b) => a - b);
    const out: Uint8Array[] = [];
    let at = 0;
    for (const cut of [...sorted, n]) {
      out.push(chunk.subarray(at, cut));
      at = cut;
    }
    return out;
  }

  // ---- listening and connecting ----------------------------------------------------------

  /** Listen on `host:port` (port 0 picks a free one). Rejects with EADDRINUSE when taken. */
  listen(host: string, port: number, accept: (conn: Conn) => ConnHandlers): Promise<Listener> {
    let chosen = port;
    if (chosen === 0) do chosen = this.#port(host); while (this.#listeners.has(`${host}:${chosen}`));
    const key = `${host}:${chosen}`;
    if (this.#listeners.has(key)) return Promise.reject(new SimNetError("EADDRINUSE", `listen ${key}`));
    const listener = new SimListener(host, chosen, accept, () => {
      if (this.#listeners.get(key) === listener) this.#listeners.delete(key);
      this.#log(`unlisten ${key}`);
    });
    this.#listeners.set(key, listener);
    this.#log(`listen ${key}`);
    return Promise.resolve(listener);
  }

  /** Open a connection from `fromHost` (the caller's address) to `options.host:port`. */
  connect(fromHost: string, options: ConnectOptions, handlers: ConnHandlers): Promise<Conn> {
    const { host, port, signal } = options;
    const target = `${host}:${port}`;
    if (signal?.aborted) return Promise.reject(new AbortError(`connect to ${target}`, signal.reason));
    return new Promise<Conn>((resolve, reject) => {
      const localPort = this.#port(fromHost);
      const tag = `${fromHost}:${localPort}->${target}`;
      let settled = false;
      let link: SimLink | null = null;
      const timers: { cancel(): void }[] = [];
      const settle = () => {
        settled = true;
        for (const t of timers) t.cancel();
        signal?.removeEventListener("abort", onAbort);
      };
      const fail = (error: Error, what: string) => {
        if (settled) return;
        settle();
        this.#log(`connect ${tag} ${what}`);
        reject(error);
      };
      const onAbort = () => {
        if (settled) return;
        // The server may have accepted already: it sees a reset, the caller sees no socket.
        if (link) {
          link.client.closed = true;
          this.sendReset(link.client);
          this.links.delete(link);
        }
        fail(new AbortError(`connect to ${target}`, signal?.reason), "aborted");
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#log(`connect ${tag}`);
      timers.push(this.clock.setTimer(this.options.connectTimeoutMs, () => fail(new SimNetError("ETIMEDOUT", `connect ${target}`), "timed out")));
      if (this.isPartitioned(fromHost, host) || this.random.chance(this.options.connectDropProbability)) {
        this.#log(`connect ${tag} syn lost`);
        return; // hangs until the timeout or an abort
      }
      const synDelay = this.delay();
      timers.push(
        this.clock.setTimer(synDelay, () => {
          const listener = this.#listeners.get(target);
          const back = this.delay();
          if (!listener || this.isPartitioned(fromHost, host)) {
            if (!listener) timers.push(this.clock.setTimer(back, () => fail(new SimNetError("ECONNREFUSED", `connect ${target}`), "refused")));
            return;
          }
          const l = new SimLink(this.#nextLink++);
          const client = new SimConn(this, l, `c${l.id}`, [fromHost, localPort], [host, port]);
          const server = new SimConn(this, l, `s${l.id}`, [host, port], [fromHost, localPort]);
          client.peer = server;
          server.peer = client;
          client.handlers = handlers;
          l.client = client;
          l.server = server;
          // Nothing the server writes may arrive before the SYN-ACK.
          server.lastArrival = this.clock.now() + back;
          link = l;
          this.links.add(l);
          try {
            server.handlers = listener.accept(server);
          } catch (error) {
            this.links.delete(l);
            server.closed = client.closed = true;
            fail(new SimNetError("ECONNRESET", `connect ${target}`), `accept threw: ${String(error)}`);
            return;
          }
          this.#log(`accept ${tag} #${l.id}`);
          timers.push(
            this.clock.setTimer(back, () => {
              if (settled) return;
              settle();
              this.#log(`connected ${tag} #${l.id}`);
              resolve(client);
            }),
          );
        }),
      );
    });
  }

  // ---- delivery ----------------------------------------------------------------------------

  /** Put a piece on the wire from `from` to its peer, behind everything it sent before. */
  send(from: SimConn, piece: Piece): void {
    if (from.vanished || from.link.dead) return;
    const arrival = Math.max(from.lastArrival, this.clock.now() + this.delay());
    from.lastArrival = arrival;
    this.clock.setTimer(arrival - this.clock.now(), () => this.#arrive(from, piece));
  }

  #arrive(from: SimConn, piece: Piece, released = false): void {
    const link = from.link;
    if (link.dead) return;
    const to = from.peer;
    if ((!released && link.held.length > 0) || this.isPartitioned(from.localHost, to.localHost)) {
      link.held.push({ from, piece });
      return;
    }
    if (to.vanished) return; // into the void: the sender's unread count never falls
    if ("bytes" in piece && this.random.chance(this.options.resetProbability)) {
      this.reset(from, "random reset");
      return;
    }
    if (to.closed) {
      if ("bytes" in piece) this.sendReset(to);
      else {
        from.finArrived = true;
        this.maybeClose(from);
      }
      return;
    }
    to.inbox.push(piece);
    if ("fin" in piece) {
      from.finArrived = true;
      this.maybeClose(from);
    }
    to.schedulePump();
  }

  /** A reset from `from`: its peer closes with ECONNRESET after a one-way trip. */
  sendReset(from: SimConn): void {
    const to = from.peer;
    if (from.vanished || to.closed) return;
    // Like every packet, a reset never overtakes what `from` sent before it.
    const arrival = Math.max(from.lastArrival, this.clock.now() + this.delay());
    from.lastArrival = arrival;
    this.clock.setTimer(arrival - this.clock.now(), () => {
      if (to.closed || this.isPartitioned(from.localHost, to.localHost)) return;
      this.finish(to, new SimNetError("ECONNRESET", "read"), "reset by peer");
    });
  }

  maybeDrain(sender: SimConn): void {
    if (!sender.needDrain || sender.unreadOut > 0) return;
    sender.needDrain = false;
    this.clock.defer(() => {
      if (!sender.closed) sender.handlers?.drain();
    });
  }

  maybeClose(conn: SimConn): void {
    if (conn.finIn && conn.finArrived) this.finish(conn, undefined, "closed");
  }

  /** Decide `close(error)` for `conn` now, deliver it from the next clock event. Once only. */
  finish(conn: SimConn, error: Error | undefined, why: string): void {
    if (conn.closed) return;
    conn.closed = true;
    conn.inbox.length = 0;
    const code = (error as { code?: string } | undefined)?.code;
    this.#log(`close ${conn.id} ${why}${code ? ` ${code}` : error ? ` ${error.message}` : ""}`);
    const link = conn.link;
    if (link.client.closed && link.server.closed) {
      link.dead = true;
      this.links.delete(link);
    }
    const handlers = conn.handlers;
    if (handlers) this.clock.defer(() => handlers.close(error));
  }

  // ---- faults ------------------------------------------------------------------------------

  /** Reset the connection `conn` belongs to: both live sides close with ECONNRESET. */
  reset(conn: SimConn, why = "reset"): void {
    const link = conn.link;
    if (link.dead) return;
    this.#log(`reset #${link.id} (${why})`);
    for (const side of [link.client, link.server]) {
      if (!side.vanished) this.finish(side, new SimNetError("ECONNRESET", "read"), "reset");
    }
    link.dead = true;
    this.links.delete(link);
  }

  /**
   * Make `conn`'s peer vanish silently (its host crashed or lost power): the peer's owner gets
   * `close(EHOSTDOWN)`, while `conn` sees nothing at all — its writes are accepted and never read
   * (until back-pressure), and it stays open until its owner destroys it or a timeout does.
   */
  halfOpen(conn: SimConn): void {
    const gone = conn.peer;
    if (gone.vanished) return;
    this.#log(`half-open #${conn.link.id}: ${gone.id} vanished`);
    this.finish(gone, new SimNetError("EHOSTDOWN", "vanished"), "vanished");
    gone.vanished = true;
  }

  /** Cut traffic between every host of `a` and every host of `b` (both directions). */
  partition(a: string | string[], b: string | string[]): void {
    for (const x of [a].flat()) {
      for (const y of [b].flat()) {
        if (x === y) continue;
        this.#partitions.add(`${x}|${y}`).add(`${y}|${x}`);
        this.#log(`partition ${x} ${y}`);
      }
    }
  }

  isPartitioned(a: string, b: string): boolean {
    return this.#partitions.has(`${a}|${b}`);
  }

  /**
   * Remove every partition (or only those between the hosts of `a` and of `b`). Each connection
   * no longer cut then has its held pieces released in order after one one-way trip (TCP
   * retransmission); pieces arriving meanwhile queue behind them.
   */
  heal(a?: string | string[], b?: string | string[]): void {
    if (a === undefined || b === undefined) {
      this.#partitions.clear();
      this.#log("heal");
    } else {
      for (const x of [a].flat()) {
        for (const y of [b].flat()) {
          this.#partitions.delete(`${x}|${y}`);
          this.#partitions.delete(`${y}|${x}`);
          this.#log(`heal ${x} ${y}`);
        }
      }
    }
    for (const link of this.links) {
      if (link.held.length === 0) continue;
      const first = link.held[0]!.from;
      if (this.isPartitioned(first.localHost, first.peer.localHost)) continue;
      this.clock.setTimer(this.delay(), () => {
        while (link.held.length > 0) {
          const { from, piece } = link.held[0]!;
          if (this.isPartitioned(from.localHost, from.peer.localHost)) return; // partitioned again
          link.held.shift();
          this.#arrive(from, piece, true);
        }
      });
    }
  }

  /** Live listeners, as `host:port`. */
  listening(): string[] {
    return [...this.#listeners.keys()];
  }
}
