/**
 * ActorPool (Ray's ray.util.ActorPool): spreads work over a fixed set of actors, giving each new
 * item to an idle actor and handing results back in submission order (getNext, map) or as they
 * finish (getNextUnordered, mapUnordered).
 *
 * As in Ray, an actor is busy until its item's result exists, and then takes the oldest item
 * waiting for an actor; work is sent when it is submitted (map included), not when its result is
 * read. Unlike Ray before its issue #23107, a map() or mapUnordered() hands out the results of its
 * own items only: items submitted with submit() stay for getNext(), and other maps' for theirs.
 */
import { get, wait } from '../api/index.js';
import { TIMEOUT_RULE } from '../api/options.js';
import { actorIdOf, type ActorHandle } from '../actors/handle.js';
import { validateOptions } from '../config/index.js';
import { startTimeout } from '../core-worker/index.js';
import { GetTimeoutError, InvalidArgumentError, MinirayError, describeValue } from '../errors/index.js';
import { ObjectRef } from '../object-ref/index.js';

/** Submits one item to one actor: typically `(actor, value) => actor.method.remote(value)`. */
export type PoolSubmit<T, V, R> = (actor: ActorHandle<T>, value: V) => ObjectRef<R>;

/** One submitted item, from submission until its result is handed out. */
interface Item<T, R> {
  readonly run: (actor: ActorHandle<T>) => unknown;
  /** Set when the item starts on an actor (it waits for an idle one until then). */
  ref: ObjectRef<R> | undefined;
  /** Thrown by the submit function, or what it returned instead of a ref: the item's result. */
  error: unknown;
  actor: ActorHandle<T> | undefined;
  /** The actor was given back (once its result existed, or once it was handed out). */
  released: boolean;
  /** A getNext() waits for it: a second getNext() at the same time takes the item after it. */
  claimed: boolean;
  readonly started: Promise<void>;
  readonly markStarted: () => void;
}


export class ActorPool<T, R = unknown> {
  private readonly idle: ActorHandle<T>[];
  /** Actors of the pool, idle or busy, by actor ID (handles of one actor are different objects). */
  private readonly members = new Set<string>();
  /** Items waiting for an idle actor, in submission order (whatever submitted them). */
  private readonly backlog: Item<T, R>[] = [];
  /** submit()'s items not yet handed out, in submission order. */
  private readonly submitted: Item<T, R>[] = [];

  constructor(actors: readonly ActorHandle<T>[]) {
    if (!Array.isArray(actors) || actors.length === 0) {
      throw new InvalidArgumentError('ActorPool needs a non-empty array of actor handles: new ActorPool([a1, a2])', 'actors');
    }
    for (const actor of actors) {
      const key = keyOf(actor, 'new ActorPool()');
      if (this.members.has(key)) {
        throw new InvalidArgumentError(`new ActorPool(): actor ${key} is given twice; give each actor once`, 'actors');
      }
      this.members.add(key);
    }
    this.idle = [...actors];
  }

  /** Schedules `fn(actor, value)` on the next idle actor (or as soon as one is idle). */
  submit<V>(fn: PoolSubmit<T, V, R>, value: V): void {
    this.submitted.push(this.schedule(checkFn(fn, 'submit'), value));
  }

  /** True while some result of submit() has not been handed out yet. */
  hasNext(): boolean {
    return this.submitted.length > 0;
  }

  /**
   * The next result of submit() in submission order. Rejects with the task's error if it failed,
   * and with GetTimeoutError after `timeoutMs`: the item stays next, or, with ignoreIfTimedout, is
   * dropped (its result is never handed out; its actor is busy until it finishes, then free again).
   */
  async getNext(options?: ActorPoolGetOptions): Promise<R> {
    const { timeoutMs, ignoreIfTimedout } = checkGetOptions('getNext', options);
    const item = this.submitted.find((i) => !i.claimed);
    if (item === undefined) {
      throw new MinirayError(`ActorPool.getNext(): no pending results${this.submitted.length > 0 ? ' that another getNext() does not wait for' : ''}; submit() first`);
    }
    item.claimed = true;
    try {
      return await this.nextOf(item, timeoutMs, ignoreIfTimedout);
    } finally {
      item.claimed = false;
    }
  }

