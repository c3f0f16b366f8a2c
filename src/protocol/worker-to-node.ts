/**
 * The validator of what a worker sends its node (and, later, what a node receives over TCP). It
 * checks shape only: every field the node reads has the type it expects. What a message points at
 * (a seq the worker was given, an attachment of the frame, a lease it holds, an ID that is new) only
 * the node can tell, and it checks that itself (node/worker-messages.ts, node/delivery.ts).
 */
import type { ProtocolError } from '../errors/index.js';
import {
  aProfileSpan,
  aFunctionDescriptor,
  aBytes,
  anId,
  anIndex,
  aPart,
  aString,
  amount,
  bool,
  bytes,
  fail,
  fields,
  id,
  idLists,
  int,
  list,
  oneOf,
  optionalId,
  optionalList,
  optionalStr,
  optionalResources,
  optionalStrategy,
  optionalRuntimeEnv,
  optionalJob,
  owner,
  partLists,
  str,
  validate,
  messageCheck,
  nothing,
  within,
  type Fields,
  optionalGroups,
  optionalMethodOptions,
} from './check.js';
import { aReturnMode } from './check.js';
import { PLACEMENT_GROUP_GCS_METHODS, STATE_GCS_METHODS, type ActorSpec, type ClusterQuery, type Isolation, type NewObject, type TaskResult, type TaskSpec, type WorkerLogLine, type WorkerMethod, type WorkerToNode } from './index.js';

type Check<K extends WorkerToNode['type']> = (o: Fields) => Extract<WorkerToNode, { type: K }>;

const aResult = (value: unknown): TaskResult => {
  const o = fields(value);
  int(o['seq'], 'seq');
  // A switch rather than oneOf(): this runs once per result, thousands of times per frame.
  const outcome = o['outcome'] as TaskResult['outcome'];
  switch (outcome) {
    case 'ok': {
      const values = list(o['values'], 'values', aBytes);
      // One entry per value when present: the node reads parts[i] and nested[i] for value i.
      const parts = optionalList(o['parts'], 'parts', partLists);
      if (parts !== undefined && parts.length !== values.length) fail('parts', `one list per value (${values.length})`, parts);
      const nested = optionalList(o['nested'], 'nested', idLists);
      if (nested !== undefined && nested.length !== values.length) fail('nested', `one list per value (${values.length})`, nested);
      amount(o['us'], 'us');
      if (o['startMs'] !== undefined) amount(o['startMs'], 'startMs');
      if (o['spans'] !== undefined) list(o['spans'], 'spans', aProfileSpan);
      break;
    }
    case 'error':
      bytes(o['error'], 'error');
      bool(o['userError'], 'userError');
      if (o['exitActor'] !== undefined) bool(o['exitActor'], 'exitActor'); // exitActor() (actors part)
      amount(o['us'], 'us');
      if (o['startMs'] !== undefined) amount(o['startMs'], 'startMs');
      if (o['spans'] !== undefined) list(o['spans'], 'spans', aProfileSpan);
      break;
    case 'cancelled':
      break;
    default:
      outcome satisfies never;
      fail('outcome', "one of 'ok', 'error', 'cancelled'", outcome);
  }
  return o as unknown as TaskResult;
};


const STREAMS: readonly WorkerLogLine['stream'][] = ['stdout', 'stderr'];

const aLogLine = (value: unknown): WorkerLogLine => {
  const o = fields(value);
  oneOf(o['stream'], 'stream', STREAMS);
  amount(o['timeMs'], 'timeMs');
  str(o['name'], 'name');
  str(o['text'], 'text');
  optionalId(o['taskId'], 'taskId');
  optionalId(o['actorId'], 'actorId');
  optionalId(o['ownerNode'], 'ownerNode');
  return o as unknown as WorkerLogLine;
};

const aNewObject = (value: unknown): NewObject => {
  const o = fields(value);
  id(o['id'], 'id');
  bytes(o['data'], 'data');
  optionalList(o['parts'], 'parts', aPart);
  optionalList(o['nested'], 'nested', anId);
  if (o['failed'] !== undefined && (o['failed'] !== true || o['parts'] !== undefined)) fail('failed', 'true or absent (and a failed object has no parts)', o['failed']);
  return o as unknown as NewObject;
};

