/**
 * The asking side of the request layer over a channel (a worker asking its node): one table of the
 * requests it is waiting on, by id. The node answers request `id` with `reply` messages (a stream,
 * e.g. a get's objects as each comes) and ends it with one `response` (its last value, or an error
 * record); a `cancelRequest` of the id ends it early. See RequestAnswer in src/protocol.
 *
 *   asker                                   node
 *     open(): id, entry  --- request id ---->  handler runs
 *     answer(v, false)  <--- reply id -------  (zero or more)
 *     answer(v, true)   <--- response id ----  the last; the entry goes
 *
 *     cancel(id) / timeout --- cancelRequest id -->  withdraws the handler
 *     dropped(v)        <--- reply id -------  answers already on their way
 *     (entry goes)      <--- response id ----  RequestCancelledError (or its real last answer)
 *
 * An entry stays until its response, even once cancelled, so that every answer belongs to an entry:
 * one for an id that has none (never asked, or ended) is a protocol error, reported once.
 *
 * Why not src/net's Connection and Router: that layer answers each request with exactly one
 * response (a get here streams one answer per object), allocates a Promise per call and an
 * AbortController per served request, nests the body in its envelope (one more object per message)
 * and carries the handshake and `bye` of a TCP connection. A worker asks for objects per fetched
 * ref; here a request costs its pending entry (which the caller allocates: PendingRequest) and
 * nothing else, and a timer only when a timeout was asked for.
 */
import { ConnectionError, MinirayError, ProtocolError, RequestTimeoutError, fromErrorRecord } from '../errors/index.js';
import { validate } from '../protocol/check.js';
import type { RequestAnswer } from '../protocol/index.js';

/**
 * One request waiting for its answers; the caller's own subclass is the table's entry (no second
 * object per request). The table sets the fields below.
 */
export abstract class PendingRequest<V> {
  /** @internal */ id = 0;
  /** @internal */ method = '';
  /** @internal Set when a timeout was asked for. */ timer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** @internal The caller stopped waiting; answers still coming go to dropped(). */ cancelled = false;

  /** Each answer, in order; `done` on the last one. */
  abstract answer(value: V, done: boolean): void;
  /** The request failed (an error response, its timeout, the channel closed): nothing more comes. */
  abstract fail(error: MinirayError): void;
  /** An answer that arrived after the caller stopped waiting: let go of what it holds (a lease). */
  dropped(_value: V): void {}
}

export interface RequestTableOptions<Answers> {
  /** Sends `cancelRequest` of `id` to the answering side. */
  readonly sendCancel: (id: number) => void;
  /** The validator of each method's answers (e.g. WORKER_ANSWER_CHECKS). */
  readonly checks: { readonly [M in keyof Answers]: (value: unknown) => Answers[M] };
  /** Told of the first protocol error of the other side (later ones are counted, not reported). */
  readonly report: (error: ProtocolError) => void;
  /** How the answering side is named in errors ("the node"). */
  readonly peer: string;
}

export class RequestTable<Answers extends { readonly [method: string]: unknown }> {
  private nextId = 1;
  private readonly pending = new Map<number, PendingRequest<never>>();
  private closedReason: string | undefined;
  /** Protocol errors of the other side seen so far (only the first is reported). */
  problems = 0;

  constructor(private readonly options: RequestTableOptions<Answers>) {}

  /** Requests waiting for an answer (cancelled ones included, until their response). */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Registers a request and returns its id, for the caller to send. `timeoutMs`: fail it with a
   * RequestTimeoutError (and cancel it) when its last answer has not come by then; one longer than
   * a timer can hold (about 24.8 days) is no limit. `hint` ends that error's message: what was
   * asked, and what to do. On a closed table, `request` fails at once with a ConnectionError (the
   * id is then never answered).
   */
  open<M extends keyof Answers & string>(method: M, request: PendingRequest<Answers[M]>, timeoutMs?: number, hint?: string): number {
    const id = this.nextId++;
    if (this.closedReason !== undefined) {
      request.fail(this.closedError(method));
      return id;
    }
    request.id = id;
    request.method = method;
    this.pending.set(id, request as PendingRequest<never>);
    // setTimeout would fire a longer one at once (Node clamps it to 1 ms).
    if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS) {
      request.timer = setTimeout(() => {
        request.timer = undefined;
        if (request.cancelled || this.pending.get(id) !== request) return;
        this.cancel(id);
        request.fail(new RequestTimeoutError(`'${method}' to ${this.options.peer} got no answer within ${timeoutMs} ms; it was cancelled${hint === undefined ? '' : `. ${hint}`}`));
      }, timeoutMs);
    }
    return id;
  }

  /**
   * The caller stops waiting for request `id`: the other side is told, and what it still sends is
   * dropped. A no-op for an id that has ended (a get's caller withdraws after its last object too).
   */
  cancel(id: number): void {
    const request = this.pending.get(id);
    if (request === undefined || request.cancelled) return;
    request.cancelled = true;
    if (request.timer !== undefined) clearTimeout(request.timer);
    request.timer = undefined;
    this.options.sendCancel(id);
  }

  /** Hands an answer to its request (a `reply` or `response` message, envelope already checked). */
  receive(message: RequestAnswer): void {
    if (this.closedReason !== undefined) return;
    const { id } = message;
    const request = this.pending.get(id);
    if (request === undefined) {
      const which = id >= this.nextId ? 'which was never sent' : 'which has ended';
      return this.problem(new ProtocolError(`${this.options.peer} sent a ${message.type} to request ${id}, ${which}; it is ignored`, 'id'));
    }
    const done = message.type === 'response';
    if (done) {
      this.pending.delete(id);
      if (request.timer !== undefined) clearTimeout(request.timer);
    }
    if (message.type === 'response' && !message.ok) {
      if (!request.cancelled) request.fail(asMinirayError(fromErrorRecord(message.error)));
      return;
    }
    const value = validate(`an answer to '${request.method}' from ${this.options.peer}`, message.value, this.options.checks[request.method] as (value: unknown) => never);
    if (value instanceof ProtocolError) {
      this.problem(value);
      // Nothing more of it can be trusted: it ends here, with the error.
      if (!done) this.pending.delete(id);
      if (request.timer !== undefined) clearTimeout(request.timer);
      if (!request.cancelled) request.fail(value);
      return;
    }
    if (request.cancelled) request.dropped(value);
    else request.answer(value, done);
  }

  /**
   * The channel closed: every request still waiting fails with a ConnectionError naming `reason`,
   * and later ones fail as they are opened.
   */
  close(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const request of waiting) {
      if (request.timer !== undefined) clearTimeout(request.timer);
      if (!request.cancelled) request.fail(this.closedError(request.method));
    }
  }

  private closedError(method: string): ConnectionError {
    return new ConnectionError(`'${method}' to ${this.options.peer} failed: the channel closed (${this.closedReason}); nothing more can be asked of it`);
  }

  private problem(error: ProtocolError): void {
    if (this.problems++ === 0) this.options.report(error);
  }
}

/** The longest delay setTimeout keeps (2^31 - 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** An error response's error, as the MinirayError the caller's fail() takes. */
function asMinirayError(error: Error): MinirayError {
  if (error instanceof MinirayError) return error;
  return new MinirayError(`the request failed on the other side: ${error.message}`, { cause: error });
}

