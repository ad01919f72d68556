/**
 * Multi-key commands whose keys span slots, split into one single-key command per key and merged
 * back into the reply Redis would have given: MGET (values in key order), MSET (+OK unless a part
 * failed), DEL, UNLINK, EXISTS, TOUCH (integer replies summed). A split command is a `FanOut`
 * whose merge is its kind's; part replies are merged from their raw bytes, nothing is decoded but
 * an integer.
 */
import { FanOut, type Merge, type SplitOwner } from "./fanout.ts";
import { UpstreamRequest } from "../../backend/request.ts";
import { readInteger } from "../../resp/reply-reader.ts";
import { commandBytes, errorKind, ErrorKind } from "../../resp/replies.ts";
import { OK, encodeArray, encodeInteger, nullReply } from "../../resp/encode.ts";
import { MINUS } from "../../resp/bytes.ts";

export const SplitKind = { Values: 0, Ok: 1, Sum: 2 } as const;
export type SplitKind = (typeof SplitKind)[keyof typeof SplitKind];

/** How each splittable command is split: the single-key command, keys per part, and the merge. */
export const SPLIT_COMMANDS: ReadonlyMap<string, { partName: string; part: Uint8Array; stride: number; kind: SplitKind }> = new Map([
  ["MGET", { partName: "GET", part: bytes("GET"), stride: 1, kind: SplitKind.Values }],
  ["MSET", { partName: "SET", part: bytes("SET"), stride: 2, kind: SplitKind.Ok }],
  ["DEL", { partName: "DEL", part: bytes("DEL"), stride: 1, kind: SplitKind.Sum }],
  ["UNLINK", { partName: "UNLINK", part: bytes("UNLINK"), stride: 1, kind: SplitKind.Sum }],
  ["EXISTS", { partName: "EXISTS", part: bytes("EXISTS"), stride: 1, kind: SplitKind.Sum }],
  ["TOUCH", { partName: "TOUCH", part: bytes("TOUCH"), stride: 1, kind: SplitKind.Sum }],
]);

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}


/** MGET: the values in key order; a key holding another type answers nil, where GET says WRONGTYPE. */
function valuesMerge(nil: Uint8Array): Merge {
  return (replies) => {
    // The parts' array is this command's own and read only here: nils replace errors in place.
    const parts = replies as Uint8Array[];
    for (let i = 0; i < parts.length; i++) {
      if (parts[i]![0] === MINUS && startsWithWrongType(parts[i]!)) parts[i] = nil;
    }
    return encodeArray(parts);
  };
}

const VALUES_RESP2 = valuesMerge(nullReply(2));
const VALUES_RESP3 = valuesMerge(nullReply(3));

/** MSET: +OK unless a part failed. */
const okMerge: Merge = (parts) => {
  for (const part of parts) if (errorKind(part) !== ErrorKind.None) return part;
  return OK;
};

/** DEL, UNLINK, EXISTS, TOUCH: the parts' integers summed; an error wins. */
const sumMerge: Merge = (parts) => {
  let sum = 0;
  for (const part of parts) {
    if (part[0] === MINUS) return part;
    sum += readInteger(part) ?? 0;
  }
  return encodeInteger(sum);
};

/** The merge of a split kind, for a merged reply in `protocol`. */
function mergeOf(kind: SplitKind, protocol: 2 | 3): Merge {
  switch (kind) {
    case SplitKind.Values:
      return protocol === 3 ? VALUES_RESP3 : VALUES_RESP2;
    case SplitKind.Ok:
      return okMerge;
    case SplitKind.Sum:
      return sumMerge;
  }
}

/** A split command: a fan-out of its part requests whose merge is its kind's. */
export class SplitCommand extends FanOut {
  constructor(
    readonly kind: SplitKind,
    owner: SplitOwner,
    count: number,
    /** The protocol the merged reply speaks (a later HELLO does not change it). */
    readonly protocol: 2 | 3 = owner.protocol,
  ) {
    super(owner, count, mergeOf(kind, protocol));
  }

  /**
   * Build the part requests of `args` (name first, then keys or key-value pairs). The caller
   * dispatches them; replies come back through `deliver`.
   */
  static build(spec: { part: Uint8Array; stride: number; kind: SplitKind }, args: Uint8Array[], owner: SplitOwner, affinity: number): { split: SplitCommand; parts: UpstreamRequest[] } {
    const count = (args.length - 1) / spec.stride;
    const split = new SplitCommand(spec.kind, owner, count);
    const parts: UpstreamRequest[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const at = 1 + i * spec.stride;
      const frame = commandBytes(spec.part, args, at, spec.stride);
      // The router sets each part's shard once it knows the part's backend.
      parts[i] = new UpstreamRequest(frame, 0, split, affinity, i);
    }
    return { split, parts };
  }
}

function startsWithWrongType(frame: Uint8Array): boolean {
  const word = "-WRONGTYPE";
  for (let i = 0; i < word.length; i++) if (frame[i] !== word.charCodeAt(i)) return false;
  return true;
}
