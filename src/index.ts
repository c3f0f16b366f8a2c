/**
 * miniray: Ray's programming model for TypeScript on Node.js.
 *
 *   import { remote, get } from 'miniray';
 *   const add = remote((a: number, b: number) => a + b);
 *   console.log(await get(add.remote(1, 2))); // 3
 */
export {
  init,
  shutdown,
  isInitialized,
  remote,
  put,
  get,
  wait,
  cancel,
  getRuntimeContext,
  getActor,
  kill,
  memory,
  nodes,
  clusterResources,
  availableResources,
  type NodeInfo,
  type MemoryReport,
  type ActorClass,
  type ActorClassType,
  type ActorHandle,
  type ActorMethod,
  type ActorMethodNames,
  type ActorHandleBase,
  type ActorOptions,
  type ActorLifetime,
  type KillOptions,
  type GetActorOptions,
  type InitOptions,
  type InitResult,
  type TaskOptions,
  type ErrorClass,
  type SchedulingStrategy,
  type GetOptions,
  type WaitOptions,
  type CancelOptions,
  type RemoteFunction,
  type MultiReturnRemoteFunction,
  type RemoteArgs,
  type ReturnRefs,
  type ValuesOf,
  type RuntimeContext,
  type RuntimeEnv,
  // generators
  type StreamingRemoteFunction,
  type DynamicRemoteFunction,
  type StaticGeneratorRemoteFunction,
  type NoReturnRemoteFunction,
  type GeneratorFunction,
  type YieldOf,
  type ReturnCount,
  type RefTuple,
} from './api/index.js';
// Actor lifetimes, concurrency groups and per-method options (actors part).
export {
  exitActor,
  type ActorMethodOptions,
  type MultiReturnActorMethod,
  type MethodOptionsOf,
  type MethodReturnRefs,
  type StaticMethodOptions,
} from './api/index.js';
export { ObjectRef, type OwnerAddress } from './object-ref/index.js';
export { ObjectRefGenerator } from './object-ref/generator.js';
export { state, type StateListOptions, type ActorStateEntry, type ActorStateName, type ActorSummary, type FilterOp, type JobStateEntry, type ListOptions, type ListResult, type NodeStateEntry, type ObjectStateEntry, type ObjectSummary, type ProfileSpan, type StateFilter, type StateKind, type StateRecords, type TaskEntry, type TaskState, type TaskSummary, type TaskType, type WorkerStateEntry } from './api/state.js';
export { timeline, type TimelineOptions, type ChromeTrace, type TraceEvent } from './api/timeline.js';
// placement groups (helper pg)
export {
  PlacementGroup,
  placementGroup,
  removePlacementGroup,
  placementGroupTable,
  getPlacementGroup,
  type PlacementGroupOptions,
  type PlacementGroupLifetime,
  type PlacementGroupTableEntry,
  type PlacementStrategy,
  type PlacementGroupState,
} from './api/placement-group.js';
export type { PlacementGroupSchedulingStrategy } from './api/options.js';
export { describeSettings } from './config/index.js';
export { profile, type ProfileOptions, type ProfileSpanHandle } from './core-worker/profile.js';
export { ActorPool, type PoolSubmit, type ActorPoolGetOptions } from './util/actor-pool.js';
export { Queue, type QueueOptions, type QueuePutOptions, type QueueGetOptions } from './util/queue.js';
export { progress, type ProgressOptions, type ProgressStream } from './util/progress.js';
// multiprocessing.Pool and the util namespace (Ray's ray.util)
export { Pool, AsyncResult, IMapIterator, type PoolOptions, type PoolFunction, type PoolMapOptions, type PoolIMapOptions, type PoolCallbacks } from './util/multiprocessing/pool.js';
export { util } from './util/index.js';
export type { LogLine, LogQuery } from './state/types.js';
export { ObjectID, TaskID, ActorID, NodeID, WorkerID, JobID, type UniqueId } from './ids/index.js';
export { ObjectStore, type ObjectStoreStats, type ArenaStats } from './object-store/index.js';
export type { ObjectInfo } from './ownership/index.js';
export type { TaskSpec } from './protocol/index.js';
/** The deepest nesting a value given to put(), .remote() or returned from a task may have. */
export { MAX_DEPTH } from './serialization/index.js';
export {
  MinirayError,
  TaskError,
  WorkerCrashedError,
  OutOfMemoryError,
  GetTimeoutError,
  TaskCancelledError,
  ObjectLostError,
  OwnerDiedError,
  ObjectReconstructionFailedError,
  SerializationError,
  ObjectStoreFullError,
  InvalidOptionError,
  InvalidArgumentError,
  CapturedVariableError,
  ActorDiedError,
  ActorExitError,
  ActorNotFoundError,
  PlacementGroupRemovedError,
  RuntimeEnvSetupError,
  NodeDiedError,
  QueueEmptyError,
  QueueFullError,
  ProtocolError,
  AuthenticationError,
  ConnectionError,
  GcsStoreError,
  GcsUnavailableError,
  RequestTimeoutError,
  RequestCancelledError,
} from './errors/index.js';