/** Fields a task spec and an actor spec share: the encoded arguments and the refs among them. */
function argumentsOf(o: Fields): void {
  bytes(o['args'], 'args');
  const positions = list(o['refArgPositions'], 'refArgPositions', anIndex);
  const dependencies = list(o['dependencies'], 'dependencies', anId);
  // The worker puts dependency i's value at position i.
  if (positions.length !== dependencies.length) fail('refArgPositions', `one position per dependency (${dependencies.length})`, positions);
  optionalList(o['nestedRefs'], 'nestedRefs', anId);
}

/** Retries and restarts: a count, or -1 for no limit. */
const retries = (value: unknown, path: string): number => int(value, path, -1);

const aTaskSpec = (value: unknown): TaskSpec => {
  const o = fields(value);
  id(o['taskId'], 'taskId');
  // A function task has functionId and no actor fields; an actor call has actorId and method, no functionId.
  if (optionalId(o['actorId'], 'actorId') === undefined) {
    str(o['functionId'], 'functionId');
    if (o['method'] !== undefined) fail('method', 'absent: a task that is not an actor call (no actorId) has no method', o['method']);
  } else {
    str(o['method'], 'method');
    if (o['functionId'] !== undefined) fail('functionId', 'absent: an actor call (with actorId) runs its actor\'s method, not a function', o['functionId']);
  }
  str(o['name'], 'name');
  argumentsOf(o);
  const returns = list(o['returnIds'], 'returnIds', anId);
  if (returns.length === 0) fail('returnIds', 'at least one ID', returns);
  amount(o['numCpus'], 'numCpus');
  optionalResources(o['resources'], 'resources');
  optionalStrategy(o['strategy'], 'strategy');
  if (o['captureChildTasks'] !== undefined && o['captureChildTasks'] !== true) fail('captureChildTasks', 'true or absent', o['captureChildTasks']);
  retries(o['maxRetries'], 'maxRetries');
  bool(o['retryExceptions'], 'retryExceptions');
  optionalList(o['retryExceptionNames'], 'retryExceptionNames', aString);
  owner(o['owner'], 'owner');
  optionalStr(o['concurrencyGroup'], 'concurrencyGroup'); // concurrency groups (actors part)
  // runtime environments and cancel (env)
  optionalRuntimeEnv(o['runtimeEnv'], 'runtimeEnv');
  optionalId(o['parentTaskId'], 'parentTaskId');
  optionalJob(o['job'], 'job');
  if (o['returns'] !== undefined) aReturnMode(o['returns'], 'returns'); // generators
  return o as unknown as TaskSpec;
};

const ISOLATIONS: readonly Isolation[] = ['thread', 'shared', 'process'];
const CLUSTER_QUERIES = ['nodes', 'clusterResources', 'availableResources'] as const;

/** One of CLUSTER_QUERIES, or a GcsQuery of the state API (a read of the GCS, by name). */
function aClusterQuery(value: unknown): ClusterQuery {
  if (typeof value === 'string') return oneOf(value, 'query', CLUSTER_QUERIES);
  const o = fields(value, 'query');
  oneOf(o['gcs'], 'query.gcs', [...STATE_GCS_METHODS, ...PLACEMENT_GROUP_GCS_METHODS]);
  if (o['timeoutMs'] !== undefined) int(o['timeoutMs'], 'query.timeoutMs', 1);
  return o as unknown as ClusterQuery;
}

const anActorSpec = (value: unknown): ActorSpec => {
  const o = fields(value);
  id(o['actorId'], 'actorId');
  str(o['classId'], 'classId');
  str(o['className'], 'className');
  list(o['methodNames'], 'methodNames', aString);
  argumentsOf(o);
  optionalStr(o['name'], 'name');
  str(o['namespace'], 'namespace');
  retries(o['maxRestarts'], 'maxRestarts');
  retries(o['maxTaskRetries'], 'maxTaskRetries');
  int(o['maxConcurrency'], 'maxConcurrency', 1);
  amount(o['numCpus'], 'numCpus');
  optionalResources(o['resources'], 'resources');
  optionalStrategy(o['strategy'], 'strategy');
  if (o['captureChildTasks'] !== undefined && o['captureChildTasks'] !== true) fail('captureChildTasks', 'true or absent', o['captureChildTasks']);
  oneOf(o['isolation'], 'isolation', ISOLATIONS);
  owner(o['owner'], 'owner');
  if (o['detached'] !== undefined) bool(o['detached'], 'detached');
  if (o['numRestarts'] !== undefined) int(o['numRestarts'], 'numRestarts');
  // Concurrency groups and per-method options (actors part).
  optionalGroups(o['concurrencyGroups'], 'concurrencyGroups');
  optionalMethodOptions(o['methodOptions'], 'methodOptions');
  if (o['getIfExists'] !== undefined) bool(o['getIfExists'], 'getIfExists');
  optionalRuntimeEnv(o['runtimeEnv'], 'runtimeEnv'); // env
  optionalJob(o['job'], 'job'); // env
  optionalList(o['generatorMethods'], 'generatorMethods', aString); // generators
  return o as unknown as ActorSpec;
};

