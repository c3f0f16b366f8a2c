/** Values and functions on their way between threads (and later nodes). */
export {
  encodeValue,
  decodeValue,
  encodeErrorRecord,
  decodeErrorRecord,
  EXTENSION_TYPES,
  type EncodedValue,
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
