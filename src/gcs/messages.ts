/**
 * The GCS's methods: for each, its body and its answer, and a validator of each built from
 * src/protocol/check.ts. The server checks every body; the client checks every answer and every
 * publish (both are bytes from the network).
 */
import type { ProtocolError } from '../errors/index.js';
import {
  aProfileSpan,
  aString,
  amount,
  bool,
  bytes,
  fail,
  fields,
  id,
  int,
  list,
  optionalList,
  oneOf,
  optionalId,
  optionalStr,
  str,
  validate,
  within,
  type Fields,
  optionalMethodOptions,
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
  type PlacementGroupEntry,
  type Publish,
  type ResourceMap,
  type ResourceView,
} from './types.js';
import { PLACEMENT_GROUP_STATES, PLACEMENT_STRATEGIES, type PlacementStrategy } from '../placement-group/resources.js';
import { TASK_STATES, TASK_TYPES, type CoreEvent, type ProfileSpan, type TaskEntry, type TaskMetrics, type TaskType } from '../state/types.js';

// ---- bodies -----------------------------------------------------------------------------------

export type RegisterNode = { readonly nodeId: NodeIdHex; readonly address: string; readonly resources: ResourceMap; readonly isDriver: boolean };
/** `resources`: the node's totals, when they changed (placement groups' bundles add and take names). */
export type ReportResources = { readonly nodeId: NodeIdHex; readonly available: ResourceMap; readonly resources?: ResourceMap };
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
  /** Per-method options (actors part; absent: none). */
  readonly methodOptions?: ActorEntry['methodOptions'];
  readonly generatorMethods?: ActorEntry['generatorMethods']; // generators
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

// ---- task events (issue 12, helper events): the bodies and answers ---------------------------

/**
 * What a node sends the GCS every taskEventsFlushMs (notify addTaskEvents): its recorded events in
 * columns (one entry per event in each of taskIds..workerIds), so that a batch of thousands of
 * events is a few arrays, not thousands of objects. `codes[i]` is the state (an index into
 * TASK_STATES) plus 8 x (attempt + 1): attempt -1 (code < 8) is an event of the node that ran a
 * task another node sent (it does not know the attempt: the GCS gives it to the latest attempt it
 * knows). An event of a worker's result (FINISHED or FAILED) has the worker's start time in
 * `startsMs` (the attempt was RUNNING from then; 0 in every other event). A submission whose
 * arguments were ready at once is one PENDING_NODE_ASSIGNMENT event (PENDING_ARGS_AVAIL at the
 * same time). `infos` adds what only some events carry, by event index: a submission's name,
 * type, owner and resources; a failure's error; a finished attempt's profile spans.
 */
export type TaskEventBatch = {
  readonly nodeId: NodeIdHex;
  /** Events this node dropped since its previous batch (its buffer was full). */
  readonly dropped: number;
  readonly taskIds: readonly string[];
  readonly codes: readonly number[];
  readonly timesMs: readonly number[];
  readonly startsMs: readonly number[];
  /** '' when the event names no worker. */
  readonly workerIds: readonly string[];
  readonly infos: readonly TaskEventInfo[];
  /** get/put/wait calls, in columns as above (`kinds[i]` indexes CORE_EVENT_KINDS). */
  readonly core: {
    readonly kinds: readonly number[];
    readonly workerIds: readonly string[];
    readonly startsMs: readonly number[];
    readonly endsMs: readonly number[];
    readonly counts: readonly number[];
  };
};
export type TaskEventInfo = {
  /** The event it belongs to (an index into the batch's columns). */
  readonly index: number;
  readonly name?: string;
  readonly type?: TaskType;
  readonly actorId?: string;
  readonly ownerNodeId?: string;
  readonly requiredResources?: Readonly<Record<string, number>>;
  readonly errorType?: string;
  readonly errorMessage?: string;
  readonly profile?: readonly ProfileSpan[];
};
export const CORE_EVENT_KINDS = ['get', 'put', 'wait'] as const satisfies readonly CoreEvent['kind'][];
/** Ray's `[key, op, value]` predicates over a TaskEntry's fields (values compare as strings). */
export type TaskFilter = readonly [key: string, op: '=' | '!=', value: string | number | boolean];
export type ListTaskEvents = { readonly filters?: readonly TaskFilter[]; readonly limit?: number; readonly detail?: boolean };
export type TaskEventsRef = { readonly taskId: string };
export type TaskEventList = { readonly records: readonly TaskEntry[]; readonly total: number; readonly dropped: number };

