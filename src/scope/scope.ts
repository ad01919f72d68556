/**
 * Structured concurrency for slotgate. A `Scope` owns everything its owner starts — child scopes,
 * tasks, timers, sockets, DNS lookups, listeners — and tears all of it down on `close`: admit
 * nothing new, let in-flight work finish until a deadline, then abort the signal, destroy children
 * in reverse order, dispose resources, await tasks and run finalizers last-in first-out. Nothing
 * registered with a scope can run after its teardown: a timer armed in a closed scope cannot fire,
 * a socket callback of a destroyed scope is dropped (and counted, see `lateCallbacks`).
 *
 * This file is the scope itself. Sockets, listeners and DNS lookups owned by a scope are opened
 * through ./io.ts; sleeping and deadlines are in ./time.ts. Both build on the public methods
 * below (`admit`, `own`, `timer`, `guard`), never the reverse.
 */
import type { Runtime } from "../runtime.ts";
import { ScopeClosedError, ScopeTeardownError, isAbort } from "../errors.ts";

export type ResourceKind = "task" | "timer" | "socket" | "lookup" | "listener" | "resource";

/** A snapshot of one scope and its subtree, as shown by `GET /debug/scopes`. */
export interface ScopeInfo {
  path: string;
  state: ScopeState;
  resources: { kind: ResourceKind; name: string }[];
  children: ScopeInfo[];
}

export type ScopeState = "open" | "closing" | "destroying" | "closed";

/** Handle of a resource registered with `Scope.own`. */
export interface Owned {
  /**
   * Unregister it without disposing. True if it was still registered: neither teardown nor an
   * earlier release took it first, so whoever gets true settles it (and only they).
   */
  release(): boolean;
  /** Rename it in `inspect()`: a socket is listed as "connecting host:port" until it opens. */
  rename(name: string): void;
  /** Replace what teardown calls: a pending connect is aborted, an open socket destroyed. */
  setDispose(dispose: () => void | Promise<void>): void;
}

/** How a resource registered with `own` or `timer` meets the start of close. */
export interface EntryOptions {
  /**
   * Dispose it as soon as close begins (true), or only at teardown, after the drain (false):
   * timers of future work stop at close, while I/O and the deadlines of in-flight work must
   * outlive the drain that waits for them. Default: true for `timer`, false for `own`.
   */
  stopAtClose?: boolean;
}

/** A one-shot timer owned by a scope. */
export interface ScopedTimer extends Disposable {
  cancel(): void;
}

export interface CloseOptions {
  /** How long in-flight work may run before it is cancelled, in milliseconds (default 0). */
  deadlineMs?: number;
}

interface Entry {
  kind: ResourceKind;
  name: string;
  /** Cancels the resource; called once during teardown if it is still registered. */
  dispose: (() => void | Promise<void>) | null;
  /** Timers of future work end as soon as close begins; I/O and deadlines wait for destroy. */
  stopAtClose: boolean;
}

type ErrorSink = (error: unknown, scopePath: string) => void;

const MAX_COLLECTED_ERRORS = 64;

let lateCallbackCount = 0;

/** How many callbacks were dropped because their scope had already been torn down (tests assert 0 ran). */
export function lateCallbacks(): number {
  return lateCallbackCount;
}

/** What an absent set of children or tasks reads as. */
const NONE: ReadonlySet<never> = new Set();
/** The drains and finalizers of a scope that has none; never written. */
const NO_HOOKS: never[] = [];
/** Hook lists up to this long grow by an exactly sized copy; longer ones by `push`. */
const EXACT_HOOKS = 4;

/**
 * `hooks` with `fn` appended. On V8 a `push` (or a spread) past an array's length makes room for
 * 16 more slots (a two-hook list: 210 bytes, against 73 exactly sized), and most scopes, one per
 * client, keep one or two hooks for life: short lists are copied by `concat`, which sizes exactly.
 */
function withHook<T>(hooks: T[], fn: T): T[] {
  if (hooks.length < EXACT_HOOKS) return hooks.concat([fn]);
  hooks.push(fn);
  return hooks;
}

