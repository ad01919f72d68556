/**
 * The supervisor of `SLOTGATE_WORKERS` (src/workers/supervisor.ts) with a fake spawner: the leader
 * starts first and the others on its ports; messages are relayed; signals become orders; a worker
 * that exits on its own takes the group down with a non-zero code; a second signal kills.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { supervise } from "../../src/workers/supervisor.ts";
import type { FromWorker, ToWorker, WorkerEvents } from "../../src/workers/protocol.ts";
import { SILENT_LOGGER } from "../../src/log.ts";

interface Fake {
  index: number;
  env: Record<string, string>;
  events: WorkerEvents;
  received: ToWorker[];
  killed: boolean;
}

function group(count: number) {
  const workers: Fake[] = [];
  const signals: { shutdown?: (signal: string) => void; reload?: () => void } = {};
  const exits: number[] = [];
  supervise(
    {
      env: { SLOTGATE_SEEDS: "127.0.0.1:7000", UNSET: undefined },
      workers: {
        cores: 4,
        kind: "processes",
        spawn(index, env, events) {
          const fake: Fake = { index, env, events, received: [], killed: false };
          workers.push(fake);
          return { post: (m) => void fake.received.push(m), kill: () => void (fake.killed = true) };
        },
      },
      onShutdownSignal: (h) => void (signals.shutdown = h),
      onReloadSignal: (h) => void (signals.reload = h),
      exit: (code) => void exits.push(code),
    },
    count,
    SILENT_LOGGER,
  );
  const say = (index: number, message: FromWorker) => workers.find((w) => w.index === index)!.events.message(message);
  const listenAll = () => {
    say(0, { t: "listening", port: 6380, tlsPort: null });
    for (let i = 1; i < count; i++) say(i, { t: "listening", port: 6380, tlsPort: null });
  };
  return { workers, signals, exits, say, listenAll };
}

describe("the workers' supervisor", () => {
  it("starts the leader alone, then the others on the leader's ports", () => {
    const g = group(3);
    assert.equal(g.workers.length, 1);
    assert.equal(g.workers[0]!.env.SLOTGATE_WORKER, "0/3");
    assert.equal(g.workers[0]!.env.SLOTGATE_WORKER_PORTS, undefined);
    assert.equal(g.workers[0]!.env.SLOTGATE_SEEDS, "127.0.0.1:7000");
    assert.equal("UNSET" in g.workers[0]!.env, false);
    g.say(0, { t: "listening", port: 41000, tlsPort: 41001 });
    assert.deepEqual(g.workers.map((w) => w.env.SLOTGATE_WORKER), ["0/3", "1/3", "2/3"]);
    assert.equal(g.workers[1]!.env.SLOTGATE_WORKER_PORTS, "41000,41001");
    g.say(2, { t: "listening", port: 41000, tlsPort: 41001 });
    assert.deepEqual(g.workers[0]!.received, [{ t: "joined", index: 2 }]);
  });

  it("relays a message to one worker, or to every other", () => {
    const g = group(3);
    g.listenAll();
    g.workers.forEach((w) => (w.received.length = 0));
    const body = { t: "topology" as const, key: "k", topology: {} };
    g.say(1, { t: "send", to: "others", body });
    assert.deepEqual(g.workers.map((w) => w.received), [[{ t: "peer", from: 1, body }], [], [{ t: "peer", from: 1, body }]]);
    g.say(0, { t: "send", to: 2, body });
    assert.deepEqual(g.workers[2]!.received.at(-1), { t: "peer", from: 0, body });
    assert.equal(g.workers[1]!.received.length, 0);
  });

  it("SIGTERM shuts every worker down and exits 0 once all have exited; SIGHUP goes to the leader", () => {
    const g = group(2);
    g.listenAll();
    g.signals.reload!();
    assert.deepEqual(g.workers[0]!.received.at(-1), { t: "reload", why: "SIGHUP" });
    g.signals.shutdown!("SIGTERM");
    for (const w of g.workers) assert.deepEqual(w.received.at(-1), { t: "shutdown", why: "SIGTERM" });
    g.workers[0]!.events.exit(0);
    assert.deepEqual(g.exits, []);
    g.workers[1]!.events.exit(0);
    assert.deepEqual(g.exits, [0]);
  });

  it("a worker that exits on its own stops the others; the group exits with its code (1 when it was 0 or killed)", () => {
    const g = group(2);
    g.listenAll();
    g.workers[1]!.events.exit(null);
    assert.deepEqual(g.workers[0]!.received.at(-1), { t: "shutdown", why: "worker 1 exited" });
    g.workers[0]!.events.exit(0);
    assert.deepEqual(g.exits, [1]);
    const h = group(2);
    h.workers[0]!.events.exit(2); // the leader could not start: its code is the group's
    assert.deepEqual(h.exits, [2]);
    assert.equal(h.workers.length, 1, "no follower is started once the leader is gone");
  });

  it("a worker started while stopping is told to stop once it listens; a second signal kills them all", () => {
    const g = group(2);
    g.say(0, { t: "listening", port: 6380, tlsPort: null });
    g.signals.shutdown!("SIGINT");
    g.say(1, { t: "listening", port: 6380, tlsPort: null });
    assert.equal(g.workers[1]!.received.filter((m) => m.t === "shutdown").length, 2);
    g.signals.shutdown!("SIGINT");
    assert.deepEqual(g.workers.map((w) => w.killed), [true, true]);
    assert.deepEqual(g.exits, [130]);
  });
});

describe("a worker's channel", () => {
  it("acts on the first shutdown order only, even one that came before the program listened for it", async () => {
    const { WorkerChannel } = await import("../../src/workers/channel.ts");
    let deliver!: (message: import("../../src/workers/protocol.ts").ToWorker) => void;
    const channel = new WorkerChannel({ post() {}, onMessage: (h) => void (deliver = h) }, { index: 1, count: 2 });
    deliver({ t: "shutdown", why: "SIGTERM" });
    const seen: string[] = [];
    channel.onShutdown((why) => seen.push(why));
    deliver({ t: "shutdown", why: "the group is shutting down" });
    assert.deepEqual(seen, ["SIGTERM"]);
  });
});
