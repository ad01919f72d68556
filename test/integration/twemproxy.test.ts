/**
 * Moving from twemproxy with one command: a nutcracker.yml is converted by the entry point's
 * `--from-twemproxy`, slotgate is started from the output in front of the same redis-servers, and
 * every key written through twemproxy itself (nutcracker, on loopback, with that very file) is
 * read back through slotgate: it answers only if it routes each key to the server twemproxy put it
 * on. Two pools: fnv1a_64 with weights, and md5 with named servers and a hash tag. Skipped only
 * when nutcracker is not installed (Debian: apt-get install nutcracker).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { detectRuntime } from "../../adapters/current.ts";
import { startStandaloneRedis, type StandaloneRedis } from "../../scripts/local-cluster.ts";
import { freePort } from "../../scripts/free-port.ts";
import { RawClient, resp } from "../support/proxy.ts";
import { accepts, until } from "./lifecycle-helpers.ts";
import { startEntry } from "../support/processes.ts";

const SLOW = { timeout: 180_000 };
const HAVE_NUTCRACKER = spawnSync("nutcracker", ["--version"]).status === 0;
const KEYS = 400;

/** Pipeline `commands` on a new connection and return the replies' text once `count` lines of simple replies / bulks are in. */
async function pipeline(port: number, commands: string[][], done: (text: string) => boolean): Promise<string> {
  const client = await RawClient.connect(port);
  try {
    client.send(commands.map((c) => resp(...c)).join(""));
    return await client.waitFor(done, 60_000);
  } finally {
    client.close();
  }
}

describe(`--from-twemproxy on the ${detectRuntime()} entry point, against nutcracker itself`, { skip: HAVE_NUTCRACKER ? false : "nutcracker is not installed" }, () => {
  let dir = "";
  const servers: StandaloneRedis[] = [];
  let nutcracker: ChildProcess | null = null;
  let file = "";
  const ports = { app: 0, tagged: 0 };

  /** Start nutcracker on fresh ports; false when its ports turned out not to be its own. */
  async function startNutcracker(): Promise<boolean> {
    ports.app = await freePort();
    ports.tagged = await freePort();
    const [a, b, c] = servers.map((s) => `127.0.0.1:${s.port}`);
    file = join(dir, "nutcracker.yml");
    writeFileSync(
      file,
      `app:
  listen: 127.0.0.1:${ports.app}
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: false
  redis: true
  timeout: 5000
  servers:
   - ${a}:1
   - ${b}:2
   - ${c}:1

tagged:
  listen: 127.0.0.1:${ports.tagged}
  hash: md5
  hash_tag: "{}"
  distribution: ketama
  redis: true
  servers:
   - ${a}:1 first
   - ${b}:1 second
   - ${c}:3 third
`,
    );
    const stats = await freePort();
    const child = spawn("nutcracker", ["-c", file, "-s", String(stats), "-a", "127.0.0.1", "-o", join(dir, "nutcracker.log")], { stdio: "ignore" });
    nutcracker = child;
    await until(async () => child.exitCode !== null || ((await accepts(ports.app)) && (await accepts(ports.tagged))), "nutcracker to listen");
    // The machine is shared: a port found free may have been taken by another process meanwhile.
    // A key written through each port must land on these servers.
    let ours = child.exitCode === null;
    if (ours) {
      for (const port of [ports.app, ports.tagged]) await pipeline(port, [["SET", `probe:${port}`, "1"]], (t) => t.endsWith("\r\n"));
      let total = 0;
      for (const server of servers) total += Number(await server.command("DBSIZE"));
      ours = total === 2;
    }
    for (const server of servers) await server.command("FLUSHALL");
    if (!ours) child.kill("SIGKILL");
    return ours;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "slotgate-twemproxy-"));
    for (let i = 0; i < 3; i++) servers.push(await startStandaloneRedis());
    for (let attempt = 1; !(await startNutcracker()); attempt++) {
      if (attempt >= 5) throw new Error("nutcracker did not start on ports of its own");
    }
  });

  after(async () => {
    nutcracker?.kill("SIGKILL");
    for (const server of servers) await server.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // Keys that differ in every byte: twemproxy's fnv1a_64 keeps only the low 32 bits, which for
  // keys differing only in their last bytes fall in a narrow arc of the ring (on one server).
  const word = (i: number) => {
    let x = (i + 1) * 2654435761;
    let out = "";
    for (let n = 0; n < 10; n++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      out += String.fromCharCode(97 + (x % 26));
    }
    return out;
  };
  for (const [pool, format, key] of [
    ["app", "json", (i: number) => `${word(i)}:app:${i}`],
    ["tagged", "yaml", (i: number) => `{${word(i % 37)}}:tagged:${i}`],
  ] as const) {
    it(`pool '${pool}' (${format}): every key written through twemproxy is read through slotgate`, SLOW, async () => {
      const converted = await startEntry(["--from-twemproxy", file, "--pool", pool, "--format", format], {}).done;
      assert.equal(converted.code, 0, converted.stderr);
      assert.equal(converted.stderr, "", "nothing in these pools is left out");
      const config = join(dir, `${pool}.${format === "yaml" ? "yaml" : "json"}`);
      writeFileSync(config, converted.stdout);
      const [port, admin] = [await freePort(), await freePort()];
      // The converted listen is twemproxy's own port, in use here: a variable overrides it.
      const proxy = startEntry([], { SLOTGATE_CONFIG: config, SLOTGATE_LISTEN: `127.0.0.1:${port}`, SLOTGATE_ADMIN_LISTEN: `127.0.0.1:${admin}` });
      try {
        await until(async () => (await fetch(`http://127.0.0.1:${admin}/readyz`)).status === 200, "slotgate to be ready").catch((error) => {
          throw new Error(`${error.message}; output:\n${proxy.output()}`);
        });
        const keys = Array.from({ length: KEYS }, (_, i) => key(i));
        const written = await pipeline(ports[pool], keys.map((k) => ["SET", k, `v-${k}`]), (t) => t.split("+OK\r\n").length - 1 >= KEYS);
        assert.equal(written, "+OK\r\n".repeat(KEYS), "twemproxy wrote every key");
        // The keys are spread over every server, so reading them all back checks the placement.
        for (const server of servers) assert.ok(Number(await server.command("DBSIZE")) > 0, `server ${server.port} holds some keys`);
        const want = keys.map((k) => `$${Buffer.byteLength(`v-${k}`)}\r\nv-${k}\r\n`).join("");
        const read = await pipeline(port, keys.map((k) => ["GET", k]), (t) => t.length >= want.length || t.includes("$-1\r\n"));
        assert.equal(read, want, "slotgate finds every key on the server twemproxy put it on");
        proxy.signal("SIGTERM");
        assert.equal((await proxy.done).code, 0, proxy.output());
      } finally {
        proxy.child.kill("SIGKILL");
        for (const server of servers) await server.command("FLUSHALL");
      }
    });
  }
});

