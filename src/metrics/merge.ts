/**
 * One `/metrics` scrape out of several workers' (`SLOTGATE_WORKERS=N`): the leader reads every
 * worker's exposition text (./scrape.ts, written by ./exposition.ts) and answers with one text in
 * the same format, each series combined over the workers that have it.
 *
 * How a series combines is decided per family, as data (`MERGE_RULES`): counters, histograms and
 * most gauges add up (each worker holds its own clients, connections and requests), while a few
 * gauges describe something every worker sees on its own (the event loop's lag, whether a
 * cluster is ready) and take the worst or the newest value instead.
 *
 * The merge reads what `MetricsWriter` writes: `# HELP` and `# TYPE` lines, then the family's
 * samples `name{labels} value`, each series keyed by its whole `name{labels}` text, so label
 * values stay escaped exactly as the writer escaped them. A line of any other shape is skipped:
 * the texts are ours, but a merge must never take the admin API down.
 */

import { numberText } from "./exposition.ts";

export type MergeRule = "sum" | "max" | "min" | "first";

/** Options of one merge. */
export interface MergeOptions {
  /** Write OpenMetrics 1.0 (ends with `# EOF`); the texts are in that format too. */
  openMetrics: boolean;
  /** The workers are threads of one process, so the process's figures are read the same by each. */
  sharedProcess: boolean;
}

/**
 * Rules of the families that are not summed, by family name (every other family is summed).
 * Checked against the families `scrape()` writes by test/unit/metrics-merge.test.ts.
 */
export const MERGE_RULES: ReadonlyMap<string, MergeRule> = new Map<string, MergeRule>([
  // Each worker runs its own event loop: the slowest one is what a client may meet.
  ["slotgate_event_loop_lag_seconds", "max"],
  ["slotgate_event_loop_lag_max_seconds", "max"],
  // Each worker discovers on its own: the newest slot map any of them applied.
  ["slotgate_discovery_last_success_timestamp_seconds", "max"],
  // A client may land on any worker: ready, up or covered only where every worker says so.
  ["slotgate_cluster_ready", "min"],
  ["slotgate_upstream_node_up", "min"],
  ["slotgate_cluster_slots_covered", "min"],
  // Version and runtime are the same in every worker (always 1).
  ["slotgate_info", "first"],
]);

/**
 * Rules that replace `MERGE_RULES` when the workers share one process: its resident memory is
 * one figure that every worker reads, so it is taken once. The heap is not here: each worker
 * thread has its own isolate and heap, so heaps add up either way.
 */
export const SHARED_PROCESS_RULES: ReadonlyMap<string, MergeRule> = new Map<string, MergeRule>([["slotgate_process_resident_memory_bytes", "first"]]);

/** How the series of `family` combine across workers. */
export function mergeRule(family: string, sharedProcess: boolean): MergeRule {
  return (sharedProcess ? SHARED_PROCESS_RULES.get(family) : undefined) ?? MERGE_RULES.get(family) ?? "sum";
}

/** Combine the expositions of several workers (same format each; the leader's first) into one. */
export function mergeExpositions(texts: readonly string[], options: MergeOptions): string {
  const families = new Map<string, Family>();
  texts.forEach((text, worker) => addText(families, text, worker, options.sharedProcess));
  return render(families, options.openMetrics);
}

/** A family as merged so far; families and series keep the order they were first met in. */
interface Family {
  name: string;
  /** The first `# HELP` and `# TYPE` lines met, as written. */
  help: string | undefined;
  type: string | undefined;
  /** The type word of `type`; `untyped` until a `# TYPE` line is met. */
  kind: string;
  rule: MergeRule;
  /** By `name{labels}`. */
  series: Map<string, Series>;
}

interface Series {
  value: number;
  /** The index of the last text that gave a value: a series repeated within one text is kept once. */
  worker: number;
}

/**
 * The family types the merge combines, and the sample names each holds, as suffixes of the
 * family's name (a counter's family lacks `_total` in OpenMetrics, and has it in text 0.0.4).
 * The writer writes no summaries: a `# TYPE` line of another type is skipped like garbage, so
 * such a family is left out rather than have its quantiles added up.
 */
const SAMPLE_SUFFIXES: ReadonlyMap<string, readonly string[]> = new Map([
  ["counter", ["", "_total"]],
  ["gauge", [""]],
  ["histogram", ["_bucket", "_sum", "_count"]],
  ["untyped", [""]],
  ["unknown", [""]],
]);

