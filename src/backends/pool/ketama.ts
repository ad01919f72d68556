/**
 * Ketama consistent hashing for "standalone" upstreams (plain Redis servers, no CLUSTER), placing
 * keys exactly as twemproxy (nutcracker) does with `distribution: ketama`, so that a pool moved
 * from twemproxy to slotgate keeps every key on the server it was on.
 *
 * What twemproxy does, and so what this file reproduces (nc_ketama.c, nc_server.c, hashkit):
 *
 * - Continuum. Each live server gets `floor(pct * 40 * liveServers)` hashes, where
 *   `pct = weight / totalLiveWeight`, all computed in C `float` (single precision: on x86-64 the
 *   float rounding makes e.g. 25 equal servers get 39 hashes each, not 40; Math.fround reproduces
 *   it). Hash number i (0-based) is the MD5 of the bytes `"<name>-<i>"`, and each digest yields 4
 *   points: its four 32-bit little-endian words. The points are sorted by value.
 * - Server name. The string twemproxy hashes is the server's configured name (`host:port:weight
 *   name`), or else `host:port`, or just `host` when the port is 11211 (libmemcached's
 *   convention): see {@link twemproxyServerName}.
 * - Dispatch. The key, or with `hash_tag` the bytes between the first tag-open byte and the next
 *   tag-close byte after it when at least one byte lies between, is hashed to 32 bits with the
 *   pool's `hash` (default `fnv1a_64`); the key goes to the server of the first point whose value
 *   is >= the hash, wrapping to the first point past the end. An empty key hashes to 0. A pool of
 *   one server always answers that server.
 * - Ejected servers (`auto_eject_hosts`) get no points and are left out of the live count and the
 *   total weight, but keep their index.
 *
 * Known limits of the match: points with equal values are ordered by server index here, while
 * twemproxy's qsort leaves their order unspecified (a 32-bit collision between two servers' points
 * is rare, and matters only for a key hashing to exactly that value); names whose `"<name>-<i>"`
 * exceeds 85 bytes overflow twemproxy's fixed buffer (undefined behaviour there), so are not
 * comparable; and the fnv hashes read key bytes as C `char`, which is signed on x86-64 (the
 * default here) but unsigned on e.g. arm64 Linux: see {@link KetamaOptions.signedChar}.
 */
import { md5 } from "./md5.ts";

/** Key hash functions, by their twemproxy `hash:` names. */
export type KetamaHash = "fnv1a_64" | "fnv1_64" | "fnv1a_32" | "fnv1_32" | "md5";

/** Every supported `hash:` name (for config validation). */
export const KETAMA_HASHES: readonly KetamaHash[] = ["fnv1a_64", "fnv1_64", "fnv1a_32", "fnv1_32", "md5"];

/** One upstream of a ketama pool. */
export interface KetamaServer {
  /** The string hashed onto the continuum: twemproxy's server name (see {@link twemproxyServerName}). */
  name: string;
  /** Positive integer weight (twemproxy's `host:port:weight`); default 1. */
  weight?: number;
  /** Ejected (twemproxy's auto_eject_hosts): no points, left out of the live count and total weight. */
  ejected?: boolean;
}

export interface KetamaOptions {
  /** Key hash, twemproxy's `hash:`; default `fnv1a_64`, twemproxy's default. */
  hash?: KetamaHash;
  /** Twemproxy's `hash_tag:`: two single-byte characters, e.g. `"{}"`. Default: none (whole key). */
  hashTag?: string;
  /**
   * Whether the fnv hashes treat key bytes >= 0x80 as negative C `char`s (sign-extended before
   * the XOR), as twemproxy built for x86/x86-64 does. Default true; set false to match a build for
   * a platform whose `char` is unsigned (arm64/ppc64/s390x Linux). No effect on ASCII keys or md5.
   */
  signedChar?: boolean;
}

/** Twemproxy's default port for which the port is left out of the hashed name. */
const KETAMA_DEFAULT_PORT = 11211;
/** Hashes per server at weight share 1/n: 160 points, 4 per MD5 digest. */
const HASHES_PER_SERVER = 40;
const POINTS_PER_HASH = 4;