describe(`--from-twemproxy refusals on the ${detectRuntime()} entry point`, () => {
  it("settings that would move keys: each named on stderr, nothing on stdout, exit 2; warnings alone exit 0", SLOW, async () => {
    const dir = mkdtempSync(join(tmpdir(), "slotgate-twemproxy-"));
    try {
      const bad = join(dir, "bad.yml");
      writeFileSync(bad, "p:\n  listen: 127.0.0.1:22121\n  redis: true\n  hash: murmur\n  distribution: modula\n  servers:\n   - 127.0.0.1:6379:1\n");
      const refused = await startEntry(["--from-twemproxy", bad], {}).done;
      assert.equal(refused.code, 2);
      assert.equal(refused.stdout, "");
      assert.deepEqual(refused.stderr.trim().split("\n"), [
        `slotgate: ${bad}: pool 'p': hash: murmur: slotgate has no such hash; slotgate hashes keys with fnv1a_64, fnv1_64, fnv1a_32, fnv1_32, md5, and any other would move keys`,
        `slotgate: ${bad}: pool 'p': distribution: modula: slotgate places keys only by ketama, and any other would move keys`,
      ]);
      const warned = join(dir, "warned.yml");
      writeFileSync(warned, "p:\n  listen: 127.0.0.1:22121\n  redis: true\n  auto_eject_hosts: true\n  servers:\n   - 127.0.0.1:6379:1\n");
      const converted = await startEntry(["--from-twemproxy", warned], {}).done;
      assert.equal(converted.code, 0, converted.stderr);
      assert.match(converted.stderr, /^slotgate: warning: pool 'p': auto_eject_hosts: true: not carried over: slotgate never ejects a server/);
      assert.deepEqual(JSON.parse(converted.stdout), { listen: "127.0.0.1:22121", clusters: { p: { type: "standalone", servers: ["127.0.0.1:6379"] } }, catchAll: "p" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
