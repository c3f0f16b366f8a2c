/**
 * Error classes that cross threads (and later the network). A failure travels as an ErrorRecord,
 * a plain object that any serializer carries, and is rebuilt on the other side as an instance of the
 * same class. `instanceof` also works across copies of the package or realms: each class checks a
 * brand (the chain of miniray class names) as well as its prototype.
 */

const BRAND = Symbol.for('miniray.error.classes');

/** What is carried across a thread or network boundary for one error. */
export interface ErrorRecord {
  /** The error's `name` (e.g. "TypeError", "ValidationError", "TaskError"). */
  name: string;
  /** The miniray class to rebuild, when the error is one of ours. */
  minirayClass?: string;
  message: string;
  stack?: string;
  cause?: ErrorRecord;
  /**
   * Own enumerable properties with primitive values or arrays of them (e.g. `code`), which covers
   * every miniray error's fields.
   */
  props?: Record<string, ErrorProp>;
}

/** Base class of every error miniray throws. */
export class MinirayError extends Error {
  static readonly errorName: string = 'MinirayError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    const ctor = new.target as typeof MinirayError;
    this.name = ctor.errorName;
    const chain: string[] = [];
    for (let c: unknown = ctor; typeof c === 'function' && 'errorName' in c; c = Object.getPrototypeOf(c)) {
      chain.push((c as typeof MinirayError).errorName);
    }
    Object.defineProperty(this, BRAND, { value: chain, enumerable: false });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    if (typeof value !== 'object' || value === null) return false;
    const chain = (value as { [BRAND]?: unknown })[BRAND];
    return Array.isArray(chain) && chain.includes(this.errorName);
  }
}

/**
 * A task (or actor method) threw. `cause` is the original error, rebuilt with its name, message,
 * stack (from the worker) and primitive own properties such as `code`.
 */
export class TaskError extends MinirayError {
  static override readonly errorName = 'TaskError';
  readonly functionName: string;
  readonly taskId: string;

  constructor(message: string, fields: { functionName?: string; taskId?: string; cause?: unknown }) {
    super(message, { cause: fields.cause });
    this.functionName = fields.functionName ?? '';
    this.taskId = fields.taskId ?? '';
  }

  /** The stack of the original error, where it was thrown in the worker. */
  get remoteStack(): string | undefined {
    return this.cause instanceof Error ? this.cause.stack : undefined;
  }
}

/** The worker running a task died (process.exit, a fatal error) and the task has no retries left. */
export class WorkerCrashedError extends MinirayError {
  static override readonly errorName: string = 'WorkerCrashedError';
}

/** The worker running a task ran out of memory (its heap limit) and the task has no retries left. */
export class OutOfMemoryError extends WorkerCrashedError {
  static override readonly errorName = 'OutOfMemoryError';
}

/** `get` did not see the object within `timeoutMs`. The object may still arrive later. */
export class GetTimeoutError extends MinirayError {
  static override readonly errorName = 'GetTimeoutError';
}

/** The task was cancelled with `cancel()` before it produced its result. */
export class TaskCancelledError extends MinirayError {
  static override readonly errorName = 'TaskCancelledError';
}

/** The object cannot be found or recreated: never created here, or its owner is gone. */
export class ObjectLostError extends MinirayError {
  static override readonly errorName: string = 'ObjectLostError';
}

/**
 * The object's owner (the node whose task or put() created it) died, so nothing can rebuild it:
 * only an owner keeps an object's lineage. Raised for borrowed refs (refs passed in or returned
 * from a task) when their owner's node dies.
 */
export class OwnerDiedError extends ObjectLostError {
  static override readonly errorName = 'OwnerDiedError';
}

/**
 * Every copy of the object was lost and its owner could not make it again: the task that made it
 * has no retries left (maxRetries), its lineage was dropped (maxLineageBytes), or one of its
 * arguments could not be rebuilt. The message says which.
 */
