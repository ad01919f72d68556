/**
 * `--from-twemproxy`'s conversion (src/config/twemproxy.ts): pools become standalone clusters with
 * the same hash, hash tag, servers, weights and names; what would move keys is an error; what only
 * changes failure handling is a warning naming the setting. The output always validates.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { fromTwemproxy, renderConfig } from "../../src/config/twemproxy.ts";
import { validateConfig } from "../../src/config/load.ts";

/** Debian's example nutcracker.yml (/usr/share/doc/nutcracker/examples), abridged: two Redis pools, two memcached ones. */
const EXAMPLE = `alpha:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: true
  redis: true
  server_retry_timeout: 2000
  server_failure_limit: 1
  servers:
   - 127.0.0.1:6379:1

beta:
  listen: 127.0.0.1:22122
  hash: fnv1a_64
  hash_tag: "{}"
  distribution: ketama
  auto_eject_hosts: false
  timeout: 400
  redis: true
  servers:
   - 127.0.0.1:6380:1 server1
   - 127.0.0.1:6381:1 server2

gamma:
  listen: 127.0.0.1:22123
  hash: fnv1a_64
  distribution: ketama
  servers:
   - 127.0.0.1:11212:1

omega:
  listen: /tmp/gamma
  hash: hsieh
  distribution: ketama
  servers:
   - 127.0.0.1:11214:100000
`;

