/**
 * The validators of what a node sends a worker, and of a worker's boot data. A node that sends
 * something malformed is broken: the worker says what was wrong and exits, and the node handles
 * that as a crash (see worker-runtime/main.ts).
 */
import { errorRecordProblem, type ProtocolError } from '../errors/index.js';
import {
  aFunctionDescriptor,
  bool,
  optionalResources,
  optionalRuntimeEnv,
  optionalJob,
  aBytes,
  anIndex,
  aPart,
  aString,
  bytes,
  fail,
  fields,
  id,
  int,
  list,
  oneOf,
  optionalId,
  optionalList,
  optionalStr,
  partLists,
  str,
  validate,
  messageCheck,
  nothing,
  within,
  Violation,
  type Fields,
  optionalGroups,
  optionalMethodOptions,
  refOwner,
} from './check.js';
import { aReturnMode } from './check.js';
import type { GeneratorAnswer, ActorInfo, ClusterAnswer, ClusterNode, ExecuteTask, NodeToWorker, ObjectPayload, PollEnd, PreloadModule, WorkerAnswers, WorkerBootData, WorkerMethod } from './index.js';

const GENERATOR_ANSWERS: readonly GeneratorAnswer[] = ['item', 'end', 'failed'];

type Check<K extends NodeToWorker['type']> = (o: Fields) => Extract<NodeToWorker, { type: K }>;

const anExecuteTask = (value: unknown): ExecuteTask => {
  const o = fields(value);
  int(o['seq'], 'seq', 1);
  id(o['taskId'], 'taskId');
  // A function task and an actor creation run functionId (a creation's is its class); an actor call runs a method.
  const actorId = optionalId(o['actorId'], 'actorId');
  if (actorId !== undefined && o['method'] !== undefined) {
    str(o['method'], 'method');
    if (o['functionId'] !== undefined) fail('functionId', 'absent: an actor call (with actorId and method) runs its actor\'s method, not a function', o['functionId']);
  } else {
    str(o['functionId'], 'functionId');
  }
  str(o['name'], 'name');
  bytes(o['args'], 'args');
  const positions = list(o['refArgPositions'], 'refArgPositions', anIndex);
  const values = list(o['refArgValues'], 'refArgValues', aBytes);
  if (values.length !== positions.length) fail('refArgValues', `one value per ref position (${positions.length})`, values);
  const parts = optionalList(o['refArgParts'], 'refArgParts', partLists);
  if (parts !== undefined && parts.length !== values.length) fail('refArgParts', `one list per ref value (${values.length})`, parts);
  if (o['lease'] !== undefined) int(o['lease'], 'lease', 1);
  int(o['numReturns'], 'numReturns');
  if (actorId !== undefined) {
    if (o['maxConcurrency'] !== undefined) int(o['maxConcurrency'], 'maxConcurrency', 1);
    // Concurrency groups (actors part).
    optionalGroups(o['concurrencyGroups'], 'concurrencyGroups');
    optionalStr(o['concurrencyGroup'], 'concurrencyGroup');
    if (o['progressCell'] !== undefined) {
      const cell = fields(o['progressCell'], 'progressCell');
      int(cell['block'], 'progressCell.block');
      int(cell['index'], 'progressCell.index');
      if (cell['attached'] !== undefined) int(cell['attached'], 'progressCell.attached');
    }
  }
  if (o['ownerNode'] !== undefined) id(o['ownerNode'], 'ownerNode');
  if (o['numRestarts'] !== undefined) int(o['numRestarts'], 'numRestarts'); // env (runtime context)
  // helper pg: what it holds, and its GPU IDs
  optionalResources(o['resources'], 'resources');
  if (o['gpuIds'] !== undefined) list(o['gpuIds'], 'gpuIds', (item) => int(item, 'gpuIds[]'));
  if (o['captureChildTasks'] !== undefined && o['captureChildTasks'] !== true) fail('captureChildTasks', 'true or absent', o['captureChildTasks']);
  if (o['returns'] !== undefined) aReturnMode(o['returns'], 'returns'); // generators
  optionalList(o['retryExceptionNames'], 'retryExceptionNames', aString);
  optionalJob(o['job'], 'job'); // env
  return o as unknown as ExecuteTask;
};

const aPayload = (value: unknown): ObjectPayload => {
  const o = fields(value);
  id(o['id'], 'id');
  const state = oneOf<ObjectPayload['state']>(o['state'], 'state', ['ready', 'failed', 'lost']);
  switch (state) {
    case 'ready':
      bytes(o['data'], 'data');
      optionalList(o['parts'], 'parts', aPart);
      if (o['lease'] !== undefined) int(o['lease'], 'lease', 1);
      break;
    case 'failed':
      bytes(o['data'], 'data');
      break;
    case 'lost':
      break;
    default:
      state satisfies never;
  }
  return o as unknown as ObjectPayload;
};

const aPollEnd = (value: unknown): PollEnd => {
  const o = fields(value);
  if (o['pollEnd'] !== true) fail('pollEnd', 'true', o['pollEnd']);
  return o as unknown as PollEnd;
};

const anActorInfo = (value: unknown): ActorInfo | null => {
  if (value === null) return null;
  try {
    const info = fields(value);
    id(info['actorId'], 'actorId');
    str(info['className'], 'className');
    list(info['methodNames'], 'methodNames', aString);
    // Actor lifetimes and per-method options (actors part).
    if (info['owner'] !== undefined) refOwner(info['owner'], 'owner');
    optionalMethodOptions(info['methodOptions'], 'methodOptions');
    optionalList(info['generatorMethods'], 'generatorMethods', aString); // generators
    return info as unknown as ActorInfo;
  } catch (error) {
    throw within(error, 'value');
  }
};

