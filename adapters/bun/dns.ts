/**
 * Name resolution on Bun: `lookup` on Bun's native `Bun.dns.lookup`, with Bun's `DNS_`-prefixed
 * error codes normalised to the usual ENOTFOUND, EAI_AGAIN and the like. IP literals are answered
 * without asking.
 */
import { raceAbort } from "../shared/abort.ts";
import { ipLiteral, ipv4First } from "../shared/address.ts";
import { AbortError, codeOf, LookupError } from "../shared/errors.ts";

/** The addresses of `hostname`, IPv4 first; rejects with `LookupError`, or `AbortError` on abort. */
export async function lookup(hostname: string, signal: AbortSignal): Promise<string[]> {
  const what = `lookup of '${hostname}'`;
  if (signal.aborted) throw new AbortError(what, signal.reason);
  const literal = ipLiteral(hostname);
  if (literal) return [literal];
  // Bun's resolver cannot be cancelled; the race makes the abort prompt and drops the late answer.
  const resolved = Bun.dns.lookup(hostname).catch((e: unknown) => {
    // Bun spells resolver codes with a prefix (DNS_ENOTFOUND); callers see the usual ENOTFOUND.
    throw new LookupError(hostname, e, codeOf(e)?.replace(/^DNS_/, ""));
  });
  const records = await raceAbort(resolved, signal, what);
  const addresses = ipv4First(records);
  if (addresses.length === 0) throw new LookupError(hostname, new Error("no addresses"));
  return addresses;
}
