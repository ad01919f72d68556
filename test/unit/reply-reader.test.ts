import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ProtocolError } from "../../src/resp/errors.ts";
import type { RespLimits } from "../../src/resp/frame.ts";
import {
  errorPrefix,
  isError,
  isRedirect,
  parseRedirect,
  readInteger,
  ReplyReader,
} from "../../src/resp/reply-reader.ts";

const latin1 = (b: Uint8Array) => {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
};
const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function read(chunks: Uint8Array[], limits?: RespLimits): string[] {
  const frames: string[] = [];
  const reader = new ReplyReader((frame) => frames.push(latin1(frame)), limits);
  for (const chunk of chunks) reader.push(chunk);
  assert.equal(reader.bufferedBytes, 0);
  return frames;
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

function assertProtocolError(fn: () => unknown, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ProtocolError, `not a ProtocolError: ${error}`);
    assert.equal(error.message, message);
    return true;
  });
}

const FRAMES = [
  "+OK\r\n",
  "-ERR wrong number of arguments for 'get' command\r\n",
  ":1000\r\n",
  ":-1\r\n",
  "$5\r\nhello\r\n",
  "$0\r\n\r\n",
  "$-1\r\n",
  "$4\r\n\r\n\r\n\r\n",
  "*-1\r\n",
  "*0\r\n",
  "*3\r\n$3\r\nfoo\r\n$-1\r\n*2\r\n:1\r\n+two\r\n",
  "_\r\n",
  ",1.5\r\n",
  ",-inf\r\n",
  "#t\r\n",
  "(12345678901234567890123\r\n",
  "!21\r\nSYNTAX invalid syntax\r\n",
  "=15\r\ntxt:Some string\r\n",
  "%2\r\n+a\r\n:1\r\n$1\r\nb\r\n*1\r\n%0\r\n",
  "~2\r\n+x\r\n+y\r\n",
  ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
  "|1\r\n+ttl\r\n:3600\r\n$3\r\nval\r\n",
  "-MOVED 3999 127.0.0.1:6381\r\n",
  "$300\r\n" + "\xff".repeat(300) + "\r\n",
  "+" + "long simple line ".repeat(20) + "\r\n",
];
const CORPUS = bytes(FRAMES.join(""));

