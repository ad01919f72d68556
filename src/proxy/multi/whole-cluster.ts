/**
 * Keyless commands about the whole dataset: sent to every primary and merged (KEYS, DBSIZE,
 * FLUSHALL, SCRIPT LOAD, FUNCTION LOAD...), to one primary (FUNCTION LIST, EVAL with no keys),
 * or walked primary by primary (SCAN, RANDOMKEY). How each one is served comes from its COMMAND
 * tips where they say it — no `request_policy`: any one primary; `all_shards`/`all_nodes`: every
 * primary, merged by its `response_policy` — and from `PLANS` where they do not.
 *
 * They go to the routing table's dataset backend (the catch-all cluster, or the only cluster
 * when there is just one); with several clusters and no catch-all they are refused. Prefixed routes do not apply: KEYS and SCAN return
 * the catch-all cluster's keys as they are stored.
 */
import { Unavailable, type Backend } from "../../backend/contract.ts";
import { allCommands, type CommandInfo } from "../../commands/keys.ts";
import { UpstreamRequest } from "../../backend/request.ts";
import { FirstFound, fanOut, fanOutAlone, oneSucceeded, tip, tipMerge, CLUSTER_DOWN, type FanOutClient, type Merge } from "./fanout.ts";
import { scan } from "./scan.ts";
import { info } from "./info.ts";
import { errorReply } from "../../resp/replies.ts";

/** What the proxy needs to serve whole-cluster commands. */
export interface WholeClusterServices {
  /** A number in [0, 1), from the runtime (RANDOMKEY's order of primaries). */
  random(): number;
  /** The proxy's own INFO text (sections headed `# Name`). */
  info(): string;
}

export type Plan =
  | { kind: "all"; merge: Merge }
  /** Every primary, each on a connection of its own (the KILL commands). */
  | { kind: "alone"; merge: Merge }
  | { kind: "one" }
  | { kind: "random" }
  | { kind: "scan" }
  | { kind: "info" };

/** Commands whose tips do not say it all. */
const PLANS: Record<string, Plan> = {
  SCAN: { kind: "scan" },
  INFO: { kind: "info" },
  // all_shards with no response policy would make an array of one key per primary.
  RANDOMKEY: { kind: "random" },
  "SCRIPT|KILL": { kind: "alone", merge: oneSucceeded },
  "FUNCTION|KILL": { kind: "alone", merge: oneSucceeded },
  // A running function is on one primary, which one does not know: any primary's answer is
  // the libraries' (loaded on every primary); only `running_script` may miss another's.
  "FUNCTION|STATS": { kind: "one" },
};

/** Every whole-cluster command slotgate serves (the container names serve HELP and unknown subcommands). */
const COMMANDS = [
  "KEYS", "DBSIZE", "RANDOMKEY", "FLUSHALL", "FLUSHDB", "SCAN", "INFO",
  "SCRIPT", "SCRIPT|LOAD", "SCRIPT|EXISTS", "SCRIPT|FLUSH", "SCRIPT|KILL", "SCRIPT|HELP",
  "FUNCTION", "FUNCTION|LOAD", "FUNCTION|DELETE", "FUNCTION|FLUSH", "FUNCTION|RESTORE", "FUNCTION|KILL",
  "FUNCTION|LIST", "FUNCTION|DUMP", "FUNCTION|STATS", "FUNCTION|HELP",
];

/** EVAL and FCALL and their read-only forms: with no keys, any primary runs them. */
export const SCRIPT_CALLS = new Set(["EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"]);

function resolvePlan(info: CommandInfo): Plan {
  if (Object.hasOwn(PLANS, info.name)) return PLANS[info.name]!;
  const request = tip(info, "request_policy");
  if (request === null) return { kind: "one" };
  const merge = request === "all_shards" || request === "all_nodes" ? tipMerge(info) : null;
  if (merge === null) throw new Error(`no plan for ${info.name} (tips: ${info.tips.join(" ")})`);
  return { kind: "all", merge };
}

/** Resolved once, when the module loads: a command the tips cannot serve fails at once. */
const PLAN_OF: ReadonlyMap<string, Plan> = new Map(
  allCommands()
    .filter((info) => COMMANDS.includes(info.name))
    .map((info) => [info.name, resolvePlan(info)]),
);

/** How `info` is served, or undefined when it is not a whole-cluster command. */
export function planOf(info: CommandInfo): Plan | undefined {
  return PLAN_OF.get(info.name);
}

export class WholeCluster {
  constructor(readonly services: WholeClusterServices) {}

  /** Serve a command `planOf` knows. */
  route(client: FanOutClient, backend: Backend | Unavailable, info: CommandInfo, args: readonly Uint8Array[], frame: Uint8Array): void {
    const plan = planOf(info)!;
    if (plan.kind === "info") return this.#info(client, backend, args);
    if (backend instanceof Unavailable) return client.reply(refusal(info, backend));
    switch (plan.kind) {
      case "all":
        return fanOut(client, backend, backend.primaries(), frame, plan.merge);
      case "alone":
        return fanOutAlone(client, backend, backend.primaries(), frame, plan.merge);
      case "one":
        return this.#toOne(client, backend, frame);
      case "random":
        return FirstFound.send(client, backend, this.#shuffled(backend.primaries()), frame);
      case "scan":
        return scan(client, backend, args);
    }
  }

  /** A script call with no keys (or a numkeys Redis must judge): any one primary. */
  routeKeyless(client: FanOutClient, backend: Backend | Unavailable, info: CommandInfo, frame: Uint8Array): void {
    if (backend instanceof Unavailable) return client.reply(refusal(info, backend));
    this.#toOne(client, backend, frame);
  }

  #toOne(client: FanOutClient, backend: Backend, frame: Uint8Array): void {
    const shards = backend.primaries();
    if (shards.length === 0) return client.reply(CLUSTER_DOWN);
    const request = new UpstreamRequest(frame, shards[Math.floor(this.services.random() * shards.length)]!, client, client.id);
    request.resp3 = client.protocol === 3;
    client.expect(request);
    backend.dispatch(request);
  }

  #info(client: FanOutClient, backend: Backend | Unavailable, args: readonly Uint8Array[]): void {
    info(client, this.services.info(), backend, args);
  }

  /** Fisher-Yates, with the runtime's randomness. */
  #shuffled(shards: number[]): number[] {
    for (let i = shards.length - 1; i > 0; i--) {
      const j = Math.floor(this.services.random() * (i + 1));
      [shards[i], shards[j]] = [shards[j]!, shards[i]!];
    }
    return shards;
  }
}

function refusal(info: CommandInfo, why: Unavailable): Uint8Array {
  return errorReply(`'${info.name.toLowerCase().replace("|", " ")}' goes to every primary of one cluster, but ${why.message}`);
}