  private async nextOf(item: Item<T, R>, timeoutMs: number | undefined, ignoreIfTimedout: boolean): Promise<R> {
    const deadline = timeoutMs === undefined ? undefined : performance.now() + timeoutMs;
    if (!(await this.startedBy(item, deadline))) {
      throw this.timedOut(item, ignoreIfTimedout, `ActorPool.getNext(): no result within ${timeoutMs} ms (the item is still waiting for an idle actor)`);
    }
    try {
      const value = await this.resultOf(item, deadline);
      this.handOut(item);
      return value;
    } catch (error) {
      // A failed result is handed out as its error, once; a timeout leaves it pending, to try again.
      if (!(error instanceof GetTimeoutError)) this.handOut(item);
      // The timeout asked for, not what was left of it for the get() (49.86... ms of 50).
      else throw this.timedOut(item, ignoreIfTimedout, `ActorPool.getNext(): no result within ${timeoutMs} ms`);
      throw error;
    }
  }

  /**
   * Whichever result of submit() finishes first. After `timeoutMs` rejects with GetTimeoutError;
   * with ignoreIfTimedout the oldest pending item is dropped (as Ray's), its actor freed once it finishes.
   */
  async getNextUnordered(options?: ActorPoolGetOptions): Promise<R> {
    if (this.submitted.length === 0) throw new MinirayError('ActorPool.getNextUnordered(): no pending results; submit() first');
    const { timeoutMs, ignoreIfTimedout } = checkGetOptions('getNextUnordered', options);
    const deadline = timeoutMs === undefined ? undefined : performance.now() + timeoutMs;
    const item = await this.firstDone(this.submitted, deadline);
    if (item === undefined) {
      throw this.timedOut(this.submitted[0] as Item<T, R>, ignoreIfTimedout, `ActorPool.getNextUnordered(): no result within ${timeoutMs} ms`);
    }
    this.handOut(item);
    return this.resultOf(item, undefined);
  }

  /** The timeout error of a get; with `ignore`, the item leaves the results (not its actor: that waits for it). */
  private timedOut(item: Item<T, R> | undefined, ignore: boolean, message: string): GetTimeoutError {
    if (!ignore || item === undefined) return new GetTimeoutError(message);
    const index = this.submitted.indexOf(item);
    if (index >= 0) this.submitted.splice(index, 1);
    return new GetTimeoutError(`${message}; the item was dropped (ignoreIfTimedout), and the next get moves past it`);
  }

  /**
   * Runs `fn` over `values`, yielding results in input order. Every item is submitted now; the
   * iterator hands out these items' results only. As Ray's map (a generator over get_next), the
   * first failed item rejects the iteration with its error and ends it: the items after it still
   * run (their actors come back to the pool as they finish), their results are not handed out.
   * To go on past failures, use submit() and getNext(), which hand out each error once.
   */
  map<V>(fn: PoolSubmit<T, V, R>, values: Iterable<V>): AsyncGenerator<R> {
    const items = this.scheduleAll(checkFn(fn, 'map'), values, 'map');
    return this.inOrder(items);
  }

  /** Runs `fn` over `values`, yielding results as they finish. Every item is submitted now; the first failure ends it, as map()'s. */
  mapUnordered<V>(fn: PoolSubmit<T, V, R>, values: Iterable<V>): AsyncGenerator<R> {
    const items = this.scheduleAll(checkFn(fn, 'mapUnordered'), values, 'mapUnordered');
    return this.asDone(items);
  }

  /** True when an actor is idle. */
  hasFree(): boolean {
    return this.idle.length > 0;
  }

  /** Takes an idle actor out of the pool (undefined if none). */
  popIdle(): ActorHandle<T> | undefined {
    const actor = this.idle.shift();
    if (actor !== undefined) this.members.delete(keyOf(actor, 'ActorPool.popIdle()'));
    return actor;
  }

  /** Adds an actor to the pool; it starts the oldest waiting item, if any. */
  pushIdle(actor: ActorHandle<T>): void {
    const key = keyOf(actor, 'ActorPool.pushIdle()');
    if (this.members.has(key)) {
      const busy = !this.idle.some((a) => keyOf(a, 'ActorPool.pushIdle()') === key);
      throw new InvalidArgumentError(
        busy
          ? `ActorPool.pushIdle(): actor ${key} is busy with an item of this pool; it becomes idle again by itself when the item is done`
          : `ActorPool.pushIdle(): actor ${key} is already idle in this pool; push an actor only after popIdle() took it out`,
        'actor',
      );
    }
    this.members.add(key);
    this.giveWork(actor);
  }

