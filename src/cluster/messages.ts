/**
 * What nodes ask of each other, and a validator per method: every body from another node is
 * `unknown` until its validator passed (the Router calls it before the handler).
 *
 *   executeTask  (request)  run a task or actor call the caller owns; answers its return values
 *   createActor  (notify)   create an actor the caller placed here
 *   killActor    (notify)
 *   cancelTask   (notify)   cancel a task sent with executeTask
 *   getObject    (request)  the owner answers an object's value once it exists (inline or where)
 *   pullObject   (request)  a holder leases an object's bytes for the caller to read in chunks
 *   readChunk    (request)  one chunk of one part of a leased object
 *   endPull      (notify)   the lease can go
 *   freeObjects  (notify)   the owner freed objects the receiver kept for it
 *   borrow / unborrow (notify)  the caller holds (no longer holds) refs to objects the receiver owns
 *   addCopies / dropCopies (notify)  the caller has (no longer has) copies of objects the receiver owns
 *   ownerDied    (notify)   the worker of the caller's that owned these objects ended: the receiver's copies fail
 *   taskLogs     (notify)   output lines of tasks the receiver owns that ran on the caller: written to its stdout
 *   generatorItem (notify)  a value yielded by a streaming task the receiver owns that runs on the caller
 *   generatorAck  (notify)  the owner has read `consumed` items of that stream (for its backpressure)
 */
import type { ProtocolError } from '../errors/index.js';
import type { ActorIdHex } from '../ids/index.js';
import { aFunctionDescriptor, anId, bool, bytes, fail, fields, id, int, list, oneOf, optionalId, optionalList, str, validate, type Fields } from '../protocol/check.js';
import type { ForwardedLogLine } from '../node/index.js';
import { parseWorkerToNode } from '../protocol/index.js';
import type { ActorSpec, RemoteValue, TaskSpec } from '../protocol/index.js';
import type { FunctionDescriptor } from '../serialization/index.js';
import { RawBytes } from '../net/index.js';

export interface ExecuteTask {
  readonly functions: readonly FunctionDescriptor[];
  readonly spec: TaskSpec;
  readonly args: readonly RemoteValue[];
  /** The owner's retries of it so far: the attempt its events are recorded under (absent from older nodes: 0). */
  readonly attempt?: number;
  /** Its owner sampled its events out under load (src/state/events.ts): this node records none of them either. */
  readonly untraced?: true;
}
export interface CreateActor {
  readonly functions: readonly FunctionDescriptor[];
  readonly spec: ActorSpec;
  readonly args: readonly RemoteValue[];
}
export interface KillActor {
  readonly actorId: ActorIdHex;
  readonly noRestart: boolean;
  /** Its owner found no handle left (actor lifetimes), so its callers are told that, not kill(). */
  readonly outOfScope?: true;
  /** With outOfScope: rather, the worker that owned it ended; what its callers are told. */
  readonly ownerDied?: string;
}
export interface CancelTask {
  readonly returnId: string;
  readonly force: boolean;
  /** The tasks it submitted too (env; absent: false). */
  readonly recursive?: boolean;
}
export interface ObjectId {
  readonly id: string;
  /**
   * getObject only: the node the asker was told holds the object and could not read it from. The
   * owner then rebuilds the object (lineage) or names another copy before it answers.
   */
  readonly lostAt?: string;
}
export interface PullStarted {
  readonly pullId: number;
  readonly data: Uint8Array;
  readonly sizes: readonly number[];
}
export interface ReadChunk {
  readonly pullId: number;
  readonly part: number;
  readonly offset: number;
  readonly length: number;
}
export interface PullId {
  readonly pullId: number;
}
export interface FreeObjects {
  readonly owner: string;
  readonly ids: readonly string[];
}
export interface Ids {
  readonly ids: readonly string[];
}
/** Objects owned by a worker of the caller's node that ended, each with the message its readers get. */
export interface OwnerDied {
  readonly failed: readonly { readonly id: string; readonly message: string }[];
}
export interface TaskLogs {
  readonly lines: readonly ForwardedLogLine[];
}

// generators
export interface GeneratorItem {
  readonly generatorId: string;
  readonly index: number;
  /** Its ID is the item's (generatorItemId(generatorId, index)). */
  readonly value: RemoteValue;
}
export interface GeneratorAck {
  readonly generatorId: string;
  readonly consumed: number;
}

const STREAMS: readonly ForwardedLogLine['stream'][] = ['stdout', 'stderr'];
const aForwardedLogLine = (value: unknown): ForwardedLogLine => {
  const o = fields(value);
  oneOf(o['stream'], 'stream', STREAMS);
  str(o['name'], 'name');
  id(o['workerId'], 'workerId');
  str(o['text'], 'text');
  return o as unknown as ForwardedLogLine;
};

export const aRemoteValue = (value: unknown): RemoteValue => {
  const o = fields(value);
  id(o['id'], 'id');
  optionalList(o['nested'], 'nested', anId);
  switch (o['state']) {
    case 'ready':
      bytes(o['data'], 'data');
      optionalList(o['parts'], 'parts', (part) => bytes(part, ''));
      break;
    case 'located':
      id(o['location'], 'location');
      int(o['size'], 'size');
      break;
    case 'failed':
      bytes(o['data'], 'data');
      break;
    case 'lost':
      break;
    default:
      fail('state', "'ready', 'located', 'failed' or 'lost'", o['state']);
  }
  return o as unknown as RemoteValue;
};

