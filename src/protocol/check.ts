/**
 * The building blocks of the message validators (worker-to-node.ts, node-to-worker.ts). What
 * arrives from another thread, process or (later) node is `unknown`: each validator checks the
 * fields its receiver reads and returns the same object, typed, or fails naming the field.
 *
 * Hand-written rather than a schema library: the node decodes batches of thousands of results per
 * millisecond, and these checks are a few typeof tests per field with no allocation on the happy
 * path. A failure throws a Violation (a plain object, no stack to capture); each level it passes
 * through adds its part of the path, so a path string is built only when something is wrong.
 */
import { ProtocolError } from '../errors/index.js';
import type { FunctionDescriptor } from '../serialization/index.js';
import type { OwnerAddress, OwnerAddressHex } from '../object-ref/index.js';
import type { JobInfo, MethodOptionsSpec, Part, ResourceMap, ReturnMode, RuntimeEnvSpec, SchedulingStrategy } from './index.js';
import type { ProfileSpan } from '../state/types.js';

/** A failed check: where (relative to the value being checked) and what was wrong. */
export class Violation {
  /** The `type` of the message it is in, once known. */
  messageType: string | undefined;

  constructor(
    public path: string,
    readonly problem: string,
  ) {}
}

export type Fields = Record<string, unknown>;

/** How a value is named in a message: its kind, and its value when short. */
export function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  switch (typeof value) {
    case 'number':
    case 'bigint':
    case 'boolean':
      return `${typeof value} ${String(value)}`;
    case 'string':
      return value.length <= 40 ? `string ${JSON.stringify(value)}` : `a string of ${value.length} characters`;
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
  }
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value instanceof Uint8Array) return `${value.constructor.name} of ${value.byteLength} bytes`;
  if (value instanceof SharedArrayBuffer) return `SharedArrayBuffer of ${value.byteLength} bytes`;
  if (value instanceof ArrayBuffer) return `ArrayBuffer of ${value.byteLength} bytes`;
  const name = (Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null)?.constructor?.name;
  return name && name !== 'Object' ? `a ${name}` : 'an object';
}

export function fail(path: string, expected: string, got: unknown): never {
  throw new Violation(path, `must be ${expected}, got ${describe(got)}`);
}

/** Adds `prefix` in front of the path of a Violation passing through (anything else passes as is). */
export function within(error: unknown, prefix: string): unknown {
  if (error instanceof Violation) {
    error.path = error.path === '' ? prefix : error.path.startsWith('[') ? prefix + error.path : `${prefix}.${error.path}`;
  }
  return error;
}

/**
 * Runs `check` on an untrusted value: its result, or the ProtocolError naming what was wrong.
 * `what` names the value in the message ("a message from a worker").
 */
export function validate<T>(what: string, value: unknown, check: (value: unknown) => T): T | ProtocolError {
  try {
    return check(value);
  } catch (error) {
    if (!(error instanceof Violation)) throw error;
    const field = error.path;
    const which = error.messageType === undefined ? what : `${what} (type '${error.messageType}')`;
    return new ProtocolError(`${which} is malformed: ${field === '' ? 'it' : field} ${error.problem}`, field);
  }
}

/**
 * A validator for a union of messages tagged by `type`, from one check per type: the type is looked
 * up, its check runs, and a Violation inside it is marked with the message's type.
 */
export function messageCheck<M extends { readonly type: string }>(checks: { readonly [K in M['type']]: (o: Fields) => Extract<M, { type: K }> }): (value: unknown) => M {
  const byType = new Map<string, (o: Fields) => M>(Object.entries(checks) as [string, (o: Fields) => M][]);
  const types = [...byType.keys()].join(', ');
  return (value) => {
    const o = fields(value);
    const type = o['type'];
    const check = typeof type === 'string' ? byType.get(type) : undefined;
    if (check === undefined) fail('type', `a message type (${types})`, type);
    try {
      return check(o);
    } catch (error) {
      if (error instanceof Violation) error.messageType = type as string;
      throw error;
    }
  };
}

