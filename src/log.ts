/**
 * A small leveled logger writing one line per event to the console: `LEVEL message key=value`.
 * The sink is injectable so tests can capture lines.
 */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  /** Change the level from now on (live reconfiguration). */
  setLevel?(level: LogLevel): void;
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A logger that drops every line: the default of components built without one (unit tests). */
export const SILENT_LOGGER: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export function createLogger(level: LogLevel, sink: (line: string) => void = (line) => console.error(line)): Logger {
  let at = ORDER[level];
  const emit = (name: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (ORDER[name] < at) return;
    let line = `${name.toUpperCase()} ${message}`;
    if (fields) for (const [key, value] of Object.entries(fields)) line += ` ${key}=${format(value)}`;
    sink(line);
  };
  return {
    setLevel: (next) => void (at = ORDER[next]),
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}

function format(value: unknown): string {
  if (typeof value === "string") return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  if (value instanceof Error) return JSON.stringify(value.message);
  return String(value);
}
