/**
 * A `Runtime` that delegates to a real adapter while a test watches and steers it, for the
 * live-removal regression suite (a cluster removed or replaced while its discovery has a timer
 * armed, a DNS lookup or a connect pending, or a request in flight):
 *
 * - **Holds.** Lookups of chosen hostnames and connects to chosen ports stay pending until the test
 *   releases them (a lookup then resolves to 127.0.0.1, a connect then really connects) or their
 *   signal aborts (they then reject with an `AbortError` and are recorded as aborted).
 * - **Records.** Every timer, connect and lookup is recorded with the order it was made in (`seq`),
 *   its outcome, and the async-context tag it was made under: `within(tag, fn)` tags everything
 *   `fn` starts (a cluster added inside it tags its discovery loop, and so its timers, lookups and
 *   connects), a socket's handlers run under its own tag, and `tagClient(port, tag)` tags what an
 *   accepted client connection's requests start (its upstream connections and their op timers).
 *   The tag travels with AsyncLocalStorage, which Node, Bun and Deno all propagate through awaits.
 * - **Late runs.** After `mark()` (called once the removal has resolved), a timer callback or a
 *   socket `data`/`drain` handler that runs for a resource created before the mark is counted on
 *   that resource's record. This is counted before any scope guard sees the call, so a timer the
 *   core cancelled but the runtime fired anyway is caught here even though the scope drops it.
 * - **Violations.** Breaches of the `Runtime` contract by the adapter, whoever the owner: a timer
 *   firing after `cancel()`, a handler after `close`, `data` after the owner called `destroy()`.
 *
 * Test-only: it may use node: modules (it never runs inside `src/`).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Conn, ConnectOptions, ConnHandlers, Listener, ListenOptions, Runtime, TimerHandle } from "../../src/runtime.ts";

export type Tag = string | undefined;

interface RecordBase {
  readonly id: number;
  /** Creation order across every record of this hook; compare with `mark()` and `seq()`. */
  readonly seq: number;
  /** The async-context tag current when it was created. */
  readonly context: Tag;
}

export interface TimerRecord extends RecordBase {
  readonly kind: "timer";
  readonly ms: number;
  /** Where it was armed (recorded for tagged timers only, for failure messages). */
  readonly stack: string | undefined;
  cancelled: boolean;
  fired: boolean;
  /** Times its callback ran after `mark()` although it was created before. */
  lateRuns: number;
}

export type SocketState = "held" | "connecting" | "open" | "closed" | "failed" | "aborted";

export interface SocketRecord extends RecordBase {
  readonly kind: "socket";
  readonly host: string;
  readonly port: number;
  state: SocketState;
  /** The owner called `destroy()` or `end()`. */
  closedByOwner: boolean;
  /** The owner called `destroy()`: bytes the hook held back are dropped, as the adapter would. */
  destroyedByOwner: boolean;
  /** `data`/`drain` calls after `mark()` for a socket created before it. */
  lateRuns: number;
}

export type LookupState = "held" | "pending" | "resolved" | "failed" | "aborted";

export interface LookupRecord extends RecordBase {
  readonly kind: "lookup";
  readonly hostname: string;
  state: LookupState;
}

/** A lookup or connect the hook keeps pending. */
export interface HeldOperation {
  readonly kind: "lookup" | "connect";
  /** hostname, or host:port. */
  readonly target: string;
  readonly record: LookupRecord | SocketRecord;
  /** Let it proceed: a lookup resolves to 127.0.0.1, a connect really connects. No-op once settled. */
  release(): void;
}

