/**
 * A small leveled logger writing one line per event. Two formats:
 * - `text`, for people: `2026-12-03T15:00:00.123Z INFO message key=value key2="a value"`;
 * - `json`, for log stores (Loki, Elasticsearch, CloudWatch): one object a line, always
 *   `time`, `level` and `msg` first, then the event's fields under their own names.
 * An `Error` in a field is written as its message; only `withStack()` adds its `stack`. A
 * field whose name says it holds a secret (password, token, secret), at any depth of an object,
 * is written as `[redacted]`. The sink and the clock are injectable so tests can capture lines;
 * without a clock, lines carry no time (the core reads time only through the runtime, so the
 * composition root gives it one). `LogLimiter` below keeps an event that repeats to a line a window.
 */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
export type LogFormat = "text" | "json";
export type LogFields = Record<string, unknown>;

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  /** Change the level from now on (live reconfiguration). */
  setLevel?(level: LogLevel): void;
  /** Change the format from now on (live reconfiguration). */
  setFormat?(format: LogFormat): void;
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export interface LoggerOptions {
  /** `text` (the default) or `json`. */
  format?: LogFormat;
  /** The time now, written first on each line: ISO 8601 UTC (`isoTime(runtime.wallClock())`). */
  time?: () => string;
  /** Fields every line carries, before the event's own (a worker's `worker=N`). */
  fields?: LogFields;
}

/** A logger that drops every line: the default of components built without one (unit tests). */
export const SILENT_LOGGER: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** What a secret reads as in a log line (the same text `GET /config` shows). */
export const LOG_REDACTED = "[redacted]";

/** Field names, at any depth, whose values are secrets. */
const SECRET_FIELD = /pass|token|secret/i;

/** JSON field names every line has; an event's field of the same name is written with a `_` after it. */
const RESERVED = new Set(["time", "level", "msg"]);

export function createLogger(level: LogLevel, sink: (line: string) => void = (line) => console.error(line), options: LoggerOptions = {}): Logger {
  let at = ORDER[level];
  let format = options.format ?? "text";
  const now = options.time;
  const base = options.fields;
  const emit = (name: Exclude<LogLevel, "silent">, message: string, own?: LogFields) => {
    if (ORDER[name] < at) return;
    const fields = base ? { ...base, ...own } : own;
    const time = now?.();
    sink(format === "json" ? jsonLine(time, name, message, fields) : textLine(time, name, message, fields));
  };
  return {
    setLevel: (next) => void (at = ORDER[next]),
    setFormat: (next) => void (format = next),
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}

/**
 * The fields of an unexpected failure (a bug, a task that threw): its message as `error` and its
 * stack as `stack`. Expected failures (a node unreachable, a refused config) log the message alone.
 */
export function withStack(error: unknown): LogFields {
  if (!(error instanceof Error)) return { error: String(error) };
  return error.stack ? { error: error.message, stack: error.stack } : { error: error.message };
}

function textLine(time: string | undefined, level: string, message: string, fields?: LogFields): string {
  let line = time ? `${time} ${level.toUpperCase()} ${message}` : `${level.toUpperCase()} ${message}`;
  let stack = "";
  if (fields) {
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      // A stack goes below its line, indented, where people expect it.
      if (key === "stack" && typeof value === "string") stack = `\n    ${value.split("\n").join("\n    ")}`;
      else line += ` ${key}=${textValue(key, value)}`;
    }
  }
  return line + stack;
}

function textValue(key: string, value: unknown): string {
  if (SECRET_FIELD.test(key)) return LOG_REDACTED;
  if (typeof value === "string") return value === "" || /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  if (value instanceof Error) return JSON.stringify(value.message);
  if (value !== null && typeof value === "object") return safeJson(value);
  return String(value);
}

function jsonLine(time: string | undefined, level: string, message: string, fields?: LogFields): string {
  const record: LogFields = time ? { time, level, msg: message } : { level, msg: message };
  if (fields) for (const [key, value] of Object.entries(fields)) record[RESERVED.has(key) ? `${key}_` : key] = value;
  return safeJson(record);
}

/** JSON with secrets redacted, errors as their message, bigints as text; never throws. */
function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (key, v: unknown) => {
      if (key !== "" && SECRET_FIELD.test(key) && v !== undefined && v !== null) return LOG_REDACTED;
      if (v instanceof Error) return v.message;
      if (typeof v === "bigint") return v.toString();
      return v;
    });
  } catch {
    // A cycle: the line still goes out, saying what it could not show.
    return JSON.stringify("[unserializable]");
  }
}

