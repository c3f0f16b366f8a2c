/**
 * The messages between a node and its workers (and, later, between nodes). Each is a tagged union
 * member; a channel carries them in batches (one postMessage per batch, not per task), which is what
 * lets thousands of small tasks and results travel per millisecond. Every message that arrives is
 * checked by the validator of its direction (worker-to-node.ts, node-to-worker.ts) before use.
 *
 * Who sends what:
 *   node -> worker: execute (tasks, actor creations and actor calls to run, with their resolved
 *                   ref arguments and any function definitions the worker has not seen),
 *                   reply/response (answers to a request, see WorkerMethods), cancel,
 *                   destroyActor (a 'shared' actor was killed),
 *                   slabs (arena slabs to map), dropSlabs, collect (collect garbage now).
 *   worker -> node: ready, results, logs (its tasks' output lines), submit (tasks submitted by running tasks), put,
 *                   request (get, lookupActor, clusterInfo, generatorNext: see WorkerMethods), cancelRequest,
 *                   blocked/unblocked (a task waits in get, so its CPU is free), cancel,
 *                   createActor, killActor, addRefs/removeRefs, releaseLeases.
 *   Everything but a request is one-way (fire and forget).
 */
import type { FunctionDescriptor } from '../serialization/index.js';
import type { ErrorRecord, MinirayError } from '../errors/index.js';
import type { ActorIdHex, NodeIdHex, ObjectIdHex, RefIdHex, TaskIdHex, WorkerIdHex } from '../ids/index.js';

export { encodeFrame, decodeFrame } from './frame.js';
export { parseWorkerToNode } from './worker-to-node.js';
export { parseNodeToWorker, parseWorkerBootData, WORKER_ANSWER_CHECKS } from './node-to-worker.js';
export { mergeRuntimeEnv, runtimeEnvKey } from './runtime-env.js'; // env
import type { OwnerAddress, OwnerAddressHex } from '../object-ref/index.js';
import type { ProfileSpan } from '../state/types.js';

/**
 * Where one out-of-band binary part of a value is (see serialization/codec.ts). Large typed
 * arrays and Buffers travel this way, so that readers get views instead of copies.
 */
export type Part =
  /** A block of the node's shared-memory arena (the worker has been sent the slab). */
  | { readonly slab: number; readonly offset: number; readonly length: number }
  /** A SharedArrayBuffer attached to the same frame (a worker's new large value). */
  | { readonly attached: number }
  /** The bytes themselves (to and from a worker in another process, which shares no memory). */
  | { readonly bytes: Uint8Array };

/**
 * Resources beyond CPUs a task or actor holds while it runs: 'GPU' (from numGpus) and custom ones
 * a node offers (`--resources '{"disk": 2}'`). Absent when none.
 */
export type ResourceMap = Readonly<Record<string, number>>;

/**
 * Where a task or actor may run (Ray's scheduling strategies): 'DEFAULT' (the hybrid policy: here
 * while this node is not busy, else the least-loaded nodes), 'SPREAD' (over the nodes, round
 * robin), or one node (`soft`: another node when that one cannot run it).
 */
export type SchedulingStrategy = 'DEFAULT' | 'SPREAD' | { readonly nodeId: string; readonly soft: boolean };

/**
 * Everything needed to run a task anywhere, and to run it again after a failure: a task that runs
 * function `functionId`, or a call of `method` on actor `actorId`. `actorId` is the discriminant
 * (isActorCall): a `kind` tag would cost 5 bytes per task in a frame (measured with the frame
 * encoder, 1,000 specs in one submit), and the hot path is made of tasks.
 */
export type TaskSpec = FunctionTaskSpec | ActorCallSpec;

/** A task that runs a remote function. */
export interface FunctionTaskSpec extends TaskSpecBase {
  readonly functionId: string;
  readonly actorId?: undefined;
  readonly method?: undefined;
}

/** A call of a method on an actor: it runs in the actor's worker, with the actor's class at hand. */
export interface ActorCallSpec extends TaskSpecBase {
  readonly functionId?: undefined;
  readonly actorId: ActorIdHex;
  readonly method: string;
}