describe("twemproxy conversion", () => {
  it("one pool: the same hash, hash tag, servers, weights and names; its listen address and timeout", () => {
    const result = fromTwemproxy(EXAMPLE, { pool: "beta" });
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(result.document, {
      listen: "127.0.0.1:22122",
      clusters: {
        beta: {
          type: "standalone",
          servers: [
            { address: "127.0.0.1:6380", name: "server1" },
            { address: "127.0.0.1:6381", name: "server2" },
          ],
          hashTag: "{}",
          opTimeoutMs: 400,
          connectTimeoutMs: 400,
        },
      },
      catchAll: "beta",
    });
    validateConfig(result.document);
  });

  it("every pool: memcached pools are left out, others beyond the first are unrouted clusters; each setting not carried over is named", () => {
    const result = fromTwemproxy(EXAMPLE);
    assert.deepEqual(result.errors, []);
    const document = result.document!;
    assert.deepEqual(Object.keys(document.clusters as object), ["alpha", "beta"]);
    assert.equal(document.catchAll, "alpha");
    assert.equal(document.listen, "127.0.0.1:22121");
    assert.deepEqual((document.clusters as Record<string, unknown>).alpha, { type: "standalone", servers: ["127.0.0.1:6379"] });
    const warned = (pattern: RegExp) => assert.ok(result.warnings.some((w) => pattern.test(w)), `${pattern} in ${result.warnings.join("\n")}`);
    warned(/^pool 'alpha': auto_eject_hosts: true: not carried over: slotgate never ejects a server/);
    warned(/^pool 'alpha': server_retry_timeout: 2000: not carried over/);
    warned(/^pool 'alpha': server_failure_limit: 1: not carried over/);
    warned(/^pool 'beta' \(listen 127\.0\.0\.1:22122\): slotgate has one client port.*--pool beta/);
    warned(/^pool 'gamma': a memcached pool/);
    // omega is memcached too: its unsupported hash is never looked at.
    warned(/^pool 'omega': a memcached pool/);
    assert.equal(result.warnings.length, 6, result.warnings.join("\n"));
    validateConfig(document);
  });

  it("weights, defaults, hashes slotgate has, IPv6 servers, redis_auth (clients and servers), server_connections", () => {
    const result = fromTwemproxy(`main:
  listen: 0.0.0.0:6000
  redis: true
  hash: md5
  redis_auth: s3cret
  server_connections: 4
  preconnect: true
  servers:
    - 10.0.0.1:6379:2
    - "::1:6380:1"
    - redis-3.example:6379:1 third
`);
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.document, {
      listen: "0.0.0.0:6000",
      clusters: {
        main: {
          type: "standalone",
          servers: [{ address: "10.0.0.1:6379", weight: 2 }, "[::1]:6380", { address: "redis-3.example:6379", name: "third" }],
          hash: "md5",
          connectionsPerNode: 4,
          password: "s3cret",
        },
      },
      catchAll: "main",
      requirepass: "s3cret",
    });
    assert.deepEqual(result.warnings.map((w) => w.split(":")[0]), ["pool 'main'"]);
    assert.match(result.warnings[0]!, /preconnect: true: not carried over/);
    validateConfig(result.document);
  });

  it("a non-loopback listen without redis_auth keeps twemproxy's open door, and says so", () => {
    const result = fromTwemproxy("p:\n  listen: 0.0.0.0:6000\n  redis: true\n  servers: [127.0.0.1:6379:1]\n");
    assert.equal(result.document!.allowUnprotected, true);
    assert.match(result.warnings.at(-1)!, /allowUnprotected is set; consider requirepass/);
    validateConfig(result.document);
  });

  it("what would move keys is an error, and no configuration is given", () => {
    const cases: [string, RegExp][] = [
      ["hash: murmur", /pool 'p': hash: murmur: slotgate has no such hash; slotgate hashes keys with fnv1a_64, fnv1_64, fnv1a_32, fnv1_32, md5/],
      ["hash: sha1", /hash: sha1: not a twemproxy hash/],
      ["distribution: modula", /distribution: modula: slotgate places keys only by ketama/],
      ["distribution: random", /distribution: random: slotgate places keys only by ketama/],
      ["redis_db: 3", /redis_db: 3: slotgate always uses database 0/],
      ['hash_tag: "{"', /hash_tag: "\{": expected two characters/],
    ];
    for (const [setting, error] of cases) {
      const result = fromTwemproxy(`p:\n  redis: true\n  ${setting}\n  servers: [127.0.0.1:6379:1]\n`);
      assert.equal(result.document, null, setting);
      assert.equal(result.errors.length, 1, `${setting}: ${result.errors.join("; ")}`);
      assert.match(result.errors[0]!, error);
    }
    const servers = fromTwemproxy("p:\n  redis: true\n  servers:\n    - /tmp/redis.sock:1\n    - 127.0.0.1:6379\n    - 127.0.0.1:6379:0\n    - 127.0.0.1:6379:1 a b\n");
    assert.deepEqual(servers.errors, [
      'pool \'p\': server "/tmp/redis.sock:1": a unix socket: slotgate connects to servers over TCP only, and the ring would hash another name',
      'pool \'p\': server "127.0.0.1:6379": expected "host:port:weight [name]"',
      "pool 'p': server \"127.0.0.1:6379:0\": weight 0: expected 1 to 1000000",
      'pool \'p\': server "127.0.0.1:6379:1 a b": expected "host:port:weight [name]"',
    ]);
    assert.deepEqual(fromTwemproxy("p:\n  redis: true\n").errors, ["pool 'p': servers: expected a list of \"host:port:weight [name]\""]);
  });

  it("a file with no Redis pool, a missing --pool, bad YAML: errors", () => {
    assert.deepEqual(fromTwemproxy("m:\n  servers: [127.0.0.1:11211:1]\n").errors, ["no Redis pool to convert (every pool is a memcached pool)"]);
    assert.deepEqual(fromTwemproxy(EXAMPLE, { pool: "zeta" }).errors, ["no pool 'zeta' (pools: alpha, beta, gamma, omega)"]);
    assert.match(fromTwemproxy("p:\n  servers: [a\n").errors[0]!, /^invalid YAML: .* at line \d+, column \d+$/);
    assert.deepEqual(fromTwemproxy("- a\n").errors, ["expected a YAML mapping of pool names to pools"]);
  });

  it("a pool name slotgate cannot take is renamed, and says so; a unix-socket listen keeps slotgate's default", () => {
    const result = fromTwemproxy("my pool:\n  listen: /var/run/nutcracker.sock 0666\n  redis: true\n  servers: [127.0.0.1:6379:1]\n");
    assert.deepEqual(Object.keys(result.document!.clusters as object), ["my-pool"]);
    assert.equal(result.document!.catchAll, "my-pool");
    assert.equal(result.document!.listen, undefined);
    assert.ok(result.warnings.some((w) => /renamed to cluster 'my-pool'/.test(w)));
    assert.ok(result.warnings.some((w) => /listen \/var\/run\/nutcracker\.sock 0666: slotgate listens on TCP host:port only/.test(w)));
    validateConfig(result.document);
  });

  it("renders JSON or YAML that read back to the same document", () => {
    const { document } = fromTwemproxy(EXAMPLE, { pool: "beta" });
    assert.deepEqual(JSON.parse(renderConfig(document, "json")), document);
    assert.deepEqual(parse(renderConfig(document, "yaml")), document);
  });
});
