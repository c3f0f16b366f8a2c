/**
 * The GCS's methods: for each, its body and its answer, and a validator of each built from
 * src/protocol/check.ts. The server checks every body; the client checks every answer and every
 * publish (both are bytes from the network).
 */
import type { ProtocolError } from '../errors/index.js';
import {
  aString,
  amount,
  bool,
  bytes,
  fail,
  fields,
  id,
  int,
  list,
  oneOf,
  optionalId,
  optionalStr,
  str,
  validate,
  within,
  type Fields,
} from '../protocol/check.js';
import {
  ACTOR_STATES,
  CHANNELS,
  type ActorEntry,
  type ActorIdHex,
  type ActorState,
  type Channel,
  type JobEntry,
  type NodeIdHex,
  type NodeInfo,
  type Publish,
  type ResourceMap,
  type ResourceView,
} from './types.js';

// ---- bodies -----------------------------------------------------------------------------------

export type RegisterNode = { readonly nodeId: NodeIdHex; readonly address: string; readonly resources: ResourceMap; readonly isDriver: boolean };
export type ReportResources = { readonly nodeId: NodeIdHex; readonly available: ResourceMap };
export type NodeRef = { readonly nodeId: NodeIdHex };
export type RegisterActor = {
  readonly actorId: ActorIdHex;
  readonly name?: string;
  readonly namespace: string;
  readonly className: string;
  readonly methodNames: readonly string[];
  readonly nodeId: NodeIdHex;
  readonly ownerNodeId: NodeIdHex;
  /** Absent: false, 0, 0 (an actor that ends with its owner and is not restarted). */
  readonly detached?: boolean;
  readonly maxRestarts?: number;
  readonly maxTaskRetries?: number;
};
/**
 * ALIVE comes from the node that hosts the instance (its nodeId, and numRestarts so far); it is
 * dropped when that node is dead. RESTARTING with a nodeId only says where a restart was sent,
 * and applies only while the row is RESTARTING: the GCS itself moves rows to RESTARTING (their
 * node died), so that one place decides whether restarts remain.
 */
export type UpdateActor = {
  readonly actorId: ActorIdHex;
  readonly state: ActorState;
  readonly nodeId?: NodeIdHex;
  readonly reason?: string;
  readonly numRestarts?: number;
};
export type ActorRef = { readonly actorId: ActorIdHex };
export type NamedActorRef = { readonly name: string; readonly namespace: string };
export type ListActors = { readonly namespace?: string };
/** `submissionId`: the Jobs API's ID of the job whose entrypoint this driver is (MINIRAY_JOB_SUBMISSION_ID). */
export type AddJob = { readonly driverNodeId: NodeIdHex; readonly submissionId?: string };
export type JobRef = { readonly jobId: number };
export type KvPut = { readonly namespace: string; readonly key: string; readonly value: Uint8Array; readonly overwrite: boolean };
export type KvRef = { readonly namespace: string; readonly key: string };
export type KvKeys = { readonly namespace: string; readonly prefix: string };
export type Subscribe = { readonly channels: readonly Channel[] };
/** The body of a method that takes no arguments. */
export type Empty = Readonly<Record<string, never>>;

// ---- answers ----------------------------------------------------------------------------------

export type Registered = { readonly clusterId: string; readonly nodes: readonly NodeInfo[] };
/**
 * What the GCS tells a node it has declared dead (missed health checks, its connection closed, or
 * unregistered): sent as the NODE_DEAD notify over the node's connection before the GCS closes it,
 * and as the answer to a registerNode of a node ID the table has as dead (a node back from a
 * partition, or reconnecting). Death is final: the node must not go on as that node (it exits; it
 * could join again under a new ID).
 */
export type NodeDead = { readonly dead: true; readonly nodeId: NodeIdHex; readonly reason: string };
export type RegisterNodeAnswer = Registered | NodeDead;
export type RegisterActorAnswer = { readonly ok: true } | { readonly ok: false; readonly reason: 'name-taken' };
export type Found = { readonly found: boolean };

