/**
 * The seeded fuzzer (issue 11 §5): drives the request parser, the reply reader, the CLUSTER SLOTS
 * parser and a whole client session with generated inputs (valid, valid cut at random points,
 * malformed, randomly mutated), checking each target's properties (test/fuzz/*-target.ts).
 *
 * Usage: npm run fuzz -- [--cases N] [--seed S] [--target parser|replies|slots|session|all]
 *                        [--from I] [--hang-seconds T] [--no-watchdog]
 *   --cases N         cases per target (default 1,000,000)
 *   --seed S          run seed (default: derived from the clock, printed so a run can be repeated)
 *   --target          one target, or all of them in turn (default all)
 *   --from I          index of the first case (to replay case I alone: --from I --cases 1)
 *   --hang-seconds T  a run silent for T seconds is hung (default 120)
 * Also: npm run fuzz:bun -- ..., npm run fuzz:deno -- ...
 *
 * Prints, per target, cases, time, cases/s, input bytes and the slowest case, then totals. Exits 1
 * at the first failure, printing its seed, case index, the command that replays it and the
 * input shrunk to a minimal reproduction.
 *
 * Hangs: a case that never returns cannot be caught from inside, so the run happens in a child
 * process that reports progress every 1,000 cases; silent past --hang-seconds, it is killed and
 * the thousand cases are run again one progress line per case, which names the case that hung.
 */
import process from "node:process";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { formatFailure, runTarget } from "../test/fuzz/harness.ts";
import { TARGETS } from "../test/fuzz/targets.ts";

const argv = process.argv.slice(2);

function option(name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

function count(name: string, fallback: number): number {
  const text = option(name);
  if (text === undefined) return fallback;
  const n = Number(text.replace(/_/g, ""));
  if (!Number.isSafeInteger(n) || n < 0) usage(`${name} wants a whole number, got ${JSON.stringify(text)}`);
  return n;
}

function usage(problem: string): never {
  console.error(`fuzz: ${problem}\nusage: npm run fuzz -- [--cases N] [--seed S] [--target ${TARGETS.map((t) => t.name).join("|")}|all] [--from I] [--hang-seconds T] [--no-watchdog]`);
  process.exit(2);
}

const cases = count("--cases", 1_000_000);
if (cases < 1) usage("--cases wants at least 1");
const seed = count("--seed", Date.now() % 1_000_000_007) >>> 0;
const from = count("--from", 0);
const hangSeconds = count("--hang-seconds", 120);
const progressEvery = count("--progress-every", 1000) || 1;
const targetName = option("--target") ?? "all";
const targets = targetName === "all" ? TARGETS : TARGETS.filter((t) => t.name === targetName);
if (targets.length === 0) usage(`no target ${JSON.stringify(targetName)}`);

const PROGRESS = "@progress";
/** This process is the watchdog's child: it reports progress on stdout. */
const supervised = argv.includes("--child");

/** The command that runs this script again on the current runtime. */
function self(args: string[]): [string, string[]] {
  const script = fileURLToPath(import.meta.url);
  if ("Deno" in globalThis) return [process.execPath, ["run", "-A", script, ...args]];
  if ("Bun" in globalThis) return [process.execPath, [script, ...args]];
  return [process.execPath, [...process.execArgv, script, ...args]];
}

/** Runs the targets in this process (the child side); returns the exit code. */
async function runHere(): Promise<number> {
  const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : `node ${process.version}`;
  console.log(`fuzz: seed ${seed}, ${cases} cases per target from case ${from}, targets ${targets.map((t) => t.name).join(", ")}, on ${runtime}`);
  let total = 0;
  let totalMs = 0;
  for (const target of targets) {
    // Progress lines are for the watchdog only (a run with --no-watchdog has none).
    const progress = (done: number) => supervised && console.log(`${PROGRESS} ${target.name} ${from + done}`);
    progress(0);
    const result = await runTarget(target, { seed, from, cases, progressEvery, onProgress: progress });
    total += result.cases;
    totalMs += result.elapsedMs;
    const s = result.elapsedMs / 1000;
    const { slowest } = result;
    console.log(
      `${target.name}: ${result.cases} cases in ${s.toFixed(1)} s, ${Math.round(result.cases / s)} cases/s, ` +
        `${(result.bytes / 1e6).toFixed(1)} MB of input, slowest case ${slowest.index} (${slowest.ms.toFixed(1)} ms, ${slowest.bytes} bytes; ${slowest.rerunMs.toFixed(1)} ms rerun), ` +
        `${result.failure ? "FAILED" : "0 failures"}`,
    );
    if (result.failure) {
      console.log(formatFailure(result.failure));
      return 1;
    }
  }
  console.log(`total: ${total} cases in ${(totalMs / 1000).toFixed(1)} s, ${Math.round(total / (totalMs / 1000))} cases/s, 0 failures, 0 hangs`);
  return 0;
}

interface Watched {
  code: number;
  /** Set when the child went silent: the target and the last case it reported done. */
  hung: { target: string; done: number } | null;
}

/** Runs the child with `args`, passing its output through; kills it after `hangSeconds` of silence. */
function watch(args: string[]): Promise<Watched> {
  const [command, commandArgs] = self([...args, "--child"]);
  const child = spawn(command, commandArgs, { stdio: ["ignore", "pipe", "inherit"] });
  let last = { target: targets[0]!.name, done: from };
  let hung: Watched["hung"] = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      hung = last;
      child.kill("SIGKILL");
    }, hangSeconds * 1000);
  };
  arm();
  createInterface({ input: child.stdout! }).on("line", (line) => {
    arm();
    if (line.startsWith(PROGRESS)) {
      const [, target, done] = line.split(" ");
      last = { target: target!, done: Number(done) };
      return;
    }
    console.log(line);
  });
  return new Promise((resolve) => {
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, hung });
    });
  });
}

async function supervise(): Promise<number> {
  const first = await watch(argv);
  if (first.hung === null) return first.code;
  const { target, done } = first.hung;
  const window = Math.min(progressEvery, from + cases - done);
  console.log(`HANG ${target}: no progress for ${hangSeconds} s within cases ${done}..${done + window - 1}; running them one at a time to find the one`);
  const second = await watch(["--target", target, "--seed", String(seed), "--from", String(done), "--cases", String(window), "--progress-every", "1", "--hang-seconds", String(hangSeconds)]);
  if (second.hung === null) {
    console.log(`HANG ${target}: the cases from ${done} did not hang when run again (slow rather than stuck?)`);
    return 1;
  }
  const stuck = second.hung.done;
  console.log(`HANG ${target}: case ${stuck} of seed ${seed} never returned; replay: npm run fuzz -- --target ${target} --seed ${seed} --from ${stuck} --cases 1 --no-watchdog`);
  return 1;
}

process.exit(supervised || argv.includes("--no-watchdog") ? await runHere() : await supervise());
