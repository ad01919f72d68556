/**
 * A transaction whose node stops taking work: its last command (EXEC, DISCARD) is refused as a
 * value when it is sent, which can happen at once — when every earlier reply is already in, the
 * session runs it in the same turn. The refusal must still end the transaction, so the client's
 * next MULTI starts a new one instead of being answered "nested" (found by the simulator:
 * about 1 seed in 300 of `npm run sim` showed the nested MULTI).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Unavailable, type DedicatedConn, type DedicatedOptions, type NodeHandle } from "../../src/backend/contract.ts";
import type { Pending, UpstreamRequest } from "../../src/backend/request.ts";
import { DedicatedBudget } from "../../src/proxy/own-conn/dedicated.ts";
import { Transaction, type TransactionHost } from "../../src/proxy/own-conn/transaction.ts";
import type { Router, Target } from "../../src/proxy/routing/router.ts";
import { encodeCommand, encodeSimpleString } from "../../src/resp/encode.ts";
import { fakeBackend } from "../support/fake-backend.ts";

const decoder = new TextDecoder();
const REPLACED = new Unavailable("closing", "cluster 'main' was replaced");

/** A node whose connections answer QUEUED / OK at once, until `closing` makes them refuse work. */
class Node implements NodeHandle {
  readonly host = "127.0.0.1";
  readonly port = 7000;
  readonly address = "127.0.0.1:7000";
  closing = false;
  sent: string[] = [];

  dedicated(options: DedicatedOptions): DedicatedConn {
    return {
      isDead: false,
      send: (request: UpstreamRequest) => {
        if (this.closing) return REPLACED;
        const name = decoder.decode(request.frame).split("\r\n")[2]!.toUpperCase();
        this.sent.push(name);
        options.events.reply(request, encodeSimpleString(name === "MULTI" || name === "WATCH" ? "OK" : "QUEUED"));
        return null;
      },
      write() {},
      fail() {},
    };
  }
}

function setup() {
  const node = new Node();
  const backend = fakeBackend("main", { nodeFor: () => node });
  const replies: string[] = [];
  let ended = 0;
  const host = {
    id: 1,
    protocol: 2,
    budget: new DedicatedBudget(() => 10),
    router: {
      target: (_client: unknown, _name: string, _args: Uint8Array[], frame: Uint8Array): Target =>
        ({ backend, shard: 5, frame, info: undefined }) as unknown as Target,
    } as unknown as Router,
    // Every earlier reply is already in: the command starts in this very turn.
    runAlone: (_pending: Pending, start: () => void) => start(),
    transactionEnded: () => void ended++,
    reply: (frame: Uint8Array) => void replies.push(decoder.decode(frame)),
    deliver: (_request: UpstreamRequest, frame: Uint8Array) => void replies.push(decoder.decode(frame)),
    deliveryFailed: () => {},
  } as unknown as TransactionHost;
  const txn = new Transaction(host);
  const run = (...args: string[]) => {
    const frame = encodeCommand(args);
    const taken = txn.command(args[0]!, args.slice(1).map((a) => new TextEncoder().encode(a)), frame);
    assert.equal(taken, true, `${args[0]} is the transaction's`);
  };
  return { node, txn, run, replies, ended: () => ended };
}

describe("a transaction whose node is replaced as its last command is sent", () => {
  for (const last of ["EXEC", "DISCARD"]) {
    it(`a refused ${last} gets one error and ends the transaction`, () => {
      const { node, run, replies, ended } = setup();
      run("WATCH", "{t}k");
      run("MULTI");
      run("INCR", "{t}k");
      assert.deepEqual(replies, ["+OK\r\n", "+OK\r\n", "+QUEUED\r\n"]);
      node.closing = true;
      run(last);
      assert.deepEqual(replies.slice(3), ["-ERR transaction aborted: cluster 'main' was replaced; retry the transaction\r\n"]);
      assert.equal(ended(), 1, "the session routes normally again: its next MULTI opens a new transaction");
    });
  }

  it("a refused UNWATCH outside MULTI ends it too", () => {
    const { node, run, replies, ended } = setup();
    run("WATCH", "{t}k");
    node.closing = true;
    run("UNWATCH");
    assert.equal(replies.length, 2);
    assert.match(replies[1]!, /^-ERR transaction aborted: cluster 'main' was replaced/);
    assert.equal(ended(), 1);
  });
});