export interface RuntimeHook {
  readonly runtime: Runtime;
  /** Run `fn` with everything it starts (synchronously or after awaits) tagged `tag`. */
  within<T>(tag: string, fn: () => T): T;
  /** Tag what an accepted client connection from local port `port` starts; `undefined` untags. */
  tagClient(port: number, tag: Tag): void;
  /** Keep future lookups of `hostname` pending. */
  holdLookups(hostname: string): void;
  /** Keep future connects to `port` pending. */
  holdConnects(port: number): void;
  /** Hold nothing new (operations already held stay held until released or aborted). */
  stopHolding(): void;
  /**
   * Hold back bytes received on connections to `port` (new and existing): the peer has answered,
   * but its owner does not see it, as if the network were slow. `flowReads` delivers them.
   */
  stallReads(port: number): void;
  /** Deliver what `stallReads` held back on `port` (in order, on a later turn) and stop holding. */
  flowReads(port: number): void;
  /** Held operations still pending. */
  held(): HeldOperation[];
  /** The `seq` the next record will get. */
  seq(): number;
  /** Start counting late runs of resources created before now; returns the mark's `seq`. */
  mark(): number;
  readonly timers: readonly TimerRecord[];
  readonly sockets: readonly SocketRecord[];
  readonly lookups: readonly LookupRecord[];
  /** Runtime contract breaches seen so far, one line each. */
  readonly violations: readonly string[];
  /** One line per record matching `filter` whose callbacks ran after the mark. */
  lateRuns(filter: (record: TimerRecord | SocketRecord) => boolean): string[];
}

function abortError(what: string, reason: unknown): Error {
  const error = new Error(`${what} was aborted`, { cause: reason });
  error.name = "AbortError";
  return error;
}