// ---- placement groups (helper pg): bodies -------------------------------------------------------

export type CreatePlacementGroup = {
  readonly placementGroupId: string;
  readonly name?: string;
  readonly namespace: string;
  readonly strategy: PlacementStrategy;
  readonly bundles: readonly ResourceMap[];
  /** The node whose driver or task creates it: the group ends with it (absent when detached). */
  readonly creatorNodeId?: string;
  /** lifetime: 'detached': it outlives its creator, until removePlacementGroup (Ray's lifetime="detached"). */
  readonly detached?: true;
};
/**
 * `warning`: the cluster's nodes, as they are, could never hold the group (it stays PENDING until
 * one that can joins); the creator's node prints it.
 */
export type CreatePlacementGroupAnswer = { readonly ok: true; readonly warning?: string } | { readonly ok: false; readonly reason: 'name-taken' };
export type PlacementGroupRef = { readonly placementGroupId: string };
export type NamedPlacementGroupRef = { readonly name: string; readonly namespace: string };
export type WaitPlacementGroup = { readonly placementGroupId: string; readonly timeoutMs: number };
/** The GCS asks a node to reserve these bundles (phase 1): `ok` false when it has not the room now. */
export type PrepareBundles = { readonly placementGroupId: string; readonly bundles: readonly { readonly index: number; readonly resources: ResourceMap }[] };
/** Phase 2 (commit, answered) or an abort (cancel, a notify): of these bundles of the group on that node. */
export type BundleIndices = { readonly placementGroupId: string; readonly indices: readonly number[] };
export const PREPARE_BUNDLES = 'prepareBundles';
export const COMMIT_BUNDLES = 'commitBundles';
export const CANCEL_BUNDLES = 'cancelBundles';
/** The GCS's notify to every node that a group is removed: its bundles go back, work in it ends. */
export const PLACEMENT_GROUP_REMOVED = 'placementGroupRemoved';
/** The longest a waitPlacementGroup request waits at the GCS (a caller waits longer by asking again). */
export const MAX_PLACEMENT_GROUP_WAIT_MS = 60_000;

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
export type RegisterActorAnswer =
  | { readonly ok: true }
  /** `holder` (getIfExists, actors part): the live actor that has the name (absent from older heads). */
  | { readonly ok: false; readonly reason: 'name-taken'; readonly holder?: ActorEntry };
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
  // task events (helper events)
  listTaskEvents: { body: ListTaskEvents; answer: TaskEventList };
  getTaskEvents: { body: TaskEventsRef; answer: readonly TaskEntry[] };
  taskMetrics: { body: Empty; answer: TaskMetrics };
  listCoreEvents: { body: Empty; answer: readonly CoreEvent[] };
  // state API (helper state)
  askNodes: { body: AskNodes; answer: NodeAnswers };
  getClusterInfo: { body: Empty; answer: ClusterInfo };
  // placement groups (helper pg)
  createPlacementGroup: { body: CreatePlacementGroup; answer: CreatePlacementGroupAnswer };
  removePlacementGroup: { body: PlacementGroupRef; answer: Found };
  getPlacementGroup: { body: PlacementGroupRef; answer: PlacementGroupEntry | null };
  getNamedPlacementGroup: { body: NamedPlacementGroupRef; answer: PlacementGroupEntry | null };
  listPlacementGroups: { body: Empty; answer: readonly PlacementGroupEntry[] };
  waitPlacementGroup: { body: WaitPlacementGroup; answer: PlacementGroupEntry | null };
};
export type GcsMethod = keyof GcsRequests;
export type Body<M extends GcsMethod> = GcsRequests[M]['body'];
export type Answer<M extends GcsMethod> = GcsRequests[M]['answer'];

