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
import type { ObjectIdHex } from '../ids/index.js';
import { ObjectRefGenerator } from '../object-ref/generator.js';
import type { ActorInfo, ResourceMap, SchedulingStrategy } from '../protocol/index.js';
import { EXTENSION_TYPES, type FunctionDescriptor } from '../serialization/index.js';
import { InvalidOptionError } from '../errors/index.js';
import { checkMethodGroups, defaultActorOptions, defaultTaskOptions, generatorTaskOptions, mergeActorOptions, mergeTaskOptions, type ActorOptions, type TaskOptions } from './options.js';

/** The running CoreWorker, starting miniray with defaults if needed. */
function coreWorker(): CoreWorker {
  return ensureRuntime().coreWorker;
}

export class RemoteFunctionImpl {
  constructor(
    /** @internal */ readonly descriptor: FunctionDescriptor,
    /** @internal */ readonly taskOptions: ResolvedTaskOptions,
  ) {}

  remote(...args: unknown[]): ObjectRef | ObjectRef[] | ObjectRefGenerator | undefined {
    const worker = coreWorker();
    const ids = worker.submitTask(this.descriptor, args, this.taskOptions);
    if (this.taskOptions.numReturns === 1) {
      // generators: a streaming task's one return is its stream's end
      if (this.taskOptions.returnKind === 'streaming') return new ObjectRefGenerator(worker.refFor(ids[0] as ObjectIdHex), worker.streams);
      return worker.refFor(ids[0] as ObjectIdHex);
    }
    if (this.taskOptions.numReturns === 0) {
      worker.refFor(ids[0] as ObjectIdHex); // its internal return: dropped at once, freed when the task is done
      return undefined;
    }
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
    /** @internal generators: its generator methods, whose calls stream */
    readonly generatorMethods: readonly string[] = [],
  ) {}

  remote(...args: unknown[]): ActorHandleImpl {
    checkMethodGroups(`${this.descriptor.name}.remote()`, this.actorOptions);
    if (this.actorOptions.getIfExists === true && this.actorOptions.name === undefined) {
      throw new InvalidOptionError(`${this.descriptor.name}.remote(): getIfExists needs a name (the actor to reach if it exists): add { name: '...' }`, 'getIfExists');
    }
    const worker = coreWorker();
    const created = worker.createOrGetActor(this.descriptor, this.methodNames, args, this.actorOptions, this.generatorMethods);
    // getIfExists found a live actor of that name: a handle to it, counted as any other.
    if (typeof created !== 'string') return new ActorHandleImpl(created);
    const { methodOptions, lifetime } = this.actorOptions;
    const info: { -readonly [K in keyof ActorInfo]: ActorInfo[K] } = { actorId: created, className: this.descriptor.name, methodNames: this.methodNames };
    if (methodOptions !== undefined) info.methodOptions = methodOptions;
    if (this.generatorMethods.length !== 0) info.generatorMethods = this.generatorMethods;
    if (lifetime === 'detached') return new ActorHandleImpl(info);
    // Actor lifetimes: the creator's handle is the first counted (the node counts it from the start).
    info.owner = worker.address;
    return new ActorHandleImpl(info, worker.refFor(created));
  }

  options(options: ActorOptions): ActorClassImpl {
    return new ActorClassImpl(this.descriptor, this.methodNames, mergeActorOptions('.options()', this.actorOptions, options), this.generatorMethods);
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
  write(fn: RemoteFunctionImpl): [FunctionDescriptor, TaskOptions] | [FunctionDescriptor, TaskOptions, true] {
    // generators: the generator fields travel as the options that make them, and whether it is a generator function
    const { resources, strategy, name, returnKind, isGenerator, backpressure, returns: _returns, ...rest } = fn.taskOptions;
    const options: TaskOptions = {
      ...rest,
      ...(returnKind === undefined ? {} : { numReturns: returnKind }),
      ...(backpressure === undefined ? {} : { generatorBackpressureNumObjects: backpressure }),
      ...(name === undefined ? {} : { name }),
      ...asUserOptions(resources, strategy),
    };
    return isGenerator === true ? [fn.descriptor, options, true] : [fn.descriptor, options];
  },
  read(data: unknown): RemoteFunctionImpl {
    const [descriptor, options, isGenerator] = Array.isArray(data) ? (data as unknown[]) : [];
    if (!isDescriptor(descriptor) || !isPlainObject(options)) throw new SerializationError('received a malformed remote function');
    const base = isGenerator === true ? generatorTaskOptions() : defaultTaskOptions();
    return new RemoteFunctionImpl(descriptor, checkedOptions('remote function', () => mergeTaskOptions('a received remote function', base, options as TaskOptions)));
  },
});

addExtension({
  Class: ActorClassImpl,
  type: EXTENSION_TYPES.actorClass,
  write(cls: ActorClassImpl): [FunctionDescriptor, readonly string[], ActorOptions] | [FunctionDescriptor, readonly string[], ActorOptions, readonly string[]] {
    const { resources, strategy, name, ...rest } = cls.actorOptions;
    const options = { ...rest, ...(name === undefined ? {} : { name }), ...asUserOptions(resources, strategy) };
    return cls.generatorMethods.length === 0 ? [cls.descriptor, cls.methodNames, options] : [cls.descriptor, cls.methodNames, options, cls.generatorMethods];
  },
  read(data: unknown): ActorClassImpl {
    const [descriptor, methodNames, options, generatorMethods] = Array.isArray(data) ? (data as unknown[]) : [];
    const generators = Array.isArray(generatorMethods) ? generatorMethods.filter((m): m is string => typeof m === 'string') : [];
    if (!isDescriptor(descriptor) || !Array.isArray(methodNames) || !methodNames.every((m) => typeof m === 'string') || !isPlainObject(options)) {
      throw new SerializationError('received a malformed actor class');
    }
    const base = defaultActorOptions(false);
    return new ActorClassImpl(descriptor, methodNames as string[], checkedOptions('actor class', () => mergeActorOptions('a received actor class', base, options as ActorOptions)), generators);
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
