/**
 * Actor handles: the typed object a caller uses to reach an actor. `handle.method.remote(...args)`
 * submits a call through the calling thread's CoreWorker. A handle travels inside values (to tasks
 * and other actors) as its actor's ID, class name and method names, and works the same there.
 */
import { addExtension } from 'msgpackr';
import { currentRuntime } from '../core-worker/current.js';
import { InvalidOptionError, MinirayError } from '../errors/index.js';
import { ActorID, ObjectID, type ActorIdHex, type ObjectIdHex } from '../ids/index.js';
import { ObjectRef, type OwnerAddress } from '../object-ref/index.js';
import { ObjectRefGenerator } from '../object-ref/generator.js';
import type { ActorInfo, MethodOptionsSpec, ReturnMode } from '../protocol/index.js';
import { EXTENSION_TYPES, noteRefMet } from '../serialization/index.js';

const STREAMING: ReturnMode = Object.freeze({ kind: 'streaming' });
const DYNAMIC: ReturnMode = Object.freeze({ kind: 'dynamic' });

const ACTOR_HANDLE_TYPE = EXTENSION_TYPES.actorHandle;

/** Each argument may be given as a value or as a ref to a value of the same type. */
type Args<A extends unknown[]> = { [K in keyof A]: A[K] | ObjectRef<A[K]> };

/** The refs of a call with numReturns n > 1: one per element of the returned tuple. */
export type MethodReturnRefs<R> = R extends readonly unknown[] ? { -readonly [K in keyof R]: ObjectRef<R[K]> } : ObjectRef<unknown>[];

/**
 * Options of one method: the defaults in a class's static `methodOptions`, or for one call with
 * `handle.method.options({ ... })`.
 */
export interface ActorMethodOptions {
  /**
   * Objects the method returns: n > 1 means it returns an array of n values and a call gives n
   * refs; 0, none (the call gives undefined). For a generator method, as for a generator task:
   * 'streaming' (its default: an ObjectRefGenerator), 'dynamic' (a ref to an array of refs, one
   * per value), or n (it must yield exactly n values). Default: 1, or 'streaming' for a generator.
   */
  numReturns?: number | 'streaming' | 'dynamic';
  /** The concurrency group (of the actor's concurrencyGroups) its calls run in. Default: the default group. */
  concurrencyGroup?: string;
}

/**
 * What a call gives: an ObjectRefGenerator for a generator method, else one ref. Not distributive
 * ([R]), so that a method returning boolean gives ObjectRef<boolean>, not a union of refs; never
 * (a method that always throws) and any give a plain ref.
 */
export type MethodCallResult<R> = [R] extends [never]
  ? ObjectRef<never>
  : 0 extends 1 & R
    ? ObjectRef<R>
    : [R] extends [Generator<infer T, unknown, never> | AsyncGenerator<infer T, unknown, never>]
      ? ObjectRefGenerator<T>
      : ObjectRef<Awaited<R>>;

/** A method of an actor, as seen through a handle. */
export interface ActorMethod<A extends unknown[], R> {
  /**
   * Calls the method on the actor; returns at once with a ref to its (unwrapped) result, or, for
   * a generator method, an ObjectRefGenerator of the values it yields.
   */
  remote(...args: Args<A>): MethodCallResult<R>;
  /** This call's options: numReturns n > 1 gives one ref per returned element, 0 none. */
  options(options: ActorMethodOptions & { numReturns?: 1 }): ActorMethod<A, R>;
  options(options: ActorMethodOptions & { numReturns: 0 }): NoReturnActorMethod<A, R>;
  options(options: ActorMethodOptions & { numReturns: number }): MultiReturnActorMethod<A, R>;
}

/** A method with numReturns n > 1: each call gives one ref per element of the returned tuple. */
export interface MultiReturnActorMethod<A extends unknown[], R> {
  remote(...args: Args<A>): MethodReturnRefs<Awaited<R>>;
  options(options: ActorMethodOptions & { numReturns?: 1 }): ActorMethod<A, R>;
  options(options: ActorMethodOptions & { numReturns: number }): MultiReturnActorMethod<A, R>;
}

