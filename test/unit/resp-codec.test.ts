import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { decode, decodeWithEnd } from "../../src/resp/decode.ts";
import {
  CRLF,
  EMPTY_ARRAY,
  EMPTY_BULK,
  encodeArray,
  encodeArrayHeader,
  encodeBulk,
  encodeCommand,
  encodeError,
  encodeInteger,
  encodeSimpleString,
  NULL_ARRAY,
  NULL_BULK,
  NULL_RESP3,
  OK,
  ONE,
  PONG,
  QUEUED,
  utf8Length,
  ZERO,
} from "../../src/resp/encode.ts";
import { ProtocolError, ReplyError } from "../../src/resp/errors.ts";
import { scanFrame } from "../../src/resp/frame.ts";
import { RequestParser } from "../../src/resp/request-parser.ts";

const te = new TextEncoder();
const td = new TextDecoder();
const text = (b: Uint8Array) => td.decode(b);
const bytes = (s: string) => te.encode(s);

describe("encode", () => {
  test("simple strings and errors, with CR/LF neutralised", () => {
    assert.equal(text(encodeSimpleString("OK")), "+OK\r\n");
    assert.equal(text(encodeSimpleString("héllo")), "+héllo\r\n");
    assert.equal(text(encodeError("ERR unknown command 'x'")), "-ERR unknown command 'x'\r\n");
    assert.equal(text(encodeError("ERR bad\r\ninjected")), "-ERR bad  injected\r\n");
  });

  test("integers", () => {
    assert.equal(text(encodeInteger(0)), ":0\r\n");
    assert.equal(text(encodeInteger(1)), ":1\r\n");
    assert.equal(text(encodeInteger(12182)), ":12182\r\n");
    assert.equal(text(encodeInteger(-7)), ":-7\r\n");
    assert.equal(text(encodeInteger(Number.MAX_SAFE_INTEGER)), ":9007199254740991\r\n");
    assert.equal(text(encodeInteger(-(2n ** 63n))), ":-9223372036854775808\r\n");
  });

  test("bulk strings from bytes and from text", () => {
    assert.equal(text(encodeBulk("foo")), "$3\r\nfoo\r\n");
    assert.equal(text(encodeBulk("")), "$0\r\n\r\n");
    assert.equal(text(encodeBulk("€uro😀")), "$10\r\n€uro😀\r\n");
    assert.deepEqual(encodeBulk(Uint8Array.of(0, 13, 10, 255)), Uint8Array.of(36, 52, 13, 10, 0, 13, 10, 255, 13, 10));
    const big = new Uint8Array(123456).fill(7);
    const frame = encodeBulk(big);
    assert.equal(scanFrame(frame, 0, frame.length), frame.length);
    assert.equal(frame.length, 123456 + 11);
  });

  test("utf8Length agrees with TextEncoder, lone surrogates included", () => {
    for (const s of ["", "abc", "é", "€", "😀", "a\ud800b", "\udc00", "x😀y€z", "\ud83d"]) {
      assert.equal(utf8Length(s), te.encode(s).length, JSON.stringify(s));
    }
  });

  test("array headers and arrays of encoded elements", () => {
    assert.equal(text(encodeArrayHeader(3)), "*3\r\n");
    assert.equal(encodeArrayHeader(0), EMPTY_ARRAY);
    assert.equal(encodeArrayHeader(-1), NULL_ARRAY);
    assert.equal(text(encodeArray([encodeBulk("a"), NULL_BULK, ONE])), "*3\r\n$1\r\na\r\n$-1\r\n:1\r\n");
    assert.equal(text(encodeArray([])), "*0\r\n");
  });

  test("commands mix strings and bytes", () => {
    assert.equal(
      text(encodeCommand(["SET", bytes("k€y"), "välue"])),
      "*3\r\n$3\r\nSET\r\n$5\r\nk€y\r\n$6\r\nvälue\r\n",
    );
    assert.equal(text(encodeCommand([])), "*0\r\n");
  });

  test("an encoded command parses back to the same arguments", () => {
    const args = ["EVAL", "return 1", "0", "", "x".repeat(1000), "\r\n"];
    let seen: string[] = [];
    new RequestParser((a) => {
      seen = a.map(text);
    }).push(encodeCommand(args));
    assert.deepEqual(seen, args);
  });

  test("constants", () => {
    const all: [Uint8Array, string][] = [
      [OK, "+OK\r\n"], [PONG, "+PONG\r\n"], [QUEUED, "+QUEUED\r\n"], [ZERO, ":0\r\n"], [ONE, ":1\r\n"],
      [NULL_BULK, "$-1\r\n"], [NULL_ARRAY, "*-1\r\n"], [NULL_RESP3, "_\r\n"], [EMPTY_ARRAY, "*0\r\n"],
      [EMPTY_BULK, "$0\r\n\r\n"], [CRLF, "\r\n"],
    ];
    for (const [value, expected] of all) assert.equal(text(value), expected);
  });
});

