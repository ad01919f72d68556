import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ProtocolError } from "../../src/resp/errors.ts";
import {
  DEFAULT_LIMITS,
  INLINE_MAX_BYTES,
  scanFrame,
  scanRequest,
  type RespLimits,
} from "../../src/resp/frame.ts";

const te = new TextEncoder();
const bytes = (s: string) => te.encode(s);

/** Asserts `s` is exactly one complete frame and that every strict prefix is incomplete. */
function assertWholeFrame(s: string, limits: RespLimits = DEFAULT_LIMITS): void {
  const buf = bytes(s);
  assert.equal(scanFrame(buf, 0, buf.length, limits), buf.length, JSON.stringify(s));
  for (let i = 0; i < buf.length; i++) {
    assert.equal(scanFrame(buf, 0, i, limits), -1, `prefix ${i} of ${JSON.stringify(s)}`);
  }
  // Trailing bytes of a following frame are not part of it.
  const more = bytes(s + "+next\r\n");
  assert.equal(scanFrame(more, 0, more.length, limits), buf.length);
}

function assertProtocolError(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ProtocolError, `not a ProtocolError: ${error}`);
    assert.equal(error.name, "ProtocolError");
    if (typeof message === "string") assert.equal(error.message, message);
    else assert.match(error.message, message);
    return true;
  });
}

describe("scanFrame: RESP2 types", () => {
  test("simple string, error, integer", () => {
    assertWholeFrame("+OK\r\n");
    assertWholeFrame("+\r\n");
    assertWholeFrame("-ERR unknown command 'foo'\r\n");
    assertWholeFrame(":0\r\n");
    assertWholeFrame(":-9223372036854775808\r\n");
  });

  test("bulk strings, empty and null", () => {
    assertWholeFrame("$3\r\nfoo\r\n");
    assertWholeFrame("$0\r\n\r\n");
    assertWholeFrame("$-1\r\n");
    // Payload bytes are opaque: CRLF and type bytes inside do not confuse the scan.
    assertWholeFrame("$8\r\n\r\n*1\r\n:1\r\n");
  });

  test("arrays, empty, null and nested", () => {
    assertWholeFrame("*0\r\n");
    assertWholeFrame("*-1\r\n");
    assertWholeFrame("*2\r\n$3\r\nfoo\r\n$-1\r\n");
    assertWholeFrame("*3\r\n:1\r\n*2\r\n+a\r\n*1\r\n$1\r\nx\r\n*-1\r\n");
    assertWholeFrame("*2\r\n*0\r\n*0\r\n");
  });

  test("offsets other than 0", () => {
    const buf = bytes("+OK\r\n:12\r\n$2\r\nhi\r\n");
    assert.equal(scanFrame(buf, 5, buf.length), 10);
    assert.equal(scanFrame(buf, 10, buf.length), buf.length);
    assert.equal(scanFrame(buf, buf.length, buf.length), -1);
  });
});

