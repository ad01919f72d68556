/**
 * `npx tsx scripts/admin-body-rss.ts [--runtime node|bun|deno] [--mb 400] [--token right|wrong] [--keep-sending]`:
 * how much memory a large admin `PUT /config` costs slotgate before it answers. Starts slotgate
 * (the real entry point, on the chosen runtime) with an admin token, sends one PUT whose
 * `content-length` says N MB over loopback — streaming the body from one reused 1 MiB buffer, as
 * fast as the server takes it, until it answers (or to the end, with --keep-sending) — and samples the server's resident set from /proc (Linux) until
 * the answer or the connection's end. Prints the status, the bytes the server took, and the RSS
 * growth over the baseline (peak sampled, and the kernel's high-water mark `VmHWM`).
 *
 * Bounded: loopback only, one request, 120 s at most; slotgate is stopped at the end.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import process from "node:process";
import { freePort } from "./free-port.ts";
import { option, serveCommand } from "./proxy-process.ts";

const runtime = option("runtime", "node");
const megabytes = Number(option("mb", "400"));
const sendRightToken = option("token", "wrong") === "right";
/** Keep sending after the answer, as a client that never reads it would. */
const keepSending = process.argv.includes("--keep-sending");
const TOKEN = "rss-probe-token";
function status(pid: number, field: "VmRSS" | "VmHWM"): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) * 1024 : NaN;
}

const mb = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MB`;

async function waitForPort(port: number, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port }, () => (socket.destroy(), resolve(true)));
      socket.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`admin port ${port} never opened`);
}

async function main(): Promise<void> {
  const deadline = Date.now() + 120_000;
  const [port, adminPort] = [await freePort(), await freePort()];
  const [bin, ...args] = serveCommand(runtime, ".");
  const child = spawn(bin!, args, {
    env: {
      ...process.env,
      SLOTGATE_SEEDS: "127.0.0.1:1",
      SLOTGATE_LISTEN: `127.0.0.1:${port}`,
      SLOTGATE_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
      SLOTGATE_ADMIN_TOKEN: TOKEN,
      SLOTGATE_LOG_LEVEL: "silent",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  try {
    await waitForPort(adminPort, deadline);
    await new Promise((r) => setTimeout(r, 500)); // let start-up settle before the baseline
    const pid = child.pid!;
    const baseline = status(pid, "VmRSS");
    let peak = baseline;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, status(pid, "VmRSS"));
      } catch {}
    }, 5);

    const total = megabytes * 1024 * 1024;
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    let sent = 0;
    let answer = "";
    const socket = net.connect({ host: "127.0.0.1", port: adminPort });
    const finished = new Promise<void>((resolve) => {
      socket.on("data", (data) => (answer += data.toString("latin1")));
      socket.on("close", () => resolve());
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve, reject) => (socket.once("connect", resolve), socket.once("error", reject)));
    socket.write(
      `PUT /config HTTP/1.1\r\nhost: 127.0.0.1:${adminPort}\r\nauthorization: Bearer ${sendRightToken ? TOKEN : "wrong-token"}\r\n` +
        `content-type: application/json\r\ncontent-length: ${total}\r\n\r\n`,
    );
    // Send until the whole body is out, the server answers or closes, or time runs out.
    while (sent < total && !socket.destroyed && (keepSending || answer === "") && Date.now() < deadline) {
      const n = Math.min(chunk.length, total - sent);
      sent += n;
      if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
        await new Promise<void>((resolve) => {
          const done = () => {
            for (const event of ["drain", "close", "data"]) socket.off(event, done);
            resolve();
          };
          for (const event of ["drain", "close", "data"]) socket.on(event, done);
        });
      }
    }
    const waited = await Promise.race([finished.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), Math.max(0, Math.min(30_000, deadline - Date.now()))))]);
    socket.destroy();
    clearInterval(sampler);
    const hwm = status(pid, "VmHWM");
    const line = answer.split("\r\n")[0] || "(no answer)";
    console.log(`runtime: ${runtime}; PUT /config with a ${sendRightToken ? "right" : "wrong"} token and content-length ${mb(total)}`);
    console.log(`answer: ${line}${waited ? "" : " (connection still open after 30 s)"}`);
    console.log(`body bytes written by the client before the answer or close: ${mb(sent)} (the socket buffers hold a few MB of it)`);
    console.log(`server RSS: baseline ${mb(baseline)}, peak sampled ${mb(peak)} (+${mb(peak - baseline)}), VmHWM ${mb(hwm)} (+${mb(hwm - baseline)})`);
  } finally {
    child.kill("SIGKILL");
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
