/**
 * Binary-safe map keys for byte strings (channel names, patterns): Redis names are bytes, and a
 * text decoding would fold different invalid sequences into one key.
 */

/** A map key for a name: its bytes as char codes. */
export function keyOf(bytes: Uint8Array): string {
  let key = "";
  for (let i = 0; i < bytes.length; i += 4096) key += String.fromCharCode(...bytes.subarray(i, i + 4096));
  return key;
}