/** The check of a message whose fields need no more than its type: the fields, typed. */
export const nothing = <T>(o: Fields): T => o as unknown as T;

// ---- fields -----------------------------------------------------------------------------------
// Each takes the field's value and its name: callers read fields as `o['seq']`, a named property
// load that stays fast (a load with a variable key costs several times more on the hot path).

/** A plain object (not null, not an array): the fields of a message or a record in it. */
export function fields(value: unknown, path = ''): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || ArrayBuffer.isView(value)) fail(path, 'an object', value);
  return value as Fields;
}

export function int(value: unknown, path: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) fail(path, `an integer >= ${min}`, value);
  return value;
}

/** A finite number >= 0 (CPU amounts, durations). */
export function amount(value: unknown, path: string): number {
  if (typeof value !== 'number' || !(value >= 0) || value === Infinity) fail(path, 'a finite number >= 0', value);
  return value;
}

export function str(value: unknown, path: string): string {
  if (typeof value !== 'string') fail(path, 'a string', value);
  return value;
}

export function optionalStr(value: unknown, path: string): string | undefined {
  if (value !== undefined && typeof value !== 'string') fail(path, 'a string or absent', value);
  return value;
}

export function bool(value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') fail(path, 'a boolean', value);
  return value;
}

export function bytes(value: unknown, path: string): Uint8Array {
  if (!(value instanceof Uint8Array)) fail(path, 'bytes (a Uint8Array)', value);
  return value;
}

export function oneOf<T extends string>(value: unknown, path: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) fail(path, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);
  return value as T;
}

/**
 * An ID as every table keys it: a string of 32 characters (the hex of 16 bytes). Its characters are
 * not checked: an ID is only ever a Map key here, and reading the characters of every ID in a batch
 * (decoded as slices of one string) costs more than the rest of the batch's checks.
 *
 * `H` is the kind of ID the field holds (`id<NodeIdHex>(o['nodeId'], 'nodeId')`): checked text
 * takes its brand here, and a message's check, which returns the message itself, brands all its
 * IDs at once by its type (src/ids).
 */
export function isId<H extends string = string>(value: unknown): value is H {
  return typeof value === 'string' && value.length === 32;
}

export function id<H extends string = string>(value: unknown, path: string): H {
  if (!isId<H>(value)) fail(path, 'an ID (32 hex characters)', value);
  return value;
}

export function optionalId<H extends string = string>(value: unknown, path: string): H | undefined {
  if (value !== undefined && !isId<H>(value)) fail(path, 'an ID (32 hex characters) or absent', value);
  return value;
}

/** An array whose every item passes `each` (a Violation inside names the item's index). */
export function list<T>(value: unknown, path: string, each: (item: unknown) => T): readonly T[] {
  if (!Array.isArray(value)) fail(path, 'an array', value);
  let i = 0;
  try {
    for (; i < value.length; i++) each(value[i]);
  } catch (error) {
    throw within(error, `${path}[${i}]`);
  }
  return value as readonly T[];
}

export function optionalList<T>(value: unknown, path: string, each: (item: unknown) => T): readonly T[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) fail(path, 'an array or absent', value);
  return list(value, path, each);
}

// ---- item checks, for list() ------------------------------------------------------------------

export const anId = (value: unknown): string => {
  if (!isId(value)) fail('', 'an ID (32 hex characters)', value);
  return value;
};

export const aString = (value: unknown): string => {
  if (typeof value !== 'string') fail('', 'a string', value);
  return value;
};

export const anIndex = (value: unknown): number => {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) fail('', 'an integer >= 0', value);
  return value;
};

export const aBytes = (value: unknown): Uint8Array => {
  if (!(value instanceof Uint8Array)) fail('', 'bytes (a Uint8Array)', value);
  return value;
};

