/**
 * Values travel as msgpackr bytes in its structured-clone mode: Map, Set, Date, RegExp, BigInt,
 * typed arrays, ArrayBuffer, errors, nested objects, shared references and cycles all round-trip.
 * ObjectRefs inside a value stay ObjectRefs (a msgpackr extension), and every ref met while encoding
 * is reported, so the runtime knows which objects a value points to. A self-contained function
 * travels as its source (the same free-variable check as remote()), compiled again where it arrives.
 *
 * What cannot travel fails while encoding, in the caller's thread, with a SerializationError that
 * names its class and says where in the value it sits (carriable.ts decides what can travel):
 * built-in objects whose state msgpackr cannot see (a Response, a generator, a Map iterator, ...),
 * which it would otherwise write as `{}`; functions that use variables of their scope; symbols;
 * and values nested more than MAX_DEPTH levels deep.
 */
import { Packr, addExtension } from 'msgpackr';
import { MinirayError, ProtocolError, SerializationError, errorRecordProblem, toErrorRecord, type ErrorRecord } from '../errors/index.js';
import { ObjectID } from '../ids/index.js';
import { ObjectRef } from '../object-ref/index.js';
import { MAX_DEPTH, RejectedValue, depthCheck, rejectionOf, shipFunction, walkValue, type Rejection } from './carriable.js';
import { compileShipped } from './function-descriptor.js';

export { MAX_DEPTH } from './carriable.js';

/**
 * msgpack extension type codes miniray uses, all in one place. msgpackr's own codes must not be
 * reused (0x00-0x0c typed arrays, 0x10, 0x11, 0x42 BigInt, 0x52, 0x62, 0x65, 0x69, 0x70, 0x72, 0x73,
 * 0x74, 0x78, 0xff in msgpackr 2.x).
 */
export const EXTENSION_TYPES = {
  objectRef: 0x20,
  rejected: 0x21,
  actorHandle: 0x22,
  queue: 0x23,
  binary: 0x24,
  function: 0x25,
  remoteFunction: 0x26,
  actorClass: 0x27,
  placementGroup: 0x28,
} as const;
const OBJECT_REF_TYPE = EXTENSION_TYPES.objectRef;

// True while encodeValue runs: the checks below are for values, not for runtime frames and records,
// which other Packrs write (msgpackr extensions apply to every Packr).
let encoding = false;

// Registered first so that msgpackr asks it last among ours (addExtension prepends), but before its
// own Date, Set, Error and RegExp: every object no other extension of ours takes is judged here.
let pendingRejection: Rejection | undefined;
class NotCarried {
  static [Symbol.hasInstance](value: unknown): boolean {
    if (!encoding || typeof value !== 'object' || value === null) return false;
    pendingRejection = rejectionOf(value);
    return pendingRejection !== undefined;
  }
}
addExtension({
  Class: NotCarried,
  type: EXTENSION_TYPES.rejected,
  write(): never {
    throw new RejectedValue(pendingRejection?.reason ?? 'this value cannot travel');
  },
  read(): never {
    throw new SerializationError('received a value that should have been rejected when it was sent');
  },
});

// A Map subclass would be written as its fields ({}): write it as the Map it is (no type code: a
// plain Map goes on the wire).
addExtension({ Class: Map, write: (map: Map<unknown, unknown>) => (map.constructor === Map ? map : new Map(map)) } as Parameters<typeof addExtension>[0]);

// A function value travels as its source, as remote() ships a self-contained function.
addExtension({
  Class: Function,
  type: EXTENSION_TYPES.function,
  write(fn: Function): readonly [string, string] {
    return shipFunction(fn);
  },
  read(shipped: unknown): Function {
    if (!Array.isArray(shipped) || typeof shipped[0] !== 'string' || typeof shipped[1] !== 'string') {
      throw new SerializationError('received a malformed function value');
    }
    return compileShipped(shipped[1], shipped[0]);
  },
});

// Refs met by the encoder during the current encode() call (encoding is synchronous).
let refsMet: ObjectRef[] | null = null;

/**
 * Actor lifetimes: an actor handle being encoded counts as a ref nested in the value (to its
 * actor's handles), so the value keeps the actor alive as a nested ObjectRef keeps its object.
 */