/**
 * Task and actor specs are checked by the node's own validators (the worker-to-node ones), so
 * that a spec from another node meets the same rules as one from a worker.
 */
function specOf<T>(type: 'submit' | 'createActor', o: Fields): T {
  const message = type === 'submit' ? { type, functions: [], tasks: [o['spec']] } : { type, functions: [], spec: o['spec'] };
  const parsed = parseWorkerToNode(message);
  if (parsed instanceof Error) fail('spec', `a valid spec (${parsed.message})`, o['spec']);
  return o['spec'] as T;
}

const withArgs = (o: Fields): void => {
  list(o['functions'], 'functions', aFunctionDescriptor);
  list(o['args'], 'args', aRemoteValue);
};

/** The validator of a body: `check` reads its fields (failing on the first wrong one), and the body comes back typed. */
function body<T>(what: string, check: (o: Fields) => void): (value: unknown) => T | ProtocolError {
  return (value) =>
    validate(what, value, (v) => {
      const o = fields(v);
      check(o);
      return o as unknown as T;
    });
}

function aFailedObject(value: unknown): { id: string; message: string } {
  const o = fields(value);
  anId(o['id']);
  str(o['message'], 'message');
  return o as unknown as { id: string; message: string };
}

export const parse = {
  executeTask: body<ExecuteTask>('executeTask', (o) => {
    withArgs(o);
    specOf<TaskSpec>('submit', o);
    if (o['attempt'] !== undefined) int(o['attempt'], 'attempt');
    if (o['untraced'] !== undefined && o['untraced'] !== true) fail('untraced', 'true when present', o['untraced']);
  }),
  createActor: body<CreateActor>('createActor', (o) => {
    withArgs(o);
    specOf<ActorSpec>('createActor', o);
  }),
  killActor: body<KillActor>('killActor', (o) => {
    id(o['actorId'], 'actorId');
    bool(o['noRestart'], 'noRestart');
    if (o['outOfScope'] !== undefined && o['outOfScope'] !== true) fail('outOfScope', 'true when present', o['outOfScope']);
    if (o['ownerDied'] !== undefined) str(o['ownerDied'], 'ownerDied');
  }),
  ownerDied: body<OwnerDied>('ownerDied', (o) => list(o['failed'], 'failed', aFailedObject)),
  cancelTask: body<CancelTask>('cancelTask', (o) => {
    id(o['returnId'], 'returnId');
    bool(o['force'], 'force');
    if (o['recursive'] !== undefined) bool(o['recursive'], 'recursive');
  }),
  objectId: body<ObjectId>('object request', (o) => {
    id(o['id'], 'id');
    optionalId(o['lostAt'], 'lostAt');
  }),
  readChunk: body<ReadChunk>('readChunk', (o) => {
    int(o['pullId'], 'pullId', 1);
    int(o['part'], 'part');
    int(o['offset'], 'offset');
    int(o['length'], 'length', 1);
  }),
  pullId: body<PullId>('endPull', (o) => int(o['pullId'], 'pullId', 1)),
  freeObjects: body<FreeObjects>('freeObjects', (o) => {
    str(o['owner'], 'owner');
    list(o['ids'], 'ids', anId);
  }),
  ids: body<Ids>('borrow', (o) => list(o['ids'], 'ids', anId)),
  taskLogs: body<TaskLogs>('taskLogs', (o) => list(o['lines'], 'lines', aForwardedLogLine)),
  // generators
  generatorItem: body<GeneratorItem>('generatorItem', (o) => {
    id(o['generatorId'], 'generatorId');
    int(o['index'], 'index');
    aRemoteValue(o['value']);
  }),
  generatorAck: body<GeneratorAck>('generatorAck', (o) => {
    id(o['generatorId'], 'generatorId');
    int(o['consumed'], 'consumed');
  }),
};

/** The check of an answer: it is the answer, typed, or the ProtocolError thrown at its caller. */
function answer<T>(what: string, value: unknown, check: (value: unknown) => T): T {
  const checked = validate(what, value, check);
  if (checked instanceof Error) throw checked;
  return checked;
}

/** What answers from other nodes must look like (they are as untrusted as requests). */
export const answers = {
  /** A task's return values, or a spillback: the node cannot run it (it has not the resources). */
  executed: (value: unknown): readonly RemoteValue[] | { readonly spillback: string } =>
    answer('executeTask answer', value, (v) => (Array.isArray(v) ? list(v, '', aRemoteValue) : { spillback: str(fields(v)['spillback'], 'spillback') })),
  value: (value: unknown): RemoteValue => answer('getObject answer', value, aRemoteValue),
  pull: (value: unknown): PullStarted | RemoteValue =>
    answer('pullObject answer', value, (v) => {
      const o = fields(v);
      if (o['pullId'] === undefined) return aRemoteValue(v);
      int(o['pullId'], 'pullId', 1);
      bytes(o['data'], 'data');
      list(o['sizes'], 'sizes', (size) => int(size, ''));
      return o as unknown as PullStarted;
    }),
  /** A chunk comes as raw bytes (RawBytes, from a socket) or, when small, as a Uint8Array. */
  chunk: (value: unknown, length: number): RawBytes | Uint8Array => {
    if (!(value instanceof RawBytes || value instanceof Uint8Array) || value.byteLength !== length) {
      throw validate('readChunk answer', value, () => fail('', `${length} bytes`, value)) as Error;
    }
    return value;
  },
};
