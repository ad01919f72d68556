import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { md5 } from "../../src/backends/pool/md5.ts";
import {
  hashFnv132,
  hashFnv164,
  hashFnv1a32,
  hashFnv1a64,
  hashMd5,
  KETAMA_HASHES,
  ketamaHashCount,
  KetamaRing,
  twemproxyServerName,
  type KetamaHash,
  type KetamaServer,
} from "../../src/backends/pool/ketama.ts";

const te = new TextEncoder();
const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** xorshift32: reproducible pseudo-random bytes, so a failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>>= 0);
  };
}

function randomBytes(next: () => number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = next() & 0xff;
  return out;
}

/** `count` random keys of 8..24 bytes. */
function randomKeys(seed: number, count: number): Uint8Array[] {
  const next = prng(seed);
  return Array.from({ length: count }, () => randomBytes(next, 8 + (next() % 17)));
}

const nodeMd5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("hex");

describe("md5", () => {
  test("RFC 1321 test suite", () => {
    const vectors: [string, string][] = [
      ["", "d41d8cd98f00b204e9800998ecf8427e"],
      ["a", "0cc175b9c0f1b6a831c399e269772661"],
      ["abc", "900150983cd24fb0d6963f7d28e17f72"],
      ["message digest", "f96b697d7cb7938d525a2f31aaf161d0"],
      ["abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"],
      ["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"],
      ["1234567890".repeat(8), "57edf4a22be3c955ac49da2e2107b67a"],
    ];
    for (const [input, digest] of vectors) assert.equal(hex(md5(te.encode(input))), digest, `md5(${JSON.stringify(input)})`);
  });

  test("matches node:crypto on random inputs of every padding case", () => {
    const next = prng(0x5eed);
    // Every length up to three blocks covers one- and two-block tails (55/56, 63/64, 119/120).
    for (let length = 0; length <= 200; length++) {
      const input = randomBytes(next, length);
      assert.equal(hex(md5(input)), nodeMd5(input), `length ${length}`);
    }
    for (const length of [1000, 4096, 65_537, 1_000_003]) {
      const input = randomBytes(next, length);
      assert.equal(hex(md5(input)), nodeMd5(input), `length ${length}`);
    }
  });

  test("hashes a view by its own bytes and returns a fresh digest", () => {
    const buf = te.encode("xxabcxx");
    const a = md5(buf.subarray(2, 5));
    const b = md5(te.encode("abc"));
    assert.equal(hex(a), "900150983cd24fb0d6963f7d28e17f72");
    assert.notEqual(a, b, "each call returns its own array");
    assert.equal(hex(a), hex(b));
  });
});

/**
 * FNV reference straight from the definition, over 64 (or 32) bits with BigInt, truncated to 32
 * bits as twemproxy does. `signedChar` XORs bytes >= 0x80 sign-extended, as C `(uint64_t)(char)b`
 * on x86-64.
 */
function fnvReference(bytes: Uint8Array, bits: 32 | 64, variant: "fnv1" | "fnv1a", signedChar: boolean): number {
  const mask = (1n << BigInt(bits)) - 1n;
  const basis = bits === 64 ? 0xcbf29ce484222325n : 0x811c9dc5n;
  const prime = bits === 64 ? 0x100000001b3n : 0x01000193n;
  let h = basis;
  for (const b of bytes) {
    const v = (signedChar && b >= 0x80 ? mask ^ 0xffn : 0n) | BigInt(b);
    if (variant === "fnv1a") h = ((h ^ v) * prime) & mask;
    else h = ((h * prime) & mask) ^ v;
  }
  return Number(h & 0xffffffffn);
}