const utf8 = new TextEncoder();

/**
 * The name twemproxy hashes for a server configured as `host:port:weight [name]`: the explicit
 * name when given, else `host:port`, else just `host` when the port is 11211.
 */
export function twemproxyServerName(host: string, port: number, name?: string): string {
  if (name !== undefined && name !== "") return name;
  return port === KETAMA_DEFAULT_PORT ? host : `${host}:${port}`;
}

/** A key byte as twemproxy's `(uint32_t)(char)b`: sign-extended when `signedChar`. */
function charValue(b: number, signedChar: boolean): number {
  return signedChar && b >= 0x80 ? b | 0xffffff00 : b;
}

/**
 * Twemproxy's `fnv1a_64`: FNV-1a over 64 bits (offset basis 0xcbf29ce484222325, prime
 * 0x100000001b3) truncated to its low 32 bits. The low 32 bits of a 64-bit product depend only on
 * the low 32 bits of its factors, so the whole run is done mod 2^32 (basis 0x84222325, prime
 * 0x1b3), as twemproxy itself does.
 */
export function hashFnv1a64(key: Uint8Array, start = 0, end = key.length, signedChar = true): number {
  let h = 0x84222325 | 0;
  for (let i = start; i < end; i++) h = Math.imul(h ^ charValue(key[i]!, signedChar), 0x1b3);
  return h >>> 0;
}

/** Twemproxy's `fnv1_64`: FNV-1 (multiply, then XOR) over 64 bits, truncated to 32. */
export function hashFnv164(key: Uint8Array, start = 0, end = key.length, signedChar = true): number {
  let h = 0x84222325 | 0;
  for (let i = start; i < end; i++) h = Math.imul(h, 0x1b3) ^ charValue(key[i]!, signedChar);
  return h >>> 0;
}

/** Twemproxy's `fnv1a_32`: 32-bit FNV-1a (basis 0x811c9dc5, prime 0x01000193). */
export function hashFnv1a32(key: Uint8Array, start = 0, end = key.length, signedChar = true): number {
  let h = 0x811c9dc5 | 0;
  for (let i = start; i < end; i++) h = Math.imul(h ^ charValue(key[i]!, signedChar), 0x01000193);
  return h >>> 0;
}

/** Twemproxy's `fnv1_32`: 32-bit FNV-1. */
export function hashFnv132(key: Uint8Array, start = 0, end = key.length, signedChar = true): number {
  let h = 0x811c9dc5 | 0;
  for (let i = start; i < end; i++) h = Math.imul(h, 0x01000193) ^ charValue(key[i]!, signedChar);
  return h >>> 0;
}

/** Word `word` (0..3) of a 16-byte digest, little-endian, unsigned. */
function digestWord(d: Uint8Array, word: number): number {
  const o = word * 4;
  return (d[o]! | (d[o + 1]! << 8) | (d[o + 2]! << 16) | (d[o + 3]! << 24)) >>> 0;
}

/** Twemproxy's `md5` key hash: the first 4 bytes of the key's MD5, little-endian. */
export function hashMd5(key: Uint8Array, start = 0, end = key.length): number {
  return digestWord(md5(start === 0 && end === key.length ? key : key.subarray(start, end)), 0);
}

type RangeHash = (key: Uint8Array, start: number, end: number) => number;

function keyHashFunction(hash: KetamaHash, signedChar: boolean): RangeHash {
  switch (hash) {
    case "fnv1a_64": return (k, s, e) => hashFnv1a64(k, s, e, signedChar);
    case "fnv1_64": return (k, s, e) => hashFnv164(k, s, e, signedChar);
    case "fnv1a_32": return (k, s, e) => hashFnv1a32(k, s, e, signedChar);
    case "fnv1_32": return (k, s, e) => hashFnv132(k, s, e, signedChar);
    case "md5": return hashMd5;
    default: throw new Error(`ketama: unknown hash ${JSON.stringify(hash)} (one of ${KETAMA_HASHES.join(", ")})`);
  }
}

