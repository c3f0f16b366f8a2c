/**
 * Remote functions and actor classes, the objects remote() returns. They travel inside values (to
 * tasks and actors, and back) as their descriptor and options, and work the same there, as in Ray:
 * a task given a remote function can call `.remote()` on it. The worker runtime imports this
 * module so that they decode in every worker.
 */
import { addExtension } from 'msgpackr';
import { ActorHandleImpl } from '../actors/handle.js';
import { ensureRuntime } from '../core-worker/current.js';
import type { CoreWorker, ResolvedActorOptions, ResolvedTaskOptions } from '../core-worker/index.js';
import { SerializationError } from '../errors/index.js';
import type { ObjectRef } from '../object-ref/index.js';
import type { ActorInfo, ResourceMap, SchedulingStrategy } from '../protocol/index.js';
import { EXTENSION_TYPES, type FunctionDescriptor } from '../serialization/index.js';
import { checkMethodGroups, defaultActorOptions, defaultTaskOptions, mergeActorOptions, mergeTaskOptions, type ActorOptions, type TaskOptions } from './options.js';

/** The running CoreWorker, starting miniray with defaults if needed. */
function coreWorker(): CoreWorker {
  return ensureRuntime().coreWorker;
}

export class RemoteFunctionImpl {
  constructor(
    /** @internal */ readonly descriptor: FunctionDescriptor,
    /** @internal */ readonly taskOptions: ResolvedTaskOptions,
  ) {}

  remote(...args: unknown[]): ObjectRef | ObjectRef[] {
    const worker = coreWorker();
    const ids = worker.submitTask(this.descriptor, args, this.taskOptions);
    if (this.taskOptions.numReturns === 1) return worker.refFor(ids[0] as string);
    return ids.map((id) => worker.refFor(id));
  }

  options(options: TaskOptions): RemoteFunctionImpl {
    return new RemoteFunctionImpl(this.descriptor, mergeTaskOptions('.options()', this.taskOptions, options));
  }
}

export class ActorClassImpl {
  constructor(
    /** @internal */ readonly descriptor: FunctionDescriptor,
    /** @internal */ readonly methodNames: readonly string[],
    /** @internal */ readonly actorOptions: ResolvedActorOptions,
  ) {}

  remote(...args: unknown[]): ActorHandleImpl {
    checkMethodGroups(`${this.descriptor.name}.remote()`, this.actorOptions);
    const worker = coreWorker();
    const created = worker.createOrGetActor(this.descriptor, this.methodNames, args, this.actorOptions);
    // getIfExists found a live actor of that name: a handle to it, counted as any other.
    if (typeof created !== 'string') return new ActorHandleImpl(created);
    const { methodOptions, lifetime } = this.actorOptions;
    const info: { -readonly [K in keyof ActorInfo]: ActorInfo[K] } = { actorId: created, className: this.descriptor.name, methodNames: this.methodNames };
    if (methodOptions !== undefined) info.methodOptions = methodOptions;
    if (lifetime === 'detached') return new ActorHandleImpl(info);
    // Actor lifetimes: the creator's handle is the first counted (the node counts it from the start).
    info.owner = worker.address;
    return new ActorHandleImpl(info, worker.refFor(created));
  }

  options(options: ActorOptions): ActorClassImpl {
    return new ActorClassImpl(this.descriptor, this.methodNames, mergeActorOptions('.options()', this.actorOptions, options));
  }
}

function isDescriptor(value: unknown): value is FunctionDescriptor {
  const d = value as Partial<Record<string, unknown>> | null;
  if (typeof d !== 'object' || d === null || typeof d['id'] !== 'string' || typeof d['name'] !== 'string') return false;
  if (d['kind'] === 'source') return typeof d['source'] === 'string';
  return d['kind'] === 'module' && typeof d['moduleUrl'] === 'string' && typeof d['callsite'] === 'string' && typeof d['where'] === 'string';
}

const isPlainObject = (value: unknown): value is object => typeof value === 'object' && value !== null && !Array.isArray(value);

addExtension({
  Class: RemoteFunctionImpl,
  type: EXTENSION_TYPES.remoteFunction,
  write(fn: RemoteFunctionImpl): [FunctionDescriptor, TaskOptions] {
    const { resources, strategy, name, ...rest } = fn.taskOptions;
    return [fn.descriptor, { ...rest, ...(name === undefined ? {} : { name }), ...asUserOptions(resources, strategy) }];
  },
  read(data: unknown): RemoteFunctionImpl {
    const [descriptor, options] = Array.isArray(data) ? (data as unknown[]) : [];
    if (!isDescriptor(descriptor) || !isPlainObject(options)) throw new SerializationError('received a malformed remote function');
    return new RemoteFunctionImpl(descriptor, checkedOptions('remote function', () => mergeTaskOptions('a received remote function', defaultTaskOptions(), options as TaskOptions)));
  },
});

addExtension({
  Class: ActorClassImpl,
  type: EXTENSION_TYPES.actorClass,
  write(cls: ActorClassImpl): [FunctionDescriptor, readonly string[], ActorOptions] {
    const { resources, strategy, name, ...rest } = cls.actorOptions;
    return [cls.descriptor, cls.methodNames, { ...rest, ...(name === undefined ? {} : { name }), ...asUserOptions(resources, strategy) }];
  },
  read(data: unknown): ActorClassImpl {
    const [descriptor, methodNames, options] = Array.isArray(data) ? (data as unknown[]) : [];
    if (!isDescriptor(descriptor) || !Array.isArray(methodNames) || !methodNames.every((m) => typeof m === 'string') || !isPlainObject(options)) {
      throw new SerializationError('received a malformed actor class');
    }
    const base = defaultActorOptions(false);
    return new ActorClassImpl(descriptor, methodNames as string[], checkedOptions('actor class', () => mergeActorOptions('a received actor class', base, options as ActorOptions)));
  },
});

/** Resources and strategy as options give them (they travel as options, and are checked as such). */
function asUserOptions(resources: ResourceMap | undefined, strategy: SchedulingStrategy | undefined): Pick<TaskOptions, 'numGpus' | 'resources' | 'schedulingStrategy'> {
  const { GPU, ...custom } = resources ?? {};
  return {
    ...(GPU === undefined ? {} : { numGpus: GPU }),
    ...(Object.keys(custom).length === 0 ? {} : { resources: custom }),
    ...(strategy === undefined ? {} : { schedulingStrategy: strategy }),
  };
}

/**
 * Options that arrive with a remote function or actor class are checked as the user's are: forged
 * bytes must not bring in what remote() refuses (such as numReturns: 2**31).
 */
function checkedOptions<T>(what: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    throw new SerializationError(`received a malformed ${what}: ${(error as Error).message}`, { cause: error });
  }
}
