/**
 * Helpers of the lifecycle, check-config and twemproxy tests (the entry point as a real process
 * is `startEntry`, in test/support/processes.ts): waits that end on an event, bounded only by a
 * generous deadline (never a timed assertion). Node, Bun and Deno (node:net).
 */
import net from "node:net";

/** Whether a TCP connection to 127.0.0.1:port is accepted now. */
export function accepts(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

/** Poll `condition` every 100 ms until it holds; fail after `timeoutMs` (a generous bound, not an assertion on time). */
export async function until(condition: () => Promise<boolean> | boolean, label: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await Promise.resolve(condition()).catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
