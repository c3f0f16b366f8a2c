/**
 * Queue (Ray's ray.util.queue.Queue): a FIFO queue held by an actor, so the driver, tasks and
 * actors can all put and get. A Queue object can be passed to tasks and actors inside arguments;
 * it travels as its actor's handle.
 */
import type { ActorIdHex } from '../ids/index.js';
import { addExtension } from 'msgpackr';
import { ActorHandleImpl, methodNamesOf, type ActorHandle } from '../actors/handle.js';
import { ensureRuntime } from '../core-worker/current.js';
import { validateOptions, type OptionRules } from '../config/index.js';
import { InvalidArgumentError, QueueEmptyError, QueueFullError, TaskError, describeValue } from '../errors/index.js';
import { mergeActorOptions, type ActorOptions } from '../api/options.js';
import type { ResolvedActorOptions } from '../core-worker/index.js';
import type { ObjectRef } from '../object-ref/index.js';
import type { ActorInfo } from '../protocol/index.js';
import { EXTENSION_TYPES, callerOf, describeFunction } from '../serialization/index.js';

const QUEUE_TYPE = EXTENSION_TYPES.queue;

/**
 * The actor behind a Queue. Shipped as source, so it uses nothing from this module; its errors
 * carry names the Queue maps to QueueEmptyError and QueueFullError.
 */
class QueueActor {
  private readonly items: unknown[] = [];
  private readonly getters: Array<{ resolve: (value: unknown) => void; stopTimer: () => void }> = [];
  private readonly putters: Array<{ item: unknown; resolve: () => void; stopTimer: () => void }> = [];

  constructor(private readonly maxsize: number) {}

  size(): number {
    return this.items.length;
  }

  /**
   * Calls `fire` after `ms` (Infinity: never). setTimeout fires at once past 2**31 - 1 ms, so a
   * longer wait is a chain of shorter timers. Returns what stops it.
   */
  private timer(ms: number, fire: () => void): () => void {
    const longest = 0x7fffffff;
    const end = Date.now() + ms;
    let handle: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      const left = end - Date.now();
      if (left <= 0) fire();
      else handle = setTimeout(arm, Math.min(left, longest));
    };
    if (Number.isFinite(ms)) arm();
    return () => clearTimeout(handle);
  }

  async put(item: unknown, block: boolean, timeoutMs: number | null): Promise<void> {
    const waiter = this.getters.shift();
    if (waiter !== undefined) {
      waiter.stopTimer();
      waiter.resolve(item);
      return;
    }
    if (this.maxsize <= 0 || this.items.length < this.maxsize) {
      this.items.push(item);
      return;
    }
    if (!block) throw Object.assign(new Error(`the queue is full (maxsize ${this.maxsize})`), { name: 'QueueFullError' });
    await new Promise<void>((resolve, reject) => {
      const entry = { item, resolve, stopTimer: () => {} };
      this.putters.push(entry);
      if (timeoutMs !== null) {
        entry.stopTimer = this.timer(timeoutMs, () => {
          const index = this.putters.indexOf(entry);
          if (index < 0) return;
          this.putters.splice(index, 1);
          reject(Object.assign(new Error(`the queue stayed full for ${timeoutMs} ms`), { name: 'QueueFullError' }));
        });
      }
    });
  }

  /** All of `items` or none: full unless every one fits now (as Ray's put_nowait_batch). */
  putNowaitBatch(items: unknown[]): void {
    if (this.maxsize > 0 && this.items.length + items.length > this.maxsize) {
      throw Object.assign(new Error(`cannot add ${items.length} items to a queue of size ${this.items.length} and maxsize ${this.maxsize}`), { name: 'QueueFullError' });
    }
    for (const item of items) {
      const waiter = this.getters.shift();
      if (waiter === undefined) {
        this.items.push(item);
      } else {
        waiter.stopTimer();
        waiter.resolve(item);
      }
    }
  }

  /** `count` items or none: empty unless that many are there now (as Ray's get_nowait_batch). */
  getNowaitBatch(count: number): unknown[] {
    if (count > this.items.length) {
      throw Object.assign(new Error(`cannot get ${count} items from a queue of size ${this.items.length}`), { name: 'QueueEmptyError' });
    }
    const taken: unknown[] = [];
    for (let i = 0; i < count; i++) taken.push(this.takeOne());
    return taken;
  }

  /** The oldest item; a waiting putter's item takes its place. */
  private takeOne(): unknown {
    const item = this.items.shift();
    const putter = this.putters.shift();
    if (putter !== undefined) {
      putter.stopTimer();
      this.items.push(putter.item);
      putter.resolve();
    }
    return item;
  }

  async get(block: boolean, timeoutMs: number | null): Promise<unknown> {
    if (this.items.length > 0) return this.takeOne();
    if (!block) throw Object.assign(new Error('the queue is empty'), { name: 'QueueEmptyError' });
    return new Promise((resolve, reject) => {
      const entry = { resolve, stopTimer: () => {} };
      this.getters.push(entry);
      if (timeoutMs !== null) {
        entry.stopTimer = this.timer(timeoutMs, () => {
          const index = this.getters.indexOf(entry);
          if (index < 0) return;
          this.getters.splice(index, 1);
          reject(Object.assign(new Error(`the queue stayed empty for ${timeoutMs} ms`), { name: 'QueueEmptyError' }));
        });
      }
    });
  }
}