describe("ReplyReader", () => {
  test("every RESP2 and RESP3 type, one chunk", () => {
    assert.deepEqual(read([CORPUS]), FRAMES);
  });

  test("split at every byte boundary", () => {
    for (let i = 1; i < CORPUS.length; i++) {
      assert.deepEqual(read([CORPUS.slice(0, i), CORPUS.slice(i)]), FRAMES, `split at ${i}`);
    }
  });

  test("byte by byte", () => {
    assert.deepEqual(read(Array.from(CORPUS, (b) => Uint8Array.of(b))), FRAMES);
  });

  test("random chunk sizes", () => {
    for (let seed = 1; seed <= 300; seed++) {
      assert.deepEqual(read(randomChunks(CORPUS, prng(seed), 1 + (seed % 50))), FRAMES, `seed ${seed}`);
    }
  });

  test("frames inside one chunk are views of it", () => {
    const chunk = bytes("+OK\r\n:1\r\n");
    const frames: Uint8Array[] = [];
    new ReplyReader((f) => frames.push(f)).push(chunk);
    assert.equal(frames.length, 2);
    for (const f of frames) assert.equal(f.buffer, chunk.buffer);
  });

  test("100k nested arrays, whole, byte by byte and in random chunks", () => {
    const depth = 100_000;
    const frame = new TextEncoder().encode("*1\r\n".repeat(depth) + "$2\r\nhi\r\n");
    const after = bytes("+after\r\n");
    const buf = new Uint8Array(frame.length + after.length);
    buf.set(frame);
    buf.set(after, frame.length);
    const chunkings = [[buf], Array.from(buf, (b) => Uint8Array.of(b)), randomChunks(buf, prng(7), 10)];
    for (const chunks of chunkings) {
      const frames: Uint8Array[] = [];
      const reader = new ReplyReader((f) => frames.push(f));
      for (const chunk of chunks) reader.push(chunk);
      assert.equal(frames.length, 2);
      assert.deepEqual(frames[0], frame);
      assert.deepEqual(frames[1], after);
    }
  });

  test("a big bulk in many small chunks", () => {
    const size = 3_000_000;
    const header = bytes(`$${size}\r\n`);
    const buf = new Uint8Array(header.length + size + 2);
    buf.set(header);
    for (let i = 0; i < size; i++) buf[header.length + i] = (i * 7) & 0xff;
    buf.set(bytes("\r\n"), header.length + size);
    const frames: Uint8Array[] = [];
    const reader = new ReplyReader((frame) => frames.push(frame));
    for (let p = 0; p < buf.length; p += 1024) reader.push(buf.subarray(p, p + 1024));
    assert.equal(frames.length, 1);
    assert.deepEqual(frames[0], buf);
  });

  test("a long error line spread over many chunks", () => {
    const frame = "-ERR " + "e".repeat(100_000) + "\r\n";
    const buf = bytes(frame);
    assert.deepEqual(read(randomChunks(buf, prng(3), 100)), [frame]);
  });

  test("malformed replies throw, and keep throwing", () => {
    const frames: string[] = [];
    const reader = new ReplyReader((f) => frames.push(latin1(f)));
    assertProtocolError(() => reader.push(bytes("+OK\r\n$x\r\n")), "invalid bulk length");
    assert.deepEqual(frames, ["+OK\r\n"]);
    assertProtocolError(() => reader.push(bytes("+OK\r\n")), "invalid bulk length");
    reader.reset();
    reader.push(bytes("+OK\r\n"));
    assert.equal(frames.length, 2);
    assertProtocolError(() => read([bytes("?\r\n")]), "got '?' as reply type byte");
    assertProtocolError(() => read([bytes("$3\r\nabc"), bytes("XY")]), "invalid bulk terminator");
    assertProtocolError(() => read([bytes("$3\r\nabc\r"), bytes("X")]), "invalid bulk terminator");
    assertProtocolError(() => read([bytes("+OK\r"), bytes("X")]), "expected '\\n' after '\\r'");
  });

  test("an exception from onReply leaves the reader failed", () => {
    const reader = new ReplyReader(() => {
      throw new Error("handler bug");
    });
    assert.throws(() => reader.push(bytes("+OK\r\n+OK\r\n")), /handler bug/);
    assert.throws(() => reader.push(bytes("+OK\r\n")), /handler bug/);
  });

  test("limits apply to headers, before the payload arrives", () => {
    const limits = { maxBulkBytes: 100, maxArrayLength: 5 };
    assertProtocolError(() => read([bytes("$10"), bytes("1")], limits), "invalid bulk length");
    assertProtocolError(() => read([bytes("*1\r\n*6\r\n")], limits), "invalid multibulk length");
    assertProtocolError(() => read([bytes("~"), bytes("6")], limits), "invalid multibulk length");
    const reader = new ReplyReader(() => {}, limits);
    reader.push(bytes("$100\r\n"));
    assert.equal(reader.bufferedBytes, 6);
  });

  // Found by the fuzzer (scripts/fuzz.ts, target replies): a 30-byte error line under
  // maxBulkBytes 25 was read whole, but refused when its LF came in a chunk of its own.
  test("a simple line longer than maxBulkBytes is refused however it is chunked, one within it is read", () => {
    const limits = { maxBulkBytes: 4, maxArrayLength: 5 };
    for (const [line, ok] of [["+abcde\r\n", false], ["-ERR x\r\n", false], ["+abcd\r\n", true], [":1234\r\n", true]] as const) {
      const buf = bytes(line);
      for (let cut = 0; cut <= buf.length; cut++) {
        const chunks = [buf.subarray(0, cut), buf.subarray(cut)].filter((c) => c.length > 0);
        if (ok) assert.deepEqual(read(chunks, limits), [line], `${JSON.stringify(line)} cut at ${cut}`);
        else assertProtocolError(() => read(chunks, limits), "too big reply line");
      }
    }
    const minimal = bytes("%1\r\n|3\r\n*3\r\n-\r\n-naaaaaana$xa4yaaaay$\naaaaaaaa\r\n");
    const tight = { maxBulkBytes: 25, maxArrayLength: 4 };
    assertProtocolError(() => read([minimal], tight), "too big reply line");
    assertProtocolError(() => read([minimal.subarray(0, 46), minimal.subarray(46)], tight), "too big reply line");
  });
});

