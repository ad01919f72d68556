/**
 * Discovery against a real cluster when some seeds are bad: a hostname that does not resolve, a
 * port that refuses, and a server that accepts and never answers must not keep slotgate from
 * learning the slot map from the one good seed.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { after, describe, it } from "node:test";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { freePort } from "../../scripts/free-port.ts";
import { lazy } from "../support/lazy.ts";
import { startProxy, type RunningProxy } from "../support/proxy.ts";
import { Redis } from "ioredis";

const SLOW = { timeout: 120_000 };

describe("discovery with bad seeds", () => {
  const cluster = lazy(() => startLocalCluster({ replicasPerPrimary: 0 }));
  const silent = net.createServer(() => {});
  const accepted = new Set<net.Socket>();
  silent.on("connection", (socket) => {
    accepted.add(socket);
    // Read and ignore requests (a paused socket would never see the peer's FIN).
    socket.resume();
    socket.on("close", () => accepted.delete(socket));
  });
  let proxy: RunningProxy | null = null;
  after(async () => {
    await proxy?.stop();
    for (const socket of accepted) socket.destroy();
    silent.close();
    await cluster.stop();
  });

  it("an unresolvable, a refusing and a hanging seed before the good one still give a ready proxy", SLOW, async () => {
    const { seeds } = await cluster.get();
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const hanging = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    const refusing = `127.0.0.1:${await freePort()}`;
    // The refresh timeout is long: only the hedge (a third of it) lets the good seed answer early.
    proxy = await startProxy([hanging, "no-such-host.invalid:7000", refusing, seeds[0]!], {
      SLOTGATE_REFRESH_TIMEOUT_MS: "3000",
      SLOTGATE_REFRESH_INTERVAL_MS: "60000",
    });
    assert.equal(proxy.app.cluster.stats.coveredSlots, 16384);
    assert.equal(proxy.app.cluster.nodes().length, 3);
    const client = new Redis({ port: proxy.port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await client.connect();
      await client.set("disc:k", "v");
      assert.equal(await client.get("disc:k"), "v");
    } finally {
      client.disconnect();
    }
    // The round is over: its lookups and connects, the hanging one included, were cancelled.
    const resources = JSON.stringify(proxy.app.cluster.scope.inspect());
    assert.doesNotMatch(resources, /refresh \d+/, resources);
    assert.doesNotMatch(resources, /"lookup"/, resources);
    // ...and the hanging server sees its connection closed by slotgate.
    for (let i = 0; accepted.size > 0 && i < 100; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(accepted.size, 0, "the connection to the hanging seed was closed");
  });
});
