/**
 * Actor handles: the typed object a caller uses to reach an actor. `handle.method.remote(...args)`
 * submits a call through the calling thread's CoreWorker. A handle travels inside values (to tasks
 * and other actors) as its actor's ID, class name and method names, and works the same there.
 */
import { addExtension } from 'msgpackr';
import { currentRuntime } from '../core-worker/current.js';
import { MinirayError } from '../errors/index.js';
import { ActorID } from '../ids/index.js';
import type { ObjectRef } from '../object-ref/index.js';
import { ObjectRefGenerator } from '../object-ref/generator.js';
import type { ReturnMode } from '../protocol/index.js';

const STREAMING: ReturnMode = Object.freeze({ kind: 'streaming' });
import type { ActorInfo } from '../protocol/index.js';
import { EXTENSION_TYPES } from '../serialization/index.js';

const ACTOR_HANDLE_TYPE = EXTENSION_TYPES.actorHandle;

/** A method of an actor, as seen through a handle. */
export interface ActorMethod<A extends unknown[], R> {
  /**
   * Calls the method on the actor; returns at once with a ref to its (unwrapped) result, or, for
   * a generator method, an ObjectRefGenerator of the values it yields.
   */
  remote(...args: { [K in keyof A]: A[K] | ObjectRef<A[K]> }): R extends Generator<infer T, unknown, never> | AsyncGenerator<infer T, unknown, never> ? ObjectRefGenerator<T> : ObjectRef<Awaited<R>>;
}

/** Names of T's methods (its function-valued string keys). */
export type ActorMethodNames<T> = {
  [K in keyof T & string]: T[K] extends (...args: never[]) => unknown ? K : never;
}[keyof T & string];

/** A handle to an actor of class instance type T: one ActorMethod per method of T. */
export type ActorHandle<T> = {
  readonly [K in ActorMethodNames<T>]: T[K] extends (...args: infer A) => infer R ? ActorMethod<A, R> : never;
} & ActorHandleBase;

export interface ActorHandleBase {
  readonly actorId: ActorID;
  readonly className: string;
}

class ActorMethodImpl {
  constructor(
    private readonly info: ActorInfo,
    private readonly method: string,
  ) {}

  remote(...args: unknown[]): ObjectRef | ObjectRefGenerator {
    const runtime = currentRuntime();
    if (runtime === undefined) {
      throw new MinirayError(`${this.info.className}.${this.method}.remote(): miniray is not running (the actor went away with shutdown())`);
    }
    // generators: a generator method's call streams, as a generator task does
    if (this.info.generatorMethods?.includes(this.method) === true) {
      const [end] = runtime.coreWorker.submitActorCall(this.info, this.method, args, 1, STREAMING);
      return new ObjectRefGenerator(runtime.coreWorker.refFor(end as string), runtime.coreWorker.streams);
    }
    const [id] = runtime.coreWorker.submitActorCall(this.info, this.method, args, 1);
    return runtime.coreWorker.refFor(id as string);
  }
}

export class ActorHandleImpl implements ActorHandleBase {
  readonly actorId: ActorID;
  readonly className: string;
  /** @internal what the handle was built from (and travels as). */
  readonly info: ActorInfo;

  constructor(info: ActorInfo) {
    this.info = info;
    this.actorId = new ActorID(info.actorId);
    this.className = info.className;
    for (const method of info.methodNames) {
      Object.defineProperty(this, method, { value: new ActorMethodImpl(info, method), enumerable: false });
    }
  }

  toString(): string {
    return `ActorHandle(${this.className}, ${this.actorId.toHex()})`;
  }
}

addExtension({
  Class: ActorHandleImpl,
  type: ACTOR_HANDLE_TYPE,
  write(handle: ActorHandleImpl): [string, string, readonly string[]] | [string, string, readonly string[], readonly string[]] {
    const { actorId, className, methodNames, generatorMethods } = handle.info;
    return generatorMethods === undefined ? [actorId, className, methodNames] : [actorId, className, methodNames, generatorMethods];
  },
  read([actorId, className, methodNames, generatorMethods]: [string, string, string[], string[]?]): ActorHandleImpl {
    const generators = Array.isArray(generatorMethods) ? generatorMethods.filter((name) => typeof name === 'string') : undefined;
    return new ActorHandleImpl(generators === undefined ? { actorId, className, methodNames } : { actorId, className, methodNames, generatorMethods: generators });
  },
});

/** The methods a handle exposes: every function on the class's prototype chain but the constructor. */
export function methodNamesOf(cls: Function): string[] {
  const names = new Set<string>();
  for (let proto = cls.prototype as object | null; proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (key === 'constructor') continue;
      const descriptor = Object.getOwnPropertyDescriptor(proto, key);
      if (typeof descriptor?.value === 'function') names.add(key);
    }
  }
  return [...names];
}

// generators
/** The class's generator methods (sync or async): calls to them stream. */
export function generatorMethodsOf(cls: Function): string[] {
  const proto = cls.prototype as Record<string, unknown>;
  return methodNamesOf(cls).filter((name) => {
    const tag = Object.prototype.toString.call(proto[name]);
    return tag === '[object GeneratorFunction]' || tag === '[object AsyncGeneratorFunction]';
  });
}

/** True when any method is async: such actors run calls concurrently by default, as in Ray. */
export function hasAsyncMethods(cls: Function): boolean {
  const proto = cls.prototype as Record<string, unknown>;
  return methodNamesOf(cls).some((name) => {
    const fn = proto[name];
    return typeof fn === 'function' && (fn.constructor.name === 'AsyncFunction' || fn.constructor.name === 'AsyncGeneratorFunction');
  });
}

/** The actor ID of a well-formed handle, else undefined. Never throws. */
export function actorIdOf(handle: unknown): string | undefined {
  try {
    if (!(handle instanceof ActorHandleImpl)) return undefined;
    const info: unknown = handle.info;
    const actorId = (info as { actorId?: unknown } | undefined)?.actorId;
    return typeof actorId === 'string' && actorId !== '' ? actorId : undefined;
  } catch {
    return undefined;
  }
}