export class ObjectReconstructionFailedError extends ObjectLostError {
  static override readonly errorName = 'ObjectReconstructionFailedError';
}

/** A value cannot travel between threads (a function, a symbol, a socket, ...). */
export class SerializationError extends MinirayError {
  static override readonly errorName = 'SerializationError';
}

/** The object store has no room for the object. */
export class ObjectStoreFullError extends MinirayError {
  static override readonly errorName = 'ObjectStoreFullError';
}

/** A value (or one binary part of it) that no room made in the store could hold: thrown by put() in the driver and in a worker alike. */
export function largerThanStoreError(length: number, capacityBytes: number): ObjectStoreFullError {
  return new ObjectStoreFullError(`an object of ${length} bytes is larger than the whole object store (${capacityBytes} bytes). Raise objectStoreMemory in init().`);
}

/** An option passed to init(), remote() or .options() is unknown or has a wrong value. */
export class InvalidOptionError extends MinirayError {
  static override readonly errorName = 'InvalidOptionError';
  readonly option: string;

  constructor(message: string, option: string | { cause?: unknown }, options?: { cause?: unknown }) {
    super(message, typeof option === 'string' ? options : option);
    this.option = typeof option === 'string' ? option : '';
  }
}

/** Creating an actor whose name a live actor has: thrown at `.remote()` by the driver and by a worker thread alike. */
export function actorNameTakenError(name: string, namespace: string): InvalidOptionError {
  return new InvalidOptionError(
    `an actor named '${name}' already exists in namespace '${namespace}'; use getActor() to reach it, kill() it first, or choose another name`,
    'name',
  );
}

/**
 * An argument of a miniray call has the wrong kind of value (not an ObjectRef where one is needed, an
 * actor handle that is not one, a malformed ID, duplicate refs in wait()). `argument` names it.
 *
 * It is a TypeError, as JavaScript's own wrong-argument errors are (and as the seed's API promised
 * for `ObjectID.fromHex`), and also a MinirayError: `instanceof MinirayError` holds by the brand
 * every miniray error carries, so one `catch` of MinirayError still catches every miniray error.
 */
export class InvalidArgumentError extends TypeError {
  static readonly errorName = 'InvalidArgumentError';
  readonly argument: string;

  constructor(message: string, argument: string | { cause?: unknown }, options?: { cause?: unknown }) {
    super(message, typeof argument === 'string' ? options : argument);
    this.name = InvalidArgumentError.errorName;
    this.argument = typeof argument === 'string' ? argument : '';
    Object.defineProperty(this, BRAND, { value: [InvalidArgumentError.errorName, MinirayError.errorName], enumerable: false });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    if (typeof value !== 'object' || value === null) return false;
    const chain = (value as { [BRAND]?: unknown })[BRAND];
    return Array.isArray(chain) && chain.includes(InvalidArgumentError.errorName);
  }
}

/**
 * A function given to remote() cannot be shipped as source: it uses variables from the scope it was
 * defined in, which do not exist in a worker.
 */
export class CapturedVariableError extends MinirayError {
  static override readonly errorName = 'CapturedVariableError';
  readonly variables: readonly string[];

  constructor(message: string, variables: readonly string[] | { cause?: unknown }) {
    super(message);
    this.variables = Array.isArray(variables) ? variables : [];
  }
}

/**
 * The actor cannot run the call: it was killed, its worker died and it has no restarts left (or
 * the call has no retries left), or its constructor threw. `cause` says which, when known.
 */
export class ActorDiedError extends MinirayError {
  static override readonly errorName = 'ActorDiedError';
  /** The dead actor's ID (32 hex characters; '' when not known, e.g. a forged handle). */
  readonly actorId: string;
  /** True when the actor ended itself with exitActor() (it is never restarted then). */
  readonly exitedIntentionally: boolean;

