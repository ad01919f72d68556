/**
 * Workers as threads (adapters/shared/thread-workers.ts, Bun and Deno): a thread gets its
 * environment, talks to the supervisor both ways, leaves with the code it says, and a thread that
 * throws is reported as exit 1 without taking the test process down. Node has no Web Workers
 * (its workers are node:cluster processes, test/integration/workers.test.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { detectRuntime } from "../../adapters/current.ts";
import { threadWorkers } from "../../adapters/shared/thread-workers.ts";
import type { FromWorker, WorkerEvents } from "../../src/workers/protocol.ts";

const FIXTURE = new URL("../support/thread-worker-fixture.ts", import.meta.url);
const skip = detectRuntime() === "node" && "Node's workers are processes (node:cluster), not threads";

function events() {
  const messages: FromWorker[] = [];
  let exited!: (code: number | null) => void;
  const exit = new Promise<number | null>((resolve) => (exited = resolve));
  const waiters: (() => void)[] = [];
  const handlers: WorkerEvents = {
    message: (m) => {
      messages.push(m);
      waiters.splice(0).forEach((w) => w());
    },
    exit: (code) => exited(code),
  };
  const next = () => new Promise<void>((resolve) => waiters.push(resolve));
  return { messages, exit, handlers, next };
}

describe("worker threads", { skip }, () => {
  it("start with their environment, talk both ways, and exit with the code they say", async () => {
    const reports: string[] = [];
    const spawner = threadWorkers(FIXTURE, 2, (line) => reports.push(line));
    assert.equal(spawner.kind, "threads");
    const e = events();
    const worker = spawner.spawn(1, { PORT: "4242" }, e.handlers);
    await e.next();
    assert.deepEqual(e.messages[0], { t: "listening", port: 4242, tlsPort: null });
    const body = { t: "topology" as const, key: "k", topology: { from: "x" } };
    worker.post({ t: "peer", from: 0, body });
    await e.next();
    assert.deepEqual(e.messages[1], { t: "send", to: 0, body });
    worker.post({ t: "shutdown", why: "test" });
    assert.equal(await e.exit, 0);
    assert.deepEqual(reports, []);
  });

  it("a thread that throws is reported and counted as exit 1; the process goes on", async () => {
    const reports: string[] = [];
    const e = events();
    threadWorkers(FIXTURE, 2, (line) => reports.push(line)).spawn(3, { FIXTURE: "crash" }, e.handlers);
    assert.equal(await e.exit, 1);
    assert.match(reports.join("\n"), /worker 3 failed:[\s\S]*fixture crash/);
  });

  it("kill ends a thread at once, reported as no exit code", async () => {
    const e = events();
    const worker = threadWorkers(FIXTURE, 2, () => {}).spawn(2, { PORT: "1" }, e.handlers);
    await e.next();
    worker.kill();
    assert.equal(await e.exit, null);
  });
});
