/**
 * Transactions on one simulated Redis node, as Redis 7 runs them. Between MULTI and EXEC a
 * command is checked first (unknown, arity, the cluster's redirection rules: the node's `route`),
 * then answered `+QUEUED`, or answered its error, which makes EXEC answer `-EXECABORT` (Redis's
 * CLIENT_DIRTY_EXEC). EXEC is checked against the rules for the keys of every queued command (a
 * slot that moved since: `-MOVED`/`-ASK`, and the transaction is discarded), then answers a nil
 * array if a WATCHed key was touched (CLIENT_DIRTY_CAS: written, deleted, migrated away or in,
 * flushed by a full sync), else runs the whole queue at once. EXEC and DISCARD forget the
 * watched keys; so does a closed connection.
 */
import { encodeArray, encodeError, NULL_ARRAY, OK, QUEUED } from "../../../src/resp/encode.ts";
import type { ClientState } from "./client-state.ts";
import { latin1 } from "./keyspace.ts";

const EXECABORT = encodeError("EXECABORT Transaction discarded because of previous errors.");

/** What transactions need from their node. */
export interface MultiHost {
  /** The redirection rules for `keys`: null when the node serves them, else the error. */
  route(keys: Uint8Array[], write: boolean, asking: boolean, readonly: boolean): Uint8Array | null;
  /** Run a queued command, from EXEC (a blocking command does not block). */
  run(client: ClientState, name: string, args: Uint8Array[], asking: boolean): Uint8Array;
}

export class NodeMulti {
  /** Clients WATCHing each key (latin1). */
  readonly #watchers = new Map<string, Set<ClientState>>();

  constructor(readonly host: MultiHost) {}

  multi(client: ClientState): Uint8Array {
    if (client.multi) return encodeError("ERR MULTI calls can not be nested");
    client.multi = [];
    client.multiFailed = false;
    return OK;
  }

  /** An error answered inside MULTI: EXEC will fail. */
  refuse(client: ClientState, error: Uint8Array): Uint8Array {
    if (client.multi) client.multiFailed = true;
    return error;
  }

  /** A command sent inside MULTI, checked by its `keys` (and `write`) before it is queued. */
  queue(client: ClientState, name: string, args: Uint8Array[], keys: Uint8Array[], write: boolean, asking: boolean): Uint8Array {
    if (keys.length > 0) {
      const denied = this.host.route(keys, write, asking, client.readonly);
      if (denied) return this.refuse(client, denied);
    }
    client.multi!.push({ name, args, keys, write });
    return QUEUED;
  }

  exec(client: ClientState, asking: boolean): Uint8Array {
    const queued = client.multi;
    if (!queued) return encodeError("ERR EXEC without MULTI");
    // The rules apply to the keys of the whole transaction, checked now: a slot may have moved.
    const keys = queued.flatMap((q) => q.keys);
    if (keys.length > 0) {
      const denied = this.host.route(keys, queued.some((q) => q.write), asking, client.readonly);
      if (denied) {
        this.discard(client);
        return denied;
      }
    }
    if (client.multiFailed || client.dirty) {
      const reply = client.multiFailed ? EXECABORT : NULL_ARRAY;
      this.discard(client);
      return reply;
    }
    this.discard(client);
    return encodeArray(queued.map((q) => this.host.run(client, q.name, q.args, asking)));
  }

  /** DISCARD (or the end of EXEC): leave MULTI, forget the watched keys. */
  discard(client: ClientState): void {
    client.multi = null;
    client.multiFailed = false;
    client.asking = false;
    this.unwatch(client);
  }

  /** WATCH `keys` (the command is checked like a read). */
  watch(client: ClientState, keys: Uint8Array[], asking: boolean): Uint8Array {
    if (client.multi) return encodeError("ERR WATCH inside MULTI is not allowed");
    const denied = this.host.route(keys, false, asking, client.readonly);
    if (denied) return denied;
    for (const key of keys.map(latin1)) {
      client.watched.add(key);
      let set = this.#watchers.get(key);
      if (!set) this.#watchers.set(key, (set = new Set()));
      set.add(client);
    }
    return OK;
  }

  /** UNWATCH, and every end of a transaction. */
  unwatch(client: ClientState): void {
    for (const key of client.watched) {
      const set = this.#watchers.get(key);
      set?.delete(client);
      if (set?.size === 0) this.#watchers.delete(key);
    }
    client.watched.clear();
    client.dirty = false;
  }

  /** A key changed on this node: transactions watching it will fail. */
  touch(key: string): void {
    for (const client of this.#watchers.get(key) ?? []) client.dirty = true;
  }

  /** Every key some client watches. */
  watchedKeys(): string[] {
    return [...this.#watchers.keys()];
  }
}
