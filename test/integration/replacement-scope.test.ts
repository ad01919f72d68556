/**
 * No request escapes its scope: a transaction whose node belongs to a cluster that was just
 * replaced (and is still draining, held open by a blocked client) gets one clear error for the
 * command offered to the closing node, and its session goes on; no exception reaches the new
 * cluster's shared connections, so other clients never see an error. Before the fix the MULTI
 * armed a timer on the closing node's scope, the exception escaped through the shared connection
 * that had just delivered the client's previous reply, and every request in flight on it failed
 * with `-ERR protocol error ... scope ... is closed`.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { startLocalCluster } from "../../scripts/local-cluster.ts";
import { lazy } from "../support/lazy.ts";
import { startProxy } from "../support/proxy.ts";
import { Exchange } from "../support/exchange.ts";
import { until, within } from "../support/within.ts";

const SLOW = { timeout: 120_000 };
const BYSTANDERS = 12;

describe("a transaction open across a cluster replacement", () => {
  const cluster = lazy(() => startLocalCluster());
  after(async () => {
    await cluster.stop();
  });

  it("gets one clear error for the command the closing node refuses, its session goes on, and bystanders on the shared connections see no error", SLOW, async () => {
    const local = await cluster.get();
    // A long drain: the blocked client keeps the old cluster draining while B runs into it.
    const live = await startProxy(local.seeds, { SLOTGATE_DRAIN_TIMEOUT_MS: "20000", SLOTGATE_CONNECTIONS_PER_NODE: "2" });
    const blocked = await Exchange.connect(live.port);
    const b = await Exchange.connect(live.port);
    const pusher = await Exchange.connect(live.port);
    const bystanders = await Promise.all(Array.from({ length: BYSTANDERS }, () => Exchange.connect(live.port)));
    let stop = false;
    const errors: string[] = [];
    let answered = 0;
    let traffic: Promise<void>[] = [];
    try {
      const waiting = blocked.send(["BLPOP", "{t}q", "0"]);
      assert.deepEqual(await b.send(["WATCH", "{t}k"]), ["+OK\r\n"]);
      await until("A blocked and B watching, each on a connection of its own", () => live.app.server.dedicated.open === 2);

      // Bystanders read keys of the same slot: their requests share the node's pipelined connections with B's.
      traffic = bystanders.map(async (client, i) => {
        try {
          while (!stop) {
            const replies = await client.send(...Array.from({ length: 20 }, (_, j) => ["GET", `{t}bystander:${i}:${j}`]));
            answered += replies.length;
            for (const reply of replies) if (reply.startsWith("-")) errors.push(reply);
          }
        } catch (error) {
          if (!stop) errors.push(`bystander ${i}: ${(error as Error).message}`);
        }
      });
      await until("bystander traffic flowing", () => answered > 200);

      const old = live.app.control.backend("default");
      const replacing = live.app.control.putCluster("default", { seeds: local.seeds, refreshIntervalMs: 12_345 });
      await until("routing switched to the replacement", () => live.app.control.backend("default") !== old);

      // GET goes to the new cluster's shared connection; MULTI waits for its reply, then is offered
      // to B's connection on the old, closing node.
      const [get, multi] = await b.send(["GET", "{t}x"], ["MULTI"]);
      assert.equal(get, "$-1\r\n");
      assert.equal(multi, "-ERR transaction aborted: cluster 'default' was replaced; retry the transaction\r\n");
      // Exactly one reply per request: the next replies are those of the next commands.
      assert.deepEqual(await b.send(["SET", "{t}k", "v"], ["EXEC"]), [
        "-ERR transaction aborted: cluster 'default' was replaced\r\n",
        "-EXECABORT Transaction discarded because of previous errors.\r\n",
      ]);
      assert.deepEqual(await b.send(["PING"]), ["+PONG\r\n"], "B's session goes on");
      assert.deepEqual(await b.send(["MULTI"], ["INCR", "{t}n"], ["EXEC"]), ["+OK\r\n", "+QUEUED\r\n", "*1\r\n:1\r\n"], "a new transaction runs on the replacement");
      assert.equal(b.unread, 0, "no reply B did not ask for");

      // Release the blocked client; the old cluster then finishes draining and the change completes.
      assert.deepEqual(await pusher.send(["RPUSH", "{t}q", "x"]), [":1\r\n"]);
      assert.deepEqual(await within(waiting, "the blocked client's reply"), ["*2\r\n$4\r\n{t}q\r\n$1\r\nx\r\n"]);
      const result = await within(replacing, "the replacement to finish");
      assert.equal(result.ok, true);
      const before = answered;
      await until("bystanders still served after the old cluster is gone", () => answered > before + 200);
      stop = true;
      await Promise.all(traffic);
      assert.deepEqual(errors, [], "no bystander got an error");
      assert.ok(!bystanders.some((client) => client.closed), "no bystander was disconnected");
    } finally {
      stop = true;
      await Promise.all(traffic).catch(() => {});
      for (const client of [blocked, b, pusher, ...bystanders]) client.close();
      await live.stop();
    }
  });
});
