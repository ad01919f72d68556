/**
 * Addresses as text: `host:port` parsed and formatted (IPv6 bracketed), and the predicates shared
 * by configuration checks, discovery and the admin API.
 */

/**
 * Whether `host` names the loopback interface: `localhost`, an IPv4 address in 127.0.0.0/8, or
 * IPv6 `::1` (any spelling, brackets and zone allowed) or `::ffff:127.x.y.z`. Anything else —
 * `0.0.0.0`, `::`, the empty string, other names — is not.
 */
export function isLoopbackHost(host: string): boolean {
  let h = host.trim().toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  if (h === "localhost") return true;
  const v4 = parseIPv4(h);
  if (v4) return v4[0] === 127;
  const v6 = parseIPv6(h.replace(/%.*$/, ""));
  if (!v6) return false;
  if (v6.slice(0, 7).every((g) => g === 0) && v6[7] === 1) return true;
  // IPv4-mapped ::ffff:a.b.c.d
  return v6.slice(0, 5).every((g) => g === 0) && v6[5] === 0xffff && v6[6]! >> 8 === 127;
}

function parseIPv4(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const octets = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  return octets.every((o) => o <= 255) ? octets : null;
}

/** The eight 16-bit groups of an IPv6 address, or null. */
function parseIPv6(text: string): number[] | null {
  if (!text.includes(":")) return null;
  let tail: number[] = [];
  let body = text;
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    const v4 = parseIPv4(text.slice(lastColon + 1));
    if (!v4) return null;
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    body = text.slice(0, lastColon + 1);
    if (!body.endsWith("::")) body = body.slice(0, -1);
  }
  const halves = body.split("::");
  if (halves.length > 2) return null;
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  const words = [...head, ...rest];
  if (!words.every((w) => /^[0-9a-f]{1,4}$/.test(w))) return null;
  const explicit = words.length + tail.length;
  if (halves.length === 1 ? explicit !== 8 : explicit > 7) return null;
  const zeros = new Array<number>(8 - explicit).fill(0);
  return [...head.map((w) => parseInt(w, 16)), ...zeros, ...rest.map((w) => parseInt(w, 16)), ...tail];
}

/** "host:port", with IPv6 hosts bracketed. */
export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Parse "host:port" or "[v6]:port"; null when malformed. Port 0 only with `allowPortZero`. */
export function parseAddress(value: string, allowPortZero = false): { host: string; port: number } | null {
  const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value.trim());
  if (!match) return null;
  const port = Number(match[3]);
  if (port < (allowPortZero ? 0 : 1) || port > 65535) return null;
  return { host: (match[1] ?? match[2])!, port };
}

/** True for an IPv4 or IPv6 literal (no DNS lookup needed). */
export function isIpLiteral(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":");
}