/** What both kinds of TaskSpec carry. */
export interface TaskSpecBase {
  readonly taskId: TaskIdHex;
  /** Function name (`Class.method` for an actor call), for errors and logs. */
  readonly name: string;
  /** The encoded argument array. Top-level ref arguments are replaced by their values before the call. */
  readonly args: Uint8Array;
  /** Positions in the argument array that hold ObjectRefs to resolve. */
  readonly refArgPositions: readonly number[];
  /** The ObjectIDs at those positions: the task runs when they all exist. */
  readonly dependencies: readonly ObjectIdHex[];
  readonly returnIds: readonly ObjectIdHex[];
  readonly numCpus: number;
  readonly resources?: ResourceMap;
  /** Absent: 'DEFAULT'. */
  readonly strategy?: SchedulingStrategy;
  /** Retries after a worker crash (and after exceptions with retryExceptions). -1: unlimited. */
  readonly maxRetries: number;
  readonly retryExceptions: boolean;
  /** retryExceptions by class: only errors with one of these names in their prototype chain are retried (absent: any error). */
  readonly retryExceptionNames?: readonly string[];
  readonly owner: OwnerAddressHex;
  /** Refs nested inside the arguments: kept alive until the task is done. */
  readonly nestedRefs?: readonly RefIdHex[];
  /** Concurrency groups (actors part): the group a call runs in (absent: the method's, else the default). */
  readonly concurrencyGroup?: string;
  // runtime environments and cancel (env)
  /** Its runtime environment, resolved (inherited and merged); absent: none at all. */
  readonly runtimeEnv?: RuntimeEnvSpec;
  /** The task (or actor call, or actor creation: its actor's ID) that submitted it, when a worker did: cancel({ recursive }) reaches it. */
  readonly parentTaskId?: TaskIdHex | ActorIdHex;
  /**
   * In a cluster, the job it belongs to (its driver's, inherited by the tasks it submits): a node
   * runs many jobs' tasks, and getRuntimeContext() reads it there. Absent in the embedded default,
   * where the node's job is the only one.
   */
  readonly job?: JobInfo;
  /** In a placement group with captureChildTasks: tasks it submits go to the group too (helper pg). */
  readonly captureChildTasks?: true;
  // generators: how its values are returned for numReturns 'streaming', 'dynamic' or 0, or a generator function (absent: a plain return)
  readonly returns?: ReturnMode;
}

/** A job as its tasks carry it (env): its ID (hex, as Ray's '01000000') and its namespace. */
export interface JobInfo {
  readonly jobId: string;
  readonly namespace: string;
}

export function isActorCall(spec: TaskSpec): spec is ActorCallSpec {
  return spec.actorId !== undefined;
}

/**
 * A runtime environment as specs carry it, resolved: the child's envVars merged over its
 * parent's, its workingDir (absolute) or the parent's. Workers are kept apart by it. In a cluster
 * the driver replaces a workingDir with the URI of its package in the GCS
 * (`gcs://_miniray_pkg_<sha256>.tar.gz`, node/working-dir.ts), and `excludes` (what the package
 * leaves out) is dropped once applied.
 */
export interface RuntimeEnvSpec {
  readonly envVars?: Readonly<Record<string, string>>;
  readonly workingDir?: string;
  readonly excludes?: readonly string[];
}

// generators
/**
 * How a task's (or actor call's) values are returned when it is a generator, or asks for no return:
 *  - 'streaming': each yielded value is its own object, reported as it is yielded
 *    (`generatorItem`); returnIds[0] is the stream's end: it holds the number of items once the
 *    generator is done, or the error that ended it. `backpressure`: most items reported and not
 *    yet read by the caller before the generator is paused (Ray's _generator_backpressure_num_objects).
 *  - 'dynamic': the generator runs to its end; returnIds[0] holds an array of refs, one per value.
 *    If it throws, the array ends with a ref whose get() throws the error (as Ray's), unless
 *    `retryThrown` (set by the node when retryExceptions has retries left): the attempt then fails, to be retried.
 *  - 'static': the generator yields exactly `count` values, one per return ID. With count 0
 *    (numReturns: 0) there is one internal return ID, which gets undefined.
 */
