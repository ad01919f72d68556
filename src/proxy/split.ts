/**
 * Multi-key commands whose keys span slots, split into one single-key command per key and merged
 * back into the reply Redis would have given: MGET (values in key order), MSET (+OK unless a part
 * failed), DEL, UNLINK, EXISTS, TOUCH (integer replies summed). Part replies are merged from their
 * raw bytes; nothing is decoded but an integer.
 */
import { UpstreamRequest, type Pending, type ReplySink } from "./request.ts";
import { readInteger } from "../resp/reply-reader.ts";
import { commandBytes, errorKind, ErrorKind } from "../resp/replies.ts";
import { OK, encodeArray, encodeInteger, nullReply } from "../resp/encode.ts";

export const SplitKind = { Values: 0, Ok: 1, Sum: 2 } as const;
export type SplitKind = (typeof SplitKind)[keyof typeof SplitKind];

/** How each splittable command is split: the single-key command, keys per part, and the merge. */
export const SPLIT_COMMANDS: ReadonlyMap<string, { part: Uint8Array; stride: number; kind: SplitKind }> = new Map([
  ["MGET", { part: bytes("GET"), stride: 1, kind: SplitKind.Values }],
  ["MSET", { part: bytes("SET"), stride: 2, kind: SplitKind.Ok }],
  ["DEL", { part: bytes("DEL"), stride: 1, kind: SplitKind.Sum }],
  ["UNLINK", { part: bytes("UNLINK"), stride: 1, kind: SplitKind.Sum }],
  ["EXISTS", { part: bytes("EXISTS"), stride: 1, kind: SplitKind.Sum }],
  ["TOUCH", { part: bytes("TOUCH"), stride: 1, kind: SplitKind.Sum }],
]);

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

const MINUS = 45;

/** Called when a split command has its merged reply. */
export interface SplitOwner {
  /** The client's protocol when the command is split: its parts' replies come in that protocol. */
  readonly protocol: 2 | 3;
  complete(pending: Pending): void;
}

export class SplitCommand implements Pending, ReplySink {
  reply: Uint8Array | null = null;
  readonly #parts: Uint8Array[];
  #remaining: number;

  constructor(
    readonly kind: SplitKind,
    readonly owner: SplitOwner,
    count: number,
    /** The protocol the merged reply speaks (a later HELLO does not change it). */
    readonly protocol: 2 | 3 = owner.protocol,
  ) {
    this.#parts = new Array(count);
    this.#remaining = count;
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

  deliver(request: UpstreamRequest, reply: Uint8Array): void {
    this.#parts[request.part] = reply;
    if (--this.#remaining > 0) return;
    this.reply = this.#merge();
    this.owner.complete(this);
  }

  #merge(): Uint8Array {
    const parts = this.#parts;
    switch (this.kind) {
      case SplitKind.Values: {
        // MGET answers nil for a key holding another type, where GET says WRONGTYPE.
        const nil = nullReply(this.protocol);
        for (let i = 0; i < parts.length; i++) {
          if (parts[i]![0] === MINUS && startsWithWrongType(parts[i]!)) parts[i] = nil;
        }
        return encodeArray(parts);
      }
      case SplitKind.Ok: {
        for (const part of parts) if (errorKind(part) !== ErrorKind.None) return part;
        return OK;
      }
      case SplitKind.Sum: {
        let sum = 0;
        for (const part of parts) {
          if (part[0] === MINUS) return part;
          sum += readInteger(part) ?? 0;
        }
        return encodeInteger(sum);
      }
    }
  }
}

function startsWithWrongType(frame: Uint8Array): boolean {
  const word = "-WRONGTYPE";
  for (let i = 0; i < word.length; i++) if (frame[i] !== word.charCodeAt(i)) return false;
  return true;
}
