/**
 * Test-only fault switches: the deterministic-simulation explorer (test/sim/explorer.ts) turns one
 * on to prove its invariants catch the bug it plants. Always false in production; nothing but
 * tests ever sets them.
 */
export const faults = {
  /** LiveConfig skips closing a retired (removed or replaced) cluster. */
  skipRemovedClusterClose: false,
  /** Cluster delivers an ASK redirect to the client instead of following it. */
  ignoreAsk: false,
};
