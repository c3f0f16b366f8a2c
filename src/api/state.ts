/**
 * `state`: Ray's state API (ray.util.state) for miniray. Each call asks the GCS through this
 * thread's node, the way nodes() does: in the driver by a direct call, in a task over its
 * worker's channel, and from there to the GCS (in this process in the embedded default, over the
 * connection to the head when joined). So `state.listActors()` works the same in a driver and in
 * a task, embedded and on a cluster.
 */
import { MinirayError, ProtocolError, fromErrorRecord } from '../errors/index.js';
import { GcsClient, type GcsPeer, type GcsRequestOptions } from '../gcs/index.js';
import { ensureRuntime } from '../core-worker/current.js';
import { STATE_GCS_METHODS, type ClusterAnswer, type StateGcsMethod } from '../protocol/index.js';
import { decodeErrorRecord } from '../serialization/index.js';
import { GcsStateSource } from '../state/client.js';
import { listPlacementGroupEntries, type PlacementGroupTableEntry } from './placement-group.js';
import { ClusterLogSource } from '../state/logs.js';
import type { FilterKey } from '../state/filter.js';
import type {
  LogLine,
  LogQuery,
  ActorStateEntry,
  ActorSummary,
  FilterOp,
  JobStateEntry,
  ListOptions,
  ListResult,
  NodeStateEntry,
  ObjectStateEntry,
  ObjectSummary,
  StateKind,
  StateRecords,
  TaskEntry,
  TaskSummary,
  WorkerStateEntry,
} from '../state/types.js';

/**
 * The options of `state.list<Kind>()`: Ray's `filters` as `[key, op, value]` over the fields of
 * that kind's records that can be filtered on (a typo in a key does not compile), `limit`
 * (default 100), `detail`, `timeoutMs` (default 30000).
 */
export type StateListOptions<K extends StateKind> = Omit<ListOptions<StateRecords[K]>, 'filters'> & {
  readonly filters?: readonly (readonly [key: FilterKey<K>, op: FilterOp, value: string | number | boolean])[];
};

/**
 * The GCS as a CoreWorker reaches it: each request goes to this thread's node (clusterInfo), which
 * passes it to its GCS connection. Only the state API's reads go this way.
 */
class ThroughNodePeer implements GcsPeer {
  readonly hello = { role: 'gcs', nodeId: '' } as const;
  readonly isClosed = false;

