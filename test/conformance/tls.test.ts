/**
 * TLS conformance of the `Runtime` adapters: the same file runs under Node, Bun and Deno, each
 * against the adapter `currentRuntime()` picks. The peers are real: a TLS redis-server for
 * `connect`, node:tls clients for `listen`, with certificates made by openssl for the run.
 * Deno's native TLS API cannot require client certificates, set a TLS 1.3 minimum or skip
 * verification: there the adapter serves exactly those sockets through Deno's `node:tls`, and
 * every test below holds on Deno too.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as tls from "node:tls";
import { currentRuntime } from "../../adapters/current.ts";
import type { Conn, ConnHandlers, Listener, ListenTls, Runtime } from "../../src/runtime.ts";
import { pattern, within } from "../support/within.ts";
import { makeTestCerts, type TestCerts } from "../../scripts/tls-certs.ts";
import { startStandaloneRedis, type StandaloneRedis } from "../../scripts/local-cluster.ts";
import { freePorts } from "../../scripts/free-port.ts";

const HOST = "127.0.0.1";
const TEST = { timeout: 60_000 };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

let rt: Runtime;
let certs: TestCerts;
let redis: StandaloneRedis;
let redisTlsPort: number;
const listeners: Listener[] = [];
const conns: Conn[] = [];
const sockets: tls.TLSSocket[] = [];

const isDeno = () => rt.name === "deno";

/** Listens with `secure`; every accepted connection echoes what it reads. Counts accepts. */
async function echoServer(secure: ListenTls): Promise<{ listener: Listener; accepted: () => number }> {
  let accepted = 0;
  const listener = await rt.listen({ host: HOST, port: 0, tls: secure }, (conn): ConnHandlers => {
    accepted++;
    conns.push(conn);
    return { data: (chunk) => void conn.write(chunk), drain() {}, close() {} };
  });
  listeners.push(listener);
  return { listener, accepted: () => accepted };
}

/** A node:tls client; resolves once its handshake is done, rejects with the handshake's error. */
function tlsClient(port: number, options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  return within(
    new Promise<tls.TLSSocket>((resolve, reject) => {
      const socket = tls.connect({ host: HOST, port, servername: "localhost", ...options });
      sockets.push(socket);
      socket.once("secureConnect", () => resolve(socket));
      socket.once("error", reject);
      socket.once("close", () => reject(new Error("closed during the handshake")));
    }),
    `TLS handshake with port ${port}`,
  );
}

/** Writes `text` and resolves with what comes back (the echo), or rejects when the socket fails. */
function echo(socket: tls.TLSSocket, text: string): Promise<string> {
  return within(
    new Promise<string>((resolve, reject) => {
      let got = "";
      const onData = (chunk: Buffer) => {
        got += chunk.toString();
        if (got.length >= text.length) {
          socket.off("data", onData);
          resolve(got);
        }
      };
      socket.on("data", onData);
      socket.once("error", reject);
      socket.once("close", () => reject(new Error(`closed before the echo (got '${got}')`)));
      socket.write(text);
    }),
    `echo of '${text}'`,
  );
}

/** Connects with the adapter and reads until `until` says the reply is whole. */
async function request(port: number, secure: Parameters<Runtime["connect"]>[0]["tls"], payload: Uint8Array, whole: (text: string) => boolean): Promise<string> {
  let text = "";
  let done!: () => void;
  let failed!: (error: Error) => void;
  const finished = new Promise<void>((resolve, reject) => {
    done = resolve;
    failed = reject;
  });
  const conn = await within(
    rt.connect({ host: HOST, port, tls: secure }, {
      data: (chunk) => {
        text += decoder.decode(chunk);
        if (whole(text)) done();
      },
      drain() {},
      close: (error) => failed(error ?? new Error("closed before the reply")),
    }),
    `TLS connect to ${port}`,
  );
  conns.push(conn);
  conn.write(payload);
  await within(finished, `reply from ${port}`);
  conn.destroy();
  return text;
}

before(async () => {
  rt = await currentRuntime();
  certs = makeTestCerts();
  [redisTlsPort] = (await freePorts(1)) as [number];
  redis = await startStandaloneRedis({
    extraConfig: [
      `tls-port ${redisTlsPort}`,
      `tls-cert-file ${certs.server.certFile}`,
      `tls-key-file ${certs.server.keyFile}`,
      `tls-ca-cert-file ${certs.caFile}`,
      "tls-auth-clients optional",
    ],
  });
});

after(async () => {
  for (const socket of sockets) socket.destroy();
  for (const conn of conns) conn.destroy();
  await Promise.all(listeners.map((l) => l.close()));
  await redis?.stop();
  certs?.remove();
});

