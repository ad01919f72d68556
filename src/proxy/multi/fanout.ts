/**
 * Commands sent to every primary, their replies merged into the one Redis would give: a
 * `FanOut` is a client's reply-queue entry that fills in once every part has answered. Merges
 * read raw reply frames and decode only what they must (integers, array headers); the rules are
 * Redis's COMMAND tips (`response_policy:agg_sum`, `all_succeeded`...), so a command's merge
 * comes from the command table rather than a hand list. An error reply wins over the others
 * unless the policy says otherwise (`one_succeeded`).
 */
import { Unavailable, type Backend, type DedicatedConn } from "../../backend/contract.ts";
import { InvariantError, asError } from "../../errors.ts";
import { UpstreamRequest, type Pending, type ReplySink } from "../../backend/request.ts";
import type { CommandInfo } from "../../commands/keys.ts";
import { decode } from "../../resp/decode.ts";
import { concatBytes, encodeArray, encodeArrayHeader, encodeInteger } from "../../resp/encode.ts";
import { errorReply } from "../../resp/replies.ts";
import { readInteger } from "../../resp/reply-reader.ts";
import { BANG, CR, DOLLAR, MINUS, STAR, UNDERSCORE } from "../../resp/bytes.ts";

/** Turns the replies of every part, in shard order, into the client's reply. */
export type Merge = (replies: readonly Uint8Array[]) => Uint8Array;

/** Whoever queues a fanned-out or split command's reply: called when its merged reply is ready. */
export interface SplitOwner {
  /** The client's protocol when the command is sent: its parts' replies come in that protocol. */
  readonly protocol: 2 | 3;
  complete(pending: Pending): void;
  /**
   * An invariant broke while serving this client (a part answered twice): the client is closed
   * with an internal error and the fault logged; nobody else is affected.
   */
  fault(error: Error): void;
}

/** The client side of a fanned-out command (a `RouteClient` is one). */
export interface FanOutClient extends SplitOwner, ReplySink {
  readonly id: number;
  readonly protocol: 2 | 3;
  expect(pending: Pending): void;
  reply(frame: Uint8Array): void;
}


/** Sent when a backend has no primary at all (no slot map yet). */
export const CLUSTER_DOWN = errorReply("The cluster is down", "CLUSTERDOWN");
const UNEXPECTED = errorReply("unexpected reply from a primary");
const NOTBUSY = "-NOTBUSY";

export function isErrorReply(frame: Uint8Array): boolean {
  return frame[0] === MINUS || frame[0] === BANG;
}

/** A nil reply: `$-1` or `*-1` in RESP2, `_` in RESP3. */
export function isNil(frame: Uint8Array): boolean {
  if (frame[0] === UNDERSCORE) return true;
  return (frame[0] === DOLLAR || frame[0] === STAR) && frame[1] === MINUS;
}

/** The element count of an array reply and the offset of its first element; null for another type. */
export function arrayHeader(frame: Uint8Array): { count: number; body: number } | null {
  if (frame[0] !== STAR) return null;
  let i = 1;
  // A nil array holds nothing.
  if (frame[1] === MINUS) {
    while (frame[i] !== CR) i++;
    return { count: 0, body: frame.length };
  }
  let count = 0;
  for (; frame[i] !== CR; i++) count = count * 10 + frame[i]! - 48;
  return { count, body: i + 2 };
}

/** The first error among `replies`, if any. */
export function firstError(replies: readonly Uint8Array[]): Uint8Array | undefined {
  return replies.find(isErrorReply);
}

/** `default_keyless`: arrays concatenated (KEYS). */
export const concatArrays: Merge = (replies) => {
  const error = firstError(replies);
  if (error) return error;
  const bodies: Uint8Array[] = [];
  let count = 0;
  let bytes = 0;
  for (const reply of replies) {
    const header = arrayHeader(reply);
    if (!header) return UNEXPECTED;
    count += header.count;
    const body = reply.subarray(header.body);
    bodies.push(body);
    bytes += body.length;
  }
  const head = encodeArrayHeader(count);
  return concatBytes([head, ...bodies], head.length + bytes);
};

/** `agg_sum`: integer replies summed (DBSIZE). */
export const sumIntegers: Merge = (replies) => {
  const error = firstError(replies);
  if (error) return error;
  let sum = 0;
  for (const reply of replies) {
    const n = readInteger(reply);
    if (n === null) return UNEXPECTED;
    sum += n;
  }
  return encodeInteger(sum);
};

/** `all_succeeded`: the first error, else the first reply (FLUSHALL's OK, SCRIPT LOAD's sha). */
export const allSucceeded: Merge = (replies) => firstError(replies) ?? replies[0]!;

/**
 * `one_succeeded`: the first success (SCRIPT KILL: OK from the primary that ran the script);
 * when all failed, an error other than NOTBUSY says more (UNKILLABLE), else NOTBUSY.
 */
export const oneSucceeded: Merge = (replies) => {
  const success = replies.find((reply) => !isErrorReply(reply));
  if (success) return success;
  return replies.find((reply) => !startsWith(reply, NOTBUSY)) ?? replies[0]!;
};

/** `agg_logical_and`: per position, 1 only when every primary answered 1 (SCRIPT EXISTS). */
export const logicalAnd: Merge = (replies) => {
  const error = firstError(replies);
  if (error) return error;
  let all: boolean[] | null = null;
  for (const reply of replies) {
    const value = decode(reply);
    if (!Array.isArray(value)) return UNEXPECTED;
    const flags = value.map((v) => v === 1 || v === true);
    if (all !== null && all.length !== flags.length) return UNEXPECTED;
    all = all === null ? flags : all.map((flag, i) => flag && flags[i]!);
  }
  return encodeArray((all ?? []).map((flag) => encodeInteger(flag ? 1 : 0)));
};