export type ReturnMode =
  | { readonly kind: 'streaming'; readonly backpressure?: number }
  | { readonly kind: 'dynamic'; readonly retryThrown?: true }
  | { readonly kind: 'static'; readonly count: number };

/** What a node answers a consumer's next() on a stream: item `index` exists, or the stream ended (ok, or with an error). */
export type GeneratorAnswer = 'item' | 'end' | 'failed';

export type Isolation = 'thread' | 'shared' | 'process';

/** Everything needed to create an actor, and to create it again after its worker died. */
export interface ActorSpec {
  readonly actorId: ActorIdHex;
  /** Function ID of the class's descriptor (shipped like a function). */
  readonly classId: string;
  readonly className: string;
  readonly methodNames: readonly string[];
  /** Encoded constructor arguments, with ref positions as in TaskSpec. */
  readonly args: Uint8Array;
  readonly refArgPositions: readonly number[];
  readonly dependencies: readonly ObjectIdHex[];
  /** Refs nested inside the constructor arguments: kept alive as long as the actor. */
  readonly nestedRefs?: readonly RefIdHex[];
  readonly name: string | undefined;
  readonly namespace: string;
  /** Restarts after its worker or its node dies (one count for both). -1: unlimited. */
  readonly maxRestarts: number;
  /** Retries of a method call that may have run on a lost instance. -1: unlimited. */
  readonly maxTaskRetries: number;
  readonly maxConcurrency: number;
  readonly numCpus: number;
  readonly resources?: ResourceMap;
  readonly strategy?: SchedulingStrategy;
  readonly isolation: Isolation;
  readonly owner: OwnerAddressHex;
  /** lifetime: 'detached': it outlives its owner and lives until killed (absent: it ends with its owner). */
  readonly detached?: boolean;
  /** Restarts it has had so far, on any node: a restarted instance counts on from them (absent: 0). */
  readonly numRestarts?: number;
  /** Its runtime environment, resolved (env); absent: none. */
  readonly runtimeEnv?: RuntimeEnvSpec;
  /** In a placement group with captureChildTasks: tasks its methods submit go to the group too (helper pg). */
  readonly captureChildTasks?: true;
  // generators
  /** Its generator methods: calls to them stream (absent: none). */
  readonly generatorMethods?: readonly string[];
  // Concurrency groups and per-method options (actors part).
  /** Calls that may run at once in each named group (absent: one default group of maxConcurrency). */
  readonly concurrencyGroups?: Readonly<Record<string, number>>;
  /** Per-method defaults from the class's static methodOptions (absent: none). */
  readonly methodOptions?: Readonly<Record<string, MethodOptionsSpec>>;
  /** getIfExists: when a live actor has its name, the caller's handle reaches that one instead. */
  readonly getIfExists?: boolean;
  /**
   * In a cluster, the job that created it (as TaskSpec.job): its constructor and methods run as
   * that job's, on any node and whoever calls them, as Ray's actors do (env).
   */
  readonly job?: JobInfo;
}

/** A method's options as specs and handles carry them (the class's static methodOptions). */
export interface MethodOptionsSpec {
  /** A count, or for a generator method 'streaming' / 'dynamic' (generators). */
  readonly numReturns?: number | 'streaming' | 'dynamic';
  readonly concurrencyGroup?: string;
}

/** What a handle needs to call an actor. */
export interface ActorInfo {
  readonly actorId: ActorIdHex;
  readonly className: string;
  readonly methodNames: readonly string[];
  // Actor lifetimes and per-method options (actors part).
  /**
   * The owner of a non-detached actor: its handles are counted there, as at a ref's owner (absent:
   * detached, not counted). A ref's address: a node that looked the actor up in the GCS knows only
   * the owner's node (workerId '').
   */
  readonly owner?: OwnerAddress;
  readonly methodOptions?: Readonly<Record<string, MethodOptionsSpec>>;
  // generators
  /** Its generator methods: calls to them stream (absent: none). */
  readonly generatorMethods?: readonly string[];
}