export class Scope implements AsyncDisposable {
  readonly path: string;
  readonly runtime: Runtime;
  /** Made on first use of `signal`: most scopes (one per client) never wait on anything. */
  #controller: AbortController | null = null;
  readonly #parent: Scope | null;
  readonly #onError: ErrorSink;
  #state: ScopeState = "open";
  /** Made on the first child or task, likewise. */
  #children: Set<Scope> | null = null;
  readonly #entries = new Set<Entry>();
  #tasks: Set<Promise<unknown>> | null = null;
  /** Shared empty until the first is added, then exactly sized while short (`withHook`). */
  #drains: (() => void | Promise<void>)[] = NO_HOOKS;
  #finalizers: (() => void | Promise<void>)[] = NO_HOOKS;
  readonly #errors: unknown[] = [];
  #closing: Promise<void> | null = null;
  #cutDrain: (() => void) | null = null;
  /** Set while a closing parent holds this scope's teardown until it destroys its children in order. */
  #release: (() => void) | null = null;

  private constructor(runtime: Runtime, path: string, parent: Scope | null, onError: ErrorSink) {
    this.runtime = runtime;
    this.path = path;
    this.#parent = parent;
    this.#onError = onError;
  }

  /** The root of a scope tree. `onError` hears task and callback failures as they happen. */
  static root(runtime: Runtime, name = "root", onError: ErrorSink = () => {}): Scope {
    return new Scope(runtime, name, null, onError);
  }

