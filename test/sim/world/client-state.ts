/**
 * What a simulated Redis node keeps per client connection, as Redis keeps it in its `client`
 * struct: the protocol it speaks (HELLO), the ASKING and READONLY flags, the transaction (MULTI's
 * queue, WATCHed keys and the flags that make EXEC fail), the command it is blocked on (BLPOP or
 * WAIT), and its subscriptions.
 */
import type { TimerHandle } from "../../../src/runtime.ts";

/** A command queued between MULTI and EXEC, with the keys it touches. */
export interface Queued {
  name: string;
  args: Uint8Array[];
  keys: Uint8Array[];
  write: boolean;
}

/** A BLPOP waiting for one of its keys (key bytes as latin1 strings in `names`), or a WAIT (no keys). */
export interface Blocked {
  readonly keys: Uint8Array[];
  readonly names: string[];
  timer: TimerHandle | null;
  /** A WAIT: answered by its timeout (or an unblock), never by a push. */
  readonly wait: boolean;
}

export interface ClientState {
  /** The node's number for the connection (HELLO's `id`). */
  id: number;
  /** RESP2 until `HELLO 3` (nulls `_`, pub/sub frames pushes, HELLO a map). */
  protocol: 2 | 3;
  /** The next command may be served for an IMPORTING slot (kept for the whole of a MULTI, as Redis does). */
  asking: boolean;
  readonly: boolean;
  /** Commands queued since MULTI, or null outside a transaction. */
  multi: Queued[] | null;
  /** A command was refused while queueing: EXEC answers EXECABORT (CLIENT_DIRTY_EXEC). */
  multiFailed: boolean;
  /** WATCHed keys (latin1). */
  readonly watched: Set<string>;
  /** A watched key was touched: EXEC answers a nil array (CLIENT_DIRTY_CAS). */
  dirty: boolean;
  blocked: Blocked | null;
  /** Commands that arrived while blocked, served once unblocked, in order. */
  readonly backlog: Uint8Array[][];
  /** Channels, patterns and shard channels subscribed (latin1); subscribed mode while any is non-empty. */
  readonly channels: Set<string>;
  readonly patterns: Set<string>;
  readonly shardChannels: Set<string>;
  /** The connection closed: nothing more is sent or served. */
  gone: boolean;
  /** Write a frame on the client's connection (a reply, a message, an unblocking reply). */
  send(frame: Uint8Array): void;
}

export function newClientState(send: (frame: Uint8Array) => void): ClientState {
  return {
    id: 0,
    protocol: 2,
    asking: false,
    readonly: false,
    multi: null,
    multiFailed: false,
    watched: new Set(),
    dirty: false,
    blocked: null,
    backlog: [],
    channels: new Set(),
    patterns: new Set(),
    shardChannels: new Set(),
    gone: false,
    send,
  };
}
