/** The public option types and their validation rules (one table per call). */
import { defaultNumCpus, defaultObjectStoreMemory, setting, validateOptions, type OptionRules } from '../config/index.js';
import { InvalidOptionError } from '../errors/index.js';
import type { ResolvedActorOptions, ResolvedTaskOptions } from '../core-worker/index.js';
import type { NodeOptions } from '../node/index.js';

export interface InitOptions {
  /** Worker threads to start. Default: numCpus. */
  numWorkers?: number;
  /** CPUs this node offers to tasks. Default: the machine's available parallelism. */
  numCpus?: number;
  /** Bytes the object store may hold. Default: 30% of system memory. */
  objectStoreMemory?: number;
  /** Heap limit of each worker thread in MB; a task that exceeds it fails with OutOfMemoryError. Default: Node's. */
  workerHeapLimitMb?: number;
  /** Where objects spill to disk when the object store is full. Default: a new folder in the system's temp directory. */
  spillDirectory?: string;
  /** When miniray is already running, return instead of throwing. Default: false. */
  ignoreReinitError?: boolean;
}

const INIT_RULES: OptionRules = {
  numWorkers: { type: 'integer', min: 1, doc: 'worker threads to start' },
  numCpus: { type: 'number', min: 0, doc: 'CPUs this node offers to tasks' },
  objectStoreMemory: { type: 'integer', min: 1, doc: 'bytes the object store may hold' },
  workerHeapLimitMb: { type: 'integer', min: 16, doc: 'heap limit of each worker thread, in MB' },
  spillDirectory: { type: 'string', doc: 'where objects spill when the store is full' },
  ignoreReinitError: { type: 'boolean', doc: 'return quietly when miniray is already running' },
};

export function resolveInitOptions(options: InitOptions | undefined): NodeOptions {
  validateOptions('init()', INIT_RULES, options);
  const numCpus = options?.numCpus ?? defaultNumCpus();
  const numWorkers = options?.numWorkers ?? Math.max(1, Math.ceil(numCpus));
  const heap = options?.workerHeapLimitMb;
  return {
    numCpus,
    numWorkers,
    objectStoreMemory: options?.objectStoreMemory ?? defaultObjectStoreMemory(),
    workerResourceLimits: heap === undefined ? undefined : { maxOldGenerationSizeMb: heap },
    spillDirectory: options?.spillDirectory,
  };
}

export interface TaskOptions {
  /** CPUs the task holds while it runs. Default: 1. */
  numCpus?: number;
  /** How many objects the task returns; with n > 1 it must return an array of n values and `.remote()` gives n refs. Default: 1. */
  numReturns?: number;
  /** Retries when the worker running the task dies (and on exceptions with retryExceptions). -1: unlimited. Default: 3. */
  maxRetries?: number;
  /** Also retry when the task throws. Default: false. */
  retryExceptions?: boolean;
  /** Name shown in errors. Default: the function's name. */
  name?: string;
}

const TASK_RULES: OptionRules = {
  numCpus: { type: 'number', min: 0, doc: 'CPUs the task holds while it runs' },
  numReturns: { type: 'integer', min: 1, doc: 'how many objects the task returns' },
  maxRetries: { type: 'integer', min: 0, allowMinusOne: true, doc: 'retries after a worker crash' },
  retryExceptions: { type: 'boolean', doc: 'also retry when the task throws' },
  name: { type: 'string', doc: 'name shown in errors' },
};

export function defaultTaskOptions(): ResolvedTaskOptions {
  return { numCpus: 1, numReturns: 1, maxRetries: setting('defaultMaxRetries'), retryExceptions: false, name: undefined };
}

export function mergeTaskOptions(where: string, base: ResolvedTaskOptions, options: TaskOptions | undefined): ResolvedTaskOptions {
  validateOptions(where, TASK_RULES, options);
  if (options === undefined) return base;
  return {
    numCpus: options.numCpus ?? base.numCpus,
    numReturns: options.numReturns ?? base.numReturns,
    maxRetries: options.maxRetries ?? base.maxRetries,
    retryExceptions: options.retryExceptions ?? base.retryExceptions,
    name: options.name ?? base.name,
  };
}

export interface GetOptions {
  /** Reject with GetTimeoutError if the objects are not ready by then. Default: wait as long as it takes. */
  timeoutMs?: number;
}

export interface WaitOptions {
  /** How many refs must be ready before wait() returns. Default: 1. */
  numReturns?: number;
  /** Return with whatever is ready by then. Default: no limit. */
  timeoutMs?: number;
}

export interface CancelOptions {
  /** Stop a running task by terminating its worker (which is then replaced). Default: false. */
  force?: boolean;
}