// generators: a generator method's calls with numReturns 'dynamic' or n, typed as a generator task's
/** What a generator type yields. */
type YieldOf<G> = G extends Generator<infer T, unknown, never> | AsyncGenerator<infer T, unknown, never> ? T : never;

/** N refs to values of type T (an array when N is not a literal), as a generator task's. */
export type RefsOf<T, N extends number, Acc extends ObjectRef<T>[] = []> = number extends N ? ObjectRef<T>[] : Acc['length'] extends N ? Acc : RefsOf<T, N, [...Acc, ObjectRef<T>]>;

/** The options of a generator method, and what each gives. */
export interface GeneratorMethodOptions<A extends unknown[], T> {
  options(options: ActorMethodOptions & { numReturns?: 'streaming' }): StreamingActorMethod<A, T>;
  options(options: ActorMethodOptions & { numReturns: 'dynamic' }): DynamicActorMethod<A, T>;
  options<const N extends number>(options: ActorMethodOptions & { numReturns: N }): StaticGeneratorActorMethod<A, T, N>;
}

/** A generator method (numReturns 'streaming', its default): each call gives an ObjectRefGenerator. */
export interface StreamingActorMethod<A extends unknown[], T> extends GeneratorMethodOptions<A, T> {
  remote(...args: Args<A>): ObjectRefGenerator<T>;
}

/** A generator method with numReturns 'dynamic': a ref to the array of refs to its values, ready when it is done. */
export interface DynamicActorMethod<A extends unknown[], T> extends GeneratorMethodOptions<A, T> {
  remote(...args: Args<A>): ObjectRef<ObjectRef<T>[]>;
}

/** A generator method with numReturns n: it must yield exactly n values (0: nothing to wait on). */
export interface StaticGeneratorActorMethod<A extends unknown[], T, N extends number> extends GeneratorMethodOptions<A, T> {
  remote(...args: Args<A>): N extends 0 ? undefined : N extends 1 ? ObjectRef<T> : RefsOf<T, N>;
}

/** A method with numReturns 0: it runs for its effects, and a call gives nothing to wait on. */
export interface NoReturnActorMethod<A extends unknown[], R> {
  remote(...args: Args<A>): undefined;
  options(options: ActorMethodOptions & { numReturns?: 1 }): ActorMethod<A, R>;
  options(options: ActorMethodOptions & { numReturns: 0 }): NoReturnActorMethod<A, R>;
  options(options: ActorMethodOptions & { numReturns: number }): MultiReturnActorMethod<A, R>;
}

/** Names of T's methods (its function-valued string keys). */
export type ActorMethodNames<T> = {
  [K in keyof T & string]: T[K] extends (...args: never[]) => unknown ? K : never;
}[keyof T & string];

/** Per-method options of a class: what its static `methodOptions` may hold. */
export type MethodOptionsOf<T> = { readonly [K in ActorMethodNames<T>]?: Readonly<ActorMethodOptions> };

/** The class's static methodOptions, if it has one (what types its handle's methods). */
export type StaticMethodOptions<C> = C extends { readonly methodOptions: infer O } ? O : {};

/**
 * ActorMethod, or MultiReturnActorMethod where the static options give that method numReturns > 1;
 * a generator method is a StreamingActorMethod, or as its numReturns says.
 */
type MethodOf<F, O> = F extends (...args: infer A) => infer R
  ? IsGenerator<R> extends true
    ? GeneratorMethodOf<A, YieldOf<R>, O extends { readonly numReturns: infer N } ? N : 'streaming'>
    : O extends { readonly numReturns: infer N }
      ? N extends 1
        ? ActorMethod<A, R>
        : N extends 0
          ? NoReturnActorMethod<A, R>
          : N extends number
            ? MultiReturnActorMethod<A, R>
            : ActorMethod<A, R>
      : ActorMethod<A, R>
  : never;

/** True for a method returning a generator (not any, not never). */
type IsGenerator<R> = [R] extends [never] ? false : 0 extends 1 & R ? false : [R] extends [Generator<unknown, unknown, never> | AsyncGenerator<unknown, unknown, never>] ? true : false;

