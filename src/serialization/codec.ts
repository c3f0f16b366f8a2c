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
import { MinirayError, ProtocolError, SerializationError, errorRecordProblem, toErrorRecord, type ErrorRecord } from '../errors/index.js';
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
  binary: 0x24,
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

// ---- binary data: inline, or out of band (in shared memory) ------------------------------------

/**
 * Receives a large binary part while a value is encoded (copying it to where it will live, e.g.
 * the shared-memory arena) and returns its index in the value's list of parts.
 */
export type PartSink = (bytes: Uint8Array) => number;

/** Binary values at least this large go out of band when a sink is given. */
export const OUT_OF_BAND_BYTES = 100 * 1024;

const TypedArray = Object.getPrototypeOf(Uint8Array) as abstract new () => ArrayBufferView;
const TYPED_ARRAYS = [
  Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  Float32Array, Float64Array, BigInt64Array, BigUint64Array,
] as const;
const BUFFER_CODE = 11;
const ARRAY_BUFFER_CODE = 12;
const DATA_VIEW_CODE = 13;
type TypedArrayConstructor = (typeof TYPED_ARRAYS)[number];

let sink: PartSink | null = null;
let parts: readonly Uint8Array[] | null = null;

function binaryCode(value: ArrayBufferView | ArrayBuffer): number {
  if (value instanceof ArrayBuffer) return ARRAY_BUFFER_CODE;
  if (value instanceof DataView) return DATA_VIEW_CODE;
  if (Buffer.isBuffer(value)) return BUFFER_CODE;
  const code = TYPED_ARRAYS.indexOf(value.constructor as TypedArrayConstructor);
  if (code < 0) throw new RejectedValue(`a ${value.constructor.name} cannot be copied`);
  return code;
}

/** Rebuilds a binary value of kind `code` over `bytes` (aligned, owned or shared). */
function binaryOf(code: number, bytes: Uint8Array): unknown {
  const { buffer, byteOffset, byteLength } = bytes;
  if (code === BUFFER_CODE) return Buffer.from(buffer, byteOffset, byteLength);
  if (code === ARRAY_BUFFER_CODE) {
    // An ArrayBuffer is memory of its own, so it cannot be a view: it is copied out.
    return buffer instanceof ArrayBuffer && byteOffset === 0 && byteLength === buffer.byteLength
      ? buffer
      : Uint8Array.prototype.slice.call(bytes).buffer;
  }
  if (code === DATA_VIEW_CODE) return new DataView(buffer, byteOffset, byteLength);
  const Ctor = TYPED_ARRAYS[code];
  if (Ctor === undefined) throw new SerializationError(`unknown binary kind ${code}`);
  return new Ctor(buffer as ArrayBuffer, byteOffset, byteLength / Ctor.BYTES_PER_ELEMENT);
}

type AllocateForWrite = (size: number) => { target: Uint8Array; position: number; targetView: DataView };

/** Writes bytes as msgpack bin (what msgpackr itself does for a Buffer). */
function writeBin(bytes: Uint8Array, allocateForWrite: AllocateForWrite): void {
  const length = bytes.byteLength;
  const header = length < 0x100 ? 2 : length < 0x10000 ? 3 : 5;
  const { target, position, targetView } = allocateForWrite(header + length);
  if (header === 2) {
    target[position] = 0xc4;
    target[position + 1] = length;
  } else if (header === 3) {
    target[position] = 0xc5;
    targetView.setUint16(position + 1, length);
  } else {
    target[position] = 0xc6;
    targetView.setUint32(position + 1, length);
  }
  target.set(bytes, position + header);
}