/**
 * Hashes (4 points each) twemproxy gives a server of weight `weight` out of `totalWeight` among
 * `live` live servers, with its single-precision arithmetic:
 * `floorf((float)(pct * 160 / 4 * (float)live + 1e-10))` where `pct = (float)weight / (float)total`.
 */
export function ketamaHashCount(weight: number, totalWeight: number, live: number): number {
  const f = Math.fround;
  const pct = f(f(weight) / f(totalWeight));
  const perServer = f(f(pct * (HASHES_PER_SERVER * POINTS_PER_HASH)) / POINTS_PER_HASH);
  return Math.floor(f(f(perServer * f(live)) + 0.0000000001));
}

/** A ketama continuum over a fixed list of servers; build a new one when the list changes. */
export class KetamaRing {
  /** Number of servers (live and ejected); serverFor answers an index below it. */
  readonly size: number;
  /** Sorted point values. */
  private readonly values: Uint32Array;
  /** Server index of each point, parallel to values. */
  private readonly owners: Int32Array;
  private readonly keyHash: RangeHash;
  private readonly tagOpen: number;
  private readonly tagClose: number;

  constructor(servers: readonly KetamaServer[], options: KetamaOptions = {}) {
    if (servers.length === 0) throw new Error("ketama: no servers");
    this.size = servers.length;
    this.keyHash = keyHashFunction(options.hash ?? "fnv1a_64", options.signedChar ?? true);

    this.tagOpen = this.tagClose = -1;
    if (options.hashTag !== undefined && options.hashTag !== "") {
      const tag = utf8.encode(options.hashTag);
      if (tag.length !== 2) throw new Error(`ketama: hashTag must be two single-byte characters, got ${JSON.stringify(options.hashTag)}`);
      this.tagOpen = tag[0]!;
      this.tagClose = tag[1]!;
    }

    let live = 0;
    let totalWeight = 0;
    for (const s of servers) {
      const w = s.weight ?? 1;
      if (!Number.isInteger(w) || w <= 0 || w > 0xffffffff) {
        throw new Error(`ketama: server ${JSON.stringify(s.name)} has weight ${w}; weights are positive integers`);
      }
      if (s.ejected) continue;
      live++;
      totalWeight += w;
    }

    const values: number[] = [];
    const owners: number[] = [];
    if (live > 0) {
      servers.forEach((s, index) => {
        if (s.ejected) return;
        const hashes = ketamaHashCount(s.weight ?? 1, totalWeight, live);
        for (let i = 0; i < hashes; i++) {
          const digest = md5(utf8.encode(`${s.name}-${i}`));
          for (let word = 0; word < POINTS_PER_HASH; word++) {
            values.push(digestWord(digest, word));
            owners.push(index);
          }
        }
      });
    }
    const order = values.map((_, i) => i);
    order.sort((a, b) => values[a]! - values[b]! || owners[a]! - owners[b]!);
    this.values = Uint32Array.from(order, (i) => values[i]!);
    this.owners = Int32Array.from(order, (i) => owners[i]!);
  }

  /** Number of points on the continuum (4 per hash; 160 per server for equal weights, mostly). */
  get points(): number {
    return this.values.length;
  }

  /**
   * The 32-bit hash twemproxy dispatches `key` by: the configured hash of the key or of its hash
   * tag's content; 0 for an empty key.
   */
  hashOf(key: Uint8Array): number {
    let start = 0;
    let end = key.length;
    if (this.tagOpen >= 0) {
      const open = key.indexOf(this.tagOpen);
      if (open >= 0) {
        const close = key.indexOf(this.tagClose, open + 1);
        if (close > open + 1) {
          start = open + 1;
          end = close;
        }
      }
    }
    return end === start ? 0 : this.keyHash(key, start, end);
  }

  /** Index (into the constructor's servers) of the server holding `key`; -1 when every server is ejected. */
  serverFor(key: Uint8Array): number {
    if (this.size === 1) return 0;
    return this.serverForHash(this.hashOf(key));
  }

  /** Index of the server owning the first point >= `hash` (wrapping); -1 with no points. */
  serverForHash(hash: number): number {
    const values = this.values;
    const n = values.length;
    if (n === 0) return -1;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (values[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    return this.owners[lo === n ? 0 : lo]!;
  }
}
