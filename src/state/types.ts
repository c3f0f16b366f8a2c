/**
 * What the state API returns: one record type per kind of thing in a cluster, with Ray's state
 * names (python/ray/util/state/common.py) and camelCase fields. These are the shapes the GCS
 * answers with, the CLI prints, the dashboard shows and `state.list*` resolves to, so that every
 * door shows the same record. Records are type aliases of plain data (they cross threads, TCP and
 * HTTP as they are).
 */

/** Ray's task states (common.proto's TaskStatus), in the order a task goes through them. */
export const TASK_STATES = ['PENDING_ARGS_AVAIL', 'PENDING_NODE_ASSIGNMENT', 'SUBMITTED_TO_WORKER', 'RUNNING', 'FINISHED', 'FAILED'] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const TASK_TYPES = ['NORMAL_TASK', 'ACTOR_CREATION_TASK', 'ACTOR_TASK'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/** A custom span from `profile(name)` inside a task, in epoch milliseconds. */
export type ProfileSpan = {
  readonly name: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly extraData?: Readonly<Record<string, string>>;
};

/** One attempt of one task (a retry is a new attempt of the same taskId). */
export type TaskEntry = {
  readonly taskId: string;
  /** 0 for the first run, 1 for the first retry, ... */
  readonly attempt: number;
  /** The function's name, or `Class.method` for an actor call, `Class.constructor` for a creation. */
  readonly name: string;
  readonly type: TaskType;
  readonly state: TaskState;
  readonly actorId?: string;
  /** The node of the task's owner (its submitter). */
  readonly ownerNodeId: string;
  /** Where it ran (or runs), once it was given to a worker. */
  readonly nodeId?: string;
  readonly workerId?: string;
  readonly requiredResources: Readonly<Record<string, number>>;
  /** Epoch milliseconds: submitted; started on its worker; finished or failed. */
  readonly creationTimeMs: number;
  readonly startTimeMs?: number;
  readonly endTimeMs?: number;
  /** Set when FAILED: the error's class name and message (as `get` would throw it). */
  readonly errorType?: string;
  readonly errorMessage?: string;
  /** detail only: every state change with its time, and the task's profile spans. */
  readonly events?: readonly { readonly state: TaskState; readonly timeMs: number }[];
  readonly profile?: readonly ProfileSpan[];
};

export const ACTOR_STATE_NAMES = ['DEPENDENCIES_UNREADY', 'PENDING_CREATION', 'ALIVE', 'RESTARTING', 'DEAD'] as const;
export type ActorStateName = (typeof ACTOR_STATE_NAMES)[number];

export type ActorStateEntry = {
  readonly actorId: string;
  readonly className: string;
  readonly name?: string;
  readonly namespace: string;
  readonly state: ActorStateName;
  readonly nodeId?: string;
  readonly ownerNodeId: string;
  readonly numRestarts: number;
  readonly maxRestarts: number;
  readonly detached: boolean;
  /** Why it died, once DEAD. */
  readonly deathCause?: string;
};

export type ObjectStateEntry = {
  readonly objectId: string;
  /** The node whose store (or directory) reported it. An object copied to two nodes is listed twice. */
  readonly nodeId: string;
  readonly state: 'pending' | 'ready' | 'failed';
  readonly sizeBytes: number;
  readonly location: 'memory' | 'disk' | 'none' | 'remote';
  /** The owner, as memory() names it. */
  readonly owner: string;
  /** What keeps it alive (threads with refs, holds), as memory() names them. */
  readonly referencedBy: readonly string[];
};

export type NodeStateEntry = {
  readonly nodeId: string;
  readonly state: 'ALIVE' | 'DEAD';
  readonly address: string;
  readonly isHead: boolean;
  readonly isDriver: boolean;
  readonly resourcesTotal: Readonly<Record<string, number>>;
  readonly resourcesAvailable: Readonly<Record<string, number>>;
  readonly deathReason?: string;
};

export type JobStateEntry = {
  /** The GCS's job ID (one per driver that joined), as a string: "1", "2", ... */
  readonly jobId: string;
  /** Set for a job started through the Jobs API (`miniray job submit`). */
  readonly submissionId?: string;
  readonly status: 'PENDING' | 'RUNNING' | 'STOPPED' | 'SUCCEEDED' | 'FAILED';
  readonly driverNodeId?: string;
  readonly entrypoint?: string;
  readonly startTimeMs: number;
  readonly endTimeMs?: number;
};

export type WorkerStateEntry = {
  readonly workerId: string;
  readonly nodeId: string;
  /** 'driver' is the driver's own thread; 'task' a task worker thread; 'actor' an actor host. */
  readonly workerType: 'driver' | 'task' | 'actor';
  readonly isAlive: boolean;
  /** The process it runs in (worker threads share their node's pid). */
  readonly pid: number;
  /** Thread or child process. */
  readonly isolation: 'thread' | 'process';
};

/** What `state.list<Kind>` lists, and the record of each. */
export type StateRecords = {
  tasks: TaskEntry;
  actors: ActorStateEntry;
  objects: ObjectStateEntry;
  nodes: NodeStateEntry;
  jobs: JobStateEntry;
  workers: WorkerStateEntry;
};
export type StateKind = keyof StateRecords;
/** Every kind, in the order the CLI and the dashboard show them. */
export const STATE_KINDS = ['tasks', 'actors', 'objects', 'nodes', 'jobs', 'workers'] as const satisfies readonly StateKind[];

/** Ray's filter predicates. Values compare as strings (numbers and booleans by their text), as Ray's do. */
export type FilterOp = '=' | '!=';
export type StateFilter<R> = readonly [key: keyof R & string, op: FilterOp, value: string | number | boolean];

export interface ListOptions<R> {
  /** Kept when every filter matches. */
  readonly filters?: readonly StateFilter<R>[];
  /** At most this many records (default 100, as Ray's). */
  readonly limit?: number;
  /** Include the fields only detail gives (a task's events and profile spans). */
  readonly detail?: boolean;
  /** How long to wait for the GCS and the nodes (default 30000). */
  readonly timeoutMs?: number;
}

/**
 * A list, and what it left out: `total` matched before `limit`; `partial` names the nodes that did
 * not answer (their objects or workers are missing); `dropped` counts task events the cluster
 * dropped under load (so the task list is incomplete by about that many).
 */
export type ListResult<R> = {
  readonly records: readonly R[];
  readonly total: number;
  readonly partial: readonly string[];
  readonly dropped: number;
};

export type TaskSummary = {
  /** Per function (or Class.method) name: how many attempts are in each state. */
  readonly byName: Readonly<Record<string, { readonly type: TaskType; readonly states: Readonly<Partial<Record<TaskState, number>>> }>>;
  readonly total: number;
};
export type ActorSummary = {
  readonly byClass: Readonly<Record<string, Readonly<Partial<Record<ActorStateName, number>>>>>;
  readonly total: number;
};
export type ObjectSummary = {
  readonly totalObjects: number;
  readonly totalBytes: number;
  readonly byNode: Readonly<Record<string, { readonly objects: number; readonly bytes: number; readonly spilledObjects: number; readonly spilledBytes: number }>>;
};

/**
 * Per-node figures for /metrics and the dashboard's cluster view: one entry per alive node that
 * answered.
 */
export type NodeStats = {
  readonly nodeId: string;
  readonly storeUsedBytes: number;
  readonly storeCapacityBytes: number;
  readonly spilledBytes: number;
  readonly spilledObjects: number;
  readonly objects: number;
  readonly workers: number;
  readonly queuedTasks: number;
};

/** Counts kept by the GCS as task events arrive, for /metrics (a histogram per function). */
export type TaskMetrics = {
  /** name -> state -> attempts now in that state. */
  readonly byState: Readonly<Record<string, Readonly<Partial<Record<TaskState, number>>>>>;
  /** name -> run time histogram in seconds (Prometheus' cumulative buckets: counts[i] are <= bounds[i]). */
  readonly runTime: Readonly<Record<string, { readonly bounds: readonly number[]; readonly counts: readonly number[]; readonly sum: number; readonly count: number }>>;
  /** Task events dropped under load since the GCS started. */
  readonly droppedEvents: number;
};

/**
 * What the state API is read from: one implementation (src/state/client.ts, over a GcsClient),
 * used by `state.*` in drivers and tasks, by the CLI (connected to the head's GCS) and by the
 * dashboard (in the head's process). Fakes of it test the CLI and the dashboard without a cluster.
 */
export interface StateSource {
  list<K extends StateKind>(kind: K, options?: ListOptions<StateRecords[K]>): Promise<ListResult<StateRecords[K]>>;
  getTask(taskId: string): Promise<readonly TaskEntry[]>;
  getActor(actorId: string): Promise<ActorStateEntry | undefined>;
  summarizeTasks(): Promise<TaskSummary>;
  summarizeActors(): Promise<ActorSummary>;
  summarizeObjects(): Promise<ObjectSummary>;
  nodeStats(): Promise<readonly NodeStats[]>;
  taskMetrics(): Promise<TaskMetrics>;
  /** The latest get/put/wait calls the nodes recorded (bounded), for the timeline. */
  coreEvents(): Promise<readonly CoreEvent[]>;
}

/** A call into the object API, for the timeline: a span on the lane of the thread that made it. */
export type CoreEvent = {
  readonly kind: 'get' | 'put' | 'wait';
  readonly nodeId: string;
  /** The thread: a worker ID, or the driver's. */
  readonly workerId: string;
  readonly startMs: number;
  readonly endMs: number;
  /** How many objects it was about. */
  readonly count: number;
};

/** One line a task or an actor wrote to stdout or stderr, as its node kept it. */
export type LogLine = {
  readonly nodeId: string;
  /** Increasing per node: a `follow` asks for lines after the last it saw of each node. */
  readonly seq: number;
  readonly timeMs: number;
  readonly stream: 'stdout' | 'stderr';
  readonly workerId: string;
  /** The task's or the actor's name, as the line's prefix shows it. */
  readonly name: string;
  readonly taskId?: string;
  readonly actorId?: string;
  readonly text: string;
};

export interface LogQuery {
  readonly taskId?: string;
  readonly actorId?: string;
  /** Per node ID, the last seq already seen (for `--follow`). */
  readonly after?: Readonly<Record<string, number>>;
  /** At most this many lines, the latest (default 1000). */
  readonly tail?: number;
}

/**
 * A node's answer to the state API's 'logs' (`nodeState`): the lines that match, and the seq of the
 * latest line it numbered, matched or not, shown or cut by the tail: where a follower goes on from.
 */
export type NodeLogAnswer = { readonly lines: readonly LogLine[]; readonly lastSeq: number };

/** What `miniray logs` and the dashboard's log view read (src/state/logs.ts). */
export interface LogSource {
  logs(query: LogQuery): Promise<{
    readonly lines: readonly LogLine[];
    /** Nodes whose lines are missing: they did not answer (or answered with an error: `errors`). */
    readonly partial: readonly string[];
    /** Of `partial`, the nodes that answered with an error or with what is not their lines, and what. */
    readonly errors?: readonly { readonly nodeId: string; readonly message: string }[];
    /**
     * The `after` to follow from: per node that answered, its latest seq (so lines the tail cut are
     * not shown later). Without it a follower goes on from the last line of each node it got.
     */
    readonly cursor?: Readonly<Record<string, number>>;
  }>;
}

/** The GCS KV namespace of the Jobs API's records (JobSubmissionRecord as JSON, by submissionId). */
export const JOB_SUBMISSIONS = 'job_submission';

/**
 * A job started through the Jobs API, as the head keeps it (GCS KV, namespace
 * 'job_submission', key = submissionId, value = this record as JSON): the dashboard, `miniray job`
 * and `state.listJobs` all read it there.
 */
export type JobSubmissionRecord = {
  readonly submissionId: string;
  readonly entrypoint: string;
  readonly status: 'PENDING' | 'RUNNING' | 'STOPPED' | 'SUCCEEDED' | 'FAILED';
  readonly message?: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly runtimeEnv: { readonly envVars?: Readonly<Record<string, string>>; readonly workingDir?: string };
  readonly entrypointNumCpus: number;
  readonly startTimeMs: number;
  readonly endTimeMs?: number;
  readonly driverExitCode?: number;
  /** The GCS job ID of the driver once it joined (init() in the entrypoint). */
  readonly jobId?: string;
};
