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
 *   (no element is popped twice), or nil once its timeout ran out; a subscription is confirmed
 *   with Redis's count; a message was published to a channel the client subscribed, reaches it
 *   at most once, and in publish order.
 */
import type { SimClient, Txn } from "./client.ts";
import type { Oracle } from "./oracle.ts";

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

export function documentedError(text: string): boolean {
  return DOCUMENTED.some((re) => re.test(text));
}

const BULK = /^\$(\d+)\r\n(.*)\r\n$/s;
const INTEGER = /^:(-?\d+)\r\n$/;

/** Check every reply and message of `c`; return how many replies were errors. */
export function checkClient(c: SimClient, oracle: Oracle, fail: Fail): number {
  let errors = 0;
  const answered = Math.min(c.replies.length, c.reqs.length);
  if (c.replies.length > c.reqs.length) fail("one-reply-each", `client ${c.id}: ${c.reqs.length} requests, ${c.replies.length} replies`);
  else if (c.faultedAt === null) {
    if (c.closed) fail("client-closed", `client ${c.id} (${c.role}) did nothing wrong, and its connection was closed`);
    if (c.replies.length !== c.reqs.length) fail("one-reply-each", `client ${c.id} (${c.role}): ${c.reqs.length} requests, ${c.replies.length} replies; first unanswered: ${c.describe(c.replies.length)}`);
  }
  for (let i = 0; i < answered; i++) {
    const text = c.replies[i]!.text;
    const kind = c.reqs[i]!.check.kind;
    if (FORBIDDEN.test(text)) fail("internal-error", c.describe(i));
    if (text.startsWith("-")) errors++;
    checkReply(c, i, oracle, fail);
  }
  checkMessages(c, oracle, fail);
  return errors;
}

function checkReply(c: SimClient, i: number, oracle: Oracle, fail: Fail): void {
  const req = c.reqs[i]!;
  const reply = c.replies[i]!;
  const text = reply.text;
  const check = req.check;
  const bad = (why: string) => fail("valid-reply", `${why}: ${c.describe(i)}`);
  if (text.startsWith("-")) {
    if (documentedError(text)) return;
    if (check.kind === "exec" && text === EXECABORT) return;
    if (check.kind === "blpop" && UNBLOCKED.test(text)) return;
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
      return checkExec(c, check.txn, i, oracle, fail);
    case "blpop":
      return checkBlpop(c, i, check.key, check.timeoutMs, oracle, bad);
    case "subscribe": {
      const word = check.shard ? "ssubscribe" : "subscribe";
      const want = `*3\r\n$${word.length}\r\n${word}\r\n$${check.channel.length}\r\n${check.channel}\r\n:${check.count}\r\n`;
      if (text !== want) bad(`not ${JSON.stringify(want)}`);
      return;
    }
    case "ping":
      if (text !== "*2\r\n$4\r\npong\r\n$0\r\n\r\n") bad("not a subscribed PING's [pong, '']");
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
function checkExec(c: SimClient, txn: Txn, i: number, oracle: Oracle, fail: Fail): void {
  const text = c.replies[i]!.text;
  const bad = (why: string) => fail("transaction", `${why}: ${c.describe(i)} after ${[txn.watchAt, txn.getAt, txn.multiAt, txn.incrAt].filter((j) => j >= 0).map((j) => c.describe(j)).join("; ")}`);
  const at = (j: number) => c.replies[j]?.text;
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

function checkBlpop(c: SimClient, i: number, key: string, timeoutMs: number, oracle: Oracle, bad: (why: string) => void): void {
  const reply = c.replies[i]!;
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

/** Messages: to a channel it subscribed (before they came), published (before), at most once, in order. */
function checkMessages(c: SimClient, oracle: Oracle, fail: Fail): void {
  const seen = new Set<string>();
  const last = new Map<string, { seq: number; sentAt: number; payload: string }>();
  for (const message of c.messages) {
    const m = /^\*3\r\n\$\d+\r\n(s?message)\r\n\$\d+\r\n(.*)\r\n\$\d+\r\n(.*)\r\n$/s.exec(message.text);
    const what = `client ${c.id} got ${JSON.stringify(message.text)} at ${message.at}`;
    if (!m) {
      fail("pubsub", `not a message frame: ${what}`);
      continue;
    }
    const [, word, channel, payload] = m as unknown as [string, string, string, string];
    const shard = word === "smessage";
    const subscribed = c.reqs.some((r) => r.check.kind === "subscribe" && r.check.channel === channel && r.check.shard === shard && r.sentAt <= message.at);
    if (!subscribed) fail("pubsub", `a message of a channel it did not subscribe: ${what}`);
    const published = oracle.published.get(payload);
    if (!published || published.channel !== channel) {
      fail("pubsub", `a message nobody published to that channel: ${what}`);
      continue;
    }
    if (published.sentAt > message.at) fail("pubsub", `a message before it was published: ${what}`);
    if (seen.has(payload)) fail("pubsub", `a message delivered twice: ${what}`);
    seen.add(payload);
    // Two messages of one publisher: the later one (sent after the earlier's reply) comes later.
    const key = `${published.publisher}|${channel}`;
    const previous = last.get(key);
    if (previous && previous.seq > published.seq && oracle.published.get(previous.payload)!.sentAt >= published.repliedAt()) {
      fail("pubsub", `messages out of publish order (${previous.payload} before ${payload}): ${what}`);
    }
    if (!previous || published.seq > previous.seq) last.set(key, { seq: published.seq, sentAt: published.sentAt, payload });
  }
}

