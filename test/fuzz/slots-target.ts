/**
 * Fuzz target "slots": `parseClusterSlots` (src/backends/cluster/topology.ts), fed the way
 * discovery feeds it (bytes through `ReplyReader` with control-request limits, the first frame
 * through `decode`, an error reply set aside) and with arbitrary decoded values. Properties: it
 * returns a Topology or throws TopologyError, nothing else; a returned Topology is well formed
 * (slot ranges within 0..16383, hosts non-empty text, ports integers in 1..65535); a generated
 * reply gives exactly its topology; a reply broken where the parser must look is rejected.
 */
import { ProtocolError, ReplyError } from "../../src/resp/errors.ts";
import { decode, type RespValue } from "../../src/resp/decode.ts";
import { ReplyReader } from "../../src/resp/reply-reader.ts";
import type { RespLimits } from "../../src/resp/frame.ts";
import { parseClusterSlots, TopologyError, type NodeAddress, type Topology } from "../../src/backends/cluster/topology.ts";
import { ascii, chunking, concat, mutate, randomBytes, show, size, split, type SimRandom } from "./gen.ts";
import { shrinkChunked, shrinkSizes, type Failure, type Target } from "./harness.ts";

/** What discovery's control request gives its reader (src/backends/cluster/control-request.ts). */
const CONTROL_LIMITS: RespLimits = { maxBulkBytes: 64 * 1024 * 1024, maxArrayLength: 1 << 20 };
const ASKED = "10.9.8.7";

/** A value as the parser may see it: anything `decode` returns, and `undefined` (a missing element). */
type Value = RespValue | undefined;

export interface SlotsInput {
  /** The reply's bytes, or null when `value` is handed to the parser directly. */
  bytes: Uint8Array | null;
  /** The value `bytes` encode, when they encode one unmutated (shrinking works on it). */
  source: Value | null;
  sizes: number[];
  value: Value;
  /** The topology a well-formed reply must give, "reject" when it must be refused, null when either may happen. */
  expect: Topology | "reject" | null;
}

// --- generation -------------------------------------------------------------------------------

const HOSTS = ["10.0.0.1", "127.0.0.1", "192.168.100.200", "::1", "fe80::1%eth0", "redis-0.example", "node.local", "", "?"];

function nodeId(rng: SimRandom): string {
  let id = "";
  for (let i = 0; i < 40; i++) id += "0123456789abcdef"[rng.int(16)];
  return id;
}

/** A node entry as Redis 7 sends it over RESP2, and the address it must parse to. */
function genNode(rng: SimRandom): { value: RespValue[]; node: NodeAddress } {
  const host = rng.pick(HOSTS);
  const port = rng.chance(0.8) ? rng.intBetween(6379, 7000) : rng.pick([1, 65535, rng.intBetween(1, 65535)]);
  const node: NodeAddress = { host: host === "" || host === "?" ? ASKED : host, port };
  const value: RespValue[] = [ascii(host), port];
  if (rng.chance(0.8)) {
    const id = rng.chance(0.95) ? nodeId(rng) : "";
    value.push(ascii(id));
    if (id) node.id = id;
    if (rng.chance(0.5)) {
      const meta: RespValue[] = [];
      if (rng.chance(0.5)) meta.push(ascii("ip"), ascii("10.1.1.1"));
      if (rng.chance(0.7)) {
        const hostname = rng.pick(["redis-1.example", "a", "node-7"]);
        meta.push(ascii("hostname"), ascii(hostname));
        node.hostname = hostname;
      }
      value.push(meta);
    }
  }
  return { value, node };
}

/** A valid CLUSTER SLOTS reply (0..6 ranges, 0..3 replicas each) and its topology. */
function genSlots(rng: SimRandom): { value: RespValue[]; topology: Topology } {
  const value: RespValue[] = [];
  const ranges: Topology["ranges"] = [];
  for (let n = rng.int(7); n > 0; n--) {
    const start = rng.chance(0.2) ? rng.pick([0, 16383]) : rng.int(16384);
    const end = rng.chance(0.2) ? 16383 : rng.intBetween(start, Math.min(16383, start + rng.int(5000)));
    const primary = genNode(rng);
    const replicas = Array.from({ length: rng.int(4) }, () => genNode(rng));
    value.push([start, end, primary.value, ...replicas.map((r) => r.value)]);
    ranges.push({ start, end, primary: primary.node, replicas: replicas.map((r) => r.node) });
  }
  return { value, topology: { ranges } };
}