describe("TLS connect", () => {
  test("connect with tls talks to a TLS redis-server, a large value included", TEST, async () => {
    assert.equal(await request(redisTlsPort, { ca: certs.ca }, encoder.encode("PING\r\n"), (t) => t.endsWith("\r\n")), "+PONG\r\n");
    // 4 MiB in one write and back: the write queue and partial writes under TLS.
    const value = decoder.decode(pattern(4 * 1024 * 1024).map((b) => 97 + (b % 26)));
    const set = `*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$${value.length}\r\n${value}\r\n*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n`;
    const expected = `+OK\r\n$${value.length}\r\n${value}\r\n`;
    const reply = await request(redisTlsPort, { ca: certs.ca, servername: "localhost" }, encoder.encode(set), (t) => t.length >= expected.length);
    assert.equal(reply.length, expected.length);
    assert.ok(reply === expected, "the value came back byte for byte");
  });

  test("a client certificate is presented when the server asks for one", TEST, async () => {
    // The same redis, asked to require client certificates from now on.
    await redis.command("CONFIG", "SET", "tls-auth-clients", "yes");
    try {
      const withCert = await request(redisTlsPort, { ca: certs.ca, cert: certs.client.cert, key: certs.client.key }, encoder.encode("PING\r\n"), (t) => t.endsWith("\r\n"));
      assert.equal(withCert, "+PONG\r\n");
      await assert.rejects(request(redisTlsPort, { ca: certs.ca }, encoder.encode("PING\r\n"), (t) => t.endsWith("\r\n")));
    } finally {
      await redis.command("CONFIG", "SET", "tls-auth-clients", "optional");
    }
  });

  test("a server certificate from another CA is refused with a clear error", TEST, async () => {
    const { listener, accepted } = await echoServer({ cert: certs.wrongCa.cert, key: certs.wrongCa.key });
    const error = await within(rt.connect({ host: HOST, port: listener.port, tls: { ca: certs.ca } }, { data() {}, drain() {}, close() {} }).then(
      (conn) => {
        conn.destroy();
        throw new Error("connected to a server whose certificate no trusted CA signed");
      },
      (e: Error) => e,
    ), "refused connect");
    assert.equal(error.name, "TlsError");
    assert.match(error.message, new RegExp(`^TLS with 127\\.0\\.0\\.1:${listener.port} failed: .*(issuer|verify|certificate)`, "i"));
    assert.equal(accepted(), 0, "the server side saw no finished handshake");
  });

  test("an expired server certificate is refused with a clear error", TEST, async () => {
    const { listener } = await echoServer({ cert: certs.expired.cert, key: certs.expired.key });
    await assert.rejects(rt.connect({ host: HOST, port: listener.port, tls: { ca: certs.ca } }, { data() {}, drain() {}, close() {} }), (e: Error) => {
      assert.equal(e.name, "TlsError");
      assert.match(e.message, /expired/i);
      return true;
    });
  });

  test("insecure connects to a server it cannot verify", TEST, async () => {
    const { listener } = await echoServer({ cert: certs.wrongCa.cert, key: certs.wrongCa.key });
    assert.equal(await request(listener.port, { insecure: true }, encoder.encode("hi"), (t) => t === "hi"), "hi");
    // Without the switch the same server is refused: the switch, not the server, let it through.
    await assert.rejects(request(listener.port, { ca: certs.ca }, encoder.encode("hi"), (t) => t === "hi"), (e: Error) => e.name === "TlsError");
  });

  test("a peer that does not speak TLS fails the connect; a stalled handshake yields to the signal", TEST, async () => {
    // A plain echo server sends the ClientHello back: not a TLS answer.
    const plain = await rt.listen({ host: HOST, port: 0 }, (conn) => {
      conns.push(conn);
      return { data: (chunk) => void conn.write(chunk), drain() {}, close() {} };
    });
    listeners.push(plain);
    await assert.rejects(within(rt.connect({ host: HOST, port: plain.port, tls: { ca: certs.ca } }, { data() {}, drain() {}, close() {} }), "TLS to a plain echo"), (e: Error) => {
      assert.equal(e.name, "TlsError");
      return true;
    });
    // A plain redis waits for a line the ClientHello never ends: only the signal ends the wait.
    const signal = AbortSignal.timeout(300);
    await assert.rejects(within(rt.connect({ host: HOST, port: redis.port, signal, tls: { ca: certs.ca } }, { data() {}, drain() {}, close() {} }), "aborted TLS connect"), (e: Error) => {
      assert.equal(e.name, "AbortError");
      return true;
    });
  });
});