describe("fnv key hashes", () => {
  const fns = [
    ["fnv1a_64", hashFnv1a64, 64, "fnv1a"],
    ["fnv1_64", hashFnv164, 64, "fnv1"],
    ["fnv1a_32", hashFnv1a32, 32, "fnv1a"],
    ["fnv1_32", hashFnv132, 32, "fnv1"],
  ] as const;

  test("published FNV test values (low 32 bits for the 64-bit ones)", () => {
    const a = te.encode("a");
    const foobar = te.encode("foobar");
    assert.equal(hashFnv1a64(new Uint8Array(0)), 0x84222325);
    assert.equal(hashFnv1a64(a), 0x8601ec8c);
    assert.equal(hashFnv1a64(foobar), 0xf73967e8);
    assert.equal(hashFnv164(a), 0x8601b7be); // FNV-1 64 of "a" is 0xaf63bd4c8601b7be
    assert.equal(hashFnv1a32(a), 0xe40c292c);
    assert.equal(hashFnv1a32(foobar), 0xbf9cf968);
    assert.equal(hashFnv132(a), 0x050c5d7e);
    assert.equal(hashFnv132(foobar), 0x31f0b262);
  });

  test("match the BigInt definition on ASCII and, with unsigned chars, on any bytes", () => {
    const next = prng(0xf00d);
    const ascii = ["", "a", "foo", "foobar", "key:12345", "127.0.0.1:6379-0", "x".repeat(300)].map((s) => te.encode(s));
    const binary = Array.from({ length: 200 }, (_, i) => randomBytes(next, i % 40));
    for (const [name, fn, bits, variant] of fns) {
      for (const key of ascii) {
        const want = fnvReference(key, bits, variant, false);
        assert.equal(fn(key), want, `${name}(${hex(key)}) signed`);
        assert.equal(fn(key, 0, key.length, false), want, `${name}(${hex(key)}) unsigned`);
      }
      for (const key of binary) {
        assert.equal(fn(key, 0, key.length, false), fnvReference(key, bits, variant, false), `${name}(${hex(key)}) unsigned`);
        assert.equal(fn(key), fnvReference(key, bits, variant, true), `${name}(${hex(key)}) signed`);
      }
    }
  });

  test("the signed-char default differs from unsigned exactly when a byte is >= 0x80", () => {
    const high = te.encode("ключ");
    assert.notEqual(hashFnv1a64(high), hashFnv1a64(high, 0, high.length, false), "non-ASCII key hashes differently");
    const buf = te.encode("..foobar..");
    assert.equal(hashFnv1a64(buf, 2, 8), hashFnv1a64(te.encode("foobar")), "range form hashes only the range");
  });

  test("md5 key hash is the digest's first word, little-endian", () => {
    const key = te.encode("abc"); // md5 = 90 01 50 98 ...
    assert.equal(hashMd5(key), 0x98500190);
    assert.equal(hashMd5(te.encode("xabcx"), 1, 4), 0x98500190);
  });
});

describe("ketamaHashCount (twemproxy's single-precision points per server)", () => {
  test("40 hashes (160 points) per equal-weight server, 39 where float rounding bites", () => {
    for (let n = 1; n <= 24; n++) assert.equal(ketamaHashCount(1, n, n), 40, `n=${n}`);
    // (float)(1/25) * 40 * 25 rounds to 39.99999 in single precision: twemproxy gives 39.
    for (const n of [25, 47, 50, 55, 61]) assert.equal(ketamaHashCount(1, n, n), 39, `n=${n}`);
    assert.equal(ketamaHashCount(2, 11, 4), 29);
    assert.equal(ketamaHashCount(5, 11, 4), 72);
  });
});

/**
 * Placements recorded from a real twemproxy (nutcracker 0.5.0, Debian bookworm amd64) in front of
 * plain redis-servers: each pool's keys were SET through nutcracker and found with KEYS on the
 * backends. One base-36 digit per key of GOLDEN_KEYS, the index of the server holding it.
 */
const GOLDEN_KEYS: string[] = [
  ...Array.from({ length: 100 }, (_, i) => `key:${i}`),
  ...Array.from({ length: 100 }, (_, i) => `obj:${hex(md5(te.encode(`seed${i}`)).subarray(0, 6))}`),
  ...Array.from({ length: 50 }, (_, i) => `ключ-${i}`),
  ...Array.from({ length: 50 }, (_, i) => `{user${i % 10}}.field${i}`),
];