/** Wrap `inner`; see the module comment. */
export function hookRuntime(inner: Runtime): RuntimeHook {
  const als = new AsyncLocalStorage<string>();
  const timers: TimerRecord[] = [];
  const sockets: SocketRecord[] = [];
  const lookups: LookupRecord[] = [];
  const violations: string[] = [];
  const heldLookups = new Set<string>();
  const heldPorts = new Set<number>();
  const pending = new Set<HeldOperation>();
  const clientTags = new Map<number, string>();
  const stalledPorts = new Set<number>();
  /** Per open outgoing socket: schedule delivery of its held-back chunks. */
  const flows = new Map<SocketRecord, () => void>();
  let nextSeq = 0;
  let nextId = 0;
  let markSeq: number | null = null;

  const isLate = (record: RecordBase) => markSeq !== null && record.seq < markSeq;
  const inContext = <T>(tag: Tag, fn: () => T): T => (tag === undefined ? als.exit(fn) : als.run(tag, fn));

  /**
   * Handlers that run under the socket's tag and note contract breaches (no handler may follow
   * `close`, which comes once). For `outgoing` (cluster) sockets they also count late runs and
   * honour `stallReads`.
   */
  function watchHandlers(record: SocketRecord, handlers: ConnHandlers, tag: () => Tag, outgoing: boolean): ConnHandlers {
    let closed = false;
    /** Chunks held back while the socket's port is stalled (or until a flow delivers them). */
    const stalled: Uint8Array[] = [];
    const deliver = (chunk: Uint8Array) => {
      if (outgoing && isLate(record)) record.lateRuns++;
      inContext(tag(), () => handlers.data(chunk));
    };
    const flush = () => {
      if (record.destroyedByOwner) stalled.length = 0;
      while (stalled.length > 0 && !closed && !stalledPorts.has(record.port)) deliver(stalled.shift()!);
    };
    if (outgoing) flows.set(record, () => inner.defer(flush));
    return {
      data(chunk) {
        if (closed) violations.push(`data after close on ${record.host}:${record.port} (socket ${record.id})`);
        // Order is kept: once anything is held back, later chunks queue behind it.
        if (outgoing && (stalledPorts.has(record.port) || stalled.length > 0)) stalled.push(chunk);
        else deliver(chunk);
      },
      drain() {
        if (closed) violations.push(`drain after close on ${record.host}:${record.port} (socket ${record.id})`);
        if (outgoing && isLate(record)) record.lateRuns++;
        inContext(tag(), () => handlers.drain());
      },
      close(error) {
        if (closed) violations.push(`close twice on ${record.host}:${record.port} (socket ${record.id})`);
        // Bytes the peer sent before closing arrive first, unless the port is still stalled (then
        // they are lost with the connection, as in a network that never delivered them).
        flush();
        closed = true;
        stalled.length = 0;
        flows.delete(record);
        record.state = "closed";
        inContext(tag(), () => handlers.close(error));
      },
    };
  }

  function wrapConn(conn: Conn, record: SocketRecord): Conn {
    const closeByOwner = () => void (record.closedByOwner = true);
    return {
      get remoteAddress() {
        return conn.remoteAddress;
      },
      get remotePort() {
        return conn.remotePort;
      },
      get localPort() {
        return conn.localPort;
      },
      get bufferedBytes() {
        return conn.bufferedBytes;
      },
      write: (chunk) => conn.write(chunk),
      pause: () => conn.pause(),
      resume: () => conn.resume(),
      setKeepAlive: (idleMs) => conn.setKeepAlive(idleMs),
      end() {
        closeByOwner();
        conn.end();
      },
      destroy(error) {
        closeByOwner();
        record.destroyedByOwner = true;
        conn.destroy(error);
      },
    };
  }

  function hold(kind: HeldOperation["kind"], target: string, record: HeldOperation["record"], signal: AbortSignal | undefined, proceed: () => void, abort: (reason: unknown) => void): void {
    let settled = false;
    const operation: HeldOperation = {
      kind,
      target,
      record,
      release() {
        if (settled) return;
        settled = true;
        pending.delete(operation);
        signal?.removeEventListener("abort", onAbort);
        proceed();
      },
    };
    const onAbort = () => {
      if (settled) return;
      settled = true;
      pending.delete(operation);
      record.state = "aborted";
      abort(signal!.reason);
    };
    pending.add(operation);
    signal?.addEventListener("abort", onAbort, { once: true });
  }

  const runtime: Runtime = {
    name: inner.name,
    now: () => inner.now(),
    wallClock: () => inner.wallClock(),
    random: () => inner.random(),
    serveHttp: (options, fetch) => inner.serveHttp(options, fetch),
    readTextFile: (path) => inner.readTextFile(path),

    setTimer(ms: number, fn: () => void): TimerHandle {
      const context = als.getStore();
      const record: TimerRecord = {
        kind: "timer",
        id: nextId++,
        seq: nextSeq++,
        context,
        ms,
        stack: context === undefined ? undefined : new Error("armed here").stack,
        cancelled: false,
        fired: false,
        lateRuns: 0,
      };
      timers.push(record);
      const handle = inner.setTimer(ms, () => {
        if (record.cancelled) violations.push(`timer ${record.id} (${ms} ms, ${context ?? "untagged"}) fired after cancel()`);
        record.fired = true;
        if (isLate(record)) record.lateRuns++;
        inContext(context, fn);
      });
      return {
        cancel() {
          if (!record.fired) record.cancelled = true;
          handle.cancel();
        },
      };
    },

    defer(fn: () => void): void {
      const context = als.getStore();
      inner.defer(() => inContext(context, fn));
    },

    connect(options: ConnectOptions, handlers: ConnHandlers): Promise<Conn> {
      const context = als.getStore();
      const record: SocketRecord = {
        kind: "socket",
        id: nextId++,
        seq: nextSeq++,
        context,
        host: options.host,
        port: options.port,
        state: "connecting",
        closedByOwner: false,
        destroyedByOwner: false,
        lateRuns: 0,
      };
      sockets.push(record);
      const watched = watchHandlers(record, handlers, () => context, true);
      const really = (): Promise<Conn> => {
        record.state = "connecting";
        return inContext(context, () => inner.connect(options, watched)).then(
          (conn) => {
            // `close` may already have come (a peer that hangs up at once).
            if (record.state === "connecting") record.state = "open";
            return wrapConn(conn, record);
          },
          (error: unknown) => {
            record.state = options.signal?.aborted ? "aborted" : "failed";
            throw error;
          },
        );
      };
      if (!heldPorts.has(options.port)) return really();
      if (options.signal?.aborted) {
        record.state = "aborted";
        return Promise.reject(abortError(`connect to ${options.host}:${options.port}`, options.signal.reason));
      }
      record.state = "held";
      return new Promise<Conn>((resolve, reject) => {
        hold("connect", `${options.host}:${options.port}`, record, options.signal, () => really().then(resolve, reject), (reason) =>
          reject(abortError(`connect to ${options.host}:${options.port}`, reason)),
        );
      });
    },

    async listen(options: ListenOptions, accept: (conn: Conn) => ConnHandlers): Promise<Listener> {
      return inner.listen(options, (conn) => {
        const record: SocketRecord = {
          kind: "socket",
          id: nextId++,
          seq: nextSeq++,
          context: undefined,
          host: conn.remoteAddress,
          port: conn.remotePort,
          state: "open",
          closedByOwner: false,
          destroyedByOwner: false,
          lateRuns: 0,
        };
        // Accepted client connections belong to no cluster: not listed, never held, no late runs counted.
        const handlers = accept(wrapConn(conn, record));
        return watchHandlers(record, handlers, () => clientTags.get(conn.remotePort), false);
      });
    },

    lookup(hostname: string, signal: AbortSignal): Promise<string[]> {
      const record: LookupRecord = { kind: "lookup", id: nextId++, seq: nextSeq++, context: als.getStore(), hostname, state: "pending" };
      lookups.push(record);
      const settle = (promise: Promise<string[]>) =>
        promise.then(
          (addresses) => {
            record.state = "resolved";
            return addresses;
          },
          (error: unknown) => {
            record.state = signal.aborted ? "aborted" : "failed";
            throw error;
          },
        );
      if (!heldLookups.has(hostname)) return settle(inner.lookup(hostname, signal));
      if (signal.aborted) {
        record.state = "aborted";
        return Promise.reject(abortError(`lookup of '${hostname}'`, signal.reason));
      }
      record.state = "held";
      return new Promise<string[]>((resolve, reject) => {
        hold(
          "lookup",
          hostname,
          record,
          signal,
          () => {
            record.state = "resolved";
            resolve(["127.0.0.1"]);
          },
          (reason) => reject(abortError(`lookup of '${hostname}'`, reason)),
        );
      });
    },
  };

  return {
    runtime,
    within: (tag, fn) => als.run(tag, fn),
    tagClient(port, tag) {
      if (tag === undefined) clientTags.delete(port);
      else clientTags.set(port, tag);
    },
    holdLookups: (hostname) => void heldLookups.add(hostname),
    holdConnects: (port) => void heldPorts.add(port),
    stopHolding() {
      heldLookups.clear();
      heldPorts.clear();
    },
    stallReads: (port) => void stalledPorts.add(port),
    flowReads(port) {
      stalledPorts.delete(port);
      for (const [record, flow] of flows) if (record.port === port) flow();
    },
    held: () => [...pending],
    seq: () => nextSeq,
    mark() {
      markSeq = nextSeq;
      return markSeq;
    },
    timers,
    sockets,
    lookups,
    violations,
    lateRuns(filter) {
      const lines: string[] = [];
      for (const record of [...timers, ...sockets]) {
        if (record.lateRuns === 0 || !filter(record)) continue;
        lines.push(
          record.kind === "timer"
            ? `timer ${record.id} (${record.ms} ms, ${record.context ?? "untagged"}) ran ${record.lateRuns}x after removal; armed at ${record.stack ?? "?"}`
            : `socket ${record.id} to ${record.host}:${record.port} (${record.context ?? "untagged"}) got ${record.lateRuns} data/drain call(s) after removal`,
        );
      }
      return lines;
    },
  };
}