/** One-way methods (notify): to the GCS, and from it. */
export type GcsNotifies = { reportResources: ReportResources; addTaskEvents: TaskEventBatch };
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
 * did not answer in time, failed, or were asked for by ID and are not alive. `errors`: those of
 * `partial` that answered with an error, and its message.
 */
export type NodeAnswers = {
  readonly answers: readonly { readonly nodeId: NodeIdHex; readonly answer: unknown }[];
  readonly partial: readonly NodeIdHex[];
  readonly errors?: readonly { readonly nodeId: NodeIdHex; readonly message: string }[];
};
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
  optionalMethodOptions(o['methodOptions'], 'methodOptions'); // per-method options (actors part)
  optionalList(o['generatorMethods'], 'generatorMethods', aString); // generators
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

const aPlacementGroupEntry = (value: unknown): PlacementGroupEntry => {
  const o = fields(value);
  id(o['placementGroupId'], 'placementGroupId');
  optionalStr(o['name'], 'name');
  str(o['namespace'], 'namespace');
  oneOf(o['strategy'], 'strategy', PLACEMENT_STRATEGIES);
  list(o['bundles'], 'bundles', (item) => resources(item, 'bundles[]'));
  oneOf(o['state'], 'state', PLACEMENT_GROUP_STATES);
  list(o['bundleNodes'], 'bundleNodes', aString);
  amount(o['createdAtMs'], 'createdAtMs');
  optionalStr(o['creatorNodeId'], 'creatorNodeId');
  if (o['detached'] !== undefined && o['detached'] !== true) fail('detached', 'true or absent', o['detached']);
  return o as unknown as PlacementGroupEntry;
};

/** A group's bundles: at least one, each a non-empty map of amounts >= 0 (Ray refuses empty bundles). */
function bundleList(value: unknown, path: string): readonly ResourceMap[] {
  const bundles = list(value, path, (item) => resources(item, `${path}[]`));
  if (bundles.length === 0) fail(path, 'at least one bundle', value);
  return bundles;
}

const orNull =
  <T>(check: (value: unknown) => T) =>
  (value: unknown): T | null =>
    value === null || value === undefined ? null : check(value);

const aChannel = (value: unknown): Channel => oneOf(value, '', CHANNELS);

// ---- task events' item checks (helper events) --------------------------------------------------

/** Epoch milliseconds (or any finite number: a clock may be set back). */
function time(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) fail(path, 'a finite number (epoch milliseconds)', value);
  return value;
}

/** A column of a batch: one entry per event. Its items are checked by the loops below (no callback per item: a batch holds thousands). */
function columnOf(value: unknown, path: string, length: number): readonly unknown[] {
  if (!Array.isArray(value)) fail(path, 'an array', value);
  if (value.length !== length) fail(path, `an array of ${length} (one per event)`, value);
  return value;
}

function strings(value: unknown, path: string, length: number): void {
  const items = columnOf(value, path, length);
  for (let i = 0; i < items.length; i++) if (typeof items[i] !== 'string') fail(`${path}[${i}]`, 'a string', items[i]);
}

function finites(value: unknown, path: string, length: number): void {
  const items = columnOf(value, path, length);
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (typeof item !== 'number' || !Number.isFinite(item)) fail(`${path}[${i}]`, 'a finite number', item);
  }
}

/** Integers in [0, below) whose remainder by 8 is below `remainderBelow` (8: any). */
function codesIn(value: unknown, path: string, length: number, below: number, remainderBelow: number, expected: string): void {
  const items = columnOf(value, path, length);
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (typeof item !== 'number' || !Number.isSafeInteger(item) || item < 0 || item >= below || item % 8 >= remainderBelow) fail(`${path}[${i}]`, expected, item);
  }
}

const aTaskFilter = (value: unknown): TaskFilter => {
  if (!Array.isArray(value) || value.length !== 3) fail('', 'a [key, op, value] tuple', value);
  str(value[0], '[0]');
  oneOf(value[1], '[1]', ['=', '!='] as const);
  const v: unknown = value[2];
  if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') fail('[2]', 'a string, number or boolean', v);
  return value as unknown as TaskFilter;
};