/** Nutcracker pools as configured (servers `127.0.0.1:PORT:WEIGHT [NAME]`). */
interface GoldenPool {
  hash?: KetamaHash;
  hashTag?: string;
  servers: { port: number; weight?: number; name?: string }[];
}
const ports = (...list: number[]) => list.map((port) => ({ port }));
const portRange = (from: number, to: number) => ports(...Array.from({ length: to - from + 1 }, (_, i) => from + i));
const GOLDEN_POOLS: Record<string, GoldenPool> = {
  default3: { servers: portRange(17001, 17003) },
  default5: { servers: portRange(17001, 17005) },
  default4of5: { servers: ports(17001, 17002, 17004, 17005) },
  md5_5: { hash: "md5", servers: portRange(17001, 17005) },
  weighted: { servers: [{ port: 17001, weight: 1 }, { port: 17002, weight: 2 }, { port: 17003, weight: 3 }, { port: 17004, weight: 5 }] },
  tagged: { hashTag: "{}", servers: portRange(17001, 17003) },
  big25: { servers: portRange(17001, 17025) },
  named: { servers: ["alpha", "beta", "gamma", "delta"].map((name, i) => ({ port: 17001 + i, name })) },
  memcport: { servers: ports(11211, 17001, 17002) },
  fnv1_64: { hash: "fnv1_64", servers: portRange(17001, 17004) },
  fnv1a_32: { hash: "fnv1a_32", servers: portRange(17001, 17004) },
  fnv1_32: { hash: "fnv1_32", servers: portRange(17001, 17004) },
};
const GOLDEN: Record<string, string> = {
  default3: [
    "2222222222000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "2111201211021021112022112001202212222202211002001111222221020020212200101220211100012102100101002112",
    "2222222222222222222222222222222222222222222222222201110110112101111012210111101021011110102101111010",
  ].join(""),
  default5: [
    "3333333333000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "2111201433021024132023314001202244224204211403331334322221020020244230301320241430014102130101432143",
    "2222222222222222222222222222222222222222222222222201133414314101111312410111131431011113144101111314",
  ].join(""),
  default4of5: [
    "2222222222000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "3111301322001003122012213001000133003303111302221223212231030000333320201200031320013101120101320132",
    "1111111111111111111111111111111111111111111111111101122313213101111213310111121321011112133101111213",
  ].join(""),
  md5_5: [
    "0212003324040113140014110441430204234042310140300340433133040444343022331031200131224110114202124243",
    "4313013422022121021200142112333314140422134023110123132303223040312434004304024313343400322242010244",
    "2340132130240340130224141320143410401440111003342433330114342432114221324331040114043440224140404032",
  ].join(""),
  weighted: [
    "3333333333000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "2113223333123223132323313201222313223232211303331333322231020323212233331330231332313333332102332133",
    "3333333333222222222222222222222222222222222222222223333331313333311332333331133033333113303333311330",
  ].join(""),
  tagged: [
    "2222222222000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "2111201211021021112022112001202212222202211002001111222221020020212200101220211100012102100101002112",
    "2222222222222222222222222222222222222222222222222211111111111111111111111111111111111111111111111111",
  ].join(""),
  big25: [
    "bbbbbbbbbb0000000000000000000000000000000000000000000000000000000000000000000000aaaaaaaaaaaaaaaaaaaa",
    "2fa9f01j9ac2hij5a82dfa3mclkb2oh84nhfng7a78k40oj6nc778oaogn080o2mbde9g03dgkc8in14i00l4l0bdnjn0aii2l5b",
    "88888888889999999999999999999999999999996666666666nl13j4g4ej4e8a6nmeh24c8a91mejmmc8a91mejm4cba9nbehm",
  ].join(""),
  named: [
    "2222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222",
    "2232320331330131130302023330032003321110210111021231122213232033113131332202030323331300112332123002",
    "2222222222222222222222222222222222222222222222222221021233011011013233101101323310110132330031013233",
  ].join(""),
  memcport: [
    "2222222222111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111",
    "2220112022112012222121021112110021100010202012112222020112121101000001212211102211120210201212011022",
    "2222222222222222222222222222222222222222222222222212201221220212222021021222202102122220210212222021",
  ].join(""),
  fnv1_64: [
    "2222222222333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333",
    "0033010201311033233120321201200330033230022011211002330110030002321121133233132211123222102120022033",
    "2222222222000000000000000000000000000000000000000020130300013102133000310213300031021330003102133000",
  ].join(""),
  fnv1a_32: [
    "1000222231321321231312213110013303102021012102103112311100212103112312011333221330032323112201110012",
    "2230200012002021011312222201320233112300030301212213310233203303223322203203211131130010210133320222",
    "1000330133330021031002330220313231220012133102200332210333323023032132020220013023120221223023200111",
  ].join(""),
  fnv1_32: [
    "3333333333333333333322222222223333333333333333333300000000000000000000333333333300000000001111111111",
    "3122122013133333012101002301033011222203333332223331010221132011330022223012100203011011100130012132",
    "0000000000222222222211111111110000000000222222222232101001033303022022011012012311230110211000013203",
  ].join(""),
};

