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
import type { ActorInfo } from '../protocol/index.js';
import { EXTENSION_TYPES } from '../serialization/index.js';

const ACTOR_HANDLE_TYPE = EXTENSION_TYPES.actorHandle;

/** A method of an actor, as seen through a handle. */
export interface ActorMethod<A extends unknown[], R> {
  /** Calls the method on the actor; returns at once with a ref to its (unwrapped) result. */
  remote(...args: { [K in keyof A]: A[K] | ObjectRef<A[K]> }): ObjectRef<Awaited<R>>;
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

  remote(...args: unknown[]): ObjectRef {
    const runtime = currentRuntime();
    if (runtime === undefined) {
      throw new MinirayError(`${this.info.className}.${this.method}.remote(): miniray is not running (the actor went away with shutdown())`);
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
  write(handle: ActorHandleImpl): [string, string, readonly string[]] {
    return [handle.info.actorId, handle.info.className, handle.info.methodNames];
  },
  read([actorId, className, methodNames]: [string, string, string[]]): ActorHandleImpl {
    return new ActorHandleImpl({ actorId, className, methodNames });
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
