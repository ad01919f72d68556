import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc16, keySlot, SLOT_COUNT } from "../../src/backends/cluster/slot.ts";
import { encodeCommand } from "../../src/resp/encode.ts";
import { readInteger, ReplyReader } from "../../src/resp/reply-reader.ts";

const te = new TextEncoder();
const slot = (key: string) => keySlot(te.encode(key));

describe("crc16", () => {
  test("matches the XMODEM check value and Redis's test vector", () => {
    assert.equal(crc16(te.encode("123456789")), 0x31c3);
    assert.equal(crc16(new Uint8Array(0)), 0);
    const buf = te.encode("xx123456789yy");
    assert.equal(crc16(buf, 2, 11), 0x31c3);
  });
});

describe("keySlot", () => {
  test("known slots", () => {
    assert.equal(slot("foo"), 12182);
    assert.equal(slot("bar"), 5061);
    assert.equal(slot(""), 0);
    assert.equal(slot("123456789"), 0x31c3 % SLOT_COUNT);
  });

  test("hash tags", () => {
    assert.equal(slot("{user1000}.following"), slot("{user1000}.followers"));
    assert.equal(slot("{user1000}.following"), slot("user1000"));
    // Empty tag: the whole key is hashed.
    assert.equal(slot("foo{}{bar}"), crc16(te.encode("foo{}{bar}")) % SLOT_COUNT);
    // The tag runs from the first '{' to the first '}' after it.
    assert.equal(slot("foo{{bar}}zap"), slot("{bar"));
    assert.equal(slot("foo{bar}{zap}"), slot("bar"));
    // No closing brace: whole key.
    assert.equal(slot("foo{bar"), crc16(te.encode("foo{bar")) % SLOT_COUNT);
    assert.equal(slot("}foo{"), crc16(te.encode("}foo{")) % SLOT_COUNT);
    assert.equal(slot("{}"), crc16(te.encode("{}")) % SLOT_COUNT);
  });

  test("binary keys", () => {
    const key = Uint8Array.of(0, 255, 123, 0, 125, 1);
    assert.equal(keySlot(key), crc16(Uint8Array.of(0)) % SLOT_COUNT);
  });
});

/** A free TCP port on the loopback interface (found by binding port 0). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Sends `commands` pipelined on one connection and resolves with one frame per reply. */
async function pipeline(port: number, commands: Uint8Array[]): Promise<Uint8Array[]> {
  return new Promise((resolve, reject) => {
    const replies: Uint8Array[] = [];
    const socket = net.connect(port, "127.0.0.1");
    const reader = new ReplyReader((frame) => {
      replies.push(frame.slice());
      if (replies.length === commands.length) {
        socket.destroy();
        resolve(replies);
      }
    });
    socket.on("data", (chunk: Uint8Array) => reader.push(chunk));
    socket.on("error", reject);
    socket.on("connect", () => {
      for (const command of commands) socket.write(command);
    });
  });
}

describe("keySlot against a real redis-server", () => {
  let server: ChildProcess | undefined;
  let dir = "";
  let port = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "slotgate-slot-"));
    port = await freePort();
    server = spawn("redis-server", [
      "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "",
      "--appendonly", "no", "--cluster-enabled", "yes",
      "--cluster-config-file", join(dir, "nodes.conf"),
    ], { stdio: "ignore" });
    // Wait until it answers.
    for (let attempt = 0; ; attempt++) {
      try {
        await pipeline(port, [encodeCommand(["PING"])]);
        return;
      } catch (error) {
        if (attempt > 50) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });

  after(async () => {
    if (server !== undefined && server.exitCode === null) {
      const exited = new Promise((r) => server!.once("exit", r));
      server.kill("SIGKILL");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test("1000 random keys hash like CLUSTER KEYSLOT", async () => {
    let seed = 12345;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const alphabet = te.encode("ab{}{}xyz01-_.:\u00ff");
    const keys: Uint8Array[] = [];
    for (let i = 0; i < 1000; i++) {
      const key = new Uint8Array(random(24));
      for (let j = 0; j < key.length; j++) {
        // Mostly braces and a few letters, so tags of every shape occur; sometimes any byte.
        key[j] = random(4) === 0 ? random(256) : alphabet[random(alphabet.length)]!;
      }
      keys.push(key);
    }
    const replies = await pipeline(port, keys.map((key) => encodeCommand(["CLUSTER", "KEYSLOT", key])));
    for (let i = 0; i < keys.length; i++) {
      assert.equal(keySlot(keys[i]!), readInteger(replies[i]!), `key ${JSON.stringify(Array.from(keys[i]!))}`);
    }
  });
});
