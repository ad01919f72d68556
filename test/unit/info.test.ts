/** INFO: section selection as Redis does it, and the keyspace merged from every primary. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { addKeyspace, formatSections, infoReply, keyspaceLines, parseSections, requestedSections } from "../../src/proxy/multi/info.ts";

const enc = new TextEncoder();
const args = (...words: string[]) => ["INFO", ...words].map((w) => enc.encode(w));

describe("INFO", () => {
  it("no argument, default, all and everything mean every section; names are case-insensitive", () => {
    assert.equal(requestedSections(args()), null);
    assert.equal(requestedSections(args("default")), null);
    assert.equal(requestedSections(args("keyspace", "ALL")), null);
    assert.equal(requestedSections(args("everything")), null);
    assert.deepEqual(requestedSections(args("Keyspace", "SERVER")), new Set(["keyspace", "server"]));
  });

  it("sections round-trip through Redis's layout", () => {
    const text = "# Server\r\nredis_version:7.0.0\r\n\r\n# Proxy\r\nslotgate_version:1\r\n";
    const sections = parseSections(text);
    assert.deepEqual(sections.map((s) => s.name), ["Server", "Proxy"]);
    assert.equal(formatSections(sections), text);
  });

  it("keys and expires are summed per db; avg_ttl is weighted by expires, primaries reporting 0 left out", () => {
    const totals = new Map();
    addKeyspace(totals, "# Keyspace\r\ndb0:keys=10,expires=2,avg_ttl=1000\r\ndb3:keys=1,expires=0,avg_ttl=0\r\n");
    addKeyspace(totals, "# Keyspace\r\ndb0:keys=5,expires=6,avg_ttl=3000\r\n");
    addKeyspace(totals, "# Keyspace\r\ndb0:keys=7,expires=4,avg_ttl=0\r\n");
    addKeyspace(totals, "# Keyspace\r\n");
    assert.deepEqual(keyspaceLines(totals), ["db0:keys=22,expires=12,avg_ttl=2500", "db3:keys=1,expires=0,avg_ttl=0"]);
  });

  it("a bulk string in RESP2, a verbatim txt string in RESP3", () => {
    const dec = new TextDecoder();
    assert.equal(dec.decode(infoReply("# Keyspace\r\n", 2)), "$12\r\n# Keyspace\r\n\r\n");
    assert.equal(dec.decode(infoReply("# Keyspace\r\n", 3)), "=16\r\ntxt:# Keyspace\r\n\r\n");
  });
});
