/**
 * How a client connection ends when the proxy ends it, the way Redis ends it: fully closed once
 * the last reply has left (after QUIT, a protocol error, an internal fault), or at once when the
 * client has been idle too long (Redis's `timeout`). Both are timers of the session's scope, so
 * a client that closes first cancels them.
 */
import type { Conn } from "../../runtime.ts";
import type { Scope } from "../../scope/scope.ts";

/** How often to look whether a closing socket's queued bytes have left, in milliseconds. */
const CLOSE_CHECK_MS = 1000;

/**
 * FIN now; read on, dropping what arrives (unread bytes would turn our close into a reset, which
 * can destroy the reply before the client reads it); destroy the socket once its queued bytes
 * have left, or stopped leaving (a client that does not read). Without the destroy, a client that
 * never closes its side would stay connected, and counted, for ever. The caller has stopped
 * handing data to the session.
 */
export function closeAfterFlush(scope: Scope, conn: Conn): void {
  conn.end();
  conn.resume();
  // A closing scope tears the socket down itself.
  if (!scope.isOpen) return;
  let left = Number.POSITIVE_INFINITY;
  const check = () => {
    const now = conn.bufferedBytes;
    if (now === 0 || now >= left) return conn.destroy();
    left = now;
    scope.timer("close after reply", CLOSE_CHECK_MS, check);
  };
  scope.timer("close after reply", CLOSE_CHECK_MS, check);
}

/**
 * Redis's `timeout`: call `close` once the client has been idle for `idleMs`. `idleSince` gives
 * the runtime clock reading (ms) of its last byte received or sent, or null while it is not idle
 * (replies are owed: a blocked command waits as long as it must; or it is subscribed). One timer
 * at a time, re-armed for the time left.
 */
export function watchIdle(scope: Scope, idleMs: number, idleSince: () => number | null, close: () => void): void {
  const check = () => {
    const since = idleSince();
    const idle = since === null ? 0 : scope.runtime.now() - since;
    if (since !== null && idle >= idleMs) return close();
    scope.timer("idle timeout", idleMs - idle, check);
  };
  scope.timer("idle timeout", idleMs, check);
}
