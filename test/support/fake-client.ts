/**
 * A stand-in for a client session in unit tests of fan-out and split commands: it keeps the
 * session's queue of pending replies, in order, and records what the command delivers into it.
 * Steps a split command asks to run later wait in `steps` until the test runs them (`runLater`),
 * so a test sees exactly what one turn of the event loop does.
 */
import type { SplitClient } from "../../src/proxy/multi/split.ts";
import type { Pending, UpstreamRequest } from "../../src/backend/request.ts";

const dec = new TextDecoder();

export class FakeClient implements SplitClient {
  readonly queue: Pending[] = [];
  /** Parts a split command sends per step. */
  splitChunkParts = 1024;
  /** Steps queued by `later`, not run yet. */
  readonly steps: (() => void)[] = [];
  /** Bytes of part replies split commands say they hold for this client. */
  held = 0;
  constructor(
    public protocol: 2 | 3 = 2,
    readonly id = 7,
  ) {}
  expect(pending: Pending): void {
    this.queue.push(pending);
  }
  reply(frame: Uint8Array): void {
    this.queue.push({ reply: frame });
  }
  deliver(request: UpstreamRequest, reply: Uint8Array): void {
    request.reply = reply;
  }
  complete(): void {}
  later(step: () => void): void {
    this.steps.push(step);
  }
  holding(bytes: number): void {
    this.held += bytes;
  }
  /** Run one turn: the steps queued so far (steps they queue wait for the next turn). Returns how many ran. */
  runTurn(): number {
    const steps = this.steps.splice(0);
    for (const step of steps) step();
    return steps.length;
  }
  /** Faults reported by the code under test (an invariant it broke). */
  readonly faults: Error[] = [];
  fault(error: Error): void {
    this.faults.push(error);
  }
  deliveryFailed(_request: UpstreamRequest, error: unknown): void {
    this.faults.push(error instanceof Error ? error : new Error(String(error)));
  }
  /** The replies queued so far, as text (null while one is still pending). */
  get replies(): (string | null)[] {
    return this.queue.map((p) => (p.reply === null ? null : dec.decode(p.reply)));
  }
}
