/**
 * Name resolution on Deno: `lookup` on Deno's native `Deno.resolveDns`, asking for A and AAAA
 * records at once. resolveDns asks DNS servers only, not /etc/hosts, so "localhost" falls back to
 * 127.0.0.1 when the servers do not know it. IP literals are answered without asking.
 */
import { raceAbort } from "../shared/abort.ts";
import { ipLiteral } from "../shared/address.ts";
import { AbortError, LookupError } from "../shared/errors.ts";

/** The addresses of `hostname`, IPv4 first; rejects with `LookupError`, or `AbortError` on abort. */
export async function lookup(hostname: string, signal: AbortSignal): Promise<string[]> {
  const what = `lookup of '${hostname}'`;
  if (signal.aborted) throw new AbortError(what, signal.reason);
  const literal = ipLiteral(hostname);
  if (literal) return [literal];
  // resolveDns honours the signal, but the race still guarantees a prompt AbortError.
  const query = (type: "A" | "AAAA") =>
    Deno.resolveDns(hostname, type, { signal }).then(
      (addresses) => ({ addresses, error: undefined }),
      (error: unknown) => ({ addresses: [] as string[], error }),
    );
  const [v4, v6] = await raceAbort(Promise.all([query("A"), query("AAAA")]), signal, what);
  if (signal.aborted) throw new AbortError(what, signal.reason);
  const addresses = [...new Set([...v4.addresses, ...v6.addresses])];
  if (addresses.length > 0) return addresses;
  // resolveDns asks DNS servers only, not /etc/hosts.
  if (hostname.toLowerCase() === "localhost") return ["127.0.0.1"];
  throw new LookupError(hostname, v4.error ?? v6.error ?? new Error("no addresses"));
}
