/**
 * What a run exercised, counted from its clients' replies: the CLI sums it over a sweep and the
 * tests require the fixed seeds to reach each kind, so a change that stops the scenarios from
 * reaching something shows.
 */
import type { SimClient } from "./client.ts";
import { asResp2 } from "./checks.ts";

export interface Coverage {
  transactions: number;
  execRan: number;
  execNil: number;
  execAborted: number;
  blpops: number;
  blpopValues: number;
  blpopTimeouts: number;
  messages: number;
  /** Messages to a pattern subscription (PSUBSCRIBE). */
  pmessages: number;
  /** WAITs answered a count; those that counted fewer replicas than asked (their timeout ran out). */
  waits: number;
  waitsShort: number;
  /** Clients that said HELLO 3 and got RESP3 from then on. */
  resp3Clients: number;
  clientFaults: number;
  retired: number;
  /** A transaction's command refused because its cluster was replaced or removed under it. */
  abortedByRetirement: number;
  /** Write flushes dropped by a scope torn down just after they were deferred (a known finding: see explorer.ts). */
  droppedFlushes: number;
}

export function noCoverage(): Coverage {
  return { transactions: 0, execRan: 0, execNil: 0, execAborted: 0, blpops: 0, blpopValues: 0, blpopTimeouts: 0, messages: 0, pmessages: 0, waits: 0, waitsShort: 0, resp3Clients: 0, clientFaults: 0, retired: 0, abortedByRetirement: 0, droppedFlushes: 0 };
}

export function tally(coverage: Coverage, clients: SimClient[], retired: number): void {
  coverage.retired = retired;
  for (const c of clients) {
    if (c.faultedAt !== null) coverage.clientFaults++;
    coverage.messages += c.messages.length;
    coverage.pmessages += c.messages.filter((m) => m.text.slice(1).startsWith("4\r\n$8\r\npmessage\r\n")).length;
    if (c.protocol === 3 && c.replies[0]?.text.startsWith("%")) coverage.resp3Clients++;
    c.reqs.forEach((req, i) => {
      const raw = c.replies[i]?.text;
      if (raw === undefined) return;
      const text = asResp2(raw, req.check, c.protocol).text;
      if (/^-ERR transaction aborted: cluster '\w+' was (replaced|removed); retry the transaction/.test(text)) coverage.abortedByRetirement++;
      if (req.check.kind === "exec") {
        coverage.transactions++;
        if (text.startsWith("*1")) coverage.execRan++;
        else if (text === "*-1\r\n") coverage.execNil++;
        else coverage.execAborted++;
      } else if (req.check.kind === "blpop") {
        coverage.blpops++;
        if (text.startsWith("*2")) coverage.blpopValues++;
        else if (text === "*-1\r\n") coverage.blpopTimeouts++;
      } else if (req.check.kind === "wait" && text.startsWith(":")) {
        coverage.waits++;
        if (Number(text.slice(1, -2)) < req.check.replicas) coverage.waitsShort++;
      }
    });
  }
}