/** Request methods: body and answer. */
export type GcsRequests = {
  registerNode: { body: RegisterNode; answer: RegisterNodeAnswer };
  unregisterNode: { body: NodeRef; answer: Found };
  getNodes: { body: Empty; answer: readonly NodeInfo[] };
  registerActor: { body: RegisterActor; answer: RegisterActorAnswer };
  updateActor: { body: UpdateActor; answer: ActorEntry | null };
  getActor: { body: ActorRef; answer: ActorEntry | null };
  getNamedActor: { body: NamedActorRef; answer: ActorEntry | null };
  listActors: { body: ListActors; answer: readonly ActorEntry[] };
  addJob: { body: AddJob; answer: { readonly jobId: number } };
  finishJob: { body: JobRef; answer: Found };
  listJobs: { body: Empty; answer: readonly JobEntry[] };
  kvPut: { body: KvPut; answer: { readonly added: boolean } };
  kvGet: { body: KvRef; answer: Uint8Array | null };
  kvDel: { body: KvRef; answer: { readonly deleted: boolean } };
  kvKeys: { body: KvKeys; answer: readonly string[] };
  subscribe: { body: Subscribe; answer: null };
  getClusterResources: { body: Empty; answer: ResourceMap };
  getAvailableResources: { body: Empty; answer: ResourceMap };
  // state API (helper state)
  askNodes: { body: AskNodes; answer: NodeAnswers };
  getClusterInfo: { body: Empty; answer: ClusterInfo };
};
export type GcsMethod = keyof GcsRequests;
export type Body<M extends GcsMethod> = GcsRequests[M]['body'];
export type Answer<M extends GcsMethod> = GcsRequests[M]['answer'];

/** One-way methods (notify): to the GCS, and from it. */
export type GcsNotifies = { reportResources: ReportResources };
export const PUBLISH = 'publish';
/** The GCS's notify to a node it declared dead (body: NodeDead), just before it closes the connection. */
export const NODE_DEAD = 'nodeDead';
/**
 * The GCS's health check of a node (a request with an empty body, answered with null). Nodes
 * answer it on their main thread, which runs no user code (that runs on worker threads).
 */
export const HEALTH_CHECK = 'healthCheck';

// ---- state API (helper state) ------------------------------------------------------------------

/**
 * What the GCS asks each node for `askNodes` (the node's `nodeState` method, answered by its
 * agent from the node's own tables): its objects, its workers, its figures, or its log lines.
 */
export const NODE_STATE = 'nodeState';
export const NODE_STATE_KINDS = ['objects', 'workers', 'stats', 'logs'] as const;
export type NodeStateKind = (typeof NODE_STATE_KINDS)[number];
/** The body of a `nodeState` request to a node. `body`: the kind's query (a LogQuery for 'logs'). */
export type NodeStateQuery = { readonly what: NodeStateKind; readonly body?: unknown };
/**
 * A fan-out: the GCS sends `nodeState { what, body }` to every alive registered node (drivers
 * included: they hold objects too), or only to `nodeIds`, over the connection each registered
 * on, and waits `timeoutMs` (default 10000) for each.
 */
export type AskNodes = NodeStateQuery & { readonly nodeIds?: readonly NodeIdHex[]; readonly timeoutMs?: number };
/**
 * Each node's answer as it sent it (the asker checks it: the GCS only relays), and the nodes that
 * did not answer in time, failed, or were asked for by ID and are not alive.
 */
export type NodeAnswers = { readonly answers: readonly { readonly nodeId: NodeIdHex; readonly answer: unknown }[]; readonly partial: readonly NodeIdHex[] };
/** The cluster's own facts: its ID, and the node in the GCS's process (the head's, or the embedded one). */
export type ClusterInfo = { readonly clusterId: string; readonly headNodeId?: NodeIdHex };
/** The longest a fan-out waits for a node. */
export const MAX_ASK_NODES_TIMEOUT_MS = 120_000;

// ---- item checks ------------------------------------------------------------------------------

const nodeId = (value: unknown, path: string): NodeIdHex => id(value, path) as NodeIdHex;
const actorId = (value: unknown, path: string): ActorIdHex => id(value, path) as ActorIdHex;

/** A count of retries or restarts: an integer >= 0, or -1 for unlimited. */
const retries = (value: unknown, path: string): number => int(value, path, -1);

function nonEmpty(value: unknown, path: string): string {
  if (typeof value !== 'string' || value === '') fail(path, 'a non-empty string', value);
  return value;
}

/** A map of resource names to finite amounts >= 0. */
export function resources(value: unknown, path: string): ResourceMap {
  const o = fields(value, path);
  for (const name in o) amount(o[name], path === '' ? name : `${path}.${name}`);
  return o as ResourceMap;
}

