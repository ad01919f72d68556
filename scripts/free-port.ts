/**
 * Free loopback TCP ports, found by letting the OS pick (listen on port 0) and closing again.
 * Another process may still grab a port between our close and the caller's bind, so callers that
 * start servers on these ports should retry with fresh ports when the bind fails.
 */
import { createServer, type Server } from "node:net";

/**
 * Return `count` distinct ports that were free on `host` a moment ago. All listeners are held
 * open together so the OS cannot hand the same port out twice within one call.
 */
export async function freePorts(count: number, host = "127.0.0.1"): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      ports.push(await listenOnZero(server, host));
    }
    return ports;
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

/** Return one port that was free on `host` a moment ago. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const [port] = await freePorts(1, host);
  return port!;
}

function listenOnZero(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === "string") reject(new Error("listener has no TCP address"));
      else resolve(address.port);
    });
  });
}
