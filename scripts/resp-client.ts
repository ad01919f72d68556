/**
 * A deliberately tiny RESP2 client for test and tooling scripts: one connection per command,
 * no pipelining, no pooling. The local-cluster helpers poll nodes that may be killed at any time,
 * so a fresh connection per call is simpler and more robust than keeping sockets alive.
 * Uses only node:net, node:tls and node:buffer, which Node, Bun and Deno all provide. A port
 * registered with `useTlsFor` (a TLS local cluster's nodes) is spoken to over TLS.
 */
import { Buffer } from "node:buffer";
import { createConnection } from "node:net";
import { connect as connectTls } from "node:tls";

/** PEM text a TLS port is reached with: the CA that signed the server, and a client certificate. */
export interface ClientTls {
  ca: string;
  cert?: string;
  key?: string;
  /** The name the server's certificate is checked against (default: the address). */
  servername?: string;
}

const tlsPorts = new Map<string, ClientTls>();

/** From now on, `sendCommand` to `host:port` speaks TLS with `tls`; `undefined` forgets it. */
export function useTlsFor(host: string, port: number, tls: ClientTls | undefined): void {
  if (tls) tlsPorts.set(`${host}:${port}`, tls);
  else tlsPorts.delete(`${host}:${port}`);
}

/**
 * A decoded RESP2 reply. Bulk and simple strings are decoded as UTF-8; nil is `null`. An error
 * nested inside an array (an EXEC result, say) stays a {@link RespReplyError} value.
 */
export type RespValue = string | number | null | RespReplyError | RespValue[];

/** The server answered with an error reply (`-ERR ...`, `-MOVED ...`, `-ASK ...`). */
export class RespReplyError extends Error {
  override readonly name = "RespReplyError";
  constructor(readonly reply: string) {
    super(reply);
  }
}

/** Options for {@link sendCommand}. */
export interface SendOptions {
  /** Give up (and destroy the socket) after this many ms. Default 10 000: the machine may be loaded. */
  timeoutMs?: number;
  /** Say `AUTH [username] password` first on the connection (a server with `requirepass` or ACL users). */
  auth?: { username?: string; password: string };
}

/**
 * Send one command to `host:port` over a fresh TCP connection and resolve with its decoded reply.
 * Rejects with {@link RespReplyError} on an error reply, or with a plain Error on connection
 * failure or timeout. The socket is always closed before the promise settles.
 */
export function sendCommand(
  host: string,
  port: number,
  args: ReadonlyArray<string | number>,
  options: SendOptions = {},
): Promise<RespValue> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    let settled = false;
    const tls = tlsPorts.get(`${host}:${port}`);
    const socket = tls ? connectTls({ host, port, ...tls }) : createConnection({ host, port });
    const finish = (error: Error | null, value?: RespValue) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(value ?? null);
    };
    const timer = setTimeout(
      () => finish(new Error(`${host}:${port} did not answer ${String(args[0])} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const auth = options.auth;
    // AUTH's reply comes first and is skipped when it is +OK; an error there is the answer.
    let authPending = auth !== undefined;
    socket.on(tls ? "secureConnect" : "connect", () => {
      if (auth) socket.write(encodeCommand(auth.username === undefined ? ["AUTH", auth.password] : ["AUTH", auth.username, auth.password]));
      socket.write(encodeCommand(args));
    });
    socket.on("data", (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      let parsed: Parsed | undefined;
      try {
        parsed = parseReply(buffered, 0);
        if (parsed !== undefined && authPending && !(parsed.value instanceof RespReplyError)) {
          authPending = false;
          buffered = buffered.subarray(parsed.next);
          parsed = parseReply(buffered, 0);
        }
      } catch (error) {
        finish(error as Error);
        return;
      }
      if (parsed === undefined) return; // incomplete: wait for more bytes
      if (parsed.value instanceof RespReplyError) finish(parsed.value);
      else finish(null, parsed.value);
    });
    socket.on("error", (error: Error) => finish(new Error(`${host}:${port}: ${error.message}`, { cause: error })));
    socket.on("close", () => finish(new Error(`${host}:${port} closed the connection before replying`)));
  });
}

/** Render a reply the way `redis-cli --no-raw` would roughly print it: one line per array element. */
export function replyToString(value: RespValue): string {
  if (value === null) return "";
  if (Array.isArray(value)) return value.map(replyToString).join("\n");
  if (value instanceof RespReplyError) return `(error) ${value.reply}`;
  return String(value);
}

/** Encode a command as a RESP array of bulk strings. */
export function encodeCommand(args: ReadonlyArray<string | number>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.from(String(arg), "utf8");
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from("\r\n"));
  }
  return Buffer.concat(parts);
}

interface Parsed {
  value: RespValue;
  next: number;
}

/** Parse one reply starting at `offset`; `undefined` means the buffer does not hold all of it yet. */
function parseReply(buf: Buffer, offset: number): Parsed | undefined {
  if (offset >= buf.length) return undefined;
  const lineEnd = buf.indexOf("\r\n", offset);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buf[offset]!);
  const line = buf.toString("utf8", offset + 1, lineEnd);
  const afterLine = lineEnd + 2;
  switch (type) {
    case "+":
      return { value: line, next: afterLine };
    case "-":
      return { value: new RespReplyError(line), next: afterLine };
    case ":":
      return { value: Number(line), next: afterLine };
    case "$": {
      const length = Number(line);
      if (length < 0) return { value: null, next: afterLine };
      if (buf.length < afterLine + length + 2) return undefined;
      return { value: buf.toString("utf8", afterLine, afterLine + length), next: afterLine + length + 2 };
    }
    case "*": {
      const count = Number(line);
      if (count < 0) return { value: null, next: afterLine };
      const items: RespValue[] = [];
      let next = afterLine;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, next);
        if (item === undefined) return undefined;
        items.push(item.value);
        next = item.next;
      }
      return { value: items, next };
    }
    default:
      throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`);
  }
}