function aTaskEventBatch(value: unknown): TaskEventBatch {
  const o = fields(value);
  nodeId(o['nodeId'], 'nodeId');
  int(o['dropped'], 'dropped');
  const ids = o['taskIds'];
  if (!Array.isArray(ids)) fail('taskIds', 'an array', ids);
  const n = ids.length;
  strings(ids, 'taskIds', n);
  codesIn(o['codes'], 'codes', n, 8 * 10_002, TASK_STATES.length, `a state (< ${TASK_STATES.length}) + 8 x (attempt + 1), attempt <= 10000`);
  finites(o['timesMs'], 'timesMs', n);
  finites(o['startsMs'], 'startsMs', n);
  strings(o['workerIds'], 'workerIds', n);
  list(o['infos'], 'infos', (item) => {
    const info = fields(item);
    const index = info['index'];
    if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 0 || index >= n) fail('index', `an event index below ${n}`, index);
    optionalStr(info['name'], 'name');
    if (info['type'] !== undefined) oneOf(info['type'], 'type', TASK_TYPES);
    optionalStr(info['actorId'], 'actorId');
    optionalStr(info['ownerNodeId'], 'ownerNodeId');
    if (info['requiredResources'] !== undefined) resources(info['requiredResources'], 'requiredResources');
    optionalStr(info['errorType'], 'errorType');
    optionalStr(info['errorMessage'], 'errorMessage');
    if (info['profile'] !== undefined) list(info['profile'], 'profile', aProfileSpan);
    return info;
  });
  const core = fields(o['core'], 'core');
  const kinds = core['kinds'];
  if (!Array.isArray(kinds)) fail('core.kinds', 'an array', kinds);
  const m = kinds.length;
  codesIn(kinds, 'core.kinds', m, CORE_EVENT_KINDS.length, 8, `an index into ${CORE_EVENT_KINDS.length} kinds`);
  strings(core['workerIds'], 'core.workerIds', m);
  finites(core['startsMs'], 'core.startsMs', m);
  finites(core['endsMs'], 'core.endsMs', m);
  codesIn(core['counts'], 'core.counts', m, Number.MAX_SAFE_INTEGER, 8, 'an integer >= 0');
  return o as unknown as TaskEventBatch;
}

const aTaskEntry = (value: unknown): TaskEntry => {
  const o = fields(value);
  str(o['taskId'], 'taskId');
  int(o['attempt'], 'attempt');
  str(o['name'], 'name');
  oneOf(o['type'], 'type', TASK_TYPES);
  oneOf(o['state'], 'state', TASK_STATES);
  optionalStr(o['actorId'], 'actorId');
  str(o['ownerNodeId'], 'ownerNodeId');
  optionalStr(o['nodeId'], 'nodeId');
  optionalStr(o['workerId'], 'workerId');
  resources(o['requiredResources'], 'requiredResources');
  time(o['creationTimeMs'], 'creationTimeMs');
  if (o['startTimeMs'] !== undefined) time(o['startTimeMs'], 'startTimeMs');
  if (o['endTimeMs'] !== undefined) time(o['endTimeMs'], 'endTimeMs');
  optionalStr(o['errorType'], 'errorType');
  optionalStr(o['errorMessage'], 'errorMessage');
  if (o['events'] !== undefined) {
    list(o['events'], 'events', (item) => {
      const e = fields(item);
      oneOf(e['state'], 'state', TASK_STATES);
      time(e['timeMs'], 'timeMs');
      return e;
    });
  }
  if (o['profile'] !== undefined) list(o['profile'], 'profile', aProfileSpan);
  return o as unknown as TaskEntry;
};