// --- rate limiting ----------------------------------------------------------------------------

/** How long repeats of one key are counted before they are logged as one line, in milliseconds. */
export const REPEAT_WINDOW_MS = 10_000;

/** What the limiter needs of its owner's scope (`Scope` has it). */
export interface LimiterScope {
  readonly isOpen: boolean;
  timer(name: string, ms: number, fn: () => void): { cancel(): void };
  defer(fn: () => void): void;
}

type Level = "debug" | "info" | "warn" | "error";

interface Run {
  level: Level;
  message: string;
  fields: LogFields | undefined;
  /** Occurrences counted since the last line for this key. */
  repeats: number;
  window: { cancel(): void } | null;
}

/**
 * Rate limiting for log lines an event can repeat without end (a refresh failing every second, a
 * flood of clients over a limit): the first occurrence of a key is logged at once; repeats within
 * the window that follows are only counted, and when the window ends one line stands for them —
 * the last occurrence's message and fields plus `repeated=N`. That line opens a new window, so a
 * steady stream costs one line per window; a window that ends with no repeat closes the run, and
 * the next occurrence is logged at once again.
 *
 * It keeps no time of its own: windows are timers of the owner's scope (monotonic), so they stop
 * when the owner is torn down, and what was counted by then is logged as the scope finishes.
 */
export class LogLimiter {
  readonly #runs = new Map<string, Run>();

  constructor(
    readonly scope: LimiterScope,
    readonly log: Logger,
    readonly windowMs = REPEAT_WINDOW_MS,
  ) {
    // Counts still open when the owner goes are logged, not lost.
    if (scope.isOpen) scope.defer(() => this.flushAll());
  }

  warn(key: string, message: string, fields?: LogFields): void {
    this.#occur("warn", key, message, fields);
  }

  info(key: string, message: string, fields?: LogFields): void {
    this.#occur("info", key, message, fields);
  }

  error(key: string, message: string, fields?: LogFields): void {
    this.#occur("error", key, message, fields);
  }

  /** A logger whose every line is one occurrence of `key`: for a component that logs one event (it needs no change). */
  logger(key: string): Logger {
    return {
      debug: (m, f) => this.#occur("debug", key, m, f),
      info: (m, f) => this.#occur("info", key, m, f),
      warn: (m, f) => this.#occur("warn", key, m, f),
      error: (m, f) => this.#occur("error", key, m, f),
    };
  }

  /** Occurrences of `key` counted and not logged yet. */
  pending(key: string): number {
    return this.#runs.get(key)?.repeats ?? 0;
  }

  /** Log now what is counted for `key`, and end its run: its next occurrence is logged at once. */
  flush(key: string): void {
    const run = this.#end(key);
    if (run && run.repeats > 0) this.#summary(run);
  }

  /**
   * End the run of `key` without logging its count: for when the line that ends the run says it
   * (`refresh recovered failedRounds=N`).
   */
  forget(key: string): void {
    this.#end(key);
  }

  flushAll(): void {
    for (const key of [...this.#runs.keys()]) this.flush(key);
  }

  #occur(level: Level, key: string, message: string, fields: LogFields | undefined): void {
    const run = this.#runs.get(key);
    if (run) {
      run.repeats++;
      run.level = level;
      run.message = message;
      run.fields = fields;
      return;
    }
    this.log[level](message, fields);
    // A closing owner logs every occurrence: it has no window left to count them in.
    if (!this.scope.isOpen) return;
    const started: Run = { level, message, fields, repeats: 0, window: null };
    this.#runs.set(key, started);
    this.#open(key, started);
  }

  #open(key: string, run: Run): void {
    run.window = this.scope.timer(`log window '${key}'`, this.windowMs, () => {
      run.window = null;
      if (run.repeats === 0) {
        this.#runs.delete(key);
        return;
      }
      this.#summary(run);
      run.repeats = 0;
      if (this.scope.isOpen) this.#open(key, run);
      else this.#runs.delete(key);
    });
  }

  #end(key: string): Run | undefined {
    const run = this.#runs.get(key);
    if (!run) return undefined;
    this.#runs.delete(key);
    run.window?.cancel();
    run.window = null;
    return run;
  }

  #summary(run: Run): void {
    this.log[run.level](run.message, { ...run.fields, repeated: run.repeats });
  }
}