/** A list whose items are lists of `each` (per-value parts, per-value nested refs). */
export function listsOf<T>(each: (item: unknown) => T): (value: unknown) => readonly T[] {
  return (value) => list(value, '', each);
}

// ---- shapes both directions carry ------------------------------------------------------------

/** Where a value's out-of-band part is: an arena block, an attachment of the frame, or bytes. */
export const aPart = (value: unknown): Part => {
  const o = fields(value);
  if (o['attached'] !== undefined) {
    int(o['attached'], 'attached');
    return o as unknown as Part;
  }
  if (o['bytes'] !== undefined) {
    bytes(o['bytes'], 'bytes');
    return o as unknown as Part;
  }
  if (o['slab'] !== undefined) {
    int(o['slab'], 'slab');
    int(o['offset'], 'offset');
    int(o['length'], 'length');
    return o as unknown as Part;
  }
  throw new Violation('', 'must be a part ({ slab, offset, length }, { attached } or { bytes })');
};

export const partLists = listsOf(aPart);
export const idLists = listsOf(anId);

export const aFunctionDescriptor = (value: unknown): FunctionDescriptor => {
  const o = fields(value);
  const kind = oneOf<FunctionDescriptor['kind']>(o['kind'], 'kind', ['source', 'module']);
  str(o['id'], 'id');
  str(o['name'], 'name');
  switch (kind) {
    case 'source':
      str(o['source'], 'source');
      break;
    case 'module':
      str(o['moduleUrl'], 'moduleUrl');
      str(o['callsite'], 'callsite');
      str(o['where'], 'where');
      break;
    default:
      kind satisfies never;
  }
  return o as unknown as FunctionDescriptor;
};

/** The owner of a spec: the IDs of its node and worker (the CoreWorker that submitted it). */
export function owner(value: unknown, path: string): OwnerAddressHex {
  try {
    const address = fields(value);
    id(address['nodeId'], 'nodeId');
    id(address['workerId'], 'workerId');
    return address as unknown as OwnerAddressHex;
  } catch (error) {
    throw within(error, path);
  }
}

/**
 * An owner as a ref carries it (OwnerAddress: strings, unchecked): an actor's, which a handle
 * counts itself at, and whose worker another node may not know (its workerId is then '').
 */
export function refOwner(value: unknown, path: string): OwnerAddress {
  try {
    const address = fields(value);
    str(address['nodeId'], 'nodeId');
    str(address['workerId'], 'workerId');
    return address as unknown as OwnerAddress;
  } catch (error) {
    throw within(error, path);
  }
}

/** A resource map: finite amounts >= 0 by name. */
export function optionalResources(value: unknown, path: string): ResourceMap | undefined {
  if (value === undefined) return undefined;
  const o = fields(value, path);
  for (const key in o) amount(o[key], `${path}.${key}`);
  return o as ResourceMap;
}

/** A job as specs carry it (env): its ID and namespace, strings. */
export function optionalJob(value: unknown, path: string): JobInfo | undefined {
  if (value === undefined) return undefined;
  const o = fields(value, path);
  str(o['jobId'], `${path}.jobId`);
  str(o['namespace'], `${path}.namespace`);
  for (const key in o) if (key !== 'jobId' && key !== 'namespace') fail(`${path}.${key}`, 'absent (a job has jobId and namespace)', o[key]);
  return o as unknown as JobInfo;
}

