/** A worker thread on Bun (`SLOTGATE_WORKERS`, src/workers/): slotgate's program, its orders from the supervisor. */
import { main } from "../../src/main.ts";
import { runThreadWorker } from "../shared/thread-workers.ts";
import { bunHost } from "./host.ts";

runThreadWorker((env, link) => main({ ...bunHost(env), workerLink: link, exit: (code) => link.post({ t: "exit", code }) }));