export const GET_RULES: OptionRules = { timeoutMs: { type: 'number', min: 0, doc: 'milliseconds to wait' } };
export const WAIT_RULES: OptionRules = {
  numReturns: { type: 'integer', min: 0, doc: 'how many refs must be ready' },
  timeoutMs: { type: 'number', min: 0, doc: 'milliseconds to wait' },
};
export const CANCEL_RULES: OptionRules = { force: { type: 'boolean', doc: 'terminate the worker running the task' } };

export interface ActorOptions {
  /** Register the actor under this name, so getActor(name) finds it. */
  name?: string;
  /** Namespace of the name. Default: "default". */
  namespace?: string;
  /** Restarts (the constructor runs again) after its worker dies. -1: unlimited. Default: 0. */
  maxRestarts?: number;
  /** Retries of a call that was running when the actor's worker died. -1: unlimited. Default: 0. */
  maxTaskRetries?: number;
  /** Calls that may run at once (async methods overlap). Default: 1000 for a class with async methods, else 1. */
  maxConcurrency?: number;
  /** CPUs the actor holds while it lives. Default: 0. */
  numCpus?: number;
  /**
   * 'thread' (default): a worker thread of its own, as Ray gives each actor a process.
   * 'shared': many actors share a few worker threads (thousands fit on one machine).
   * 'process': a child process of its own, for full isolation.
   */
  isolation?: 'thread' | 'shared' | 'process';
}

const ACTOR_RULES: OptionRules = {
  name: { type: 'string', doc: 'name for getActor()' },
  namespace: { type: 'string', doc: 'namespace of the name' },
  maxRestarts: { type: 'integer', min: 0, allowMinusOne: true, doc: 'restarts after the worker dies' },
  maxTaskRetries: { type: 'integer', min: 0, allowMinusOne: true, doc: 'retries of a call whose actor died' },
  maxConcurrency: { type: 'integer', min: 1, doc: 'calls that may run at once' },
  numCpus: { type: 'number', min: 0, doc: 'CPUs the actor holds while it lives' },
  isolation: { type: 'string', doc: "'thread', 'shared' or 'process'" },
};

const ISOLATIONS = ['thread', 'shared', 'process'] as const;

export function mergeActorOptions(
  where: string,
  base: ResolvedActorOptions,
  options: ActorOptions | undefined,
): ResolvedActorOptions {
  validateOptions(where, ACTOR_RULES, options);
  if (options === undefined) return base;
  if (options.isolation !== undefined && !ISOLATIONS.includes(options.isolation)) {
    throw new InvalidOptionError(
      `${where}: option 'isolation' must be one of ${ISOLATIONS.map((i) => `'${i}'`).join(', ')}, got ${JSON.stringify(options.isolation)}`,
      'isolation',
    );
  }
  if (options.name === '') throw new InvalidOptionError(`${where}: option 'name' must not be empty`, 'name');
  if (options.namespace === '') throw emptyNamespace(where);
  return {
    name: options.name ?? base.name,
    namespace: options.namespace ?? base.namespace,
    maxRestarts: options.maxRestarts ?? base.maxRestarts,
    maxTaskRetries: options.maxTaskRetries ?? base.maxTaskRetries,
    maxConcurrency: options.maxConcurrency ?? base.maxConcurrency,
    numCpus: options.numCpus ?? base.numCpus,
    isolation: options.isolation ?? base.isolation,
  };
}

export function defaultActorOptions(asyncMethods: boolean): ResolvedActorOptions {
  return {
    name: undefined,
    namespace: 'default',
    maxRestarts: 0,
    maxTaskRetries: 0,
    maxConcurrency: asyncMethods ? 1000 : 1,
    numCpus: 0,
    isolation: 'thread',
  };
}

export interface KillOptions {
  /** Do not restart the actor (default true, as Ray); false kills it as a crash would, so it restarts if it may. */
  noRestart?: boolean;
}

export const KILL_RULES: OptionRules = { noRestart: { type: 'boolean', doc: 'do not restart the actor' } };

export interface GetActorOptions {
  /** Namespace the name was registered in. Default: "default". */
  namespace?: string;
}

export const GET_ACTOR_RULES: OptionRules = { namespace: { type: 'string', doc: 'namespace of the name' } };

/** As in Ray, '' is no namespace: leave the option out for the default one. */
export function emptyNamespace(where: string): InvalidOptionError {
  return new InvalidOptionError(
    `${where}: option 'namespace' must not be empty; leave it out for the default namespace ('default'), or name one`,
    'namespace',
  );
}