  async request(method: string, body: unknown, options: GcsRequestOptions = {}): Promise<unknown> {
    if (!(STATE_GCS_METHODS as readonly string[]).includes(method)) {
      throw new MinirayError(`the state API does not call the GCS's '${method}' (it reads ${STATE_GCS_METHODS.join(', ')})`);
    }
    const { timeoutMs } = options;
    const asked = ensureRuntime().coreWorker.clusterInfo({ gcs: method as StateGcsMethod, body, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
    const answer: ClusterAnswer = await asked;
    if ('error' in answer) throw fromErrorRecord(decodeErrorRecord(answer.error));
    if (!('gcs' in answer)) throw new ProtocolError(`the node answered the state API's '${method}' with something else`);
    return answer.gcs;
  }

  notify(method: string): void {
    throw new MinirayError(`the state API sends no '${method}' to the GCS`);
  }

  onClose(): void {}

  close(): void {}
}

/** One source for every thread: it holds no connection of its own (each call asks the current runtime). */
let shared: GcsStateSource | undefined;
function source(): GcsStateSource {
  return (shared ??= new GcsStateSource(new GcsClient(new ThroughNodePeer())));
}
/** The same source for other parts of the API (timeline() reads tasks and core events through it). */
export { source as stateSource };

/**
 * What a list left out, said on stderr as Ray warns: nodes that did not answer (their objects or
 * workers are missing), and task events the cluster dropped under load.
 */
function warnMissing(where: string, result: ListResult<unknown>): void {
  if (result.partial.length > 0) {
    console.warn(
      `miniray: ${where}: ${result.partial.length} node(s) did not answer in time (${result.partial.map((id) => id.slice(0, 8)).join(', ')}); ` +
        'what they hold is missing from this list. Call again, or give a longer timeoutMs',
    );
  }
  if (result.dropped > 0) {
    console.warn(`miniray: ${where}: under load the cluster dropped ${result.dropped} task event(s) or tasks it sampled out, so this list may miss tasks or states (raise taskEventsMaxTasksPerSecond, maxTaskEventsBuffered or maxTaskEventsInGcs to keep more)`);
  }
}

/** Every FilterKey<K> is a key of StateRecords[K]; TypeScript cannot see it for a generic K. */
function widen<K extends StateKind>(options: StateListOptions<K> | undefined): ListOptions<StateRecords[K]> | undefined {
  return options as ListOptions<StateRecords[K]> | undefined;
}

async function listOf<K extends StateKind>(kind: K, where: string, options: StateListOptions<K> | undefined): Promise<StateRecords[K][]> {
  const result = await source().list(kind, widen(options), where);
  warnMissing(where, result);
  return [...result.records];
}

export const state = {
  /**
   * Ray's list_*: the records of `kind` with what the list left out (`total` matched before
   * `limit`, `partial` nodes that did not answer, `dropped` task events), without a warning.
   */
  list<K extends StateKind>(kind: K, options?: StateListOptions<K>): Promise<ListResult<StateRecords[K]>> {
    return source().list(kind, widen(options), `state.list('${kind}')`);
  },
  /** Task attempts (a retry is another attempt of the same taskId), as the GCS's task events have them. */
  listTasks(options?: StateListOptions<'tasks'>): Promise<TaskEntry[]> {
    return listOf('tasks', 'state.listTasks()', options);
  },
  listActors(options?: StateListOptions<'actors'>): Promise<ActorStateEntry[]> {
    return listOf('actors', 'state.listActors()', options);
  },
  /** Objects of every alive node (an object copied to two nodes is listed once per node). */
  listObjects(options?: StateListOptions<'objects'>): Promise<ObjectStateEntry[]> {
    return listOf('objects', 'state.listObjects()', options);
  },
  /** Every node the GCS knows, alive and dead, drivers included (isDriver). */
  listNodes(options?: StateListOptions<'nodes'>): Promise<NodeStateEntry[]> {
    return listOf('nodes', 'state.listNodes()', options);
  },
  /** Drivers that joined, with the Jobs API's submissions. */
  listJobs(options?: StateListOptions<'jobs'>): Promise<JobStateEntry[]> {
    return listOf('jobs', 'state.listJobs()', options);
  },
  /** Worker threads and processes (and each driver's thread) of every alive node. */
  listWorkers(options?: StateListOptions<'workers'>): Promise<WorkerStateEntry[]> {
    return listOf('workers', 'state.listWorkers()', options);
  },
  /** Every placement group the cluster has, removed ones included (Ray's list_placement_groups; helper pg). */
  async listPlacementGroups(): Promise<PlacementGroupTableEntry[]> {
    return listPlacementGroupEntries();
  },
  /** Every attempt of the task, oldest first (empty when the cluster has no events of it). */
  async getTask(taskId: string): Promise<TaskEntry[]> {
    return [...(await source().getTask(taskId))];
  },
  /** The actor, or undefined when the cluster has no such actor. */
  getActor(actorId: string): Promise<ActorStateEntry | undefined> {
    return source().getActor(actorId);
  },
  summarizeTasks(): Promise<TaskSummary> {
    return source().summarizeTasks();
  },
  summarizeActors(): Promise<ActorSummary> {
    return source().summarizeActors();
  },
  summarizeObjects(): Promise<ObjectSummary> {
    return source().summarizeObjects();
  },
  // ---- logs (issue 12) ----
  /**
   * Output lines of tasks and actors, as Ray's get_log: of one task (`taskId`) or actor
   * (`actorId`), the latest `tail` (default 1000) of the whole cluster, oldest first, each with
   * the node, worker and stream it came from. Each node keeps its recent lines (maxLogBytesPerNode).
   */
  async getLog(query: LogQuery = {}): Promise<LogLine[]> {
    const { lines, partial, errors = [] } = await logSource().logs(query);
    // A node that answered with an error did answer: say what, not that it timed out.
    const refused = new Set(errors.map((e) => e.nodeId));
    warnMissing('state.getLog()', { records: lines, total: lines.length, partial: partial.filter((nodeId) => !refused.has(nodeId)), dropped: 0 });
    for (const { nodeId, message } of errors) console.warn(`miniray: state.getLog(): node ${nodeId.slice(0, 8)} answered with an error, so its lines are missing: ${message}`);
    return [...lines];
  },
} as const;

let sharedLogs: ClusterLogSource | undefined;
function logSource(): ClusterLogSource {
  return (sharedLogs ??= new ClusterLogSource(new GcsClient(new ThroughNodePeer())));
}

export type {
  ActorStateEntry,
  ActorSummary,
  JobStateEntry,
  ListOptions,
  ListResult,
  NodeStateEntry,
  ObjectStateEntry,
  ObjectSummary,
  StateFilter,
  FilterOp,
  StateKind,
  StateRecords,
  TaskEntry,
  TaskState,
  TaskSummary,
  TaskType,
  WorkerStateEntry,
  ActorStateName,
  ProfileSpan,
  LogLine,
  LogQuery,
} from '../state/types.js';