for (const Class of [TypedArray, ArrayBuffer, DataView] as Function[]) {
  addExtension(<Parameters<typeof addExtension>[0]>(<unknown>{
    Class,
    type: EXTENSION_TYPES.binary,
    // Payload: [0, kind, ...bytes] inline, or [1, kind, part index (4 bytes)] out of band.
    pack(this: Packr, value: ArrayBufferView | ArrayBuffer, allocateForWrite: AllocateForWrite): Uint8Array | undefined {
      const bytes = value instanceof ArrayBuffer ? new Uint8Array(value) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
      // msgpackr extensions apply to every Packr: other codecs (frames, records) keep plain msgpack
      // bin, which they read back as views without a copy.
      if (this !== packr) {
        writeBin(bytes, allocateForWrite);
        return undefined;
      }
      const code = binaryCode(value);
      if (sink !== null && bytes.byteLength >= OUT_OF_BAND_BYTES) {
        const index = sink(bytes);
        return Uint8Array.of(1, code, index >>> 24, (index >>> 16) & 0xff, (index >>> 8) & 0xff, index & 0xff);
      }
      const payload = new Uint8Array(bytes.byteLength + 2);
      payload[1] = code;
      payload.set(bytes, 2);
      return payload;
    },
    unpack(payload: Uint8Array): unknown {
      const code = payload[1] as number;
      if (payload[0] === 1) {
        const index = ((payload[2] as number) << 24) | ((payload[3] as number) << 16) | ((payload[4] as number) << 8) | (payload[5] as number);
        let part = parts?.[index];
        if (part === undefined) throw new SerializationError(`the value refers to binary part ${index}, which did not come with it`);
        // Copied bytes (from a worker process) may sit at any offset: align them for the element type.
        if (part.byteOffset % 8 !== 0) part = Uint8Array.prototype.slice.call(part);
        return binaryOf(code, part);
      }
      // Inline bytes sit at any offset of the message: copy them out, aligned for the element type.
      return binaryOf(code, Uint8Array.prototype.slice.call(payload, 2));
    },
  }));
}

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
 * With `partSink`, binary data of OUT_OF_BAND_BYTES or more is handed to it instead of being
 * copied into the encoding. Errors the sink throws (e.g. a full store) pass through unchanged.
 */
export function encodeValue(value: unknown, what: string, partSink?: PartSink): EncodedValue {
  const refs: ObjectRef[] = [];
  refsMet = refs;
  sink = partSink ?? null;
  try {
    // A view into msgpackr's write buffer, which it never writes over (it moves on to new space):
    // cheap to keep. Channels copy the bytes into their frame; nothing posts the view itself.
    const data = packr.pack(value);
    // In structured-clone mode msgpackr keeps the last value in its reference map until the next
    // pack, which would keep that value (and the refs in it) alive: pack a tiny value to let go.
    if (typeof value === 'object' && value !== null) packr.pack(null);
    return { data, refs };
  } catch (error) {
    if (error instanceof MinirayError && !(error instanceof SerializationError)) throw error;
    throw describeFailure(value, what, error);
  } finally {
    refsMet = null;
    sink = null;
  }
}

/**
 * Decodes a value. `valueParts` are its out-of-band binary parts (views into shared memory):
 * typed arrays and Buffers among them come back as views of them, not copies. (The caller knows
 * when such views die by the buffer the parts are over: see CoreWorker.decodeValues.)
 */
export function decodeValue(data: Uint8Array, valueParts?: readonly Uint8Array[]): unknown {
  if (valueParts === undefined || valueParts.length === 0) return packr.unpack(data);
  parts = valueParts;
  try {
    return packr.unpack(data);
  } finally {
    parts = null;
  }
}

export function encodeErrorRecord(record: ErrorRecord): Uint8Array {
  return new Uint8Array(plainPackr.pack(record));
}

/** Anything thrown, encoded as an ErrorRecord (what a failed object holds). */
export function encodeError(thrown: unknown): Uint8Array {
  return encodeErrorRecord(toErrorRecord(thrown));
}

/** The record in `data`; bytes that hold none (from a broken worker) give a ProtocolError's record. */
export function decodeErrorRecord(data: Uint8Array): ErrorRecord {
  let problem: string | undefined;
  try {
    const record: unknown = plainPackr.unpack(data);
    problem = errorRecordProblem(record);
    if (problem === undefined) return record as ErrorRecord;
  } catch (error) {
    problem = `it is not msgpack (${(error as Error).message})`;
  }
  return toErrorRecord(new ProtocolError(`an error record sent by a worker could not be read: ${problem}`, 'error'));
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
