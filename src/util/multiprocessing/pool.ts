/**
 * Pool (Ray's ray.util.multiprocessing.Pool): Python's multiprocessing.Pool API over actors. Each
 * "process" is an actor on a thread of its own, so state an initializer sets (globals, a client,
 * a cache) lives on in that process for every call it runs, as in a process pool.
 *
 * Work goes out in chunks (a list of calls, one actor call each), round-robin over the actors, as
 * Ray's Pool does: map() cuts its input into about four chunks per process; imap() keeps one chunk
 * per process in flight and gives each process its next chunk when it finishes one. A call that
 * throws fails its item only; the chunk's other items still return.
 *
 * The function travels as remote() ships one: a self-contained function as its source; a function
 * that uses names from its module as a remote function made at the top level of a module other
 * than the entry script (`export const f = remote(fn)`), which workers import.
 */
import { clusterResources, get, init, isInitialized, kill, remote, wait, type ActorClass, type ActorHandle, type RemoteFunction } from '../../api/index.js';
import { TIMEOUT_RULE } from '../../api/options.js';
import type { ActorOptions } from '../../api/options.js';
import { RemoteFunctionImpl } from '../../api/remote-function.js';
import { validateOptions, type OptionRules } from '../../config/index.js';
import { startTimeout } from '../../core-worker/index.js';
import {
  CapturedVariableError,
  GetTimeoutError,
  InvalidArgumentError,
  InvalidOptionError,
  MinirayError,
  TaskError,
  describeValue,
  errorRecordProblem,
  fromErrorRecord,
  type ErrorRecord,
} from '../../errors/index.js';
import type { ObjectRef } from '../../object-ref/index.js';
import { findFreeVariables } from '../../serialization/function-descriptor.js';

/** A call's outcome as the actor sends it back: its value, or its error as an ErrorRecord. */
type Outcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: ErrorRecord };

/**
 * The actor behind each process of a Pool. Shipped as source, so it uses nothing from this module:
 * it compiles the functions it is given itself, and turns errors into records by hand.
 */
class PoolActor {
  private readonly started: Promise<void>;
  private readonly resolved = new Map<string, Function>();

  constructor(initializer: unknown, initArgs: unknown[]) {
    // An async initializer finishes before the first call runs; its failure fails ping() (and so the pool's start).
    this.started = initializer == null ? Promise.resolve() : this.resolve(initializer).then((init) => init(...initArgs)).then(() => undefined);
    this.started.catch(() => {});
  }

  async ping(): Promise<void> {
    await this.started;
  }

  /** Runs `fn` on each argument list of `batch` in turn; each item's value or error comes back. */
  async runBatch(fn: unknown, batch: unknown[][]): Promise<unknown[]> {
    await this.started;
    const call = await this.resolve(fn);
    const outcomes: unknown[] = [];
    for (const args of batch) {
      try {
        outcomes.push({ ok: true, value: await call(...args) });
      } catch (error) {
        outcomes.push({ ok: false, error: this.record(error, 0) });
      }
    }
    return outcomes;
  }

  /** A function value arrives compiled; a remote function arrives as its descriptor. */
  private async resolve(fn: unknown): Promise<Function> {
    if (typeof fn === 'function') return fn;
    const descriptor = (fn as { descriptor?: Record<string, string> } | null)?.descriptor;
    if (descriptor === undefined) throw new TypeError('the pool was given something that is not a function');
    const known = this.resolved.get(descriptor['id'] as string);
    if (known !== undefined) return known;
    let found: unknown;
    if (descriptor['kind'] === 'source') {
      found = new Function(`"use strict"; return (${descriptor['source']});`)();
    } else {
      await import(descriptor['moduleUrl'] as string);
      const registry = (globalThis as Record<symbol, Map<string, Function> | undefined>)[Symbol.for('miniray.moduleFunctions')];
      found = registry?.get(`${descriptor['moduleUrl']}#${descriptor['callsite']}`);
      if (typeof found !== 'function') {
        throw new Error(`${descriptor['name']}: importing ${descriptor['moduleUrl']} did not create it; call remote() at the top level of that module`);
      }
    }
    this.resolved.set(descriptor['id'] as string, found as Function);
    return found as Function;
  }

