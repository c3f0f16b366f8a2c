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
 */
import type { ProtocolError } from '../errors/index.js';
import { aFunctionDescriptor, anId, bytes, fail, fields, id, int, list, optionalList, str, validate, type Fields } from '../protocol/check.js';
import { parseWorkerToNode } from '../protocol/index.js';
import type { ActorSpec, RemoteValue, TaskSpec } from '../protocol/index.js';
import type { FunctionDescriptor } from '../serialization/index.js';
import { RawBytes } from '../net/index.js';

export interface ExecuteTask {
  readonly functions: readonly FunctionDescriptor[];
  readonly spec: TaskSpec;
  readonly args: readonly RemoteValue[];
}
export interface CreateActor {
  readonly functions: readonly FunctionDescriptor[];
  readonly spec: ActorSpec;
  readonly args: readonly RemoteValue[];
}
export interface KillActor {
  readonly actorId: string;
  readonly noRestart: boolean;
}
export interface CancelTask {
  readonly returnId: string;
  readonly force: boolean;
}
export interface ObjectId {
  readonly id: string;
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

export const parse = {
  executeTask: (value: unknown): ExecuteTask | ProtocolError =>
    validate('executeTask', value, (v) => {
      const o = fields(v);
      withArgs(o);
      specOf<TaskSpec>('submit', o);
      return o as unknown as ExecuteTask;
    }),
  createActor: (value: unknown): CreateActor | ProtocolError =>
    validate('createActor', value, (v) => {
      const o = fields(v);
      withArgs(o);
      specOf<ActorSpec>('createActor', o);
      return o as unknown as CreateActor;
    }),
  killActor: (value: unknown): KillActor | ProtocolError =>
    validate('killActor', value, (v) => {
      const o = fields(v);
      id(o['actorId'], 'actorId');
      if (typeof o['noRestart'] !== 'boolean') fail('noRestart', 'true or false', o['noRestart']);
      return o as unknown as KillActor;
    }),
  cancelTask: (value: unknown): CancelTask | ProtocolError =>
    validate('cancelTask', value, (v) => {
      const o = fields(v);
      id(o['returnId'], 'returnId');
      if (typeof o['force'] !== 'boolean') fail('force', 'true or false', o['force']);
      return o as unknown as CancelTask;
    }),
  objectId: (value: unknown): ObjectId | ProtocolError =>
    validate('object request', value, (v) => {
      const o = fields(v);
      id(o['id'], 'id');
      return o as unknown as ObjectId;
    }),
  readChunk: (value: unknown): ReadChunk | ProtocolError =>
    validate('readChunk', value, (v) => {
      const o = fields(v);
      int(o['pullId'], 'pullId', 1);
      int(o['part'], 'part');
      int(o['offset'], 'offset');
      int(o['length'], 'length', 1);
      return o as unknown as ReadChunk;
    }),
  pullId: (value: unknown): PullId | ProtocolError =>
    validate('endPull', value, (v) => {
      const o = fields(v);
      int(o['pullId'], 'pullId', 1);
      return o as unknown as PullId;
    }),
  freeObjects: (value: unknown): FreeObjects | ProtocolError =>
    validate('freeObjects', value, (v) => {
      const o = fields(v);
      str(o['owner'], 'owner');
      list(o['ids'], 'ids', anId);
      return o as unknown as FreeObjects;
    }),
  ids: (value: unknown): Ids | ProtocolError =>
    validate('borrow', value, (v) => {
      const o = fields(v);
      list(o['ids'], 'ids', anId);
      return o as unknown as Ids;
    }),
};

/** What answers from other nodes must look like (they are as untrusted as requests). */
export const answers = {
  /** A task's return values, or a spillback: the node cannot run it (it has not the resources). */
  executed: (value: unknown): readonly RemoteValue[] | { readonly spillback: string } => {
    const checked = validate('executeTask answer', value, (v) => {
      if (!Array.isArray(v)) return { spillback: str(fields(v)['spillback'], 'spillback') };
      return list(v, '', aRemoteValue);
    });
    if (checked instanceof Error) throw checked;
    return checked;
  },
  value: (value: unknown): RemoteValue => {
    const checked = validate('getObject answer', value, aRemoteValue);
    if (checked instanceof Error) throw checked;
    return checked;
  },
  pull: (value: unknown): PullStarted | RemoteValue => {
    const checked = validate('pullObject answer', value, (v) => {
      const o = fields(v);
      if (o['pullId'] === undefined) return aRemoteValue(v);
      int(o['pullId'], 'pullId', 1);
      bytes(o['data'], 'data');
      list(o['sizes'], 'sizes', (size) => int(size, ''));
      return o as unknown as PullStarted;
    });
    if (checked instanceof Error) throw checked;
    return checked;
  },
  /** A chunk comes as raw bytes (RawBytes, from a socket) or, when small, as a Uint8Array. */
  chunk: (value: unknown, length: number): RawBytes | Uint8Array => {
    if (!(value instanceof RawBytes || value instanceof Uint8Array) || value.byteLength !== length) {
      throw validate('readChunk answer', value, () => fail('', `${length} bytes`, value)) as Error;
    }
    return value;
  },
};