type GeneratorMethodOf<A extends unknown[], T, N> = N extends 'dynamic' ? DynamicActorMethod<A, T> : N extends number ? StaticGeneratorActorMethod<A, T, N> : StreamingActorMethod<A, T>;

/**
 * A handle to an actor of class instance type T: one ActorMethod per method of T. `O` is the
 * class's static methodOptions (from remote(Class)): a method with numReturns n > 1 there gives n refs.
 */
export type ActorHandle<T, O = {}> = {
  readonly [K in ActorMethodNames<T>]: MethodOf<T[K], K extends keyof O ? O[K] : undefined>;
} & ActorHandleBase;

export interface ActorHandleBase {
  readonly actorId: ActorID;
  readonly className: string;
}

class ActorMethodImpl {
  constructor(
    private readonly handle: ActorHandleImpl,
    private readonly method: string,
    /** undefined: not given (1, or 'streaming' for a generator method). */
    private readonly numReturns: number | 'streaming' | 'dynamic' | undefined,
    private readonly concurrencyGroup: string | undefined,
  ) {}

  remote(...args: unknown[]): ObjectRef | ObjectRef[] | ObjectRefGenerator | undefined {
    const runtime = currentRuntime();
    const info = this.handle.info;
    if (runtime === undefined) {
      throw new MinirayError(`${info.className}.${this.method}.remote(): miniray is not running (the actor went away with shutdown())`);
    }
    const worker = runtime.coreWorker;
    const numReturns = this.numReturns;
    // generators: a generator method's call streams by default, as a generator task does (in its concurrency group)
    if (numReturns === 'streaming' || (numReturns === undefined && info.generatorMethods?.includes(this.method) === true)) {
      const [end] = worker.submitActorCall(info, this.method, args, 1, this.concurrencyGroup, STREAMING);
      return new ObjectRefGenerator(worker.refFor(end as ObjectIdHex), worker.streams);
    }
    if (numReturns === 'dynamic') return worker.refFor(worker.submitActorCall(info, this.method, args, 1, this.concurrencyGroup, DYNAMIC)[0] as ObjectIdHex);
    const count = numReturns ?? 1;
    // numReturns n of a generator method: it must yield n values; 0 of any method: nothing is kept.
    const returns = count === 0 || (numReturns !== undefined && info.generatorMethods?.includes(this.method) === true) ? { kind: 'static' as const, count } : undefined;
    const ids = worker.submitActorCall(info, this.method, args, count, this.concurrencyGroup, returns);
    if (count === 0) {
      worker.refFor(ids[0] as ObjectIdHex); // its internal return: dropped at once, freed when the call is done
      return undefined;
    }
    if (count === 1) return worker.refFor(ids[0] as ObjectIdHex);
    return ids.map((id) => worker.refFor(id));
  }

  options(options: ActorMethodOptions): ActorMethodImpl {
    const checked = checkMethodOptions(`${this.handle.info.className}.${this.method}.options()`, options);
    return new ActorMethodImpl(this.handle, this.method, checked.numReturns ?? this.numReturns, checked.concurrencyGroup ?? this.concurrencyGroup);
  }
}

export class ActorHandleImpl implements ActorHandleBase {
  readonly actorId: ActorID;
  readonly className: string;
  /** @internal what the handle was built from (and travels as). */
  readonly info: ActorInfo;
  /**
   * @internal Actor lifetimes: a ref to the actor's handles at its owner (non-detached actors), so
   * that handles are counted as refs are (borrowers included), and collected with this handle.
   */
  readonly scopeRef: ObjectRef | undefined;

  /** `scopeRef`: the creator's, counted from the start; other handles make their own. */
  constructor(info: ActorInfo, scopeRef?: ObjectRef) {
    this.info = info;
    this.actorId = new ActorID(info.actorId);
    this.className = info.className;
    this.scopeRef = scopeRef;
    if (scopeRef === undefined && info.owner !== undefined) {
      this.scopeRef = new ObjectRef(new ObjectID(info.actorId), info.owner);
      currentRuntime()?.coreWorker.noteHandleArrived();
    }
    for (const method of info.methodNames) {
      const options = info.methodOptions?.[method];
      Object.defineProperty(this, method, {
        value: new ActorMethodImpl(this, method, options?.numReturns, options?.concurrencyGroup),
        enumerable: false,
      });
    }
  }

