/**
 * A `Runtime` for unit tests, driven entirely by the test: a virtual clock that only moves on
 * `advance()`, a `defer` queue that only runs on `flush()`, a seeded random source, and fake DNS,
 * TCP connect and listen whose outcomes the test decides. Nothing here touches the real event loop
 * (no real timers, sockets or DNS), so tests built on it are deterministic on Node, Bun and Deno.
 */
import type {
  Conn,
  ConnectOptions,
  ConnHandlers,
  FetchHandler,
  HttpServer,
  Listener,
  ListenOptions,
  Runtime,
  TimerHandle,
} from "../../src/runtime.ts";

/** How many microtask turns `settle()` yields by default; enough for deep async chains in the core. */
const DEFAULT_SETTLE_ROUNDS = 200;

/**
 * Let promise chains run to quiescence without scheduling any macrotask: yields `rounds` microtask
 * turns. Every pending reaction with fewer hops than that settles before it returns.
 */
export async function settle(rounds = DEFAULT_SETTLE_ROUNDS): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}

/** Small, fast, seedable PRNG (mulberry32); returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A promise with its settle functions exposed, plus whether it has settled. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
  readonly settled: boolean;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  let settled = false;
  const promise = new Promise<T>((res, rej) => {
    resolve = (value) => {
      settled = true;
      res(value);
    };
    reject = (error) => {
      settled = true;
      rej(error);
    };
  });
  return {
    promise,
    resolve,
    reject,
    get settled() {
      return settled;
    },
  };
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("The operation was aborted", "AbortError");
}

interface ManualTimer {
  due: number;
  seq: number;
  fn: () => void;
}

/** A fake TCP connection: records what the core does to it; the test drives its handlers. */
export class FakeConn implements Conn {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localPort: number;
  readonly written: Uint8Array[] = [];
  bufferedBytes = 0;
  /** The peer does not read: every write stays unsent (`bufferedBytes` grows) and returns false. */
  stalled = false;
  paused = false;
  ended = false;
  destroyed = false;
  destroyError: Error | undefined;
  /** The last keepalive idle time the core asked for (null: never asked). */
  keepAliveMs: number | null = null;
  /** True once `handlers.close` has been delivered. */
  closed = false;
  /** Models a connection that cannot turn Nagle's algorithm off (`Conn.nagle`). */
  nagle = false;
  #handlers: ConnHandlers;

  constructor(host: string, port: number, handlers: ConnHandlers, localPort: number) {
    this.remoteAddress = host;
    this.remotePort = port;
    this.localPort = localPort;
    this.#handlers = handlers;
  }

  write(chunk: Uint8Array): boolean {
    if (this.ended || this.destroyed) return false;
    this.written.push(chunk);
    if (this.stalled) {
      this.bufferedBytes += chunk.length;
      return false;
    }
    return true;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  end(): void {
    if (this.ended || this.destroyed) return;
    this.ended = true;
    this.#deliverClose(undefined);
  }

  destroy(error?: Error): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.destroyError = error;
    this.#deliverClose(error);
  }

  setKeepAlive(idleMs: number): void {
    this.keepAliveMs = idleMs;
  }

  /** Deliver bytes to the owner's `data` handler (as the adapter would, from the event loop). */
  receive(chunk: Uint8Array | string): void {
    this.#handlers.data(typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk);
  }

  /** Deliver a `drain` event. */
  emitDrain(): void {
    this.#handlers.drain();
  }

  /** The peer closed (or the connection failed): deliver `close` now. */
  peerClose(error?: Error): void {
    this.#deliverClose(error, true);
  }

  #deliverClose(error: Error | undefined, now = false): void {
    if (this.closed) return;
    this.closed = true;
    // Never re-entrantly from destroy()/end(): a microtask later, as an adapter would.
    if (now) this.#handlers.close(error);
    else queueMicrotask(() => this.#handlers.close(error));
  }
}

/** A connect the test has not settled yet. */
export interface PendingConnect {
  readonly options: ConnectOptions;
  readonly handlers: ConnHandlers;
  /** The signal the runtime received (the one the core aborts). */
  readonly signal: AbortSignal | undefined;
  readonly settled: boolean;
  /** Complete the connect; returns the conn handed to the core (made up when not given). */
  resolve(conn?: FakeConn): FakeConn;
  reject(error: unknown): void;
}