/**
 * The answer to a lookup of a named actor: its info, null when there is none, or `error` when the
 * cluster's GCS could not be asked (not "there is none": Ray's get_actor fails then too).
 */
export type ActorLookupCallback = (info: ActorInfo | null, error?: MinirayError) => void;

/**
 * Work as sent to a worker: the spec's executable part plus the values of its ref arguments. One
 * of three kinds, told apart by `actorId` and `method` (no tag, as TaskSpec): a function task, an
 * actor's creation, or a call on an actor.
 */
export type ExecuteTask = ExecuteFunctionTask | ExecuteActorCreation | ExecuteActorCall;

/** A task that runs function `functionId`. */
export interface ExecuteFunctionTask extends ExecuteBase {
  readonly functionId: string;
  readonly actorId?: undefined;
  readonly method?: undefined;
}

/**
 * An actor's creation: `functionId` is its class, `args` its constructor's. Its `taskId` is the
 * actor's ID (a creation has no task of its own; results and logs refer to the actor).
 */
export interface ExecuteActorCreation extends ExecuteBase {
  readonly functionId: string;
  readonly actorId: ActorIdHex;
  readonly method?: undefined;
  /** How many calls may run at once (absent: 1). */
  readonly maxConcurrency?: number;
  /**
   * On a 'shared' worker: where the worker records each call it starts (the seq, in cell `index`
   * of progress block `block`), read by the node if the worker dies. The block's buffer is
   * attached to the frame the first time a worker is given a cell in it (`attached`: its index
   * among the frame's buffers). Without it, calls go to the worker's own progress cell (one actor
   * per worker).
   */
  readonly progressCell?: { readonly block: number; readonly index: number; readonly attached?: number };
  /** Concurrency groups (actors part): calls that may run at once in each (absent: the default group only). */
  readonly concurrencyGroups?: Readonly<Record<string, number>>;
  /** After restarts: how many (getRuntimeContext().wasCurrentActorReconstructed; absent: 0). */
  readonly numRestarts?: number;
}

/** A call of `method` on actor `actorId`, which lives on the worker. */
export interface ExecuteActorCall extends ExecuteBase {
  readonly functionId?: undefined;
  readonly actorId: ActorIdHex;
  readonly method: string;
  /** Concurrency groups (actors part): the group it runs in (absent: the default group). */
  readonly concurrencyGroup?: string;
}

/** What the three kinds of ExecuteTask carry. */
export interface ExecuteBase {
  /** Per-worker sequence number; results and crash accounting refer to it. */
  readonly seq: number;
  /** The spec's taskId; for an actor's creation, the actor's ID. */
  readonly taskId: TaskIdHex | ActorIdHex;
  readonly name: string;
  readonly args: Uint8Array;
  readonly refArgPositions: readonly number[];
  readonly refArgValues: readonly Uint8Array[];
  /** Out-of-band parts of each ref argument's value (absent when none has any). */
  readonly refArgParts?: readonly (readonly Part[])[];
  /** Lease on those parts: the worker releases it once no view of them is left. */
  readonly lease?: number;
  readonly numReturns: number;
  /** The node of the task's (or call's, or actor's) owner, when it is not the worker's: its output goes there too. */
  readonly ownerNode?: NodeIdHex;
  /** What it holds (CPUs as 'CPU'; absent: 1 CPU), and the IDs of its GPUs (helper pg: getAssignedResources, getGpuIds). */
  readonly resources?: ResourceMap;
  readonly gpuIds?: readonly number[];
  readonly captureChildTasks?: true;
  // generators: as TaskSpec.returns (absent: a plain return)
  readonly returns?: ReturnMode;
  /** retryExceptions by class: the worker reports a thrown error as retryable only if it is one of these (absent: any). */
  readonly retryExceptionNames?: readonly string[];
  /** Its spec's job, when the spec names one (a cluster's): the worker's runtime context and children take it (env). */
  readonly job?: JobInfo;
}

