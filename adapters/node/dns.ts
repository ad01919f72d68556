/**
 * Name resolution on Node: `lookup` on getaddrinfo (node:dns `lookup`, which reads /etc/hosts
 * like every other program on the host). IP literals are answered without asking, as decided by
 * `net.isIP`, the same test `net.connect` applies.
 */
import { isIP } from "node:net";
import { lookup as dnsLookup } from "node:dns/promises";
import { raceAbort } from "../shared/abort.ts";
import { ipLiteral, ipv4First } from "../shared/address.ts";
import { AbortError, LookupError } from "../shared/errors.ts";

/** The addresses of `hostname`, IPv4 first; rejects with `LookupError`, or `AbortError` on abort. */
export async function lookup(hostname: string, signal: AbortSignal): Promise<string[]> {
  if (signal.aborted) throw new AbortError(`lookup of '${hostname}'`, signal.reason);
  const literal = ipLiteral(hostname, (text) => isIP(text) !== 0);
  if (literal) return [literal];
  // getaddrinfo cannot be cancelled; the race makes the abort prompt and drops the late answer.
  const resolved = dnsLookup(hostname, { all: true }).catch((e: unknown) => {
    throw new LookupError(hostname, e);
  });
  const records = await raceAbort(resolved, signal, `lookup of '${hostname}'`);
  const addresses = ipv4First(records);
  if (addresses.length === 0) throw new LookupError(hostname, new Error("no addresses"));
  return addresses;
}
