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
  /**
   * The scope hole of issue 11, restored: an upstream connection takes work after its node began
   * closing (arming its timeout on the closing scope throws into the caller), and an exception
   * while delivering a reply escapes into the shared connection that delivered it.
   */
  leakClosingScope: false,
};
