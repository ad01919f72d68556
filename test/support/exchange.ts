/**
 * A raw RESP connection for tests that compare slotgate with Redis byte for byte: it sends
 * commands and hands back each reply frame (RESP2 or RESP3, framed by the proxy's own reply
 * reader) as its exact bytes in a latin1 string, readable in assertion diffs. Frames are taken in
 * arrival order, so pushes that arrive unasked are read with `next`. Also: splitting a raw byte
 * stream (as latin1 text) into frames, and writing the pub/sub frames Redis sends.
 * Works on Node, Bun and Deno (node:net).
 */
import { Buffer } from "node:buffer";
import net from "node:net";
import { ReplyReader } from "../../src/resp/reply-reader.ts";
import { encodeCommand } from "../../src/resp/encode.ts";
import { scanFrame } from "../../src/resp/frame.ts";
import { within } from "./within.ts";

/** One command's arguments. */
export type Command = readonly (string | number | Uint8Array)[];

/** Raised while waiting for a reply when the connection closed first. */
export class ConnectionClosedError extends Error {
  override readonly name = "ConnectionClosedError";
}

/** A frame as a latin1 string: byte-exact, and readable in assertion diffs. */
const latin1 = (frame: Uint8Array) => Buffer.from(frame.buffer, frame.byteOffset, frame.length).toString("latin1");

export class Exchange {
  /** How long `next` (and so `send` and `command`) waits for one reply. */
  timeoutMs = 20_000;
  readonly #socket: net.Socket;
  readonly #frames: string[] = [];
  /** Index in `#frames` of the next frame not yet handed out or promised to a caller. */
  #taken = 0;
  #closed = false;
  #failure: Error | null = null;
  readonly #closing: Promise<void>;
  readonly #waiters = new Set<() => void>();

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    const reader = new ReplyReader((frame) => this.#frames.push(latin1(frame)));
    this.#closing = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("data", (chunk: Buffer) => {
      try {
        // The reader keeps views of the chunk: hand it a copy it may hold on to.
        reader.push(new Uint8Array(chunk));
      } catch (error) {
        this.#failure = new Error(`malformed reply: ${(error as Error).message}`);
        socket.destroy();
      }
      this.#wake();
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on("error", () => {});
  }

  static connect(port: number, host = "127.0.0.1"): Promise<Exchange> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port }, () => {
        socket.off("error", reject);
        resolve(new Exchange(socket));
      });
      socket.once("error", reject);
    });
  }

  /** True once the connection is closed, by either side. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Frames received and not taken yet. */
  get unread(): number {
    return this.#frames.length - this.#taken;
  }

  /** Send `commands` in one write (pipelined) without waiting for their replies. */
  write(...commands: Command[]): void {
    this.#socket.write(Buffer.concat(commands.map((c) => encodeCommand(c.map((a) => (typeof a === "number" ? String(a) : a))))));
  }

  /** Send `commands` in one write (pipelined) and resolve with their replies, in order. */
  async send(...commands: Command[]): Promise<string[]> {
    const start = this.#taken;
    this.#taken += commands.length;
    this.write(...commands);
    await this.#arrived(start + commands.length, `${commands.length} replies to ${commands.map((c) => c[0]).join(" ")}`);
    return this.#frames.slice(start, start + commands.length);
  }

  /** Send one command and resolve with its reply. */
  async command(...args: Command): Promise<string> {
    const [reply] = await this.send(args);
    return reply!;
  }

  /** The next frame received (a reply, or a push that arrived unasked). */
  async next(): Promise<string> {
    const index = this.#taken++;
    await this.#arrived(index + 1, "the next reply frame");
    return this.#frames[index]!;
  }

  /** Resolves once the server has closed the connection, or after `timeoutMs` if it has not. */
  async closedWithin(timeoutMs: number): Promise<void> {
    await within(this.#closing, "the connection to close", timeoutMs).catch(() => {});
  }

  close(): void {
    this.#closed = true;
    this.#socket.destroy();
  }

  /** Wait until `count` frames have arrived; fails if the connection closes or times out first. */
  async #arrived(count: number, what: string): Promise<void> {
    let wake: () => void = () => {};
    const arrived = new Promise<void>((resolve, reject) => {
      wake = () => {
        if (this.#frames.length >= count) resolve();
        else if (this.#failure) reject(this.#failure);
        else if (this.#closed) reject(new ConnectionClosedError(`connection closed after ${this.#frames.length} of ${count} frames`));
        else return;
        this.#waiters.delete(wake);
      };
      this.#waiters.add(wake);
    });
    wake();
    try {
      await within(arrived, what, this.timeoutMs);
    } catch (error) {
      this.#waiters.delete(wake);
      // A late reply would be taken for the next command's: this connection is done.
      if (!(error instanceof ConnectionClosedError) && error !== this.#failure) this.close();
      throw error;
    }
  }

  #wake(): void {
    for (const wake of [...this.#waiters]) wake();
  }
}

/** Every complete top-level frame of `text` (a raw RESP2/RESP3 byte stream as latin1), in order. */
export function splitFrames(text: string): string[] {
  const bytes = Buffer.from(text, "latin1");
  const out: string[] = [];
  for (let p = 0; p < bytes.length; ) {
    const end = scanFrame(bytes, p, bytes.length);
    if (end < 0) break;
    out.push(text.slice(p, end));
    p = end;
  }
  return out;
}

/** A RESP2 array (or, with `push`, a RESP3 push) of bulk strings, as Redis writes pub/sub frames. */
export function bulks(items: (string | number | null)[], push = false): string {
  const body = items
    .map((item) =>
      item === null ? (push ? "_\r\n" : "$-1\r\n") : typeof item === "number" ? `:${item}\r\n` : `$${Buffer.byteLength(item)}\r\n${item}\r\n`,
    )
    .join("");
  return `${push ? ">" : "*"}${items.length}\r\n${body}`;
}