describe("KetamaRing matches twemproxy", () => {
  test("golden placements recorded from nutcracker 0.5.0", () => {
    assert.equal(GOLDEN_KEYS.length, 300);
    for (const [id, pool] of Object.entries(GOLDEN_POOLS)) {
      const ring = new KetamaRing(
        pool.servers.map((s) => ({ name: twemproxyServerName("127.0.0.1", s.port, s.name), weight: s.weight })),
        { hash: pool.hash, hashTag: pool.hashTag },
      );
      const want = GOLDEN[id]!;
      assert.equal(want.length, GOLDEN_KEYS.length, `${id}: golden length`);
      const got = GOLDEN_KEYS.map((key) => ring.serverFor(te.encode(key)).toString(36)).join("");
      const first = [...got].findIndex((c, i) => c !== want[i]);
      assert.equal(got, want, `${id}: first difference at key ${JSON.stringify(GOLDEN_KEYS[first])}`);
    }
  });

  test("unsigned-char fnv (a non-x86 twemproxy build) places non-ASCII keys elsewhere", () => {
    const servers = portRange(17001, 17005).map((s) => ({ name: `127.0.0.1:${s.port}` }));
    const ring = new KetamaRing(servers, { signedChar: false });
    const nonAscii = GOLDEN_KEYS.map((key, i) => [key, i] as const).filter(([key]) => /[^\x00-\x7f]/.test(key));
    const moved = nonAscii.filter(([key, i]) => ring.serverFor(te.encode(key)).toString(36) !== GOLDEN.default5![i]);
    assert.ok(moved.length > 0, "signedChar: false changes some non-ASCII placements");
    const ascii = GOLDEN_KEYS.map((key, i) => [key, i] as const).filter(([key]) => !/[^\x00-\x7f]/.test(key));
    for (const [key, i] of ascii) assert.equal(ring.serverFor(te.encode(key)).toString(36), GOLDEN.default5![i], key);
  });

  test("continuum sizes: 160 points per equal server, weights share the total", () => {
    const named = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `10.0.0.${i + 1}:6379` }));
    assert.equal(new KetamaRing(named(3)).points, 480);
    assert.equal(new KetamaRing(named(25)).points, 25 * 39 * 4);
    const weighted = [1, 2, 3, 5].map((weight, i) => ({ name: `h${i}:6379`, weight }));
    assert.equal(new KetamaRing(weighted).points, (14 + 29 + 43 + 72) * 4);
  });

  test("server names follow twemproxy's conf rules", () => {
    assert.equal(twemproxyServerName("10.0.0.1", 6379), "10.0.0.1:6379");
    assert.equal(twemproxyServerName("10.0.0.1", 11211), "10.0.0.1", "port 11211 is left out");
    assert.equal(twemproxyServerName("10.0.0.1", 6379, "shard-a"), "shard-a");
  });
});

const servers = (n: number): KetamaServer[] => Array.from({ length: n }, (_, i) => ({ name: `10.0.0.${i + 1}:6379` }));

function shares(ring: KetamaRing, keys: Uint8Array[]): number[] {
  const counts = new Array<number>(ring.size).fill(0);
  for (const key of keys) counts[ring.serverFor(key)]!++;
  return counts;
}