function aTaskMetrics(value: unknown): TaskMetrics {
  const o = fields(value);
  const byState = fields(o['byState'], 'byState');
  for (const name in byState) {
    const states = fields(byState[name], `byState.${name}`);
    for (const state in states) {
      oneOf(state, `byState.${name}`, TASK_STATES);
      int(states[state], `byState.${name}.${state}`);
    }
  }
  const runTime = fields(o['runTime'], 'runTime');
  for (const name in runTime) {
    const h = fields(runTime[name], `runTime.${name}`);
    const bounds = list(h['bounds'], `runTime.${name}.bounds`, (item) => amount(item, ''));
    const counts = list(h['counts'], `runTime.${name}.counts`, (item) => int(item, ''));
    if (counts.length !== bounds.length) fail(`runTime.${name}.counts`, `one count per bound (${bounds.length})`, counts);
    amount(h['sum'], `runTime.${name}.sum`);
    int(h['count'], `runTime.${name}.count`);
  }
  int(o['droppedEvents'], 'droppedEvents');
  return o as unknown as TaskMetrics;
}

const aCoreEvent = (value: unknown): CoreEvent => {
  const o = fields(value);
  oneOf(o['kind'], 'kind', CORE_EVENT_KINDS);
  str(o['nodeId'], 'nodeId');
  str(o['workerId'], 'workerId');
  time(o['startMs'], 'startMs');
  time(o['endMs'], 'endMs');
  int(o['count'], 'count');
  return o as unknown as CoreEvent;
};

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
    optionalMethodOptions(o['methodOptions'], 'methodOptions'); // per-method options (actors part)
    optionalList(o['generatorMethods'], 'generatorMethods', aString); // generators
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
  listTaskEvents: (value) => {
    if (value === undefined || value === null) return {};
    const o = fields(value);
    if (o['filters'] !== undefined) list(o['filters'], 'filters', aTaskFilter);
    if (o['limit'] !== undefined) int(o['limit'], 'limit');
    if (o['detail'] !== undefined) bool(o['detail'], 'detail');
    return o as unknown as ListTaskEvents;
  },
  getTaskEvents: (value) => {
    const o = fields(value);
    str(o['taskId'], 'taskId');
    return o as unknown as TaskEventsRef;
  },
  taskMetrics: empty,
  listCoreEvents: empty,
  // state API (helper state)
  askNodes: (value) => {
    const o = fields(value);
    oneOf(o['what'], 'what', NODE_STATE_KINDS);
    if (o['nodeIds'] !== undefined) list(o['nodeIds'], 'nodeIds', (item) => nodeId(item, 'nodeIds[]'));
    if (o['timeoutMs'] !== undefined && int(o['timeoutMs'], 'timeoutMs', 1) > MAX_ASK_NODES_TIMEOUT_MS) fail('timeoutMs', `at most ${MAX_ASK_NODES_TIMEOUT_MS}`, o['timeoutMs']);
    return o as unknown as AskNodes;
  },
  getClusterInfo: empty,
  // placement groups (helper pg)
  createPlacementGroup: (value) => {
    const o = fields(value);
    id(o['placementGroupId'], 'placementGroupId');
    if (o['name'] !== undefined) nonEmpty(o['name'], 'name');
    str(o['namespace'], 'namespace');
    oneOf(o['strategy'], 'strategy', PLACEMENT_STRATEGIES);
    bundleList(o['bundles'], 'bundles');
    optionalStr(o['creatorNodeId'], 'creatorNodeId');
    if (o['detached'] !== undefined && o['detached'] !== true) fail('detached', 'true or absent', o['detached']);
    return o as unknown as CreatePlacementGroup;
  },
  removePlacementGroup: (value) => placementGroupRef(fields(value)),
  getPlacementGroup: (value) => placementGroupRef(fields(value)),
  getNamedPlacementGroup: (value) => {
    const o = fields(value);
    str(o['name'], 'name');
    str(o['namespace'], 'namespace');
    return o as unknown as NamedPlacementGroupRef;
  },
  listPlacementGroups: empty,
  waitPlacementGroup: (value) => {
    const o = fields(value);
    id(o['placementGroupId'], 'placementGroupId');
    if (int(o['timeoutMs'], 'timeoutMs') > MAX_PLACEMENT_GROUP_WAIT_MS) fail('timeoutMs', `at most ${MAX_PLACEMENT_GROUP_WAIT_MS}`, o['timeoutMs']);
    return o as unknown as WaitPlacementGroup;
  },
};

