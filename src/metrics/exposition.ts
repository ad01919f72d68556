/**
 * Prometheus exposition, written by hand: the text format 0.0.4 that every scraper reads, and
 * OpenMetrics 1.0 when the scraper's `Accept` asks for `application/openmetrics-text`. The two
 * differ in small ways that matter to strict parsers: OpenMetrics names a counter's family
 * without its `_total` suffix (the samples keep it) and ends with `# EOF`.
 *
 * A family is written whole (HELP, TYPE, then every sample), each name once per scrape; label
 * values are escaped (backslash, double quote, newline). Values are finite numbers or `+Inf`.
 */

export type Labels = Readonly<Record<string, string>>;

export const TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
export const OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/** Whether an `Accept` header asks for OpenMetrics (any listed type of that name). */
export function wantsOpenMetrics(accept: string | null | undefined): boolean {
  return accept !== null && accept !== undefined && /application\/openmetrics-text/i.test(accept);
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function labelText(labels: Labels | undefined, extra?: string): string {
  const parts: string[] = [];
  if (labels) for (const key in labels) parts.push(`${key}="${escapeLabel(labels[key]!)}"`);
  if (extra !== undefined) parts.push(extra);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

/** A sample's value as the exposition writes it: `+Inf`, `-Inf`, `NaN`, else the number. */
export function numberText(value: number): string {
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  if (Number.isNaN(value)) return "NaN";
  return String(value);
}

/** One histogram's buckets (counts per bucket, not cumulative; the last is +Inf), sum and count. */
export interface HistogramSample {
  labels?: Labels;
  /** Upper bounds of the finite buckets, ascending, in the unit of the metric. */
  bounds: readonly number[];
  /** Observations per bucket: `bounds.length + 1` entries, the last one above every bound. */
  counts: ArrayLike<number>;
  sum: number;
}

/** Collects families and renders them in one of the two formats. */
export class MetricsWriter {
  readonly #openMetrics: boolean;
  readonly #lines: string[] = [];
  readonly #names = new Set<string>();

  constructor(openMetrics = false) {
    this.#openMetrics = openMetrics;
  }

  get contentType(): string {
    return this.#openMetrics ? OPENMETRICS_CONTENT_TYPE : TEXT_CONTENT_TYPE;
  }

  #header(family: string, type: string, help: string): void {
    if (this.#names.has(family)) throw new Error(`metric family ${family} written twice`);
    this.#names.add(family);
    this.#lines.push(`# HELP ${family} ${escapeHelp(help)}`, `# TYPE ${family} ${type}`);
  }

  /** A counter; `name` ends in `_total` (the family drops it in OpenMetrics). */
  counter(name: string, help: string, samples: readonly { labels?: Labels; value: number }[] | number): void {
    if (!name.endsWith("_total")) throw new Error(`counter ${name} must end in _total`);
    this.#header(this.#openMetrics ? name.slice(0, -"_total".length) : name, "counter", help);
    for (const s of typeof samples === "number" ? [{ value: samples }] : samples) this.#lines.push(`${name}${labelText(s.labels)} ${numberText(s.value)}`);
  }

  gauge(name: string, help: string, samples: readonly { labels?: Labels; value: number }[] | number): void {
    this.#header(name, "gauge", help);
    for (const s of typeof samples === "number" ? [{ value: samples }] : samples) this.#lines.push(`${name}${labelText(s.labels)} ${numberText(s.value)}`);
  }

  histogram(name: string, help: string, samples: readonly HistogramSample[]): void {
    this.#header(name, "histogram", help);
    for (const s of samples) {
      let cumulative = 0;
      for (let i = 0; i <= s.bounds.length; i++) {
        cumulative += s.counts[i]!;
        const le = i < s.bounds.length ? numberText(s.bounds[i]!) : "+Inf";
        this.#lines.push(`${name}_bucket${labelText(s.labels, `le="${le}"`)} ${cumulative}`);
      }
      this.#lines.push(`${name}_sum${labelText(s.labels)} ${numberText(s.sum)}`, `${name}_count${labelText(s.labels)} ${cumulative}`);
    }
  }

  /** The exposition text: newline-terminated lines, `# EOF` last in OpenMetrics. */
  text(): string {
    return `${this.#lines.join("\n")}\n${this.#openMetrics ? "# EOF\n" : ""}`;
  }
}
