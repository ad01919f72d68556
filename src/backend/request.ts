/**
 * The record that carries one command upstream and its reply back. One is allocated per command
 * sent to a node (a split command allocates one per part); it holds no closures, so the forward
 * path costs one small object per request.
 */

/** An entry in a client's reply queue: filled in when its reply is known, sent in request order. */
export interface Pending {
  reply: Uint8Array | null;
}

/** Whoever waits for a request's reply: a client session, or the merger of a split command. */
export interface ReplySink {
  /** Called exactly once per request with the reply's raw RESP bytes (or a proxy error reply). */
  deliver(request: UpstreamRequest, reply: Uint8Array): void;
  /**
   * Delivering `request`'s reply threw: a fault of the client that waits for it, which is closed
   * (and the fault logged) without the exception reaching whoever delivered.
   */
  deliveryFailed(request: UpstreamRequest, error: unknown): void;
}

/** A sink for requests whose replies nobody reads (ASKING's +OK, a replayed command). */
export const NO_READER: ReplySink = {
  deliver() {},
  deliveryFailed() {},
};

/**
 * Deliver `reply` to `request`'s sink from a place the client does not own (a shared upstream
 * connection, a timer, a teardown): an exception is the sink's fault and goes to it, never to the
 * caller, so one client's bug cannot fail anyone else's requests.
 */
export function deliverIsolated(request: UpstreamRequest, reply: Uint8Array): void {
  try {
    request.sink.deliver(request, reply);
  } catch (error) {
    faultIsolated(request, error);
  }
}

/** Report `error` to `request`'s sink; an exception from that report is dropped, never rethrown. */
export function faultIsolated(request: UpstreamRequest, error: unknown): void {
  try {
    request.sink.deliveryFailed(request, error);
  } catch {
    // The sink's own fault handler failed: nothing sane is left to tell; the caller carries on.
  }
}

export class UpstreamRequest implements Pending {
  reply: Uint8Array | null = null;
  /** Redirects followed so far (bounded by `maxRedirects`). */
  redirects = 0;
  /** Send `ASKING` first (an ASK redirect is being followed). */
  asking = false;
  /** Monotonic time after which the request is failed with a timeout, in milliseconds. */
  deadline = 0;
  /** Travel on a RESP3 connection (the client said `HELLO 3`). */
  resp3 = false;
  /** A read-only command: a replica may serve it when the cluster's `readFrom` allows. */
  readOnly = false;
  /** A blocking command: Redis's own timeout applies, never `opTimeoutMs`. */
  blocking = false;
  /** `host:port` of the node it was last sent to (the slow log names it); null until sent. */
  node: string | null = null;

  constructor(
    /** The command's exact RESP bytes, forwarded as they are. */
    readonly frame: Uint8Array,
    /** Hash slot of the command's keys. */
    public slot: number,
    readonly sink: ReplySink,
    /** Keeps one client's requests to a node on one connection, so they execute in order. */
    readonly affinity: number,
    /** Position within a split command. */
    readonly part = 0,
  ) {}
}