describe("scanFrame: RESP3 types", () => {
  test("null, double, boolean, big number", () => {
    assertWholeFrame("_\r\n");
    assertWholeFrame(",3.14\r\n");
    assertWholeFrame(",-inf\r\n");
    assertWholeFrame("#t\r\n");
    assertWholeFrame("#f\r\n");
    assertWholeFrame("(3492890328409238509324850943850943825024385\r\n");
  });

  test("blob error and verbatim string", () => {
    assertWholeFrame("!21\r\nSYNTAX invalid syntax\r\n");
    assertWholeFrame("=15\r\ntxt:Some string\r\n");
  });

  test("map, set, push", () => {
    assertWholeFrame("%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n");
    assertWholeFrame("%0\r\n");
    assertWholeFrame("~3\r\n+a\r\n+b\r\n+c\r\n");
    assertWholeFrame(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n");
  });

  test("attribute belongs to the value after it", () => {
    assertWholeFrame("|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.19\r\n$1\r\nb\r\n,0.01\r\n*2\r\n:2039123\r\n:9543892\r\n");
    assertWholeFrame("|0\r\n+OK\r\n");
    // Inside an aggregate, an attribute does not take an element's place.
    assertWholeFrame("*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n");
  });

  test("maps nested in arrays nested in maps", () => {
    assertWholeFrame("%1\r\n$4\r\nkeys\r\n*2\r\n%1\r\n+x\r\n~1\r\n#t\r\n_\r\n");
  });
});

describe("scanFrame: deep nesting", () => {
  test("100k nested arrays scan without recursion", () => {
    const depth = 100_000;
    const s = "*1\r\n".repeat(depth) + ":1\r\n";
    const buf = bytes(s);
    assert.equal(scanFrame(buf, 0, buf.length), buf.length);
    assert.equal(scanFrame(buf, 0, buf.length - 1), -1);
  });

  test("100k nested maps and attributes", () => {
    const depth = 100_000;
    const buf = bytes("%1\r\n+k\r\n".repeat(depth) + "_\r\n");
    assert.equal(scanFrame(buf, 0, buf.length), buf.length);
    // Each attribute's value is itself an attributed value; every level then owes its own value.
    const attrs = bytes("|1\r\n+a\r\n".repeat(depth) + "+v\r\n".repeat(depth + 1));
    assert.equal(scanFrame(attrs, 0, attrs.length), attrs.length);
  });
});

describe("scanFrame: malformed input", () => {
  const scan = (s: string, limits?: RespLimits) => () => {
    const buf = bytes(s);
    return scanFrame(buf, 0, buf.length, limits);
  };

  test("bad lengths", () => {
    assertProtocolError(scan("$abc\r\n"), "invalid bulk length");
    assertProtocolError(scan("$-2\r\n"), "invalid bulk length");
    assertProtocolError(scan("$\r\n"), "invalid bulk length");
    assertProtocolError(scan("$+3\r\nfoo\r\n"), "invalid bulk length");
    assertProtocolError(scan("$03\r\nfoo\r\n"), "invalid bulk length");
    assertProtocolError(scan("$-0\r\n"), "invalid bulk length");
    assertProtocolError(scan("$3\rxfoo\r\n"), "invalid bulk length");
    assertProtocolError(scan("*x\r\n"), "invalid multibulk length");
    assertProtocolError(scan("*-2\r\n"), "invalid multibulk length");
    assertProtocolError(scan("%-1\r\n"), "invalid multibulk length");
    assertProtocolError(scan("!-1\r\n"), "invalid bulk length");
  });

  test("errors are found before the line ends", () => {
    assertProtocolError(scan("$12x"), "invalid bulk length");
    assertProtocolError(scan("*1a"), "invalid multibulk length");
  });

  test("bad terminators", () => {
    assertProtocolError(scan("$3\r\nfooXY"), "invalid bulk terminator");
    assertProtocolError(scan("$3\r\nfoo\rX"), "invalid bulk terminator");
    assertProtocolError(scan("$3\r\nfooX"), "invalid bulk terminator");
    assertProtocolError(scan("+OK\rX"), /expected '\\n' after '\\r'/);
  });

  test("unknown type byte", () => {
    assertProtocolError(scan("?x\r\n"), "got '?' as reply type byte");
    assertProtocolError(scan("*1\r\n\x00\r\n"), "got '\\x00' as reply type byte");
  });

  test("limits are enforced from the header alone", () => {
    const limits = { maxBulkBytes: 1000, maxArrayLength: 10 };
    assert.equal(scanFrame(bytes("$1000\r\n"), 0, 7, limits), -1);
    assertProtocolError(scan("$1001\r\n", limits), "invalid bulk length");
    // Rejected at the digit that crosses the limit, before the CRLF arrives.
    assertProtocolError(scan("$10000", limits), "invalid bulk length");
    assertProtocolError(scan("*11\r\n", limits), "invalid multibulk length");
    assertProtocolError(scan("%11\r\n", limits), "invalid multibulk length");
    assertProtocolError(scan("*1\r\n*1\r\n$2000\r\n", limits), "invalid bulk length");
    assertProtocolError(scan("!1001\r\n", limits), "invalid bulk length");
  });

  test("a simple line may not outgrow maxBulkBytes", () => {
    const limits = { maxBulkBytes: 10, maxArrayLength: 10 };
    assertProtocolError(scan("+" + "x".repeat(20), limits), "too big reply line");
    assert.equal(scan("+" + "x".repeat(10), limits)(), -1);
  });
});

describe("scanRequest", () => {
  const scan = (s: string, limits?: RespLimits) => {
    const buf = bytes(s);
    return scanRequest(buf, 0, buf.length, limits);
  };

  test("multibulk requests", () => {
    assert.equal(scan("*1\r\n$4\r\nPING\r\n"), 14);
    assert.equal(scan("*1\r\n$4\r\nPING\r\n*1\r\n"), 14);
    assert.equal(scan("*2\r\n$3\r\nGET\r\n$3\r\nfo"), -1);
    assert.equal(scan("*0\r\n"), 4);
    assert.equal(scan("*-1\r\n"), 5);
    assert.equal(scan("*-5\r\n"), 5);
  });

  test("elements must be bulk strings, as Redis demands", () => {
    assertProtocolError(() => scan("*1\r\n:1\r\n"), "expected '$', got ':'");
    assertProtocolError(() => scan("*2\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n"), "expected '$', got '*'");
    assertProtocolError(() => scan("*1\r\nx"), "expected '$', got 'x'");
  });

  test("negative and oversize bulk lengths are rejected", () => {
    assertProtocolError(() => scan("*1\r\n$-1\r\n"), "invalid bulk length");
    assertProtocolError(() => scan("*1\r\n$x\r\n"), "invalid bulk length");
    const limits = { maxBulkBytes: 100, maxArrayLength: 3 };
    assertProtocolError(() => scan("*1\r\n$101\r\n", limits), "invalid bulk length");
    assertProtocolError(() => scan("*4\r\n", limits), "invalid multibulk length");
    assertProtocolError(() => scan("*x\r\n"), "invalid multibulk length");
  });

  test("inline requests end at LF", () => {
    assert.equal(scan("PING\r\n"), 6);
    assert.equal(scan("PING\n*1\r\n"), 5);
    assert.equal(scan("\r\n"), 2);
    assert.equal(scan("GET foo"), -1);
  });

  test("inline requests are limited to 64 KiB", () => {
    assert.equal(scan("x".repeat(INLINE_MAX_BYTES)), -1);
    assert.equal(scan("x".repeat(INLINE_MAX_BYTES) + "\n"), INLINE_MAX_BYTES + 1);
    assertProtocolError(() => scan("x".repeat(INLINE_MAX_BYTES + 1)), "too big inline request");
    assertProtocolError(() => scan("x".repeat(INLINE_MAX_BYTES + 1) + "\n"), "too big inline request");
  });
});

describe("ProtocolError", () => {
  test("carries Redis's reply text", () => {
    const error = new ProtocolError("invalid bulk length");
    assert.equal(error.name, "ProtocolError");
    assert.equal(error.replyText, "Protocol error: invalid bulk length");
    assert.ok(error instanceof Error, "error instanceof Error");
  });
});
