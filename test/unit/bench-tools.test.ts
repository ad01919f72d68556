/**
 * The benchmark's measuring tools, checked for what they count, never for how fast anything is:
 * the open-loop generator sends exactly rate × duration GETs and counts each answered one once;
 * the idle-client probe opens and PINGs every connection; the report's figures are medians over
 * rounds and `--compare` finds them by name.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import process from "node:process";
import { figures, median, medianRow, type BenchReport, type BenchRow } from "../../scripts/bench-figures.ts";
import { idleClientLimit, measureIdleClients, openFileLimit } from "../../scripts/idle-clients.ts";
import { openLoop } from "../../scripts/open-loop.ts";

/** A loopback server answering every complete RESP command with `answer`; counts the commands. */
async function fakeServer(answer: string): Promise<{ port: number; commands: () => number; sockets: () => number; close: () => Promise<void> }> {
  let commands = 0;
  const open = new Set<net.Socket>();
  let peak = 0;
  const server = net.createServer((socket) => {
    open.add(socket);
    peak = Math.max(peak, open.size);
    socket.on("close", () => open.delete(socket));
    socket.on("error", () => {});
    let pending = "";
    socket.on("data", (chunk: Buffer) => {
      pending += chunk.toString("latin1");
      // Every command here is an array of bulk strings: `*N` then N `$len` lines and N values.
      for (;;) {
        const lines = pending.split("\r\n");
        if (lines.length < 2 || !lines[0]!.startsWith("*")) return;
        const need = 1 + 2 * Number(lines[0]!.slice(1));
        if (lines.length <= need) return;
        pending = lines.slice(need).join("\r\n");
        commands++;
        socket.write(answer);
      }
    });
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    commands: () => commands,
    sockets: () => peak,
    close: () => {
      for (const socket of open) socket.destroy();
      return new Promise((done) => server.close(() => done()));
    },
  };
}

describe("open-loop load generator", () => {
  it("sends rate × duration GETs over every connection and counts each answer after the warm-up once", async () => {
    const server = await fakeServer("$1\r\nx\r\n");
    try {
      const result = await openLoop({ port: server.port, rate: 2000, connections: 4, durationMs: 500, warmupMs: 100, key: "k" });
      assert.equal(result.sent, 1000);
      assert.equal(server.commands(), 1000);
      assert.equal(server.sockets(), 4);
      assert.equal(result.lost, 0);
      assert.equal(result.errors, 0);
      assert.equal(result.count, 800);
      assert.ok(result.p50 >= 0 && result.p50 <= result.p99 && result.p99 <= result.p999 && result.p999 <= result.max);
    } finally {
      await server.close();
    }
  });

  it("counts error replies", async () => {
    const server = await fakeServer("-ERR no\r\n");
    try {
      const result = await openLoop({ port: server.port, rate: 1000, connections: 2, durationMs: 200, warmupMs: 0, key: "k" });
      assert.equal(result.errors, 200);
      assert.equal(result.count, 200);
    } finally {
      await server.close();
    }
  });
});

describe("idle clients", () => {
  it("opens, PINGs and holds every connection, then closes them", async () => {
    const server = await fakeServer("+PONG\r\n");
    try {
      const result = await measureIdleClients(server.port, process.pid, 300, 10, 64);
      assert.equal(result.clients, 300);
      assert.equal(server.commands(), 300);
      assert.equal(server.sockets(), 300);
      assert.ok(result.rssBefore > 0 && result.rssAfter > 0);
    } finally {
      await server.close();
    }
  });

  it("fails when a connection is not answered PONG", async () => {
    const server = await fakeServer("-NOAUTH Authentication required.\r\n");
    try {
      await assert.rejects(measureIdleClients(server.port, process.pid, 5, 10), /NOAUTH/);
    } finally {
      await server.close();
    }
  });

  it("lowers the count under ulimit -n, with a note", () => {
    const limit = openFileLimit();
    assert.ok(limit !== null && limit > 0);
    assert.deepEqual(idleClientLimit(1), { count: 1, note: null });
    if (limit < Number.MAX_SAFE_INTEGER) {
      const lowered = idleClientLimit(limit * 2);
      assert.ok(lowered.count < limit);
      assert.match(lowered.note ?? "", /ulimit -n/);
    }
  });
});

describe("benchmark report", () => {
  const row = (round: number, target: string, rps: number, cpuAll: number, cpuProxy: number | null): BenchRow => ({ round, target, test: "GET", pipeline: 1, rps, cpuAll, cpuProxy });
  const report: BenchReport = {
    commit: "c",
    date: "d",
    cores: 2,
    cpuModel: "m",
    options: {},
    notes: [],
    rows: [row(0, "direct", 100, 10, null), row(1, "direct", 300, 30, null), row(2, "direct", 200, 20, null), row(0, "slotgate/node", 50, 40, 25), row(1, "slotgate/node", 70, 60, 35)],
    idle: [{ target: "slotgate/node", clients: 10, rssBefore: 0, rssAfter: 10240, kibPerClient: 1 }],
    latency: [],
    workers: "not available yet",
  };

  it("takes medians over rounds", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 2, 3]), 2.5);
    assert.deepEqual(medianRow(report.rows, "direct", "GET", 1), { rps: 200, cpuAll: 20, cpuProxy: null });
    assert.deepEqual(medianRow(report.rows, "slotgate/node", "GET", 1), { rps: 60, cpuAll: 50, cpuProxy: 30 });
    assert.equal(medianRow(report.rows, "twemproxy", "GET", 1), undefined);
  });

  it("names each figure once, the proxy's CPU only where there is a proxy", () => {
    const all = figures(report);
    assert.equal(all.get("rps direct GET P1")?.value, 200);
    assert.equal(all.get("CPU µs/req proxy direct GET P1"), undefined);
    assert.deepEqual(all.get("CPU µs/req proxy slotgate/node GET P1"), { value: 30, higherIsBetter: false });
    assert.deepEqual(all.get("idle KiB/client slotgate/node"), { value: 1, higherIsBetter: false });
  });
});