/** A lookup the test has not settled yet. */
export interface PendingLookup {
  readonly hostname: string;
  readonly signal: AbortSignal;
  readonly settled: boolean;
  resolve(addresses: string[]): void;
  reject(error: unknown): void;
}

/** A fake listener: records `close()`. */
export class FakeListener implements Listener {
  closeCalls = 0;
  constructor(
    readonly host: string,
    readonly port: number,
    readonly accept: (conn: Conn) => ConnHandlers,
  ) {}
  get closed(): boolean {
    return this.closeCalls > 0;
  }
  close(): Promise<void> {
    this.closeCalls++;
    return Promise.resolve();
  }
}

/** A listen the test has not settled yet. */
export interface PendingListen {
  readonly options: ListenOptions;
  readonly settled: boolean;
  resolve(): FakeListener;
  reject(error: unknown): void;
}

export interface ManualRuntimeOptions {
  /** Seed of `random()` (default 1). */
  seed?: number;
  /** Initial value of `now()` (default 0). */
  start?: number;
  /** Wall clock at `now() === start` (default 1_700_000_000_000). */
  epoch?: number;
  /**
   * When false, connects ignore their abort signal (models a runtime that resolves a connect
   * the core already gave up on). Default true.
   */
  connectHonoursAbort?: boolean;
}

export class ManualRuntime implements Runtime {
  readonly name = "manual";
  readonly #start: number;
  readonly #epoch: number;
  #now: number;
  #seq = 0;
  #timers: ManualTimer[] = [];
  #deferred: (() => void)[] = [];
  readonly #random: () => number;
  #nextPort = 40000;

  /** Connect attempts not settled yet, oldest first. */
  readonly pendingConnects: PendingConnect[] = [];
  /** Every conn handed out by `connect`, oldest first. */
  readonly conns: FakeConn[] = [];
  /** Lookups not settled yet, oldest first. */
  readonly pendingLookups: PendingLookup[] = [];
  /** Static DNS: a hostname listed here resolves (or fails) on its own, a microtask later. */
  readonly dns = new Map<string, string[] | Error>();
  /** Listens not settled yet, oldest first. */
  readonly pendingListens: PendingListen[] = [];
  /** Every listener handed out, oldest first. */
  readonly listeners: FakeListener[] = [];
  connectHonoursAbort: boolean;

  constructor(options: ManualRuntimeOptions = {}) {
    this.#start = options.start ?? 0;
    this.#now = this.#start;
    this.#epoch = options.epoch ?? 1_700_000_000_000;
    this.#random = mulberry32(options.seed ?? 1);
    this.connectHonoursAbort = options.connectHonoursAbort ?? true;
  }

  now(): number {
    return this.#now;
  }

