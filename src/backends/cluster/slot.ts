/**
 * Redis Cluster key hashing: CRC16/XMODEM of the key (or of its hash tag) modulo 16384.
 */

/** Number of hash slots in a Redis Cluster. */
export const SLOT_COUNT = 16384;

/** A slot number: an integer in 0..16383 (not just a number: a RESP3 double is one too). */
export function isSlot(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value < SLOT_COUNT;
}

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** CRC16/XMODEM (polynomial 0x1021, initial value 0) of `buf[start, end)`, as Redis's crc16(). */
export function crc16(buf: Uint8Array, start = 0, end = buf.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ buf[i]!) & 0xff]!;
  return crc;
}

/**
 * The hash slot of a key, exactly as Redis's keyHashSlot(): when the key has a '{' followed later
 * by a '}' with at least one byte between them, only those bytes (the first such tag) are hashed;
 * otherwise, including for `{}`, the whole key is.
 */
export function keySlot(key: Uint8Array): number {
  const n = key.length;
  let open = 0;
  while (open < n && key[open] !== 123) open++;
  if (open < n) {
    let close = open + 1;
    while (close < n && key[close] !== 125) close++;
    if (close < n && close > open + 1) return crc16(key, open + 1, close) & (SLOT_COUNT - 1);
  }
  return crc16(key, 0, n) & (SLOT_COUNT - 1);
}
