/**
 * What the Linux kernel says about one TCP connection's timers, read from /proc/net/tcp (and
 * tcp6): the only way to see from a test that keepalive is really on, and after how long, on
 * every runtime alike. Elsewhere (no /proc) the answer is null and callers skip.
 *
 * Column `tr` is the armed timer: 0 none, 1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 zero-window
 * probe; `tm->when` is the time left on it in USER_HZ ticks (100 per second). On an idle
 * established connection the keepalive timer is armed exactly when SO_KEEPALIVE is on.
 */
import { existsSync, readFileSync } from "node:fs";

export interface TcpTimer {
  /** The `tr` column (2: keepalive). */
  timer: number;
  /** Seconds left on it. */
  seconds: number;
}

const TABLES = ["/proc/net/tcp", "/proc/net/tcp6"];
const USER_HZ = 100;

/** True where /proc/net/tcp can be read (Linux). */
export function canReadTcpTimers(): boolean {
  return existsSync(TABLES[0]!);
}

/** Every established connection whose ports pass `wanted`, with its timer. */
export function tcpTimers(wanted: (localPort: number, remotePort: number) => boolean): TcpTimer[] {
  const found: TcpTimer[] = [];
  for (const table of TABLES) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // 01: ESTABLISHED.
      if (fields.length < 6 || fields[3] !== "01") continue;
      const local = Number.parseInt(fields[1]!.split(":").pop()!, 16);
      const remote = Number.parseInt(fields[2]!.split(":").pop()!, 16);
      if (!wanted(local, remote)) continue;
      const [timer, when] = fields[5]!.split(":");
      found.push({ timer: Number.parseInt(timer!, 16), seconds: Number.parseInt(when!, 16) / USER_HZ });
    }
  }
  return found;
}

/**
 * The timer of the connection whose local port is `localPort` and remote port `remotePort`, or
 * null when no such connection is listed (or /proc is absent).
 */
export function tcpTimer(localPort: number, remotePort: number): TcpTimer | null {
  return tcpTimers((local, remote) => local === localPort && remote === remotePort)[0] ?? null;
}