const RESPONSE_POLICIES: Record<string, Merge> = {
  agg_sum: sumIntegers,
  all_succeeded: allSucceeded,
  one_succeeded: oneSucceeded,
  agg_logical_and: logicalAnd,
};

/** The value of a `name:value` COMMAND tip, or null when the command has none. */
export function tip(info: CommandInfo, name: string): string | null {
  const prefix = `${name}:`;
  const found = info.tips.find((t) => t.startsWith(prefix));
  return found === undefined ? null : found.slice(prefix.length);
}

/**
 * The merge a command's tips call for: its `response_policy`, or, for a keyless command with
 * none, Redis's `default_keyless` (one array of everything). Null for `special` or an unknown
 * policy: the command needs its own handling.
 */
export function tipMerge(info: CommandInfo): Merge | null {
  const policy = tip(info, "response_policy");
  if (policy === null) return concatArrays;
  return Object.hasOwn(RESPONSE_POLICIES, policy) ? RESPONSE_POLICIES[policy]! : null;
}

/** A command sent to several shards: its reply is the merge of theirs, in shard order. */
export class FanOut implements Pending, ReplySink {
  reply: Uint8Array | null = null;
  readonly #replies: Uint8Array[];
  #remaining: number;

  constructor(
    readonly owner: SplitOwner,
    count: number,
    readonly merge: Merge,
  ) {
    this.#replies = new Array(count);
    this.#remaining = count;
  }

  deliveryFailed(_request: UpstreamRequest, error: unknown): void {
    this.owner.fault(asError(error));
  }

  deliver(request: UpstreamRequest, reply: Uint8Array): void {
    if (this.#replies[request.part] !== undefined || this.#remaining === 0) {
      return this.owner.fault(new InvariantError(`part ${request.part} of a fanned-out command was answered twice`));
    }
    this.#replies[request.part] = reply;
    if (--this.#remaining > 0) return;
    this.reply = this.merge(this.#replies);
    this.owner.complete(this);
  }
}

function parts(client: FanOutClient, fan: ReplySink, shards: readonly number[], frame: Uint8Array): UpstreamRequest[] {
  return shards.map((shard, i) => {
    const request = new UpstreamRequest(frame, shard, fan, client.id, i);
    request.resp3 = client.protocol === 3;
    return request;
  });
}

/** Send `frame` to each of `shards` and queue the merged reply, in order, on `client`. */
export function fanOut(client: FanOutClient, backend: Backend, shards: readonly number[], frame: Uint8Array, merge: Merge): void {
  if (shards.length === 0) return client.reply(CLUSTER_DOWN);
  const fan = new FanOut(client, shards.length, merge);
  const requests = parts(client, fan, shards, frame);
  // Queued before dispatch: a part may be answered at once (an error).
  client.expect(fan);
  for (const request of requests) backend.dispatch(request);
}

/**
 * Like `fanOut`, but each part travels on a connection of its own, opened for it and closed once
 * answered: SCRIPT KILL and FUNCTION KILL must reach a node whose shared connections may be
 * stuck behind the very script they are meant to stop.
 */
export function fanOutAlone(client: FanOutClient, backend: Backend, shards: readonly number[], frame: Uint8Array, merge: Merge): void {
  if (shards.length === 0) return client.reply(CLUSTER_DOWN);
  const fan = new FanOut(client, shards.length, merge);
  const requests = parts(client, fan, shards, frame);
  client.expect(fan);
  for (const request of requests) {
    const node = backend.nodeFor(request.slot);
    if (node instanceof Unavailable) {
      fan.deliver(request, node.reply);
      continue;
    }
    let conn: DedicatedConn | null = null;
    const opened = node.dedicated({
      protocol: client.protocol,
      events: {
        reply: (answered, reply) => {
          answered.sink.deliver(answered, reply);
          conn?.fail("closed after its one command");
        },
        lost: () => {},
      },
    });
    if (opened instanceof Unavailable) {
      fan.deliver(request, opened.reply);
      continue;
    }
    conn = opened;
    const refused = conn.send(request);
    if (refused) {
      conn.fail(refused.message);
      fan.deliver(request, refused.reply);
    }
  }
}

/**
 * Ask shards one after another, in the given order, until one answers something other than nil
 * (RANDOMKEY: an empty primary says nil, another may hold keys). An error ends the search.
 */
export class FirstFound implements Pending, ReplySink {
  reply: Uint8Array | null = null;
  #next = 0;

  private constructor(
    readonly client: FanOutClient,
    readonly backend: Backend,
    readonly shards: readonly number[],
    readonly frame: Uint8Array,
  ) {}

  static send(client: FanOutClient, backend: Backend, shards: readonly number[], frame: Uint8Array): void {
    if (shards.length === 0) return client.reply(CLUSTER_DOWN);
    const search = new FirstFound(client, backend, shards, frame);
    client.expect(search);
    search.#ask();
  }

  #ask(): void {
    const request = new UpstreamRequest(this.frame, this.shards[this.#next++]!, this, this.client.id);
    request.resp3 = this.client.protocol === 3;
    this.backend.dispatch(request);
  }

  deliveryFailed(_request: UpstreamRequest, error: unknown): void {
    this.client.fault(asError(error));
  }

  deliver(_request: UpstreamRequest, reply: Uint8Array): void {
    if (isNil(reply) && this.#next < this.shards.length) return this.#ask();
    this.reply = reply;
    this.client.complete(this);
  }
}

function startsWith(frame: Uint8Array, text: string): boolean {
  if (frame.length < text.length) return false;
  for (let i = 0; i < text.length; i++) if (frame[i] !== text.charCodeAt(i)) return false;
  return true;
}