/**
 * A line a task or actor wrote to its stdout or stderr, as its worker sends it to its node (which
 * keeps it in its log ring and forwards it to `ownerNode`). A partial line (no newline yet) is
 * sent as a line when its task's result goes, so that nothing waits behind it.
 */
export interface WorkerLogLine {
  readonly stream: 'stdout' | 'stderr';
  readonly timeMs: number;
  /** The task's function name or the actor's class name, as the prefix shows it. */
  readonly name: string;
  readonly text: string;
  readonly taskId?: TaskIdHex | ActorIdHex;
  readonly actorId?: ActorIdHex;
  readonly ownerNode?: NodeIdHex;
}

/**
 * `us`: how long the call ran, in microseconds (the node pipelines only short tasks). `startMs`:
 * when it started on the worker, in epoch milliseconds, and `spans`: its profile() spans (both for
 * task events; absent from older workers, and `spans` when it made none).
 */
export type TaskResult =
  | {
      readonly seq: number;
      readonly outcome: 'ok';
      readonly values: readonly Uint8Array[];
      /** Out-of-band parts of each value, and refs nested in each (absent when none). */
      readonly parts?: readonly (readonly Part[])[];
      readonly nested?: readonly (readonly RefIdHex[])[];
      readonly us: number;
      readonly startMs?: number;
      readonly spans?: readonly ProfileSpan[];
    }
  /** `error` is an encoded ErrorRecord. `userError`: thrown by the task's code (retryable with retryExceptions). */
  | {
      readonly seq: number;
      readonly outcome: 'error';
      readonly error: Uint8Array;
      readonly userError: boolean;
      /** exitActor() (actors part): the actor method ended its actor on purpose. */
      readonly exitActor?: boolean;
      readonly us: number;
      readonly startMs?: number;
      readonly spans?: readonly ProfileSpan[];
    }
  | { readonly seq: number; readonly outcome: 'cancelled' };

/** An object as delivered to a reader. */
export type ObjectPayload =
  | {
      readonly id: ObjectIdHex;
      readonly state: 'ready';
      readonly data: Uint8Array;
      /** Out-of-band parts, with a lease to release once no view of them is left. */
      readonly parts?: readonly Part[];
      readonly lease?: number;
    }
  /** `data` is an encoded ErrorRecord: reading the object throws it. */
  | { readonly id: ObjectIdHex; readonly state: 'failed'; readonly data: Uint8Array }
  /** Never created here, or already gone. */
  | { readonly id: ObjectIdHex; readonly state: 'lost' };

/** The last answer of a poll (a get with `poll`): the objects it has not answered do not exist now. */
export interface PollEnd {
  readonly pollEnd: true;
}

/**
 * An object's value as one node tells another: inline (small values, and any value a reader asked
 * to pull), located on a node that holds it (large values stay where they were made), failed, or
 * lost.
 */
export type RemoteValue =
  | {
      readonly id: string;
      readonly state: 'ready';
      readonly data: Uint8Array;
      readonly parts?: readonly Uint8Array[];
      readonly nested?: readonly string[];
    }
  /** `size`: its bytes, for placing the tasks that read it near it. */
  | { readonly id: string; readonly state: 'located'; readonly location: string; readonly size: number; readonly nested?: readonly string[] }
  /** `data` is an encoded ErrorRecord. */
  | { readonly id: string; readonly state: 'failed'; readonly data: Uint8Array }
  | { readonly id: string; readonly state: 'lost' };

/**
 * Whether a task's value, sent to its owner's node, also stays at the node that made it, kept for
 * the owner until the owner frees it (freeObjects): a large value (located: its bytes are there),
 * and a value with refs inside, which it holds there. The refs inside may have no other holder:
 * the thread that made them may let go of its own as soon as it has returned them, before the
 * owner's readers have borrowed them. So the owner's node records the sender as the value's
 * location, and frees it there when it frees it (as Ray's owner of an outer object keeps the
 * refs inside it alive until it is gone).
 */
export function keptBySender(value: RemoteValue): boolean {
  return value.state === 'located' || (value.state === 'ready' && value.nested !== undefined);
}

