/**
 * Unit tests of src/scope.ts on a manual clock (test/support/manual-runtime.ts): no real timers,
 * sockets or DNS, so every scenario is deterministic on Node (tsx), Bun and Deno.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Scope, lateCallbacks } from "../../src/scope/scope.ts";
import { connect, listen, lookup } from "../../src/scope/io.ts";
import { raceAbort, sleep, withTimeout } from "../../src/scope/time.ts";
import { ScopeClosedError, ScopeTeardownError, TimeoutError } from "../../src/errors.ts";
import type { ConnHandlers } from "../../src/runtime.ts";
import { FakeConn, ManualRuntime, deferred, mulberry32, settle } from "../support/manual-runtime.ts";

// ---------------------------------------------------------------------------------------------
// Helpers

interface Tracked<T> {
  state: "pending" | "fulfilled" | "rejected";
  value: T | undefined;
  error: unknown;
  promise: Promise<T>;
}

/** Observe a promise without awaiting it (and without leaving its rejection unhandled). */
function track<T>(promise: Promise<T>): Tracked<T> {
  const t: Tracked<T> = { state: "pending", value: undefined, error: undefined, promise };
  promise.then(
    (value) => {
      t.state = "fulfilled";
      t.value = value;
    },
    (error) => {
      t.state = "rejected";
      t.error = error;
    },
  );
  return t;
}

function isClosedError(error: unknown, path?: string): boolean {
  assert.ok(error instanceof ScopeClosedError, `expected a ScopeClosedError, got ${String(error)}`);
  assert.equal(error.name, "ScopeClosedError");
  assert.equal(error.code, "SCOPE_CLOSED");
  if (path !== undefined) assert.equal(error.scopePath, path);
  return true;
}

function throwsClosed(fn: () => unknown, path?: string): void {
  assert.throws(fn, (error) => isClosedError(error, path));
}

async function rejectsClosed(promise: Promise<unknown>, path?: string): Promise<void> {
  await assert.rejects(promise, (error) => isClosedError(error, path));
}

function isTeardownError(error: unknown, path: string): error is ScopeTeardownError {
  assert.ok(error instanceof ScopeTeardownError, `expected a ScopeTeardownError, got ${String(error)}`);
  assert.equal(error.name, "ScopeTeardownError");
  assert.equal(error.code, "SCOPE_TEARDOWN");
  assert.equal(error.scopePath, path);
  return true;
}

