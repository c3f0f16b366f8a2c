/**
 * ActorPool (Ray's ray.util.ActorPool): spreads work over a fixed set of actors, giving each new
 * item to an idle actor and handing results back in submission order (getNext, map) or as they
 * finish (getNextUnordered, mapUnordered).
 */
import { get, wait } from '../api/index.js';
import { GetTimeoutError, MinirayError } from '../errors/index.js';
import type { ObjectRef } from '../object-ref/index.js';
import type { ActorHandle } from '../actors/handle.js';

/** Submits one item to one actor: typically `(actor, value) => actor.method.remote(value)`. */
export type PoolSubmit<T, V, R> = (actor: ActorHandle<T>, value: V) => ObjectRef<R>;

interface Pending<T, R> {
  readonly index: number;
  readonly ref: ObjectRef<R>;
  readonly actor: ActorHandle<T>;
}

export class ActorPool<T, R = unknown> {
  private readonly idle: ActorHandle<T>[];
  /** Started and not yet handed out, by start index (indexes follow start order). */
  private readonly inFlight = new Map<number, Pending<T, R>>();
  /** Submissions waiting for an idle actor, in order. */
  private readonly backlog: Array<(actor: ActorHandle<T>) => void> = [];
  private nextIndex = 0;
  private nextReturnIndex = 0;

  constructor(actors: readonly ActorHandle<T>[]) {
    if (actors.length === 0) throw new MinirayError('ActorPool needs at least one actor handle');
    this.idle = [...actors];
  }

  /** Schedules `fn(actor, value)` on the next idle actor (or as soon as one is idle). */
  submit<V>(fn: PoolSubmit<T, V, R>, value: V): void {
    const start = (actor: ActorHandle<T>) => {
      const index = this.nextIndex++;
      this.inFlight.set(index, { index, ref: fn(actor, value), actor });
    };
    const actor = this.idle.shift();
    if (actor !== undefined) start(actor);
    else this.backlog.push(start);
  }

  /** True while some submitted result has not been handed out yet. */
  hasNext(): boolean {
    return this.inFlight.size > 0 || this.backlog.length > 0;
  }

  /** The next result in submission order. Rejects with the task's error if it failed. */
  async getNext(options?: { timeoutMs?: number }): Promise<R> {
    if (!this.hasNext()) throw new MinirayError('ActorPool.getNext(): no pending results; submit() first');
    if (this.inFlight.size === 0) throw new MinirayError('ActorPool.getNext(): no actor is left to run the waiting submissions (all were taken with popIdle())');
    // Results already handed out by getNextUnordered are skipped.
    while (!this.inFlight.has(this.nextReturnIndex)) this.nextReturnIndex++;
    const pending = this.inFlight.get(this.nextReturnIndex) as Pending<T, R>;
    try {
      const value = await get(pending.ref, options);
      this.handOut(pending);
      return value;
    } catch (error) {
      // A failed result is handed out as its error, once; a timeout leaves it pending, to try again.
      if (!(error instanceof GetTimeoutError)) this.handOut(pending);
      throw error;
    }
  }

  /** Whichever pending result finishes first. */
  async getNextUnordered(options?: { timeoutMs?: number }): Promise<R> {
    if (!this.hasNext()) throw new MinirayError('ActorPool.getNextUnordered(): no pending results; submit() first');
    const pending = [...this.inFlight.values()];
    const { ready } = await wait(
      pending.map((p) => p.ref),
      options?.timeoutMs === undefined ? { numReturns: 1 } : { numReturns: 1, timeoutMs: options.timeoutMs },
    );
    const done = pending.find((p) => p.ref === ready[0]);
    if (done === undefined) throw new GetTimeoutError(`ActorPool.getNextUnordered(): no result within ${options?.timeoutMs} ms`);
    this.handOut(done);
    return get(done.ref);
  }

  /** Runs `fn` over `values`, yielding results in input order. */
  async *map<V>(fn: PoolSubmit<T, V, R>, values: Iterable<V>): AsyncGenerator<R> {
    for (const value of values) this.submit(fn, value);
    while (this.hasNext()) yield await this.getNext();
  }

  /** Runs `fn` over `values`, yielding results as they finish. */
  async *mapUnordered<V>(fn: PoolSubmit<T, V, R>, values: Iterable<V>): AsyncGenerator<R> {
    for (const value of values) this.submit(fn, value);
    while (this.hasNext()) yield await this.getNextUnordered();
  }

  /** True when an actor is idle. */
  hasFree(): boolean {
    return this.idle.length > 0;
  }

  /** Takes an idle actor out of the pool (undefined if none). */
  popIdle(): ActorHandle<T> | undefined {
    return this.idle.shift();
  }

  /** Adds an actor to the pool; it starts the oldest waiting submission, if any. */
  pushIdle(actor: ActorHandle<T>): void {
    const start = this.backlog.shift();
    if (start !== undefined) start(actor);
    else this.idle.push(actor);
  }

  /** A result was handed out (value or error): its actor takes the next waiting submission or goes idle. */
  private handOut(pending: Pending<T, R>): void {
    if (pending.index === this.nextReturnIndex) this.nextReturnIndex++;
    if (this.inFlight.delete(pending.index)) this.pushIdle(pending.actor);
  }
}
