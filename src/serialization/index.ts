/** Values and functions on their way between threads (and later nodes). */
export {
  encodeValue,
  decodeValue,
  encodeErrorRecord,
  encodeError,
  decodeErrorRecord,
  EXTENSION_TYPES,
  OUT_OF_BAND_BYTES,
  MAX_DEPTH,
  noteRefMet,
  type EncodedValue,
  type PartSink,
} from './codec.js';
export {
  describeFunction,
  findFreeVariables,
  compileSource,
  callerOf,
  hashId,
  type FunctionDescriptor,
  type CallSite,
} from './function-descriptor.js';
