/**
 * Throwaway TLS material for tests and benchmarks, made with the `openssl` command line in a temp dir: a CA, a
 * server certificate for 127.0.0.1 and localhost, a client certificate, an expired server
 * certificate, and a server certificate from a second CA that nobody trusts. Works on Node, Bun
 * and Deno (node:child_process, node:fs, node:os, node:path only). `remove()` deletes the dir.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A certificate and its key: file paths, and their PEM text. */
export interface CertPair {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

export interface TestCerts {
  dir: string;
  /** The trusted CA (its cert signs `server`, `server2`, `client` and `expired`). */
  caFile: string;
  ca: string;
  /** For 127.0.0.1 and localhost. */
  server: CertPair;
  /** Another certificate for the same names, from the same CA (to swap in). */
  server2: CertPair;
  /** A client certificate (mTLS), CN=slotgate-test-client. */
  client: CertPair;
  /** For the name localhost only (no IP address): only a client that checks the name connects. */
  localhostOnly: CertPair;
  /** For 127.0.0.1 and localhost, but no longer valid. */
  expired: CertPair;
  /** For 127.0.0.1 and localhost, signed by a second CA nobody trusts. */
  wrongCa: CertPair;
  /** The second CA itself. */
  otherCaFile: string;
  otherCa: string;
  remove(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

function pair(dir: string, name: string): CertPair {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  return { certFile, keyFile, cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8") };
}

/** Makes every certificate; throws if openssl is missing or fails. */
export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), "slotgate-tls-"));
  try {
    writeFileSync(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n");
    writeFileSync(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
    writeFileSync(join(dir, "localhost.ext"), "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n");
    const ca = (name: string, subject: string) =>
      openssl(dir, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2", "-subj", subject, "-keyout", `${name}.key`, "-out", `${name}.crt`]);
    ca("ca", "/CN=slotgate test CA");
    ca("other-ca", "/CN=slotgate wrong CA");
    const leaf = (name: string, subject: string, signer: string, ext: string, validity: string[]) => {
      openssl(dir, ["req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", subject, "-keyout", `${name}.key`, "-out", `${name}.csr`]);
      openssl(dir, ["x509", "-req", "-in", `${name}.csr`, "-CA", `${signer}.crt`, "-CAkey", `${signer}.key`, "-CAcreateserial", "-sha256", "-extfile", ext, ...validity, "-out", `${name}.crt`]);
    };
    const days = ["-days", "2"];
    leaf("server", "/CN=localhost", "ca", "server.ext", days);
    leaf("server2", "/CN=localhost", "ca", "server.ext", days);
    leaf("client", "/CN=slotgate-test-client", "ca", "client.ext", days);
    leaf("localhost", "/CN=localhost", "ca", "localhost.ext", days);
    leaf("wrong", "/CN=localhost", "other-ca", "server.ext", days);
    // Valid until a day before it was made: expired from the start (OpenSSL 3.0 takes -days -1).
    leaf("expired", "/CN=localhost", "ca", "server.ext", ["-days", "-1"]);
    return {
      dir,
      caFile: join(dir, "ca.crt"),
      ca: readFileSync(join(dir, "ca.crt"), "utf8"),
      server: pair(dir, "server"),
      server2: pair(dir, "server2"),
      client: pair(dir, "client"),
      localhostOnly: pair(dir, "localhost"),
      expired: pair(dir, "expired"),
      wrongCa: pair(dir, "wrong"),
      otherCaFile: join(dir, "other-ca.crt"),
      otherCa: readFileSync(join(dir, "other-ca.crt"), "utf8"),
      remove: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
