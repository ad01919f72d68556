/**
 * CPU time of processes from /proc (Linux), for the benchmarks: user + system time of a process
 * and of its children, summed over a process tree.
 */
import { readFileSync, readdirSync } from "node:fs";

/** utime + stime + cutime + cstime of one process, in ms, and its parent; null once it is gone. */
function procTimes(pid: number): { ms: number; ppid: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // After "pid (comm) ": state is field 3; ppid 4; utime 14, stime 15, cutime 16, cstime 17.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    return { ms: (ticks * 1000) / 100, ppid: Number(fields[1]) };
  } catch {
    return null;
  }
}

/** CPU ms so far of `roots` and every live descendant (worker processes, if any). */
export function cpuMs(roots: readonly number[]): number {
  const children = new Map<number, number[]>();
  const times = new Map<number, number>();
  for (const entry of readdirProc()) {
    const t = procTimes(entry);
    if (t === null) continue;
    times.set(entry, t.ms);
    const list = children.get(t.ppid);
    if (list) list.push(entry);
    else children.set(t.ppid, [entry]);
  }
  let total = 0;
  const stack = [...roots];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    total += times.get(pid) ?? procTimes(pid)?.ms ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

function readdirProc(): number[] {
  return readdirSync("/proc").filter((name) => /^\d+$/.test(name)).map(Number);
}