describe("KetamaRing properties", () => {
  const keys = randomKeys(0xc0ffee, 100_000);

  test("deterministic: equal configs place every key alike", () => {
    const a = new KetamaRing(servers(5));
    const b = new KetamaRing(servers(5));
    for (const key of keys.slice(0, 5000)) assert.equal(a.serverFor(key), b.serverFor(key));
  });

  for (const n of [3, 5]) {
    for (const hash of KETAMA_HASHES) {
      test(`${n} servers, ${hash}: every share within 30% of fair over 100k random keys`, () => {
        const counts = shares(new KetamaRing(servers(n), { hash }), keys);
        const fair = keys.length / n;
        for (const [i, c] of counts.entries()) {
          assert.ok(Math.abs(c - fair) < 0.3 * fair, `server ${i} got ${c} keys, fair is ${fair} (${counts.join(", ")})`);
        }
      });
    }
  }

  test("removing one server of 5 moves only that server's keys", () => {
    const five = servers(5);
    const before = new KetamaRing(five);
    const four = five.filter((_, i) => i !== 2);
    const after = new KetamaRing(four);
    let moved = 0;
    for (const key of keys) {
      const was = five[before.serverFor(key)]!.name;
      const now = four[after.serverFor(key)]!.name;
      if (was !== now) {
        moved++;
        assert.equal(was, five[2]!.name, "only keys of the removed server move");
      }
    }
    assert.ok(moved / keys.length < 0.3, `moved ${moved} of ${keys.length}`);
    assert.ok(moved / keys.length > 0.1, `moved ${moved} of ${keys.length}: about a fifth expected`);
  });

  test("an ejected server keeps its index and its keys go elsewhere, as if removed", () => {
    const five = servers(5);
    const ejected = new KetamaRing(five.map((s, i) => (i === 2 ? { ...s, ejected: true } : s)));
    const four = new KetamaRing(five.filter((_, i) => i !== 2));
    for (const key of keys.slice(0, 20_000)) {
      const i = four.serverFor(key);
      assert.equal(ejected.serverFor(key), i < 2 ? i : i + 1);
    }
    assert.equal(new KetamaRing(five.map((s) => ({ ...s, ejected: true }))).serverFor(te.encode("k")), -1);
  });

  test("weights skew the distribution", () => {
    const ring = new KetamaRing([{ name: "a:6379" }, { name: "b:6379" }, { name: "c:6379", weight: 4 }]);
    const counts = shares(ring, keys);
    const fairHeavy = (keys.length * 4) / 6;
    assert.ok(Math.abs(counts[2]! - fairHeavy) < 0.2 * fairHeavy, `heavy server got ${counts[2]} (${counts.join(", ")})`);
    assert.ok(counts[2]! > 2.5 * Math.max(counts[0]!, counts[1]!), `heavy server ≫ light ones (${counts.join(", ")})`);
  });

  test("hash tags send {user1}.a and {user1}.b to one server", () => {
    const ring = new KetamaRing(servers(5), { hashTag: "{}" });
    const plain = new KetamaRing(servers(5));
    const at = (r: KetamaRing, key: string) => r.serverFor(te.encode(key));
    for (let u = 0; u < 200; u++) {
      assert.equal(at(ring, `{user${u}}.a`), at(ring, `{user${u}}.b`), `user${u}`);
      assert.equal(ring.hashOf(te.encode(`x{user${u}}y{z}`)), hashFnv1a64(te.encode(`user${u}`)), `user${u} tag content`);
    }
    // Without a tag option the braces are ordinary bytes.
    assert.equal(plain.hashOf(te.encode("{user1}.a")), hashFnv1a64(te.encode("{user1}.a")));
    // No content, no closing char, or no opening char: the whole key is hashed.
    for (const key of ["{}.a", "{user1.a", "user1}.a", "a{"]) {
      assert.equal(ring.hashOf(te.encode(key)), hashFnv1a64(te.encode(key)), key);
    }
    // The first opening char and the first closing char after it delimit the tag.
    assert.equal(ring.hashOf(te.encode("}{a}b}")), hashFnv1a64(te.encode("a")));
    assert.equal(ring.hashOf(te.encode("{{a}}")), hashFnv1a64(te.encode("{a")));
    const dollar = new KetamaRing(servers(3), { hashTag: "$$" });
    assert.equal(dollar.hashOf(te.encode("ab$cd$ef")), hashFnv1a64(te.encode("cd")));
  });

  test("edge cases: one server, empty key, bad options", () => {
    const one = new KetamaRing([{ name: "solo:6379" }]);
    for (const key of keys.slice(0, 100)) assert.equal(one.serverFor(key), 0);
    assert.equal(new KetamaRing(servers(3)).hashOf(new Uint8Array(0)), 0, "twemproxy hashes an empty key to 0");
    assert.throws(() => new KetamaRing([]), /no servers/);
    assert.throws(() => new KetamaRing([{ name: "a", weight: 0 }]), /weight/);
    assert.throws(() => new KetamaRing([{ name: "a", weight: 1.5 }]), /weight/);
    assert.throws(() => new KetamaRing(servers(2), { hashTag: "{" }), /hashTag/);
    assert.throws(() => new KetamaRing(servers(2), { hashTag: "«»" }), /hashTag/);
    assert.throws(() => new KetamaRing(servers(2), { hash: "crc32" as KetamaHash }), /unknown hash/);
  });
});