const aSlab = (value: unknown): { index: number; attached: number } => {
  const o = fields(value);
  int(o['index'], 'index');
  int(o['attached'], 'attached');
  return o as unknown as { index: number; attached: number };
};

const aClusterNode = (value: unknown): ClusterNode => {
  const o = fields(value);
  id(o['nodeId'], 'nodeId');
  bool(o['alive'], 'alive');
  str(o['address'], 'address');
  optionalResources(o['resources'], 'resources') ?? fail('resources', 'a resource map', o['resources']);
  bool(o['isDriver'], 'isDriver');
  return o as unknown as ClusterNode;
};

function aClusterAnswer(value: unknown): ClusterAnswer {
  const o = fields(value, 'value');
  try {
    // A GCS answer of the state API is checked by the caller's GcsClient, as any GCS answer.
    if (Object.hasOwn(o, 'gcs')) return o as unknown as ClusterAnswer;
    if (o['nodes'] !== undefined) list(o['nodes'], 'nodes', aClusterNode);
    else if (o['resources'] !== undefined) optionalResources(o['resources'], 'resources');
    else bytes(o['error'], 'error');
  } catch (error) {
    throw within(error, 'value');
  }
  return o as unknown as ClusterAnswer;
}

const checks: { readonly [K in NodeToWorker['type']]: Check<K> } = {
  execute: (o) => (list(o['functions'], 'functions', aFunctionDescriptor), list(o['tasks'], 'tasks', anExecuteTask), o['jobId'] === undefined || str(o['jobId'], 'jobId'), o['namespace'] === undefined || str(o['namespace'], 'namespace'), nothing(o)),
  // The envelope only: the value is checked by the asker's RequestTable with WORKER_ANSWER_CHECKS of
  // its method, which only the pending entry knows.
  reply: (o) => (int(o['id'], 'id', 1), nothing(o)),
  response: (o) => {
    int(o['id'], 'id', 1);
    if (o['ok'] === false) {
      const problem = errorRecordProblem(o['error']);
      if (problem !== undefined) throw new Violation('error', `must be an error record: ${problem}`);
    } else if (o['ok'] !== true) {
      fail('ok', 'a boolean', o['ok']);
    }
    return nothing(o);
  },
  cancel: (o) => (list(o['seqs'], 'seqs', anIndex), nothing(o)),
  destroyActor: (o) => (id(o['actorId'], 'actorId'), o['seq'] === undefined || int(o['seq'], 'seq', 1), nothing(o)),
  dropSlabs: (o) => (list(o['indices'], 'indices', anIndex), nothing(o)),
  collect: nothing,
  slabs: (o) => (list(o['slabs'], 'slabs', aSlab), nothing(o)),
  // generators
  generatorAck: (o) => (int(o['seq'], 'seq', 1), int(o['consumed'], 'consumed'), nothing(o)),
};
const aMessage = messageCheck<NodeToWorker>(checks);

/**
 * The validator of each method's answers (the `value` of its reply and response messages), run by
 * the worker's RequestTable on every answer before the caller sees it.
 */
export const WORKER_ANSWER_CHECKS: { readonly [M in WorkerMethod]: (value: unknown) => WorkerAnswers[M] } = {
  get: (value) => (typeof value === 'object' && value !== null && 'pollEnd' in value ? aPollEnd(value) : aPayload(value)),
  lookupActor: anActorInfo,
  clusterInfo: aClusterAnswer,
  generatorNext: (value) => oneOf(value, 'value', GENERATOR_ANSWERS),
};

/** A message the node sent, typed, or the ProtocolError that says which field is wrong and how. */
export function parseNodeToWorker(value: unknown): NodeToWorker | ProtocolError {
  return validate('a message from the node', value, aMessage);
}

const aPreloadModule = (value: unknown): PreloadModule => {
  const o = fields(value);
  const kind = oneOf<PreloadModule['kind']>(o['kind'], 'kind', ['import', 'tsx']);
  if (kind === 'import') str(o['specifier'], 'specifier');
  else str(o['apiUrl'], 'apiUrl');
  return o as unknown as PreloadModule;
};

function aBootData(value: unknown): WorkerBootData {
  const o = fields(value);
  id(o['nodeId'], 'nodeId');
  id(o['workerId'], 'workerId');
  const progress = o['progress'];
  if (!(progress instanceof SharedArrayBuffer) || progress.byteLength < 4) fail('progress', 'a SharedArrayBuffer of at least 4 bytes', progress);
  const answers = o['answers'];
  if (answers !== undefined && (!(answers instanceof SharedArrayBuffer) || answers.byteLength < 4)) fail('answers', 'a SharedArrayBuffer of at least 4 bytes', answers);
  list(o['preload'], 'preload', aPreloadModule);
  // env
  optionalRuntimeEnv(o['runtimeEnv'], 'runtimeEnv');
  optionalStr(o['jobId'], 'jobId');
  optionalStr(o['namespace'], 'namespace');
  if (o['gcsReconnectTimeoutMs'] !== undefined) int(o['gcsReconnectTimeoutMs'], 'gcsReconnectTimeoutMs');
  if (o['objectStoreBytes'] !== undefined) int(o['objectStoreBytes'], 'objectStoreBytes');
  return o as unknown as WorkerBootData;
}

/** A worker's boot data, typed, or the ProtocolError naming what is wrong with it. */
export function parseWorkerBootData(value: unknown): WorkerBootData | ProtocolError {
  return validate("a worker's boot data", value, aBootData);
}