  /** What miniray's toErrorRecord makes, by hand (this class may use nothing from outside). */
  private record(thrown: unknown, depth: number): Record<string, unknown> {
    const read = (get: () => unknown): unknown => {
      try {
        return get();
      } catch {
        return undefined;
      }
    };
    if (!(read(() => thrown instanceof Error) === true)) {
      return { name: 'Error', message: typeof thrown === 'string' ? thrown : `non-Error value thrown: ${String(read(() => JSON.stringify(thrown)) ?? read(() => String(thrown)))}` };
    }
    const error = thrown as Error;
    const record: Record<string, unknown> = { name: String(read(() => error.name) ?? 'Error'), message: String(read(() => error.message) ?? '') };
    const stack = read(() => error.stack);
    if (typeof stack === 'string') record['stack'] = stack;
    const props: Record<string, unknown> = {};
    const primitive = (v: unknown): boolean => v === null || ['string', 'number', 'boolean', 'bigint'].includes(typeof v);
    for (const key of (read(() => Object.keys(error)) as string[] | undefined) ?? []) {
      const value = read(() => (error as unknown as Record<string, unknown>)[key]);
      if (key === 'name' || key === 'message' || key === 'stack' || key === 'cause') continue;
      if (primitive(value) || (Array.isArray(value) && value.every(primitive))) props[key] = value;
    }
    if (Object.keys(props).length > 0) record['props'] = props;
    const cause = read(() => error.cause);
    if (cause !== undefined && depth < 8) record['cause'] = this.record(cause, depth + 1);
    return record;
  }
}

// Made on first use: importing miniray should not pay for reading a class's source.
let poolActorClass: ActorClass<typeof PoolActor> | undefined;
const PoolActorClass = (): ActorClass<typeof PoolActor> => (poolActorClass ??= remote(PoolActor));

/** What a Pool runs: a self-contained function, or a remote function made at a module's top level. */
export type PoolFunction<A extends unknown[], R> = ((...args: A) => R) | RemoteFunction<A, R>;

export interface PoolOptions {
  /** Processes (actors) in the pool, at most the cluster's CPUs. Default: the cluster's CPUs. */
  processes?: number;
  /** Runs once in each process before its first call, e.g. to set up state the calls use. May be async. */
  initializer?: PoolFunction<never[], unknown> | ((...args: never[]) => unknown);
  /** The initializer's arguments. Default: none. */
  initArgs?: readonly unknown[];
  /**
   * A process is replaced by a new one (its initializer run again) after this many chunks, as
   * Python's maxtasksperchild (each chunk is one task). Default: never.
   */
  maxTasksPerChild?: number;
  /**
   * Options of the pool's actors (Ray's ray_remote_args), e.g. { numCpus: 1 } or
   * { isolation: 'process' }. Default: numCpus 0, each on a thread of its own, one call at a time.
   */
  actorOptions?: ActorOptions;
}

export interface PoolMapOptions {
  /** Calls per chunk (one actor call runs a chunk). Default: about four chunks per process. */
  chunksize?: number;
}

export interface PoolIMapOptions {
  /** Calls per chunk. Default: 1. */
  chunksize?: number;
}

export interface PoolCallbacks<T> {
  /** Called once with the result, if no call failed. */
  callback?: (result: T) => void;
  /** Called once with the first error, if a call failed. */
  errorCallback?: (error: Error) => void;
}

const POOL_RULES = {
  processes: { type: 'integer', min: 1, doc: 'processes (actors) in the pool' },
  maxTasksPerChild: { type: 'integer', min: 1, doc: 'chunks a process runs before it is replaced' },
  initializer: { type: 'custom', doc: 'a function run once in each process', problem: (v) => (isPoolFunction(v) ? undefined : 'a function, or a remote function') },
  initArgs: { type: 'custom', doc: "the initializer's arguments", problem: (v) => (Array.isArray(v) ? undefined : 'an array of arguments') },
  actorOptions: { type: 'custom', doc: "options of the pool's actors", problem: (v) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? undefined : 'an object of actor options, e.g. { numCpus: 1 }') },
} as const satisfies OptionRules;
const MAP_RULES = { chunksize: { type: 'integer', min: 1, doc: 'calls per chunk' } } as const satisfies OptionRules;
const MAP_ASYNC_RULES = {
  chunksize: { type: 'integer', min: 1, doc: 'calls per chunk' },
  callback: { type: 'custom', doc: 'called with the results', problem: (v) => (typeof v === 'function' ? undefined : 'a function') },
  errorCallback: { type: 'custom', doc: 'called with the first error', problem: (v) => (typeof v === 'function' ? undefined : 'a function') },
} as const satisfies OptionRules;
const APPLY_ASYNC_RULES = { callback: MAP_ASYNC_RULES.callback, errorCallback: MAP_ASYNC_RULES.errorCallback } as const satisfies OptionRules;
const TIMEOUT_RULES = { timeoutMs: TIMEOUT_RULE } as const satisfies OptionRules;

