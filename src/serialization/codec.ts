/**
 * Values travel as msgpackr bytes in its structured-clone mode: Map, Set, Date, RegExp, BigInt,
 * typed arrays, ArrayBuffer, nested objects, shared references and cycles all round-trip.
 * ObjectRefs inside a value stay ObjectRefs (a msgpackr extension), and every ref met while encoding
 * is reported, so the runtime knows which objects a value points to.
 *
 * What cannot travel fails while encoding, in the caller's thread, with a SerializationError that
 * says where in the value it sits: functions, symbols, promises, weak collections, and event
 * emitters (sockets, streams, servers, workers), which msgpackr would otherwise write as `{}`.
 */
import { EventEmitter } from 'node:events';
import { MessagePort } from 'node:worker_threads';
import { Packr, addExtension } from 'msgpackr';
import { SerializationError, type ErrorRecord } from '../errors/index.js';
import { ObjectID } from '../ids/index.js';
import { ObjectRef } from '../object-ref/index.js';

/**
 * msgpack extension type codes miniray uses, all in one place. msgpackr's own codes must not be
 * reused (0x00, 0x42 BigInt, 0x52, 0x62, 0x65, 0x69, 0x70, 0x73, 0x74, 0x78, 0xff in msgpackr 2.x).
 */
export const EXTENSION_TYPES = {
  objectRef: 0x20,
  rejected: 0x21,
  actorHandle: 0x22,
  queue: 0x23,
} as const;
const OBJECT_REF_TYPE = EXTENSION_TYPES.objectRef;
const REJECTED_TYPE = EXTENSION_TYPES.rejected;

/** Why a kind of value cannot be sent to another thread, and what to do instead. */
const rejectedClasses: Array<[Function, string]> = [
  [Promise, 'a Promise cannot travel; await it first, or return an ObjectRef from a task'],
  [WeakMap, 'a WeakMap cannot be copied; use a Map'],
  [WeakSet, 'a WeakSet cannot be copied; use a Set'],
  [WeakRef, 'a WeakRef cannot be copied'],
  [MessagePort, 'a MessagePort cannot be sent inside a value'],
  [SharedArrayBuffer, 'a SharedArrayBuffer is not copied into the object store; pass its contents (e.g. new Uint8Array(sab).slice())'],
  [EventEmitter, 'an EventEmitter (socket, stream, server, worker) is tied to its thread; open it inside the task instead'],
];

// Refs met by the encoder during the current encode() call (encoding is synchronous).
let refsMet: ObjectRef[] | null = null;

addExtension({
  Class: ObjectRef,
  type: OBJECT_REF_TYPE,
  write(ref: ObjectRef): [string, string, string] {
    refsMet?.push(ref);
    return [ref.id.toHex(), ref.owner.nodeId, ref.owner.workerId];
  },
  read([hex, nodeId, workerId]: [string, string, string]): ObjectRef {
    return new ObjectRef(new ObjectID(hex), { nodeId, workerId });
  },
});

for (const [Class, reason] of rejectedClasses) {
  addExtension({
    Class,
    type: REJECTED_TYPE,
    write(): never {
      throw new RejectedValue(reason);
    },
    read(): never {
      throw new SerializationError('received a value that should have been rejected when it was sent');
    },
  });
}

class RejectedValue extends Error {}

const packr = new Packr({
  structuredClone: true,
  writeFunction(): never {
    throw new RejectedValue('a function cannot travel; define it inside the task, or ship it with remote()');
  },
});

// Envelope codec for runtime records (error records): plain data, no structured-clone bookkeeping.
// useBigIntExtension: BigInts beyond 64 bits (e.g. an error's `id` property) round-trip too.
const plainPackr = new Packr({ useRecords: false, mapsAsObjects: true, useBigIntExtension: true });

export interface EncodedValue {
  readonly data: Uint8Array;
  /** Every ObjectRef found anywhere inside the value. */
  readonly refs: readonly ObjectRef[];
}

/**
 * Encodes one value. `what` names it for error messages ("argument 2 of add", "put() value").
 */
export function encodeValue(value: unknown, what: string): EncodedValue {
  const refs: ObjectRef[] = [];
  refsMet = refs;
  try {
    // A view into msgpackr's write buffer, which it never writes over (it moves on to new space):
    // cheap to keep. Channels copy the bytes into their frame; nothing posts the view itself.
    return { data: packr.pack(value), refs };
  } catch (error) {
    throw describeFailure(value, what, error);
  } finally {
    refsMet = null;
  }
}

export function decodeValue(data: Uint8Array): unknown {
  return packr.unpack(data);
}

export function encodeErrorRecord(record: ErrorRecord): Uint8Array {
  return new Uint8Array(plainPackr.pack(record));
}

export function decodeErrorRecord(data: Uint8Array): ErrorRecord {
  return plainPackr.unpack(data) as ErrorRecord;
}

/** Builds the SerializationError for a failed encode, naming the path to the offending part. */
function describeFailure(value: unknown, what: string, error: unknown): SerializationError {
  const found = findUnserializable(value, '', new Set());
  const reason = error instanceof RejectedValue ? error.message : String((error as Error)?.message ?? error);
  const where = found ? `${what}${found.path ? ` at ${found.path}` : ''} is ${found.kind}` : `${what} cannot be serialized`;
  return new SerializationError(`${where}: ${found?.reason ?? reason}`);
}

interface Unserializable {
  path: string;
  kind: string;
  reason: string;
}

/** Walks a value to find the first part that cannot travel (only on the failure path). */
function findUnserializable(value: unknown, path: string, seen: Set<object>): Unserializable | undefined {
  if (typeof value === 'function') {
    return { path, kind: `a function (${value.name || 'anonymous'})`, reason: 'functions cannot travel; define it inside the task, or ship it with remote()' };
  }
  if (typeof value === 'symbol') {
    return { path, kind: `a symbol (${value.toString()})`, reason: 'symbols cannot travel; use a string' };
  }
  if (typeof value !== 'object' || value === null || seen.has(value)) return undefined;
  seen.add(value);
  for (const [Class, reason] of rejectedClasses) {
    if (value instanceof Class) return { path, kind: `a ${Class.name === 'EventEmitter' ? value.constructor.name : Class.name}`, reason };
  }
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return undefined;
  if (value instanceof Map) {
    let i = 0;
    for (const [k, v] of value) {
      const found = findUnserializable(k, `${path}<key ${i}>`, seen) ?? findUnserializable(v, `${path}.get(${JSON.stringify(typeof k === 'string' ? k : i)})`, seen);
      if (found) return found;
      i++;
    }
    return undefined;
  }
  if (value instanceof Set) {
    let i = 0;
    for (const v of value) {
      const found = findUnserializable(v, `${path}<item ${i++}>`, seen);
      if (found) return found;
    }
    return undefined;
  }
  for (const key of Object.keys(value)) {
    const child = Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`;
    const found = findUnserializable((value as Record<string, unknown>)[key], child, seen);
    if (found) return found;
  }
  return undefined;
}
