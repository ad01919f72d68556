/**
 * The invariants on what clients received, client by client:
 *
 * - one reply per request, in order: a client hit by no fault of its own link gets every reply
 *   and is never disconnected; a faulted one gets a prefix of them (a subscription made as its
 *   cluster is retired is confirmed too: it follows its name to the cluster that serves it now);
 * - no client ever gets an internal error, a protocol error, or any error that mentions a scope
 *   (`internal-error`): bystanders of a fault must never see it, whatever connection they share;
 * - every error is a documented one (Redis's CLUSTERDOWN/TRYAGAIN/EXECABORT/UNBLOCKED, or the
 *   proxy's own `-ERR` about an upstream, a retired cluster or an aborted transaction);
 * - each reply is one Redis could have given: a GET sees nil or a value some SET wrote (sent
 *   before the reply came); INCRs of a counter never answer the same number twice (a command
 *   never runs twice); a transaction's EXEC answers its INCR's result only if MULTI and INCR were
 *   accepted, and that result is what the WATCHed key held plus one; EXEC answers nil only after a
 *   WATCH whose key something could have touched; a BLPOP gets an element pushed to its list
 *   (no element is popped twice), or nil once its timeout ran out; a WAIT answers how many
 *   replicas acknowledged (0 to the most a primary has), fewer than asked only once its timeout
 *   ran out; a subscription is confirmed with Redis's count (channels and patterns together); a
 *   message was published to a channel the client subscribed (a pmessage: to a channel its
 *   pattern matches), reaches it at most once per subscription, and in publish order;
 * - the protocol: a RESP3 client gets RESP3 (HELLO's map, nils as `_`, confirmations and messages
 *   as pushes), a RESP2 client never a RESP3 frame. Its replies are then judged as the RESP2 ones
 *   Redis would give (`asResp2`).
 */
import type { Check, SimClient, Txn } from "./client.ts";
import type { Oracle } from "./oracle.ts";
import { globMatch } from "../world/node-pubsub.ts";

export type Fail = (invariant: string, detail: string) => void;

/** Errors nobody did anything wrong to deserve: a fault of slotgate's own. */
const FORBIDDEN = /protocol error|scope|internal error|invariant/i;

/** The errors a client may get: Redis's own for these commands, and the proxy's documented ones. */
const DOCUMENTED = [
  /^-CLUSTERDOWN /,
  /^-TRYAGAIN /,
  /^-ERR upstream \S+ (did not answer within \d+ ms: the command may have been applied|did not accept a connection within \d+ ms: command not sent|is shutting down|was removed from the topology|unreachable: .+)\r\n$/,
  /^-ERR upstream \S+ is suspect \(a request got no reply within \d+ ms\): command not sent\r\n$/,
  /^-ERR upstream \S+ is not keeping up: /,
  /^-ERR upstream connection to \S+ (is closed|lost.*|reset after a timed-out request: the command may have been applied|did not accept a connection within \d+ ms: command not sent)\r\n$/,
  /^-ERR (MOVED|ASK) to \S+ not followed: /,
  /^-ERR cluster '\w+' (was removed|was replaced|is closing|is not configured)\r\n$/,
  /^-ERR slotgate is shutting down/,
  /^-ERR too many cluster redirections /,
  /^-ERR max number of dedicated upstream connections reached/,
  /^-ERR transaction aborted: .+\r\n$/,
  // A transaction's keys routed to another cluster than its WATCH (a config change between them).
  /^-ERR keys in request route to different clusters /,
];
const EXECABORT = "-EXECABORT Transaction discarded because of previous errors.\r\n";

const UNBLOCKED = /^-UNBLOCKED /;
/** Redis refuses WAIT on a replica (slotgate's view of a failover may lag by a refresh). */
const WAIT_ON_REPLICA = /^-ERR WAIT cannot be used with replica instances\. /;

export function documentedError(text: string): boolean {
  return DOCUMENTED.some((re) => re.test(text));
}