function isPoolFunction(value: unknown): boolean {
  return typeof value === 'function' || value instanceof RemoteFunctionImpl;
}

/** One process of the pool and the calls it has not answered yet. */
interface Member {
  readonly actor: ActorHandle<PoolActor>;
  readonly pending: Set<Promise<unknown>>;
  /** Chunks given to it (for maxTasksPerChild). */
  tasks: number;
}

export class Pool {
  private readonly started: Promise<Member[]>;
  private members: Member[] | undefined;
  private closed = false;
  private terminated = false;
  private stopping: Promise<void> | undefined;
  private nextIndex = 0;
  private readonly initializer: unknown;
  private readonly initArgs: readonly unknown[];
  private readonly actorOptions: ActorOptions;
  private readonly actorClass: ActorClass<typeof PoolActor>;
  private readonly maxTasksPerChild: number | undefined;
  /** Processes replaced (maxTasksPerChild): each ends once its chunks are answered. */
  private readonly retired = new Map<Member, Promise<void>>();

  /**
   * Starts the pool's processes (and miniray, with `processes` CPUs, if it is not running, as Ray's
   * Pool does). Returns at once; `ready()` resolves once every process is up (its initializer run),
   * and rejects with InvalidOptionError when the cluster has fewer CPUs than `processes`. Every
   * method waits for it, and fails as it does.
   */
  constructor(options?: PoolOptions) {
    const valid = validateOptions('new Pool()', POOL_RULES, options);
    this.initializer = valid.initializer === undefined ? undefined : shippable(valid.initializer as PoolFunction<never[], unknown>, 'new Pool(): initializer');
    this.initArgs = (valid.initArgs as readonly unknown[] | undefined) ?? [];
    this.actorOptions = (valid.actorOptions as ActorOptions | undefined) ?? {};
    // Checked now (a bad option fails here, not later): ActorOptions' own rules.
    this.actorClass = PoolActorClass().options({ numCpus: 0, maxConcurrency: 1, ...this.actorOptions });
    this.maxTasksPerChild = valid.maxTasksPerChild;
    this.started = this.start(valid.processes);
    // Its failure is reported by ready() and every method; unobserved, it must not end the process.
    this.started.catch(() => {});
  }

  private async start(processes: number | undefined): Promise<Member[]> {
    if (!isInitialized()) await init({ ignoreReinitError: true, ...(processes === undefined ? {} : { numCpus: processes }) });
    const cpus = Math.floor((await clusterResources())['CPU'] ?? 0);
    const count = processes ?? cpus;
    if (count < 1) {
      throw new InvalidOptionError(`new Pool(): the cluster has no CPUs (${cpus}), so the pool would have no processes; give processes, or start miniray with numCpus >= 1`, 'processes');
    }
    if (count > cpus) {
      throw new InvalidOptionError(
        `new Pool(): processes is ${count}, but the cluster has only ${cpus} CPU${cpus === 1 ? '' : 's'}; ask for at most ${cpus} processes, or add CPUs (init({ numCpus }) or more nodes)`,
        'processes',
      );
    }
    if (this.terminated) throw closedError('new Pool()');
    const members = Array.from({ length: count }, () => this.newMember());
    this.members = members;
    try {
      await get(members.map((m) => m.actor.ping.remote()));
    } catch (error) {
      // ping() fails only with the initializer's error: say so, not "task PoolActor.ping failed".
      if (!(error instanceof TaskError) || this.initializer === undefined) throw error;
      const name = initializerName(this.initializer);
      const cause: unknown = error.cause;
      const what = cause instanceof Error ? `${cause.name}: ${cause.message}` : describeValue(cause);
      throw new TaskError(`new Pool(): the initializer ${name} threw in a process: ${what}; the pool did not start (fix the initializer or its initArgs)`, {
        functionName: name,
        taskId: error.taskId,
        cause,
      });
    }
    return members;
  }