/** One line of an exposition, as far as the merge cares; null: nothing to merge (blank, `# EOF`, garbage). */
type Line =
  | { kind: "help"; family: string; text: string }
  | { kind: "type"; family: string; type: string; text: string }
  | { kind: "sample"; name: string; series: string; value: number };

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
/** A label as the writer writes it: the value quoted, with `\\`, `\"` and `\n` its only escapes. */
const LABEL = String.raw`[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"`;
const HELP_LINE = new RegExp(`^# HELP (${NAME})(?: .*)?$`);
const TYPE_LINE = new RegExp(`^# TYPE (${NAME}) (${[...SAMPLE_SUFFIXES.keys()].join("|")})$`);
const SAMPLE_LINE = new RegExp(`^((${NAME})(?:\\{${LABEL}(?:,${LABEL})*\\})?) (\\S+)$`);
/** A decimal number as `String(n)` writes it (and a few spellings more that mean the same). */
const FLOAT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Add one worker's text: each sample goes to the family whose header came last, if its name fits. */
function addText(families: Map<string, Family>, text: string, worker: number, sharedProcess: boolean): void {
  let current: Family | undefined;
  for (const raw of text.split("\n")) {
    const line = parseLine(raw);
    if (line === null) continue;
    if (line.kind === "sample") {
      if (current !== undefined && holds(current, line.name)) addSample(current, line.series, line.value, worker);
      continue;
    }
    current = familyOf(families, line.family, sharedProcess);
    if (line.kind === "help") current.help ??= line.text;
    else if (current.type === undefined) {
      current.type = line.text;
      current.kind = line.type;
    }
  }
}

function parseLine(raw: string): Line | null {
  if (raw.startsWith("#")) {
    const help = HELP_LINE.exec(raw);
    if (help !== null) return { kind: "help", family: help[1]!, text: raw };
    const type = TYPE_LINE.exec(raw);
    if (type !== null) return { kind: "type", family: type[1]!, type: type[2]!, text: raw };
    return null;
  }
  const sample = SAMPLE_LINE.exec(raw);
  if (sample === null) return null;
  const value = parseValue(sample[3]!);
  return value === undefined ? null : { kind: "sample", name: sample[2]!, series: sample[1]!, value };
}

/** A sample's value as the writer writes it (`String(n)`, `+Inf`, `-Inf`, `NaN`); undefined if it is none. */
function parseValue(text: string): number | undefined {
  if (text === "+Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  if (text === "NaN") return Number.NaN;
  return FLOAT.test(text) ? Number(text) : undefined;
}

function familyOf(families: Map<string, Family>, name: string, sharedProcess: boolean): Family {
  let family = families.get(name);
  if (family === undefined) {
    family = { name, help: undefined, type: undefined, kind: "untyped", rule: mergeRule(name, sharedProcess), series: new Map() };
    families.set(name, family);
  }
  return family;
}

/** Whether a sample named `name` belongs to `family` (by its type's sample suffixes). */
function holds(family: Family, name: string): boolean {
  const suffixes = SAMPLE_SUFFIXES.get(family.kind) ?? [];
  return suffixes.some((suffix) => name === family.name + suffix);
}

function addSample(family: Family, key: string, value: number, worker: number): void {
  const series = family.series.get(key);
  if (series === undefined) family.series.set(key, { value, worker });
  else if (series.worker !== worker) {
    series.value = combine(family.rule, series.value, value);
    series.worker = worker;
  }
}

/** `so far` (the earlier workers' value) combined with the next worker's `next`. NaN stays NaN. */
function combine(rule: MergeRule, soFar: number, next: number): number {
  switch (rule) {
    case "sum":
      return soFar + next;
    case "max":
      return Math.max(soFar, next);
    case "min":
      return Math.min(soFar, next);
    case "first":
      return soFar;
  }
}

/**
 * The text `MetricsWriter.text()` would write for these families: the same bytes for one worker.
 * A family no text gave a `# TYPE` line for is left out: the writer always writes one, so such a
 * family can only come from a text cut short or a type the merge does not combine.
 */
function render(families: Map<string, Family>, openMetrics: boolean): string {
  const lines: string[] = [];
  for (const family of families.values()) {
    if (family.type === undefined) continue;
    if (family.help !== undefined) lines.push(family.help);
    lines.push(family.type);
    for (const [key, series] of family.series) lines.push(`${key} ${numberText(series.value)}`);
  }
  return `${lines.join("\n")}\n${openMetrics ? "# EOF\n" : ""}`;
}