  // ---- internals -------------------------------------------------------------------------------

  private scheduleAll<V>(fn: PoolSubmit<T, V, R>, values: Iterable<V>, where: string): Item<T, R>[] {
    if (values === null || typeof (values as { [Symbol.iterator]?: unknown })?.[Symbol.iterator] !== 'function') {
      throw new InvalidArgumentError(`ActorPool.${where}(): values must be an iterable (an array, a Set, ...)`, 'values');
    }
    return Array.from(values, (value) => this.schedule(fn, value));
  }

  private schedule<V>(fn: PoolSubmit<T, V, R>, value: V): Item<T, R> {
    let markStarted!: () => void;
    const started = new Promise<void>((resolve) => {
      markStarted = resolve;
    });
    const item: Item<T, R> = {
      run: (actor) => fn(actor, value),
      ref: undefined,
      error: undefined,
      actor: undefined,
      released: false,
      claimed: false,
      started,
      markStarted,
    };
    const actor = this.idle.shift();
    if (actor === undefined) this.backlog.push(item);
    else if (!this.start(item, actor)) this.giveWork(actor);
    return item;
  }

  /** Starts the item on the actor; false if it failed at once (the actor is free again). */
  private start(item: Item<T, R>, actor: ActorHandle<T>): boolean {
    item.actor = actor;
    let ref: unknown;
    try {
      ref = item.run(actor);
    } catch (error) {
      ref = undefined;
      item.error = error;
    }
    if (ref instanceof ObjectRef) {
      item.ref = ref as ObjectRef<R>;
      item.markStarted();
      // Busy until the result exists, whether or not anyone reads it yet (as in Ray); existing
      // anywhere is enough (fetchLocal: false): no copy is pulled to learn that.
      wait([item.ref], { numReturns: 1, fetchLocal: false }).then(
        () => this.release(item),
        () => this.release(item),
      );
      return true;
    }
    if (item.error === undefined) {
      item.error = new InvalidArgumentError(
        `ActorPool: the submit function must return the ObjectRef of a call on the actor it is given, ` +
          `e.g. (actor, value) => actor.method.remote(value); it returned ${ref === null ? 'null' : typeof ref}`,
        'fn',
      );
    }
    item.markStarted();
    item.released = true;
    return false;
  }

  /** The item's actor takes the next waiting item, or goes idle. */
  private release(item: Item<T, R>): void {
    const actor = item.actor;
    if (item.released || actor === undefined) return;
    item.released = true;
    this.giveWork(actor);
  }

  /** A loop, not a recursion: a long backlog of items whose submit throws must not overflow the stack. */
  private giveWork(actor: ActorHandle<T>): void {
    for (;;) {
      const next = this.backlog.shift();
      if (next === undefined) {
        this.idle.push(actor);
        return;
      }
      if (this.start(next, actor)) return;
    }
  }

  /** Its result exists (a value or an error): its actor is free, if that was not seen yet. */
  private handOut(item: Item<T, R>): void {
    const index = this.submitted.indexOf(item);
    if (index >= 0) this.submitted.splice(index, 1);
    this.release(item);
  }

  /** Waits for the item to start on an actor; false if the deadline passed first. */
  private async startedBy(item: Item<T, R>, deadline: number | undefined): Promise<boolean> {
    if (item.ref !== undefined || item.error !== undefined) return true;
    if (this.members.size === 0) {
      throw new MinirayError('ActorPool: no actor is left to run the waiting items (all were taken with popIdle()); pushIdle() one back');
    }
    if (deadline === undefined) {
      await item.started;
      return true;
    }
    const timer = timeoutAt(deadline);
    try {
      return await Promise.race([item.started.then(() => true), timer.expired]);
    } finally {
      timer.cancel();
    }
  }

  private async resultOf(item: Item<T, R>, deadline: number | undefined): Promise<R> {
    if (item.error !== undefined) throw item.error;
    const ref = item.ref as ObjectRef<R>;
    if (deadline === undefined) return get(ref);
    return get(ref, { timeoutMs: Math.max(0, deadline - performance.now()) });
  }