  private newMember(): Member {
    return { actor: this.actorClass.remote(this.initializer, [...this.initArgs]), pending: new Set<Promise<unknown>>(), tasks: 0 };
  }

  /** Resolves once every process is up; rejects with why the pool could not start. */
  async ready(): Promise<void> {
    await this.started;
  }

  /** Runs `fn(...args)` on one of the processes; resolves to its result. */
  async apply<A extends unknown[], R>(fn: PoolFunction<A, R>, args?: A): Promise<Awaited<R>> {
    return this.applyAsync(fn, args).get();
  }

  /** Runs `fn(...args)` on one of the processes; returns at once with an AsyncResult of its result. */
  applyAsync<A extends unknown[], R>(fn: PoolFunction<A, R>, args?: A, options?: PoolCallbacks<Awaited<R>>): AsyncResult<Awaited<R>> {
    this.checkRunning('applyAsync');
    const valid = validateOptions('Pool.applyAsync()', APPLY_ASYNC_RULES, options);
    const shipped = shippable(fn, 'Pool.applyAsync()');
    if (args !== undefined && !Array.isArray(args)) {
      throw new InvalidArgumentError(`Pool.applyAsync(): args must be an array of arguments, e.g. [1, 2]; got ${describeValue(args)}`, 'args');
    }
    const list = [...(args ?? [])];
    const refs = this.started.then((members) => [this.run(members, this.nextActor(members), shipped, [list])]);
    return new AsyncResult<Awaited<R>>(refs, true, valid as PoolCallbacks<unknown>);
  }

  /** Runs `fn` on each item; resolves to the results in input order. Rejects with the first failed item's error. */
  async map<V, R>(fn: PoolFunction<[V], R>, iterable: Iterable<V>, options?: PoolMapOptions): Promise<Awaited<R>[]> {
    const valid = validateOptions('Pool.map()', MAP_RULES, options);
    return this.mapChunks('map', fn, iterable, false, valid.chunksize, {}).get();
  }

  /** map() that returns at once with an AsyncResult of the results. */
  mapAsync<V, R>(fn: PoolFunction<[V], R>, iterable: Iterable<V>, options?: PoolMapOptions & PoolCallbacks<Awaited<R>[]>): AsyncResult<Awaited<R>[]> {
    const valid = validateOptions('Pool.mapAsync()', MAP_ASYNC_RULES, options);
    return this.mapChunks('mapAsync', fn, iterable, false, valid.chunksize, valid as PoolCallbacks<unknown>);
  }

  /** map() for functions of several arguments: each item is an argument list, `fn(...item)`. */
  async starmap<A extends unknown[], R>(fn: PoolFunction<A, R>, iterable: Iterable<A>, options?: PoolMapOptions): Promise<Awaited<R>[]> {
    const valid = validateOptions('Pool.starmap()', MAP_RULES, options);
    return this.mapChunks('starmap', fn, iterable, true, valid.chunksize, {}).get();
  }

  /** starmap() that returns at once with an AsyncResult of the results. */
  starmapAsync<A extends unknown[], R>(fn: PoolFunction<A, R>, iterable: Iterable<A>, options?: PoolMapOptions & PoolCallbacks<Awaited<R>[]>): AsyncResult<Awaited<R>[]> {
    const valid = validateOptions('Pool.starmapAsync()', MAP_ASYNC_RULES, options);
    return this.mapChunks('starmapAsync', fn, iterable, true, valid.chunksize, valid as PoolCallbacks<unknown>);
  }

  /**
   * Results in input order, as an async iterator (`for await`, or `next({ timeoutMs })`). The
   * input is read lazily, one chunk per process in flight, so it may be long or endless. As in
   * Ray, a failed call's error is yielded in its place (an Error), and the iteration goes on.
   */
  imap<V, R>(fn: PoolFunction<[V], R>, iterable: Iterable<V>, options?: PoolIMapOptions): IMapIterator<Awaited<R>> {
    return this.imapOf('imap', fn, iterable, options, true);
  }

