/**
 * `parseClusterSlots` on decoded `CLUSTER SLOTS` replies: a well-formed table parses into ranges
 * and addresses; anything else is refused with a TopologyError, never half-applied.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseClusterSlots, TopologyError } from "../../src/backends/cluster/topology.ts";
import { decode } from "../../src/resp/decode.ts";

const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

describe("parseClusterSlots", () => {
  it("reads ranges, primaries, replicas, ids and announced hostnames; an empty host is the one asked", () => {
    const reply = decode(bytes(
      "*1\r\n*4\r\n:0\r\n:16383\r\n*4\r\n$0\r\n\r\n:7000\r\n$2\r\nid\r\n*2\r\n$8\r\nhostname\r\n$2\r\nh0\r\n*2\r\n$8\r\n10.0.0.2\r\n:7001\r\n",
    ));
    assert.deepEqual(parseClusterSlots(reply, "10.9.8.7"), {
      ranges: [{ start: 0, end: 16383, primary: { host: "10.9.8.7", port: 7000, id: "id", hostname: "h0" }, replicas: [{ host: "10.0.0.2", port: 7001 }] }],
    });
  });

  // Found by the fuzzer (scripts/fuzz.ts, target slots): `typeof port === "number"` let a RESP3
  // double through, so [[1853, 3337, ["::1", 1.5]]] gave a node on port 1.5, and nan one on NaN.
  it("refuses a port that is not an integer in 1..65535, such as a RESP3 double", () => {
    for (const port of [",1.5\r\n", ",nan\r\n", ",inf\r\n", ":0\r\n", ":65536\r\n", "$4\r\n6379\r\n", "(6379\r\n"]) {
      const reply = decode(bytes(`*1\r\n*3\r\n:1853\r\n:3337\r\n*2\r\n$3\r\n::1\r\n${port}`));
      assert.throws(() => parseClusterSlots(reply, "h"), TopologyError, JSON.stringify(port));
    }
    assert.equal(parseClusterSlots(decode(bytes("*1\r\n*3\r\n:1\r\n:2\r\n*2\r\n$3\r\n::1\r\n,6379\r\n")), "h").ranges[0]!.primary.port, 6379);
  });
});
