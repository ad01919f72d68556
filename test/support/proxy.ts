/**
 * Start slotgate in this process, on this runtime's adapter, in front of a local cluster; used
 * by the integration tests on Node, Bun and Deno alike.
 */
import net from "node:net";
import { currentRuntime } from "../../adapters/current.ts";
import { startSlotgate, type Slotgate, type SlotgateOptions } from "../../src/app.ts";
import { loadConfig } from "../../src/config/load.ts";
import { createLogger } from "../../src/log.ts";

export interface RunningProxy {
  app: Slotgate;
  port: number;
  stop(): Promise<void>;
}

/**
 * Start slotgate on a free port with `seeds`; `env` overrides any SLOTGATE_* variable, `options`
 * are handed to startSlotgate (a test's own command table, say); `log` receives every log line
 * (default: the console, at the configured level).
 */
export async function startProxy(seeds: string[], env: Record<string, string> = {}, options: SlotgateOptions = {}, log?: (line: string) => void): Promise<RunningProxy> {
  const runtime = await currentRuntime();
  const config = loadConfig({
    env: { SLOTGATE_SEEDS: seeds.join(","), SLOTGATE_LISTEN: "127.0.0.1:0", SLOTGATE_ADMIN_LISTEN: "127.0.0.1:0", SLOTGATE_LOG_LEVEL: "warn", ...env },
    readFile: () => {
      throw new Error("no config file in tests");
    },
  });
  const app = await startSlotgate(runtime, config, createLogger(config.logLevel, log), options);
  await app.ready();
  return { app, port: app.port, stop: () => app.close() };
}

/**
 * A raw RESP connection for tests that need exact bytes: send anything, collect everything the
 * proxy writes back, see when it closes.
 */
export class RawClient {
  readonly socket: net.Socket;
  received = Buffer.alloc(0);
  closed = false;
  readonly #waiters: (() => void)[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.#wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.#wake();
    });
    socket.on("error", () => {});
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port }, () => resolve(new RawClient(socket)));
      socket.once("error", reject);
    });
  }

  send(data: string | Uint8Array): void {
    this.socket.write(data);
  }

  /** Wait until `predicate(received text)` holds or the connection closes; bounded by `timeoutMs`. */
  async waitFor(predicate: (text: string) => boolean, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.received.toString("latin1"))) {
      if (this.closed) break;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting; received so far: ${JSON.stringify(this.received.toString("latin1").slice(0, 300))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.received.toString("latin1");
  }

  /** Wait for the proxy to close the connection. */
  async waitClosed(timeoutMs = 20_000): Promise<void> {
    await this.waitFor(() => this.closed, timeoutMs);
    if (!this.closed) throw new Error("connection still open");
  }

  close(): void {
    this.socket.destroy();
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** Encode a command as RESP. */
export function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`;
}
