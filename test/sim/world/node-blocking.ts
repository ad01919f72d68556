/**
 * Clients blocked on one simulated Redis node (BLPOP), as Redis 7 keeps them: each key has a FIFO
 * of the clients waiting for it; a push to a key marks it ready, and once the command that pushed
 * is done (its own reply written first, so RPUSH counts the element it pushed) the key's waiters
 * are served in the order they blocked, one element each, while elements last. A client whose
 * timeout (if not 0) runs out gets a nil array. A blocked client's next commands wait in its
 * backlog; they run once it is unblocked, after the current event (Redis serves unblocked
 * clients' input before it sleeps again).
 *
 * Being unblocked by the cluster (the key's slot moved away, the node became a replica) is the
 * node's decision (`each`, then `unblock` with the reply Redis would give).
 *
 * WAIT blocks here too (`wait`), on no key: it is answered by its timeout, with what `answer`
 * says then (the replicas that acknowledged), or by an unblock (the node became a replica).
 */
import type { Runtime } from "../../../src/runtime.ts";
import { NULL_ARRAY } from "../../../src/resp/encode.ts";
import type { ClientState } from "./client-state.ts";
import { latin1, popFirst, type Store } from "./keyspace.ts";

export class NodeBlocking {
  /** Waiting clients by key (latin1), oldest first. */
  readonly #waiting = new Map<string, ClientState[]>();
  /** Keys pushed to since they were last served, in order. */
  readonly #ready: string[] = [];
  /** Clients blocked on WAIT, oldest first. */
  readonly #waits = new Set<ClientState>();
  readonly #runtime: Runtime;
  /** Serve the commands a client received while it was blocked. */
  readonly #resume: (client: ClientState) => void;

  constructor(runtime: Runtime, resume: (client: ClientState) => void) {
    this.#runtime = runtime;
    this.#resume = resume;
  }

  /** Clients blocked now. */
  get count(): number {
    const all = new Set<ClientState>();
    for (const queue of this.#waiting.values()) for (const c of queue) all.add(c);
    return all.size + this.#waits.size;
  }

  /** Block `client` on `keys` for `timeoutMs` (0: until a push or an unblock). */
  block(client: ClientState, keys: Uint8Array[], timeoutMs: number): void {
    const names = keys.map(latin1);
    client.blocked = { keys, names, timer: null, wait: false };
    for (const name of new Set(names)) {
      let queue = this.#waiting.get(name);
      if (!queue) this.#waiting.set(name, (queue = []));
      queue.push(client);
    }
    if (timeoutMs > 0) client.blocked.timer = this.#runtime.setTimer(timeoutMs, () => this.unblock(client, NULL_ARRAY));
  }

  /** Block `client` on WAIT for `timeoutMs` (0: until an unblock); `answer` is its reply then. */
  wait(client: ClientState, timeoutMs: number, answer: () => Uint8Array): void {
    client.blocked = { keys: [], names: [], timer: null, wait: true };
    this.#waits.add(client);
    if (timeoutMs > 0) client.blocked.timer = this.#runtime.setTimer(timeoutMs, () => this.unblock(client, answer()));
  }

  /** Every client blocked on WAIT. */
  eachWait(fn: (client: ClientState) => void): void {
    for (const client of [...this.#waits]) fn(client);
  }

  /** A list was written: its waiters are served by the next `serveReady`. */
  signal(key: string): void {
    if (this.#waiting.has(key) && !this.#ready.includes(key)) this.#ready.push(key);
  }

  /** Serve the waiters of every ready key, oldest first, one element each. */
  serveReady(store: Store): void {
    while (this.#ready.length > 0) {
      const key = this.#ready.shift()!;
      for (;;) {
        const client = this.#waiting.get(key)?.[0];
        if (!client || !store.lists.has(key)) break;
        const bytes = client.blocked!.keys[client.blocked!.names.indexOf(key)]!;
        this.unblock(client, popFirst(store, [bytes])!);
      }
    }
  }

  /** Every blocked client with the keys it waits for. */
  each(fn: (client: ClientState, keys: Uint8Array[]) => void): void {
    const seen = new Set<ClientState>();
    for (const queue of [...this.#waiting.values()]) {
      for (const client of [...queue]) {
        if (seen.has(client) || !client.blocked) continue;
        seen.add(client);
        fn(client, client.blocked.keys);
      }
    }
  }

  /** Answer a blocked client `reply` and run what it sent meanwhile. */
  unblock(client: ClientState, reply: Uint8Array): void {
    if (!client.blocked) return;
    this.forget(client);
    client.send(reply);
    this.#runtime.defer(() => {
      if (!client.gone && !client.blocked) this.#resume(client);
    });
  }

  /** Stop waiting for `client` (its connection closed), with no reply. */
  forget(client: ClientState): void {
    const blocked = client.blocked;
    if (!blocked) return;
    client.blocked = null;
    blocked.timer?.cancel();
    this.#waits.delete(client);
    for (const name of new Set(blocked.names)) {
      const queue = this.#waiting.get(name);
      if (!queue) continue;
      const at = queue.indexOf(client);
      if (at >= 0) queue.splice(at, 1);
      if (queue.length === 0) this.#waiting.delete(name);
    }
  }
}
