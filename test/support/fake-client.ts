/**
 * A stand-in for a client session in unit tests of fan-out commands: it keeps the session's queue
 * of pending replies, in order, and records what the fan-out delivers into it.
 */
import type { FanOutClient } from "../../src/proxy/multi/fanout.ts";
import type { Pending, UpstreamRequest } from "../../src/backend/request.ts";

const dec = new TextDecoder();

export class FakeClient implements FanOutClient {
  readonly queue: Pending[] = [];
  constructor(
    readonly protocol: 2 | 3 = 2,
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
