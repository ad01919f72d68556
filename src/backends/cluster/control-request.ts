/**
 * One command on a fresh connection, for control traffic such as `CLUSTER SLOTS`: connect, send,
 * read exactly one reply, close. Everything it opens belongs to the given scope, and the whole
 * exchange is bounded by `timeoutMs`; on timeout or teardown the socket is destroyed. `tls` makes
 * it a TLS connection (a TLS cluster's discovery and COMMAND learning).
 */
import type { Scope } from "../../scope/scope.ts";
import { connect } from "../../scope/io.ts";
import { withTimeout } from "../../scope/time.ts";
import type { Conn, ConnectTls } from "../../runtime.ts";
import { ReplyReader } from "../../resp/reply-reader.ts";
import { decode } from "../../resp/decode.ts";
import { encodeCommand } from "../../resp/encode.ts";

export async function controlRequest(scope: Scope, host: string, port: number, args: string[], timeoutMs: number, tls?: ConnectTls): Promise<unknown> {
  return withTimeout(scope, `${args.join(" ")} to ${host}:${port}`, timeoutMs, async (signal) => {
    let conn: Conn | null = null;
    try {
      const reply = new Promise<Uint8Array>((resolve, reject) => {
        const reader = new ReplyReader((frame) => resolve(frame), { maxBulkBytes: 64 * 1024 * 1024, maxArrayLength: 1 << 20 });
        const opened = connect(scope, { host, port, signal, tls }, {
          data: (chunk) => {
            try {
              reader.push(chunk);
            } catch (error) {
              reject(error);
            }
          },
          drain: () => {},
          close: (error) => reject(error ?? new Error(`connection to ${host}:${port} closed before a reply`)),
        });
        opened.then((c) => {
          conn = c;
          c.write(encodeCommand(args));
        }, reject);
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
      return decode(await reply);
    } finally {
      (conn as Conn | null)?.destroy();
    }
  });
}