  /** imap() with results in the order they finish. */
  imapUnordered<V, R>(fn: PoolFunction<[V], R>, iterable: Iterable<V>, options?: PoolIMapOptions): IMapIterator<Awaited<R>> {
    return this.imapOf('imapUnordered', fn, iterable, options, false);
  }

  /** No more work may be submitted; the processes exit once the work already submitted is done. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopping = this.started.then(
      (members) => Promise.all([...members.map((m) => settledAll(m.pending).then(() => kill(m.actor))), ...this.retired.values()]).then(() => undefined),
      () => undefined,
    );
  }

  /** Stops the processes now: work not done fails (ActorDiedError). */
  terminate(): void {
    this.closed = true;
    this.terminated = true;
    for (const member of [...(this.members ?? []), ...this.retired.keys()]) kill(member.actor);
    this.stopping = this.started.then(
      (members) => {
        for (const member of members) kill(member.actor);
      },
      () => undefined,
    );
  }

  /** Waits for the processes of a closed (or terminated) pool to exit. */
  async join(): Promise<void> {
    if (!this.closed) throw new MinirayError('Pool.join(): the pool is still running; call close() (finish the work) or terminate() (stop it) first');
    await this.stopping;
  }

  // ---- internals -------------------------------------------------------------------------------

  private checkRunning(where: string): void {
    if (this.closed) throw closedError(`Pool.${where}()`);
  }

  private nextActor(members: readonly Member[]): number {
    const index = this.nextIndex % members.length;
    this.nextIndex = index + 1;
    return index;
  }

  /** Submits one chunk to a process; its pending set holds it until it is answered. */
  private run(members: Member[], index: number, fn: unknown, batch: unknown[][]): ObjectRef<Outcome[]> {
    const member = members[index] as Member;
    const ref = member.actor.runBatch.remote(fn, batch) as unknown as ObjectRef<Outcome[]>;
    const done: Promise<unknown> = wait([ref], { numReturns: 1, fetchLocal: false }).then(
      () => member.pending.delete(done),
      () => member.pending.delete(done),
    );
    member.pending.add(done);
    if (this.maxTasksPerChild !== undefined && ++member.tasks >= this.maxTasksPerChild) {
      // Its place goes to a new process at once; it ends once its chunks are answered.
      members[index] = this.newMember();
      this.retired.set(
        member,
        settledAll(member.pending).then(() => {
          this.retired.delete(member);
          kill(member.actor);
        }),
      );
    }
    return ref;
  }

  private mapChunks(where: string, fn: PoolFunction<never, unknown>, iterable: Iterable<unknown>, unpack: boolean, chunksize: number | undefined, callbacks: PoolCallbacks<unknown>): AsyncResult<never> {
    this.checkRunning(where);
    const shipped = shippable(fn, `Pool.${where}()`);
    const items = argumentLists(iterable, unpack, `Pool.${where}()`);
    const refs = this.started.then((members) => {
      const size = chunksize ?? Math.max(1, Math.ceil(items.length / (members.length * 4)));
      const chunks: ObjectRef<Outcome[]>[] = [];
      for (let start = 0; start < items.length; start += size) {
        chunks.push(this.run(members, chunks.length % members.length, shipped, items.slice(start, start + size)));
      }
      return chunks;
    });
    return new AsyncResult<never>(refs, false, callbacks);
  }

  private imapOf<R>(where: string, fn: PoolFunction<never, unknown>, iterable: Iterable<unknown>, options: PoolIMapOptions | undefined, ordered: boolean): IMapIterator<R> {
    this.checkRunning(where);
    const valid = validateOptions(`Pool.${where}()`, MAP_RULES, options);
    const shipped = shippable(fn, `Pool.${where}()`);
    const iterator = iteratorOf(iterable, `Pool.${where}()`, false);
    return new IMapIterator<R>(this.started, (members, index, batch) => this.run(members, index, shipped, batch), iterator, valid.chunksize ?? 1, ordered);
  }
}

/** The result of mapAsync() or applyAsync(): ready(), successful(), wait() and get(), as Ray's. */
export class AsyncResult<T> {
  private outcome: { ok: true; value: unknown } | { ok: false; error: unknown } | undefined;
  private readonly done: Promise<void>;

