/**
 * Error replies the proxy gives in several places, worded once: Redis Cluster's own where a
 * client expects them (CROSSSLOT), slotgate's where Redis has none (keys of one command routed to
 * different clusters), and the internal error that closes a client whose stream broke an invariant.
 */
import { errorReply } from "../resp/replies.ts";

/** Redis Cluster's refusal of a command whose keys hash to different slots. */
export const CROSSSLOT = errorReply("Keys in request don't hash to the same slot", "CROSSSLOT");

/** Keys (or channels) of one command route to different backends. */
export function differentClusters(a: string, b: string): Uint8Array {
  return errorReply(`keys in request route to different clusters ('${a}', '${b}')`);
}

/** What a client reads before it is closed for an internal fault (logged with its stack). */
export function internalError(error: Error): Uint8Array {
  return errorReply(`internal error: ${error.message}; closing the connection`);
}
