/**
 * IP address literals and resolver answers, as every adapter's `lookup` treats them: a literal
 * (bracketed IPv6 included) resolves to itself without asking a resolver, and resolved addresses
 * come IPv4 first, each once, as the `Runtime` contract asks.
 */

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * Whether `text` is an IPv4 dotted quad (each part at most 255) or an IPv6 address the WHATWG URL
 * parser accepts. Pure, so Bun, Deno and the simulator agree on it.
 */
export function isIpAddress(text: string): boolean {
  if (IPV4.test(text)) return text.split(".").every((n) => Number(n) <= 255);
  if (!text.includes(":")) return false;
  try {
    new URL(`http://[${text}]/`);
    return true;
  } catch {
    return false;
  }
}

/**
 * The address `hostname` spells literally ("10.0.0.1", "::1", or "[::1]" as "::1"), or undefined
 * when it is a name to resolve. `isIp` decides what an address is: the Node adapter passes
 * `net.isIP`, so its `lookup` agrees with what its own `net.connect` takes as a literal.
 */
export function ipLiteral(hostname: string, isIp: (text: string) => boolean = isIpAddress): string | undefined {
  const bare = hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname;
  return isIp(bare) ? bare : undefined;
}

/** A resolver's answer for one address, as getaddrinfo-style resolvers report it. */
export interface ResolvedAddress {
  address: string;
  /** 4 or 6. */
  family: number;
}

/** The addresses of `records`, IPv4 first, each once, otherwise in the resolver's order. */
export function ipv4First(records: readonly ResolvedAddress[]): string[] {
  const v4 = records.filter((r) => r.family === 4).map((r) => r.address);
  const v6 = records.filter((r) => r.family !== 4).map((r) => r.address);
  return [...new Set([...v4, ...v6])];
}
