/** The routing table: longest prefix first, case-insensitive routes, prefix stripping, catch-all. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RouteTable } from "../../src/proxy/routing/routes.ts";
import type { Backend } from "../../src/backend/contract.ts";
import { fakeBackend } from "../support/fake-backend.ts";
import { isoTime } from "../../src/util/iso-time.ts";

const backend = (name: string): Backend => fakeBackend(name);
const key = (text: string) => new TextEncoder().encode(text);

describe("routing table", () => {
  const [a, b, c, all] = [backend("a"), backend("b"), backend("c"), backend("all")];
  const table = new RouteTable(
    [
      { prefix: "user:", backend: a, removePrefix: true, caseInsensitive: false },
      { prefix: "user:admin:", backend: b, removePrefix: false, caseInsensitive: false },
      { prefix: "Cache:", backend: c, removePrefix: false, caseInsensitive: true },
    ],
    all,
  );

  it("the longest matching prefix wins, whatever the order of the routes", () => {
    assert.equal(table.match(key("user:1"))!.backend, a);
    assert.equal(table.match(key("user:admin:1"))!.backend, b);
    assert.equal(table.match(key("user:admi"))!.backend, a);
  });

  it("removePrefix strips exactly the prefix; other routes strip nothing", () => {
    assert.equal(table.match(key("user:1"))!.strip, 5);
    assert.equal(table.match(key("user:admin:1"))!.strip, 0);
  });

  it("prefixes are case-sensitive unless the route says otherwise", () => {
    assert.equal(table.match(key("USER:1"))!.backend, all);
    assert.equal(table.match(key("CACHE:x"))!.backend, c);
    assert.equal(table.match(key("cache:x"))!.backend, c);
  });

  it("keys no prefix matches go to the catch-all, or nowhere without one", () => {
    assert.equal(table.match(key("other"))!.backend, all);
    assert.equal(table.match(key(""))!.backend, all);
    const strict = new RouteTable([{ prefix: "x:", backend: a, removePrefix: false, caseInsensitive: false }], null);
    assert.equal(strict.match(key("y")), null);
    assert.deepEqual([...strict.backends()], [a]);
    assert.deepEqual(new Set([...table.backends()].map((x) => x.name)), new Set(["a", "b", "c", "all"]));
  });
});

describe("wall-clock formatting without Date in the core", () => {
  it("isoTime matches Date.prototype.toISOString across eras", () => {
    for (const ms of [0, 951_782_400_000, 1_709_251_199_999, 1_700_000_000_123, 4_102_444_800_000, 253_402_300_799_999]) {
      assert.equal(isoTime(ms), new Date(ms).toISOString());
    }
    for (let i = 0; i < 2000; i++) {
      const ms = Math.floor(Math.random() * 4e12);
      assert.equal(isoTime(ms), new Date(ms).toISOString(), `at ${ms}`);
    }
  });
});