  wallClock(): number {
    return this.#epoch + (this.#now - this.#start);
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const timer: ManualTimer = { due: this.#now + Math.max(0, ms), seq: this.#seq++, fn };
    // Keep the queue sorted by (due, seq): insert after every timer due at or before this one.
    let i = this.#timers.length;
    while (i > 0 && this.#timers[i - 1]!.due > timer.due) i--;
    this.#timers.splice(i, 0, timer);
    return {
      cancel: () => {
        const at = this.#timers.indexOf(timer);
        if (at >= 0) this.#timers.splice(at, 1);
      },
    };
  }

  /** Timers armed and neither fired nor cancelled. */
  pendingTimers(): number {
    return this.#timers.length;
  }

  /** When the next timer is due, or undefined when none is armed. */
  nextTimerAt(): number | undefined {
    return this.#timers[0]?.due;
  }

  /**
   * Move the clock forward by `ms`, firing every timer that falls due (including timers armed by
   * those callbacks) in (due, sequence) order, with `now()` equal to each timer's due time while it
   * runs and promise chains settled between firings.
   */
  async advance(ms: number): Promise<void> {
    if (ms < 0) throw new RangeError("cannot move the clock backwards");
    const target = this.#now + ms;
    await settle();
    for (;;) {
      const next = this.#timers[0];
      if (!next || next.due > target) break;
      this.#timers.shift();
      this.#now = next.due;
      next.fn();
      await settle();
    }
    this.#now = target;
    await settle();
  }

  /** Advance to the next armed timer and fire everything due then (no-op without timers). */
  async runNextTimer(): Promise<void> {
    const due = this.nextTimerAt();
    if (due !== undefined) await this.advance(due - this.#now);
  }

  defer(fn: () => void): void {
    this.#deferred.push(fn);
  }

  /** Callbacks queued by `defer` and not yet run. */
  pendingDeferred(): number {
    return this.#deferred.length;
  }

  /** Run deferred callbacks (including ones they defer) in order, settling promises between them. */
  async flush(): Promise<void> {
    await settle();
    while (this.#deferred.length > 0) {
      this.#deferred.shift()!();
      await settle();
    }
  }

  /** One turn of the event loop: run the callbacks deferred so far (not the ones they defer). */
  async turn(): Promise<void> {
    await settle();
    for (const fn of this.#deferred.splice(0)) {
      fn();
      await settle();
    }
  }

  random(): number {
    return this.#random();
  }

  connect(options: ConnectOptions, handlers: ConnHandlers): Promise<Conn> {
    const signal = options.signal;
    if (signal?.aborted && this.connectHonoursAbort) return Promise.reject(abortReason(signal));
    return new Promise<Conn>((resolve, reject) => {
      let settled = false;
      const finish = () => {
        settled = true;
        const at = this.pendingConnects.indexOf(pending);
        if (at >= 0) this.pendingConnects.splice(at, 1);
        signal?.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        if (settled || !this.connectHonoursAbort) return;
        finish();
        reject(abortReason(signal!));
      };
      const pending: PendingConnect = {
        options,
        handlers,
        signal,
        get settled() {
          return settled;
        },
        resolve: (conn) => {
          if (settled) throw new Error(`connect to ${options.host}:${options.port} already settled`);
          finish();
          const opened = conn ?? new FakeConn(options.host, options.port, handlers, this.#nextPort++);
          this.conns.push(opened);
          resolve(opened);
          return opened;
        },
        reject: (error) => {
          if (settled) throw new Error(`connect to ${options.host}:${options.port} already settled`);
          finish();
          reject(error);
        },
      };
      this.pendingConnects.push(pending);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  listen(options: ListenOptions, accept: (conn: Conn) => ConnHandlers): Promise<Listener> {
    return new Promise<Listener>((resolve, reject) => {
      let settled = false;
      const finish = () => {
        settled = true;
        const at = this.pendingListens.indexOf(pending);
        if (at >= 0) this.pendingListens.splice(at, 1);
      };
      const pending: PendingListen = {
        options,
        get settled() {
          return settled;
        },
        resolve: () => {
          if (settled) throw new Error(`listen on ${options.host}:${options.port} already settled`);
          finish();
          const listener = new FakeListener(options.host, options.port || this.#nextPort++, accept);
          this.listeners.push(listener);
          resolve(listener);
          return listener;
        },
        reject: (error) => {
          if (settled) throw new Error(`listen on ${options.host}:${options.port} already settled`);
          finish();
          reject(error);
        },
      };
      this.pendingListens.push(pending);
    });
  }

  lookup(hostname: string, signal: AbortSignal): Promise<string[]> {
    if (signal.aborted) return Promise.reject(abortReason(signal));
    return new Promise<string[]>((resolve, reject) => {
      let settled = false;
      const finish = () => {
        settled = true;
        const at = this.pendingLookups.indexOf(pending);
        if (at >= 0) this.pendingLookups.splice(at, 1);
        signal.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        if (settled) return;
        finish();
        reject(abortReason(signal));
      };
      const pending: PendingLookup = {
        hostname,
        signal,
        get settled() {
          return settled;
        },
        resolve: (addresses) => {
          if (settled) return;
          finish();
          resolve(addresses);
        },
        reject: (error) => {
          if (settled) return;
          finish();
          reject(error);
        },
      };
      this.pendingLookups.push(pending);
      signal.addEventListener("abort", onAbort, { once: true });
      const answer = this.dns.get(hostname);
      if (answer !== undefined) {
        queueMicrotask(() => (answer instanceof Error ? pending.reject(answer) : pending.resolve([...answer])));
      }
    });
  }

  readTextFile(path: string): Promise<string> {
    return Promise.reject(new Error(`ManualRuntime: no files (read of ${path})`));
  }

  serveHttp(_options: ListenOptions, _fetch: FetchHandler): Promise<HttpServer> {
    return Promise.reject(new Error("ManualRuntime: serveHttp is not supported"));
  }
}