export interface NewObject {
  readonly id: ObjectIdHex;
  readonly data: Uint8Array;
  readonly parts?: readonly Part[];
  /** IDs of the refs inside the value: they stay alive as long as it does. */
  readonly nested?: readonly RefIdHex[];
  /** `data` is an error record: get() throws it (a failed 'dynamic' generator's last value, as Ray's). */
  readonly failed?: true;
}

/**
 * The GCS methods a CoreWorker may call through its node, for the state API inside tasks: reads
 * only (state API, helper state).
 */
export const STATE_GCS_METHODS = ['getNodes', 'listActors', 'getActor', 'listJobs', 'kvKeys', 'kvGet', 'askNodes', 'getClusterInfo', 'listTaskEvents', 'getTaskEvents', 'taskMetrics', 'listCoreEvents'] as const;
export type StateGcsMethod = (typeof STATE_GCS_METHODS)[number];
/** The placement-group methods of the GCS a CoreWorker may call through its node (helper pg): writes too, as Ray's API makes them from tasks. */
export const PLACEMENT_GROUP_GCS_METHODS = ['createPlacementGroup', 'removePlacementGroup', 'getPlacementGroup', 'getNamedPlacementGroup', 'listPlacementGroups', 'waitPlacementGroup'] as const;
export type PlacementGroupGcsMethod = (typeof PLACEMENT_GROUP_GCS_METHODS)[number];
/** The state API's call of a GCS method, through the node (the answer comes as it is: the caller's GcsClient checks it). */
export type GcsQuery = { readonly gcs: StateGcsMethod | PlacementGroupGcsMethod; readonly body: unknown; readonly timeoutMs?: number };

/** What a CoreWorker may ask of its cluster (the head's tables, through its node). */
export type ClusterQuery = 'nodes' | 'clusterResources' | 'availableResources' | GcsQuery;

/** A node as the cluster's table shows it. */
export interface ClusterNode {
  readonly nodeId: string;
  readonly alive: boolean;
  readonly address: string;
  readonly resources: ResourceMap;
  readonly isDriver: boolean;
}

/** The answer to a ClusterQuery; `error` (an encoded ErrorRecord) when the head could not be asked. */
export type ClusterAnswer =
  | { readonly nodes: readonly ClusterNode[] }
  | { readonly resources: ResourceMap }
  | { readonly gcs: unknown }
  | { readonly error: Uint8Array };

/**
 * The calls a worker makes on its node that are answered, by method: what the request carries
 * besides its id, and what each answer is. A request travels as one flat message
 * (`{ type: 'request', id, method, ...fields }`, no nested body: one object per request, as before
 * the envelope); its answers as RequestAnswer messages with the same id (transport/requests.ts).
 */
export interface WorkerMethods {
  /**
   * Objects (their data, or readiness only without `withData`, for wait()): one answer per ID as
   * each becomes available, the last one final. `fetchLocal` (wait() only): an object counts once a
   * copy is on this node. `poll` (a get or wait with timeoutMs 0): the objects that exist now are
   * answered, then, if that was not all of them, the final answer is PollEnd.
   */
  readonly get: {
    readonly request: { readonly ids: readonly ObjectIdHex[]; readonly withData: boolean; readonly fetchLocal?: boolean; readonly poll?: boolean };
    readonly answer: ObjectPayload | PollEnd;
  };
  /** A named actor, or null when there is none. */
  readonly lookupActor: { readonly request: { readonly name: string; readonly namespace: string }; readonly answer: ActorInfo | null };
  /** The head's node table or resource totals, or a read of the GCS (state API). */
  readonly clusterInfo: { readonly request: { readonly query: ClusterQuery }; readonly answer: ClusterAnswer };
  // generators
  /**
   * next() on a stream this thread owns: answered when item `index` exists or the stream has ended.
   * `peek`: a wait() on the generator, which takes nothing (no item counts as read).
   */
  readonly generatorNext: {
    readonly request: { readonly generatorId: ObjectIdHex; readonly index: number; readonly peek?: true };
    readonly answer: GeneratorAnswer;
  };
}
export type WorkerMethod = keyof WorkerMethods;
/** What each method's answers are (the value of its RequestAnswer messages). */
export type WorkerAnswers = { readonly [M in WorkerMethod]: WorkerMethods[M]['answer'] };
/** A request for method M (any method by default). `id`: unique among this worker's requests, from 1. */
export type WorkerRequest<M extends WorkerMethod = WorkerMethod> = {
  readonly [K in M]: { readonly type: 'request'; readonly id: number; readonly method: K } & WorkerMethods[K]['request'];
}[M];