/** A method without arguments takes `{}`, or nothing at all (a caller may send undefined or null). */
function empty(value: unknown): Empty {
  if (value === undefined || value === null) return {};
  fields(value);
  return value as Empty;
}

function nested<T>(value: unknown, path: string, check: (value: unknown) => T): T {
  try {
    return check(value);
  } catch (error) {
    throw within(error, path);
  }
}

const aNodeInfo = (value: unknown): NodeInfo => {
  const o = fields(value);
  nodeId(o['nodeId'], 'nodeId');
  bool(o['alive'], 'alive');
  str(o['address'], 'address');
  resources(o['resources'], 'resources');
  resources(o['available'], 'available');
  bool(o['isDriver'], 'isDriver');
  optionalStr(o['deathReason'], 'deathReason');
  return o as unknown as NodeInfo;
};

const anActorEntry = (value: unknown): ActorEntry => {
  const o = fields(value);
  actorId(o['actorId'], 'actorId');
  optionalStr(o['name'], 'name');
  str(o['namespace'], 'namespace');
  str(o['className'], 'className');
  list(o['methodNames'], 'methodNames', aString);
  nodeId(o['nodeId'], 'nodeId');
  nodeId(o['ownerNodeId'], 'ownerNodeId');
  oneOf(o['state'], 'state', ACTOR_STATES);
  optionalStr(o['reason'], 'reason');
  bool(o['detached'], 'detached');
  retries(o['maxRestarts'], 'maxRestarts');
  int(o['numRestarts'], 'numRestarts');
  retries(o['maxTaskRetries'], 'maxTaskRetries');
  return o as unknown as ActorEntry;
};

const aJobEntry = (value: unknown): JobEntry => {
  const o = fields(value);
  int(o['jobId'], 'jobId', 1);
  nodeId(o['driverNodeId'], 'driverNodeId');
  amount(o['startTimeMs'], 'startTimeMs');
  if (o['endTimeMs'] !== undefined) amount(o['endTimeMs'], 'endTimeMs');
  optionalStr(o['submissionId'], 'submissionId');
  return o as unknown as JobEntry;
};

const orNull =
  <T>(check: (value: unknown) => T) =>
  (value: unknown): T | null =>
    value === null || value === undefined ? null : check(value);

const aChannel = (value: unknown): Channel => oneOf(value, '', CHANNELS);

// ---- bodies' validators (the server's) ------------------------------------------------------

type Checks<M extends Record<string, { body: unknown }>> = { readonly [K in keyof M]: (value: unknown) => M[K]['body'] };