describe("TLS listen", () => {
  test("a TLS listener serves a node:tls client that trusts its CA", TEST, async () => {
    const { listener, accepted } = await echoServer({ cert: certs.server.cert, key: certs.server.key });
    const client = await tlsClient(listener.port, { ca: certs.ca });
    assert.equal(await echo(client, "hello over tls"), "hello over tls");
    assert.equal(accepted(), 1);
    // Deno's accepted TLS connections cannot set TCP_NODELAY and say so, for the session to gather
    // a pipeline's replies into one write; Node and Bun turn Nagle's algorithm off.
    assert.equal(conns.at(-1)!.nagle === true, isDeno(), "Conn.nagle is set exactly where Nagle stays on");
    // A client that does not trust the CA never gets through.
    await assert.rejects(tlsClient(listener.port, { ca: certs.otherCa }));
  });

  test("mTLS: a client certificate from the CA is accepted, none or another CA's is refused", TEST, async () => {
    const secure = { cert: certs.server.cert, key: certs.server.key, ca: certs.ca };
    const { listener, accepted } = await echoServer(secure);
    const good = await tlsClient(listener.port, { ca: certs.ca, cert: certs.client.cert, key: certs.client.key });
    assert.equal(await echo(good, "with a certificate"), "with a certificate");
    assert.equal(accepted(), 1);
    // TLS 1.3 finishes the client's side of the handshake before the server checks: the refusal
    // shows as an alert on the first read, and the echo never comes.
    const refused = async (options: tls.ConnectionOptions) => {
      const socket = await tlsClient(listener.port, options).catch(() => null);
      if (socket) await assert.rejects(echo(socket, "no"));
    };
    await refused({ ca: certs.ca });
    await refused({ ca: certs.ca, cert: certs.wrongCa.cert, key: certs.wrongCa.key });
    assert.equal(accepted(), 1, "a refused client never reaches accept");
  });

  test("minVersion TLSv1.3 refuses a TLS 1.2 client", TEST, async () => {
    const secure: ListenTls = { cert: certs.server.cert, key: certs.server.key, minVersion: "TLSv1.3" };
    const { listener } = await echoServer(secure);
    await assert.rejects(tlsClient(listener.port, { ca: certs.ca, maxVersion: "TLSv1.2" }));
    const modern = await tlsClient(listener.port, { ca: certs.ca });
    assert.equal(await echo(modern, "1.3"), "1.3");
  });

  test("setTls swaps the certificate for new clients while an accepted connection stays up", TEST, async () => {
    const { listener } = await echoServer({ cert: certs.server.cert, key: certs.server.key });
    assert.ok(listener.setTls, "a TLS listener has setTls");
    const before = await tlsClient(listener.port, { ca: certs.ca });
    assert.equal(await echo(before, "before"), "before");
    // The new certificate is from the other CA, so which one a client gets shows in who trusts it.
    await within(listener.setTls({ cert: certs.wrongCa.cert, key: certs.wrongCa.key }), "setTls");
    const after = await tlsClient(listener.port, { ca: certs.otherCa });
    assert.equal(await echo(after, "after"), "after");
    await assert.rejects(tlsClient(listener.port, { ca: certs.ca }), "the old certificate is no longer presented");
    assert.equal(await echo(before, "still up"), "still up", "the connection accepted before the swap stays up");
    // Unusable material is refused and changes nothing.
    await assert.rejects(listener.setTls({ cert: "not a certificate", key: certs.server.key }), (e: Error) => e.name === "TlsError");
    const still = await tlsClient(listener.port, { ca: certs.otherCa });
    assert.equal(await echo(still, "unchanged"), "unchanged");
  });

  test("a TLS Conn keeps the Conn contract: back-pressure and drain, pause and resume, keepalive, end", TEST, async () => {
    let server!: Conn;
    const received: Uint8Array[] = [];
    let drained!: () => void;
    const drain = new Promise<void>((resolve) => (drained = resolve));
    let closed!: (error: Error | undefined) => void;
    const closing = new Promise<Error | undefined>((resolve) => (closed = resolve));
    const adopted = new Promise<void>((resolve, reject) => {
      rt.listen({ host: HOST, port: 0, tls: { cert: certs.server.cert, key: certs.server.key } }, (conn) => {
        server = conn;
        conns.push(conn);
        resolve();
        return { data: (chunk) => void received.push(chunk), drain: () => drained(), close: (error) => closed(error) };
      }).then((l) => {
        listeners.push(l);
        client = tlsClient(l.port, { ca: certs.ca });
      }, reject);
    });
    let client!: Promise<tls.TLSSocket>;
    await within(adopted, "accept");
    const socket = await client;
    // The client reads nothing: the server's writes must come to report back-pressure.
    socket.pause();
    const chunk = pattern(64 * 1024);
    let written = 0;
    while (server.write(chunk)) {
      written += chunk.byteLength;
      assert.ok(written < 256 * 1024 * 1024, "write never reported back-pressure");
    }
    written += chunk.byteLength;
    assert.ok(server.bufferedBytes > 0, "bytes wait in user space");
    let got = 0;
    socket.on("data", (data: Buffer) => void (got += data.byteLength));
    socket.resume();
    await within(drain, "drain after the client read");
    await within(until(() => got === written), `all ${written} bytes at the client`);
    // pause(): nothing is delivered until resume(), then everything is, in order.
    server.pause();
    socket.write("paused?");
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(received.length, 0, "no data while paused");
    server.resume();
    await within(until(() => decoder.decode(Buffer.concat(received)) === "paused?"), "data after resume");
    server.setKeepAlive(30_000);
    // end(): the client sees the end of the stream, and the server's close follows once it closes.
    const ended = new Promise<void>((resolve) => socket.once("end", () => resolve()));
    server.end();
    await within(ended, "the client to see the end");
    socket.end();
    assert.equal(await within(closing, "the server's close"), undefined);
  });
});

/** Resolves once `check` holds (polled every 5 ms). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 5));
}