/** Any value `decode` can give (and undefined), nested up to `depth`. */
export function arbitrary(rng: SimRandom, depth = 0): Value {
  switch (rng.int(depth > 3 ? 8 : 11)) {
    case 0:
      return rng.chance(0.5) ? null : undefined;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -0, 1, -1, 1.5, NaN, Infinity, -Infinity, 16383, 16384, 65535, 65536, 6379, 2 ** 53, rng.int(70000)]);
    case 3:
      return rng.pick([0n, 6379n, -1n, 2n ** 64n]);
    case 4:
      return rng.pick(["", "?", "hostname", "10.0.0.1", "ip"]);
    case 5:
      return rng.chance(0.5) ? ascii(rng.pick(["", "?", "hostname", "10.0.0.1"])) : randomBytes(rng, size(rng, 16));
    case 6:
      return new ReplyError(rng.pick(["ERR This instance has cluster support disabled", "MOVED 1 x:1", ""]));
    case 7:
      return [];
    case 8:
    case 9: {
      const items: RespValue[] = [];
      // Values in an array are RespValues; a hole reads as undefined.
      for (let n = rng.int(6); n > 0; n--) items.push(arbitrary(rng, depth + 1) as RespValue);
      if (rng.chance(0.1)) items.length += 1;
      return items;
    }
    default: {
      const map = new Map<RespValue, RespValue>();
      for (let n = rng.int(4); n > 0; n--) map.set(arbitrary(rng, depth + 1) as RespValue, arbitrary(rng, depth + 1) as RespValue);
      return map;
    }
  }
}

/** Damage the parser must notice: a slot, a port, a host or a shape that is not what it must be. */
function breakSlots(rng: SimRandom, reply: RespValue[]): void {
  if (reply.length === 0) {
    reply.push(rng.pick<RespValue>([[], [0, 1], "x", null]));
    return;
  }
  const entry = reply[rng.int(reply.length)] as RespValue[];
  const nodeAt = 2 + rng.int(entry.length - 2);
  const node = entry[nodeAt] as RespValue[];
  switch (rng.int(5)) {
    case 0:
      entry[rng.int(2)] = rng.pick<RespValue>([-1, 16384, 1.5, NaN, Infinity, ascii("0"), null, 100n, true, []]);
      break;
    case 1:
      if ((entry[0] as number) < 16383) [entry[0], entry[1]] = [16383, rng.int(16383)];
      else entry[1] = 16384;
      break;
    case 2:
      node[1] = rng.pick<RespValue>([0, -1, 65536, 1.5, NaN, Infinity, -Infinity, ascii("6379"), 6379n, null, false]);
      break;
    case 3:
      node[0] = rng.pick<RespValue>([null, 10, [], new Map(), true, new ReplyError("ERR")]);
      break;
    default:
      if (rng.chance(0.5)) entry.length = rng.int(3);
      else entry[nodeAt] = rng.pick<RespValue>([[], [ascii("h")], ascii("10.0.0.1:6379"), null, 6379]);
  }
}

/** RESP bytes of a value (RESP3 types where RESP2 has none); undefined becomes a RESP3 null. */
export function encodeValue(value: Value): Uint8Array {
  const line = (s: string) => ascii(`${s}\r\n`);
  if (value === null || value === undefined) return line("_");
  if (typeof value === "boolean") return line(value ? "#t" : "#f");
  if (typeof value === "number") {
    if (Number.isInteger(value) && !Object.is(value, -0)) return line(`:${value}`);
    return line(`,${Number.isNaN(value) ? "nan" : value === Infinity ? "inf" : value === -Infinity ? "-inf" : String(value)}`);
  }
  if (typeof value === "bigint") return line(`(${value}`);
  if (typeof value === "string") value = ascii(value);
  if (value instanceof Uint8Array) return concat([line(`$${value.length}`), value, line("")]);
  if (value instanceof ReplyError) return line(`-${value.message}`);
  if (value instanceof Map) return concat([line(`%${value.size}`), ...[...value].flatMap(([k, v]) => [encodeValue(k), encodeValue(v)])]);
  return concat([line(`*${value.length}`), ...Array.from(value, (v) => encodeValue(v))]);
}

function generate(rng: SimRandom): SlotsInput {
  const r = rng.int(100);
  const { value, topology } = genSlots(rng);
  let input: Omit<SlotsInput, "sizes">;
  if (r < 40) input = { bytes: encodeValue(value), source: value, value: null, expect: topology };
  else if (r < 65) {
    breakSlots(rng, value);
    input = { bytes: encodeValue(value), source: value, value: null, expect: "reject" };
  } else if (r < 85) input = { bytes: mutate(rng, encodeValue(value)), source: null, value: null, expect: null };
  else input = { bytes: null, source: null, value: rng.chance(0.5) ? arbitrary(rng) : [arbitrary(rng) as RespValue, ...value], expect: null };
  return { ...input, sizes: chunking(rng, input.bytes?.length ?? 0) };
}

// --- checking ---------------------------------------------------------------------------------

/** What is wrong with a topology the parser returned, or null. */
function malformed(topology: Topology): string | null {
  if (!Array.isArray(topology.ranges)) return "ranges is not an array";
  const badNode = (node: NodeAddress) =>
    typeof node.host !== "string" || node.host === "" || !Number.isInteger(node.port) || node.port < 1 || node.port > 65535 ||
    (node.id !== undefined && typeof node.id !== "string") || (node.hostname !== undefined && typeof node.hostname !== "string");
  for (const range of topology.ranges) {
    const slot = (s: number) => Number.isInteger(s) && s >= 0 && s < 16384;
    if (!slot(range.start) || !slot(range.end) || range.start > range.end) return `bad range ${range.start}-${range.end}`;
    for (const node of [range.primary, ...range.replicas]) if (badNode(node)) return `bad node ${JSON.stringify(node)} (port ${node.port})`;
  }
  return null;
}

