/**
 * A `Backend` for unit tests that need one but exercise only part of it: every method has a
 * harmless default (nothing routed, nothing redirected, no topology changes), and a test
 * overrides what it uses.
 */
import { Unavailable, type Backend } from "../../src/backend/contract.ts";

const NOT_HERE = new Unavailable("unsupported", "not in this test");

export function fakeBackend(name: string, overrides: Partial<Backend> = {}): Backend {
  return {
    name,
    capabilities: { publishReachesEveryNode: true },
    ready: Promise.resolve(),
    isReady: true,
    shardOf: () => 0,
    dispatch() {},
    anyShard: () => 0,
    primaries: () => [0],
    nodeFor: () => NOT_HERE,
    redirect: () => null,
    onTopology: () => () => {},
    status: () => {
      throw new Error("not in this test");
    },
    close: () => Promise.resolve(),
    destroy: () => Promise.resolve(),
    ...overrides,
  };
}
