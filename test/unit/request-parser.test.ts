import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { FrameTooBigError, ProtocolError } from "../../src/resp/errors.ts";
import { INLINE_MAX_BYTES, type RespLimits } from "../../src/resp/frame.ts";
import { commandName, RequestParser, splitInline } from "../../src/resp/request-parser.ts";
import { LAZY_ARGS } from "../../src/resp/arg-collector.ts";

const te = new TextEncoder();
const bytes = (s: string) => te.encode(s);
/** Bytes as a string of the same char codes, so binary data compares and prints faithfully. */
const latin1 = (b: Uint8Array) => {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
};
const fromLatin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

interface Seen {
  args: string[];
  frame: string;
}

function collector(limits?: RespLimits): { parser: RequestParser; seen: Seen[] } {
  const seen: Seen[] = [];
  const parser = new RequestParser((args, frame) => {
    seen.push({ args: args.map(latin1), frame: latin1(frame) });
  }, limits);
  return { parser, seen };
}

function parseChunks(chunks: Uint8Array[], limits?: RespLimits): Seen[] {
  const { parser, seen } = collector(limits);
  for (const chunk of chunks) parser.push(chunk);
  assert.equal(parser.bufferedBytes, 0);
  return seen;
}

/** A deterministic PRNG (mulberry32), so failures reproduce. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomChunks(buf: Uint8Array, random: () => number, maxSize: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let p = 0; p < buf.length; ) {
    const size = 1 + Math.floor(random() * maxSize);
    chunks.push(buf.slice(p, p + size));
    p += size;
  }
  return chunks;
}

function mb(...args: string[]): string {
  return `*${args.length}\r\n` + args.map((a) => `$${a.length}\r\n${a}\r\n`).join("");
}

function assertProtocolError(fn: () => unknown, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ProtocolError, `not a ProtocolError: ${error}`);
    assert.equal(error.message, message);
    return true;
  });
}

// A pipeline mixing every request shape, including binary payloads with CRLF and '*' inside.
const MIXED =
  mb("SET", "key", "value") +
  "PING\r\n" +
  "*0\r\n" +
  "\r\n" +
  mb("GET", "") +
  "   \t \n" +
  "GET \"a b\" 'c'\n" +
  "*-1\r\n" +
  mb("SET", "bin", "\r\n*1\r\n$3\r\n\x00\xff") +
  "echo \"\\x00\\xff\\n\"\r\n" +
  mb("MSET", "a", "1", "b", "2", "c", "3") +
  mb("x".repeat(300));

const MIXED_EXPECTED: string[][] = [
  ["SET", "key", "value"],
  ["PING"],
  ["GET", ""],
  ["GET", "a b", "c"],
  ["SET", "bin", "\r\n*1\r\n$3\r\n\x00\xff"],
  ["echo", "\x00\xff\n"],
  ["MSET", "a", "1", "b", "2", "c", "3"],
  ["x".repeat(300)],
];

describe("RequestParser: multibulk", () => {
  test("decodes arguments and hands back the exact frame", () => {
    const frame = mb("SET", "foo", "bar");
    const seen = parseChunks([bytes(frame)]);
    assert.deepEqual(seen, [{ args: ["SET", "foo", "bar"], frame }]);
  });

  test("a pipeline of 1000 requests in one chunk", () => {
    let s = "";
    for (let i = 0; i < 1000; i++) s += mb("INCR", `counter:${i}`);
    const seen = parseChunks([bytes(s)]);
    assert.equal(seen.length, 1000);
    for (let i = 0; i < 1000; i++) {
      assert.deepEqual(seen[i]!.args, ["INCR", `counter:${i}`]);
      assert.equal(seen[i]!.frame, mb("INCR", `counter:${i}`));
    }
  });

  test("arguments and frames are views of the pushed chunk, not copies", () => {
    const chunk = bytes(mb("GET", "k") + mb("GET", "j"));
    const got: Uint8Array[] = [];
    const parser = new RequestParser((args, frame) => got.push(args[1]!, frame));
    parser.push(chunk);
    for (const view of got) assert.equal(view.buffer, chunk.buffer);
    assert.equal(got[0]!.constructor, Uint8Array);
  });

  test("empty requests (*0, *-1, *-5) are skipped like Redis does", () => {
    const seen = parseChunks([bytes("*0\r\n*-1\r\n" + mb("PING") + "*-5\r\n")]);
    assert.deepEqual(seen.map((s) => s.args), [["PING"]]);
  });

  test("a big value arriving in many small chunks", () => {
    const size = 4 * 1024 * 1024 + 7;
    const header = bytes(`*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$${size}\r\n`);
    const frame = new Uint8Array(header.length + size + 2);
    frame.set(header);
    for (let i = 0; i < size; i++) frame[header.length + i] = i & 0xff;
    frame.set(bytes("\r\n"), header.length + size);
    const got: Uint8Array[][] = [];
    const frames: Uint8Array[] = [];
    const parser = new RequestParser((args, f) => {
      got.push(args);
      frames.push(f);
    });
    let last = 0;
    for (let p = 0; p < frame.length; p += 1000) {
      if (p + 1000 >= frame.length) {
        assert.equal(got.length, 0);
        assert.equal(parser.bufferedBytes, p);
      }
      parser.push(frame.subarray(p, p + 1000));
      last = p;
    }
    assert.ok(last > 0, "last > 0");
    assert.equal(got.length, 1);
    const value = got[0]![2]!;
    assert.equal(value.length, size);
    for (let i = 0; i < size; i++) if (value[i] !== (i & 0xff)) assert.fail(`byte ${i} differs`);
    assert.deepEqual(frames[0], frame);
    assert.equal(parser.bufferedBytes, 0);
  });
});

describe("RequestParser: inline commands", () => {
  test("split into arguments with a synthesized multibulk frame", () => {
    const seen = parseChunks([bytes("SET foo bar\r\n")]);
    assert.deepEqual(seen, [{ args: ["SET", "foo", "bar"], frame: mb("SET", "foo", "bar") }]);
  });

  test("LF alone ends a line; blank lines are ignored", () => {
    const seen = parseChunks([bytes("\r\n\n  \r\nPING\nECHO x\r\n")]);
    assert.deepEqual(seen.map((s) => s.args), [["PING"], ["ECHO", "x"]]);
  });

  const split = (line: string) => {
    const buf = fromLatin1(line);
    return splitInline(buf, 0, buf.length)?.map(latin1) ?? null;
  };

  test("quoting and escapes follow sdssplitargs", () => {
    assert.deepEqual(split(`SET k "hello world"`), ["SET", "k", "hello world"]);
    assert.deepEqual(split(`"\\x41\\x4a\\x4b" "\\x4" "\\xZZ"`), ["AJK", "x4", "xZZ"]);
    assert.deepEqual(split(`"a\\nb\\rc\\td\\be\\af\\\\g\\"h\\q"`), ["a\nb\rc\td\be\x07f\\g\"hq"]);
    assert.deepEqual(split(`'it\\'s' 'a\\nb' '"'`), ["it's", "a\\nb", "\""]);
    assert.deepEqual(split(`foo"bar baz" x`), ["foobar baz", "x"]);
    assert.deepEqual(split(`SET k ""`), ["SET", "k", ""]);
    assert.deepEqual(split(`  a   b\tc  `), ["a", "b", "c"]);
    assert.deepEqual(split(`a\x0bb`), ["a\x0bb"]);
    assert.deepEqual(split(`"x"\x0by`), ["x", "y"]);
    assert.deepEqual(split(``), []);
    assert.deepEqual(split(`   `), []);
    // A NUL ends the C string Redis splits: nothing after it counts.
    assert.deepEqual(split(`GET a\x00b c`), ["GET", "a"]);
  });

  test("unbalanced quotes are rejected", () => {
    assert.equal(split(`"unterminated`), null);
    assert.equal(split(`'unterminated`), null);
    assert.equal(split(`"a"b`), null);
    assert.equal(split(`'a'b`), null);
    assert.equal(split(`"a\\"`), null);
    const { parser, seen } = collector();
    assertProtocolError(() => parser.push(bytes("PING\r\nGET \"a\r\nPING\r\n")), "unbalanced quotes in request");
    assert.equal(seen.length, 1);
  });

  test("lines longer than 64 KiB are rejected, even before their end arrives", () => {
    const { parser } = collector();
    parser.push(bytes("x".repeat(40 * 1024)));
    assertProtocolError(() => parser.push(bytes("x".repeat(40 * 1024))), "too big inline request");
    const ok = parseChunks([bytes("ECHO " + "y".repeat(INLINE_MAX_BYTES - 10)), bytes("\r\n")]);
    assert.equal(ok[0]!.args[1]!.length, INLINE_MAX_BYTES - 10);
  });
});

describe("RequestParser: chunking", () => {
  const corpus = fromLatin1(MIXED);

  test("one chunk", () => {
    assert.deepEqual(parseChunks([corpus]).map((s) => s.args), MIXED_EXPECTED);
  });

  const whole = parseChunks([corpus]);

  test("split at every byte boundary", () => {
    for (let i = 1; i < corpus.length; i++) {
      const seen = parseChunks([corpus.slice(0, i), corpus.slice(i)]);
      assert.deepEqual(seen, whole, `split at ${i}`);
    }
  });

  test("byte by byte", () => {
    const chunks = Array.from(corpus, (b) => Uint8Array.of(b));
    assert.deepEqual(parseChunks(chunks), whole);
  });

  test("another client's parser scanning inside a delivered request does not disturb an unfinished one", () => {
    // The scan state is shared by every parser: a request delivered just before an unfinished
    // one may make another client's parser scan (synchronously) before the tail is held.
    const other = collector();
    const seen: string[][] = [];
    const parser = new RequestParser((args) => {
      seen.push(args.map(latin1));
      other.parser.push(bytes("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$4\r\nPING\r\n"));
    });
    parser.push(bytes("*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$5\r\nab"));
    assert.ok(parser.bufferedBytes > 0, "the GET is held");
    parser.push(bytes("cde\r\n"));
    assert.deepEqual(seen, [["PING"], ["GET", "abcde"]]);
    assert.equal(parser.bufferedBytes, 0, "nothing held once it is complete");
    assert.equal(other.seen.length, 4);
  });

  test("random chunk sizes", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const chunks = randomChunks(corpus, prng(seed), 1 + (seed % 40));
      assert.deepEqual(parseChunks(chunks), whole, `seed ${seed}`);
    }
  });

  test("a big pipeline in random chunks", () => {
    let s = "";
    const expected: string[][] = [];
    const random = prng(42);
    for (let i = 0; i < 500; i++) {
      const value = "z".repeat(Math.floor(random() * 1000));
      if (i % 7 === 0) {
        s += `SET k${i} v${i}\r\n`;
        expected.push(["SET", `k${i}`, `v${i}`]);
      } else {
        s += mb("SET", `k${i}`, value);
        expected.push(["SET", `k${i}`, value]);
      }
    }
    const buf = bytes(s);
    for (const max of [1, 100, 5000, 70000]) {
      const seen = parseChunks(randomChunks(buf, prng(max), max));
      assert.deepEqual(seen.map((x) => x.args), expected, `chunks up to ${max}`);
    }
  });
});

describe("RequestParser: a request spanning chunks", () => {
  test("its arguments are taken as the chunks arrive: each is a view of the chunk that brought it", () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `key:${i}`);
    const request = bytes(mb("MGET", ...keys));
    const chunks = randomChunks(request, prng(7), 4096);
    const owners = new Set(chunks.map((chunk) => chunk.buffer));
    const seen: Uint8Array[][] = [];
    const frames: Uint8Array[] = [];
    const parser = new RequestParser((args, frame) => {
      seen.push(args);
      frames.push(frame);
    });
    for (const chunk of chunks) parser.push(chunk);
    assert.deepEqual(seen.map((args) => args.map(latin1)), [["MGET", ...keys]]);
    assert.equal(latin1(frames[0]!), latin1(request));
    // Arguments cut by a chunk boundary are small copies; the others are views of their chunk,
    // which they could not be if the request were decoded from the joined frame at the end.
    const inChunks = seen[0]!.filter((arg) => owners.has(arg.buffer)).length;
    assert.ok(inChunks > keys.length * 0.9, `${inChunks} of ${keys.length + 1} arguments are views of the chunks`);
  });

  test("arguments over 64 KiB cut by chunk boundaries are views of the joined frame; small and empty ones survive any cut", () => {
    const big = "B".repeat(200_000);
    const bin = "\r\n$3\r\n" + "q".repeat(70_000);
    const request = mb("SET", big, "", "s", bin, "x".repeat(65_536), "t");
    const corpus = bytes(request + mb("PING"));
    const expected = [["SET", big, "", "s", bin, "x".repeat(65_536), "t"], ["PING"]];
    for (let seed = 1; seed <= 12; seed++) {
      const max = [7, 1000, 65_536, 100_000][seed % 4]!;
      const frames: Uint8Array[] = [];
      const args: Uint8Array[][] = [];
      const parser = new RequestParser((a, frame) => {
        args.push(a);
        frames.push(frame);
      });
      for (const chunk of randomChunks(corpus, prng(seed), max)) parser.push(chunk);
      assert.deepEqual(args.map((a) => a.map(latin1)), expected, `seed ${seed}, chunks up to ${max}`);
      assert.equal(latin1(frames[0]!), request);
      if (max < 100_000) assert.equal(args[0]![1]!.buffer, frames[0]!.buffer, "the big argument is a view of the frame, not a second copy");
    }
  });
});

describe("RequestParser: a request with very many arguments", () => {
  const keys = Array.from({ length: LAZY_ARGS * 3 }, (_, i) => `k${i}${i % 7 === 0 ? "" : "x".repeat(i % 50)}`);
  keys[100] = "";
  const request = bytes(mb("MGET", ...keys) + mb("PING"));

  test("its arguments are kept as offsets while it arrives and made when read; it reads like any array", () => {
    for (const max of [5, 333, 4096, 70_000]) {
      const seen: { args: Uint8Array[]; frame: Uint8Array }[] = [];
      const parser = new RequestParser((args, frame) => seen.push({ args, frame }));
      const chunks = randomChunks(request, prng(max), max);
      let held = 0;
      for (const chunk of chunks) {
        parser.push(chunk);
        if (seen.length === 0) held = Math.max(held, parser.bufferedBytes);
      }
      assert.equal(seen.length, 2, `chunks up to ${max}`);
      const { args, frame } = seen[0]!;
      assert.equal(args.length, keys.length + 1);
      assert.deepEqual(args.map(latin1), ["MGET", ...keys], `chunks up to ${max}`);
      assert.deepEqual([...args.slice(1, 3)].map(latin1), keys.slice(0, 2));
      assert.equal(latin1(args.at(-1)!), keys.at(-1));
      assert.equal(args[keys.length + 1], undefined);
      // Made on read, from the joined frame: two reads are two views of the same bytes.
      assert.notEqual(args[5], args[5]);
      assert.equal(args[5]!.buffer, frame.buffer);
      assert.throws(() => {
        (args as Uint8Array[])[1] = bytes("other");
      }, TypeError);
      assert.deepEqual(seen[1]!.args.map(latin1), ["PING"]);
      // Offsets are counted as held bytes while the request is unfinished.
      if (max < 70_000) assert.ok(held > request.length - 100, `held ${held} of ${request.length}`);
    }
  });
});

describe("RequestParser: malformed requests", () => {
  test("requests before the bad one are delivered, then the error is thrown", () => {
    const { parser, seen } = collector();
    const input = mb("PING") + mb("ECHO", "hi") + "*1\r\n$-1\r\n" + mb("PING");
    assertProtocolError(() => parser.push(bytes(input)), "invalid bulk length");
    assert.deepEqual(seen.map((s) => s.args), [["PING"], ["ECHO", "hi"]]);
    // The stream cannot be resynchronised: later pushes fail the same way.
    assertProtocolError(() => parser.push(bytes(mb("PING"))), "invalid bulk length");
    parser.reset();
    parser.push(bytes(mb("PING")));
    assert.equal(seen.length, 3);
  });

  test("non-bulk elements", () => {
    assertProtocolError(() => collector().parser.push(bytes("*2\r\n$3\r\nGET\r\n:1\r\n")), "expected '$', got ':'");
    assertProtocolError(() => collector().parser.push(bytes("*1\r\n*1\r\n$1\r\na\r\n")), "expected '$', got '*'");
  });

  test("bad lengths", () => {
    assertProtocolError(() => collector().parser.push(bytes("*x\r\n")), "invalid multibulk length");
    assertProtocolError(() => collector().parser.push(bytes("*1\r\n$1x\r\n")), "invalid bulk length");
    assertProtocolError(() => collector().parser.push(bytes("*1\r\n$-5\r\n")), "invalid bulk length");
    assertProtocolError(() => collector().parser.push(bytes("*1\r\n$3\r\nabcde")), "invalid bulk terminator");
  });

  test("oversize bulk and array are rejected from the header, before the body arrives", () => {
    const limits = { maxBulkBytes: 1000, maxArrayLength: 8 };
    const big = collector(limits);
    big.parser.push(bytes("*2\r\n$3\r\nGET\r\n$100"));
    assertProtocolError(() => big.parser.push(bytes("1")), "invalid bulk length");
    const long = collector(limits);
    assertProtocolError(() => long.parser.push(bytes("*9\r\n")), "invalid multibulk length");
    const fits = collector(limits);
    fits.parser.push(bytes("*2\r\n$3\r\nGET\r\n$1000\r\n"));
    assert.equal(fits.seen.length, 0);
  });

  test("an error found in a later chunk after a held tail", () => {
    const { parser, seen } = collector();
    parser.push(bytes("*2\r\n$3\r\nGET\r\n$1\r\nk"));
    parser.push(bytes("\r\n*1\r\n"));
    assert.equal(seen.length, 1);
    assertProtocolError(() => parser.push(bytes(":1\r\n")), "expected '$', got ':'");
  });

  test("an exception from onRequest leaves the parser failed", () => {
    let calls = 0;
    const parser = new RequestParser(() => {
      calls++;
      throw new Error("handler bug");
    });
    assert.throws(() => parser.push(bytes(mb("PING") + mb("PING"))), /handler bug/);
    assert.throws(() => parser.push(bytes(mb("PING"))), /handler bug/);
    assert.equal(calls, 1);
  });

  test("maxFrameBytes bounds what is held for an unfinished request", () => {
    const limits = { maxBulkBytes: 1 << 20, maxArrayLength: 100, maxFrameBytes: 4096 };
    const { parser } = collector(limits);
    parser.push(bytes("*2\r\n$3\r\nSET\r\n$100000\r\n"));
    parser.push(new Uint8Array(3000));
    assertProtocolError(() => parser.push(new Uint8Array(3000)), "too big frame");
  });

  test("maxFrameBytes counts every argument of a request, and the chunk that crosses it is never held", () => {
    const limits = { maxBulkBytes: 1 << 20, maxArrayLength: 100, maxFrameBytes: 6000 };
    const { parser, seen } = collector(limits);
    // Two 4000-byte values, each under maxBulkBytes: together over the frame limit.
    parser.push(bytes(mb("PING") + "*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$4000\r\n" + "x".repeat(4000) + "\r\n$1\r\nb\r\n$4000\r\n"));
    const held = parser.bufferedBytes;
    assert.ok(held > 4000 && held <= 6000, `held ${held}`);
    assert.throws(() => parser.push(bytes("y".repeat(4000))), (error: unknown) => {
      assert.ok(error instanceof FrameTooBigError);
      assert.equal(error.limit, 6000);
      assert.equal(error.bytes, held + 4000);
      return true;
    });
    assert.equal(parser.bufferedBytes, 0, "nothing is held once the limit is crossed");
    assert.deepEqual(seen.map((s) => s.args), [["PING"]]);
  });
});

describe("commandName", () => {
  test("upper-cases ASCII letters only", () => {
    assert.equal(commandName(bytes("get")), "GET");
    assert.equal(commandName(bytes("Cluster")), "CLUSTER");
    assert.equal(commandName(bytes("zunion_store-1")), "ZUNION_STORE-1");
    assert.equal(commandName(new Uint8Array(0)), "");
    assert.equal(commandName(Uint8Array.of(0xe9)), "\u00e9");
  });
});

describe("RequestParser: parsers share one decoder", () => {
  test("a request that makes another client's parser push, while the first is decoding, reaches each in order", () => {
    const inner = collector();
    const outer: string[][] = [];
    const parser = new RequestParser((args) => {
      outer.push(args.map(latin1));
      // Another client's input, parsed in the middle of this run.
      if (outer.length === 1) inner.parser.push(bytes("*2\r\n$3\r\nGET\r\n$1\r\nb\r\n*1\r\n$4\r\nPING\r\n"));
    });
    parser.push(bytes("*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nDEL\r\n$1\r\nc\r\n"));
    assert.deepEqual(outer, [["GET", "a"], ["DEL", "c"]]);
    assert.deepEqual(inner.seen.map((s) => s.args), [["GET", "b"], ["PING"]]);
    // Both still work afterwards.
    parser.push(bytes("*1\r\n$4\r\nPING\r\n"));
    inner.parser.push(bytes("*1\r\n$4\r\nQUIT\r\n"));
    assert.deepEqual(outer.at(-1), ["PING"]);
    assert.deepEqual(inner.seen.at(-1)!.args, ["QUIT"]);
  });
});