describe("decode", () => {
  const d = (s: string, strings = true) => decode(bytes(s), { strings });

  test("RESP2 values", () => {
    assert.equal(d("+OK\r\n"), "OK");
    assert.equal(d(":42\r\n"), 42);
    assert.equal(d(":-42\r\n"), -42);
    assert.equal(d(":9223372036854775807\r\n"), 9223372036854775807n);
    assert.equal(d("$3\r\nfoo\r\n"), "foo");
    assert.deepEqual(d("$3\r\nfoo\r\n", false), bytes("foo"));
    assert.equal(d("$-1\r\n"), null);
    assert.equal(d("*-1\r\n"), null);
    assert.deepEqual(d("*0\r\n"), []);
    assert.deepEqual(d("*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n+x\r\n"), [1, ["a", null], "x"]);
  });

  test("errors become ReplyError with their prefix", () => {
    const error = d("-MOVED 3999 127.0.0.1:6381\r\n");
    assert.ok(error instanceof ReplyError, "error instanceof ReplyError");
    assert.equal(error.message, "MOVED 3999 127.0.0.1:6381");
    assert.equal(error.prefix, "MOVED");
    const blob = d("!21\r\nSYNTAX invalid syntax\r\n");
    assert.ok(blob instanceof ReplyError, "blob instanceof ReplyError");
    assert.equal(blob.prefix, "SYNTAX");
  });

  test("RESP3 values", () => {
    assert.equal(d("_\r\n"), null);
    assert.equal(d("#t\r\n"), true);
    assert.equal(d("#f\r\n"), false);
    assert.equal(d(",1.5\r\n"), 1.5);
    assert.equal(d(",inf\r\n"), Infinity);
    assert.equal(d(",-inf\r\n"), -Infinity);
    assert.ok(Number.isNaN(d(",nan\r\n")), "Number.isNaN(d(\",nan\\r\\n\"))");
    assert.equal(d("(3492890328409238509324850943850943825024385\r\n"), 3492890328409238509324850943850943825024385n);
    assert.equal(d("=15\r\ntxt:Some string\r\n"), "Some string");
    assert.deepEqual(d("~2\r\n+a\r\n+b\r\n"), ["a", "b"]);
    assert.deepEqual(d(">2\r\n+message\r\n+hi\r\n"), ["message", "hi"]);
    assert.deepEqual(d("%2\r\n+a\r\n:1\r\n+b\r\n%1\r\n+c\r\n*0\r\n"), new Map<unknown, unknown>([["a", 1], ["b", new Map([["c", []]])]]));
    assert.deepEqual(d("%0\r\n"), new Map());
  });

  test("attributes are skipped for the value they annotate", () => {
    assert.deepEqual(d("|1\r\n+ttl\r\n:3600\r\n$3\r\nval\r\n"), "val");
    assert.deepEqual(d("*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n|0\r\n:2\r\n"), [1, 2]);
  });

  test("100k levels of nesting decode without recursion", () => {
    const depth = 100_000;
    let value = decode(bytes("*1\r\n".repeat(depth) + ":7\r\n"));
    for (let i = 0; i < depth; i++) {
      assert.ok(Array.isArray(value), "Array.isArray(value)");
      value = value[0]!;
    }
    assert.equal(value, 7);
  });

  test("decodeWithEnd reports where the value ends", () => {
    const buf = bytes("+a\r\n:1\r\n");
    assert.deepEqual(decodeWithEnd(buf), { value: "a", end: 4 });
    assert.deepEqual(decodeWithEnd(buf, {}, 4), { value: 1, end: 8 });
  });

  test("incomplete or malformed input throws ProtocolError", () => {
    assert.throws(() => d("$3\r\nfo"), ProtocolError);
    assert.throws(() => d("*2\r\n:1\r\n"), ProtocolError);
    assert.throws(() => d("$x\r\n"), ProtocolError);
  });

  // Found by the fuzzer (scripts/fuzz.ts, target replies): the framer checks only where a line
  // ends, so ":4896185$laagaaav" reached BigInt() and threw a SyntaxError, and ":12a" or ",x"
  // decoded silently to made-up numbers (a port in CLUSTER SLOTS, a count in a merged reply).
  test("a number, boolean or null whose text is not one is a ProtocolError, never another error or a made-up value", () => {
    for (const frame of [":4896185$laagaaav\r\n", ":12a\r\n", ":\r\n", ":-\r\n", ": 1\r\n", "(abc\r\n", "(\r\n", "(1.5\r\n", ",abc\r\n", ",\r\n", ",1.5x\r\n", ",0x10\r\n", "#x\r\n", "#\r\n", "#tt\r\n", "_x\r\n", "*2\r\n:1\r\n:x\r\n"]) {
      assert.throws(() => d(frame), ProtocolError, JSON.stringify(frame));
    }
    assert.equal(d(":-12\r\n"), -12);
    assert.equal(d(",1e+20\r\n"), 1e20);
    assert.equal(d(",-2.5e-3\r\n"), -0.0025);
    assert.equal(d(",.5\r\n"), 0.5);
    assert.equal(d("(-12345678901234567890\r\n"), -12345678901234567890n);
  });
});
