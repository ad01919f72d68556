/**
 * The RESP3 encoders (map, set, verbatim string, the protocol's null) and the protocol of split
 * replies: MGET's nil for a part that hit another type is `_` for a RESP3 client, in the protocol
 * the client had when the command was split.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeArray, encodeBulk, encodeInteger, encodeMap, encodeSet, encodeVerbatim, nullReply } from "../../src/resp/encode.ts";
import { ReplyReader } from "../../src/resp/reply-reader.ts";
import { SPLIT_COMMANDS, SplitCommand } from "../../src/proxy/multi/split.ts";
import type { UpstreamRequest } from "../../src/backend/request.ts";
import { FakeClient } from "../support/fake-client.ts";
import { fakeBackend } from "../support/fake-backend.ts";

const latin1 = (bytes: Uint8Array) => Array.from(bytes, (b) => String.fromCharCode(b)).join("");
const encoder = new TextEncoder();

/** The frames a reply reader finds in `bytes`. */
function frames(bytes: Uint8Array): string[] {
  const found: string[] = [];
  new ReplyReader((frame) => found.push(latin1(frame))).push(bytes);
  return found;
}

describe("RESP3 encoders", () => {
  it("a map counts pairs, a set counts elements; both hold the frames as given", () => {
    const pairs = [encodeBulk("a"), encodeInteger(1), encodeBulk("b"), encodeArray([encodeBulk("x")])];
    const map = encodeMap(pairs);
    assert.equal(latin1(map), "%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n*1\r\n$1\r\nx\r\n");
    assert.deepEqual(frames(map), [latin1(map)], "one frame");
    assert.equal(latin1(encodeMap([])), "%0\r\n");
    assert.throws(() => encodeMap([encodeBulk("lonely key")]), RangeError);
    const set = encodeSet([encodeInteger(0), encodeInteger(12)]);
    assert.equal(latin1(set), "~2\r\n:0\r\n:12\r\n");
    assert.deepEqual(frames(set), [latin1(set)], "one frame");
  });

  it("a map holding maps, sets and nulls is still one frame", () => {
    const inner = encodeMap([encodeBulk("k"), encodeSet([nullReply(3), encodeBulk("v")])]);
    const outer = encodeMap([encodeBulk("nested"), inner, encodeBulk("nil"), nullReply(3)]);
    assert.deepEqual(frames(outer), [latin1(outer)]);
  });

  it("a verbatim string counts its format prefix and its UTF-8 bytes", () => {
    assert.equal(latin1(encodeVerbatim("Some text")), "=13\r\ntxt:Some text\r\n");
    assert.equal(latin1(encodeVerbatim("# Title", "mkd")), "=11\r\nmkd:# Title\r\n");
    assert.equal(latin1(encodeVerbatim("")), "=4\r\ntxt:\r\n");
    const utf8 = encodeVerbatim("café\r\n€");
    const body = encoder.encode("txt:café\r\n€");
    assert.equal(latin1(utf8), `=${body.length}\r\n${latin1(body)}\r\n`);
    assert.deepEqual(frames(utf8), [latin1(utf8)], "CR LF inside the payload do not end the frame");
    assert.throws(() => encodeVerbatim("x", "text"), RangeError);
  });

  it("the null of each protocol", () => {
    assert.equal(latin1(nullReply(2)), "$-1\r\n");
    assert.equal(latin1(nullReply(3)), "_\r\n");
  });
});

describe("split replies follow the client's protocol", () => {
  const args = (...words: string[]) => words.map((w) => encoder.encode(w));
  /** Split `words` for `client` over one backend; the parts sent, in order. */
  const split = (client: FakeClient, words: string[]) => {
    const sent: UpstreamRequest[] = [];
    const backend = fakeBackend("main", { dispatch: (request) => void sent.push(request) });
    const command = new SplitCommand(SPLIT_COMMANDS.get(words[0]!)!, client, args(...words), { only: null, match: () => ({ backend, strip: 0 }), noRoute: () => encoder.encode("-ERR no route\r\n") }, true);
    command.start();
    return { command, sent };
  };

  for (const protocol of [2, 3] as const) {
    it(`MGET of a RESP${protocol} client: a WRONGTYPE part becomes the protocol's null, other parts stay as they came`, () => {
      const client = new FakeClient(protocol);
      const { command, sent } = split(client, ["MGET", "a", "hash", "missing"]);
      const missing = protocol === 3 ? "_\r\n" : "$-1\r\n";
      command.deliver(sent[2]!, encoder.encode(missing));
      command.deliver(sent[0]!, encodeBulk("1"));
      assert.equal(client.replies[0], null, "not before every part answered");
      command.deliver(sent[1]!, encoder.encode("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"));
      assert.equal(latin1(command.reply!), `*3\r\n$1\r\n1\r\n${missing}${missing}`);
      assert.equal(sent.every((request) => request.resp3 === (protocol === 3) && request.readOnly), true);
    });
  }

  it("a HELLO after the split does not change the merged reply's protocol", () => {
    const client = new FakeClient(3);
    const { command, sent } = split(client, ["MGET", "a", "b"]);
    client.protocol = 2;
    command.deliver(sent[0]!, encoder.encode("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"));
    command.deliver(sent[1]!, encoder.encode("_\r\n"));
    assert.equal(latin1(command.reply!), "*2\r\n_\r\n_\r\n");
  });
});
