/**
 * The answering side of the request layer between a node and its workers (the asking side is
 * transport/requests.ts): routes each `request` to its method's handler, sends its answers with
 * the request's id, and ends a request early on `cancelRequest`.
 *
 * A handler answers through reply() (`done` on its last answer) and may return a withdraw function
 * that stops it (a get's fetch); a request that is still open after its handler returned is kept,
 * by worker and id, until its last answer, a cancel, or its worker's exit.
 */
import { ProtocolError, RequestCancelledError, toErrorRecord, type ErrorRecord, type MinirayError } from '../errors/index.js';
import type { NodeToWorker, UnknownWorkerRequest, WorkerAnswers, WorkerMethod, WorkerRequest } from '../protocol/index.js';
import type { Channel } from '../transport/index.js';

/** What the router needs of a worker. */
export interface RequestingWorker {
  readonly alive: boolean;
  readonly channel: Channel<NodeToWorker, unknown>;
}

/** Stops an open request's handler: no answer of it is sent after this. */
export type Withdraw = () => void;

export type WorkerMethodHandlers<W> = {
  readonly [M in WorkerMethod]: (worker: W, request: WorkerRequest<M>) => Withdraw | undefined;
};

const NOTHING_TO_WITHDRAW: Withdraw = () => {};
const CANCELLED: ErrorRecord = toErrorRecord(new RequestCancelledError('the request was cancelled by the worker that sent it'));

export class WorkerRequests<W extends RequestingWorker> {
  /** Open requests of each worker that has some, by id. */
  private readonly open = new Map<W, Map<number, Withdraw>>();
  /** The request whose handler is running now: a last answer it sends at once leaves nothing open. */
  private starting: W | undefined;
  private startingId = 0;
  private startedDone = false;

  constructor(private readonly handlers: WorkerMethodHandlers<W>) {}

  /**
   * Runs a worker's request; returns what is wrong with it instead (a reused open id). A method
   * the node does not answer gets an error response naming it (see UnknownWorkerRequest).
   */
  receive(worker: W, request: WorkerRequest | UnknownWorkerRequest): string | undefined {
    const open = this.open.get(worker);
    if (open?.has(request.id) === true) return `reuses request ID ${request.id}, whose ${request.method} is still open`;
    if ('unknownMethod' in request) return this.refuse(worker, request);
    this.starting = worker;
    this.startingId = request.id;
    this.startedDone = false;
    let withdraw: Withdraw | undefined;
    try {
      withdraw = (this.handlers[request.method] as (worker: W, request: WorkerRequest) => Withdraw | undefined)(worker, request);
    } finally {
      this.starting = undefined;
    }
    if (this.startedDone) return undefined;
    // Kept until the worker exits, empty or not: made once per worker, not per request.
    if (open === undefined) this.open.set(worker, new Map<number, Withdraw>().set(request.id, withdraw ?? NOTHING_TO_WITHDRAW));
    else open.set(request.id, withdraw ?? NOTHING_TO_WITHDRAW);
    return undefined;
  }

  /**
   * Sends an answer to request `id` of `worker`; `done` on its last. Returns false, sending nothing,
   * when the request has ended (cancelled; its worker gone): the caller gives back what it holds.
   */
  reply<M extends WorkerMethod>(worker: W, id: number, value: WorkerAnswers[M], done: boolean): boolean {
    if (done && !this.end(worker, id)) return false;
    if (!worker.alive) return false;
    worker.channel.send(done ? { type: 'response', id, ok: true, value } : { type: 'reply', id, value });
    return true;
  }

  /**
   * Ends request `id` of `worker` with an error response (its handler could not answer, e.g. the
   * GCS was away). Returns false, sending nothing, when the request has ended.
   */
  fail(worker: W, id: number, error: MinirayError): boolean {
    if (!this.end(worker, id) || !worker.alive) return false;
    worker.channel.send({ type: 'response', id, ok: false, error: toErrorRecord(error) });
    return true;
  }

  /** `cancelRequest`: its handler is withdrawn and it ends with a RequestCancelledError; a no-op once it has ended. */
  cancel(worker: W, id: number): void {
    const open = this.open.get(worker);
    const withdraw = open?.get(id);
    if (withdraw === undefined) return; // answered already: its response is on its way
    (open as Map<number, Withdraw>).delete(id);
    withdraw();
    if (worker.alive) worker.channel.send({ type: 'response', id, ok: false, error: CANCELLED });
  }

  /** The worker is gone: its open requests are withdrawn. */
  dropWorker(worker: W): void {
    const open = this.open.get(worker);
    if (open === undefined) return;
    this.open.delete(worker);
    for (const withdraw of open.values()) withdraw();
  }

  private refuse(worker: W, request: UnknownWorkerRequest): undefined {
    const method = request.method.length <= 40 ? `'${request.method}'` : `a method of ${request.method.length} characters`;
    const error = new ProtocolError(
      `this node does not answer ${method} (it answers ${Object.keys(this.handlers).join(', ')}): ` +
        'the worker runtime and the node must come from the same miniray version',
      'method',
    );
    if (worker.alive) worker.channel.send({ type: 'response', id: request.id, ok: false, error: toErrorRecord(error) });
    return undefined;
  }

  /** Whether request `id` was open (it is not any more). */
  private end(worker: W, id: number): boolean {
    if (this.starting === worker && this.startingId === id) {
      if (this.startedDone) return false;
      this.startedDone = true;
      return true;
    }
    return this.open.get(worker)?.delete(id) === true;
  }
}
