/**
 * The write high-water mark every real adapter applies, so the core sees the same back-pressure
 * on Node, Bun and Deno (the simulator's `inFlightBudgetBytes` defaults to it too): `Conn.write`
 * returns false once more than this many bytes wait in user space, and `drain` follows when the
 * queue falls back to it.
 */

/** `write()` returns false once more than this many bytes wait in user space. */
export const HIGH_WATER_MARK_BYTES = 64 * 1024;
