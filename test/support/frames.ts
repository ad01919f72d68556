/**
 * A raw RESP connection that splits what it receives into reply frames (RESP2 and RESP3, with
 * slotgate's own frame scanner), so tests can compare replies byte for byte, one at a time, with
 * what a Redis node sends for the same command. Works on Node, Bun and Deno (node:net).
 */
import { Buffer } from "node:buffer";
import net from "node:net";
import { ReplyReader } from "../../src/resp/reply-reader.ts";
import { encodeCommand } from "../../src/resp/encode.ts";

/** A frame as a latin1 string: byte-exact, and readable in assertion diffs. */
const latin1 = (frame: Uint8Array) => Buffer.from(frame.buffer, frame.byteOffset, frame.length).toString("latin1");

export class FrameClient {
  readonly #socket: net.Socket;
  readonly #frames: string[] = [];
  readonly #reader = new ReplyReader((frame) => this.#frames.push(latin1(frame)));
  #closed = false;
  #failure: unknown = null;
  #wake: (() => void) | null = null;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => {
      try {
        // The reader keeps views of the chunk: hand it a copy it may hold on to.
        this.#reader.push(new Uint8Array(chunk));
      } catch (error) {
        this.#failure = error;
      }
      this.#wake?.();
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#wake?.();
    });
    socket.on("error", () => {});
  }

  static connect(port: number, host = "127.0.0.1"): Promise<FrameClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port }, () => resolve(new FrameClient(socket)));
      socket.once("error", reject);
    });
  }

  /** Send commands (pipelined, in one write). */
  send(...commands: string[][]): void {
    this.#socket.write(Buffer.concat(commands.map((args) => encodeCommand(args))));
  }

  /** The next frame received; fails after `timeoutMs` or if the connection closes first. */
  async next(timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.#frames.length === 0) {
      if (this.#failure) throw this.#failure;
      if (this.#closed) throw new Error("connection closed while waiting for a reply");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
    return this.#frames.shift()!;
  }

  /** Send one command and wait for the next frame. */
  async command(...args: string[]): Promise<string> {
    this.send(args);
    return this.next();
  }

  /** Frames received and not taken yet. */
  get unread(): number {
    return this.#frames.length;
  }

  close(): void {
    this.#socket.destroy();
  }
}