/**
 * A request for a method the node does not answer, as its validator passes it on: the envelope is
 * well formed (`id`, a `method` string), so the node answers it with an error response naming the
 * method, as a server answers an unknown RPC (gRPC's UNIMPLEMENTED; src/net's Router does the
 * same), instead of ending the channel. A newer asker may know methods an older node does not;
 * a malformed envelope, or a known method with malformed fields, still ends the channel.
 * Made by the validator (the fields besides these are dropped), never sent as such.
 */
export type UnknownWorkerRequest = { readonly type: 'request'; readonly id: number; readonly method: string; readonly unknownMethod: true };

/**
 * An answer to request `id`. A `reply` is one of several (a get's objects, each as it comes) and
 * more follow; the `response` is the last: its final value, or the error record of its failure
 * (a cancel, a handler that threw). Shaped as src/net/envelope.ts's response, without the method:
 * the asker's pending entry knows it, and checks the value with that method's validator.
 */
export type RequestAnswer =
  | { readonly type: 'reply'; readonly id: number; readonly value: unknown }
  | { readonly type: 'response'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly type: 'response'; readonly id: number; readonly ok: false; readonly error: ErrorRecord };

export type NodeToWorker =
  /** `jobId`: the job's ID (hex), sent once to a worker that does not know it yet (getRuntimeContext). */
  | { readonly type: 'execute'; readonly functions: readonly FunctionDescriptor[]; readonly tasks: readonly ExecuteTask[]; readonly jobId?: string; readonly namespace?: string }
  | RequestAnswer
  | { readonly type: 'cancel'; readonly seqs: readonly number[] }
  /**
   * A 'shared' actor was killed: drop its queued calls (each reported 'cancelled', as it never
   * started) and, with `seq`, report `seq` 'cancelled' after them, so the node knows which of its
   * calls had started.
   */
  | { readonly type: 'destroyActor'; readonly actorId: ActorIdHex; readonly seq?: number }
  /** Dedicated slabs that were freed: forget them. */
  | { readonly type: 'dropSlabs'; readonly indices: readonly number[] }
  /** Memory is short and held by views: collect garbage now, so their leases come back. */
  | { readonly type: 'collect' }
  /** Arena slabs the worker will see parts in, each attached to this frame. */
  | { readonly type: 'slabs'; readonly slabs: readonly { readonly index: number; readonly attached: number }[] }
  // generators
  /** The caller has read `consumed` items of the streaming task `seq` (sent only to tasks with backpressure). */
  | { readonly type: 'generatorAck'; readonly seq: number; readonly consumed: number };