const queueActorClass = describeFunction(QueueActor, callerOf(describeFunction), 'class');
const queueActorMethods = methodNamesOf(QueueActor);

export interface QueueOptions {
  /** Most items the queue holds; put() waits (or fails) beyond it. 0: unbounded. Default: 0. */
  maxsize?: number;
  /**
   * Options of the queue's actor (Ray's actor_options), e.g. { name } to find it with getActor,
   * { lifetime: 'detached' }, or { isolation: 'thread' }. Default: a 'shared' actor, 0 CPUs.
   */
  actorOptions?: ActorOptions;
}

export interface QueuePutOptions {
  /** Wait for room when the queue is full. Default: true. */
  block?: boolean;
  /** With block, fail with QueueFullError after this long (>= 0, any length, or Infinity). Default: wait as long as it takes. */
  timeoutMs?: number;
}

export interface QueueGetOptions {
  /** Wait for an item when the queue is empty. Default: true. */
  block?: boolean;
  /** With block, fail with QueueEmptyError after this long (>= 0, any length, or Infinity). Default: wait as long as it takes. */
  timeoutMs?: number;
}

// `as const`: validateOptions then returns the checked values typed, and they are what is used.
const QUEUE_RULES = {
  maxsize: { type: 'integer', min: 0, doc: 'most items the queue holds; 0 for no limit' },
  actorOptions: {
    type: 'custom',
    doc: "options of the queue's actor",
    problem: (v) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? undefined : 'an object of actor options, e.g. { name: \'jobs\' }'),
  },
} as const satisfies OptionRules;
const PUT_RULES = {
  block: { type: 'boolean', doc: 'wait for room when the queue is full' },
  timeoutMs: { type: 'number', min: 0, allowInfinity: true, doc: 'milliseconds to wait for room' },
} as const satisfies OptionRules;
const GET_RULES = {
  block: { type: 'boolean', doc: 'wait for an item when the queue is empty' },
  timeoutMs: { type: 'number', min: 0, allowInfinity: true, doc: 'milliseconds to wait for an item' },
} as const satisfies OptionRules;

export class Queue<T> {
  readonly maxsize: number;
  private readonly actor: ActorHandle<QueueActor>;
  private readonly info: ActorInfo;

  constructor(options?: QueueOptions);
  /** @internal rebuilds a Queue that travelled to another thread. */
  constructor(options: QueueOptions | undefined, existing: ActorInfo);
  constructor(options?: QueueOptions, existing?: ActorInfo) {
    // A Queue rebuilt from another thread's has its maxsize from there, checked when it was made.
    const valid = existing === undefined ? validateOptions('new Queue()', QUEUE_RULES, options) : undefined;
    const maxsize = valid === undefined ? (options?.maxsize ?? 0) : (valid.maxsize ?? 0);
    this.maxsize = maxsize;
    if (existing !== undefined) {
      this.info = existing;
    } else {
      // A 'shared' actor: a queue is light, and many queues should not cost a thread each.
      const base: ResolvedActorOptions = {
        name: undefined,
        namespace: undefined, // the job's, as any actor's (env)
        resources: undefined,
        strategy: undefined,
        maxRestarts: 0,
        maxTaskRetries: 0,
        maxConcurrency: 1000,
        numCpus: 0,
        isolation: 'shared',
        lifetime: 'non_detached',
      };
      const actorOptions = valid?.actorOptions === undefined ? base : mergeActorOptions('new Queue(): actorOptions', base, valid.actorOptions as ActorOptions);
      const actorId = ensureRuntime().coreWorker.createActor(queueActorClass, queueActorMethods, [maxsize], actorOptions);
      this.info = { actorId, className: 'Queue', methodNames: queueActorMethods };
    }
    this.actor = new ActorHandleImpl(this.info) as unknown as ActorHandle<QueueActor>;
  }

