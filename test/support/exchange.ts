/**
 * A raw RESP connection that sends commands and collects each reply's exact bytes, framed by the
 * proxy's own reply reader; for tests that compare slotgate with Redis byte for byte.
 */
import net from "node:net";
import { ReplyReader } from "../../src/resp/reply-reader.ts";
import { encodeCommand } from "../../src/resp/encode.ts";
import { within } from "./within.ts";

export class Exchange {
  readonly #socket: net.Socket;
  readonly #replies: string[] = [];
  #wake: (() => void) | null = null;
  #closed = false;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    const reader = new ReplyReader((frame) => {
      this.#replies.push(Buffer.from(frame).toString("latin1"));
      this.#wake?.();
    });
    socket.on("data", (chunk: Buffer) => reader.push(chunk));
    socket.on("close", () => {
      this.#closed = true;
      this.#wake?.();
    });
    socket.on("error", () => {});
  }

  static connect(port: number, host = "127.0.0.1"): Promise<Exchange> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port }, () => resolve(new Exchange(socket)));
      socket.once("error", reject);
    });
  }

  /** Send `commands` in one write (pipelined) and resolve with their replies, in order. */
  async send(...commands: (string | number)[][]): Promise<string[]> {
    const start = this.#replies.length;
    this.#socket.write(Buffer.concat(commands.map((c) => encodeCommand(c.map(String)))));
    await within(
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (this.#replies.length >= start + commands.length) resolve();
          else if (this.#closed) reject(new Error(`connection closed after ${this.#replies.length - start} of ${commands.length} replies`));
          else this.#wake = check;
        };
        check();
      }),
      `${commands.length} replies to ${commands.map((c) => c[0]).join(" ")}`,
    );
    return this.#replies.slice(start, start + commands.length);
  }

  close(): void {
    this.#socket.destroy();
  }
}