const bodyChecks: Checks<GcsRequests> = {
  registerNode: (value) => {
    const o = fields(value);
    nodeId(o['nodeId'], 'nodeId');
    str(o['address'], 'address');
    resources(o['resources'], 'resources');
    bool(o['isDriver'], 'isDriver');
    return o as unknown as RegisterNode;
  },
  unregisterNode: (value) => nodeRef(fields(value)),
  getNodes: empty,
  registerActor: (value) => {
    const o = fields(value);
    actorId(o['actorId'], 'actorId');
    if (o['name'] !== undefined) nonEmpty(o['name'], 'name');
    str(o['namespace'], 'namespace');
    str(o['className'], 'className');
    list(o['methodNames'], 'methodNames', aString);
    nodeId(o['nodeId'], 'nodeId');
    nodeId(o['ownerNodeId'], 'ownerNodeId');
    if (o['detached'] !== undefined) bool(o['detached'], 'detached');
    if (o['maxRestarts'] !== undefined) retries(o['maxRestarts'], 'maxRestarts');
    if (o['maxTaskRetries'] !== undefined) retries(o['maxTaskRetries'], 'maxTaskRetries');
    return o as unknown as RegisterActor;
  },
  updateActor: (value) => {
    const o = fields(value);
    actorId(o['actorId'], 'actorId');
    oneOf(o['state'], 'state', ACTOR_STATES);
    optionalId(o['nodeId'], 'nodeId');
    optionalStr(o['reason'], 'reason');
    if (o['numRestarts'] !== undefined) int(o['numRestarts'], 'numRestarts');
    return o as unknown as UpdateActor;
  },
  getActor: (value) => {
    const o = fields(value);
    actorId(o['actorId'], 'actorId');
    return o as unknown as ActorRef;
  },
  getNamedActor: (value) => {
    const o = fields(value);
    nonEmpty(o['name'], 'name');
    str(o['namespace'], 'namespace');
    return o as unknown as NamedActorRef;
  },
  listActors: (value) => {
    if (value === undefined || value === null) return {};
    const o = fields(value);
    optionalStr(o['namespace'], 'namespace');
    return o as unknown as ListActors;
  },
  addJob: (value) => {
    const o = fields(value);
    nodeId(o['driverNodeId'], 'driverNodeId');
    if (o['submissionId'] !== undefined) nonEmpty(o['submissionId'], 'submissionId');
    return o as unknown as AddJob;
  },
  finishJob: (value) => {
    const o = fields(value);
    int(o['jobId'], 'jobId', 1);
    return o as unknown as JobRef;
  },
  listJobs: empty,
  kvPut: (value) => {
    const o = kvRef(fields(value));
    bytes(o['value'], 'value');
    bool(o['overwrite'], 'overwrite');
    return o as unknown as KvPut;
  },
  kvGet: (value) => kvRef(fields(value)) as unknown as KvRef,
  kvDel: (value) => kvRef(fields(value)) as unknown as KvRef,
  kvKeys: (value) => {
    const o = fields(value);
    str(o['namespace'], 'namespace');
    str(o['prefix'], 'prefix');
    return o as unknown as KvKeys;
  },
  subscribe: (value) => {
    const o = fields(value);
    list(o['channels'], 'channels', aChannel);
    return o as unknown as Subscribe;
  },
  getClusterResources: empty,
  getAvailableResources: empty,
  // state API (helper state)
  askNodes: (value) => {
    const o = fields(value);
    oneOf(o['what'], 'what', NODE_STATE_KINDS);
    if (o['nodeIds'] !== undefined) list(o['nodeIds'], 'nodeIds', (item) => nodeId(item, 'nodeIds[]'));
    if (o['timeoutMs'] !== undefined && int(o['timeoutMs'], 'timeoutMs', 1) > MAX_ASK_NODES_TIMEOUT_MS) fail('timeoutMs', `at most ${MAX_ASK_NODES_TIMEOUT_MS}`, o['timeoutMs']);
    return o as unknown as AskNodes;
  },
  getClusterInfo: empty,
};

function nodeRef(o: Fields): NodeRef {
  nodeId(o['nodeId'], 'nodeId');
  return o as unknown as NodeRef;
}

function kvRef(o: Fields): Fields {
  str(o['namespace'], 'namespace');
  str(o['key'], 'key');
  return o;
}

const notifyChecks: { readonly [K in keyof GcsNotifies]: (value: unknown) => GcsNotifies[K] } = {
  reportResources: (value) => {
    const o = fields(value);
    nodeId(o['nodeId'], 'nodeId');
    resources(o['available'], 'available');
    return o as unknown as ReportResources;
  },
};

/** The server's validator of a request's body. */
export function parseBody<M extends GcsMethod>(method: M): (body: unknown) => Body<M> | ProtocolError {
  const check = bodyChecks[method];
  const what = `the body of a '${method}' request to the GCS`;
  return (body) => validate(what, body, check);
}

export function parseNotify<M extends keyof GcsNotifies>(method: M): (body: unknown) => GcsNotifies[M] | ProtocolError {
  const check = notifyChecks[method];
  const what = `the body of a '${method}' message to the GCS`;
  return (body) => validate(what, body, check);
}

// ---- answers' validators (the client's) -----------------------------------------------------

