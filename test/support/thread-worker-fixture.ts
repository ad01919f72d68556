/**
 * A worker thread for test/unit/thread-workers.test.ts: says it listens, leaves with exit 0 when
 * told to shut down, and with FIXTURE=crash throws once running (an uncaught error in the thread).
 */
import { runThreadWorker } from "../../adapters/shared/thread-workers.ts";

runThreadWorker(async (env, link) => {
  if (env.FIXTURE === "crash") throw new Error("fixture crash");
  link.onMessage((message) => {
    if (message.t === "shutdown") link.post({ t: "exit", code: 0 });
    if (message.t === "peer") link.post({ t: "send", to: message.from, body: message.body });
  });
  link.post({ t: "listening", port: Number(env.PORT), tlsPort: null });
});