  /** @internal */
  constructor(chunks: Promise<ObjectRef<Outcome[]>[]>, single: boolean, callbacks: PoolCallbacks<unknown>) {
    this.done = collect(chunks, callbacks.errorCallback).then(
      (values) => {
        this.outcome = { ok: true, value: single ? values[0] : values };
      },
      (error: unknown) => {
        this.outcome = { ok: false, error };
      },
    );
    // Callbacks run after the result is ready, so that ready() is true inside them.
    void this.done.then(() => {
      if (this.outcome?.ok === true && callbacks.callback !== undefined) callBack(callbacks.callback, this.outcome.value);
    });
  }

  /** True once every call has finished (succeeded or failed). */
  ready(): boolean {
    return this.outcome !== undefined;
  }

  /** True when every call succeeded. Throws if the result is not ready yet. */
  successful(): boolean {
    if (this.outcome === undefined) throw new MinirayError('AsyncResult.successful(): the result is not ready; await wait() first, or check ready()');
    return this.outcome.ok;
  }

  /** Resolves once the result is ready, or after `timeoutMs`, whichever is first (never rejects). */
  async wait(timeoutMs?: number): Promise<void> {
    const limit = checkedTimeout('AsyncResult.wait()', timeoutMs);
    if (this.outcome !== undefined || limit === undefined) return this.done;
    let stop = (): void => {};
    const expired = new Promise<void>((resolve) => {
      stop = startTimeout(resolve, limit);
    });
    try {
      await Promise.race([this.done, expired]);
    } finally {
      stop();
    }
  }

  /** The result; rejects with the first failed call's error, or GetTimeoutError when not ready within `timeoutMs`. */
  async get(timeoutMs?: number): Promise<T> {
    await this.wait(timeoutMs);
    const outcome = this.outcome;
    if (outcome === undefined) throw new GetTimeoutError(`AsyncResult.get(): the result was not ready within ${timeoutMs} ms`);
    if (!outcome.ok) throw outcome.error;
    return outcome.value as T;
  }
}

/**
 * The values of every chunk in order; the first failed item (in input order) is the error. The
 * errorCallback gets the first failure to arrive, as soon as it arrives, as in Ray.
 */
async function collect(chunks: Promise<ObjectRef<Outcome[]>[]>, errorCallback: ((error: Error) => void) | undefined): Promise<unknown[]> {
  const refs = await chunks.catch((error: unknown) => {
    if (errorCallback !== undefined) callBack(errorCallback, error as Error);
    throw error;
  });
  let reported = false;
  const report = (error: unknown): void => {
    if (reported) return;
    reported = true;
    if (errorCallback !== undefined) callBack(errorCallback, error as Error);
  };
  const settled = await Promise.all(
    refs.map((ref) =>
      chunkValues(ref).then((values) => {
        const failed = values.find((v) => v instanceof PoolCallFailure);
        if (failed !== undefined) report((failed as PoolCallFailure).error);
        return values;
      }),
    ),
  );
  const values = settled.flat();
  const failed = values.find((v) => v instanceof PoolCallFailure);
  if (failed !== undefined) throw (failed as PoolCallFailure).error;
  return values;
}

/**
 * Calls a user's callback. What it throws is its own failure, not the result's: it surfaces as an
 * uncaught exception, as from any Node.js callback, instead of changing the result.
 */
