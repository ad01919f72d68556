/**
 * The shutdown sequence on a real process, in front of a real cluster (issue 13, "Operations"):
 * on SIGTERM or SIGINT `/readyz` answers 503 at once while clients are still served for
 * `shutdownDelayMs`; then the client port stops accepting, a blocked BLPOP and a subscriber are
 * answered `-ERR slotgate is shutting down`, and the process exits 0. A second signal exits at
 * once, 143 (SIGTERM) or 130 (SIGINT). Every wait ends on an event; no timing is asserted.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { detectRuntime } from "../../adapters/current.ts";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { freePort } from "../../scripts/free-port.ts";
import { lazy } from "../support/lazy.ts";
import { RawClient, resp } from "../support/proxy.ts";
import { accepts, until } from "./lifecycle-helpers.ts";
import { startEntry, type Entry } from "../support/processes.ts";

const SLOW = { timeout: 180_000 };

async function readyz(adminPort: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Send one command on `client` and wait for a whole simple reply line (or bulk). */
async function roundTrip(client: RawClient, ...args: string[]): Promise<string> {
  client.received = Buffer.alloc(0);
  client.send(resp(...args));
  return client.waitFor((t) => /^[+\-:]/.test(t) ? t.endsWith("\r\n") : /^\$-1\r\n$|^\$\d+\r\n[\s\S]*\r\n$/.test(t));
}

describe(`shutdown of the ${detectRuntime()} entry point`, () => {
  const cluster = lazy(() => startLocalCluster());
  after(() => cluster.stop());

  async function launch(env: Record<string, string>): Promise<{ proxy: Entry; port: number; adminPort: number }> {
    const { seeds } = await cluster.get();
    const [port, adminPort] = [await freePort(), await freePort()];
    const proxy = startEntry([], {
      SLOTGATE_LISTEN: `127.0.0.1:${port}`,
      SLOTGATE_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
      SLOTGATE_SEEDS: seeds.join(","),
      SLOTGATE_LOG_LEVEL: "info",
      ...env,
    });
    await until(async () => (await readyz(adminPort)).status === 200, "slotgate to be ready").catch((error) => {
      throw new Error(`${error.message}; output:\n${proxy.output()}`);
    });
    return { proxy, port, adminPort };
  }

  for (const [signal, forced] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
    it(`${signal}: /readyz answers 503 at once while clients are still served (new ones too) for shutdownDelayMs; a second ${signal} exits ${forced} at once`, SLOW, async () => {
      // A delay far longer than the test: only the second signal can end it.
      const { proxy, port, adminPort } = await launch({ SLOTGATE_SHUTDOWN_DELAY_MS: "3600000" });
      try {
        const before = await RawClient.connect(port);
        assert.equal(await roundTrip(before, "SET", "life:k", "v1"), "+OK\r\n");
        proxy.signal(signal);
        await until(async () => (await readyz(adminPort)).status === 503, "/readyz to answer 503");
        assert.deepEqual((await readyz(adminPort)).body, { ready: false, reason: "shutting down", notReady: [] });
        assert.equal(await roundTrip(before, "GET", "life:k"), "$2\r\nv1\r\n", "a connected client is still served");
        const late = await RawClient.connect(port);
        assert.equal(await roundTrip(late, "SET", "life:k", "v2"), "+OK\r\n", "a client connecting during the delay is served");
        assert.equal(await roundTrip(late, "GET", "life:k"), "$2\r\nv2\r\n");
        assert.match(proxy.output(), /shutting down: \/readyz answers 503/);
        assert.doesNotMatch(proxy.output(), /no longer accepting/);
        proxy.signal(signal);
        const exit = await proxy.done;
        assert.equal(exit.code, forced, proxy.output());
        assert.match(proxy.output(), /second signal during shutdown: exiting at once/);
        before.close();
        late.close();
      } finally {
        proxy.child.kill("SIGKILL");
      }
    });
  }

  it("after the delay: stops accepting, answers a blocked BLPOP and a subscriber with an error, drains, exits 0", SLOW, async () => {
    const c = await cluster.get();
    // A drain deadline far longer than the test: a blocked command left waiting would hold it.
    const { proxy, port } = await launch({ SLOTGATE_SHUTDOWN_DELAY_MS: "200", SLOTGATE_SHUTDOWN_TIMEOUT_MS: "3600000" });
    try {
      const blocked = await RawClient.connect(port);
      blocked.send(resp("BLPOP", "life:list", "0"));
      const blockedOnRedis = async () => {
        let total = 0;
        for (const node of c.nodes) total += Number(/blocked_clients:(\d+)/.exec(await c.command(node.port, "INFO", "clients"))?.[1] ?? 0);
        return total >= 1;
      };
      await until(blockedOnRedis, "the BLPOP to block on its node");
      const subscriber = await RawClient.connect(port);
      subscriber.send(resp("SUBSCRIBE", "life:ch"));
      await subscriber.waitFor((t) => t.includes("life:ch") && t.endsWith(":1\r\n"));
      subscriber.received = Buffer.alloc(0);
      const busy = await RawClient.connect(port);
      assert.equal(await roundTrip(busy, "SET", "life:k", "v"), "+OK\r\n");

      proxy.signal("SIGTERM");
      assert.equal(await blocked.waitFor((t) => t.endsWith("\r\n")), "-ERR slotgate is shutting down\r\n");
      await blocked.waitClosed(60_000);
      assert.equal(await subscriber.waitFor((t) => t.endsWith("\r\n")), "-ERR slotgate is shutting down\r\n");
      await subscriber.waitClosed(60_000);
      await until(async () => !(await accepts(port)), "the client port to refuse connections");
      const exit = await proxy.done;
      assert.equal(exit.code, 0, proxy.output());
      const output = proxy.output();
      assert.match(output, /shutting down: \/readyz answers 503/);
      assert.match(output, /shutting down: no longer accepting clients; draining in-flight requests/);
      assert.match(output, /shutting down: clients drained/);
      assert.match(output, /shut down/);
      // The steps come in this order.
      assert.ok(output.indexOf("answers 503") < output.indexOf("no longer accepting"));
      busy.close();
    } finally {
      proxy.child.kill("SIGKILL");
    }
  });
});
