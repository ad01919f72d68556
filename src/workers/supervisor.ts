/**
 * The supervisor of `SLOTGATE_WORKERS=N` (./protocol.ts): starts the leader, then — once it
 * listens, so that a port configured as 0 is picked once — the other workers on the leader's
 * ports; relays messages between them; turns SIGTERM/SIGINT into a graceful shutdown of every
 * worker and SIGHUP into a reload by the leader. It serves nothing itself.
 *
 * A worker that exits on its own (a crash, or a start that failed) takes the group down: the others
 * are shut down gracefully and the supervisor exits non-zero, so the process manager (systemd,
 * Kubernetes, Docker's restart policy) restarts slotgate whole, with one configuration for all.
 */
import type { Logger } from "../log.ts";
import { WORKER_PORTS_VARIABLE, WORKER_VARIABLE, type FromWorker, type SpawnedWorker, type WorkerSpawner } from "./protocol.ts";

export interface SupervisorHost {
  env: Record<string, string | undefined>;
  workers: WorkerSpawner;
  onShutdownSignal(handler: (signal: string) => void): void;
  onReloadSignal(handler: () => void): void;
  exit(code: number): void;
}

/** Exit code of a second signal: 128 + its number, as a shell reports a process killed by it. */
const FORCED_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

interface Member {
  index: number;
  handle: SpawnedWorker;
  listening: boolean;
  exited: boolean;
}

/** Start `count` workers and look after them until they have all exited; then `host.exit`. */
export function supervise(host: SupervisorHost, count: number, log: Logger): void {
  const members: Member[] = [];
  let stopping = false;
  let exitCode = 0;
  let ports: { port: number; tlsPort: number | null } | null = null;

  const live = () => members.filter((m) => !m.exited);
  const stopAll = (why: string) => {
    stopping = true;
    for (const m of live()) m.handle.post({ t: "shutdown", why });
  };

  const start = (index: number) => {
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(host.env)) if (value !== undefined) env[name] = value;
    env[WORKER_VARIABLE] = `${index}/${count}`;
    if (ports) env[WORKER_PORTS_VARIABLE] = `${ports.port},${ports.tlsPort ?? ""}`;
    const member: Member = { index, handle: undefined!, listening: false, exited: false };
    members[index] = member;
    member.handle = host.workers.spawn(index, env, {
      message: (message) => onMessage(member, message),
      exit: (code) => onExit(member, code),
    });
  };

  const onMessage = (from: Member, message: FromWorker) => {
    if (message.t === "listening") {
      from.listening = true;
      // Started while the group was stopping: it is told again, now that it surely listens for orders.
      if (stopping) return from.handle.post({ t: "shutdown", why: "the group is shutting down" });
      if (from.index === 0) {
        ports = { port: message.port, tlsPort: message.tlsPort };
        if (!stopping) for (let i = 1; i < count; i++) start(i);
      } else {
        members[0]?.handle.post({ t: "joined", index: from.index });
      }
      if (members.length === count && members.every((m) => m.listening)) {
        log.info("slotgate workers serving", { workers: count, kind: host.workers.kind, port: ports!.port });
      }
    } else if (message.t === "send") {
      const targets = message.to === "others" ? live().filter((m) => m !== from) : live().filter((m) => m.index === message.to);
      for (const target of targets) target.handle.post({ t: "peer", from: from.index, body: message.body });
    }
  };

  const onExit = (member: Member, code: number | null) => {
    if (member.exited) return;
    member.exited = true;
    if (!stopping || code !== 0) {
      if (!stopping) log.error("worker exited on its own; stopping the others", { worker: member.index, code: code ?? "killed" });
      if (exitCode === 0) exitCode = code === null || code === 0 ? 1 : code;
      if (!stopping) stopAll(`worker ${member.index} exited`);
    }
    if (live().length === 0) host.exit(exitCode);
  };

  host.onShutdownSignal((signal) => {
    if (stopping) {
      log.warn("second signal during shutdown: stopping every worker at once", { signal });
      for (const m of live()) m.handle.kill();
      return host.exit(FORCED_EXIT[signal] ?? 1);
    }
    log.info("shutting down every worker", { why: signal, workers: live().length });
    stopAll(signal);
  });
  host.onReloadSignal(() => members[0]?.handle.post({ t: "reload", why: "SIGHUP" }));
  start(0);
}