const answerChecks: { readonly [K in GcsMethod]: (value: unknown) => Answer<K> } = {
  registerNode: (value) => {
    const o = fields(value);
    if (o['dead'] !== undefined) return aNodeDead(o);
    str(o['clusterId'], 'clusterId');
    list(o['nodes'], 'nodes', aNodeInfo);
    return o as unknown as RegisterNodeAnswer;
  },
  unregisterNode: (value) => found(value),
  getNodes: (value) => list(value, '', aNodeInfo),
  registerActor: (value) => {
    const o = fields(value);
    if (bool(o['ok'], 'ok')) return o as unknown as RegisterActorAnswer;
    oneOf(o['reason'], 'reason', ['name-taken'] as const);
    return o as unknown as RegisterActorAnswer;
  },
  updateActor: orNull(anActorEntry),
  getActor: orNull(anActorEntry),
  getNamedActor: orNull(anActorEntry),
  listActors: (value) => list(value, '', anActorEntry),
  addJob: (value) => {
    const o = fields(value);
    int(o['jobId'], 'jobId', 1);
    return o as unknown as { readonly jobId: number };
  },
  finishJob: (value) => found(value),
  listJobs: (value) => list(value, '', aJobEntry),
  kvPut: (value) => {
    const o = fields(value);
    bool(o['added'], 'added');
    return o as unknown as { readonly added: boolean };
  },
  kvGet: (value) => (value === null || value === undefined ? null : bytes(value, '')),
  kvDel: (value) => {
    const o = fields(value);
    bool(o['deleted'], 'deleted');
    return o as unknown as { readonly deleted: boolean };
  },
  kvKeys: (value) => list(value, '', aString),
  subscribe: (value) => {
    if (value !== null && value !== undefined) fail('', 'null', value);
    return null;
  },
  getClusterResources: (value) => resources(value, ''),
  getAvailableResources: (value) => resources(value, ''),
  // state API (helper state)
  askNodes: (value) => {
    const o = fields(value);
    list(o['answers'], 'answers', (item) => {
      const a = fields(item);
      nodeId(a['nodeId'], 'nodeId');
      return a;
    });
    list(o['partial'], 'partial', (item) => nodeId(item, 'partial[]'));
    return o as unknown as NodeAnswers;
  },
  getClusterInfo: (value) => {
    const o = fields(value);
    str(o['clusterId'], 'clusterId');
    if (o['headNodeId'] !== undefined) nodeId(o['headNodeId'], 'headNodeId');
    return o as unknown as ClusterInfo;
  },
};

/** A node's validator of the GCS's `nodeState` request. */
export function parseNodeStateQuery(body: unknown): NodeStateQuery | ProtocolError {
  return validate(`the body of a '${NODE_STATE}' request`, body, (value) => {
    const o = fields(value);
    oneOf(o['what'], 'what', NODE_STATE_KINDS);
    return o as unknown as NodeStateQuery;
  });
}

function aNodeDead(value: unknown): NodeDead {
  const o = fields(value);
  if (o['dead'] !== true) fail('dead', 'true', o['dead']);
  nodeId(o['nodeId'], 'nodeId');
  str(o['reason'], 'reason');
  return o as unknown as NodeDead;
}

/** A node's validator of the GCS's NODE_DEAD notify. */
export function parseNodeDead(body: unknown): NodeDead | ProtocolError {
  return validate(`a '${NODE_DEAD}' message from the GCS`, body, aNodeDead);
}

function found(value: unknown): Found {
  const o = fields(value);
  bool(o['found'], 'found');
  return o as unknown as Found;
}

/** The client's validator of the GCS's answer to `method`. */
export function parseAnswer<M extends GcsMethod>(method: M): (answer: unknown) => Answer<M> | ProtocolError {
  const check = answerChecks[method] as (value: unknown) => Answer<M>;
  const what = `the GCS's answer to '${method}'`;
  return (answer) => validate(what, answer, check);
}

const messageChecks: { readonly [C in Channel]: (value: unknown) => Extract<Publish, { channel: C }>['message'] } = {
  nodes: (value) => {
    const o = fields(value);
    oneOf(o['event'], 'event', ['added', 'dead'] as const);
    nested(o['node'], 'node', aNodeInfo);
    return o as unknown as Extract<Publish, { channel: 'nodes' }>['message'];
  },
  actors: (value) => {
    const o = fields(value);
    nested(o['actor'], 'actor', anActorEntry);
    return o as unknown as Extract<Publish, { channel: 'actors' }>['message'];
  },
  resources: (value) => {
    const o = fields(value);
    list(o['nodes'], 'nodes', (item) => {
      const n = fields(item);
      nodeId(n['nodeId'], 'nodeId');
      resources(n['resources'], 'resources');
      resources(n['available'], 'available');
      return n;
    });
    return o as unknown as ResourceView;
  },
};

const checkPublish = (value: unknown): Publish => {
  const o = fields(value);
  const channel = oneOf(o['channel'], 'channel', CHANNELS);
  const check: (value: unknown) => unknown = messageChecks[channel];
  nested(o['message'], 'message', check);
  return o as unknown as Publish;
};

/** The client's validator of a `publish` the GCS pushed. */
export function parsePublish(body: unknown): Publish | ProtocolError {
  return validate(`a '${PUBLISH}' message from the GCS`, body, checkPublish);
}