/** A wait that only ends when `signal` aborts, rejecting with its reason (a well-behaved task). */
function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise<never>((_, reject) => {
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

function connHandlers(): { log: string[]; handlers: ConnHandlers } {
  const log: string[] = [];
  const handlers: ConnHandlers = {
    data: (chunk) => void log.push(`data ${new TextDecoder().decode(chunk)}`),
    drain: () => void log.push("drain"),
    close: (error) => void log.push(error ? `close ${error.message}` : "close"),
  };
  return { log, handlers };
}

function setup(name = "root") {
  const rt = new ManualRuntime();
  const reported: { error: unknown; path: string }[] = [];
  const scope = Scope.root(rt, name, (error, path) => void reported.push({ error, path }));
  return { rt, scope, reported };
}

// ---------------------------------------------------------------------------------------------

describe("admission after close begins", () => {
  /** A scope whose close has begun and is draining (a task holds it open until `release`). */
  async function closing(fn: (scope: Scope, rt: ManualRuntime) => void | Promise<void>): Promise<void> {
    const { rt, scope } = setup("adm");
    const hold = deferred();
    scope.spawn("hold", () => hold.promise);
    const closed = track(scope.close({ deadlineMs: 1000 }));
    assert.equal(scope.state, "closing");
    assert.equal(scope.isOpen, false);
    await fn(scope, rt);
    hold.resolve();
    await settle();
    assert.equal(closed.state, "fulfilled");
    assert.equal(scope.liveCount(), 0);
  }

  test("spawning a task after close begins throws ScopeClosedError", async () => {
    await closing((scope) => {
      let ran = false;
      throwsClosed(() => scope.spawn("late", async () => void (ran = true)), "adm");
      assert.equal(ran, false);
    });
  });

  test("running a task after close begins throws ScopeClosedError and never calls fn", async () => {
    await closing((scope) => {
      let ran = false;
      throwsClosed(() => scope.run("late", async () => void (ran = true)), "adm");
      assert.equal(ran, false);
    });
  });

  test("arming a timer after close begins throws ScopeClosedError and arms nothing", async () => {
    await closing((scope, rt) => {
      const before = rt.pendingTimers();
      throwsClosed(() => scope.timer("late", 10, () => {}), "adm");
      assert.equal(rt.pendingTimers(), before);
    });
  });

  test("opening a child after close begins throws ScopeClosedError", async () => {
    await closing((scope) => {
      throwsClosed(() => scope.child("late"), "adm");
      assert.deepEqual(scope.inspect().children, []);
    });
  });

  test("connecting after close begins rejects with ScopeClosedError and never reaches the runtime", async () => {
    await closing(async (scope, rt) => {
      await rejectsClosed(connect(scope, { host: "10.0.0.1", port: 6379 }, connHandlers().handlers), "adm");
      assert.equal(rt.pendingConnects.length, 0);
    });
  });

  test("looking up after close begins rejects with ScopeClosedError and never reaches the runtime", async () => {
    await closing(async (scope, rt) => {
      await rejectsClosed(lookup(scope, "redis.local"), "adm");
      assert.equal(rt.pendingLookups.length, 0);
    });
  });

  test("listening after close begins rejects with ScopeClosedError and never reaches the runtime", async () => {
    await closing(async (scope, rt) => {
      await rejectsClosed(listen(scope, { host: "127.0.0.1", port: 0 }, () => connHandlers().handlers), "adm");
      assert.equal(rt.pendingListens.length, 0);
    });
  });

  test("owning a resource after close begins throws ScopeClosedError and registers nothing", async () => {
    await closing((scope) => {
      throwsClosed(() => scope.own("resource", "late", () => {}), "adm");
      assert.equal(scope.inspect().resources.some((r) => r.name === "late"), false);
    });
  });

  test("registering a drain after close begins throws ScopeClosedError", async () => {
    await closing((scope) => throwsClosed(() => scope.onDrain(() => {}), "adm"));
  });

  test("registering a finalizer after close begins throws ScopeClosedError and it never runs", async () => {
    let ran = false;
    await closing((scope) => throwsClosed(() => scope.defer(() => void (ran = true)), "adm"));
    assert.equal(ran, false);
  });

  test("withTimeout after close begins rejects with ScopeClosedError and never calls fn", async () => {
    await closing(async (scope) => {
      let ran = false;
      await rejectsClosed(withTimeout(scope, "late", 10, async () => void (ran = true)), "adm");
      assert.equal(ran, false);
    });
  });

  test("sleeping after close begins rejects with ScopeClosedError", async () => {
    await closing((scope) => rejectsClosed(sleep(scope, 10), "adm"));
  });

  test("a fully closed scope refuses everything as well", async () => {
    const { scope } = setup("done");
    await scope.close();
    assert.equal(scope.state, "closed");
    throwsClosed(() => scope.spawn("x", async () => {}), "done");
    throwsClosed(() => scope.timer("x", 1, () => {}), "done");
    throwsClosed(() => scope.child("x"), "done");
    throwsClosed(() => scope.own("resource", "x", () => {}), "done");
    throwsClosed(() => scope.onDrain(() => {}), "done");
    throwsClosed(() => scope.defer(() => {}), "done");
    await rejectsClosed(sleep(scope, 1), "done");
    await rejectsClosed(lookup(scope, "x"), "done");
    await rejectsClosed(connect(scope, { host: "x", port: 1 }, connHandlers().handlers), "done");
  });

  test("the refusal names the scope path and what was refused", () => {
    const { scope } = setup("root");
    const kid = scope.child("kid");
    void kid.close();
    assert.throws(
      () => kid.timer("heartbeat", 10, () => {}),
      (error: unknown) =>
        isClosedError(error, "root/kid") &&
        (error as Error).message === "scope 'root/kid' is closed: cannot arm timer 'heartbeat'",
    );
  });
});

describe("scope state", () => {
  test("state goes open, closing while draining, destroying during teardown, closed at the end", async () => {
    const { rt, scope } = setup();
    const seen: string[] = [];
    seen.push(scope.state);
    scope.onDrain(() => void seen.push(`drain:${scope.state}:${scope.signal.aborted}`));
    scope.defer(() => void seen.push(`finalizer:${scope.state}:${scope.signal.aborted}`));
    scope.spawn("work", (signal) => untilAborted(signal));
    const closed = track(scope.close({ deadlineMs: 10 }));
    seen.push(scope.state);
    await rt.advance(10);
    seen.push(scope.state);
    assert.equal(closed.state, "fulfilled");
    assert.deepEqual(seen, ["open", "closing", "drain:closing:false", "finalizer:destroying:true", "closed"]);
  });
});

describe("scope tree", () => {
  test("a root is named root by default and child paths nest under it", async () => {
    const rt = new ManualRuntime();
    const root = Scope.root(rt);
    const grandkid = root.child("proxy").child("session-1");
    assert.equal(root.path, "root");
    assert.equal(grandkid.path, "root/proxy/session-1");
    assert.equal(grandkid.runtime, rt);
    await root.close();
    assert.equal(grandkid.state, "closed");
  });

  test("closing a child leaves its parent and siblings open", async () => {
    const { scope: root } = setup();
    const a = root.child("a");
    const b = root.child("b");
    const task = track(a.run("work", (signal) => untilAborted(signal)));
    await a.close();
    assert.equal(task.state, "rejected");
    assert.equal(root.state, "open");
    assert.equal(b.state, "open");
    assert.equal(root.signal.aborted, false);
    assert.equal(b.signal.aborted, false);
    assert.deepEqual(
      root.inspect().children.map((c) => c.path),
      ["root/b"],
    );
    await root.close();
  });
});

describe("timers", () => {
  test("a timer fires once at its due time and then leaves the scope", async () => {
    const { rt, scope } = setup();
    const fired: number[] = [];
    scope.timer("tick", 100, () => void fired.push(rt.now()));
    assert.deepEqual(scope.inspect().resources, [{ kind: "timer", name: "tick" }]);
    await rt.advance(99);
    assert.deepEqual(fired, []);
    await rt.advance(1);
    assert.deepEqual(fired, [100]);
    await rt.advance(1000);
    assert.deepEqual(fired, [100]);
    assert.deepEqual(scope.inspect().resources, []);
    assert.equal(rt.pendingTimers(), 0);
    await scope.close();
  });

  test("timers of one scope fire in due order, then in arming order", async () => {
    const { rt, scope } = setup();
    const order: string[] = [];
    scope.timer("late", 20, () => void order.push("late"));
    scope.timer("first", 10, () => void order.push("first"));
    scope.timer("second", 10, () => void order.push("second"));
    await rt.advance(50);
    assert.deepEqual(order, ["first", "second", "late"]);
    await scope.close();
  });

  test("an armed timer never fires after close begins, even when the drain outlasts it", async () => {
    const { rt, scope } = setup();
    let fired = 0;
    scope.timer("refresh", 50, () => void fired++);
    const hold = deferred();
    scope.spawn("in flight", () => hold.promise);
    const closed = track(scope.close({ deadlineMs: 1000 }));
    assert.deepEqual(scope.inspect().resources, [{ kind: "task", name: "in flight" }]);
    await rt.advance(200);
    assert.equal(fired, 0);
    assert.equal(closed.state, "pending");
    hold.resolve();
    await settle();
    assert.equal(closed.state, "fulfilled");
    assert.equal(fired, 0);
    assert.equal(rt.pendingTimers(), 0);
    await rt.advance(5000);
    assert.equal(fired, 0);
  });

  test("an armed timer is cancelled at once by a close with no deadline", async () => {
    const { rt, scope } = setup();
    let fired = 0;
    scope.timer("refresh", 50, () => void fired++);
    assert.equal(rt.pendingTimers(), 1);
    await scope.close();
    assert.equal(rt.pendingTimers(), 0);
    await rt.advance(100);
    assert.equal(fired, 0);
  });

  test("cancelling a timer stops it, removes it from inspect and is idempotent", async () => {
    const { rt, scope } = setup();
    let fired = 0;
    const timer = scope.timer("retry", 10, () => void fired++);
    timer.cancel();
    timer.cancel();
    assert.deepEqual(scope.inspect().resources, []);
    assert.equal(rt.pendingTimers(), 0);
    await rt.advance(20);
    assert.equal(fired, 0);
    await scope.close();
  });

  test("a timer callback the runtime delivers after cancel or close is dropped", async () => {
    const { rt, scope } = setup();
    const raw: (() => void)[] = [];
    const setTimer = rt.setTimer.bind(rt);
    rt.setTimer = (ms, fn) => {
      raw.push(fn);
      return setTimer(ms, fn);
    };
    let fired = 0;
    const cancelled = scope.timer("cancelled", 10, () => void fired++);
    scope.timer("closed", 10, () => void fired++);
    cancelled.cancel();
    await scope.close();
    for (const fn of raw) fn(); // a runtime that had already queued them
    assert.equal(fired, 0);
  });

  test("a sleep the runtime wakes after close began stays rejected with ScopeClosedError", async () => {
    const { rt, scope } = setup();
    const raw: (() => void)[] = [];
    const setTimer = rt.setTimer.bind(rt);
    rt.setTimer = (ms, fn) => {
      raw.push(fn);
      return setTimer(ms, fn);
    };
    const slept = track(sleep(scope, 10));
    await scope.close();
    for (const fn of raw) fn();
    await settle();
    assert.equal(slept.state, "rejected");
    isClosedError(slept.error, "root");
  });

  test("a timer declared with using is cancelled at block end", async () => {
    const { rt, scope } = setup();
    let fired = 0;
    {
      using _timer = scope.timer("block", 10, () => void fired++);
      assert.equal(rt.pendingTimers(), 1);
    }
    assert.equal(rt.pendingTimers(), 0);
    await rt.advance(20);
    assert.equal(fired, 0);
    await scope.close();
  });

  test("a timer callback that throws has its error reported and collected, not thrown into the runtime", async () => {
    const { rt, scope, reported } = setup();
    const boom = new Error("timer callback failed");
    scope.timer("bad", 10, () => {
      throw boom;
    });
    await rt.advance(10); // would throw if the error escaped into the runtime
    assert.deepEqual(reported, [{ error: boom, path: "root" }]);
    await assert.rejects(scope.close(), (error) => isTeardownError(error, "root") && error.errors[0] === boom);
  });
});

describe("sleep", () => {
  test("sleep resolves after its delay and not before, and leaves nothing armed", async () => {
    const { rt, scope } = setup();
    const slept = track(sleep(scope, 100));
    assert.deepEqual(scope.inspect().resources, [{ kind: "timer", name: "sleep" }]);
    await rt.advance(99);
    assert.equal(slept.state, "pending");
    await rt.advance(1);
    assert.equal(slept.state, "fulfilled");
    assert.equal(rt.pendingTimers(), 0);
    assert.deepEqual(scope.inspect().resources, []);
    await scope.close();
  });

  test("sleep rejects with ScopeClosedError as soon as close begins, without waiting for the deadline", async () => {
    const { rt, scope } = setup();
    const slept = track(sleep(scope, 100));
    const hold = deferred();
    scope.spawn("hold", () => hold.promise);
    const closed = track(scope.close({ deadlineMs: 1000 }));
    await settle();
    assert.equal(slept.state, "rejected");
    isClosedError(slept.error, "root");
    assert.equal(rt.now(), 0);
    assert.equal(rt.pendingTimers(), 1, "only the drain deadline is armed");
    hold.resolve();
    await settle();
    assert.equal(closed.state, "fulfilled");
    assert.equal(rt.pendingTimers(), 0);
  });

  test("a task sleeping in a loop ends when close begins, so the drain finishes early", async () => {
    const { rt, scope } = setup();
    let wakeups = 0;
    const task = track(
      scope.run("poll", async () => {
        for (;;) {
          await sleep(scope, 10);
          wakeups++;
        }
      }),
    );
    await rt.advance(35);
    assert.equal(wakeups, 3);
    const closed = track(scope.close({ deadlineMs: 1000 }));
    await settle();
    assert.equal(closed.state, "fulfilled");
    assert.equal(task.state, "rejected");
    isClosedError(task.error);
    assert.equal(rt.now(), 35);
  });

  test("sleep with an already aborted external signal rejects with its reason and arms nothing", async () => {
    const { rt, scope } = setup();
    const controller = new AbortController();
    const reason = new Error("caller gave up");
    controller.abort(reason);
    await assert.rejects(sleep(scope, 100, controller.signal), (error) => error === reason);
    assert.equal(rt.pendingTimers(), 0);
    assert.deepEqual(scope.inspect().resources, []);
    await scope.close();
  });

  test("sleep rejects with the external signal's reason when it aborts midway, and its timer is cancelled", async () => {
    const { rt, scope } = setup();
    const controller = new AbortController();
    const slept = track(sleep(scope, 100, controller.signal));
    await rt.advance(40);
    const reason = new Error("caller gave up");
    controller.abort(reason);
    await settle();
    assert.equal(slept.state, "rejected");
    assert.equal(slept.error, reason);
    assert.equal(rt.pendingTimers(), 0);
    assert.deepEqual(scope.inspect().resources, []);
    await scope.close();
  });

  test("a sleep that completed ignores a later abort of its external signal", async () => {
    const { rt, scope } = setup();
    const controller = new AbortController();
    const slept = track(sleep(scope, 10, controller.signal));
    await rt.advance(10);
    controller.abort(new Error("too late"));
    await settle();
    assert.equal(slept.state, "fulfilled");
    await scope.close();
  });
});

describe("close: the drain phase", () => {
  test("close waits for an in-flight task that finishes before the deadline", async () => {
    const { rt, scope } = setup();
    const events: string[] = [];
    const reply = deferred<string>();
    rt.setTimer(30, () => reply.resolve("OK")); // the I/O the task waits for completes at t=30
    const result = track(
      scope.run("request", async (signal) => {
        const value = await reply.promise;
        events.push(`task done aborted=${signal.aborted}`);
        return value;
      }),
    );
    const closed = track(scope.close({ deadlineMs: 100 }).then(() => void events.push(`closed at ${rt.now()}`)));
    await rt.advance(29);
    assert.deepEqual(events, []);
    assert.equal(scope.state, "closing");
    await rt.advance(1);
    assert.deepEqual(events, ["task done aborted=false", "closed at 30"]);
    assert.equal(result.value, "OK");
    assert.equal(closed.state, "fulfilled");
    assert.equal(rt.pendingTimers(), 0, "the drain deadline timer is cancelled");
  });

  test("a task that respects the signal is aborted at the deadline, and close resolves only after it settled", async () => {
    const { rt, scope } = setup();
    const cleanup = deferred();
    let reason: unknown;
    const task = track(
      scope.run("stubborn", async (signal) => {
        try {
          await untilAborted(signal);
        } finally {
          reason = signal.reason;
          await cleanup.promise; // cleanup takes a while after the abort
        }
      }),
    );
    const closed = track(scope.close({ deadlineMs: 100 }));
    await rt.advance(99);
    assert.equal(scope.signal.aborted, false);
    assert.equal(closed.state, "pending");
    await rt.advance(1);
    assert.equal(scope.signal.aborted, true);
    isClosedError(scope.signal.reason, "root");
    assert.equal(reason, scope.signal.reason);
    assert.equal(closed.state, "pending", "close waits for the aborted task to settle");
    assert.equal(task.state, "pending");
    cleanup.resolve();
    await settle();
    assert.equal(task.state, "rejected");
    assert.equal(closed.state, "fulfilled");
    assert.equal(rt.now(), 100);
  });

  test("the signal is not aborted while draining, only when teardown starts", async () => {
    const { rt, scope } = setup();
    scope.spawn("work", (signal) => untilAborted(signal));
    const closed = track(scope.close({ deadlineMs: 50 }));
    await rt.advance(49);
    assert.equal(scope.signal.aborted, false);
    await rt.advance(1);
    assert.equal(scope.signal.aborted, true);
    assert.equal(closed.state, "fulfilled");
  });

  test("close with no deadline aborts in-flight tasks at once", async () => {
    const { rt, scope } = setup();
    const task = track(scope.run("work", (signal) => untilAborted(signal)));
    await scope.close();
    assert.equal(rt.now(), 0);
    assert.equal(task.state, "rejected");
    isClosedError(task.error, "root");
  });

  test("closing an idle scope with a deadline arms no timer and resolves without the clock moving", async () => {
    const { rt, scope } = setup();
    const closed = track(scope.close({ deadlineMs: 1000 }));
    assert.equal(rt.pendingTimers(), 0);
    await settle();
    assert.equal(closed.state, "fulfilled");
  });

  test("a drain runs when close begins and close waits for it until it finishes", async () => {
    const { rt, scope } = setup();
    const events: string[] = [];
    const flushed = deferred();
    scope.onDrain(() => {
      events.push(`drain started at ${rt.now()}`);
      return flushed.promise;
    });
    scope.defer(() => void events.push(`finalizer at ${rt.now()}`));
    rt.setTimer(40, () => flushed.resolve());
    const closed = track(scope.close({ deadlineMs: 100 }));
    await settle();
    assert.deepEqual(events, ["drain started at 0"]);
    await rt.advance(100);
    assert.deepEqual(events, ["drain started at 0", "finalizer at 40"]);
    assert.equal(closed.state, "fulfilled");
  });

  test("a drain that outlasts the deadline is cut off at the deadline", async () => {
    const { rt, scope } = setup();
    scope.onDrain(() => new Promise<void>(() => {}));
    const closed = track(scope.close({ deadlineMs: 100 }));
    await rt.advance(99);
    assert.equal(closed.state, "pending");
    await rt.advance(1);
    assert.equal(closed.state, "fulfilled");
  });

  test("with no deadline a drain still gets its synchronous part before teardown", async () => {
    const { scope } = setup();
    const events: string[] = [];
    scope.onDrain(() => void events.push(`drain:${scope.state}`));
    scope.defer(() => void events.push("finalizer"));
    await scope.close();
    assert.deepEqual(events, ["drain:closing", "finalizer"]);
  });

  test("destroy during a graceful close cuts the drain short and returns the same promise", async () => {
    const { rt, scope } = setup();
    const task = track(scope.run("work", (signal) => untilAborted(signal)));
    const closing = scope.close({ deadlineMs: 1000 });
    const closed = track(closing);
    await rt.advance(10);
    assert.equal(closed.state, "pending");
    assert.equal(scope.destroy(), closing);
    await settle();
    assert.equal(closed.state, "fulfilled");
    assert.equal(task.state, "rejected");
    assert.equal(rt.now(), 10);
    assert.equal(rt.pendingTimers(), 0, "the drain deadline timer is cancelled");
  });

  test("children drain with the parent's deadline: the parent waits for a child's in-flight task", async () => {
    const { rt, scope } = setup();
    const kid = scope.child("kid");
    const reply = deferred<string>();
    rt.setTimer(30, () => reply.resolve("OK"));
    const result = track(kid.run("request", () => reply.promise));
    const closed = track(scope.close({ deadlineMs: 100 }));
    await rt.advance(29);
    assert.equal(kid.state, "closing");
    assert.equal(closed.state, "pending");
    await rt.advance(1);
    assert.equal(result.value, "OK");
    assert.equal(closed.state, "fulfilled");
    assert.equal(kid.state, "closed");
    assert.equal(rt.pendingTimers(), 0);
  });

  test("a child whose work outlasts the deadline is destroyed when the parent's deadline passes", async () => {
    const { rt, scope } = setup();
    const kid = scope.child("kid");
    const task = track(kid.run("work", (signal) => untilAborted(signal)));
    const closed = track(scope.close({ deadlineMs: 100 }));
    await rt.advance(99);
    assert.equal(task.state, "pending");
    await rt.advance(1);
    assert.equal(task.state, "rejected");
    isClosedError(task.error, "root/kid");
    assert.equal(closed.state, "fulfilled");
    assert.equal(rt.pendingTimers(), 0);
  });
});

describe("close: teardown order", () => {
  test("parent signal aborts first, children tear down in reverse order, then resources, tasks, and finalizers LIFO", async () => {
    const { scope: root } = setup();
    const events: string[] = [];
    const a = root.child("a");
    const b = root.child("b");
    for (const [name, kid] of [["a", a], ["b", b]] as const) {
      kid.spawn("work", async (signal) => {
        await untilAborted(signal).catch(() => void events.push(`${name} task aborted`));
      });
      kid.defer(() => void events.push(`${name} finalizer`));
    }
    const taskCleanup = deferred();
    root.spawn("work", async (signal) => {
      await untilAborted(signal).catch(() => void events.push("root task aborted"));
      await taskCleanup.promise;
      events.push("root task finished");
    });
    root.own("resource", "pool", () => void events.push("pool disposed"));
    root.defer(() => void events.push("root finalizer 1"));
    root.defer(() => void events.push("root finalizer 2"));
    const closed = track(root.close());
    await settle();
    assert.deepEqual(events, [
      "root task aborted",
      "b task aborted",
      "b finalizer",
      "a task aborted",
      "a finalizer",
      "pool disposed",
    ]);
    assert.equal(closed.state, "pending", "finalizers wait for the root task");
    taskCleanup.resolve();
    await settle();
    assert.deepEqual(events.slice(6), ["root task finished", "root finalizer 2", "root finalizer 1"]);
    assert.equal(closed.state, "fulfilled");
  });

  for (const deadlineMs of [0, 100]) {
    test(`children with nothing in flight still tear down in reverse order (deadline ${deadlineMs} ms)`, async () => {
      const { rt, scope: root } = setup();
      const events: string[] = [];
      for (const name of ["first", "second", "third"]) {
        const kid = root.child(name);
        kid.defer(() => void events.push(`${name} finalizer`));
        kid.own("resource", `${name} socket`, () => void events.push(`${name} disposed`));
      }
      root.defer(() => void events.push("root finalizer"));
      const closed = track(root.close({ deadlineMs }));
      await rt.advance(deadlineMs);
      assert.equal(closed.state, "fulfilled");
      assert.deepEqual(events, [
        "third disposed",
        "third finalizer",
        "second disposed",
        "second finalizer",
        "first disposed",
        "first finalizer",
        "root finalizer",
      ]);
    });
  }

  test("destroying a parent tears its children down in reverse order", async () => {
    const { scope: root } = setup();
    const events: string[] = [];
    const a = root.child("a");
    const b = root.child("b");
    a.defer(() => void events.push("a"));
    b.defer(() => void events.push("b"));
    await root.destroy();
    assert.deepEqual(events, ["b", "a"]);
  });

  test("grandchildren are torn down before their parent's finalizers, which run before the root's", async () => {
    const { scope: root } = setup();
    const events: string[] = [];
    const kid = root.child("kid");
    const grandkid = kid.child("grandkid");
    grandkid.defer(() => void events.push("grandkid finalizer"));
    kid.defer(() => void events.push("kid finalizer"));
    root.defer(() => void events.push("root finalizer"));
    await root.close();
    assert.deepEqual(events, ["grandkid finalizer", "kid finalizer", "root finalizer"]);
    assert.equal(grandkid.state, "closed");
  });

  test("owned resources are disposed in reverse order, and async disposals are awaited before finalizers", async () => {
    const { scope } = setup();
    const events: string[] = [];
    const disposed = deferred();
    scope.own("resource", "first", () => void events.push("first disposed"));
    scope.own("resource", "second", async () => {
      events.push("second disposing");
      await disposed.promise;
      events.push("second disposed");
    });
    scope.defer(() => void events.push("finalizer"));
    const closed = track(scope.close());
    await settle();
    assert.deepEqual(events, ["second disposing", "first disposed"]);
    disposed.resolve();
    await settle();
    assert.deepEqual(events, ["second disposing", "first disposed", "second disposed", "finalizer"]);
    assert.equal(closed.state, "fulfilled");
  });

  test("async finalizers are awaited one at a time, last registered first", async () => {
    const { scope } = setup();
    const events: string[] = [];
    const gate = deferred();
    scope.defer(() => void events.push("first"));
    scope.defer(async () => {
      events.push("second started");
      await gate.promise;
      events.push("second done");
    });
    const closed = track(scope.close());
    await settle();
    assert.deepEqual(events, ["second started"]);
    gate.resolve();
    await settle();
    assert.deepEqual(events, ["second started", "second done", "first"]);
    assert.equal(closed.state, "fulfilled");
  });

  test("close is idempotent: every call returns the same promise and finalizers run once", async () => {
    const { rt, scope } = setup();
    let finalized = 0;
    scope.defer(() => void finalized++);
    scope.spawn("work", (signal) => untilAborted(signal));
    const first = scope.close({ deadlineMs: 10 });
    assert.equal(scope.close(), first);
    assert.equal(scope.close({ deadlineMs: 5000 }), first, "a later deadline is ignored");
    assert.equal(scope[Symbol.asyncDispose](), first);
    await rt.advance(10);
    await first;
    assert.equal(scope.close(), first);
    assert.equal(scope.destroy(), first);
    await scope.close();
    assert.equal(finalized, 1);
    assert.equal(rt.now(), 10);
  });

  test("a drain that closes a child itself does not wait for the parent's deadline", async () => {
    const { rt, scope: root } = setup();
    const events: string[] = [];
    const kid = root.child("kid");
    kid.defer(() => void events.push("kid finalizer"));
    root.onDrain(async () => {
      await kid.close();
      events.push("drain done");
    });
    const closed = track(root.close({ deadlineMs: 1000 }));
    await settle();
    assert.equal(closed.state, "fulfilled");
    assert.deepEqual(events, ["kid finalizer", "drain done"]);
    assert.equal(rt.now(), 0);
    assert.equal(rt.pendingTimers(), 0);
  });

  test("a child closed by its owner leaves the parent's tree and is not torn down again", async () => {
    const { scope: root } = setup();
    let finalized = 0;
    const kid = root.child("kid");
    kid.defer(() => void finalized++);
    await kid.close();
    assert.deepEqual(root.inspect().children, []);
    await root.close();
    assert.equal(finalized, 1);
  });

  test("a child whose owner closes it gracefully while the parent is destroyed is cut short too", async () => {
    const { rt, scope: root } = setup();
    const kid = root.child("kid");
    const task = track(kid.run("work", (signal) => untilAborted(signal)));
    const kidClosed = track(kid.close({ deadlineMs: 1000 }));
    await rt.advance(10);
    await root.destroy();
    assert.equal(kidClosed.state, "fulfilled");
    assert.equal(task.state, "rejected");
    assert.equal(rt.now(), 10);
    assert.equal(rt.pendingTimers(), 0);
  });
});

describe("teardown errors", () => {
  test("errors from finalizers, a spawned task and a child's teardown are collected into one ScopeTeardownError", async () => {
    const { scope: root, reported } = setup();
    const taskError = new Error("task failed");
    const lateTaskError = new Error("task failed while aborting");
    const childError = new Error("child finalizer failed");
    const finalizer1Error = new Error("finalizer 1 failed");
    const finalizer3Error = new Error("finalizer 3 failed");
    const ran: string[] = [];
    const kid = root.child("kid");
    kid.defer(() => {
      throw childError;
    });
    root.spawn("fails now", async () => {
      throw taskError;
    });
    root.spawn("fails on abort", async (signal) => {
      await untilAborted(signal).catch(() => {});
      throw lateTaskError;
    });
    root.defer(() => {
      ran.push("finalizer 1");
      throw finalizer1Error;
    });
    root.defer(() => void ran.push("finalizer 2"));
    root.defer(async () => {
      ran.push("finalizer 3");
      throw finalizer3Error;
    });
    await settle();
    let caught: unknown;
    await root.close().catch((error) => (caught = error));
    assert.ok(isTeardownError(caught, "root"), "isTeardownError(caught, \"root\")");
    assert.deepEqual(ran, ["finalizer 3", "finalizer 2", "finalizer 1"]);
    assert.equal(caught.errors.length, 5, caught.message);
    assert.equal(caught.errors[0], taskError);
    assert.ok(isTeardownError(caught.errors[1], "root/kid"), "isTeardownError(caught.errors[1], \"root/kid\")");
    assert.deepEqual((caught.errors[1] as ScopeTeardownError).errors, [childError]);
    assert.equal(caught.errors[2], lateTaskError);
    assert.equal(caught.errors[3], finalizer3Error);
    assert.equal(caught.errors[4], finalizer1Error);
    for (const error of [taskError, childError, lateTaskError, finalizer1Error, finalizer3Error]) {
      assert.ok(caught.message.includes(error.message), `message mentions '${error.message}'`);
    }
    assert.deepEqual(
      reported.map((r) => [r.error, r.path]),
      [
        [taskError, "root"],
        [lateTaskError, "root"],
      ],
    );
  });

  test("a child's teardown error is collected once even when the parent's deadline passes mid-teardown", async () => {
    const { rt, scope: root } = setup();
    const kid = root.child("kid");
    const gate = deferred();
    const kidError = new Error("kid cleanup failed");
    kid.spawn("work", (signal) => untilAborted(signal));
    kid.defer(async () => {
      await gate.promise;
      throw kidError;
    });
    const closed = track(root.close({ deadlineMs: 50 }));
    await rt.advance(50);
    assert.equal(closed.state, "pending");
    gate.resolve();
    await settle();
    assert.equal(closed.state, "rejected");
    assert.ok(isTeardownError(closed.error, "root"), "isTeardownError(closed.error, \"root\")");
    assert.equal(closed.error.errors.length, 1, closed.error.message);
    assert.ok(isTeardownError(closed.error.errors[0], "root/kid"), "isTeardownError(closed.error.errors[0], \"root/kid\")");
    assert.deepEqual((closed.error.errors[0] as ScopeTeardownError).errors, [kidError]);
  });

  test("a child that fails to close on its own during the drain has its error collected once", async () => {
    const { rt, scope: root } = setup();
    const kid = root.child("kid");
    const kidError = new Error("kid cleanup failed");
    kid.defer(() => {
      throw kidError;
    });
    const hold = deferred();
    root.spawn("hold", () => hold.promise);
    const kidClosed = track(kid.close());
    const closed = track(root.close({ deadlineMs: 100 }));
    await settle();
    assert.equal(kidClosed.state, "rejected");
    hold.resolve();
    await rt.advance(100);
    assert.equal(closed.state, "rejected");
    assert.ok(isTeardownError(closed.error, "root"), "isTeardownError(closed.error, \"root\")");
    assert.equal(closed.error.errors.length, 1, closed.error.message);
    assert.equal(closed.error.errors[0], kidClosed.error);
  });

  test("run() task errors go to the caller and are not collected", async () => {
    const { scope, reported } = setup();
    const failure = new Error("request failed");
    await assert.rejects(
      scope.run("request", async () => {
        throw failure;
      }),
      (error) => error === failure,
    );
    await scope.close();
    assert.deepEqual(reported, []);
  });

  test("a run() task that throws synchronously rejects its promise instead of throwing", async () => {
    const { scope } = setup();
    const failure = new Error("sync failure");
    const fn = ((): Promise<void> => {
      throw failure;
    }) as (signal: AbortSignal) => Promise<void>;
    const result = scope.run("sync", fn);
    await assert.rejects(result, (error) => error === failure);
    assert.deepEqual(scope.inspect().resources, []);
    await scope.close();
  });

  test("abort errors from tasks (ScopeClosedError, AbortError) are not collected", async () => {
    const { scope, reported } = setup();
    scope.spawn("rethrows the reason", (signal) => untilAborted(signal));
    scope.spawn("throws a DOMException AbortError", async (signal) => {
      await untilAborted(signal).catch(() => {});
      throw new DOMException("aborted", "AbortError");
    });
    scope.spawn("throws an Error named AbortError", async (signal) => {
      await untilAborted(signal).catch(() => {});
      const error = new Error("aborted");
      error.name = "AbortError";
      throw error;
    });
    scope.spawn("throws a foreign ScopeClosedError", async (signal) => {
      await untilAborted(signal).catch(() => {});
      throw new ScopeClosedError("elsewhere", "do it");
    });
    await scope.close();
    assert.deepEqual(reported, []);
  });

  test("a timeout from a task is not an abort: it is collected", async () => {
    const { rt, scope } = setup();
    scope.spawn("times out", () => withTimeout(scope, "reply", 10, (signal) => untilAborted(signal)));
    await rt.advance(10);
    await assert.rejects(scope.close(), (error) => {
      assert.ok(isTeardownError(error, "root"), "isTeardownError(error, \"root\")");
      assert.equal(error.errors.length, 1);
      assert.ok(error.errors[0] instanceof TimeoutError, "error.errors[0] instanceof TimeoutError");
      return true;
    });
  });

  test("onError hears a spawned task failure as it happens, with the scope path", async () => {
    const { scope, reported } = setup();
    const kid = scope.child("kid");
    const failure = new Error("background refresh failed");
    kid.spawn("refresh", async () => {
      throw failure;
    });
    await settle();
    assert.deepEqual(reported, [{ error: failure, path: "root/kid" }]);
    await assert.rejects(scope.close(), (error) => isTeardownError(error, "root"));
  });

  test("a disposer that throws or rejects is collected, and the others still run", async () => {
    const { scope } = setup();
    const thrown = new Error("dispose threw");
    const rejected = new Error("dispose rejected");
    const ran: string[] = [];
    scope.own("resource", "a", () => void ran.push("a"));
    scope.own("resource", "b", () => {
      ran.push("b");
      throw thrown;
    });
    scope.own("resource", "c", async () => {
      ran.push("c");
      throw rejected;
    });
    await assert.rejects(scope.close(), (error) => {
      assert.ok(isTeardownError(error, "root"), "isTeardownError(error, \"root\")");
      assert.deepEqual(new Set(error.errors), new Set([thrown, rejected]));
      assert.equal(error.errors.length, 2);
      return true;
    });
    assert.deepEqual(ran, ["c", "b", "a"]);
  });

  test("a drain that throws is collected", async () => {
    const { scope, reported } = setup();
    const failure = new Error("flush failed");
    scope.onDrain(() => {
      throw failure;
    });
    await assert.rejects(scope.close(), (error) => isTeardownError(error, "root") && error.errors[0] === failure);
    assert.deepEqual(reported, [{ error: failure, path: "root" }]);
  });
});

describe("inspect and liveCount", () => {
  test("inspect lists live resources by path: task, timer, lookup, pending connect, owned resource and child scopes", async () => {
    const { rt, scope: root } = setup();
    const baseline = root.liveCount();
    assert.equal(baseline, 0);
    const conns = root.child("conns");
    conns.spawn("reader", (signal) => untilAborted(signal));
    conns.timer("idle", 1000, () => {});
    const looked = track(lookup(conns, "redis.local"));
    const connected = track(connect(conns, { host: "10.0.0.2", port: 7000 }, connHandlers().handlers));
    conns.own("resource", "pool", () => {});
    const sub = conns.child("sub");
    sub.own("listener", "0.0.0.0:7001", () => {});
    await settle();
    assert.deepEqual(root.inspect(), {
      path: "root",
      state: "open",
      resources: [],
      children: [
        {
          path: "root/conns",
          state: "open",
          resources: [
            { kind: "task", name: "reader" },
            { kind: "timer", name: "idle" },
            { kind: "lookup", name: "redis.local" },
            { kind: "socket", name: "connecting 10.0.0.2:7000" },
            { kind: "resource", name: "pool" },
          ],
          children: [
            {
              path: "root/conns/sub",
              state: "open",
              resources: [{ kind: "listener", name: "0.0.0.0:7001" }],
              children: [],
            },
          ],
        },
      ],
    });
    assert.equal(root.liveCount(), 1 + 5 + 1 + 1);
    assert.equal(conns.liveCount(), 5 + 1 + 1);

    await conns.close();
    assert.deepEqual(root.inspect(), { path: "root", state: "open", resources: [], children: [] });
    assert.equal(root.liveCount(), baseline);
    assert.deepEqual(conns.inspect(), { path: "root/conns", state: "closed", resources: [], children: [] });
    assert.equal(looked.state, "rejected");
    assert.equal(connected.state, "rejected");
    assert.equal(rt.pendingTimers(), 0);
    assert.equal(rt.pendingLookups.length, 0);
    assert.equal(rt.pendingConnects.length, 0);
    await root.close();
  });

  test("a closing child is listed with its state until it is gone", async () => {
    const { rt, scope: root } = setup();
    const kid = root.child("kid");
    kid.spawn("work", (signal) => untilAborted(signal));
    const closed = track(kid.close({ deadlineMs: 10 }));
    assert.equal(root.inspect().children[0]?.state, "closing");
    await rt.advance(10);
    assert.equal(closed.state, "fulfilled");
    assert.deepEqual(root.inspect().children, []);
    await root.close();
  });

  test("finished work leaves inspect on its own: task done, timer fired, lookup answered", async () => {
    const { rt, scope } = setup();
    rt.dns.set("redis.local", ["10.0.0.9"]);
    const done = deferred();
    scope.spawn("task", () => done.promise);
    scope.timer("timer", 5, () => {});
    const looked = track(lookup(scope, "redis.local"));
    assert.equal(scope.liveCount(), 3);
    done.resolve();
    await rt.advance(5);
    assert.deepEqual(looked.value, ["10.0.0.9"]);
    assert.deepEqual(scope.inspect().resources, []);
    assert.equal(scope.liveCount(), 0);
    await scope.close();
  });

  test("a released owned resource leaves inspect and is not disposed on teardown", async () => {
    const { scope } = setup();
    let disposed = 0;
    const owned = scope.own("resource", "handed off", () => void disposed++);
    assert.equal(scope.liveCount(), 1);
    owned.release();
    owned.release();
    assert.equal(scope.liveCount(), 0);
    await scope.close();
    assert.equal(disposed, 0);
  });
});

describe("lookup", () => {
  test("a lookup resolves through the runtime and leaves the scope when done", async () => {
    const { rt, scope } = setup();
    const looked = track(lookup(scope, "node-1.redis"));
    await settle();
    assert.deepEqual(scope.inspect().resources, [{ kind: "lookup", name: "node-1.redis" }]);
    const pending = rt.pendingLookups[0]!;
    assert.equal(pending.hostname, "node-1.redis");
    pending.resolve(["10.0.0.1", "10.0.0.2"]);
    await settle();
    assert.deepEqual(looked.value, ["10.0.0.1", "10.0.0.2"]);
    assert.deepEqual(scope.inspect().resources, []);
    await scope.close();
  });

  test("a failed lookup rejects with the runtime's error and leaves the scope", async () => {
    const { rt, scope } = setup();
    const failure = new Error("ENOTFOUND nowhere.redis");
    rt.dns.set("nowhere.redis", failure);
    await assert.rejects(lookup(scope, "nowhere.redis"), (error) => error === failure);
    assert.deepEqual(scope.inspect().resources, []);
    await scope.close();
  });

  test("a pending lookup is aborted on teardown: it rejects with ScopeClosedError and its entry is gone", async () => {
    const { rt, scope } = setup();
    const looked = track(lookup(scope, "slow.redis"));
    await settle();
    const pending = rt.pendingLookups[0]!;
    await scope.close();
    assert.equal(pending.signal.aborted, true);
    assert.equal(looked.state, "rejected");
    isClosedError(looked.error, "root");
    assert.equal(rt.pendingLookups.length, 0);
    assert.equal(scope.liveCount(), 0);
    pending.resolve(["10.9.9.9"]); // a late answer goes nowhere
    await settle();
    assert.equal(looked.state, "rejected");
  });

  test("a pending lookup is not aborted by the drain phase and may finish before the deadline", async () => {
    const { rt, scope } = setup();
    let addresses: string[] = [];
    scope.spawn("resolve", async () => {
      addresses = await lookup(scope, "slow.redis");
    });
    await settle();
    const closed = track(scope.close({ deadlineMs: 100 }));
    await rt.advance(20);
    const pending = rt.pendingLookups[0]!;
    assert.equal(pending.signal.aborted, false);
    pending.resolve(["10.1.1.1"]);
    await settle();
    assert.deepEqual(addresses, ["10.1.1.1"]);
    assert.equal(closed.state, "fulfilled");
    assert.equal(rt.now(), 20);
  });
});

describe("connect", () => {
  test("a connect is listed as connecting, then by address, and teardown destroys the socket", async () => {
    const { rt, scope } = setup();
    const { log, handlers } = connHandlers();
    const late = lateCallbacks();
    const connected = track(connect(scope, { host: "10.0.0.3", port: 7001 }, handlers));
    await settle();
    assert.deepEqual(scope.inspect().resources, [{ kind: "socket", name: "connecting 10.0.0.3:7001" }]);
    const pending = rt.pendingConnects[0]!;
    assert.ok(pending.signal, "the runtime gets an abort signal");
    assert.equal(pending.signal.aborted, false);
    const conn = pending.resolve();
    await settle();
    assert.equal(connected.value, conn);
    assert.deepEqual(scope.inspect().resources, [{ kind: "socket", name: "10.0.0.3:7001" }]);
    await scope.close();
    await settle();
    assert.equal(conn.destroyed, true);
    isClosedError(conn.destroyError, "root");
    assert.deepEqual(log, [], "the close that follows our own destroy is not delivered");
    assert.equal(lateCallbacks() - late, 0, "and not counted as late");
  });

  test("a pending connect is aborted on teardown: it rejects and nothing stays registered", async () => {
    const { rt, scope } = setup();
    const connected = track(connect(scope, { host: "10.0.0.4", port: 7002 }, connHandlers().handlers));
    await settle();
    const pending = rt.pendingConnects[0]!;
    await scope.close();
    assert.equal(pending.signal?.aborted, true);
    assert.equal(connected.state, "rejected");
    isClosedError(connected.error, "root");
    assert.equal(rt.pendingConnects.length, 0);
    assert.equal(scope.liveCount(), 0);
  });

  test("a connect that resolves in the same turn destroy is called is handed out, then destroyed by teardown", async () => {
    const { rt, scope } = setup();
    const connected = track(connect(scope, { host: "10.0.0.5", port: 7003 }, connHandlers().handlers));
    await settle();
    const conn = rt.pendingConnects[0]!.resolve();
    const closed = track(scope.destroy());
    await settle();
    assert.equal(closed.state, "fulfilled");
    assert.equal(connected.value, conn);
    assert.equal(conn.destroyed, true);
    isClosedError(conn.destroyError, "root");
  });

  test("a connect that resolves during teardown just before its abort is destroyed, not leaked", async () => {
    const { rt, scope } = setup();
    const connected = track(connect(scope, { host: "10.0.0.5", port: 7003 }, connHandlers().handlers));
    await settle();
    const pending = rt.pendingConnects[0]!;
    let conn: FakeConn | undefined;
    // Disposed right before the connect entry (reverse order): the socket connects in the same
    // turn as its abort, so the runtime has resolved and the abort no longer rejects anything.
    scope.own("resource", "trigger", () => void (conn = pending.resolve()));
    const closed = track(scope.close());
    await settle();
    assert.equal(closed.state, "fulfilled");
    assert.equal(pending.signal?.aborted, true);
    assert.ok(conn, "conn");
    assert.equal(conn.destroyed, true, "the socket the scope never handed out is destroyed");
    assert.equal(connected.state, "rejected");
    isClosedError(connected.error, "root");
    assert.equal(scope.liveCount(), 0);
  });

  test("a connect that the runtime resolves after the abort is destroyed, not leaked", async () => {
    const { rt, scope } = setup();
    rt.connectHonoursAbort = false;
    const connected = track(connect(scope, { host: "10.0.0.6", port: 7004 }, connHandlers().handlers));
    await settle();
    const pending = rt.pendingConnects[0]!;
    await scope.close();
    assert.equal(pending.signal?.aborted, true);
    assert.equal(connected.state, "pending");
    const conn = pending.resolve();
    await settle();
    assert.equal(conn.destroyed, true);
    assert.equal(connected.state, "rejected");
    isClosedError(connected.error, "root");
    assert.equal(scope.liveCount(), 0);
  });

  test("a connect that completes while the scope drains stays open until teardown", async () => {
    const { rt, scope } = setup();
    const hold = deferred();
    scope.spawn("hold", () => hold.promise);
    const connected = track(connect(scope, { host: "10.0.0.7", port: 7005 }, connHandlers().handlers));
    await settle();
    const closed = track(scope.close({ deadlineMs: 100 }));
    const conn = rt.pendingConnects[0]!.resolve();
    await settle();
    assert.equal(connected.value, conn);
    assert.equal(conn.destroyed, false);
    assert.deepEqual(scope.inspect().resources, [
      { kind: "task", name: "hold" },
      { kind: "socket", name: "10.0.0.7:7005" },
    ]);
    hold.resolve();
    await settle();
    assert.equal(closed.state, "fulfilled");
    assert.equal(conn.destroyed, true);
  });

  test("aborting the caller's signal cancels a pending connect", async () => {
    const { rt, scope } = setup();
    const controller = new AbortController();
    const connected = track(
      connect(scope, { host: "10.0.0.8", port: 7006, signal: controller.signal }, connHandlers().handlers),
    );
    await settle();
    const reason = new Error("caller gave up");
    controller.abort(reason);
    await settle();
    assert.equal(connected.state, "rejected");
    assert.equal(connected.error, reason);
    assert.equal(rt.pendingConnects.length, 0);
    assert.deepEqual(scope.inspect().resources, []);
    await scope.close();
  });

  test("an already aborted caller signal cancels the connect", async () => {
    const { rt, scope } = setup();
    const controller = new AbortController();
    const reason = new Error("caller gave up early");
    controller.abort(reason);
    const connected = track(
      connect(scope, { host: "10.0.0.9", port: 7007, signal: controller.signal }, connHandlers().handlers),
    );
    await settle();
    assert.equal(connected.state, "rejected");
    assert.equal(connected.error, reason);
    assert.equal(rt.pendingConnects.length, 0);
    assert.deepEqual(scope.inspect().resources, []);
    await scope.close();
  });

  test("aborting the caller's signal after the connect completed leaves the socket alone", async () => {
    const { rt, scope } = setup();
    const controller = new AbortController();
    const connected = track(
      connect(scope, { host: "10.0.0.10", port: 7008, signal: controller.signal }, connHandlers().handlers),
    );
    await settle();
    const conn = rt.pendingConnects[0]!.resolve();
    await settle();
    controller.abort(new Error("later"));
    await settle();
    assert.equal(connected.value, conn);
    assert.equal(conn.destroyed, false);
    await scope.close();
    assert.equal(conn.destroyed, true);
  });

  test("a refused connect rejects with the runtime's error and leaves the scope", async () => {
    const { rt, scope } = setup();
    const connected = track(connect(scope, { host: "10.0.0.11", port: 7009 }, connHandlers().handlers));
    await settle();
    const refused = new Error("ECONNREFUSED");
    rt.pendingConnects[0]!.reject(refused);
    await settle();
    assert.equal(connected.error, refused);
    assert.deepEqual(scope.inspect().resources, []);
    await scope.close();
  });

  test("socket callbacks run while open and draining; data after teardown is dropped and counted", async () => {
    const { rt, scope } = setup();
    const { log, handlers } = connHandlers();
    const connected = track(connect(scope, { host: "10.0.0.12", port: 7010 }, handlers));
    await settle();
    rt.pendingConnects[0]!.resolve();
    await settle();
    const conn = connected.value as FakeConn;
    conn.receive("+PONG");
    conn.emitDrain();
    scope.spawn("reader", (signal) => untilAborted(signal));
    const closed = track(scope.close({ deadlineMs: 100 }));
    conn.receive("+OK");
    assert.deepEqual(log, ["data +PONG", "drain", "data +OK"]);
    await rt.advance(100);
    assert.equal(closed.state, "fulfilled");
    const late = lateCallbacks();
    conn.receive("+LATE");
    conn.emitDrain();
    assert.equal(lateCallbacks() - late, 2);
    assert.deepEqual(log, ["data +PONG", "drain", "data +OK"]);
  });

  test("a peer close removes the socket from the scope and reaches the handler", async () => {
    const { rt, scope } = setup();
    const { log, handlers } = connHandlers();
    const connected = track(connect(scope, { host: "10.0.0.13", port: 7011 }, handlers));
    await settle();
    rt.pendingConnects[0]!.resolve();
    await settle();
    (connected.value as FakeConn).peerClose(new Error("ECONNRESET"));
    assert.deepEqual(log, ["close ECONNRESET"]);
    assert.deepEqual(scope.inspect().resources, []);
    await scope.close();
    assert.equal((connected.value as FakeConn).destroyed, false, "a closed socket is not destroyed again");
  });

  test("a socket data handler that throws has its error collected, not thrown into the runtime", async () => {
    const { rt, scope, reported } = setup();
    const failure = new Error("parse error");
    const connected = track(
      connect(
        scope,
        { host: "10.0.0.14", port: 7012 },
        {
          data: () => {
            throw failure;
          },
          drain: () => {},
          close: () => {},
        },
      ),
    );
    await settle();
    rt.pendingConnects[0]!.resolve();
    await settle();
    (connected.value as FakeConn).receive("garbage");
    assert.deepEqual(reported, [{ error: failure, path: "root" }]);
    await assert.rejects(scope.close(), (error) => isTeardownError(error, "root") && error.errors[0] === failure);
  });
});

describe("listen", () => {
  test("a listener is owned by the scope and closed on teardown", async () => {
    const { rt, scope } = setup();
    const listening = track(listen(scope, { host: "127.0.0.1", port: 0 }, () => connHandlers().handlers));
    await settle();
    const listener = rt.pendingListens[0]!.resolve();
    await settle();
    assert.equal(listening.value, listener);
    assert.deepEqual(scope.inspect().resources, [{ kind: "listener", name: `127.0.0.1:${listener.port}` }]);
    await scope.close();
    assert.equal(listener.closeCalls, 1);
  });

  test("a listen that completes after close began is closed, not leaked", async () => {
    const { rt, scope } = setup();
    const listening = track(listen(scope, { host: "127.0.0.1", port: 6380 }, () => connHandlers().handlers));
    await settle();
    await scope.close();
    const listener = rt.pendingListens[0]!.resolve();
    await settle();
    assert.equal(listening.state, "rejected");
    isClosedError(listening.error, "root");
    assert.equal(listener.closed, true, "the listener the scope never handed out is closed");
  });

  test("a failed listen rejects with the runtime's error", async () => {
    const { rt, scope } = setup();
    const listening = track(listen(scope, { host: "127.0.0.1", port: 6380 }, () => connHandlers().handlers));
    await settle();
    const failure = new Error("EADDRINUSE");
    rt.pendingListens[0]!.reject(failure);
    await settle();
    assert.equal(listening.error, failure);
    assert.equal(scope.liveCount(), 0);
    await scope.close();
  });
});

describe("guard", () => {
  test("guarded callbacks run while open and while draining", async () => {
    const { rt, scope } = setup();
    const calls: string[] = [];
    const onEvent = scope.guard((what: string) => void calls.push(`${what}:${scope.state}`));
    onEvent("a");
    scope.spawn("hold", (signal) => untilAborted(signal));
    const closed = track(scope.close({ deadlineMs: 10 }));
    onEvent("b");
    await rt.advance(10);
    assert.equal(closed.state, "fulfilled");
    assert.deepEqual(calls, ["a:open", "b:closing"]);
  });

  test("guarded callbacks are dropped after teardown and counted by lateCallbacks", async () => {
    const { scope } = setup();
    const calls: number[] = [];
    const onEvent = scope.guard((n: number) => void calls.push(n));
    let duringTeardown = -1;
    scope.defer(() => {
      const before = lateCallbacks();
      onEvent(1); // state is "destroying": already dropped
      duringTeardown = lateCallbacks() - before;
    });
    await scope.close();
    const before = lateCallbacks();
    onEvent(2);
    onEvent(3);
    assert.deepEqual(calls, []);
    assert.equal(duringTeardown, 1);
    assert.equal(lateCallbacks() - before, 2);
  });

  test("a guard made with countLate=false drops late callbacks without counting them", async () => {
    const { scope } = setup();
    let calls = 0;
    const onClose = scope.guard(() => void calls++, false);
    await scope.close();
    const before = lateCallbacks();
    onClose();
    assert.equal(calls, 0);
    assert.equal(lateCallbacks(), before);
  });

  test("a guarded callback that throws has its error collected rather than thrown", async () => {
    const { scope, reported } = setup();
    const failure = new Error("handler failed");
    const onEvent = scope.guard(() => {
      throw failure;
    });
    assert.doesNotThrow(() => onEvent());
    assert.deepEqual(reported, [{ error: failure, path: "root" }]);
    await assert.rejects(scope.close(), (error) => {
      assert.ok(isTeardownError(error, "root"), "isTeardownError(error, \"root\")");
      assert.deepEqual(error.errors, [failure]);
      return true;
    });
  });
});

describe("signal", () => {
  test("a signal first asked for after teardown is already aborted, with a ScopeClosedError", async () => {
    const { scope } = setup();
    const child = scope.child("never waited");
    await scope.close();
    assert.equal(child.signal.aborted, true);
    assert.ok(child.signal.reason instanceof ScopeClosedError);
    assert.equal(scope.signal.aborted, true);
  });

  test("a signal asked for while open is aborted when teardown begins, not before", async () => {
    const { rt, scope } = setup();
    const signal = scope.signal;
    scope.spawn("hold", (s) => untilAborted(s));
    const closed = track(scope.close({ deadlineMs: 10 }));
    await settle();
    assert.equal(signal.aborted, false);
    await rt.advance(10);
    assert.equal(closed.state, "fulfilled");
    assert.equal(signal.aborted, true);
  });
});

describe("call (guard without a wrapper)", () => {
  const record = (calls: string[], what: string) => void calls.push(what);

  test("call runs the function on its target at once while open and draining, drops and counts it after teardown", async () => {
    const { rt, scope } = setup();
    const calls: string[] = [];
    scope.call(record, calls, "open");
    scope.spawn("hold", (signal) => untilAborted(signal));
    const closed = track(scope.close({ deadlineMs: 10 }));
    scope.call(record, calls, "closing");
    await rt.advance(10);
    assert.equal(closed.state, "fulfilled");
    const before = lateCallbacks();
    scope.call(record, calls, "late");
    scope.call(record, calls, "late, not counted", false);
    assert.deepEqual(calls, ["open", "closing"]);
    assert.equal(lateCallbacks() - before, 1);
  });

  test("a called function that throws has its error collected rather than thrown", async () => {
    const { scope, reported } = setup();
    const failure = new Error("handler failed");
    const fail = () => {
      throw failure;
    };
    assert.doesNotThrow(() => scope.call(fail, null, null));
    assert.deepEqual(reported, [{ error: failure, path: "root" }]);
    await assert.rejects(scope.close(), (error) => isTeardownError(error, "root") && error.errors[0] === failure);
  });
});

describe("withTimeout", () => {
  test("withTimeout returns the value when fn is fast, and its timer is gone afterwards", async () => {
    const { rt, scope } = setup();
    const result = track(withTimeout(scope, "ping", 100, async (signal) => (signal.aborted ? "aborted" : "PONG")));
    assert.deepEqual(scope.inspect().resources, [{ kind: "timer", name: "deadline ping" }]);
    await settle();
    assert.equal(result.value, "PONG");
    assert.equal(rt.pendingTimers(), 0);
    assert.deepEqual(scope.inspect().resources, []);
    await scope.close();
  });

  test("withTimeout rejects with TimeoutError after the timeout and aborts the inner signal", async () => {
    const { rt, scope } = setup();
    let inner: AbortSignal | undefined;
    const result = track(
      withTimeout(scope, "MOVED refresh", 100, (signal) => {
        inner = signal;
        return untilAborted(signal);
      }),
    );
    await rt.advance(99);
    assert.equal(result.state, "pending");
    assert.equal(inner?.aborted, false);
    await rt.advance(1);
    assert.equal(result.state, "rejected");
    const error = result.error as TimeoutError;
    assert.ok(error instanceof TimeoutError, "error instanceof TimeoutError");
    assert.equal(error.name, "TimeoutError");
    assert.equal(error.code, "ETIMEDOUT");
    assert.equal(error.timeoutMs, 100);
    assert.equal(error.message, "MOVED refresh timed out after 100 ms");
    assert.equal(inner?.aborted, true);
    assert.equal(inner?.reason, error);
    assert.equal(rt.pendingTimers(), 0);
    assert.deepEqual(scope.inspect().resources, []);
    await scope.close();
  });

  test("withTimeout rejects at the timeout even when fn ignores its signal", async () => {
    const { rt, scope } = setup();
    const result = track(withTimeout(scope, "stuck", 10, () => new Promise<never>(() => {})));
    await rt.advance(10);
    assert.ok(result.error instanceof TimeoutError, "result.error instanceof TimeoutError");
    await scope.close();
  });

  test("withTimeout passes fn's own error through and clears its timer", async () => {
    const { rt, scope } = setup();
    const failure = new Error("MOVED 3999 10.0.0.1:7000");
    await assert.rejects(
      withTimeout(scope, "get", 100, async () => {
        throw failure;
      }),
      (error) => error === failure,
    );
    assert.equal(rt.pendingTimers(), 0);
    assert.deepEqual(scope.inspect().resources, []);
    await scope.close();
  });

  test("withTimeout aborts the inner signal with ScopeClosedError on teardown", async () => {
    const { rt, scope } = setup();
    let inner: AbortSignal | undefined;
    const result = track(
      withTimeout(scope, "slow", 1000, (signal) => {
        inner = signal;
        return untilAborted(signal);
      }),
    );
    await scope.close();
    await settle();
    assert.equal(result.state, "rejected");
    isClosedError(result.error, "root");
    assert.equal(inner?.aborted, true);
    isClosedError(inner?.reason, "root");
    assert.equal(rt.pendingTimers(), 0);
  });

  test("a withTimeout deadline still fires while the scope drains", async () => {
    const { rt, scope } = setup();
    const request = track(scope.run("request", () => withTimeout(scope, "reply", 50, (signal) => untilAborted(signal))));
    const closed = track(scope.close({ deadlineMs: 1000 }));
    await rt.advance(50);
    assert.ok(request.error instanceof TimeoutError, "request.error instanceof TimeoutError");
    assert.equal(closed.state, "fulfilled", "the task ended by its own deadline, well before the drain's");
    assert.equal(rt.now(), 50);
  });
});

describe("async disposal", () => {
  test("await using closes the scope at block end", async () => {
    const rt = new ManualRuntime();
    const events: string[] = [];
    let seen: Scope | undefined;
    let task: Tracked<never> | undefined;
    {
      await using scope = Scope.root(rt, "block");
      seen = scope;
      task = track(scope.run("work", (signal) => untilAborted(signal)));
      scope.defer(() => void events.push("finalizer"));
      assert.equal(scope.state, "open");
    }
    assert.equal(seen.state, "closed");
    assert.deepEqual(events, ["finalizer"]);
    await settle();
    assert.equal(task.state, "rejected");
    isClosedError(task.error, "block");
  });

  test("await using surfaces a teardown failure at block end", async () => {
    const rt = new ManualRuntime();
    const failure = new Error("finalizer failed");
    await assert.rejects(
      (async () => {
        await using scope = Scope.root(rt, "block");
        scope.defer(() => {
          throw failure;
        });
      })(),
      (error) => isTeardownError(error, "block") && error.errors[0] === failure,
    );
  });
});

describe("raceAbort", () => {
  test("raceAbort settles with the promise, or rejects with the reason as soon as the signal aborts", async () => {
    const controller = new AbortController();
    const slow = deferred<string>();
    const raced = track(raceAbort(slow.promise, controller.signal));
    const reason = new Error("stop");
    controller.abort(reason);
    await settle();
    assert.equal(raced.error, reason);
    slow.reject(new Error("ignored afterwards")); // must not surface as an unhandled rejection
    await settle();
    assert.equal(await raceAbort(Promise.resolve(7), new AbortController().signal), 7);
    await assert.rejects(raceAbort(Promise.reject(new Error("late")), controller.signal), (error) => error === reason);
  });
});

describe("manual runtime", () => {
  test("the manual clock fires timers by due time then arming order, only when advanced", async () => {
    const rt = new ManualRuntime({ start: 1000 });
    const fired: string[] = [];
    rt.setTimer(20, () => void fired.push(`b@${rt.now()}`));
    rt.setTimer(10, () => {
      fired.push(`a@${rt.now()}`);
      rt.setTimer(0, () => void fired.push(`a2@${rt.now()}`)); // armed while firing, due now
    });
    rt.setTimer(20, () => void fired.push(`c@${rt.now()}`));
    const cancelled = rt.setTimer(15, () => void fired.push("cancelled"));
    cancelled.cancel();
    cancelled.cancel();
    assert.equal(rt.pendingTimers(), 3);
    await settle();
    assert.deepEqual(fired, []);
    await rt.advance(25);
    assert.deepEqual(fired, ["a@1010", "a2@1010", "b@1020", "c@1020"]);
    assert.equal(rt.now(), 1025);
    assert.equal(rt.pendingTimers(), 0);
    assert.equal(rt.wallClock() - 1_700_000_000_000, 25);
    await assert.rejects(rt.advance(-1), RangeError);
  });

  test("the manual clock settles promise chains between firings", async () => {
    const rt = new ManualRuntime();
    const events: string[] = [];
    const gate = deferred();
    rt.setTimer(10, () => gate.resolve());
    rt.setTimer(10, () => void events.push("second timer"));
    void (async () => {
      await gate.promise;
      await Promise.resolve();
      await Promise.resolve();
      events.push("chain after first timer");
    })();
    await rt.advance(10);
    assert.deepEqual(events, ["chain after first timer", "second timer"]);
  });

  test("manual random is reproducible per seed and within [0, 1)", () => {
    const a = new ManualRuntime({ seed: 42 });
    const b = new ManualRuntime({ seed: 42 });
    const c = new ManualRuntime({ seed: 43 });
    const xs = Array.from({ length: 1000 }, () => a.random());
    assert.deepEqual(xs, Array.from({ length: 1000 }, () => b.random()));
    assert.notDeepEqual(xs.slice(0, 10), Array.from({ length: 10 }, () => c.random()));
    assert.ok(xs.every((x) => x >= 0 && x < 1), "xs.every((x) => x >= 0 && x < 1)");
    assert.equal(mulberry32(7)(), mulberry32(7)());
  });

  test("manual defer runs callbacks in order only on flush", async () => {
    const rt = new ManualRuntime();
    const ran: number[] = [];
    rt.defer(() => {
      ran.push(1);
      rt.defer(() => void ran.push(3));
    });
    rt.defer(() => void ran.push(2));
    await settle();
    assert.deepEqual(ran, []);
    assert.equal(rt.pendingDeferred(), 2);
    await rt.flush();
    assert.deepEqual(ran, [1, 2, 3]);
    assert.equal(rt.pendingDeferred(), 0);
  });

  test("manual lookup answers from the dns map and rejects promptly on abort", async () => {
    const rt = new ManualRuntime();
    rt.dns.set("a.redis", ["10.0.0.1"]);
    assert.deepEqual(await rt.lookup("a.redis", new AbortController().signal), ["10.0.0.1"]);
    const controller = new AbortController();
    const looked = track(rt.lookup("b.redis", controller.signal));
    assert.equal(rt.pendingLookups.length, 1);
    controller.abort();
    await settle();
    assert.equal(looked.state, "rejected");
    assert.equal((looked.error as Error).name, "AbortError");
    assert.equal(rt.pendingLookups.length, 0);
  });

  test("manual serveHttp is not supported", async () => {
    const rt = new ManualRuntime();
    await assert.rejects(rt.serveHttp({ host: "127.0.0.1", port: 0 }, () => new Response("x")), /not supported/);
  });
});
