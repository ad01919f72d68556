/**
 * A simulated DNS table on the virtual clock. Each hostname has an answer (addresses, or a
 * failure code such as ENOTFOUND / EAI_AGAIN) and a delay; answers can be scheduled to change at
 * a virtual time. The answer given is the one in force when the reply is produced (at the end of
 * the delay). IP literals resolve to themselves at once (a microtask later); unknown names fail
 * with ENOTFOUND after the default delay. An abort rejects at once with name "AbortError" and the
 * pending reply is cancelled (its timer never fires).
 */
import type { SimClock } from "./clock.ts";
import type { SimRandom } from "./random.ts";
import { ipLiteral } from "../shared/address.ts";
import { AbortError, LookupError } from "../shared/errors.ts";

/** What a name resolves to. */
export interface DnsAnswer {
  /** Addresses, IPv4 first as the Runtime contract wants (sorted that way on lookup). */
  addresses?: string[];
  /** When set, the lookup fails with a `LookupError` of this code (e.g. "ENOTFOUND", "EAI_AGAIN"). */
  fail?: string;
  /** Delay of this name's lookups in ms; "random" draws from `dnsDelayMeanMs`. Default: "random". */
  delayMs?: number | "random";
}

export interface DnsOptions {
  /** Mean of the exponential lookup delay for names without a fixed delay, ms. Default 1. */
  dnsDelayMeanMs?: number;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

export class SimDns {
  readonly #clock: SimClock;
  readonly #random: SimRandom;
  readonly #log: (event: string) => void;
  readonly #meanMs: number;
  /** Per name: answers in force from a virtual time on, sorted by time. */
  readonly #table = new Map<string, { from: number; answer: DnsAnswer }[]>();
  /** Lookups started, for assertions. */
  lookups = 0;

  constructor(clock: SimClock, random: SimRandom, options: DnsOptions = {}, log: (event: string) => void = () => {}) {
    this.#clock = clock;
    this.#random = random;
    this.#meanMs = options.dnsDelayMeanMs ?? 1;
    this.#log = log;
  }

  /** Set `hostname`'s answer from now on (an array is shorthand for `{ addresses }`). */
  set(hostname: string, answer: DnsAnswer | string[]): void {
    this.change(hostname, this.#clock.now(), answer);
  }

  /** Make `hostname` answer `answer` from virtual time `atMs` on (answers that change over time). */
  change(hostname: string, atMs: number, answer: DnsAnswer | string[]): void {
    const entry = { from: atMs, answer: Array.isArray(answer) ? { addresses: answer } : answer };
    const list = (this.#table.get(hostname.toLowerCase()) ?? []).filter((e) => e.from !== atMs);
    list.push(entry);
    list.sort((a, b) => a.from - b.from);
    this.#table.set(hostname.toLowerCase(), list);
  }

  /** Forget `hostname`: it fails with ENOTFOUND. */
  remove(hostname: string): void {
    this.#table.delete(hostname.toLowerCase());
  }

  /** The answer in force at `atMs` (default now), or undefined. */
  answerAt(hostname: string, atMs = this.#clock.now()): DnsAnswer | undefined {
    let found: DnsAnswer | undefined;
    for (const e of this.#table.get(hostname.toLowerCase()) ?? []) if (e.from <= atMs) found = e.answer;
    return found;
  }

  lookup(hostname: string, signal: AbortSignal): Promise<string[]> {
    if (signal.aborted) return Promise.reject(new AbortError(`lookup of '${hostname}'`, signal.reason));
    const literal = ipLiteral(hostname);
    if (literal) return Promise.resolve([literal]);
    this.lookups++;
    const configured = this.answerAt(hostname)?.delayMs ?? "random";
    const delay = configured === "random" ? Math.round(this.#random.exponential(this.#meanMs) * 1000) / 1000 : configured;
    return new Promise<string[]>((resolve, reject) => {
      const onAbort = () => {
        timer.cancel();
        this.#log(`lookup ${hostname} aborted`);
        reject(new AbortError(`lookup of '${hostname}'`, signal.reason));
      };
      const timer = this.#clock.setTimer(delay, () => {
        signal.removeEventListener("abort", onAbort);
        const answer = this.answerAt(hostname);
        const v4 = answer?.addresses?.filter((a) => IPV4.test(a)) ?? [];
        const rest = answer?.addresses?.filter((a) => !IPV4.test(a)) ?? [];
        const addresses = [...new Set([...v4, ...rest])];
        const code = answer?.fail ?? (addresses.length === 0 ? "ENOTFOUND" : undefined);
        if (code) {
          this.#log(`lookup ${hostname} ${code}`);
          reject(new LookupError(hostname, new Error(code), code));
        } else {
          this.#log(`lookup ${hostname} ${addresses.join(",")}`);
          resolve(addresses);
        }
      });
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }
}