/** A resolved runtime environment (env): string envVars, an absolute workingDir. */
export function optionalRuntimeEnv(value: unknown, path: string): RuntimeEnvSpec | undefined {
  if (value === undefined) return undefined;
  const o = fields(value, path);
  for (const key in o) if (key !== 'envVars' && key !== 'workingDir' && key !== 'excludes') fail(`${path}.${key}`, 'absent (a runtime environment has envVars, workingDir and excludes)', o[key]);
  if (o['envVars'] !== undefined) {
    const vars = fields(o['envVars'], `${path}.envVars`);
    for (const key in vars) str(vars[key], `${path}.envVars.${key}`);
  }
  if (o['excludes'] !== undefined) list(o['excludes'], `${path}.excludes`, (item) => str(item, ''));
  // A cluster's specs name the package of a workingDir (node/working-dir.ts) instead of the driver's path.
  if (o['workingDir'] !== undefined) {
    const dir = str(o['workingDir'], `${path}.workingDir`);
    if (!dir.startsWith('/') && !/^gcs:\/\/_miniray_pkg_[0-9a-f]{64}\.tar\.gz$/.test(dir)) fail(`${path}.workingDir`, 'an absolute path or a package URI', o['workingDir']);
  }
  return o as RuntimeEnvSpec;
}

export function optionalStrategy(value: unknown, path: string): SchedulingStrategy | undefined {
  if (value === undefined || value === 'DEFAULT' || value === 'SPREAD') return value;
  if (typeof value === 'string') fail(path, "'DEFAULT', 'SPREAD' or { nodeId, soft }", value);
  const o = fields(value, path);
  id(o['nodeId'], `${path}.nodeId`);
  bool(o['soft'], `${path}.soft`);
  return o as unknown as SchedulingStrategy;
}

// Concurrency groups and per-method options (actors part).

/** Concurrency groups: calls at once (an integer >= 1) by non-empty group name. */
export function optionalGroups(value: unknown, path: string): Readonly<Record<string, number>> | undefined {
  if (value === undefined) return undefined;
  const o = fields(value, path);
  for (const key in o) {
    if (key === '') fail(path, 'group names that are not empty', value);
    int(o[key], `${path}.${key}`, 1);
  }
  return o as Readonly<Record<string, number>>;
}

/** Per-method options by method name: { numReturns?: integer >= 0, concurrencyGroup?: string }. */
export function optionalMethodOptions(value: unknown, path: string): Readonly<Record<string, MethodOptionsSpec>> | undefined {
  if (value === undefined) return undefined;
  const o = fields(value, path);
  for (const key in o) {
    const m = fields(o[key], `${path}.${key}`);
    const numReturns = m['numReturns'];
    if (numReturns !== undefined && numReturns !== 'streaming' && numReturns !== 'dynamic') int(numReturns, `${path}.${key}.numReturns`);
    optionalStr(m['concurrencyGroup'], `${path}.${key}.concurrencyGroup`);
  }
  return o as Readonly<Record<string, MethodOptionsSpec>>;
}

/**
 * A profile() span (task events): its name, its times (epoch milliseconds) and string extra data.
 * One check for both places a span crosses: a worker's result to its node, and a node's task
 * events to the GCS.
 */
export function aProfileSpan(value: unknown): ProfileSpan {
  const o = fields(value);
  str(o['name'], 'name');
  amount(o['startMs'], 'startMs');
  amount(o['endMs'], 'endMs');
  if (o['extraData'] !== undefined) {
    const extra = fields(o['extraData'], 'extraData');
    for (const key in extra) str(extra[key], `extraData.${key}`);
  }
  return o as unknown as ProfileSpan;
}

// generators
const RETURN_KINDS = ['streaming', 'dynamic', 'static'] as const;

/** How a generator's values are returned (TaskSpec.returns, ExecuteTask.returns). */
export function aReturnMode(value: unknown, path: string): ReturnMode {
  const o = fields(value, path);
  const kind = oneOf(o['kind'], `${path}.kind`, RETURN_KINDS);
  if (kind === 'streaming' && o['backpressure'] !== undefined) int(o['backpressure'], `${path}.backpressure`, 1);
  if (kind === 'static') int(o['count'], `${path}.count`);
  if (kind === 'dynamic' && o['retryThrown'] !== undefined && o['retryThrown'] !== true) fail(`${path}.retryThrown`, 'true or absent', o['retryThrown']);
  return o as unknown as ReturnMode;
}
