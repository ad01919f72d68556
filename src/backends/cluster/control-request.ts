/**
 * One command on a fresh connection, for control traffic such as `CLUSTER SLOTS`: connect, send,
 * read exactly one reply, close. Everything it opens belongs to the given scope, and the whole
 * exchange is bounded by `timeoutMs`; on timeout or teardown the socket is destroyed. With
 * `auth`, `AUTH` goes first in the same write; its refusal rejects with `UpstreamAuthError`. `tls`
 * makes it a TLS connection (a TLS cluster's discovery and COMMAND learning).
 */
import type { Scope } from "../../scope/scope.ts";
import { connect } from "../../scope/io.ts";
import { withTimeout } from "../../scope/time.ts";
import type { Conn, ConnectTls } from "../../runtime.ts";
import { ReplyReader } from "../../resp/reply-reader.ts";
import { decode } from "../../resp/decode.ts";
import { concatBytes, encodeCommand } from "../../resp/encode.ts";
import { MINUS } from "../../resp/bytes.ts";
import { authArgs, UpstreamAuthError, type UpstreamAuth } from "../../backend/auth.ts";
import { formatAddress } from "../../util/address.ts";

export async function controlRequest(
  scope: Scope,
  host: string,
  port: number,
  args: string[],
  timeoutMs: number,
  auth?: UpstreamAuth,
  tls?: ConnectTls,
): Promise<unknown> {
  return withTimeout(scope, `${args.join(" ")} to ${host}:${port}`, timeoutMs, async (signal) => {
    let conn: Conn | null = null;
    try {
      const reply = new Promise<Uint8Array>((resolve, reject) => {
        // With credentials, the first reply is AUTH's: an error there is the answer, +OK is dropped.
        let authPending = auth !== undefined;
        const onFrame = (frame: Uint8Array) => {
          if (!authPending) return resolve(frame);
          authPending = false;
          if (frame[0] === MINUS) reject(new UpstreamAuthError(formatAddress(host, port), new TextDecoder().decode(frame.subarray(1, frame.length - 2))));
        };
        const reader = new ReplyReader(onFrame, { maxBulkBytes: 64 * 1024 * 1024, maxArrayLength: 1 << 20 });
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
          const command = encodeCommand(args);
          const prelude = auth ? encodeCommand(authArgs(auth, 2)) : null;
          c.write(prelude ? concatBytes([prelude, command], prelude.length + command.length) : command);
        }, reject);
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
      return decode(await reply);
    } finally {
      (conn as Conn | null)?.destroy();
    }
  });
}