  constructor(message: string, fields: { actorId?: string; exitedIntentionally?: boolean; cause?: unknown } = {}) {
    super(message, { cause: fields.cause });
    this.actorId = fields.actorId ?? '';
    this.exitedIntentionally = fields.exitedIntentionally ?? false;
  }
}

/**
 * Thrown by exitActor() to end the actor whose method called it (the executor catches it). Seen by
 * users only when exitActor() is called outside an actor method, as the cause of the TaskError.
 */
export class ActorExitError extends MinirayError {
  static override readonly errorName = 'ActorExitError';
}

/** Whether `thrown` is exitActor()'s signal (by brand, so that it works across copies of the package). */
export function isActorExit(thrown: unknown): boolean {
  try {
    return thrown instanceof ActorExitError;
  } catch {
    return false;
  }
}

/** Queue.get() found the queue empty (with block: false, or when timeoutMs passed). */
export class QueueEmptyError extends MinirayError {
  static override readonly errorName = 'QueueEmptyError';
}

/** Queue.put() found the queue full (with block: false, or when timeoutMs passed). */
export class QueueFullError extends MinirayError {
  static override readonly errorName = 'QueueFullError';
}

/** The node a task or object was on left the cluster (or could not be reached) before it was done. */
export class NodeDiedError extends MinirayError {
  static override readonly errorName = 'NodeDiedError';
}

/**
 * The placement group a task or actor was to run in was removed (removePlacementGroup) before it
 * ran, or while it ran (Ray's TaskPlacementGroupRemoved): create a new group and submit it again.
 */
export class PlacementGroupRemovedError extends MinirayError {
  static override readonly errorName = 'PlacementGroupRemovedError';
}

/**
 * A task's or actor's runtime environment could not be set up on the node that was to run it (as
 * Ray's RuntimeEnvSetupError): its workingDir package could not be fetched or unpacked there.
 */
export class RuntimeEnvSetupError extends MinirayError {
  static override readonly errorName = 'RuntimeEnvSetupError';
}

/** No actor has the name given to getActor() in that namespace. */
export class ActorNotFoundError extends MinirayError {
  static override readonly errorName = 'ActorNotFoundError';
}

/**
 * A short description of any value for an error message: its kind and, when short, what it is
 * (`number 42`, `string "x"`, `bigint 1n`, `object (Map)`, `null`). Never throws, whatever it is
 * given (proxies, hostile getters, revoked proxies), because it runs while reporting another problem.
 */