const spec = (o: Fields): ActorSpec => {
  try {
    return anActorSpec(o['spec']);
  } catch (error) {
    throw within(error, 'spec');
  }
};

const checks: { readonly [K in WorkerToNode['type']]: Check<K> } = {
  ready: nothing,
  results: (o) => (list(o['results'], 'results', aResult), nothing(o)),
  logs: (o) => (list(o['lines'], 'lines', aLogLine), nothing(o)),
  submit: (o) => (list(o['functions'], 'functions', aFunctionDescriptor), list(o['tasks'], 'tasks', aTaskSpec), nothing(o)),
  put: (o) => (list(o['objects'], 'objects', aNewObject), nothing(o)),
  request: (o) => {
    int(o['id'], 'id', 1);
    // A switch on the method: one string compare per request, no lookup (get runs per fetched ref).
    const method = o['method'] as WorkerMethod;
    switch (method) {
      case 'get':
        // Its last answer ends it: a get of nothing would never end.
        if (list(o['ids'], 'ids', anId).length === 0) fail('ids', 'at least one ID', o['ids']);
        bool(o['withData'], 'withData');
        if (o['fetchLocal'] !== undefined) bool(o['fetchLocal'], 'fetchLocal');
        if (o['poll'] !== undefined) bool(o['poll'], 'poll');
        break;
      case 'lookupActor':
        str(o['name'], 'name');
        str(o['namespace'], 'namespace');
        break;
      case 'clusterInfo':
        aClusterQuery(o['query']);
        break;
      case 'generatorNext':
        id(o['generatorId'], 'generatorId');
        int(o['index'], 'index');
        if (o['peek'] !== undefined && o['peek'] !== true) fail('peek', 'true or absent', o['peek']);
        break;
      default:
        method satisfies never;
        // Answered with an error naming it (see UnknownWorkerRequest); only its envelope is kept.
        return { type: 'request', id: o['id'] as number, method: str(o['method'], 'method'), unknownMethod: true };
    }
    return nothing(o);
  },
  cancelRequest: (o) => (int(o['id'], 'id', 1), nothing(o)),
  blocked: nothing,
  unblocked: nothing,
  cancel: (o) => (id(o['objectId'], 'objectId'), bool(o['force'], 'force'), o['recursive'] === undefined || bool(o['recursive'], 'recursive'), nothing(o)),
  createActor: (o) => (list(o['functions'], 'functions', aFunctionDescriptor), spec(o), o['answerAtOnce'] === undefined || bool(o['answerAtOnce'], 'answerAtOnce'), nothing(o)),
  killActor: (o) => (id(o['actorId'], 'actorId'), bool(o['noRestart'], 'noRestart'), nothing(o)),
  addRefs: (o) => {
    const ids = list(o['ids'], 'ids', anId);
    const owners = optionalList(o['owners'], 'owners', anId);
    if (owners !== undefined && owners.length !== ids.length) fail('owners', `one owner node per ID (${ids.length})`, owners);
    return nothing(o);
  },
  removeRefs: (o) => (list(o['ids'], 'ids', anId), nothing(o)),
  releaseLeases: (o) => (list(o['leases'], 'leases', anIndex), nothing(o)),
  // generators
  generatorItem: (o) => {
    int(o['seq'], 'seq', 1);
    int(o['index'], 'index');
    bytes(o['value'], 'value');
    optionalList(o['parts'], 'parts', aPart);
    optionalList(o['nested'], 'nested', anId);
    return nothing(o);
  },
  generatorDropped: (o) => (id(o['generatorId'], 'generatorId'), nothing(o)),
};
const aMessage = messageCheck<WorkerToNode>(checks);

/** A message a worker sent, typed, or the ProtocolError that says which field is wrong and how. */
export function parseWorkerToNode(value: unknown): WorkerToNode | ProtocolError {
  return validate('a message from a worker', value, aMessage);
}