const BULK = /^\$(\d+)\r\n(.*)\r\n$/s;
const INTEGER = /^:(-?\d+)\r\n$/;
const RESP3_ONLY = /^[_>%~#,(=|]/;

/**
 * A reply as the RESP2 text the checks judge, and what is wrong with its protocol (null: nothing):
 * a RESP3 client's nil `_` becomes the nil RESP2 has for that command, its pushed confirmation an
 * array; a RESP2 nil or an array confirmation to it, or any RESP3 frame to a RESP2 client, is wrong.
 */
export function asResp2(text: string, check: Check, protocol: 2 | 3): { text: string; wrong: string | null } {
  if (protocol === 2) return { text, wrong: RESP3_ONLY.test(text) ? "a RESP3 frame to a RESP2 client" : null };
  if (text === "$-1\r\n" || text === "*-1\r\n") return { text, wrong: "a RESP2 nil to a RESP3 client" };
  if (text === "_\r\n") {
    if (check.kind === "get" || check.kind === "read") return { text: "$-1\r\n", wrong: null };
    if (check.kind === "exec" || check.kind === "blpop") return { text: "*-1\r\n", wrong: null };
  }
  if (check.kind === "subscribe") {
    if (text.startsWith(">")) return { text: `*${text.slice(1)}`, wrong: null };
    if (text.startsWith("*")) return { text, wrong: "a confirmation as an array to a RESP3 client, not a push" };
  }
  return { text, wrong: null };
}

/** Check every reply and message of `c`; return how many replies were errors. */
export function checkClient(c: SimClient, oracle: Oracle, fail: Fail): number {
  let errors = 0;
  const answered = Math.min(c.replies.length, c.reqs.length);
  if (c.replies.length > c.reqs.length) fail("one-reply-each", `client ${c.id}: ${c.reqs.length} requests, ${c.replies.length} replies`);
  else if (c.faultedAt === null) {
    if (c.closed) fail("client-closed", `client ${c.id} (${c.role}) did nothing wrong, and its connection was closed`);
    if (c.replies.length !== c.reqs.length) fail("one-reply-each", `client ${c.id} (${c.role}): ${c.reqs.length} requests, ${c.replies.length} replies; first unanswered: ${c.describe(c.replies.length)}`);
  }
  const texts: string[] = [];
  for (let i = 0; i < answered; i++) {
    const view = asResp2(c.replies[i]!.text, c.reqs[i]!.check, c.protocol);
    if (view.wrong !== null) fail("protocol", `${view.wrong}: ${c.describe(i)}`);
    texts.push(view.text);
  }
  for (let i = 0; i < answered; i++) {
    const text = texts[i]!;
    if (FORBIDDEN.test(text)) fail("internal-error", c.describe(i));
    if (text.startsWith("-")) errors++;
    checkReply(c, texts, i, oracle, fail);
  }
  checkMessages(c, oracle, fail);
  return errors;
}

function checkReply(c: SimClient, texts: string[], i: number, oracle: Oracle, fail: Fail): void {
  const req = c.reqs[i]!;
  const reply = c.replies[i]!;
  const text = texts[i]!;
  const check = req.check;
  const bad = (why: string) => fail("valid-reply", `${why}: ${c.describe(i)}`);
  if (text.startsWith("-")) {
    if (documentedError(text)) return;
    if (check.kind === "exec" && text === EXECABORT) return;
    if ((check.kind === "blpop" || check.kind === "wait") && UNBLOCKED.test(text)) return;
    if (check.kind === "wait" && WAIT_ON_REPLICA.test(text)) return;
    return bad("undocumented error");
  }
  switch (check.kind) {
    case "set":
    case "watch":
    case "multi":
    case "discard":
      if (text !== "+OK\r\n") bad("not +OK");
      return;
    case "queued":
      if (text !== "+QUEUED\r\n") bad("not +QUEUED");
      return;
    case "get":
      return checkGet(check.key, text, reply.at, oracle, bad);
    case "read":
      if (check.txn.getKey !== check.txn.key) return checkGet(check.txn.getKey!, text, reply.at, oracle, bad);
      if (text !== "$-1\r\n" && !/^\$\d+\r\n\d+\r\n$/.test(text)) bad("a counter holds no integer");
      return;
    case "incr": {
      const m = INTEGER.exec(text);
      if (!m || Number(m[1]) < 1) return bad("INCR answered no positive integer");
      return counted(check.key, Number(m[1]), c.describe(i), oracle, fail);
    }
    case "push":
      if (!INTEGER.test(text) || Number(INTEGER.exec(text)![1]) < 1) bad("a push answered no length");
      return;
    case "publish":
      if (!INTEGER.test(text)) bad("PUBLISH answered no count");
      return;
    case "exec":
      return checkExec(c, texts, check.txn, i, oracle, fail);
    case "blpop":
      return checkBlpop(c, texts, i, check.key, check.timeoutMs, oracle, bad);
    case "wait": {
      const m = INTEGER.exec(text);
      if (!m) return bad("WAIT answered no integer");
      const n = Number(m[1]);
      if (n < 0 || n > oracle.maxReplicas) return bad(`WAIT counted ${n} replicas (a primary has at most ${oracle.maxReplicas})`);
      if (n < check.replicas && reply.at - req.sentAt < check.timeoutMs) bad(`WAIT answered fewer replicas than asked before its timeout (${check.timeoutMs} ms)`);
      return;
    }
    case "hello":
      if (!text.startsWith("%") || !text.includes("$5\r\nproto\r\n:3\r\n")) bad("HELLO 3 answered no map with proto 3");
      return;
    case "subscribe": {
      const word = { channel: "subscribe", pattern: "psubscribe", shard: "ssubscribe" }[check.sub];
      const want = `*3\r\n$${word.length}\r\n${word}\r\n$${check.channel.length}\r\n${check.channel}\r\n:${check.count}\r\n`;
      if (text !== want) bad(`not ${JSON.stringify(want)}`);
      return;
    }
    case "ping":
      // A subscribed RESP2 client gets [pong, '']; RESP3 has no subscribed context.
      if (c.protocol === 2 ? text !== "*2\r\n$4\r\npong\r\n$0\r\n\r\n" : text !== "+PONG\r\n") bad("not the PING reply of a subscribed client");
      return;
  }
}

function checkGet(key: string, text: string, at: number, oracle: Oracle, bad: (why: string) => void): void {
  if (text === "$-1\r\n") return;
  const m = BULK.exec(text);
  if (!m || !oracle.written.get(key)?.has(m[2]!)) return bad("GET saw a value no SET wrote");
  if (oracle.valueSentAt.get(m[2]!)! > at) bad("GET saw a value before its SET was sent");
}

/** An INCR's result: never the same number twice for one counter of cluster a. */
function counted(key: string, n: number, what: string, oracle: Oracle, fail: Fail): void {
  if (key.startsWith("b:")) return; // each cluster b starts its counters again
  let seen = oracle.incremented.get(key);
  if (!seen) oracle.incremented.set(key, (seen = new Map()));
  const before = seen.get(n);
  if (before !== undefined) fail("valid-reply", `INCR ${key} answered ${n} twice: ${before} and ${what}`);
  else seen.set(n, what);
}

/** EXEC's reply against Redis's rules, given the replies of the transaction's other commands. */
function checkExec(c: SimClient, texts: string[], txn: Txn, i: number, oracle: Oracle, fail: Fail): void {
  const text = texts[i]!;
  const bad = (why: string) => fail("transaction", `${why}: ${c.describe(i)} after ${[txn.watchAt, txn.getAt, txn.multiAt, txn.incrAt].filter((j) => j >= 0).map((j) => c.describe(j)).join("; ")}`);
  const at = (j: number) => texts[j];
  if (text === "*-1\r\n") {
    if (!txn.watch) return bad("EXEC answered nil without WATCH");
    if (!oracle.disturbed(txn.key, c.id, c.reqs[txn.watchAt]!.sentAt, c.replies[i]!.at)) bad("EXEC answered nil though nothing could touch the watched key");
    return;
  }
  const m = /^\*1\r\n:(\d+)\r\n$/.exec(text);
  if (!m) return bad("EXEC answered neither its INCR's result, nil, nor an error");
  if (at(txn.multiAt) !== "+OK\r\n" || at(txn.incrAt) !== "+QUEUED\r\n") return bad("EXEC ran a transaction whose MULTI or INCR failed");
  const n = Number(m[1]);
  counted(txn.key, n, c.describe(i), oracle, fail);
  if (!txn.watch || txn.getKey !== txn.key || txn.watchAt < 0) return;
  if (at(txn.watchAt) !== "+OK\r\n") return;
  // A config change may route the GET to another cluster than the transaction's: not comparable.
  if (oracle.rerouted(c.reqs[txn.watchAt]!.sentAt, c.replies[i]!.at)) return;
  const read = at(txn.getAt);
  const held = read === "$-1\r\n" ? 0 : BULK.exec(read ?? "") ? Number(BULK.exec(read!)![2]) : null;
  if (held !== null && n !== held + 1) bad(`EXEC's INCR answered ${n}, but the watched key held ${held} when read inside the transaction`);
}

function checkBlpop(c: SimClient, texts: string[], i: number, key: string, timeoutMs: number, oracle: Oracle, bad: (why: string) => void): void {
  const reply = { text: texts[i]!, at: c.replies[i]!.at };
  if (reply.text === "*-1\r\n") {
    if (reply.at - c.reqs[i]!.sentAt < timeoutMs) bad(`BLPOP answered nil before its timeout (${timeoutMs} ms)`);
    return;
  }
  const m = /^\*2\r\n\$\d+\r\n(.*)\r\n\$\d+\r\n(.*)\r\n$/s.exec(reply.text);
  if (!m || m[1] !== key) return bad("BLPOP answered no [key, element] of its list");
  const pushed = oracle.pushed.get(m[2]!);
  if (!pushed || pushed.key !== key) return bad("BLPOP popped an element nobody pushed to that list");
  if (pushed.sentAt > reply.at) return bad("BLPOP popped an element before its push was sent");
  const before = oracle.popped.get(m[2]!);
  if (before !== undefined) return bad(`an element popped twice (first by ${before})`);
  oracle.popped.set(m[2]!, c.describe(i));
}

const MESSAGE = /^\*3\r\n\$\d+\r\n(s?message)\r\n\$\d+\r\n(.*)\r\n\$\d+\r\n(.*)\r\n$/s;
const PMESSAGE = /^\*4\r\n\$\d+\r\n(pmessage)\r\n\$\d+\r\n(.*?)\r\n\$\d+\r\n(.*?)\r\n\$\d+\r\n(.*)\r\n$/s;

/**
 * Messages: pushes to a RESP3 client, arrays to a RESP2 one; to a channel it subscribed, or a
 * pmessage to a channel a pattern it subscribed matches (before they came); published (before),
 * at most once per subscription, in publish order.
 */
function checkMessages(c: SimClient, oracle: Oracle, fail: Fail): void {
  const seen = new Set<string>();
  const last = new Map<string, { seq: number; sentAt: number; payload: string }>();
  for (const message of c.messages) {
    const what = `client ${c.id} got ${JSON.stringify(message.text)} at ${message.at}`;
    const push = message.text.startsWith(">");
    if (push !== (c.protocol === 3)) fail("protocol", `a message as ${push ? "a push to a RESP2" : "an array to a RESP3"} client: ${what}`);
    const text = `*${message.text.slice(1)}`;
    const p = PMESSAGE.exec(text);
    const m = p ? ([p[0], p[1], p[3], p[4]] as const) : MESSAGE.exec(text);
    if (!m) {
      fail("pubsub", `not a message frame: ${what}`);
      continue;
    }
    const [, word, channel, payload] = m as unknown as [string, string, string, string];
    const sub = word === "smessage" ? "shard" : p ? "pattern" : "channel";
    const name = p ? p[2]! : channel;
    const subscribed = c.reqs.some((r) => r.check.kind === "subscribe" && r.check.channel === name && r.check.sub === sub && r.sentAt <= message.at);
    if (!subscribed) fail("pubsub", `a message of a ${sub} it did not subscribe: ${what}`);
    if (p && !globMatch(name, channel)) fail("pubsub", `a pmessage whose pattern does not match its channel: ${what}`);
    const published = oracle.published.get(payload);
    if (!published || published.channel !== channel) {
      fail("pubsub", `a message nobody published to that channel: ${what}`);
      continue;
    }
    if (published.sentAt > message.at) fail("pubsub", `a message before it was published: ${what}`);
    const once = `${sub}|${name}|${payload}`;
    if (seen.has(once)) fail("pubsub", `a message delivered twice: ${what}`);
    seen.add(once);
    // Two messages of one publisher: the later one (sent after the earlier's reply) comes later.
    // Not when the earlier's reply was an error: a PUBLISH whose connection was reset after it
    // timed out "may have been applied", at any later time (its bytes may still reach the node).
    const key = `${published.publisher}|${sub}|${name}|${channel}`;
    const previous = last.get(key);
    const knownApplied = !published.reply()?.startsWith("-");
    if (previous && knownApplied && previous.seq > published.seq && oracle.published.get(previous.payload)!.sentAt >= published.repliedAt()) {
      fail("pubsub", `messages out of publish order (${previous.payload} before ${payload}): ${what}`);
    }
    if (!previous || published.seq > previous.seq) last.set(key, { seq: published.seq, sentAt: published.sentAt, payload });
  }
}