export function describeValue(value: unknown): string {
  try {
    switch (typeof value) {
      case 'string':
        return `string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
      case 'number':
      case 'boolean':
        return `${typeof value} ${String(value)}`;
      case 'bigint':
        return `bigint ${value}n`;
      case 'symbol':
        return `symbol ${value.description === undefined ? 'Symbol()' : `Symbol(${value.description})`}`;
      case 'undefined':
        return 'undefined';
      case 'function':
        return `function ${value.name === '' ? '(anonymous)' : value.name}`;
      case 'object': {
        if (value === null) return 'null';
        if (Array.isArray(value)) return `an array of length ${value.length}`;
        const name = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
        return typeof name === 'string' && name !== '' ? `an object (${name})` : 'an object';
      }
    }
  } catch {
    // A proxy or getter that throws: the kind is all we can say.
  }
  return `a value of type ${typeof value}`;
}

/**
 * A message, frame or record that came from another thread (later, another node) is not what the
 * protocol allows: `field` names where in it the problem is (e.g. `results[3].values[0]`). Raised
 * by the validators in src/protocol; the receiver treats the sender as broken.
 */
export class ProtocolError extends MinirayError {
  static override readonly errorName = 'ProtocolError';
  readonly field: string;

  constructor(message: string, field: string | { cause?: unknown } = '') {
    super(message, typeof field === 'string' ? undefined : field);
    this.field = typeof field === 'string' ? field : '';
  }
}

/**
 * A connection was refused because its token is not the cluster's. The message says what to do:
 * set MINIRAY_AUTH_TOKEN to the head's token.
 */
export class AuthenticationError extends MinirayError {
  static override readonly errorName = 'AuthenticationError';
}

/**
 * A connection to another process could not be made, or it closed (or was closed for misbehaving)
 * while a request on it was waiting. The message names the peer and why.
 */
export class ConnectionError extends MinirayError {
  static override readonly errorName: string = 'ConnectionError';
}

/**
 * The GCS could not be reached: its connection closed and it did not answer again within
 * gcsReconnectTimeoutMs (the head is down, or was restarted without its Redis), or it never
 * answered at first start. The message names the GCS's address and how long it was tried.
 */
export class GcsUnavailableError extends ConnectionError {
  static override readonly errorName = 'GcsUnavailableError';
}

/**
 * The GCS's store (Redis, with --redis-address) failed a read or write: the message names the
 * Redis address (never its password), the operation and the table, and says what to check.
 */
export class GcsStoreError extends MinirayError {
  static override readonly errorName = 'GcsStoreError';
}

/** A request to another process got no answer within its `timeoutMs`. The handler may still run. */
export class RequestTimeoutError extends MinirayError {
  static override readonly errorName = 'RequestTimeoutError';
}

/** A request was cancelled (its AbortSignal fired) before its answer came. `cause` is the signal's reason. */
export class RequestCancelledError extends MinirayError {
  static override readonly errorName = 'RequestCancelledError';
}

type MinirayErrorClass = { readonly errorName: string; readonly prototype: Error };
const minirayClasses = new Map<string, MinirayErrorClass>(
  [
    MinirayError,
    TaskError,
    WorkerCrashedError,
    OutOfMemoryError,
    GetTimeoutError,
    TaskCancelledError,
    ObjectLostError,
    OwnerDiedError,
    ObjectReconstructionFailedError,
    NodeDiedError,
    SerializationError,
    ObjectStoreFullError,
    InvalidOptionError,
    InvalidArgumentError,
    CapturedVariableError,
    ActorDiedError,
    ActorExitError,
    ActorNotFoundError,
    PlacementGroupRemovedError,
    RuntimeEnvSetupError,
    QueueEmptyError,
    QueueFullError,
    ProtocolError,
    AuthenticationError,
    ConnectionError,
    GcsUnavailableError,
    GcsStoreError,
    RequestTimeoutError,
    RequestCancelledError,
  ].map((c): [string, MinirayErrorClass] => [c.errorName, c]),
);

const builtinErrors = new Map<string, ErrorConstructor>(
  [Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError].map((c) => [c.name, c]),
);

type Primitive = string | number | boolean | null | bigint;
export type ErrorProp = Primitive | readonly Primitive[];
const isPrimitive = (v: unknown): v is Primitive =>
  v === null || ['string', 'number', 'boolean', 'bigint'].includes(typeof v);
const isErrorProp = (v: unknown): v is ErrorProp => isPrimitive(v) || (Array.isArray(v) && v.every(isPrimitive));

/**
 * Turns anything thrown into a record that can cross a boundary. Never throws: user code can throw
 * anything, including a proxy or an error whose getters throw, and a failure here would lose the
 * task's result (the worker could not report it).
 */
export function toErrorRecord(thrown: unknown, depth = 0): ErrorRecord {
  let isError = false;
  try {
    isError = thrown instanceof Error;
  } catch {
    // a proxy whose getPrototypeOf trap throws: not an Error we can read
  }
  if (!isError) {
    if (typeof thrown === 'string') return { name: 'Error', message: thrown };
    let shown: string | undefined;
    try {
      shown = JSON.stringify(thrown); // undefined for symbols and functions
    } catch {
      shown = undefined;
    }
    if (shown === undefined) {
      try {
        shown = String(thrown);
      } catch {
        shown = describeValue(thrown);
      }
    }
    return { name: 'Error', message: `non-Error value thrown: ${shown}` };
  }
  const error = thrown as Error;
  const read = <T>(get: () => T, fallback: T): T => {
    try {
      return get();
    } catch {
      return fallback;
    }
  };
  const name = read(() => String(error.name), 'Error');
  const message = read(() => String(error.message), '(the error\'s message could not be read)');
  const record: ErrorRecord = { name, message };
  const stack = read(() => error.stack, undefined);
  if (typeof stack === 'string') record.stack = stack;
  if (read(() => error instanceof MinirayError, false)) {
    record.minirayClass = read(() => (error.constructor as typeof MinirayError).errorName, undefined);
    if (record.minirayClass === undefined) delete record.minirayClass;
  }
  const props: Record<string, ErrorProp> = {};
  let hasProps = false;
  for (const key of read(() => Object.keys(error), [] as string[])) {
    const value = read(() => (error as unknown as Record<string, unknown>)[key], undefined);
    if (read(() => isErrorProp(value), false) && key !== 'name' && key !== 'message' && key !== 'stack') {
      props[key] = value as ErrorProp;
      hasProps = true;
    }
  }
  if (hasProps) record.props = props;
  const cause = read(() => error.cause, undefined);
  if (cause !== undefined && depth < 8) record.cause = toErrorRecord(cause, depth + 1);
  return record;
}

/** Rebuilds an error from its record, as an instance of its miniray or built-in class when known. */
export function fromErrorRecord(record: ErrorRecord): Error {
  const cause = record.cause ? fromErrorRecord(record.cause) : undefined;
  const props = record.props ?? {};
  let error: Error;
  const minirayClass = record.minirayClass ? minirayClasses.get(record.minirayClass) : undefined;
  if (minirayClass) {
    // Every miniray class takes (message, {cause}) first; its own fields come back from `props`.
    error = Reflect.construct(minirayClass as unknown as Function, [record.message, { cause }]) as Error;
  } else {
    const Builtin = builtinErrors.get(record.name) ?? Error;
    error = new Builtin(record.message, cause === undefined ? undefined : { cause });
    if (error.name !== record.name) {
      Object.defineProperty(error, 'name', { value: record.name, writable: true, configurable: true });
    }
  }
  if (cause === undefined) delete (error as { cause?: unknown }).cause;
  Object.assign(error, props);
  if (record.stack !== undefined) error.stack = record.stack;
  return error;
}

/**
 * What is wrong with a value received as an ErrorRecord (bytes from another thread decode to
 * anything), or undefined when it is one. Causes deeper than `MAX_CAUSE_DEPTH` are refused.
 */
export function errorRecordProblem(value: unknown, depth = 0): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `it is ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}, not a record`;
  const record = value as Record<string, unknown>;
  for (const key of ['name', 'message'] as const) {
    if (typeof record[key] !== 'string') return `its ${key} is ${typeof record[key]}, not a string`;
  }
  for (const key of ['minirayClass', 'stack'] as const) {
    if (record[key] !== undefined && typeof record[key] !== 'string') return `its ${key} is ${typeof record[key]}, not a string`;
  }
  const props = record['props'];
  if (props !== undefined) {
    if (typeof props !== 'object' || props === null || Array.isArray(props)) return 'its props are not a record';
    for (const [key, prop] of Object.entries(props)) if (!isErrorProp(prop)) return `its prop ${JSON.stringify(key)} is not a primitive or an array of them`;
  }
  if (record['cause'] !== undefined) {
    if (depth >= MAX_CAUSE_DEPTH) return `its causes nest deeper than ${MAX_CAUSE_DEPTH}`;
    const problem = errorRecordProblem(record['cause'], depth + 1);
    if (problem !== undefined) return `its cause: ${problem}`;
  }
  return undefined;
}

const MAX_CAUSE_DEPTH = 32;