export function noteRefMet(ref: ObjectRef): void {
  refsMet?.push(ref);
}

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
  // A subclass arrives as the typed array class it extends.
  for (let proto = Object.getPrototypeOf(value) as object | null; proto !== null; proto = Object.getPrototypeOf(proto) as object | null) {
    const code = TYPED_ARRAYS.indexOf((proto as { constructor: TypedArrayConstructor }).constructor);
    if (code >= 0) return code;
  }
  throw new RejectedValue(`a ${value.constructor.name} cannot be copied`);
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
  // Called for every object msgpackr writes as fields. Objects whose constructor is a class went
  // through NotCarried already; this catches the rest of the non-plain ones (built-in iterators
  // inherit `constructor` from Object), without a second walk.
  useRecords(object: object): boolean {
    if (encoding && (object as { constructor?: unknown }).constructor === Object && Object.getPrototypeOf(object) !== Object.prototype) {
      const rejection = rejectionOf(object);
      if (rejection !== undefined) throw new RejectedValue(rejection.reason);
    }
    return true;
  },
  // Only functions of another realm get here (the Function extension takes the others).
  writeFunction(): never {
    throw new RejectedValue('a function of another realm cannot travel; define it inside the task, or ship it with remote()');
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
 * `wrapperLevels`: containers the runtime put around the user's values (1 for an argument list),
 * which do not count against MAX_DEPTH.
 */
export function encodeValue(value: unknown, what: string, partSink?: PartSink, wrapperLevels = 0): EncodedValue {
  const refs: ObjectRef[] = [];
  refsMet = refs;
  sink = partSink ?? null;
  encoding = true;
  let data: Uint8Array;
  try {
    // A view into msgpackr's write buffer, which it never writes over (it moves on to new space):
    // cheap to keep. Channels copy the bytes into their frame; nothing posts the view itself.
    data = packr.pack(value);
  } catch (error) {
    if (error instanceof MinirayError && !(error instanceof SerializationError)) throw error;
    throw describeFailure(value, what, error);
  } finally {
    encoding = false;
    refsMet = null;
    sink = null;
    // In structured-clone mode msgpackr keeps the last value in its reference map until the next
    // pack, which would keep that value (and the refs in it) alive: pack a tiny value to let go.
    if (typeof value === 'object' && value !== null) packr.pack(null);
  }
  // Every level of nesting takes at least a byte, so only a value encoded in more than MAX_DEPTH
  // bytes can be too deep: small values (most task traffic) are never walked a second time.
  if (data.length > MAX_DEPTH) checkDepth(value, what, data.length, wrapperLevels);
  return { data, refs };
}

/** Throws SerializationError if `value` nests more than MAX_DEPTH levels. */
function checkDepth(value: unknown, what: string, encodedBytes: number, wrapperLevels: number): void {
  let result;
  const maxDepth = MAX_DEPTH + wrapperLevels;
  try {
    // Without a visited set first (cheap); a shared reference or a cycle makes it run over budget
    // or look too deep, and then the exact walk decides.
    if (depthCheck(value, maxDepth, encodedBytes) === 'fine') return;
    result = walkValue(value, { inspect: false, maxDepth });
  } catch (error) {
    throw new SerializationError(`${what} could not be inspected after encoding: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }
  if (result.kind === 'tooDeep') throw tooDeep(what, result.path);
}

function tooDeep(what: string, path: string): SerializationError {
  return new SerializationError(
    `${what} is nested more than ${MAX_DEPTH} levels deep${path ? ` (at ${path})` : ''}: values may nest at most ` +
      `${MAX_DEPTH} levels of arrays, objects, Maps, Sets and errors. Flatten it (e.g. a list of nodes with parent indices), ` +
      'or put() its parts separately and nest their refs',
  );
}

/**
 * Decodes a value. `valueParts` are its out-of-band binary parts (views into shared memory):
 * typed arrays and Buffers among them come back as views of them, not copies. (The caller knows
 * when such views die by the buffer the parts are over: see CoreWorker.decodeValues.)
 */
export function decodeValue(data: Uint8Array, valueParts?: readonly Uint8Array[]): unknown {
  parts = valueParts === undefined || valueParts.length === 0 ? null : valueParts;
  try {
    return packr.unpack(data);
  } catch (error) {
    // Bytes that nest deeper than the encoder allows can only be forged: say so, typed.
    if (error instanceof RangeError && /call stack/i.test(error.message)) {
      throw new SerializationError(`the value is nested too deeply to decode (values may nest at most ${MAX_DEPTH} levels)`, { cause: error });
    }
    throw error;
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

/**
 * Builds the SerializationError for a failed encode, naming the path to the offending part (a
 * walk only on the failure path). Never throws itself: hostile getters and proxies may.
 */
function describeFailure(value: unknown, what: string, error: unknown): SerializationError {
  const reason = error instanceof RejectedValue ? error.message : reasonOf(error);
  const cause = error instanceof RejectedValue ? undefined : { cause: error };
  let found;
  try {
    found = walkValue(value, { inspect: true });
  } catch (walkError) {
    return new SerializationError(`${what} cannot be serialized: ${reason}`, cause ?? { cause: walkError });
  }
  if (found.kind === 'rejected') {
    return new SerializationError(`${what}${found.path ? ` at ${found.path}` : ''} is ${found.what}: ${found.reason}`, cause);
  }
  if (found.kind === 'tooDeep') return tooDeep(what, found.path);
  if (error instanceof RangeError && found.kind === 'fine') {
    // Under MAX_DEPTH, but the stack ran out first (deep recursion in the caller, or deep Sets).
    return new SerializationError(
      `${what} is nested ${found.maxDepth} levels deep, more than this thread's stack can encode here ` +
        `(values may nest at most ${MAX_DEPTH} levels; the caller's own recursion leaves less)`,
      cause,
    );
  }
  return new SerializationError(`${what} cannot be serialized: ${reason}`, cause);
}

/**
 * What went wrong, in words, for anything that was thrown: a getter or proxy trap in the user's
 * value may throw anything, even an object whose own `message` getter throws.
 */
function reasonOf(thrown: unknown): string {
  try {
    if (thrown instanceof Error) return `reading it threw ${thrown.name}: ${thrown.message}`;
    return `reading it threw ${String(thrown)}`;
  } catch {
    return 'reading it threw something that cannot be described';
  }
}