describe("reply inspection", () => {
  test("isError and errorPrefix", () => {
    assert.equal(isError(bytes("-ERR x\r\n")), true);
    assert.equal(isError(bytes("!5\r\nERR x\r\n")), true);
    assert.equal(isError(bytes("+OK\r\n")), false);
    assert.equal(isError(new Uint8Array(0)), false);
    assert.equal(errorPrefix(bytes("-MOVED 1 a:1\r\n")), "MOVED");
    assert.equal(errorPrefix(bytes("-ASK 1 a:1\r\n")), "ASK");
    assert.equal(errorPrefix(bytes("-TRYAGAIN Multiple keys request during rehashing of slot\r\n")), "TRYAGAIN");
    assert.equal(errorPrefix(bytes("-CLUSTERDOWN The cluster is down\r\n")), "CLUSTERDOWN");
    assert.equal(errorPrefix(bytes("-LOADING\r\n")), "LOADING");
    assert.equal(errorPrefix(bytes("!21\r\nSYNTAX invalid syntax\r\n")), "SYNTAX");
    assert.equal(errorPrefix(bytes(":1\r\n")), "");
  });

  test("parseRedirect: IPv4, hostname, IPv6, empty host", () => {
    assert.deepEqual(parseRedirect(bytes("-MOVED 3999 127.0.0.1:6381\r\n")), {
      kind: "MOVED", slot: 3999, host: "127.0.0.1", port: 6381,
    });
    assert.deepEqual(parseRedirect(bytes("-ASK 16383 redis-7.example.com:7000\r\n")), {
      kind: "ASK", slot: 16383, host: "redis-7.example.com", port: 7000,
    });
    assert.deepEqual(parseRedirect(bytes("-MOVED 0 2001:db8::ff00:42:8329:6379\r\n")), {
      kind: "MOVED", slot: 0, host: "2001:db8::ff00:42:8329", port: 6379,
    });
    assert.deepEqual(parseRedirect(bytes("-MOVED 12 ::1:30001\r\n")), {
      kind: "MOVED", slot: 12, host: "::1", port: 30001,
    });
    assert.deepEqual(parseRedirect(bytes("-ASK 5 [fe80::1]:7001\r\n")), {
      kind: "ASK", slot: 5, host: "fe80::1", port: 7001,
    });
    assert.deepEqual(parseRedirect(bytes("-MOVED 3999 :6381\r\n")), {
      kind: "MOVED", slot: 3999, host: "", port: 6381,
    });
  });

  test("parseRedirect rejects everything else", () => {
    for (const s of [
      "-ERR MOVED 1 a:1\r\n", "+MOVED 1 a:1\r\n", "-MOVED\r\n", "-MOVED x a:1\r\n",
      "-MOVED 16384 a:1\r\n", "-MOVED 1 a\r\n", "-MOVED 1 a:\r\n", "-MOVED 1 a:70000\r\n",
      "-MOVED 1 a:6x\r\n", "-MOVEDX 1 a:1\r\n", "-ASKING 1 a:1\r\n",
    ]) {
      assert.equal(parseRedirect(bytes(s)), null, s);
    }
    assert.equal(isRedirect(bytes("-MOVED 1 a:1\r\n")), true);
    assert.equal(isRedirect(bytes("-ASK 1 a:1\r\n")), true);
    assert.equal(isRedirect(bytes("-ERR x\r\n")), false);
  });

  test("readInteger", () => {
    assert.equal(readInteger(bytes(":0\r\n")), 0);
    assert.equal(readInteger(bytes(":12182\r\n")), 12182);
    assert.equal(readInteger(bytes(":-42\r\n")), -42);
    assert.equal(readInteger(bytes("$2\r\n12\r\n")), null);
    assert.equal(readInteger(bytes(":\r\n")), null);
    assert.equal(readInteger(bytes(":1x\r\n")), null);
  });
});
