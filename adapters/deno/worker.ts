/** A worker thread on Deno (`SLOTGATE_WORKERS`, src/workers/): slotgate's program, its orders from the supervisor. */
import { main } from "../../src/main.ts";
import { runThreadWorker } from "../shared/thread-workers.ts";
import { denoHost } from "./host.ts";

runThreadWorker((env, link) => main({ ...denoHost(env), workerLink: link, exit: (code) => link.post({ t: "exit", code }) }));
