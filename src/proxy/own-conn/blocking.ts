/**
 * Blocking commands of one client (BLPOP and the like, XREAD/XREADGROUP with BLOCK, WAIT) on a
 * connection of the client's own, so a blocked client never delays anyone else's requests. The
 * command waits as long as Redis makes it wait (its own timeout, not `opTimeoutMs`); the link is
 * kept for the client's next blocking command on the same node and closed with the client, which
 * makes Redis forget a command still blocked.
 *
 * A MOVED or ASK on the link is followed like on shared connections (bounded by the backend's
 * `maxRedirects`). WAIT counts the
 * replicas that acknowledged the client's writes; its link carried none of them, so it first
 * runs a script that writes and deletes a key of the same node atomically: the link's replication
 * offset then covers everything the client wrote there before.
 */
import { Unavailable, type Backend, type NodeHandle } from "../../backend/contract.ts";
import type { Target } from "../routing/router.ts";
import { NO_READER, UpstreamRequest } from "../../backend/request.ts";
import { DedicatedLink, type DedicatedBudget } from "./dedicated.ts";
import { encodeCommand } from "../../resp/encode.ts";
import { errorKind, ErrorKind } from "../../resp/replies.ts";

const TOUCH_SCRIPT = "redis.call('SET', KEYS[1], '1') redis.call('DEL', KEYS[1]) return 1";

export interface BlockerHost {
  readonly protocol: 2 | 3;
  readonly budget: DedicatedBudget;
}

export class Blocker {
  #link: DedicatedLink | null = null;
  /** The backend each sent request belongs to, for redirects. */
  readonly #backends = new WeakMap<UpstreamRequest, Backend>();
  #closed = false;

  constructor(readonly host: BlockerHost) {}

  /** Send `request` (built from `target`, answered through its sink) on the client's link. */
  run(target: Target, request: UpstreamRequest): void {
    const node = target.backend.nodeFor(target.shard);
    if (node instanceof Unavailable) return request.sink.deliver(request, node.reply);
    const link = this.#linkTo(node);
    if (link instanceof Unavailable) return request.sink.deliver(request, link.reply);
    this.#backends.set(request, target.backend);
    const refused = (target.info.name === "WAIT" ? link.send(this.#touch(target, request)) : null) ?? link.send(request);
    if (refused) this.#refused(link, request, refused);
  }

  /** Close the link: a command still blocked is forgotten by Redis, and answered `-ERR <reason>`. */
  close(reason = "client closed"): void {
    this.#closed = true;
    this.#link?.close(reason);
    this.#link = null;
  }

  #linkTo(node: NodeHandle): DedicatedLink | Unavailable {
    const current = this.#link;
    if (current && !current.isDead && current.node === node) return current;
    current?.close("client moved on to another node");
    const opened = DedicatedLink.open(this.host.budget, node, this.host.protocol, {
      reply: (request, frame) => this.#onReply(request, frame),
      lost: () => {
        if (this.#link === opened) this.#link = null;
      },
    });
    if (opened instanceof DedicatedLink && !this.#closed) this.#link = opened;
    return opened;
  }

  #onReply(request: UpstreamRequest, frame: Uint8Array): void {
    const kind = errorKind(frame);
    const backend = this.#backends.get(request);
    const link = this.#link;
    if ((kind !== ErrorKind.Moved && kind !== ErrorKind.Ask) || !backend || !link || this.#closed) {
      return request.sink.deliver(request, frame);
    }
    const redirect = backend.redirect(frame, link.node, ++request.redirects);
    if (redirect === null) return request.sink.deliver(request, frame);
    if (redirect instanceof Unavailable) return request.sink.deliver(request, redirect.reply);
    const next = this.#linkTo(redirect.node);
    if (next instanceof Unavailable) return request.sink.deliver(request, next.reply);
    request.slot = redirect.slot;
    request.asking = redirect.ask;
    const refused = next.send(request);
    request.asking = false;
    if (refused) this.#refused(next, request, refused);
  }

  /** The link's node takes no more work (its cluster is closing, the connection died): answer, and let the link go. */
  #refused(link: DedicatedLink, request: UpstreamRequest, refused: Unavailable): void {
    if (this.#link === link) this.#link = null;
    link.close(refused.message);
    request.sink.deliver(request, refused.reply);
  }

  /** An atomic write-then-delete of a key on the target node, so WAIT covers the client's writes. */
  #touch(target: Target, request: UpstreamRequest): UpstreamRequest {
    const key = keyOnShard(target.backend, target.shard);
    const touch = new UpstreamRequest(encodeCommand(["EVAL", TOUCH_SCRIPT, "1", key]), target.shard, NO_READER, request.affinity);
    touch.resp3 = request.resp3;
    return touch;
  }
}

const keysByShard = new WeakMap<Backend, Map<number, string>>();

/** A key (`slotgate:wait:{N}`) that `backend` places on `shard`; found once per shard, then cached. */
function keyOnShard(backend: Backend, shard: number): string {
  let keys = keysByShard.get(backend);
  if (!keys) keysByShard.set(backend, (keys = new Map()));
  let key = keys.get(shard);
  if (key !== undefined) return key;
  const encoder = new TextEncoder();
  for (let n = 0; n < 1_000_000; n++) {
    const candidate = `slotgate:wait:{${n}}`;
    if (backend.shardOf(encoder.encode(candidate)) === shard) {
      key = candidate;
      break;
    }
  }
  key ??= "slotgate:wait";
  keys.set(shard, key);
  return key;
}