/** The topology as comparable text (an absent and an undefined field read alike). */
function canonical(topology: Topology): string {
  const node = (n: NodeAddress) => `${n.host}:${n.port}${n.id ? ` id=${n.id}` : ""}${n.hostname !== undefined ? ` hostname=${n.hostname}` : ""}`;
  return topology.ranges.map((r) => `${r.start}-${r.end} ${node(r.primary)} [${r.replicas.map(node).join(", ")}]`).join("; ");
}

/** The value discovery would parse from `bytes`, or null when it stops earlier (as it may). */
function asDiscoveryReads(bytes: Uint8Array, sizes: number[]): { value: Value } | null | Failure {
  const frames: Uint8Array[] = [];
  const reader = new ReplyReader((frame) => frames.push(frame), CONTROL_LIMITS);
  try {
    for (const chunk of split(bytes, sizes)) {
      reader.push(chunk);
      if (frames.length > 0) break;
    }
    if (frames.length === 0) return null;
    const value = decode(frames[0]!);
    return value instanceof Error ? null : { value };
  } catch (error) {
    if (error instanceof ProtocolError) return null;
    return { property: "reading a CLUSTER SLOTS reply throws only ProtocolError", detail: String(error instanceof Error ? error.stack : error) };
  }
}

function checkSlots(input: SlotsInput): Failure | null {
  let value = input.value;
  if (input.bytes !== null) {
    const read = asDiscoveryReads(input.bytes, input.sizes);
    if (read === null) {
      if (input.expect !== null && input.expect !== "reject") return { property: "a generated reply reads and decodes (harness check)", detail: "the reader or decode refused it" };
      return null;
    }
    if ("property" in read) return read;
    value = read.value;
  }
  let topology: Topology;
  try {
    topology = parseClusterSlots(value, ASKED);
  } catch (error) {
    if (!(error instanceof TopologyError)) return { property: "parseClusterSlots throws only TopologyError", detail: String(error instanceof Error ? error.stack : error) };
    if (input.expect !== null && input.expect !== "reject") return { property: "a valid CLUSTER SLOTS reply parses", detail: error.message };
    return null;
  }
  const wrong = malformed(topology);
  if (wrong) return { property: "a topology parseClusterSlots returns is well formed", detail: wrong };
  if (input.expect === "reject") return { property: "a reply with a bad slot, port, host or shape is rejected", detail: `parsed as ${canonical(topology)}` };
  if (input.expect !== null && canonical(input.expect) !== canonical(topology)) {
    return { property: "a valid CLUSTER SLOTS reply gives its topology", detail: `expected ${canonical(input.expect)}\ngot      ${canonical(topology)}` };
  }
  return null;
}

/** A value with one element of one array removed, everywhere it can be. */
function* shrinkValue(value: Value): Iterable<Value> {
  if (!Array.isArray(value)) return;
  for (let i = 0; i < value.length; i++) yield [...value.slice(0, i), ...value.slice(i + 1)];
  for (let i = 0; i < value.length; i++) {
    for (const smaller of shrinkValue(value[i])) yield [...value.slice(0, i), smaller as RespValue, ...value.slice(i + 1)];
  }
}

function describeValue(value: Value): string {
  if (value === undefined) return "undefined";
  if (value instanceof Uint8Array) return `bytes(${show(value, 80)})`;
  if (value instanceof ReplyError) return `ReplyError(${JSON.stringify(value.message)})`;
  if (value instanceof Map) return `Map{${[...value].map(([k, v]) => `${describeValue(k)} => ${describeValue(v)}`).join(", ")}}`;
  if (Array.isArray(value)) return `[${Array.from(value, (v) => describeValue(v)).join(", ")}]`;
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "number") return Object.is(value, -0) ? "-0" : String(value);
  return JSON.stringify(value);
}

export const slotsTarget: Target<SlotsInput> = {
  name: "slots",
  generate,
  check: checkSlots,
  *shrink(input) {
    if (input.bytes === null) {
      for (const value of shrinkValue(input.value)) yield { ...input, value };
      return;
    }
    for (const sizes of shrinkSizes(input.sizes)) yield { ...input, sizes };
    // A smaller reply no longer means what the generator meant: only the general properties hold.
    if (input.source !== null) {
      for (const source of shrinkValue(input.source)) {
        const bytes = encodeValue(source);
        yield { bytes, source, value: null, expect: null, sizes: [bytes.length] };
      }
      return;
    }
    for (const { bytes, sizes } of shrinkChunked(input.bytes, input.sizes)) yield { ...input, bytes, sizes, expect: null };
  },
  describe(input) {
    if (input.bytes === null) return `value ${describeValue(input.value)}, asked host ${ASKED}`;
    const source = input.source === null ? "" : `\nwhich encode ${describeValue(input.source)}`;
    return `bytes ${show(input.bytes)}${source}\nchunk sizes [${input.sizes.join(", ")}], asked host ${ASKED}`;
  },
  size: (input) => input.bytes?.length ?? 0,
};