function callBack<T>(callback: (value: T) => void, value: T): void {
  try {
    callback(value);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

/** A failed call, kept among the values until someone reads it. */
class PoolCallFailure {
  constructor(readonly error: Error) {}
}

/** A chunk's values, each failed call as a PoolCallFailure; a chunk that failed whole fails each of its items. */
async function chunkValues(ref: ObjectRef<Outcome[]>, size?: number): Promise<unknown[]> {
  let outcomes: Outcome[];
  try {
    outcomes = await get(ref);
    if (!Array.isArray(outcomes)) throw new MinirayError(`a pool process answered a chunk with ${describeValue(outcomes)}, not a list of outcomes`);
  } catch (error) {
    const failure = new PoolCallFailure(error as Error);
    return Array.from({ length: size ?? 1 }, () => failure);
  }
  return outcomes.map((outcome) => (outcome.ok ? outcome.value : new PoolCallFailure(callError(outcome.error))));
}

/** A call's error as a TaskError whose cause is what the function threw (as get() gives a task's). */
function callError(record: ErrorRecord): Error {
  const problem = errorRecordProblem(record);
  const cause = problem === undefined ? fromErrorRecord(record) : new Error(`(its error could not be read: ${problem})`);
  const what = cause.name && cause.name !== 'Error' ? `${cause.name}: ${cause.message}` : cause.message;
  return new TaskError(`a call in the pool failed: ${what}`, { cause });
}

/** Results of imap()/imapUnordered(): `for await`, or `next({ timeoutMs })` (GetTimeoutError when none comes in time). */
export class IMapIterator<T> implements AsyncIterableIterator<T | Error> {
  /** Submitted chunks in input order; `values` once answered. */
  private readonly chunks: { values: unknown[] | undefined }[] = [];
  /** Answered chunks in the order they were answered (for imapUnordered), not yet read. */
  private readonly answered: number[] = [];
  private nextChunk = 0;
  private buffer: unknown[] = [];
  private exhausted = false;
  private inFlight = 0;
  /** Calls of next() waiting for a change (several may wait at once). */
  private readonly waiters = new Set<() => void>();
  private failure: unknown;

  /** @internal */
  constructor(
    started: Promise<Member[]>,
    private readonly submit: (members: Member[], index: number, batch: unknown[][]) => ObjectRef<Outcome[]>,
    private readonly source: Iterator<unknown[]>,
    private readonly chunksize: number,
    private readonly ordered: boolean,
  ) {
    started.then(
      (members) => {
        for (let i = 0; i < members.length; i++) this.submitNext(members, i);
        this.notify();
      },
      (error: unknown) => {
        this.failure = error;
        this.notify();
      },
    );
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next result; rejects with GetTimeoutError when none is ready within `timeoutMs` (it can be read again later). */
  async next(options?: { timeoutMs?: number }): Promise<IteratorResult<T | Error, undefined>> {
    const { timeoutMs } = validateOptions('IMapIterator.next()', TIMEOUT_RULES, options);
    const deadline = timeoutMs === undefined || timeoutMs === Infinity ? undefined : performance.now() + timeoutMs;
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      if (this.buffer.length > 0) {
        const value = this.buffer.shift();
        return { done: false, value: (value instanceof PoolCallFailure ? value.error : value) as T | Error };
      }
      if (this.take()) continue;
      if (this.exhausted && this.inFlight === 0 && this.nextChunk >= this.chunks.length) return { done: true, value: undefined };
      if (!(await this.changed(deadline))) throw new GetTimeoutError(`IMapIterator.next(): no result within ${timeoutMs} ms`);
    }
  }

  /** Moves the next readable chunk's values into the buffer; false if none is readable yet. */
  private take(): boolean {
    if (this.ordered) {
      const chunk = this.chunks[this.nextChunk];
      if (chunk?.values === undefined) return false;
      this.nextChunk++;
      this.buffer = chunk.values;
      chunk.values = [];
      return true;
    }
    const index = this.answered.shift();
    if (index === undefined) return false;
    const chunk = this.chunks[index] as { values: unknown[] | undefined };
    this.nextChunk++;
    this.buffer = chunk.values ?? [];
    chunk.values = [];
    return true;
  }

  /** Gives process `index` the next chunk of the input, if any is left. */
  private submitNext(members: Member[], index: number): void {
    if (this.exhausted) return;
    const batch: unknown[][] = [];
    try {
      while (batch.length < this.chunksize) {
        const step = this.source.next();
        if (step.done === true) {
          this.exhausted = true;
          break;
        }
        batch.push(step.value);
      }
    } catch (error) {
      this.exhausted = true;
      this.failure = error;
      return;
    }
    if (batch.length === 0) return;
    const slot: { values: unknown[] | undefined } = { values: undefined };
    const position = this.chunks.push(slot) - 1;
    this.inFlight++;
    const ref = this.submit(members, index, batch);
    void chunkValues(ref, batch.length).then((values) => {
      slot.values = values;
      this.inFlight--;
      this.answered.push(position);
      this.submitNext(members, index);
      this.notify();
    });
  }

  private notify(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiters) wake();
  }

  /** Resolves true when something changed, false at the deadline. */
  private changed(deadline: number | undefined): Promise<boolean> {
    return new Promise((resolve) => {
      let stop = (): void => {};
      const wake = (): void => {
        stop();
        resolve(true);
      };
      this.waiters.add(wake);
      if (deadline !== undefined) {
        stop = startTimeout(() => {
          this.waiters.delete(wake);
          resolve(false);
        }, Math.max(0, deadline - performance.now()));
      }
    });
  }
}

function closedError(where: string): MinirayError {
  return new MinirayError(`${where}: the pool is closed (close() or terminate() was called); make a new Pool for more work`);
}

/** What travels to the processes: the function itself (self-contained) or the remote function. */
/** The name of a function as shippable() gave it (a function, or a remote function). */
function initializerName(fn: unknown): string {
  if (fn instanceof RemoteFunctionImpl) return fn.descriptor.name;
  return (typeof fn === 'function' && fn.name) || 'anonymous';
}

function shippable(fn: unknown, where: string): unknown {
  if (fn instanceof RemoteFunctionImpl) return fn;
  if (typeof fn !== 'function') {
    throw new InvalidArgumentError(`${where}: expected a function (or a remote function made with remote()), got ${describeValue(fn)}`, 'fn');
  }
  const name = fn.name || 'anonymous';
  const source = Function.prototype.toString.call(fn);
  if (/\{\s*\[native code\]\s*\}$/.test(source)) {
    throw new InvalidArgumentError(`${where}: ${name} is a built-in or bound function, which has no source to ship; wrap it, e.g. (x) => Math.sqrt(x)`, 'fn');
  }
  const free = findFreeVariables(source, name);
  if (free.length > 0) {
    const list = free.map((v) => `'${v}'`).join(', ');
    throw new CapturedVariableError(
      `${where}: ${name} uses ${list} from the scope where it is defined, which does not exist in the pool's processes. ` +
        'Pass what it needs as arguments, or make it a remote function at the top level of a module other than the entry ' +
        "script (export const f = remote(fn)) and give the pool that: the processes import that module",
      free,
    );
  }
  return fn;
}

/** The items as argument lists (each item one argument; with `unpack`, each item the list), read now. */
function argumentLists(iterable: Iterable<unknown>, unpack: boolean, where: string): unknown[][] {
  const lists: unknown[][] = [];
  const iterator = iteratorOf(iterable, where, unpack);
  for (let step = iterator.next(); step.done !== true; step = iterator.next()) lists.push(step.value);
  return lists;
}

/** An iterator of argument lists over `iterable` (checked to be one); with `unpack`, each item must be an array. */
function iteratorOf(iterable: Iterable<unknown>, where: string, unpack: boolean): Iterator<unknown[]> {
  if (iterable === null || typeof (iterable as { [Symbol.iterator]?: unknown })?.[Symbol.iterator] !== 'function') {
    throw new InvalidArgumentError(`${where}: the items must be iterable (an array, a Set, a generator, ...); got ${describeValue(iterable)}`, 'iterable');
  }
  const inner = (iterable as Iterable<unknown>)[Symbol.iterator]();
  let index = 0;
  return {
    next(): IteratorResult<unknown[]> {
      const step = inner.next();
      if (step.done === true) return { done: true, value: undefined };
      const i = index++;
      if (!unpack) return { done: false, value: [step.value] };
      if (!Array.isArray(step.value)) {
        throw new InvalidArgumentError(`${where}: item ${i} must be an array of arguments, got ${describeValue(step.value)}`, `iterable[${i}]`);
      }
      return { done: false, value: [...(step.value as unknown[])] };
    },
  };
}

/** Resolves once every promise of `pending` (as it is now, and any added meanwhile) has settled. */
async function settledAll(pending: Set<Promise<unknown>>): Promise<void> {
  while (pending.size > 0) await Promise.allSettled([...pending]);
}

function checkedTimeout(where: string, timeoutMs: number | undefined): number | undefined {
  const valid = validateOptions(where, TIMEOUT_RULES, timeoutMs === undefined ? undefined : { timeoutMs });
  return valid.timeoutMs === undefined || valid.timeoutMs === Infinity ? undefined : valid.timeoutMs;
}
