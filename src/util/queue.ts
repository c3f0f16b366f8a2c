/**
 * Queue (Ray's ray.util.queue.Queue): a FIFO queue held by an actor, so the driver, tasks and
 * actors can all put and get. A Queue object can be passed to tasks and actors inside arguments;
 * it travels as its actor's handle.
 */
import { addExtension } from 'msgpackr';
import { ActorHandleImpl, methodNamesOf, type ActorHandle } from '../actors/handle.js';
import { ensureRuntime } from '../core-worker/current.js';
import { validateOptions, type OptionRules } from '../config/index.js';
import { QueueEmptyError, QueueFullError, TaskError } from '../errors/index.js';
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

  async get(block: boolean, timeoutMs: number | null): Promise<unknown> {
    if (this.items.length > 0) {
      const item = this.items.shift();
      const putter = this.putters.shift();
      if (putter !== undefined) {
        putter.stopTimer();
        this.items.push(putter.item);
        putter.resolve();
      }
      return item;
    }
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
const QUEUE_RULES = { maxsize: { type: 'integer', min: 0, doc: 'most items the queue holds; 0 for no limit' } } as const satisfies OptionRules;
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
    const maxsize = existing === undefined ? (validateOptions('new Queue()', QUEUE_RULES, options).maxsize ?? 0) : (options?.maxsize ?? 0);
    this.maxsize = maxsize;
    if (existing !== undefined) {
      this.info = existing;
    } else {
      // A 'shared' actor: a queue is light, and many queues should not cost a thread each.
      const actorId = ensureRuntime().coreWorker.createActor(queueActorClass, queueActorMethods, [maxsize], {
        name: undefined,
        namespace: 'default',
        resources: undefined,
        strategy: undefined,
        maxRestarts: 0,
        maxTaskRetries: 0,
        maxConcurrency: 1000,
        numCpus: 0,
        isolation: 'shared',
        lifetime: 'non_detached',
      });
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
  read([maxsize, actorId, methodNames]: [number, string, string[]]): Queue<unknown> {
    return new Queue({ maxsize }, { actorId, className: 'Queue', methodNames });
  },
});
