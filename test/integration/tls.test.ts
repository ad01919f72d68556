/**
 * slotgate with TLS on both sides, in front of a real Redis Cluster whose nodes speak TLS only
 * (`port 0`, `tls-port`, TLS on the cluster bus and replication): clients reach it on its TLS port
 * with redis-cli --tls, ioredis and node-redis; every kind of upstream connection (discovery, COMMAND, shared,
 * replica, a client's own for transactions and blocking commands, pub/sub) must speak TLS, or
 * nothing below could work, since the nodes have no plain port. The certificate of the TLS port
 * is reloaded without dropping a client, and a bad one is refused.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { spawn } from "node:child_process";
import { copyFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import * as tls from "node:tls";
import { entryCommand } from "../support/processes.ts";
import { join } from "node:path";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { startLocalCluster, startStandaloneRedis } from "../../scripts/local-cluster.ts";
import { freePorts } from "../../scripts/free-port.ts";
import { currentRuntime } from "../../adapters/current.ts";
import { startSlotgate } from "../../src/app.ts";
import { loadConfig, validateConfig } from "../../src/config/load.ts";
import { createLogger } from "../../src/log.ts";
import { requireRedisBinaries, runTool } from "../../scripts/redis-process.ts";
import { lazy } from "../support/lazy.ts";
import { startProxy, type RunningProxy } from "../support/proxy.ts";
import { launchProxy } from "../support/launch.ts";
import { makeTestCerts, type TestCerts } from "../../scripts/tls-certs.ts";
import { until, within } from "../support/within.ts";

const SLOW = { timeout: 120_000 };

describe("TLS on both sides, in front of a TLS-only cluster", () => {
  let certs: TestCerts | undefined;
  const tlsCerts = () => (certs ??= makeTestCerts());
  const cluster = lazy(() => {
    const { caFile, server } = tlsCerts();
    return startLocalCluster({ replicasPerPrimary: 1, tls: { caFile, certFile: server.certFile, keyFile: server.keyFile } });
  });
  /** The TLS port's files: copies, so a test can overwrite them and reload. */
  const served = () => ({ cert: join(tlsCerts().dir, "served.crt"), key: join(tlsCerts().dir, "served.key") });
  const proxy = lazy(async () => {
    const c = tlsCerts();
    copyFileSync(c.server.certFile, served().cert);
    copyFileSync(c.server.keyFile, served().key);
    return startProxy((await cluster.get()).seeds, {
      SLOTGATE_TLS_LISTEN: "127.0.0.1:0",
      SLOTGATE_TLS_CERT: served().cert,
      SLOTGATE_TLS_KEY: served().key,
      SLOTGATE_UPSTREAM_TLS: "on",
      SLOTGATE_UPSTREAM_TLS_CA: c.caFile,
      // Reads go to replicas: their connections (which say READONLY first) must speak TLS too.
      SLOTGATE_READ_FROM: "replica",
      // Redis lists a replica in CLUSTER SLOTS once it has replicated something: see it soon.
      SLOTGATE_REFRESH_INTERVAL_MS: "300",
    });
  });
  const clients: Redis[] = [];
  const others: RunningProxy[] = [];
  after(async () => {
    for (const client of clients) client.disconnect();
    await Promise.all(others.map((p) => p.stop()));
    await proxy.stop();
    await cluster.stop();
    certs?.remove();
  });

  const tlsPort = async () => (await proxy.get()).app.tlsPort!;
  const connectTls = async (ca = tlsCerts().ca) => {
    const client = new Redis({ host: "127.0.0.1", port: await tlsPort(), tls: { ca }, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on("error", () => {});
    clients.push(client);
    await within(client.connect(), "ioredis TLS connect");
    return client;
  };

  it("ioredis over TLS and over the plain port get and set through it; discovery and COMMAND spoke TLS", SLOW, async () => {
    const app = (await proxy.get()).app;
    assert.ok(app.tlsPort !== null && app.tlsPort !== app.port, "a TLS port next to the plain one");
    const secure = await connectTls();
    assert.equal(await secure.set("tls:a", "1"), "OK");
    assert.equal(await secure.get("tls:a"), "1");
    const plain = new Redis({ host: "127.0.0.1", port: app.port, lazyConnect: true, maxRetriesPerRequest: 0 });
    clients.push(plain);
    await plain.connect();
    assert.equal(await plain.set("tls:b", "2"), "OK");
    assert.equal(await secure.get("tls:b"), "2");
    // The slot map came from CLUSTER SLOTS over TLS; the command table from COMMAND over TLS.
    assert.ok(app.cluster.isReady);
    await until("COMMAND to be learned over TLS", () => app.cluster.commands?.learned === true);
  });

  it("node-redis over TLS (rediss://) sets and gets through the TLS port; a client without the CA is refused", SLOW, async () => {
    const port = await tlsPort();
    const client = createClient({ url: `rediss://127.0.0.1:${port}`, socket: { tls: true, ca: tlsCerts().ca, reconnectStrategy: false } });
    client.on("error", () => {});
    await within(client.connect(), "node-redis TLS connect");
    try {
      assert.equal(await client.set("tls:node-redis", "from node-redis"), "OK");
      assert.equal(await client.get("tls:node-redis"), "from node-redis");
    } finally {
      client.destroy();
    }
    const untrusting = createClient({ url: `rediss://127.0.0.1:${port}`, socket: { tls: true, reconnectStrategy: false } });
    untrusting.on("error", () => {});
    await assert.rejects(within(untrusting.connect(), "node-redis TLS connect without the CA"), /certificate/i, "the system roots do not trust the test CA");
  });

  it("redis-cli --tls sets and gets through the TLS port", SLOW, async () => {
    const { cli } = requireRedisBinaries();
    const port = String(await tlsPort());
    const run = async (...args: string[]) => {
      const result = await runTool(cli, ["--tls", "--cacert", tlsCerts().caFile, "-h", "127.0.0.1", "-p", port, ...args], { timeoutMs: 20_000 });
      assert.equal(result.code, 0, result.output);
      return result.output.trim();
    };
    assert.equal(await run("SET", "tls:cli", "from redis-cli"), "OK");
    assert.equal(await run("GET", "tls:cli"), "from redis-cli");
  });

  it("mTLS with a TLS 1.3 minimum: clients with the CA's certificate get through; none, another CA's, or TLS 1.2 are refused", SLOW, async () => {
    const c = tlsCerts();
    const config = validateConfig({
      listen: "127.0.0.1:0",
      admin: { listen: "off" },
      shutdownTimeoutMs: 500,
      tls: { listen: "127.0.0.1:0", cert: c.server.certFile, key: c.server.keyFile, ca: c.caFile, minVersion: "TLSv1.3" },
      clusters: { main: { seeds: (await cluster.get()).seeds, tls: { enabled: true, ca: c.caFile } } },
    });
    const app = await startSlotgate(await currentRuntime(), config, createLogger("warn"));
    others.push({ app, port: app.port, stop: () => app.close() });
    await within(app.ready(), "the mTLS slotgate to be ready");
    const port = String(app.tlsPort);
    const { cli } = requireRedisBinaries();
    const cliRun = (...args: string[]) => runTool(cli, ["--tls", "--cacert", c.caFile, "-h", "127.0.0.1", "-p", port, ...args], { timeoutMs: 20_000 });
    const withCert = await cliRun("--cert", c.client.certFile, "--key", c.client.keyFile, "SET", "mtls:cli", "yes");
    assert.equal(withCert.output.trim(), "OK", withCert.output);
    const noCert = await cliRun("GET", "mtls:cli");
    assert.doesNotMatch(noCert.output, /yes/, "no client certificate: no answer");
    const otherCa = await cliRun("--cert", c.wrongCa.certFile, "--key", c.wrongCa.keyFile, "GET", "mtls:cli");
    assert.doesNotMatch(otherCa.output, /yes/, "a certificate from another CA: no answer");

    const client = new Redis({ host: "127.0.0.1", port: app.tlsPort!, tls: { ca: c.ca, cert: c.client.cert, key: c.client.key }, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on("error", () => {});
    clients.push(client);
    await within(client.connect(), "ioredis mTLS connect");
    assert.equal(await client.get("mtls:cli"), "yes");

    // A client limited to TLS 1.2 fails its handshake with a protocol-version alert.
    await assert.rejects(
      new Promise<void>((resolve, reject) => {
        const socket = tls.connect({ host: "127.0.0.1", port: app.tlsPort!, ca: c.ca, cert: c.client.cert, key: c.client.key, maxVersion: "TLSv1.2" }, () => {
          socket.destroy();
          resolve();
        });
        socket.once("error", (e: Error) => {
          socket.destroy();
          reject(e);
        });
      }),
      /version|alert/i,
    );
  });

  it("every upstream connection kind works over TLS: shared, replica, transaction, blocking, pub/sub", SLOW, async () => {
    const app = (await proxy.get()).app;
    const client = await connectTls();
    // Shared primary connection (a write), then a replica read (readFrom replica), which must
    // come from the replica, not a fallback to the primary.
    assert.equal(await client.set("{tls}k", "v"), "OK");
    const fallbacks = app.cluster.stats.replicaFallbacks;
    const replicaReads = app.cluster.stats.replicaReads;
    await until("a read served by a replica", async () => (await client.get("{tls}k")) === "v" && app.cluster.stats.replicaReads > replicaReads);
    assert.equal(app.cluster.stats.replicaFallbacks, fallbacks, "no read fell back to the primary");
    // A transaction, on a connection of the client's own.
    const results = await client.multi().incr("{tls}n").incr("{tls}n").exec();
    assert.deepEqual(results, [[null, 1], [null, 2]]);
    // A blocking command, on a connection of its own, woken by another client.
    const pusher = await connectTls();
    const popped = client.blpop("{tls}list", 10);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await pusher.rpush("{tls}list", "x");
    assert.deepEqual(await within(popped, "BLPOP"), ["{tls}list", "x"]);
    // Pub/sub, on a subscriber connection.
    const subscriber = await connectTls();
    const message = new Promise<string>((resolve) => subscriber.on("message", (_channel: string, text: string) => resolve(text)));
    await subscriber.subscribe("tls:news");
    await pusher.publish("tls:news", "hello");
    assert.equal(await within(message, "a published message"), "hello");
  });

  it("verification is on by default: without the cluster's CA, no slot map is learned", SLOW, async () => {
    const seeds = (await cluster.get()).seeds;
    const config = loadConfig({
      env: { SLOTGATE_SEEDS: seeds.join(","), SLOTGATE_LISTEN: "127.0.0.1:0", SLOTGATE_ADMIN_LISTEN: "off", SLOTGATE_UPSTREAM_TLS: "on", SLOTGATE_SHUTDOWN_TIMEOUT_MS: "500" },
      readFile: () => "",
    });
    const app = await startSlotgate(await currentRuntime(), config, createLogger("silent"));
    others.push({ app, port: app.port, stop: () => app.close() });
    await until("a refresh failure", () => app.cluster.stats.refreshFailures > 0);
    assert.equal(app.cluster.isReady, false);
    assert.match(app.cluster.stats.lastError ?? "", /TLS with 127\.0\.0\.1:\d+ failed/);
  });

  it("the TLS port's certificate is reloaded without dropping a client; a bad one is refused", SLOW, async () => {
    const app = (await proxy.get()).app;
    const c = tlsCerts();
    const before = await connectTls();
    assert.equal(await before.set("tls:reload", "1"), "OK");
    // Renewed in place, by another CA, so which certificate a new client meets is plain to see.
    copyFileSync(c.wrongCa.certFile, served().cert);
    copyFileSync(c.wrongCa.keyFile, served().key);
    assert.equal(await app.reloadTls(), true);
    const renewed = await connectTls(c.otherCa);
    assert.equal(await renewed.get("tls:reload"), "1");
    await assert.rejects(connectTls(c.ca), "the old certificate is gone");
    assert.equal(await before.get("tls:reload"), "1", "the client connected before the reload is still served");
    // A broken file is refused; the certificate in force stays.
    writeFileSync(served().cert, "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n");
    assert.equal(await app.reloadTls(), false);
    const still = await connectTls(c.otherCa);
    assert.equal(await still.get("tls:reload"), "1");
  });

  it("a standalone pool speaks TLS to its servers; an insecure cluster is logged as a warning", SLOW, async () => {
    const c = tlsCerts();
    const [tlsPort] = (await freePorts(1)) as [number];
    const server = await startStandaloneRedis({
      extraConfig: [`tls-port ${tlsPort}`, `tls-cert-file ${c.server.certFile}`, `tls-key-file ${c.server.keyFile}`, `tls-ca-cert-file ${c.caFile}`, "tls-auth-clients optional"],
    });
    others.push({ app: undefined as never, port: 0, stop: () => server.stop() });
    const lines: string[] = [];
    const config = validateConfig({
      listen: "127.0.0.1:0",
      admin: { listen: "off" },
      shutdownTimeoutMs: 500,
      clusters: {
        pool: { type: "standalone", servers: [`127.0.0.1:${tlsPort}`], tls: { enabled: true, ca: c.caFile } },
        loose: { seeds: (await cluster.get()).seeds, tls: { enabled: true, insecure: true } },
      },
      routes: [{ prefix: "loose:", cluster: "loose" }],
      catchAll: "pool",
    });
    const app = await startSlotgate(await currentRuntime(), config, createLogger("warn", (line) => lines.push(line)));
    others.push({ app, port: app.port, stop: () => app.close() });
    const loose = app.control.redisCluster("loose")!;
    await within(app.control.backend("pool")!.ready, "the pool to be ready");
    const client = new Redis({ host: "127.0.0.1", port: app.port, lazyConnect: true, maxRetriesPerRequest: 0 });
    clients.push(client);
    await client.connect();
    assert.equal(await client.set("pooled", "yes"), "OK");
    assert.equal(await server.command("GET", "pooled"), "yes", "the value went to the TLS server");
    await within(loose.ready, "the insecure cluster to be ready");
    assert.equal(await client.set("loose:k", "v"), "OK");
    assert.ok(lines.some((line) => /^WARN upstream TLS certificates are NOT verified .*cluster=loose/.test(line)), lines.join("\n"));
    assert.ok(!lines.some((line) => /NOT verified.*cluster=pool/.test(line)));
  });

  it("the entry point re-reads the TLS port's certificate when its file changes and on SIGHUP", SLOW, async () => {
    const c = tlsCerts();
    const cert = join(c.dir, "entry.crt");
    const key = join(c.dir, "entry.key");
    copyFileSync(c.server.certFile, cert);
    copyFileSync(c.server.keyFile, key);
    const [port] = (await freePorts(1)) as [number];
    const [bin, ...main] = entryCommand();
    const child = spawn(bin!, main, {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        SLOTGATE_SEEDS: (await cluster.get()).seeds.join(","),
        SLOTGATE_LISTEN: "127.0.0.1:0",
        SLOTGATE_ADMIN_LISTEN: "off",
        SLOTGATE_TLS_LISTEN: `127.0.0.1:${port}`,
        SLOTGATE_TLS_CERT: cert,
        SLOTGATE_TLS_KEY: key,
        SLOTGATE_UPSTREAM_TLS: "on",
        SLOTGATE_UPSTREAM_TLS_CA: c.caFile,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout!.on("data", (d) => (output += d));
    child.stderr!.on("data", (d) => (output += d));
    const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
    others.push({ app: undefined as never, port: 0, stop: () => (child.kill("SIGKILL"), exited) });
    const count = (text: string) => output.split(text).length - 1;
    /** Whether a client trusting `ca` completes a handshake with the TLS port. */
    const trusts = (ca: string) =>
      new Promise<boolean>((resolve) => {
        const socket = tls.connect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => {
          socket.destroy();
          resolve(true);
        });
        socket.on("error", () => resolve(false));
      });
    await until(`slotgate to listen (${output})`, () => output.includes("slotgate listening"));
    assert.equal(await trusts(c.ca), true);
    // Renewed in place: the watcher notices, and new clients meet the other CA's certificate.
    copyFileSync(c.wrongCa.certFile, cert);
    copyFileSync(c.wrongCa.keyFile, key);
    await until(`the reload after the files changed (${output})`, () => count("TLS certificate reloaded") >= 1);
    await until("the new certificate to be served", () => trusts(c.otherCa));
    // A broken certificate is refused, when the file changes and again on SIGHUP; the one in force stays.
    const refused = count("TLS certificate reload refused");
    const reloads = count("TLS certificate reloaded");
    writeFileSync(cert, "not a certificate");
    await until(`the refusal after the change (${output})`, () => count("TLS certificate reload refused") > refused);
    const afterChange = count("TLS certificate reload refused");
    process.kill(child.pid!, "SIGHUP");
    await until(`the refusal on SIGHUP (${output})`, () => count("TLS certificate reload refused") > afterChange);
    assert.equal(count("TLS certificate reloaded"), reloads);
    assert.equal(await trusts(c.otherCa), true);
    child.kill("SIGTERM");
    await within(exited, "slotgate to exit on SIGTERM", 30_000);
  });

  it("the hostnames nodes announce (and a seed's hostname) are the names their certificates are checked against", SLOW, async () => {
    const c = tlsCerts();
    // Certificates for the name localhost only: a connection that checked an IP address instead
    // would be refused, and so would every request through it.
    const named = await startLocalCluster({
      primaries: 3,
      replicasPerPrimary: 0,
      tls: { caFile: c.caFile, certFile: c.localhostOnly.certFile, keyFile: c.localhostOnly.keyFile, servername: "localhost" },
      extraConfig: ["cluster-announce-hostname localhost"],
    });
    others.push({ app: undefined as never, port: 0, stop: () => named.stop() });
    const seeds = named.nodes.map((node) => `localhost:${node.port}`);
    // Registered for `after` before it is ready: a proxy that never learns a slot map is stopped too.
    const { app } = await launchProxy(others, [seeds[0]!], { SLOTGATE_UPSTREAM_TLS: "on", SLOTGATE_UPSTREAM_TLS_CA: c.caFile });
    const client = new Redis({ host: "127.0.0.1", port: app.port, lazyConnect: true, maxRetriesPerRequest: 0 });
    clients.push(client);
    await client.connect();
    // Keys on every primary, so each node's own connections are used.
    for (const key of ["a", "b", "c", "d", "e", "f"]) assert.equal(await client.set(`named:${key}`, key), "OK");
    for (const key of ["a", "b", "c", "d", "e", "f"]) assert.equal(await client.get(`named:${key}`), key);
    assert.ok(app.cluster.topology.ranges.every((range) => range.primary.hostname === "localhost"), "the nodes announced localhost");
  });

  it("TLS and upstream AUTH together: the credentials go over TLS on every connection", SLOW, async () => {
    const c = tlsCerts();
    const guarded = await startLocalCluster({
      primaries: 3,
      replicasPerPrimary: 0,
      tls: { caFile: c.caFile, certFile: c.server.certFile, keyFile: c.server.keyFile },
      auth: { password: "tls-and-auth" },
    });
    others.push({ app: undefined as never, port: 0, stop: () => guarded.stop() });
    const { app } = await launchProxy(others, guarded.seeds, { SLOTGATE_UPSTREAM_TLS: "on", SLOTGATE_UPSTREAM_TLS_CA: c.caFile, SLOTGATE_UPSTREAM_PASSWORD: "tls-and-auth" });
    const client = new Redis({ host: "127.0.0.1", port: app.port, lazyConnect: true, maxRetriesPerRequest: 0 });
    clients.push(client);
    await client.connect();
    assert.equal(await client.set("{both}k", "v"), "OK");
    assert.equal(await client.get("{both}k"), "v");
    assert.deepEqual(await client.multi().incr("{both}n").exec(), [[null, 1]]);
    await client.rpush("{both}l", "x");
    assert.deepEqual(await client.blpop("{both}l", 5), ["{both}l", "x"]);
  });
});