  /** Adds an item; waits for room if the queue is full (see options). */
  async put(item: T, options?: QueuePutOptions): Promise<void> {
    const valid = validateOptions('Queue.put()', PUT_RULES, options);
    await this.call(this.actor.put.remote(item, valid.block ?? true, valid.timeoutMs ?? null));
  }

  /** Removes and returns the oldest item; waits for one if the queue is empty (see options). */
  async get(options?: QueueGetOptions): Promise<T> {
    const valid = validateOptions('Queue.get()', GET_RULES, options);
    return (await this.call(this.actor.get.remote(valid.block ?? true, valid.timeoutMs ?? null))) as T;
  }

  putNowait(item: T): Promise<void> {
    return this.put(item, { block: false });
  }

  getNowait(): Promise<T> {
    return this.get({ block: false });
  }

  /** Adds all of `items` at once, or none: QueueFullError unless they all fit now. */
  async putNowaitBatch(items: Iterable<T>): Promise<void> {
    if (items === null || typeof (items as { [Symbol.iterator]?: unknown })?.[Symbol.iterator] !== 'function') {
      throw new InvalidArgumentError(`Queue.putNowaitBatch() takes an iterable of items (an array, ...); got ${describeValue(items)}`, 'items');
    }
    await this.call(this.actor.putNowaitBatch.remote([...items]));
  }

  /** Removes and returns `count` items at once, or none: QueueEmptyError unless that many are there now. */
  async getNowaitBatch(count: number): Promise<T[]> {
    if (!Number.isInteger(count) || count < 0) {
      throw new InvalidArgumentError(`Queue.getNowaitBatch() takes how many items to get, an integer >= 0; got ${describeValue(count)}`, 'count');
    }
    return (await this.call(this.actor.getNowaitBatch.remote(count))) as T[];
  }

  size(): Promise<number> {
    return this.call(this.actor.size.remote());
  }

  async empty(): Promise<boolean> {
    return (await this.size()) === 0;
  }

  async full(): Promise<boolean> {
    return this.maxsize > 0 && (await this.size()) >= this.maxsize;
  }

  /** Ends the queue's actor; later calls fail with ActorDiedError. */
  shutdown(): void {
    ensureRuntime().coreWorker.killActor(this.info.actorId, true);
  }

  /** get() of a queue call, turning the actor's empty/full errors into QueueEmptyError/QueueFullError. */
  private async call<R>(ref: ObjectRef<R>): Promise<R> {
    try {
      const [value] = await ensureRuntime().coreWorker.get([ref], undefined);
      return value as R;
    } catch (error) {
      const cause = error instanceof TaskError ? (error.cause as Error | undefined) : undefined;
      if (cause?.name === 'QueueEmptyError') throw new QueueEmptyError(cause.message);
      if (cause?.name === 'QueueFullError') throw new QueueFullError(cause.message);
      throw error;
    }
  }

  /** @internal */
  get actorInfo(): ActorInfo {
    return this.info;
  }
}

addExtension({
  Class: Queue,
  type: QUEUE_TYPE,
  write(queue: Queue<unknown>): [number, string, readonly string[]] {
    return [queue.maxsize, queue.actorInfo.actorId, queue.actorInfo.methodNames];
  },
  read([maxsize, actorId, methodNames]: [number, ActorIdHex, string[]]): Queue<unknown> {
    return new Queue({ maxsize }, { actorId, className: 'Queue', methodNames });
  },
});