  /** Aborted when teardown starts (after the drain deadline); every wait of this scope takes it. */
  get signal(): AbortSignal {
    if (this.#controller === null) {
      this.#controller = new AbortController();
      // Asked for after teardown began: aborted already, as it would have been.
      if (this.#state === "destroying" || this.#state === "closed") this.#controller.abort(new ScopeClosedError(this.path, "continue"));
    }
    return this.#controller.signal;
  }

  get state(): ScopeState {
    return this.#state;
  }

  /** True until close begins: new work is admitted only while open. */
  get isOpen(): boolean {
    return this.#state === "open";
  }

  /**
   * Refuse new work once close has begun: throws `ScopeClosedError` saying it cannot `what`.
   * Every method that registers something calls it first; so do the helpers of ./io.ts, so that
   * their refusal names what they were asked to do ("connect to host:port").
   */
  admit(what: string): void {
    if (this.#state !== "open") throw new ScopeClosedError(this.path, what);
  }

  #collect(error: unknown): void {
    if (isAbort(error)) return;
    if (this.#errors.length < MAX_COLLECTED_ERRORS) this.#errors.push(error);
    this.#onError(error, this.path);
  }

  /** Open a child scope; it is closed with this one, or earlier by its owner. */
  child(name: string): Scope {
    this.admit(`open child scope '${name}'`);
    const child = new Scope(this.runtime, `${this.path}/${name}`, this, this.#onError);
    (this.#children ??= new Set()).add(child);
    return child;
  }

  /**
   * Run a task owned by this scope and return its result. It receives the scope's signal; close
   * waits for it (until the deadline), then aborts the signal and awaits it.
   */
  run<T>(name: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    this.admit(`start task '${name}'`);
    const entry: Entry = { kind: "task", name, dispose: null, stopAtClose: false };
    this.#entries.add(entry);
    const task = (async () => fn(this.signal))();
    const tracked = task.then(
      () => this.#entries.delete(entry),
      () => this.#entries.delete(entry),
    );
    const tasks = (this.#tasks ??= new Set());
    tasks.add(tracked);
    tracked.then(() => tasks.delete(tracked));
    return task;
  }

  /** Start a task whose outcome the scope owns: a failure other than cancellation is collected and reported. */
  spawn(name: string, fn: (signal: AbortSignal) => Promise<void>): void {
    this.run(name, fn).catch((error) => this.#collect(error));
  }

  /**
   * Arm a one-shot timer. It is disposed as soon as close begins, so it never fires in a closing
   * or closed scope (unless `stopAtClose: false`: a deadline that bounds in-flight work runs
   * until teardown); an error thrown by `fn` is collected, never thrown into the runtime.
   */
  timer(name: string, ms: number, fn: () => void, options: EntryOptions = {}): ScopedTimer {
    this.admit(`arm timer '${name}'`);
    const entry: Entry = { kind: "timer", name, dispose: null, stopAtClose: options.stopAtClose ?? true };
    const handle = this.runtime.setTimer(ms, () => {
      // The runtime may have queued the callback just before cancel(); the entry is the truth.
      if (!this.#entries.delete(entry)) return;
      try {
        fn();
      } catch (error) {
        this.#collect(error);
      }
    });
    const cancel = () => {
      this.#entries.delete(entry);
      handle.cancel();
    };
    entry.dispose = cancel;
    this.#entries.add(entry);
    return { cancel, [Symbol.dispose]: cancel };
  }

  /**
   * Register a resource (an accepted socket, a server, a pending lookup) for listing and
   * teardown. The handle can release it, rename it and swap its dispose, for resources that
   * change as they go (a connect that becomes a socket).
   */
  own(kind: ResourceKind, name: string, dispose: () => void | Promise<void>, options: EntryOptions = {}): Owned {
    this.admit(`own ${kind} '${name}'`);
    const entry: Entry = { kind, name, dispose, stopAtClose: options.stopAtClose ?? false };
    this.#entries.add(entry);
    return {
      release: () => this.#entries.delete(entry),
      rename: (name) => void (entry.name = name),
      setDispose: (dispose) => void (entry.dispose = dispose),
    };
  }

  /**
   * Wrap a callback so that it runs only while the scope is alive (open or draining). Once the
   * scope is torn down the callback is dropped and counted as a late callback.
   */
  guard<A extends unknown[]>(fn: (...args: A) => void, countLate = true): (...args: A) => void {
    return (...args: A) => {
      if (this.#state === "destroying" || this.#state === "closed") {
        if (countLate) lateCallbackCount++;
        return;
      }
      try {
        fn(...args);
      } catch (error) {
        this.#collect(error);
      }
    };
  }

  /**
   * `guard` without a wrapper, for an object of callbacks that lives as long as the scope (one
   * per client connection, where a wrapper per callback is weight): run `fn(target, arg)` now,
   * as a guarded callback would run. `fn` is shared; the scope and `target` say whose it is.
   */
  call<T, A>(fn: (target: T, arg: A) => void, target: T, arg: A, countLate = true): void {
    if (this.#state === "destroying" || this.#state === "closed") {
      if (countLate) lateCallbackCount++;
      return;
    }
    try {
      fn(target, arg);
    } catch (error) {
      this.#collect(error);
    }
  }

  /**
   * Register work to wait for when close begins (stop reading, flush replies...). Close waits
   * for every drain until the deadline, then tears down regardless.
   */
  onDrain(fn: () => void | Promise<void>): void {
    this.admit("register a drain");
    this.#drains = withHook(this.#drains, fn);
  }

  /** Register a finalizer; finalizers run last, in reverse order of registration. */
  defer(fn: () => void | Promise<void>): void {
    this.admit("register a finalizer");
    this.#finalizers = withHook(this.#finalizers, fn);
  }

  /**
   * Close gracefully: admit nothing new, stop timers, wait for tasks, drains and children until
   * `deadlineMs`, then tear down. Idempotent; resolves when teardown is complete; rejects with
   * `ScopeTeardownError` when anything failed along the way.
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.#closing ??= this.#close(options.deadlineMs ?? 0, null, () => {});
    // An explicit close by the owner does not wait for the parent's turn (see #closeForParent).
    this.#release?.();
    return this.#closing;
  }

  /**
   * Close as part of the parent's close: drain now with the parent's deadline, but wait for the
   * parent's `destroy()` (children in reverse order) before tearing down. Resolves once drained.
   */
  #closeForParent(deadlineMs: number): Promise<void> {
    if (this.#closing) return this.#closing.then(() => {}, () => {});
    let drained!: () => void;
    const done = new Promise<void>((resolve) => (drained = resolve));
    const held = new Promise<void>((resolve) => (this.#release = resolve));
    this.#closing = this.#close(deadlineMs, held, drained);
    return done;
  }

  /** Tear down now, cancelling in-flight work. Safe to call during a graceful close. */
  destroy(): Promise<void> {
    const closing = this.close({ deadlineMs: 0 });
    this.#cutDrain?.();
    return closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(deadlineMs: number, held: Promise<void> | null, drained: () => void): Promise<void> {
    this.#state = "closing";
    for (const entry of [...this.#entries]) {
      if (entry.stopAtClose) this.#disposeEntry(entry);
    }
    await this.#drain(deadlineMs);
    drained();
    if (held) await held;
    this.#state = "destroying";
    this.#controller?.abort(new ScopeClosedError(this.path, "continue"));
    for (const child of [...(this.#children ?? NONE)].reverse()) {
      try {
        await child.destroy();
      } catch (error) {
        this.#collectChild(error);
      }
    }
    for (const entry of [...this.#entries].reverse()) {
      if (entry.kind !== "task") this.#disposeEntry(entry);
    }
    await Promise.all([...(this.#tasks ?? NONE)]);
    for (const finalizer of this.#finalizers.reverse()) {
      try {
        await finalizer();
      } catch (error) {
        this.#errors.push(error);
      }
    }
    this.#finalizers = NO_HOOKS;
    this.#entries.clear();
    this.#state = "closed";
    if (this.#parent) this.#parent.#children?.delete(this);
    if (this.#errors.length > 0) throw new ScopeTeardownError(this.path, this.#errors);
  }

  /** Phase one of close: wait for in-flight work, bounded by the deadline (or cut by destroy). */
  async #drain(deadlineMs: number): Promise<void> {
    const pending: Promise<unknown>[] = [...(this.#tasks ?? NONE)];
    for (const drain of this.#drains) {
      pending.push(Promise.resolve().then(drain).catch((error) => this.#collect(error)));
    }
    for (const child of this.#children ?? NONE) {
      pending.push(child.#closeForParent(deadlineMs));
      // A child may finish (and leave #children) before teardown reaches it: collect its error here too.
      child.#closing!.catch((error) => this.#collectChild(error));
    }
    if (pending.length === 0) return;
    if (deadlineMs <= 0) {
      // Drains still get their synchronous part (stop accepting, stop reading) before teardown.
      return;
    }
    await new Promise<void>((resolve) => {
      const deadline = this.runtime.setTimer(deadlineMs, () => resolve());
      this.#cutDrain = () => {
        deadline.cancel();
        resolve();
      };
      Promise.all(pending).then(() => {
        deadline.cancel();
        resolve();
      });
    });
    this.#cutDrain = null;
  }

  /** A child's teardown error can arrive through the drain and through destroy: keep it once. */
  #collectChild(error: unknown): void {
    if (!this.#errors.includes(error)) this.#errors.push(error);
  }

  #disposeEntry(entry: Entry): void {
    if (!this.#entries.delete(entry)) return;
    try {
      const result = entry.dispose?.();
      if (result instanceof Promise) {
        (this.#tasks ??= new Set()).add(result.catch((error) => this.#errors.push(error)));
      }
    } catch (error) {
      this.#errors.push(error);
    }
  }

  /** A snapshot of this scope's live resources and those of its descendants. */
  inspect(): ScopeInfo {
    return {
      path: this.path,
      state: this.#state,
      resources: [...this.#entries].map((e) => ({ kind: e.kind, name: e.name })),
      children: [...(this.#children ?? NONE)].map((c) => c.inspect()),
    };
  }

  /** How many live resources this scope and its descendants hold (child scopes count one each). */
  liveCount(): number {
    let count = this.#entries.size;
    for (const child of this.#children ?? NONE) count += 1 + child.liveCount();
    return count;
  }
}
