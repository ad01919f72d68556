/**
 * The closing half of a backend's lifecycle: why it refuses work once it began closing. The
 * reason is set once, by the first `close` or `destroy` (a later one keeps it), and is what
 * requests still pending at teardown are answered with.
 */
import { Unavailable } from "./contract.ts";

export class Closing {
  #reason: string | null = null;
  #refusal: Unavailable;

  constructor(name: string) {
    this.#refusal = new Unavailable("closing", `cluster '${name}' is closing`);
  }

  /** Set by `close`/`destroy`; null while the backend is open (its nodes then word their own). */
  get reason(): string | null {
    return this.#reason;
  }

  /** What work offered after close began gets. */
  get refusal(): Unavailable {
    return this.#refusal;
  }

  begin(reason: string): void {
    if (this.#reason !== null) return;
    this.#reason = reason;
    this.#refusal = new Unavailable("closing", reason);
  }
}