  toString(): string {
    return `ActorHandle(${this.className}, ${this.actorId.toHex()})`;
  }
}

addExtension({
  Class: ActorHandleImpl,
  type: ACTOR_HANDLE_TYPE,
  // Shapes: [id, class, methods]; [.., owner | null, methodOptions | null, generatorMethods?] (actors);
  // older generator handles sent [.., generatorMethods] (read below).
  write(handle: ActorHandleImpl): unknown[] {
    const { actorId, className, methodNames, owner, methodOptions, generatorMethods } = handle.info;
    if (handle.scopeRef !== undefined) noteRefMet(handle.scopeRef);
    if (owner === undefined && methodOptions === undefined && generatorMethods === undefined) return [actorId, className, methodNames];
    const shape: unknown[] = [actorId, className, methodNames, owner ?? null, methodOptions ?? null];
    if (generatorMethods !== undefined) shape.push(generatorMethods);
    return shape;
  },
  read(data: unknown[]): ActorHandleImpl {
    const [actorId, className, methodNames] = data as [ActorIdHex, string, string[]];
    const info: { -readonly [K in keyof ActorInfo]: ActorInfo[K] } = { actorId, className, methodNames };
    // A 4th element that is a list is a generator-only handle's generatorMethods.
    const fourth = data[3];
    const generatorMethods = Array.isArray(fourth) ? fourth : data[5];
    if (!Array.isArray(fourth)) {
      const owner = fourth as OwnerAddress | null | undefined;
      const methodOptions = data[4] as Record<string, MethodOptionsSpec> | null | undefined;
      if (owner !== null && owner !== undefined) info.owner = owner;
      if (methodOptions !== null && methodOptions !== undefined) info.methodOptions = methodOptions;
    }
    if (Array.isArray(generatorMethods)) info.generatorMethods = generatorMethods.filter((name): name is string => typeof name === 'string');
    return new ActorHandleImpl(info);
  },
});

/** A method's options, checked: numReturns an integer 0..10,000 (or 'streaming' / 'dynamic'), concurrencyGroup a non-empty string. */
export function checkMethodOptions(where: string, options: unknown): MethodOptionsSpec {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError(`${where} takes an object such as { numReturns: 2 } or { concurrencyGroup: 'io' }`, 'options');
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (key !== 'numReturns' && key !== 'concurrencyGroup') {
      throw new InvalidOptionError(`${where}: unknown option '${key}'; a method's options are numReturns and concurrencyGroup`, key);
    }
  }
  const { numReturns, concurrencyGroup } = o;
  if (numReturns !== undefined && numReturns !== 'streaming' && numReturns !== 'dynamic' && (typeof numReturns !== 'number' || !Number.isInteger(numReturns) || numReturns < 0 || numReturns > 10_000)) {
    throw new InvalidOptionError(`${where}: numReturns must be an integer from 0 to 10000, or 'streaming' / 'dynamic' for a generator method; got ${String(numReturns)}`, 'numReturns');
  }
  if (concurrencyGroup !== undefined && (typeof concurrencyGroup !== 'string' || concurrencyGroup === '')) {
    throw new InvalidOptionError(`${where}: concurrencyGroup must be the non-empty name of one of the actor's concurrencyGroups; got ${String(concurrencyGroup)}`, 'concurrencyGroup');
  }
  const spec: { numReturns?: MethodOptionsSpec['numReturns']; concurrencyGroup?: string } = {};
  if (numReturns !== undefined) spec.numReturns = numReturns;
  if (concurrencyGroup !== undefined) spec.concurrencyGroup = concurrencyGroup;
  return spec;
}

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
export function actorIdOf(handle: unknown): ActorIdHex | undefined {
  try {
    if (!(handle instanceof ActorHandleImpl)) return undefined;
    const info: unknown = handle.info;
    const actorId = (info as { actorId?: unknown } | undefined)?.actorId;
    return typeof actorId === 'string' && actorId !== '' ? (actorId as ActorIdHex) : undefined;
  } catch {
    return undefined;
  }
}