export type WorkerToNode =
  | { readonly type: 'ready' }
  | { readonly type: 'results'; readonly results: readonly TaskResult[] }
  /** Output of its tasks and actors, sent before the results of the tasks that wrote it. */
  | { readonly type: 'logs'; readonly lines: readonly WorkerLogLine[] }
  | { readonly type: 'submit'; readonly functions: readonly FunctionDescriptor[]; readonly tasks: readonly TaskSpec[] }
  | { readonly type: 'put'; readonly objects: readonly NewObject[] }
  | WorkerRequest
  | UnknownWorkerRequest
  /**
   * The caller of request `id` stopped waiting (a get/wait that settled early, a timeout): the node
   * stops working on it and ends it with a RequestCancelledError response, unless it is answered
   * already. Not `cancel`, which is taken by the cancel of a task.
   */
  | { readonly type: 'cancelRequest'; readonly id: number }
  | { readonly type: 'blocked' }
  | { readonly type: 'unblocked' }
  /** `recursive`: the tasks it submitted are cancelled too (absent: false). */
  | { readonly type: 'cancel'; readonly objectId: ObjectIdHex; readonly force: boolean; readonly recursive?: boolean }
  /**
   * `answerAtOnce`: the thread waits on its answer cell (WorkerBootData.answers) for whether the
   * actor's name is free, so that a taken name throws at .remote(), as in the driver.
   */
  | { readonly type: 'createActor'; readonly functions: readonly FunctionDescriptor[]; readonly spec: ActorSpec; readonly answerAtOnce?: boolean }
  | { readonly type: 'killActor'; readonly actorId: ActorIdHex; readonly noRestart: boolean }
  /** This thread now holds (or no longer holds) refs to these objects. */
  /** `owners`: the owner node of each (present when some are owned on another node). */
  | { readonly type: 'addRefs'; readonly ids: readonly RefIdHex[]; readonly owners?: readonly NodeIdHex[] }
  | { readonly type: 'removeRefs'; readonly ids: readonly RefIdHex[] }
  /** No view of the parts given under these leases is left in this thread. */
  | { readonly type: 'releaseLeases'; readonly leases: readonly number[] }
  // generators
  /** Value `index` (0, 1, ...) yielded by the streaming task or call `seq`, sent as it is yielded. */
  | {
      readonly type: 'generatorItem';
      readonly seq: number;
      readonly index: number;
      readonly value: Uint8Array;
      readonly parts?: readonly Part[];
      readonly nested?: readonly RefIdHex[];
    }
  /** This thread let go of a stream (its ObjectRefGenerator was collected or returned): its unread items go. */
  | { readonly type: 'generatorDropped'; readonly generatorId: ObjectIdHex };

/**
 * A worker process ('process' isolation) records the seq of each call it starts at offset 0 of
 * this file descriptor (a file the node opened and already unlinked), as a thread does in its
 * shared progress cell: the node reads it after the process dies, however it died.
 */
export const PROCESS_PROGRESS_FD = 4;

/**
 * The values of a thread's answer cell while it waits in createActor (answerAtOnce): the node
 * writes free or taken with compareExchange from pending; a thread that stops waiting writes
 * notAwaited the same way, and then the node, finding it, makes a taken name's actor dead instead.
 */
export const NameAnswer = { pending: 0, free: 1, taken: 2, notAwaited: 3 } as const;

/** Data handed to a new worker thread. */
export interface WorkerBootData {
  readonly nodeId: NodeIdHex;
  readonly workerId: WorkerIdHex;
  /** Shared Int32Array cell: the seq of the last task the worker started (read after a crash). */
  readonly progress: SharedArrayBuffer;
  /**
   * A thread's shared Int32Array cell for what it waits for synchronously (NameAnswer: whether a
   * named actor's name is free). A process shares no memory, so it has none and is told later.
   */
  readonly answers?: SharedArrayBuffer;
  /** Modules to import before running anything (the driver's --import hooks, e.g. tsx). */
  readonly preload: readonly PreloadModule[];
  /** The runtime environment its tasks run in and their children inherit (env); absent: none. */
  readonly runtimeEnv?: RuntimeEnvSpec;
  /** The job's ID (hex), when known at its start (else the first execute message brings it). */
  readonly jobId?: string;
  /** The job's namespace, with its ID (env). */
  readonly namespace?: string;
  /**
   * The node's gcsReconnectTimeoutMs (the head's, once the node joined a cluster): how long the
   * node waits for a GCS that is away, so the worker waits longer for what the node asks of it.
   * Absent: the worker reads the setting itself.
   */
  readonly gcsReconnectTimeoutMs?: number;
  /**
   * Its node's object store capacity in bytes: put() throws at once for a value larger than the
   * whole store, as the driver's does (the node would refuse it anyway). Absent: not checked here.
   */
  readonly objectStoreBytes?: number;
}

export type PreloadModule =
  | { readonly kind: 'import'; readonly specifier: string }
  /** tsx registers its hooks through its API inside a worker (its --import entry does not). */
  | { readonly kind: 'tsx'; readonly apiUrl: string };