function placementGroupRef(o: Fields): PlacementGroupRef {
  id(o['placementGroupId'], 'placementGroupId');
  return o as unknown as PlacementGroupRef;
}

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
    if (o['resources'] !== undefined) resources(o['resources'], 'resources');
    return o as unknown as ReportResources;
  },
  addTaskEvents: (value) => aTaskEventBatch(value),
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
    if (o['holder'] !== undefined) anActorEntry(o['holder']);
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
  listTaskEvents: (value) => {
    const o = fields(value);
    list(o['records'], 'records', aTaskEntry);
    int(o['total'], 'total');
    int(o['dropped'], 'dropped');
    return o as unknown as TaskEventList;
  },
  getTaskEvents: (value) => list(value, '', aTaskEntry),
  taskMetrics: (value) => aTaskMetrics(value),
  listCoreEvents: (value) => list(value, '', aCoreEvent),
  // state API (helper state)
  askNodes: (value) => {
    const o = fields(value);
    list(o['answers'], 'answers', (item) => {
      const a = fields(item);
      nodeId(a['nodeId'], 'nodeId');
      return a;
    });
    list(o['partial'], 'partial', (item) => nodeId(item, 'partial[]'));
    if (o['errors'] !== undefined) {
      list(o['errors'], 'errors', (item) => {
        const e = fields(item);
        nodeId(e['nodeId'], 'errors[].nodeId');
        str(e['message'], 'errors[].message');
        return e;
      });
    }
    return o as unknown as NodeAnswers;
  },
  getClusterInfo: (value) => {
    const o = fields(value);
    str(o['clusterId'], 'clusterId');
    if (o['headNodeId'] !== undefined) nodeId(o['headNodeId'], 'headNodeId');
    return o as unknown as ClusterInfo;
  },
  // placement groups (helper pg)
  createPlacementGroup: (value) => {
    const o = fields(value);
    if (bool(o['ok'], 'ok')) {
      optionalStr(o['warning'], 'warning');
      return o as unknown as CreatePlacementGroupAnswer;
    }
    oneOf(o['reason'], 'reason', ['name-taken'] as const);
    return o as unknown as CreatePlacementGroupAnswer;
  },
  removePlacementGroup: (value) => found(value),
  getPlacementGroup: orNull(aPlacementGroupEntry),
  getNamedPlacementGroup: orNull(aPlacementGroupEntry),
  listPlacementGroups: (value) => list(value, '', aPlacementGroupEntry),
  waitPlacementGroup: orNull(aPlacementGroupEntry),
};

// ---- placement groups (helper pg): the node's validators of the GCS's requests -----------------

/** A node's validator of the GCS's prepareBundles. */
export function parsePrepareBundles(body: unknown): PrepareBundles | ProtocolError {
  return validate(`the body of a '${PREPARE_BUNDLES}' request`, body, (value) => {
    const o = fields(value);
    id(o['placementGroupId'], 'placementGroupId');
    list(o['bundles'], 'bundles', (item) => {
      const b = fields(item, 'bundles[]');
      int(b['index'], 'bundles[].index');
      resources(b['resources'], 'bundles[].resources');
      return b;
    });
    return o as unknown as PrepareBundles;
  });
}

/** A node's validator of the GCS's commitBundles and cancelBundles. */
export function parseBundleIndices(body: unknown): BundleIndices | ProtocolError {
  return validate(`the body of a bundles message from the GCS`, body, (value) => {
    const o = fields(value);
    id(o['placementGroupId'], 'placementGroupId');
    list(o['indices'], 'indices', (item) => int(item, 'indices[]'));
    return o as unknown as BundleIndices;
  });
}

/** A node's validator of the GCS's placementGroupRemoved. */
export function parsePlacementGroupRef(body: unknown): PlacementGroupRef | ProtocolError {
  return validate(`the body of a '${PLACEMENT_GROUP_REMOVED}' message from the GCS`, body, (value) => placementGroupRef(fields(value)));
}

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