  /** The first of `items` (those not handed out) whose result exists; undefined at the deadline. */
  private async firstDone(items: readonly Item<T, R>[], deadline: number | undefined): Promise<Item<T, R> | undefined> {
    for (;;) {
      const failed = items.find((i) => i.error !== undefined);
      if (failed !== undefined) return failed;
      const running = items.filter((i) => i.ref !== undefined);
      const waiting = items.find((i) => i.ref === undefined);
      if (running.length === 0) {
        // All wait for an actor, busy with other items: the first of them starts first.
        if (waiting === undefined || !(await this.startedBy(waiting, deadline))) return undefined;
        continue;
      }
      const timeoutMs = deadline === undefined ? undefined : Math.max(0, deadline - performance.now());
      // Also wake when a waiting item starts, so that it is waited on too.
      const ready = await Promise.race([
        wait(
          running.map((i) => i.ref as ObjectRef<R>),
          timeoutMs === undefined ? { numReturns: 1 } : { numReturns: 1, timeoutMs },
        ).then(({ ready }) => ready[0]),
        ...(waiting === undefined ? [] : [waiting.started.then(() => undefined)]),
      ]);
      const done = ready === undefined ? undefined : running.find((i) => i.ref === ready);
      if (done !== undefined) return done;
      if (deadline !== undefined && performance.now() >= deadline) return undefined;
    }
  }

  private async *inOrder(items: Item<T, R>[]): AsyncGenerator<R> {
    for (const item of items) {
      await this.startedBy(item, undefined);
      yield await this.resultOf(item, undefined);
    }
  }

  private async *asDone(items: Item<T, R>[]): AsyncGenerator<R> {
    let pending = items;
    while (pending.length > 0) {
      const done = (await this.firstDone(pending, undefined)) as Item<T, R>;
      pending = pending.filter((i) => i !== done);
      yield await this.resultOf(done, undefined);
    }
  }
}

/** `where`: the call, as the message names it ('new ActorPool()', 'ActorPool.pushIdle()'). */
function keyOf(actor: unknown, where: string): string {
  const actorId = actorIdOf(actor);
  if (actorId === undefined) {
    throw new InvalidArgumentError(`${where}: expected an actor handle (from remote(Class).remote()), got ${describeValue(actor)}`, 'actor');
  }
  return actorId;
}

function checkFn<F>(fn: F, where: string): F {
  if (typeof fn !== 'function') {
    throw new InvalidArgumentError(
      `ActorPool.${where}(): fn must be a function (actor, value) => actor.method.remote(value), got ${describeValue(fn)}`,
      'fn',
    );
  }
  return fn;
}

/** Options of getNext() and getNextUnordered(). */
export interface ActorPoolGetOptions {
  /** Reject with GetTimeoutError if no result is ready by then (any size; Infinity: no limit). Default: no limit. */
  timeoutMs?: number;
  /** On a timeout, drop the item that timed out (getNextUnordered: the oldest pending one), as Ray's ignore_if_timedout. Default: false. */
  ignoreIfTimedout?: boolean;
}

const GET_OPTION_RULES = {
  timeoutMs: TIMEOUT_RULE,
  ignoreIfTimedout: { type: 'boolean', doc: 'drop the item that timed out' },
} as const;

/** The timeout of a get, checked as get()'s is: undefined for none (Infinity: none). */
function checkGetOptions(where: string, options: ActorPoolGetOptions | undefined): { timeoutMs: number | undefined; ignoreIfTimedout: boolean } {
  const { timeoutMs, ignoreIfTimedout } = validateOptions(`ActorPool.${where}()`, GET_OPTION_RULES, options);
  return { timeoutMs: timeoutMs === Infinity ? undefined : timeoutMs, ignoreIfTimedout: ignoreIfTimedout ?? false };
}

/** `expired` resolves false at `deadline` (a performance.now() time), however far off. */
function timeoutAt(deadline: number): { expired: Promise<false>; cancel: () => void } {
  let cancel = (): void => {};
  const expired = new Promise<false>((resolve) => {
    cancel = startTimeout(() => resolve(false), Math.max(0, deadline - performance.now()));
  });
  return { expired, cancel };
}
