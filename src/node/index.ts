/**
 * One node (Ray's raylet): it wires the object store and directory, the scheduler, the worker pool
 * and the actor manager, and handles everything workers say. What readers are sent of objects is
 * in delivery.ts. In the embedded default the node lives in the driver's thread and the driver's
 * CoreWorker calls it directly (`LocalNodeClient`, local-client.ts); workers talk to it over
 * channels.
 *
 * Task life: submitted -> waiting (for ref arguments) -> queued (scheduler) -> running (sent to a
 * worker) -> finished. A worker's death sends its started tasks back to the queue while retries
 * last (maxRetries), and its not-yet-started ones back without using a retry.
 */
import type { ResourceLimits } from 'node:worker_threads';
import { setting } from '../config/index.js';
import {
  InvalidOptionError,
  MinirayError,
  ObjectLostError,
  ObjectReconstructionFailedError,
  OutOfMemoryError,
  OwnerDiedError,
  PlacementGroupRemovedError,
  TaskCancelledError,
  WorkerCrashedError,
} from '../errors/index.js';
import { bundleResources, groupOf, groupsIn, plainOf } from '../placement-group/resources.js';
import { embeddedInfeasibleError, groupRequest, nameTakenError } from '../placement-group/creation.js';
import { NodeID } from '../ids/index.js';
import { ObjectStore, type Block } from '../object-store/index.js';
import { Lineage, ObjectDirectory, specBytes, unhandledErrorReporter, type ObjectEntry, type ObjectInfo } from '../ownership/index.js';
import { demandOf, type ClusterLink, type ForwardedLogLine, type RemoteWork } from './cluster-link.js';
import { ObjectDelivery } from './delivery.js';
import { GeneratorStreams } from './generators.js';
import { WorkerRequests } from './worker-requests.js';
import { generatorItemId } from '../object-ref/generator.js';

/** Items up to this size go inline to their owner's node (as the cluster's INLINE_LIMIT for returns). */
const INLINE_ITEM_LIMIT = 100 * 1024;
import { RemoteObjects } from './remote-objects.js';
import { isPackageUri, WorkingDirCache, workingDirCacheRoot } from './working-dir.js';
import { ActorManager } from '../actors/manager.js';
import type {
  ActorInfo,
  ActorSpec,
  ClusterAnswer,
  ClusterQuery,
  ExecuteTask,
  GeneratorAnswer,
  NewObject,
  ObjectPayload,
  RemoteValue,
  ResourceMap,
  RuntimeEnvSpec,
  TaskResult,
  TaskSpec,
  WorkerLogLine,
  WorkerToNode,
} from '../protocol/index.js';
import { Scheduler } from '../scheduler/index.js';
import { GpuIdPool } from '../scheduler/gpu-ids.js';
import { encodeError, type FunctionDescriptor } from '../serialization/index.js';
import { runtimeEnvKey } from '../protocol/index.js';
import { WorkerPool, type PooledWorker } from '../worker-pool/index.js';
import { TaskEventBuffer, PENDING_NODE_ASSIGNMENT, SUBMITTED_TO_WORKER } from '../state/events.js';
import { LogRing } from '../state/log-lines.js';
import type { LogQuery, NodeLogAnswer } from '../state/types.js';

/** generators: a 'dynamic' attempt whose throw is retried (retryExceptions, retries left) fails rather than keep partial results. */
const RETRY_THROWN = Object.freeze({ kind: 'dynamic', retryThrown: true } as const);

export interface NodeOptions {
  readonly numWorkers: number;
  readonly numCpus: number;
  /** GPUs and custom resources the node offers (CPUs are numCpus). */
  readonly resources: ResourceMap;
  readonly objectStoreMemory: number;
  readonly workerResourceLimits: ResourceLimits | undefined;
  /** Where objects spill when memory is full (default: a folder in the temp directory). */
  readonly spillDirectory: string | undefined;
  /** The job's runtime environment (init({ runtimeEnv })): this node's own workers run in it (env). */
  readonly runtimeEnv?: RuntimeEnvSpec | undefined;
}

/** What memory() reports. */
export interface MemoryReport {
  readonly objects: readonly ObjectInfo[];
  readonly store: ReturnType<ObjectStore['stats']>;
}

type TaskState = 'waiting' | 'queued' | 'running' | 'finished';

interface TaskRecord {
  readonly spec: TaskSpec;
  readonly numCpus: number;
  /** 'running' on another node (the cluster link reports its end). */
  remote: boolean;
  /** Sent by another node to run here: it never goes elsewhere again. */
  readonly fromPeer: boolean;
  /** Holds its GPUs and custom resources from this node's (see reserveResources). */
  reserved: boolean;
  state: TaskState;
  /** Retries used so far (here). */
  retries: number;
  /** Its attempt when it came here: the owner's retries for a task from a peer, else 0 (events record firstAttempt + retries). */
  readonly firstAttempt: number;
  cancelled: boolean;
  worker: PooledWorker<TaskRecord> | undefined;
  seq: number;
  /** The GPUs it holds, by ID, while it holds its resources (helper pg: GPU IDs). */
  gpus: GpuHold | undefined;
  /**
   * Whether its events are recorded (src/state/events.ts): false when recording is off or the task
   * was sampled out (here, or by its owner), and then no taskEvents method is called for it.
   */
  readonly traced: boolean;
}

/** GPU IDs taken from a pool (the node's, or a placement group bundle's) for `amount` GPUs. */
interface GpuHold {
  readonly ids: number[];
  readonly amount: number;
  readonly pool: GpuIdPool;
}


type Worker = PooledWorker<TaskRecord>;
type Building<T> = { -readonly [K in keyof T]: T[K] };


export class Node {
  readonly nodeId = NodeID.fromRandom().toHex();
  /** State changes of tasks and actors, and get/put/wait calls, for the GCS (src/state/events.ts). */
  readonly taskEvents = new TaskEventBuffer(this.nodeId);
  readonly store: ObjectStore;
  private readonly objects: ObjectDirectory<TaskRecord>;
  private readonly delivery: ObjectDelivery<TaskRecord>;
  /** Objects as other nodes see them: values sent and taken in, pulls, copies (for the cluster link). */
  readonly remoteObjects: RemoteObjects<TaskRecord>;
  private readonly functions = new Map<string, FunctionDescriptor>();
  /** Recent run time of each function's tasks, in microseconds (a moving average). */
  private readonly runTimeUs = new Map<string, number>();
  private readonly scheduler: Scheduler<TaskRecord, Worker>;
  private readonly pool: WorkerPool<TaskRecord>;
  private readonly actors: ActorManager;
  /** Workers that sent something malformed: handled as crashed, nothing more of theirs is read. */
  private readonly badWorkers = new WeakSet<Worker>();
  /** Workers that have said `ready` (once each). */
  private readonly readyWorkers = new WeakSet<Worker>();
  /** Tasks of each worker waiting in get() (`blocked` and not yet `unblocked`). */
  private readonly blockedTasks = new Map<Worker, number>();
  private dispatchQueued = false;
  /** Force-cancelled tasks that their worker had not started yet when cancel() came, with their next check (see watchForceCancel). */
  private readonly forceCancelWatches = new Map<TaskRecord, NodeJS.Timeout>();
  private startupFailures = 0;
  /** Set when workers keep failing to start: tasks fail with it instead of waiting forever. */
  private startupError: Error | undefined;
  private stopped = false;
  /** The cluster this node belongs to (in the embedded default too, with no other node in it). */
  private cluster: ClusterLink | undefined;
  /** GPUs and custom resources not held by tasks and actors (CPUs are the scheduler's). */
  private readonly freeResources: Map<string, number>;
  /** Tasks queued here waiting for those, in order. */
  private readonly waitingForResources: TaskRecord[] = [];

  /** Read once, here: a bad value fails init(), not some later message's handling. */
  private readonly workerStartupFailureLimit = setting('workerStartupFailureLimit');
  /** Specs of this node's finished tasks whose results are referenced: to re-run them if those are lost. */
  private readonly lineage = new Lineage<TaskRecord>(setting('maxLineageBytes'));
  /** The recent output lines of this node's tasks and actors (served to the state API's 'logs'). */
  private readonly logRing: LogRing;
  /**
   * Actor calls this node owns that have not reported, by first return ID (only in a cluster):
   * those of an actor with maxTaskRetries are kept in lineage once they finish (see actorCallDone).
   */
  private readonly actorCallsPending = new Map<string, TaskRecord>();

  // generators
  /** Streams of the streaming generator tasks this node owns (made on first use). */
  private generators: GeneratorStreams<TaskRecord> | undefined;

  private streams(): GeneratorStreams<TaskRecord> {
    return (this.generators ??= new GeneratorStreams(this.objects));
  }

  /** next() of an ObjectRefGenerator in `thread` (which owns its task); `peek`: wait([gen]), which reads nothing. */
  generatorNext(thread: string, generatorId: string, index: number, answer: (answer: GeneratorAnswer) => void, peek = false): void {
    if (peek) this.streams().peek(thread, generatorId, index, answer);
    else this.streams().next(thread, generatorId, index, answer);
  }

  /** `thread` let go of its ObjectRefGenerator: the items it did not read go. */
  generatorDropped(thread: string, generatorId: string): void {
    this.generators?.drop(thread, generatorId);
  }

  /**
   * Item `index` yielded by the streaming task or actor call `spec`, running on `worker` as `seq`:
   * stored here for the stream if this node owns it, else sent to the owner's node. Returns what is
   * wrong with the report instead.
   */
  private onGeneratorItem(worker: Worker, message: Extract<WorkerToNode, { type: 'generatorItem' }>, attached: readonly SharedArrayBuffer[]): string | undefined {
    const { seq } = message;
    if (seq < 1 || seq >= worker.nextSeq) return `reports an item of seq ${seq}, which it was never given`;
    const spec = worker.role === 'task' ? worker.inFlight.get(seq)?.spec : this.actors.callSpec(worker, seq);
    if (spec === undefined) return undefined; // reported or taken back already: a late item is not kept
    if (spec.returns?.kind !== 'streaming') return `reports an item of ${spec.name} (seq ${seq}), which is not a streaming generator`;
    const problem = this.delivery.checkParts(message.parts, attached, `has item ${message.index} whose`);
    if (problem !== undefined) return problem;
    const generatorId = spec.returnIds[0] as string;
    const result: Building<Extract<TaskResult, { outcome: 'ok' }>> = { seq, outcome: 'ok', values: [message.value], us: 0 };
    if (message.parts !== undefined) result.parts = [message.parts];
    if (message.nested !== undefined) result.nested = [message.nested];
    const store = (id: string): void => this.delivery.storeResult(worker, [id], result, attached);
    const ack = (consumed: number): void => {
      if (worker.alive) worker.channel.send({ type: 'generatorAck', seq, consumed });
    };
    if (spec.owner.nodeId === this.nodeId) return this.streams().item(generatorId, message.index, store, `${worker.id}:${seq}`, ack);
    // The task runs here for another node: the item is stored here, then sent to its owner's node.
    const id = generatorItemId(generatorId, message.index);
    if (this.objects.get(id) !== undefined) return undefined; // a retry's repeat, sent already
    this.objects.addPending(id, spec.owner.workerId, undefined);
    store(id);
    const value = this.remoteObjects.valueFor(id, INLINE_ITEM_LIMIT);
    // Sent inline: the owner has the value, nothing here needs it any more (as runForPeer's returns).
    if (value.state !== 'located') this.objects.removeHandles(spec.owner.workerId, [id]);
    this.cluster?.generatorItem(spec, message.index, value, ack);
    return undefined;
  }

  /**
   * Item `index` of a stream this node owns, from `fromNode`, which runs its task (`value` as
   * RemoteObjects carries it); `ack` tells that node what the reader has read.
   */
  generatorItemFromPeer(generatorId: string, index: number, value: RemoteValue, fromNode: string, ack: (consumed: number) => void): void {
    this.generators?.item(generatorId, index, () => this.remoteObjects.storeValues([value], fromNode), `node:${fromNode}`, ack);
  }

  constructor(readonly options: NodeOptions) {
    this.logRing = new LogRing(this.nodeId, setting('maxLogBytesPerNode'));
    const reportUnhandledError = unhandledErrorReporter();
    const pipelineMaxTaskUs = setting('pipelineMaxTaskUs');
    const maxTasksInFlightPerWorker = setting('maxTasksInFlightPerWorker');
    this.store = new ObjectStore(options.objectStoreMemory, {
      owner: { nodeId: this.nodeId, workerId: '' },
      spillDirectory: options.spillDirectory,
      onSlabReleased: (index) => this.delivery.forgetSlab(index),
      onPressure: () => this.delivery.collectEverywhere(),
    });
    this.store.warmUp();
    this.objects = new ObjectDirectory<TaskRecord>(this.store, reportUnhandledError, (id, entry) => {
      // Actor lifetimes: the last handle of a non-detached actor is gone, here and at its borrowers.
      if (entry.actorHandle === true) return this.actorOutOfScope(id);
      this.lineage.freed(id);
      this.cluster?.freed(id, entry);
    });
    this.freeResources = new Map(Object.entries(options.resources));
    this.delivery = new ObjectDelivery(
      this.store,
      this.objects,
      () => this.driverId,
      () => this.pool.allWorkers().filter((w) => w.alive),
      (worker, problem) => this.onBadMessage(worker as Worker, problem),
    );
    this.remoteObjects = new RemoteObjects(this.nodeId, this.store, this.objects, this.delivery, {
      nodeDied: (nodeId) => this.nodeDied(nodeId),
      holderLost: (id, nodeId) => this.holderLost(id, nodeId),
    });
    this.scheduler = new Scheduler<TaskRecord, Worker>(
      options.numCpus,
      maxTasksInFlightPerWorker,
      // Only functions seen to run short may wait behind other tasks; unknown ones count as long.
      (record) => (this.runTimeUs.get(record.spec.functionId) ?? Infinity) <= pipelineMaxTaskUs,
    );
    this.pool = new WorkerPool<TaskRecord>({
      nodeId: this.nodeId,
      size: options.numWorkers,
      resourceLimits: options.workerResourceLimits,
      onMessage: (worker, message, attached) => this.onWorkerMessage(worker, message, attached),
      onBadMessage: (worker, error) => this.onBadMessage(worker, error.message),
      onExit: (worker) => this.onWorkerExit(worker),
      runtimeEnv: options.runtimeEnv,
      jobId: () => this.jobId,
      namespace: () => this.namespace,
      workingDirOf: (dir) => this.workingDirs?.localDir(dir) ?? dir,
    });
    this.actors = new ActorManager({
      functionDescriptor: (id) => this.functions.get(id),
      spawnHost: (isolation, runtimeEnv) => this.pool.spawnActorHost(isolation, this.needsOwnWorkers(runtimeEnv) ? (runtimeEnv ?? {}) : undefined),
      needsOwnHost: (runtimeEnv) => this.needsOwnWorkers(runtimeEnv),
      killHost: (host) => this.pool.kill(host as Worker, 'actor'),
      setBusy: (host, busy) => this.pool.setBusy(host as Worker, busy),
      // An actor here reads its arguments here: copies come first of those held elsewhere.
      waitForObjects: (what, ids, ready, failed) => this.waitForObjects(what, ids, () => this.withCopies(ids, ready), failed),
      argumentsFor: (ids, host) => this.delivery.argumentsFor(ids, host as Worker),
      storeResults: (host, ids, result, attached) => {
        this.actorCallDone(ids[0] as string, true);
        this.delivery.storeResult(host as Worker, ids, result, attached);
      },
      failObjects: (ids, error) => {
        this.actorCallDone(ids[0] as string, false);
        for (const id of ids) this.objects.setObject(id, error, true);
      },
      hold: (key, ids, reason) => this.objects.hold(key, ids, reason),
      releaseHolds: (key) => this.objects.releaseHolds(key),
      tryReserveCpus: (amount, resources, actorId) => {
        if (!this.resourcesFree(resources) || !this.scheduler.tryReserve(amount)) return false;
        this.takeResources(resources, -1);
        const gpus = resources === undefined || actorId === undefined ? undefined : this.takeGpus(resources);
        if (gpus !== undefined) this.actorGpus.set(actorId as string, gpus);
        return true;
      },
      gpuIdsOf: (actorId) => this.actorGpus.get(actorId)?.ids,
      releaseCpus: (amount, resources, actorId) => {
        const gpus = actorId === undefined ? undefined : this.actorGpus.get(actorId);
        if (gpus !== undefined) {
          this.giveGpus(gpus);
          this.actorGpus.delete(actorId as string);
        }
        this.scheduler.releaseCpus(amount);
        this.takeResources(resources, 1);
        this.queueResourceWaiters();
        this.scheduleDispatch();
        // Actors waiting for CPUs may start now (after this actor's teardown has finished).
        queueMicrotask(() => this.actors.onCpusReleased());
      },
      onDead: (actorId, reason) => this.cluster?.actorDied(actorId, reason),
      onAlive: (actorId, numRestarts) => this.cluster?.actorAlive(actorId, numRestarts),
      taskEvents: this.taskEvents,
      totalCpus: options.numCpus,
      nodeId: this.nodeId,
      sharedHostCount: Math.max(1, Math.ceil(options.numCpus)),
    });
    this.pool.start();
  }

  /** Joins this node to its cluster (see cluster-link.ts). */
  attachCluster(link: ClusterLink): void {
    this.cluster = link;
  }

  /** Resolves when all workers have started; rejects with the reason if one cannot start. */
  ready(): Promise<void> {
    return this.pool.whenReady();
  }

  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.taskEvents.stop();
    for (const timer of this.forceCancelWatches.values()) clearTimeout(timer);
    this.forceCancelWatches.clear();
    this.keepAliveWhileQueued();
    await this.pool.shutdown();
    this.workingDirs?.clear();
    this.objects.clear(new ObjectLostError('miniray was shut down before this object was created'));
    this.lineage.clear();
    this.actorCallsPending.clear();
    this.store.clear();
  }

  /** Figures for tests and state tools. */
  stats(): { workers: number; queuedTasks: number; availableCpus: number; objects: number } {
    return {
      workers: this.pool.workers.filter((w) => w.alive).length,
      queuedTasks: this.scheduler.queuedCount,
      availableCpus: this.scheduler.availableCpus,
      objects: this.objects.size,
    };
  }

  // ---- what CoreWorkers ask of the node ------------------------------------------------------

  submit(functions: readonly FunctionDescriptor[], specs: readonly TaskSpec[]): void {
    for (const fn of functions) this.functions.set(fn.id, fn);
    for (const spec of specs) this.submitOne(spec);
  }


  /**
   * Stores the driver's objects (their parts already in the arena); throws ObjectStoreFullError
   * (storing nothing) when one does not fit.
   */
  put(owner: string, objects: readonly NewObject[]): void {
    const startMs = Date.now();
    for (const object of objects) {
      this.objects.setObject(object.id, object.data, object.failed === true, {
        owner,
        throwIfFull: true,
        blocks: (object.parts ?? []) as Block[],
        nested: object.nested,
      });
    }
    if (this.taskEvents.coreTraced()) this.taskEvents.core('put', owner, startMs, objects.length);
  }

  /**
   * Copies the driver's large binary parts into the arena (the one copy they get), the same way
   * as a worker process's copied parts. Throws ObjectStoreFullError, having taken nothing.
   */
  storeParts(parts: readonly Uint8Array[]): Block[] {
    return this.delivery.blocksFrom(parts.map((bytes) => ({ bytes })), []);
  }

  /** The driver's view of an arena block. */
  blockView(block: Block): Uint8Array {
    return this.store.view(block);
  }

  /** `owners`: each ref's owner node, when some are owned on another node (this node borrows those). */
  addRefs(thread: string, ids: readonly string[], owners?: readonly string[]): void {
    if (owners !== undefined) {
      const borrowed = new Map<string, string[]>();
      for (let i = 0; i < ids.length; i++) {
        const owner = owners[i] as string;
        const id = ids[i] as string;
        if (owner === this.nodeId || this.objects.get(id) !== undefined) continue;
        this.objects.addForeign(id, owner);
        let list = borrowed.get(owner);
        if (list === undefined) borrowed.set(owner, (list = []));
        list.push(id);
      }
      // The owners keep these alive while this node holds them (Ray's borrowers).
      for (const [owner, list] of borrowed) this.cluster?.borrow(owner, list);
    }
    this.objects.addHandles(thread, ids);
  }

  removeRefs(thread: string, ids: readonly string[]): void {
    this.objects.removeHandles(thread, ids);
  }

  releaseLeases(leases: readonly number[]): void {
    for (const lease of leases) this.objects.releaseLease(lease);
  }

  /** Live objects, what keeps each alive, and the store's figures. */
  memory(): MemoryReport {
    const driver = this.driverId;
    return {
      objects: this.objects.list((thread) => (thread === driver ? 'driver' : thread === '' ? 'node' : `worker ${thread.slice(0, 8)}`)),
      store: this.store.stats(),
    };
  }

  /** The driver's worker ID, to name it in memory(). */
  driverId = '';

  // state API (helper state)
  /** This node's threads and worker processes (and the driver's thread), for state.listWorkers. */
  workerList(): readonly { readonly workerId: string; readonly role: 'driver' | 'task' | 'actor'; readonly isolation: 'thread' | 'process'; readonly alive: boolean; readonly pid: number }[] {
    const driver = this.driverId === '' ? [] : [{ workerId: this.driverId, role: 'driver' as const, isolation: 'thread' as const, alive: !this.stopped, pid: process.pid }];
    return [
      ...driver,
      ...this.pool.allWorkers().map((w) => ({ workerId: w.id, role: w.role, isolation: w.isolation, alive: w.alive, pid: w.host.pid ?? process.pid })),
    ];
  }

  /**
   * Calls `onObject` for each ID once its object exists (at once for those that do), as seen by
   * `reader` (the driver, or a worker: parts come as slab blocks it has been sent, or as copies for a
   * process). Returns a function that withdraws the callbacks still waiting. `fetchLocal` (a wait):
   * an object ready on another node is reported once its copy is here, as a get's would be.
   */
  fetch(
    ids: readonly string[],
    withData: boolean,
    onObject: (object: ObjectPayload) => void,
    reader: Worker | undefined = undefined,
    fetchLocal = false,
  ): () => void {
    const cluster = this.cluster;
    if (cluster === undefined) return this.objects.fetch(ids, (id, entry) => onObject(this.delivery.payload(id, entry, withData, reader)), withData);
    // Objects owned elsewhere with no value here yet: their owners are asked (they then arrive as
    // any pending object does). Objects ready on another node: a copy is pulled before delivery.
    const borrowed = this.copiesNeeded(ids, false);
    if (borrowed !== undefined) cluster.localize(borrowed, () => {});
    let withdrawn = false;
    let again: (() => void)[] | undefined;
    const localize = withData || fetchLocal;
    const deliver = (id: string, entry: ObjectEntry<TaskRecord> | undefined): void => {
      if (localize && entry?.state === 'ready' && entry.location !== undefined && !this.store.contains(id)) {
        cluster.localize([id], () => {
          if (withdrawn) return;
          const now = this.objects.get(id);
          // Its copy was lost and it is being rebuilt by lineage: delivered once it exists again.
          if (now?.state === 'pending') (again ??= []).push(this.objects.fetch([id], deliver, withData));
          else onObject(this.delivery.payload(id, now, withData, reader));
        });
      } else onObject(this.delivery.payload(id, entry, withData, reader));
    };
    const withdraw = this.objects.fetch(ids, deliver, withData);
    return () => {
      withdrawn = true;
      withdraw();
      for (const more of again ?? []) more();
    };
  }

  /**
   * Which of `ids` must be brought here before they can be read: objects owned on another node
   * that have no value here yet and, when their value is wanted, objects whose primary copy is on
   * another node. Undefined when none (the common case, without allocating).
   */
  private copiesNeeded(ids: readonly string[], withData: boolean): string[] | undefined {
    if (this.cluster === undefined) return undefined;
    let needed: string[] | undefined;
    for (const id of ids) {
      const entry = this.objects.get(id);
      if (entry === undefined) continue;
      const borrowed = entry.foreignOwner !== undefined && entry.state === 'pending';
      const remote = withData && entry.location !== undefined && entry.state === 'ready' && !this.store.contains(id);
      if (borrowed || remote) (needed ??= []).push(id);
    }
    return needed;
  }

  /** Calls `then` once every object in `ids` that is held elsewhere has a copy here. */
  private withCopies(ids: readonly string[], then: () => void): void {
    const elsewhere = this.copiesNeeded(ids, true);
    if (elsewhere === undefined) then();
    else (this.cluster as ClusterLink).localize(elsewhere, then);
  }

  /** objects.waitForObjects, after asking the owners of borrowed objects among `ids` for their values. */
  private waitForObjects(what: string, ids: readonly string[], ready: () => void, failed: (error: Uint8Array) => void): void {
    const borrowed = this.copiesNeeded(ids, false);
    if (borrowed !== undefined) (this.cluster as ClusterLink).localize(borrowed, () => {});
    this.objects.waitForObjects(what, ids, ready, failed);
  }

  cancel(objectId: string, force: boolean, recursive = false): void {
    const entry = this.objects.get(objectId);
    const record = entry?.producer;
    if (record === undefined) {
      // An actor call's objects have no producer task: its actor's queue has it (env).
      if (entry?.state === 'pending') this.cancelActorCall(objectId, force, recursive);
      return;
    }
    // An actor call being rebuilt is not cancelled (as any actor call: its actor is killed instead).
    if (record.cancelled || record.state === 'finished' || record.spec.actorId !== undefined) return;
    record.cancelled = true;
    const error = encodeError(new TaskCancelledError(`task ${record.spec.name} was cancelled`));
    const { state, worker } = record;
    if (state === 'queued') this.removeFromQueue(record);
    if (record.remote) this.cluster?.cancelRemote(record.spec, force, recursive);
    this.failTask(record, error);
    // Only a task that has run can have children (a scan of the objects: cancelling many queued tasks stays cheap).
    if (recursive && state === 'running') this.cancelDescendants(record.spec.taskId, force);
    if (state === 'running' && worker !== undefined) {
      // The record stays in the worker's inFlight until the worker reports or dies, which keeps
      // the worker's accounting right.
      // Only a task running now needs its thread terminated; one still queued at the worker is
      // dropped there, sparing the task the worker is running now. The worker starts its tasks in
      // seq order and writes the cell before each (executor.ts start()), so a cell past this seq
      // means the task ran already (its result is on its way, and is ignored): terminating the
      // thread then would kill a task nobody cancelled.
      const started = Atomics.load(worker.progress, 0);
      // A task process's cell is read only at its exit; it runs one task at a time (env workers), so the one in flight runs.
      if (force && (started === record.seq || (worker.isolation === 'process' && worker.envKey !== undefined && worker.inFlight.size === 1))) this.killToCancel(worker);
      else {
        worker.channel.send({ type: 'cancel', seqs: [record.seq] });
        // The worker may start the task before that message arrives (it may be starting it now),
        // and then only terminating the thread stops it.
        if (force && started < record.seq) this.watchForceCancel(record, 1);
      }
    }
  }

  // ---- recursive cancel, and cancel of actor calls (env) ----

  /** Tasks cancelled with recursive: a task they submit later is cancelled at once. Bounded: cleared when large. */
  private cancelledParents: Set<string> | undefined;

  /**
   * Cancels every pending task (and actor call) that `taskId` submitted, and theirs, as Ray's
   * recursive cancel. Their records are found among the objects' producers: cancel is rare, and so
   * a task that is never cancelled pays nothing for this.
   */
  private cancelDescendants(taskId: string, force: boolean): void {
    const parents = (this.cancelledParents ??= new Set());
    if (parents.size >= 10_000) parents.clear();
    parents.add(taskId);
    const candidates = new Set<TaskRecord>();
    for (const [, entry] of this.objects.all()) {
      const record = entry.producer;
      if (record !== undefined && record.spec.parentTaskId !== undefined && !record.cancelled && record.state !== 'finished') candidates.add(record);
    }
    const chosen: TaskRecord[] = [];
    for (let grew = true; grew; ) {
      grew = false;
      for (const record of candidates) {
        if (!parents.has(record.spec.parentTaskId as string)) continue;
        candidates.delete(record);
        parents.add(record.spec.taskId);
        chosen.push(record);
        grew = true;
      }
    }
    for (const record of chosen) this.cancel(record.spec.returnIds[0] as string, force, false);
    for (const id of this.actors.callsOf(parents)) this.cancel(id, false, false);
  }

  /** A task submitted by a task cancelled with recursive: cancelled before it is queued. */
  private cancelledByParent(spec: TaskSpec): boolean {
    const parents = this.cancelledParents;
    if (parents === undefined || spec.parentTaskId === undefined || !parents.has(spec.parentTaskId)) return false;
    parents.add(spec.taskId);
    return true;
  }

  /**
   * cancel() of an actor call (Ray cancels those too): one still queued is removed, one running
   * has its signal aborted; its objects fail with TaskCancelledError either way. `force` does
   * not terminate an actor's worker (Ray refuses force for actor tasks; kill() ends an actor).
   */
  private cancelActorCall(objectId: string, _force: boolean, recursive: boolean): void {
    const error = encodeError(new TaskCancelledError(`actor call was cancelled`));
    const spec = this.actors.cancelCall(objectId, error);
    // Not an actor of this node's: one on another node, where the cluster sent (or will send) the call.
    if (spec === undefined) return this.cluster?.cancelRemoteCall(objectId, recursive, error);
    this.actorCallDone(spec.returnIds[0] as string, false);
    if (recursive) this.cancelDescendants(spec.taskId, false);
  }

  private killToCancel(worker: Worker): void {
    this.scheduler.onWorkerStopping(worker); // nothing more goes to it; what it holds is requeued at its exit
    this.pool.kill(worker, 'cancel');
  }

  /**
   * Until the worker reports the task (dropped, or run after all) or dies, checks whether it has
   * started the task, and then terminates it. Only a task force-cancelled between dispatch and its
   * start is watched, and the checks back off (1 ms doubling to 20 ms): a task started late is
   * still stopped soon, and a long wait behind a long task costs little.
   *
   * Only a cell equal to the task's seq means it runs now. A cell past it means the worker dropped
   * the task (its 'cancelled' report, posted before the worker started the next task, is on its
   * way) or ran it already: either way the thread now runs someone else's task, and is left alone.
   * (A task that started and then waits in get() while the next one runs is therefore missed if no
   * check fell in the moment it was running: it is then left to end as a cancel without force.)
   */
  private watchForceCancel(record: TaskRecord, delayMs: number): void {
    const timer = setTimeout(() => {
      this.forceCancelWatches.delete(record);
      const worker = record.worker;
      if (worker === undefined || !worker.alive || worker.terminatedFor !== undefined || worker.inFlight.get(record.seq) !== record) return;
      const started = Atomics.load(worker.progress, 0);
      if (started === record.seq) this.killToCancel(worker);
      else if (started < record.seq) this.watchForceCancel(record, Math.min(2 * delayMs, 20));
    }, delayMs);
    timer.unref(); // the worker, busy with tasks, keeps the process alive
    this.forceCancelWatches.set(record, timer);
  }

  /** The worker has reported the task (or died): nothing more to watch. */
  private stopWatchingForceCancel(record: TaskRecord): void {
    const timer = this.forceCancelWatches.get(record);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.forceCancelWatches.delete(record);
  }

  /**
   * Creates an actor of a CoreWorker of this node, here or (placed by the cluster) on another node.
   * `throwIfNameTaken`: the caller can be told at once (the driver); a worker's actor is created
   * dead instead.
   */
  createActor(functions: readonly FunctionDescriptor[], spec: ActorSpec, throwIfNameTaken = true): ActorInfo | undefined {
    for (const fn of functions) this.functions.set(fn.id, fn);
    // getIfExists: the live actor of that name (this node's table decides, in one turn: no race).
    // The driver is answered at once; a worker's handle, already made, becomes an alias of it.
    const existing = spec.getIfExists === true && spec.name !== undefined ? this.actors.lookup(spec.name, spec.namespace) : null;
    if (existing !== null) {
      if (throwIfNameTaken) return existing;
      this.objects.addActorHandle(spec.actorId, spec.owner.workerId);
      this.objects.hold(spec.actorId, [existing.actorId], `handle of actor ${spec.className} (getIfExists)`);
      this.actors.alias(spec.actorId, existing.actorId);
      return undefined;
    }
    // In a cluster the GCS has the last word on names: claim it first, so that no constructor runs
    // for a caller that loses the race (its handle then reaches the winner); calls wait meanwhile.
    if (spec.getIfExists === true && spec.name !== undefined && this.cluster !== undefined) {
      this.objects.addActorHandle(spec.actorId, spec.owner.workerId);
      // Claimed on this node already (its GCS answer not back): that one is the actor.
      const claimant = this.claimingNames.get(`${spec.namespace}\0${spec.name}`);
      if (claimant !== undefined) {
        if (throwIfNameTaken) return claimant;
        this.remoteAliases.set(spec.actorId, claimant.actorId);
        this.objects.hold(spec.actorId, [claimant.actorId], `handle of actor ${spec.className} (getIfExists)`);
        return undefined;
      }
      this.claimingNames.set(`${spec.namespace}\0${spec.name}`, this.actorInfoOf(spec));
      this.claiming.set(spec.actorId, []);
      this.cluster.claimActorName(spec, (holder) => this.nameClaimed(functions, { ...spec, getIfExists: false }, holder));
      return undefined;
    }
    // Actor lifetimes: its handles are counted here, at its owner's node, wherever it runs.
    if (spec.detached !== true) this.objects.addActorHandle(spec.actorId, spec.owner.workerId);
    const canRunHere = this.canRun(spec);
    const taken = this.cluster?.takeActor(this.definitionsFor(spec.classId), spec, canRunHere) ?? false;
    if (taken === true) return;
    if (taken === false && !this.workingDirReady(spec.runtimeEnv)) {
      this.whenWorkingDirReady(spec, (error) => this.actors.create(spec, { throwIfNameTaken: false, ...(error === undefined ? {} : { failWith: error }) }));
    } else this.actors.create(spec, { throwIfNameTaken, ...(taken === false ? {} : { failWith: taken }) });
    // Actors are found from every node (handles travel, names are cluster-wide): the cluster's
    // table has the last word on names.
    this.cluster?.registerActor(spec, this.definitionsFor(spec.classId), () => this.actors.failNameTaken(spec.actorId));
    return undefined;
  }

  // getIfExists across the cluster (actors part).
  /** Actors whose name the GCS is asked for, with the calls that wait for its answer. */
  private readonly claiming = new Map<string, TaskSpec[]>();
  /** Handles' IDs that stand for a live actor of another node that had the name (by its ID). */
  private readonly remoteAliases = new Map<string, string>();
  /** Names claimed from this node and not answered yet, with the claimant (later callers reach it). */
  private readonly claimingNames = new Map<string, ActorInfo>();

  /** What a handle of an actor created from this spec needs. */
  private actorInfoOf(spec: ActorSpec): ActorInfo {
    const info: { -readonly [K in keyof ActorInfo]: ActorInfo[K] } = { actorId: spec.actorId, className: spec.className, methodNames: spec.methodNames };
    if (spec.detached !== true) info.owner = spec.owner;
    if (spec.methodOptions !== undefined) info.methodOptions = spec.methodOptions;
    if (spec.generatorMethods !== undefined) info.generatorMethods = spec.generatorMethods; // generators
    return info;
  }

  /** The GCS answered a getIfExists claim: create the actor, or make its ID stand for the holder. */
  private nameClaimed(functions: readonly FunctionDescriptor[], spec: ActorSpec, holder: { actorId: string; ownerNodeId: string; detached: boolean } | null): void {
    const queued = this.claiming.get(spec.actorId) ?? [];
    this.claiming.delete(spec.actorId);
    this.claimingNames.delete(`${spec.namespace}\0${spec.name}`);
    if (holder === null) this.createActor(functions, spec, false);
    else {
      this.remoteAliases.set(spec.actorId, holder.actorId);
      // The alias's handles keep the holder alive: this node borrows its handles from its owner.
      if (!holder.detached) {
        if (holder.ownerNodeId !== this.nodeId && this.objects.get(holder.actorId) === undefined) {
          this.objects.addForeign(holder.actorId, holder.ownerNodeId);
          this.cluster?.borrow(holder.ownerNodeId, [holder.actorId]);
        }
        this.objects.hold(spec.actorId, [holder.actorId], `handle of actor ${spec.className} (getIfExists)`);
      }
    }
    for (const call of queued) this.callActor(call, false);
  }

  /** An actor of this node's that the cluster held back (its placement group's bundle was not placed) and now finds room for here (helper pg). */
  createActorHere(spec: ActorSpec): void {
    this.whenWorkingDirReady(spec, (error) => this.actors.create(spec, { throwIfNameTaken: false, ...(error === undefined ? {} : { failWith: error }) }));
    this.cluster?.registerActor(spec, this.definitionsFor(spec.classId), () => this.actors.failNameTaken(spec.actorId));
  }

  lookupActor(name: string, namespace: string, callback: (info: ActorInfo | null) => void): void {
    const info = this.actors.lookup(name, namespace);
    if (info !== null || this.cluster === undefined) callback(info);
    else this.cluster.lookupActor(name, namespace, callback);
  }

  /** `outOfScope`: its owner on another node found no handle left (the reason its callers see). */
  killActor(actorId: string, noRestart: boolean, outOfScope = false): void {
    actorId = this.remoteAliases.get(actorId) ?? actorId;
    if (outOfScope && this.actors.has(actorId)) this.actors.outOfScope(actorId);
    else if (this.actors.has(actorId) || this.cluster === undefined) this.actors.kill(actorId, noRestart);
    else this.cluster.killRemoteActor(actorId, noRestart, outOfScope);
  }

  /**
   * Actor lifetimes: no handle to a non-detached actor is left anywhere, and no call of it is
   * pending (each call holds its actor's handles, as Ray's calls do): it ends, and what it held is
   * freed. One on another node is ended there through the cluster.
   */
  private actorOutOfScope(actorId: string): void {
    if (this.actors.unalias(actorId) || this.remoteAliases.delete(actorId)) return this.objects.releaseHolds(actorId);
    if (this.actors.has(actorId) || this.cluster === undefined) this.actors.outOfScope(actorId);
    else this.cluster.killRemoteActor(actorId, true, true);
  }

  /** Asks the cluster (its head's tables) on behalf of a CoreWorker of this node. */
  clusterInfo(query: ClusterQuery, callback: (answer: ClusterAnswer) => void): void {
    if (this.cluster === undefined) callback({ error: encodeError(new MinirayError('this node has not joined a cluster')) });
    else if (typeof query === 'object' && query.gcs === 'createPlacementGroup') this.createPlacementGroup(this.cluster, query, callback);
    else this.cluster.info(query, callback);
  }

  /**
   * A group this node's driver or task creates (helper pg): refused here when the embedded
   * default could never hold it, or when the GCS says its name is taken. A refused group ends here
   * with that error, so that ready() and whatever was submitted to it fail with it (not wait).
   */
  private createPlacementGroup(cluster: ClusterLink, query: Extract<ClusterQuery, object>, callback: (answer: ClusterAnswer) => void): void {
    const request = groupRequest(query.body);
    if (request === undefined) return cluster.info(query, callback); // the GCS says what is wrong with it
    const refuse = (error: MinirayError): void => {
      this.groupErrors.set(request.placementGroupId, error);
      cluster.placementGroupEnded(request.placementGroupId);
      callback({ error: encodeError(error) });
    };
    if (!cluster.canGrow) {
      const error = embeddedInfeasibleError(request, { CPU: this.options.numCpus, ...this.options.resources });
      if (error !== undefined) return refuse(error);
    }
    cluster.info(query, (answer) => {
      const created = 'gcs' in answer ? (answer.gcs as { ok?: unknown; warning?: unknown } | null) : null;
      if (created?.ok === false) return refuse(nameTakenError(request.name ?? '', request.namespace));
      if (typeof created?.warning === 'string' && cluster.canGrow) console.warn(created.warning);
      callback(answer);
    });
  }

  /** Groups whose creation this node refused, with the error their work fails with (see groupRemovedError). */
  private readonly groupErrors = new Map<string, MinirayError>();

  private definitionsFor(functionId: string): readonly FunctionDescriptor[] {
    const fn = this.functions.get(functionId);
    return fn === undefined ? [] : [fn];
  }

  /** Whether this node offers at least these GPUs and custom resources. */
  private offers(resources: ResourceMap | undefined): boolean {
    if (resources === undefined) return true;
    for (const [name, amount] of Object.entries(resources)) if ((this.options.resources[name] ?? this.groupTotals.get(name) ?? 0) < amount - 1e-9) return false;
    return true;
  }

  // ---- what other nodes ask of this one (through the cluster link) ----------------------------

  /**
   * Runs a task or actor call another node sent: its arguments' values (inline, or where to pull
   * them from) are taken in first, and `reply` gets its return values once they all exist. Small
   * values go back inline and are dropped here; large ones (and values with refs inside) stay
   * here, held for their owner until it frees them (dropForOwner).
   */
  runForPeer(functions: readonly FunctionDescriptor[], spec: TaskSpec, args: readonly RemoteValue[], inlineLimit: number, reply: (values: RemoteValue[]) => void, attempt = 0, untraced = false): void {
    for (const fn of functions) this.functions.set(fn.id, fn);
    if (untraced && spec.actorId !== undefined) this.taskEvents.skip(spec.taskId); // a task's record says it
    const ownerNode = spec.owner.nodeId;
    for (const arg of args) this.objects.addForeign(arg.id, ownerNode);
    this.submitOne(spec, true, attempt, !untraced);
    this.remoteObjects.storeValues(args, ownerNode, true);
    const owner = spec.owner.workerId;
    let remaining = spec.returnIds.length;
    this.objects.fetch(
      spec.returnIds,
      () => {
        if (--remaining > 0) return;
        const values = spec.returnIds.map((id) => this.remoteObjects.valueFor(id, inlineLimit));
        // Returned inline: the owner has the value, nothing here needs it any more.
        const sent = values.filter((value) => value.state !== 'located').map((value) => value.id);
        this.objects.removeHandles(owner, sent);
        reply(values);
      },
      true, // their errors go to the owner, whose readers see them
    );
  }

  /** Whether this node has the definition of a function (or actor class). */
  knowsFunction(id: string): boolean {
    return this.functions.has(id);
  }

  /** A node left the cluster: the actors it owns here end (what they hold is freed with them). */
  ownerLeft(nodeId: string): void {
    this.actors.killOwnedBy(nodeId, `its owner's node ${nodeId.slice(0, 8)} left the cluster`);
  }

  /** Keeps an actor's constructor arguments while it may be restarted elsewhere (its owner's hold). */
  holdForRestart(actorId: string, ids: readonly string[]): void {
    this.objects.hold(`restart:${actorId}`, ids, 'argument of an actor that may be restarted');
  }

  releaseForRestart(actorId: string): void {
    this.objects.releaseHolds(`restart:${actorId}`);
  }

  /** The cluster's actor table says the actor is dead: an instance of it here ends (for good). */
  actorDeadInCluster(actorId: string, reason: string): void {
    this.actors.endIfAlive(actorId, reason);
  }

  /** A call of this node's, to an actor that was restarted here (its return objects are registered). */
  callActorHere(spec: TaskSpec): void {
    this.actors.submitCall(spec);
  }

  /** Creates an actor another node placed here, once its constructor arguments are taken in. */
  createActorForPeer(functions: readonly FunctionDescriptor[], spec: ActorSpec, args: readonly RemoteValue[]): void {
    for (const fn of functions) this.functions.set(fn.id, fn);
    if (this.actors.has(spec.actorId)) return;
    const ownerNode = spec.owner.nodeId;
    for (const arg of args) this.objects.addForeign(arg.id, ownerNode);
    this.whenWorkingDirReady(spec, (error) => {
      if (!this.actors.has(spec.actorId)) this.actors.create(spec, { throwIfNameTaken: false, ...(error === undefined ? {} : { failWith: error }) });
    });
    this.remoteObjects.storeValues(args, ownerNode, true);
    // (Its owner registered it with the GCS when it placed it here.)
  }

  /** Free CPUs, and GPUs and custom resources, as the cluster's view shows them. */
  available(): Record<string, number> {
    return { CPU: this.scheduler.availableCpus, ...Object.fromEntries(this.freeResources) };
  }

  // ---- placement groups (helper pg): bundles reserved here, in two phases (the GCS's prepare, then commit) ----

  /** Bundles reserved here, by "group:index": what each holds of this node's, and whether it is committed (its group's names exist). */
  private readonly bundles = new Map<string, { readonly cpus: number; readonly resources: ResourceMap; committed: boolean; readonly gpus: GpuHold | undefined; readonly gpuPool: GpuIdPool | undefined }>();
  /** The totals of the names committed bundles add (CPU_group_0_<pg>, ...). */
  private readonly groupTotals = new Map<string, number>();

  /** Totals, as the GCS's resource view shows them: what the node offers, and its committed bundles' names. */
  totals(): Record<string, number> {
    return { CPU: this.options.numCpus, ...this.options.resources, ...Object.fromEntries(this.groupTotals) };
  }

  /** Phase 1: reserves every bundle or none; false when this node has not the room now. */
  prepareBundles(placementGroupId: string, bundles: readonly { readonly index: number; readonly resources: ResourceMap }[]): boolean {
    const fresh = bundles.filter((bundle) => !this.bundles.has(`${placementGroupId}:${bundle.index}`));
    let cpus = 0;
    const others: Record<string, number> = {};
    for (const { resources } of fresh) {
      for (const [name, amount] of Object.entries(resources)) {
        if (name === 'CPU') cpus += amount;
        else others[name] = (others[name] ?? 0) + amount;
      }
    }
    if (!this.resourcesFree(others) || !this.scheduler.tryReserve(cpus)) return false;
    this.takeResources(others, -1);
    for (const { index, resources } of fresh) {
      const { CPU = 0, ...rest } = resources;
      // A bundle's GPUs are its own: the tasks in it get their IDs from these.
      const gpus = rest['GPU'] === undefined ? undefined : this.takeGpus({ GPU: rest['GPU'] });
      this.bundles.set(`${placementGroupId}:${index}`, { cpus: CPU, resources: rest, committed: false, gpus, gpuPool: gpus === undefined ? undefined : new GpuIdPool(gpus.ids) });
    }
    return true;
  }

  /** Phase 2: the reserved bundles become the group's resources here; what waited for them may run. */
  commitBundles(placementGroupId: string, indices: readonly number[]): void {
    for (const index of indices) {
      const bundle = this.bundles.get(`${placementGroupId}:${index}`);
      if (bundle === undefined || bundle.committed) continue;
      bundle.committed = true;
      for (const [name, amount] of Object.entries(bundleResources(placementGroupId, index, { CPU: bundle.cpus, ...bundle.resources }))) {
        this.groupTotals.set(name, (this.groupTotals.get(name) ?? 0) + amount);
        this.freeResources.set(name, (this.freeResources.get(name) ?? 0) + amount);
      }
    }
    this.resourcesReturned();
  }

  /** Gives back bundles of a group (an aborted prepare, or the group removed): their names go, their resources return. */
  cancelBundles(placementGroupId: string, indices?: readonly number[]): void {
    for (const [key, bundle] of [...this.bundles]) {
      const [group, index] = key.split(':');
      if (group !== placementGroupId || (indices !== undefined && !indices.includes(Number(index)))) continue;
      this.bundles.delete(key);
      if (bundle.committed) {
        for (const [name, amount] of Object.entries(bundleResources(placementGroupId, Number(index), { CPU: bundle.cpus, ...bundle.resources }))) {
          const left = (this.groupTotals.get(name) ?? 0) - amount;
          if (left > 1e-9) {
            this.groupTotals.set(name, left);
            this.freeResources.set(name, (this.freeResources.get(name) ?? 0) - amount);
          } else {
            this.groupTotals.delete(name);
            this.freeResources.delete(name);
          }
        }
      }
      this.scheduler.releaseCpus(bundle.cpus);
      this.takeResources(bundle.resources, 1);
      if (bundle.gpus !== undefined) this.giveGpus(bundle.gpus);
    }
    this.resourcesReturned();
  }

  /**
   * The group is removed (Ray's RemovePlacementGroup): its bundles here go back, and the work in it
   * ends: tasks waiting for it or running in it fail with PlacementGroupRemovedError (a running
   * one's worker is terminated), and its actors die.
   */
  groupRemovedError(placementGroupId: string): MinirayError {
    const refused = this.groupErrors.get(placementGroupId);
    if (refused !== undefined) return refused;
    return new PlacementGroupRemovedError(
      `the placement group ${placementGroupId} was removed (removePlacementGroup), so the tasks and actors in it end; create a new group and submit them again`,
    );
  }

  /** Groups removed while this node ran, or refused at creation (work submitted to one fails at once). */
  readonly removedGroups = new Set<string>();

  placementGroupRemoved(placementGroupId: string): void {
    this.removedGroups.add(placementGroupId);
    const error = this.groupRemovedError(placementGroupId);
    const inGroup = (resources: ResourceMap | undefined): boolean => groupsIn(resources).includes(placementGroupId);
    const encoded = encodeError(error);
    for (const record of this.waitingForResources.filter((r) => inGroup(r.spec.resources))) {
      this.removeFromQueue(record);
      this.failTask(record, encoded);
    }
    for (const record of this.scheduler.removeWhere((r) => inGroup(r.spec.resources))) {
      this.releaseResources(record);
      this.failTask(record, encoded);
    }
    for (const worker of this.pool.workers) {
      for (const record of worker.inFlight.values()) {
        if (record.cancelled || record.state === 'finished' || !inGroup(record.spec.resources)) continue;
        record.cancelled = true;
        this.failTask(record, encoded);
        // As a forced cancel: terminate the thread only while it runs this task (a cell past its
        // seq means it ran already, and the thread now runs another task).
        const started = Atomics.load(worker.progress, 0);
        if (started === record.seq) this.killToCancel(worker);
        else if (started < record.seq) worker.channel.send({ type: 'cancel', seqs: [record.seq] });
      }
    }
    this.actors.endWhere((spec) => inGroup(spec.resources), error.message);
    this.cancelBundles(placementGroupId);
  }

  /** The bundle CPUs (CPU_group_*) that tasks waiting in get() lent back to their bundle, by task. */
  private lentGroupCpus: Map<TaskRecord, ResourceMap> | undefined;

  /**
   * A task of `worker` in a placement group waits in get(): the CPUs it holds of its bundle go
   * back to the bundle meanwhile, as Ray releases a blocked worker's CPUs, a bundle's included, so
   * that the children it waits for can run in the same bundle. The running one of its tasks
   * (pipelined tasks wait for it), else the first that holds bundle CPUs and lent none yet.
   */
  private lendGroupCpus(worker: Worker): void {
    const started = Atomics.load(worker.progress, 0);
    let lender: TaskRecord | undefined;
    for (const record of worker.inFlight.values()) {
      if (!record.reserved || record.spec.resources === undefined || this.lentGroupCpus?.has(record) === true) continue;
      if (!Object.keys(record.spec.resources).some((name) => plainOf(name)?.name === 'CPU')) continue;
      if (lender === undefined || record.seq === started) lender = record;
    }
    if (lender === undefined) return;
    const cpus = Object.fromEntries(Object.entries(lender.spec.resources as ResourceMap).filter(([name]) => plainOf(name)?.name === 'CPU'));
    (this.lentGroupCpus ??= new Map()).set(lender, cpus);
    this.takeResources(cpus, 1);
    this.queueResourceWaiters();
  }

  /** The task runs again: it takes its bundle CPUs back, oversubscribing the bundle if a child holds them (as Ray's CPUs). */
  private takeBackGroupCpus(worker: Worker): void {
    const lent = this.lentGroupCpus as Map<TaskRecord, ResourceMap>;
    for (const record of worker.inFlight.values()) {
      const cpus = lent.get(record);
      if (cpus === undefined) continue;
      lent.delete(record);
      // Of a bundle still here (a removed one's names are gone with it).
      this.takeResources(Object.fromEntries(Object.entries(cpus).filter(([name]) => this.groupTotals.has(name))), -1);
      return;
    }
  }

  // ---- GPU IDs (helper pg) ----

  private nodeGpus: GpuIdPool | undefined;

  /** IDs for the GPUs a demand holds: plain GPUs from the node's pool, a group's from its bundle's here. */
  private takeGpus(resources: ResourceMap): GpuHold | undefined {
    const plain = resources['GPU'];
    if (plain !== undefined && plain > 0) {
      const total = this.options.resources['GPU'] ?? 0;
      const pool = (this.nodeGpus ??= new GpuIdPool(Array.from({ length: Math.ceil(total) }, (_, i) => i)));
      const ids = pool.take(plain);
      return ids === undefined ? undefined : { ids, amount: plain, pool };
    }
    if (this.bundles.size === 0) return undefined;
    for (const name in resources) {
      const of = plainOf(name);
      if (of === undefined || of.name !== 'GPU') continue;
      const group = groupOf(name) as string;
      const amount = resources[name] as number;
      const pools = [...this.bundles]
        .filter(([key, bundle]) => bundle.gpuPool !== undefined && (of.bundleIndex < 0 ? key.startsWith(`${group}:`) : key === `${group}:${of.bundleIndex}`))
        .map(([, bundle]) => bundle.gpuPool as GpuIdPool);
      for (const pool of pools) {
        const ids = pool.take(amount);
        if (ids !== undefined) return { ids, amount, pool };
      }
      return undefined;
    }
    return undefined;
  }

  private giveGpus(hold: GpuHold): void {
    hold.pool.give(hold.ids, hold.amount);
  }

  /** GPU IDs held by this node's actors, by actor ID. */
  private readonly actorGpus = new Map<string, GpuHold>();

  /** Resources came back or appeared: tasks and actors waiting for them may go. */
  private resourcesReturned(): void {
    this.queueResourceWaiters();
    this.scheduleDispatch();
    queueMicrotask(() => this.actors.onCpusReleased());
  }

  /** Tasks queued here: how loaded this node is (with available()). */
  get queuedTasks(): number {
    return this.scheduler.queuedCount + this.waitingForResources.length;
  }

  // ---- tasks ---------------------------------------------------------------------------------

  /**
   * `attempt`: the owner's attempt, for a task or actor call a peer sent (see TaskRecord.firstAttempt);
   * `tracedByOwner`: whether that owner records its events (it may have sampled it out).
   */
  private submitOne(spec: TaskSpec, fromPeer = false, attempt = 0, tracedByOwner = true): void {
    // A task with nothing to wait for is queued at once (see below): one event says both.
    const traced = fromPeer ? tracedByOwner && this.taskEvents.enabled : this.taskEvents.submitted(spec, spec.actorId === undefined && spec.dependencies.length === 0);
    const owner = spec.owner.workerId;
    if (spec.actorId !== undefined) {
      for (const id of spec.returnIds) this.objects.addPending(id, owner, undefined);
      if (spec.returns?.kind === 'streaming' && !fromPeer) this.streams().open(spec); // generators
      this.holdArguments(spec);
      if (!fromPeer && this.cluster?.canGrow === true) this.actorCallsPending.set(spec.returnIds[0] as string, this.actorCallRecord(spec));
      this.callActor(spec, fromPeer, attempt);
      return;
    }
    const record: TaskRecord = {
      spec,
      numCpus: spec.numCpus,
      remote: false,
      fromPeer,
      reserved: false,
      state: 'waiting',
      retries: 0,
      firstAttempt: attempt,
      cancelled: false,
      worker: undefined,
      seq: 0,
      gpus: undefined,
      traced,
    };
    for (const id of spec.returnIds) this.objects.addPending(id, owner, record);
    if (spec.returns?.kind === 'streaming' && !fromPeer) this.streams().open(spec); // generators
    this.holdArguments(spec);
    // Where the cluster may run it elsewhere, it decides once the arguments exist.
    if (!this.canRun(record.spec) && (this.cluster === undefined || fromPeer)) {
      this.failTask(record, encodeError(this.infeasibleError(`task ${spec.name}`, spec)));
      return;
    }
    if (this.startupError !== undefined) {
      this.failTask(record, encodeError(this.startupError));
      return;
    }
    if (spec.parentTaskId !== undefined && this.cancelledByParent(spec)) {
      record.cancelled = true;
      this.failTask(record, encodeError(new TaskCancelledError(`task ${spec.name} was cancelled: the task that submitted it was cancelled (recursive)`)));
      return;
    }
    if (spec.dependencies.length === 0) {
      this.enqueue(record); // nothing to wait for (the common case): no waiter closures
      return;
    }
    this.waitForArguments(record);
  }

  /** Enqueues a waiting task once its ref arguments exist (or fails it with the first that failed). */
  private waitForArguments(record: TaskRecord): void {
    this.waitForObjects(
      `task ${record.spec.name}`,
      record.spec.dependencies,
      () => {
        if (record.state === 'waiting') this.enqueue(record);
      },
      (error) => {
        if (record.state === 'waiting') this.failTask(record, error);
      },
    );
  }

  /** What a task that this node can never run fails with (where no other node may take it). */
  infeasibleError(what: string, spec: { readonly numCpus: number; readonly resources?: ResourceMap }): InvalidOptionError {
    const wanted = Object.entries(demandOf(spec)).map(([name, amount]) => `${amount} ${name}`).join(', ');
    const offered = Object.entries({ CPU: this.options.numCpus, ...this.options.resources }).map(([name, amount]) => `${amount} ${name}`).join(', ');
    return new InvalidOptionError(
      `${what} needs ${wanted} but this node has ${offered}; ` +
        'ask for less in its options (numCpus, numGpus, resources), or start miniray with more (init({ numCpus, numGpus, resources }))',
      spec.resources === undefined || spec.numCpus > this.options.numCpus ? 'numCpus' : 'resources',
    );
  }

  /** Whether this node has, in all, the CPUs, GPUs and custom resources a task or actor asks for. */
  canRun(spec: { readonly numCpus: number; readonly resources?: ResourceMap }): boolean {
    return this.scheduler.isFeasible(spec) && this.offers(spec.resources);
  }

  /** Whether the cluster sends the task to another node (it then reports its end through its RemoteWork). */
  private goesElsewhere(cluster: ClusterLink, record: TaskRecord): boolean {
    const canRunHere = this.canRun(record.spec);
    // Alone in its cluster (the embedded default), a node runs what it can without asking.
    if (cluster.alone && canRunHere && typeof record.spec.strategy !== 'object') return false;
    // In a placement group (helper pg): alone, its bundle can only be here, so it waits here for it.
    if (!canRunHere && record.spec.resources !== undefined && cluster.alone && !cluster.canGrow) {
      if (groupsIn(record.spec.resources).length > 0) return false;
    }
    return cluster.takeTask(this.remoteWork(record.spec, record), canRunHere);
  }

  /** A task whose arguments exist: to another node if the cluster takes it, else to the queue here. */
  private enqueue(record: TaskRecord): void {
    if (record.traced && !record.fromPeer && (record.retries > 0 || record.spec.dependencies.length > 0)) this.taskEvents.state(record.spec, record.retries, PENDING_NODE_ASSIGNMENT);
    const cluster = this.cluster;
    if (!record.fromPeer && cluster !== undefined && this.goesElsewhere(cluster, record)) {
      record.state = 'running';
      record.remote = true;
      return;
    }
    // Arguments held on other nodes are read here: copies first.
    const elsewhere = this.copiesNeeded(record.spec.dependencies, true);
    if (elsewhere !== undefined) {
      (this.cluster as ClusterLink).localize(elsewhere, () => {
        if (record.state !== 'waiting') return;
        // A copy that could not be made leaves its object failed, or pending while lineage rebuilds it.
        if (record.spec.dependencies.some((id) => this.objects.get(id)?.state !== 'ready')) this.waitForArguments(record);
        else this.queueHere(record);
      });
      return;
    }
    this.queueHere(record);
  }

  private queueHere(record: TaskRecord): void {
    record.state = 'queued';
    if (this.removedGroups.size > 0 && record.spec.resources !== undefined) {
      const removed = groupsIn(record.spec.resources).find((group) => this.removedGroups.has(group));
      if (removed !== undefined) return this.failTask(record, encodeError(this.groupRemovedError(removed)));
    }
    if (!this.reserveResources(record)) {
      this.waitingForResources.push(record);
      this.keepAliveWhileQueued();
      return;
    }
    this.toWorkerQueue(record);
    this.scheduleDispatch();
  }

  // ---- runtime environments (env) ----

  /** The job's ID (hex), set by api once the GCS has given it; workers learn it with their next execute message. */
  jobId = '';
  /** The job's namespace (init({ namespace }), else an anonymous one, as Ray's), sent to workers with jobId. */
  namespace = '';

  /** Tasks of other runtime environments than the node's, ready to run, in FIFO order (see dispatchEnv). */
  private readonly envQueue: TaskRecord[] = [];

  /** Whether work in this environment needs workers of its own, not the node's default ones. */
  private needsOwnWorkers(env: RuntimeEnvSpec | undefined): boolean {
    return runtimeEnvKey(env) !== this.pool.defaultEnvKey;
  }

  /** A task whose resources are held goes to the scheduler, or, in another environment, to the env queue. */
  private toWorkerQueue(record: TaskRecord): void {
    // One read and one comparison for a task without an environment on a node without one.
    if ((record.spec.runtimeEnv !== undefined || this.pool.defaultEnvKey !== '') && this.needsOwnWorkers(record.spec.runtimeEnv)) {
      this.envQueue.push(record);
      this.keepAliveWhileQueued();
    } else this.scheduler.enqueue(record);
  }

  /**
   * Hands env tasks to idle workers of their environment, one task per worker at a time (no
   * pipelining: such tasks are few), taking their CPUs from the scheduler's pool as actors do.
   * Starts workers for an environment while it has more tasks than starting workers, up to
   * numWorkers per environment; idle workers of other environments make room past twice that.
   */
  private dispatchEnv(): void {
    const needed = new Map<string, number>();
    for (let i = 0; i < this.envQueue.length; ) {
      const record = this.envQueue[i] as TaskRecord;
      const env = record.spec.runtimeEnv;
      const key = runtimeEnvKey(env);
      const list = this.pool.envWorkers.get(key) ?? [];
      const idle = list.find((w) => w.accepting && w.load === 0 && w.inFlight.size === 0);
      if (idle === undefined) {
        const want = (needed.get(key) ?? 0) + 1;
        needed.set(key, want);
        const starting = list.filter((w) => w.alive && !w.accepting && w.terminatedFor === undefined).length;
        if (!this.workingDirReady(env)) {
          // Its package is fetched first (then dispatched again), or cannot be: the task fails saying why.
          const failed = this.workingDirs?.failure(env?.workingDir as string);
          if (failed === undefined) i++;
          else {
            this.envQueue.splice(i, 1);
            this.failTask(record, encodeError(failed));
          }
          continue;
        }
        if (starting < want && list.length < this.options.numWorkers) {
          this.makeRoomForEnvWorker(key);
          this.pool.spawnEnvWorker(env ?? {});
        }
        i++;
        continue;
      }
      if (!this.scheduler.tryReserve(record.numCpus)) return; // FIFO: it waits for CPUs
      // As the scheduler holds a worker's CPUs: given back by onTaskDone / onWorkerLost.
      idle.load = 1;
      idle.reservedCpuUnits = Math.round(record.numCpus * 10_000);
      this.envQueue.splice(i, 1);
      this.sendEnvTask(idle, record);
    }
    this.keepAliveWhileQueued();
  }

  // ---- runtimeEnv.workingDir packages in a cluster (see working-dir.ts) ----

  /** This node's unpacked working-dir packages: made on first use (only a cluster's specs name packages). */
  private workingDirs: WorkingDirCache | undefined;
  /** Actors created once their working-dir package is unpacked here, with the calls that came meanwhile (by actor ID). */
  private awaitingWorkingDir: Map<string, [TaskSpec, boolean, number][]> | undefined;

  private workingDirCache(): WorkingDirCache {
    return (this.workingDirs ??= new WorkingDirCache(workingDirCacheRoot(this.nodeId), (key) => this.cluster?.fetchPackage(key) ?? Promise.resolve(null)));
  }

  /** Whether workers of `env` can start here now; if its package is not unpacked yet, that starts, and the env queue is dispatched again after. */
  private workingDirReady(env: RuntimeEnvSpec | undefined): boolean {
    const dir = env?.workingDir;
    if (dir === undefined || !isPackageUri(dir)) return true;
    const cache = this.workingDirCache();
    if (cache.isReady(dir)) return true;
    if (!cache.isPreparing(dir) && cache.failure(dir) === undefined) {
      void cache.prepare(dir).then(
        () => this.scheduleDispatch(),
        () => this.scheduleDispatch(),
      );
    }
    return false;
  }

  /**
   * Creates an actor once its working-dir package is unpacked here (at once when it needs none,
   * or has it), or dead, with why, when it cannot be. Calls to it that come meanwhile wait.
   */
  private whenWorkingDirReady(spec: ActorSpec, create: (error: Error | undefined) => void): void {
    if (this.workingDirReady(spec.runtimeEnv)) return create(undefined);
    const waiting = (this.awaitingWorkingDir ??= new Map());
    if (waiting.has(spec.actorId)) return;
    waiting.set(spec.actorId, []);
    const done = (error: Error | undefined): void => {
      const calls = waiting.get(spec.actorId) ?? [];
      waiting.delete(spec.actorId);
      if (waiting.size === 0) this.awaitingWorkingDir = undefined;
      create(error);
      for (const [call, fromPeer, attempt] of calls) this.callActor(call, fromPeer, attempt);
    };
    void this.workingDirCache().prepare(spec.runtimeEnv?.workingDir as string).then(
      () => done(undefined),
      (error: Error) => done(error),
    );
  }

  /** Too many env workers: an idle one of another environment goes. */
  private makeRoomForEnvWorker(key: string): void {
    let total = 0;
    for (const list of this.pool.envWorkers.values()) total += list.length;
    if (total < Math.max(4, 2 * this.options.numWorkers)) return;
    for (const [other, list] of this.pool.envWorkers) {
      if (other === key) continue;
      const idle = list.find((w) => w.accepting && w.inFlight.size === 0);
      if (idle === undefined) continue;
      idle.accepting = false;
      this.pool.kill(idle, 'shutdown');
      return;
    }
  }

  private sendEnvTask(worker: Worker, record: TaskRecord): void {
    const { spec } = record;
    const args = this.startOn(worker, record);
    if (args === undefined) return;
    const seq = record.seq;
    const functions: FunctionDescriptor[] = [];
    if (!worker.knownFunctions.has(spec.functionId)) {
      worker.knownFunctions.add(spec.functionId);
      const fn = this.functions.get(spec.functionId);
      if (fn !== undefined) functions.push(fn);
    }
    this.pool.setBusy(worker, true);
    this.sendExecute(worker, functions, [this.executeTaskOf(record, seq, args)]);
  }

  /**
   * `record` goes to `worker`: its arguments as the worker reads them, and it is running there
   * under a new seq (record.seq); undefined when an argument cannot be read back (a spilled object
   * the disk lost), and the task has failed with it.
   */
  private startOn(worker: Worker, record: TaskRecord): ReturnType<ObjectDelivery<TaskRecord>['argumentsFor']> | undefined {
    const { spec } = record;
    let args: ReturnType<ObjectDelivery<TaskRecord>['argumentsFor']>;
    try {
      args = this.delivery.argumentsFor(spec.dependencies, worker);
    } catch (error) {
      this.scheduler.onTaskDone(worker);
      this.failTask(record, encodeError(error as Error));
      return undefined;
    }
    const seq = worker.nextSeq++;
    if (record.traced) this.taskEvents.state(spec, record.firstAttempt + record.retries, SUBMITTED_TO_WORKER, worker.id);
    record.state = 'running';
    record.worker = worker;
    record.seq = seq;
    worker.inFlight.set(seq, record);
    return args;
  }

  /** What a worker is sent to run `record` as `seq` (a pooled worker's batch, or an environment's worker). */
  private executeTaskOf(record: TaskRecord, seq: number, args: ReturnType<ObjectDelivery<TaskRecord>['argumentsFor']>): ExecuteTask {
    const { spec } = record;
    const task: { -readonly [K in keyof ExecuteTask]: ExecuteTask[K] } = {
      seq,
      taskId: spec.taskId,
      functionId: spec.functionId,
      name: spec.name,
      args: spec.args,
      refArgPositions: spec.refArgPositions,
      ...args,
      numReturns: spec.returnIds.length,
    };
    // Set, not spread: no throwaway object per task, and a local task's shape is always the same.
    if (spec.owner.nodeId !== this.nodeId) task.ownerNode = spec.owner.nodeId;
    // What it holds, for getRuntimeContext().getAssignedResources() (absent: 1 CPU) and its GPU IDs.
    if (spec.resources !== undefined || spec.numCpus !== 1) task.resources = demandOf(spec);
    if (record.gpus !== undefined) task.gpuIds = record.gpus.ids;
    if (spec.captureChildTasks === true) task.captureChildTasks = true;
    if (spec.returns !== undefined) task.returns = spec.returns.kind === 'dynamic' && spec.retryExceptions && this.retriesLeft(record) ? RETRY_THROWN : spec.returns; // generators
    // retryExceptions by class: the worker, which holds the thrown error, decides whether it matches.
    if (spec.retryExceptionNames !== undefined) task.retryExceptionNames = spec.retryExceptionNames;
    // A cluster's tasks name their job (a node runs many jobs'): the worker's runtime context reads it.
    if (spec.job !== undefined) task.job = spec.job;
    return task;
  }

  /** An execute message; the first to a worker that does not know the job's ID carries it. */
  private sendExecute(worker: Worker, functions: readonly FunctionDescriptor[], tasks: readonly ExecuteTask[]): void {
    if (worker.knowsJobId === true || this.jobId === '') {
      worker.channel.send({ type: 'execute', functions, tasks });
      return;
    }
    worker.knowsJobId = true;
    worker.channel.send({ type: 'execute', functions, tasks, jobId: this.jobId, namespace: this.namespace });
  }

  /**
   * An env worker is gone: its tasks go back to the front of the env queue, or, if it died while
   * starting (a workingDir it cannot start in, say), its environment's tasks fail saying why.
   */
  private onEnvWorkerExit(worker: Worker, requeue: readonly TaskRecord[]): void {
    const key = worker.envKey ?? '';
    if (!worker.accepting && worker.terminatedFor === undefined && worker.nextSeq === 1) {
      const error = encodeError(
        new WorkerCrashedError(
          `a worker for runtimeEnv ${key} could not start: ${worker.exitError?.message ?? 'no error given'}. ` +
            'Check its workingDir (it must exist where the task runs) and its envVars (NODE_OPTIONS, say, apply to it)',
        ),
      );
      const others: TaskRecord[] = [];
      for (const record of this.envQueue) {
        if (runtimeEnvKey(record.spec.runtimeEnv) === key) this.failTask(record, error);
        else others.push(record);
      }
      this.envQueue.length = 0;
      this.envQueue.push(...others);
      for (const record of requeue) this.failTask(record, error);
    } else {
      this.envQueue.unshift(...requeue);
    }
    this.scheduleDispatch();
  }

  /** Whether these GPUs and custom resources are free now. */
  private resourcesFree(resources: ResourceMap | undefined): boolean {
    for (const [name, amount] of Object.entries(resources ?? {})) if ((this.freeResources.get(name) ?? 0) < amount - 1e-9) return false;
    return true;
  }

  /** Takes (sign -1) or gives back (+1) GPUs and custom resources. */
  private takeResources(resources: ResourceMap | undefined, sign: 1 | -1): void {
    for (const [name, amount] of Object.entries(resources ?? {})) {
      // A bundle removed while a task held some of it: what the task gives back has nowhere to go.
      if (sign > 0 && !(name in this.options.resources) && !this.groupTotals.has(name) && groupOf(name) !== undefined) continue;
      this.freeResources.set(name, (this.freeResources.get(name) ?? 0) + sign * amount);
    }
  }

  /** Takes the task's GPUs and custom resources from this node's; false if they are not free now. */
  private reserveResources(record: TaskRecord): boolean {
    const resources = record.spec.resources;
    if (resources === undefined || record.reserved) return true;
    if (!this.resourcesFree(resources)) return false;
    this.takeResources(resources, -1);
    record.reserved = true;
    record.gpus = this.takeGpus(resources);
    return true;
  }

  /** Gives back a finished task's resources, and queues the tasks that were waiting for them. */
  private releaseResources(record: TaskRecord): void {
    if (!record.reserved) return;
    record.reserved = false;
    if (record.gpus !== undefined) this.giveGpus(record.gpus);
    record.gpus = undefined;
    // Bundle CPUs it lent while it waited in get() (helper pg) are back already.
    const lent = this.lentGroupCpus === undefined ? undefined : this.lentGroupCpus.get(record);
    if (lent !== undefined) {
      (this.lentGroupCpus as Map<TaskRecord, ResourceMap>).delete(record);
      this.takeResources(Object.fromEntries(Object.entries(record.spec.resources ?? {}).filter(([name]) => !(name in lent))), 1);
    } else this.takeResources(record.spec.resources, 1);
    this.queueResourceWaiters();
  }

  /** Tasks that waited for GPUs or custom resources go to the queue, in order, while there are enough. */
  private queueResourceWaiters(): void {
    const waiting = this.waitingForResources.splice(0);
    for (const next of waiting) {
      if (next.state !== 'queued') continue;
      if (this.reserveResources(next)) {
        this.toWorkerQueue(next);
        this.scheduleDispatch();
      } else this.waitingForResources.push(next);
    }
  }

  private removeFromQueue(record: TaskRecord): void {
    const index = this.waitingForResources.indexOf(record);
    const envIndex = index >= 0 || this.envQueue.length === 0 ? -1 : this.envQueue.indexOf(record);
    if (index >= 0) this.waitingForResources.splice(index, 1);
    else if (envIndex >= 0) this.envQueue.splice(envIndex, 1);
    else this.scheduler.remove(record);
  }

  /** The cluster link's handle on a task (or actor call, without a record) this node owns. */
  private remoteWork(spec: TaskSpec, record: TaskRecord | undefined): RemoteWork {
    return {
      // A task in a placement group the cluster parked may find its bundle here later (helper pg).
      ...(record !== undefined && spec.resources !== undefined && groupsIn(spec.resources).length > 0
        ? {
            runHere: () => {
              if (record.cancelled || record.state === 'finished') return;
              record.remote = false;
              this.queueHere(record);
            },
          }
        : {}),
      spec,
      attempt: record?.retries ?? 0,
      traced: record === undefined ? !this.taskEvents.skips(spec.taskId) : record.traced,
      function: spec.actorId === undefined ? this.functions.get(spec.functionId) : undefined,
      done: (values) => {
        if (spec.actorId !== undefined) this.actorCallDone(spec.returnIds[0] as string, values.some((value) => value.state === 'ready' || value.state === 'located'));
        if (record !== undefined) {
          if (record.cancelled || record.state === 'finished') return;
          record.state = 'finished';
          record.remote = false;
          if (values.some((value) => value.state === 'ready' || value.state === 'located')) this.keepLineage(record);
        }
        this.remoteObjects.storeValues(values, spec.owner.nodeId === this.nodeId ? '' : spec.owner.nodeId);
      },
      lost: (error) => {
        // An actor call (no record) is looked up by ID (see TaskEventBuffer.skip).
        if ((record === undefined ? this.taskEvents.enabled : record.traced && record.state !== 'finished' && !record.cancelled)) this.taskEvents.failed(spec, record?.retries ?? 0, encodeError(error));
        if (record === undefined) {
          if (spec.actorId !== undefined) this.actorCallDone(spec.returnIds[0] as string, false);
          for (const id of spec.returnIds) this.objects.setObject(id, encodeError(error), true);
          return;
        }
        if (record.cancelled || record.state === 'finished') return;
        record.remote = false;
        if (this.retriesLeft(record)) {
          record.retries++;
          record.state = 'waiting';
          this.enqueue(record);
        } else this.failTask(record, encodeError(error), false);
      },
    };
  }

  // ---- lineage reconstruction ----------------------------------------------------------------

  /**
   * Keeps a finished task's spec while its results are referenced (before they are stored: see
   * Lineage.keep). Only in a cluster: in the embedded default every copy is in this process, so
   * none can be lost while it runs, and the tasks' path pays nothing for lineage.
   */
  private keepLineage(record: TaskRecord): void {
    if (this.cluster?.canGrow === true) this.lineage.keep(record, record.spec, specBytes(record.spec));
  }

  /**
   * Node `nodeId` died: objects this node owns whose only copy was there are rebuilt by lineage
   * (or fail saying why not); borrowed objects it owned fail with OwnerDiedError; borrowed ones
   * that were to be pulled from it are asked of their owners again.
   */
  private nodeDied(nodeId: string): void {
    if (nodeId === this.nodeId) return;
    const lost: string[] = [];
    for (const [id, entry] of this.objects.all()) {
      if (entry.foreignOwner === nodeId) {
        if (entry.state !== 'failed' && !this.store.contains(id)) this.remoteObjects.failCopy(id, ownerDiedError(id, nodeId));
      } else if (entry.foreignOwner !== undefined) {
        if (entry.location === nodeId && entry.state === 'pending') delete entry.location; // its owner names another copy
      } else {
        entry.copies?.delete(nodeId);
        if (this.isLost(id, entry) && !this.moveToCopy(entry)) lost.push(id);
      }
    }
    for (const id of lost) this.rebuild(id, nodeId);
  }

  /** An object whose primary copy was lost is read from another node's copy from now on, if one is known. */
  private moveToCopy(entry: ObjectEntry<TaskRecord>): boolean {
    for (const copy of entry.copies ?? []) {
      entry.copies?.delete(copy);
      if (this.cluster?.isDead(copy) === true) continue;
      entry.location = copy;
      return true;
    }
    return false;
  }

  /** A copy of an object this node owns could not be read from `nodeId` (a pull failed). */
  private holderLost(id: string, nodeId: string): void {
    const entry = this.objects.get(id);
    if (entry === undefined || entry.foreignOwner !== undefined || entry.state !== 'ready' || entry.location !== nodeId || this.store.contains(id)) return;
    entry.copies?.delete(nodeId);
    if (!this.moveToCopy(entry)) this.rebuild(id, nodeId);
  }

  /** Whether an object this node owns has no copy left: ready, its only copy on a node that died. */
  private isLost(id: string, entry: ObjectEntry<TaskRecord>): boolean {
    return entry.state === 'ready' && entry.location !== undefined && this.cluster?.isDead(entry.location) === true && !this.store.contains(id);
  }

  /**
   * Makes a lost object again by re-running the task that made it, after those that made its lost
   * arguments (each re-run counts against that task's retries), or fails it saying why it cannot
   * be: put() objects, and actor results unless the actor's maxTaskRetries allows, are not rebuilt (as in Ray).
   */
  private rebuild(id: string, lostAt: string): void {
    const where = `every copy of ObjectRef(${id}) was on node ${lostAt.slice(0, 8)}, which died or could not be reached`;
    const plan = this.lineage.plan(id, (arg) => {
      const entry = this.objects.get(arg);
      // Freed: its value went with its refs, so a task that reads it needs it made again.
      return entry === undefined || (entry.foreignOwner === undefined && this.isLost(arg, entry));
    });
    if ('reason' in plan) {
      const message = `${where}. ${plan.reason}. `;
      const error =
        plan.kind === 'not-rebuilt'
          ? new ObjectLostError(
              `${message}Objects from put() are not rebuilt, nor are the results of an actor created with maxTaskRetries 0 (the default): ` +
                'keep such objects in the process that needs them, make them with a task (a task\'s result is rebuilt by running it again while maxRetries allows), ' +
                'or create the actor with maxTaskRetries > 0 (or -1) and maxRestarts, so that its lost results are rebuilt by calling the method again.',
            )
          : new ObjectReconstructionFailedError(message);
      this.failLost([id], encodeError(error));
      return;
    }
    // All or nothing: a rebuild that cannot finish is not started.
    const spent = plan.tasks.find((record) => record.state === 'finished' && !this.retriesLeft(record));
    if (spent !== undefined) {
      const tries = spent.retries + 1;
      const which = spent.spec.returnIds.includes(id) ? 'which made it' : `which made one of its lost arguments`;
      const actor = spent.spec.actorId !== undefined;
      const error = new ObjectReconstructionFailedError(
        `${where}, and ${actor ? 'actor method' : 'task'} ${spent.spec.name}, ${which}, cannot run again to rebuild it: it has run ${tries} time${tries > 1 ? 's' : ''} ` +
          (actor
            ? `(maxTaskRetries: ${spent.spec.maxRetries}). Raise maxTaskRetries in the actor's options (-1: no limit) to let lineage rebuild its results.`
            : `(maxRetries: ${spent.spec.maxRetries}). Raise maxRetries in its options (-1: no limit) to let lineage rebuild its results.`),
      );
      this.failLost([id, ...spent.spec.returnIds], encodeError(error));
      return;
    }
    for (const record of plan.tasks) this.rerun(record);
  }

  /** Sends an actor call to its actor: here, or through the cluster where it lives. */
  private callActor(spec: TaskSpec, fromPeer: boolean, attempt = 0): void {
    const awaiting = this.awaitingWorkingDir?.get(spec.actorId as string);
    if (awaiting !== undefined) return void awaiting.push([spec, fromPeer, attempt]);
    // getIfExists across the cluster (actors part): a call waits for the claim, or goes to the holder.
    if (!fromPeer && (this.claiming.size > 0 || this.remoteAliases.size > 0)) {
      // An alias may stand for a claimant that itself lost its claim: follow both steps.
      for (let holder = this.remoteAliases.get(spec.actorId as string), steps = 0; holder !== undefined && steps < 4; holder = this.remoteAliases.get(holder), steps++) {
        spec = { ...spec, actorId: holder };
      }
      const waiting = this.claiming.get(spec.actorId as string);
      if (waiting !== undefined) return void waiting.push(spec);
    }
    if (this.actors.has(spec.actorId as string) || this.cluster === undefined || fromPeer) this.actors.submitCall(spec, attempt);
    else this.cluster.callRemoteActor(this.remoteWork(spec, undefined));
  }

  private actorCallRecord(spec: TaskSpec): TaskRecord {
    return { spec, numCpus: 0, remote: false, fromPeer: false, reserved: false, state: 'running', retries: 0, firstAttempt: 0, cancelled: false, worker: undefined, seq: 0, gpus: undefined, traced: this.taskEvents.enabled && !this.taskEvents.skips(spec.taskId) };
  }

  /**
   * An actor call this node owns reported (`ok`: with results). As in Ray, its spec is kept in
   * lineage like a task's when its actor was created with maxTaskRetries (its calls may run
   * again), so that a lost result is made again by calling the method again (see rerun); with
   * maxTaskRetries 0 its results are not rebuilt.
   */
  private actorCallDone(firstId: string, ok: boolean): void {
    const record = this.actorCallsPending.get(firstId);
    if (record === undefined) return;
    this.actorCallsPending.delete(firstId);
    record.state = 'finished';
    if (!ok || record.retries > 0) return; // a rebuild's record is kept already
    const actorId = record.spec.actorId as string;
    const maxTaskRetries = this.actors.taskRetriesOf(actorId) ?? this.cluster?.actorTaskRetries(actorId) ?? 0;
    if (maxTaskRetries === 0) return;
    // Its rebuilds count against maxTaskRetries (rerun and retriesLeft read maxRetries).
    this.keepLineage({ ...record, spec: { ...record.spec, maxRetries: maxTaskRetries } });
  }

  /** Runs a finished task again, its results pending once more (see rebuild). */
  private rerun(record: TaskRecord): void {
    if (record.state !== 'finished' || record.cancelled) return; // already being made again
    const { spec } = record;
    this.reopenForRerun(record);
    if (spec.actorId !== undefined) {
      // An actor call: its method is called again through the normal actor-call path (the actor
      // may have been restarted elsewhere).
      record.state = 'running';
      this.actorCallsPending.set(spec.returnIds[0] as string, record);
      this.callActor(spec, false);
      return;
    }
    record.state = 'waiting';
    record.remote = false;
    if (spec.dependencies.length === 0) this.enqueue(record);
    else this.waitForArguments(record);
  }

  /** A task or actor call about to run again: its results pending once more (entries made again where freed), its arguments held, a retry counted. */
  private reopenForRerun(record: TaskRecord): void {
    const { spec } = record;
    for (const id of spec.returnIds) {
      if (this.objects.get(id) === undefined) {
        this.objects.addRebuilt(id, spec.owner.workerId, record);
        this.lineage.revived(id);
      }
    }
    record.retries++;
    for (const id of spec.returnIds) this.objects.reopen(id, record);
    this.holdArguments(spec);
  }

  /** The call's ref arguments (and refs nested in its arguments) live until it finishes. */
  private holdArguments(spec: TaskSpec): void {
    let argumentRefs = spec.nestedRefs === undefined ? spec.dependencies : [...spec.dependencies, ...spec.nestedRefs];
    // Actor lifetimes: a pending call keeps its actor alive (get(A.remote().f.remote()) works).
    if (spec.actorId !== undefined && this.objects.get(spec.actorId) !== undefined) argumentRefs = [...argumentRefs, spec.actorId];
    this.objects.hold(spec.returnIds[0] as string, argumentRefs, `argument of ${spec.actorId === undefined ? 'task ' : ''}${spec.name}`);
  }

  /** Fails objects that had no copy left (those made again since are left alone). */
  private failLost(ids: readonly string[], error: Uint8Array): void {
    for (const id of ids) {
      const entry = this.objects.get(id);
      if (entry !== undefined && entry.state !== 'failed' && !this.store.contains(id)) this.objects.setObject(id, error, true);
    }
  }

  /** Stores `error` (an encoded ErrorRecord) as every return value of the task. */
  private failTask(record: TaskRecord, error: Uint8Array, recordEvent = true): void {
    if (recordEvent && record.traced) this.taskEvents.failed(record.spec, record.firstAttempt + record.retries, error);
    record.state = 'finished';
    this.releaseResources(record);
    for (const id of record.spec.returnIds) this.objects.setObject(id, error, true);
  }

  private retriesLeft(record: TaskRecord): boolean {
    return record.spec.maxRetries < 0 || record.retries < record.spec.maxRetries;
  }

  private scheduleDispatch(): void {
    if (this.dispatchQueued || this.stopped) return;
    this.dispatchQueued = true;
    queueMicrotask(() => {
      this.dispatchQueued = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    if (this.envQueue.length > 0) this.dispatchEnv();
    const batches = new Map<Worker, { functions: FunctionDescriptor[]; tasks: ExecuteTask[] }>();
    this.scheduler.dispatch(this.pool.workers, (worker, record) => {
      const { spec } = record;
      const args = this.startOn(worker, record);
      if (args === undefined) return;
      const seq = record.seq;
      let batch = batches.get(worker);
      if (batch === undefined) {
        batch = { functions: [], tasks: [] };
        batches.set(worker, batch);
      }
      if (!worker.knownFunctions.has(spec.functionId)) {
        worker.knownFunctions.add(spec.functionId);
        const fn = this.functions.get(spec.functionId);
        if (fn !== undefined) batch.functions.push(fn);
      }
      batch.tasks.push(this.executeTaskOf(record, seq, args));
    });
    for (const [worker, batch] of batches) {
      this.pool.setBusy(worker, true);
      this.sendExecute(worker, batch.functions, batch.tasks);
    }
    this.keepAliveWhileQueued();
  }

  private keepAlive: NodeJS.Timeout | undefined;
  /**
   * Tasks still queued (waiting for CPUs held by actors, or for a worker to start) keep the
   * process alive, as running tasks do through their workers.
   */
  private keepAliveWhileQueued(): void {
    const queued = (this.scheduler.queuedCount > 0 || this.waitingForResources.length > 0 || this.envQueue.length > 0) && !this.stopped;
    if (queued && this.keepAlive === undefined) this.keepAlive = setInterval(() => {}, 1 << 30);
    else if (!queued && this.keepAlive !== undefined) {
      clearInterval(this.keepAlive);
      this.keepAlive = undefined;
    }
  }

  // ---- workers -------------------------------------------------------------------------------

  /**
   * Everything a worker says arrives here, checked for shape by its channel (parseWorkerToNode).
   * What a message points at is checked here, before anything changes: a message that names a seq,
   * an attachment, a lease or an ID it has no business with marks its worker as crashed. Only
   * those checks blame the worker: anything thrown while handling a message is the node's own
   * fault (a bug), so it is logged as an internal error and the node goes on; it must not escape
   * either, as it would end the process from the worker's event.
   */
  private onWorkerMessage(worker: Worker, message: WorkerToNode, attached: readonly SharedArrayBuffer[]): void {
    if (this.badWorkers.has(worker)) return;
    try {
      const problem = this.handleWorkerMessage(worker, message, attached);
      if (problem !== undefined) this.onBadMessage(worker, `its '${message.type}' message ${problem}`);
    } catch (error) {
      this.onInternalError(worker, message.type, error);
    }
  }

  /** Internal errors logged already (by message and where thrown): each is logged once, however often it recurs. */
  private readonly internalErrorsLogged = new Set<string>();

  private onInternalError(worker: Worker, messageType: string, error: unknown): void {
    const stack = error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : String(error);
    const thrownAt = stack.split('\n').find((line) => line.trimStart().startsWith('at ')) ?? '';
    const key = `${messageType}|${error instanceof Error ? error.message : stack}|${thrownAt}`;
    if (this.internalErrorsLogged.has(key)) return;
    if (this.internalErrorsLogged.size < 100) this.internalErrorsLogged.add(key);
    console.error(
      `miniray: internal error while handling a '${messageType}' message of worker ${worker.id.slice(0, 8)} ` +
        '(a bug in miniray, not in the worker or your code; please report it). ' +
        `The node goes on, but what that message was to do may be left undone:\n${stack}`,
    );
  }

  /**
   * A worker sent something malformed, or something that does not fit what it was given: it is
   * handled as crashed (its tasks go back as after its death, its actors restart if they may), and
   * replaced. Logged once per worker.
   */
  private onBadMessage(worker: Worker, problem: string): void {
    if (this.badWorkers.has(worker) || !worker.alive || this.stopped) return;
    this.badWorkers.add(worker);
    const what = worker.role === 'actor' ? 'actor host' : 'worker';
    console.error(
      `miniray: ${what} ${worker.id.slice(0, 8)} sent a malformed message: ${problem}. ` +
        'It is handled as crashed: its tasks are retried as after a crash, and it is replaced.',
    );
    worker.exitError = new Error(`it sent a malformed message: ${problem}`);
    worker.accepting = false; // no more tasks for it while it goes
    worker.channel.close();
    // Nothing more goes to its actors; they move on (restart or die) at its exit, once it is known
    // which of their calls had started.
    if (worker.role === 'actor') this.actors.onHostBad(worker);
    void worker.host.terminate(); // not pool.kill(): its exit is a crash, not a deliberate end
  }

  /** Acts on one message; returns what is wrong with it instead, having changed nothing. */
  private handleWorkerMessage(worker: Worker, message: WorkerToNode, attached: readonly SharedArrayBuffer[]): string | undefined {
    switch (message.type) {
      case 'ready':
        if (this.readyWorkers.has(worker)) return 'came twice';
        this.readyWorkers.add(worker);
        this.startupFailures = 0;
        this.startupError = undefined; // workers start again
        if (worker.role === 'actor') this.actors.onHostReady(worker);
        else this.scheduleDispatch();
        return undefined;
      case 'logs':
        this.onLogs(worker, message.lines);
        return undefined;
      case 'results': {
        const problem = this.checkResults(worker, message.results, attached);
        if (problem !== undefined) return problem;
        if (worker.role === 'actor') this.actors.onResults(worker, message.results, attached);
        else this.onResults(worker, message.results, attached);
        return undefined;
      }
      case 'createActor': {
        const { spec } = message;
        if (this.actors.has(spec.actorId)) return `creates actor ${spec.actorId}, which exists already`;
        const problem = this.checkOwner(worker, spec.owner) ?? this.checkFunctions(message.functions);
        if (problem !== undefined) return problem;
        // A worker cannot be told at once that the name is taken: the actor is created dead instead.
        this.createActor(message.functions, spec, false);
        return undefined;
      }
      case 'request':
        return this.workerRequests.receive(worker, message);
      case 'cancelRequest':
        this.workerRequests.cancel(worker, message.id);
        return undefined;
      case 'killActor':
        this.killActor(message.actorId, message.noRestart);
        return undefined;
      case 'submit': {
        const problem = this.checkSubmit(worker, message.tasks) ?? this.checkFunctions(message.functions);
        if (problem !== undefined) return problem;
        this.submit(message.functions, message.tasks);
        return undefined;
      }
      case 'put': {
        const problem = this.checkPut(message.objects, attached);
        if (problem !== undefined) return problem;
        if (this.taskEvents.coreTraced()) this.taskEvents.core('put', worker.id, Date.now(), message.objects.length);
        // A worker's put() has returned already: an object that does not fit becomes its error.
        for (const object of message.objects) {
          let blocks: Block[];
          try {
            blocks = this.delivery.blocksFrom(object.parts, attached);
          } catch (error) {
            this.objects.setObject(object.id, encodeError(error as Error), true, { owner: worker.id });
            continue;
          }
          this.objects.setObject(object.id, object.data, object.failed === true, { owner: worker.id, blocks, nested: object.nested });
        }
        return undefined;
      }
      case 'addRefs':
        this.addRefs(worker.id, message.ids, message.owners);
        return undefined;
      case 'removeRefs':
        this.objects.removeHandles(worker.id, message.ids);
        return undefined;
      case 'releaseLeases': {
        for (const lease of message.leases) {
          const holder = this.objects.leaseHolder(lease);
          if (holder === undefined) return `releases lease ${lease}, which was never given out`;
          if (holder !== null && holder !== worker.id) return `releases lease ${lease}, which was given to ${this.threadName(holder)}, not to it`;
        }
        this.releaseLeases(message.leases);
        return undefined;
      }
      case 'blocked': {
        // Only a task can wait in get() with its CPU lent out; each blocked task is one of those it runs.
        const blocked = this.blockedTasks.get(worker) ?? 0;
        if (worker.role === 'actor') return 'comes from an actor host, whose CPUs are held by its actors';
        if (blocked >= worker.inFlight.size) return `says a task waits in get(), but it has ${worker.inFlight.size - blocked} task(s) that could`;
        this.blockedTasks.set(worker, blocked + 1);
        this.scheduler.onBlocked(worker);
        if (this.groupTotals.size > 0) this.lendGroupCpus(worker); // helper pg
        this.scheduleDispatch();
        return undefined;
      }
      case 'unblocked': {
        const blocked = this.blockedTasks.get(worker) ?? 0;
        if (blocked === 0) return 'says a task stopped waiting in get(), but none was waiting';
        if (blocked === 1) this.blockedTasks.delete(worker);
        else this.blockedTasks.set(worker, blocked - 1);
        this.scheduler.onUnblocked(worker);
        if (this.lentGroupCpus !== undefined && this.lentGroupCpus.size > 0) this.takeBackGroupCpus(worker); // helper pg
        return undefined;
      }
      case 'cancel':
        this.cancel(message.objectId, message.force, message.recursive === true);
        return undefined;
      // generators
      case 'generatorItem':
        return this.onGeneratorItem(worker, message, attached);
      case 'generatorDropped':
        this.generatorDropped(worker.id, message.generatorId);
        return undefined;
    }
  }

  /** The requests workers make of their node (the answered part of handleWorkerMessage). */
  private readonly workerRequests = new WorkerRequests<Worker>({
    get: (worker, request) => {
      let remaining = request.ids.length;
      const traced = this.taskEvents.coreTraced();
      const startMs = traced ? Date.now() : 0;
      const kind = request.withData ? 'get' : 'wait';
      const withdraw = this.fetch(
        request.ids,
        request.withData,
        (object) => {
          const done = --remaining === 0;
          if (done && traced) this.taskEvents.core(kind, worker.id, startMs, request.ids.length);
          if (!this.workerRequests.reply(worker, request.id, object, done) && object.state === 'ready' && object.lease !== undefined) this.objects.releaseLease(object.lease);
        },
        worker,
        request.fetchLocal === true,
      );
      return remaining > 0 ? () => (withdraw(), traced && this.taskEvents.core(kind, worker.id, startMs, request.ids.length)) : undefined;
    },
    lookupActor: (worker, request) => {
      this.lookupActor(request.name, request.namespace, (info) => this.workerRequests.reply(worker, request.id, info, true));
      return undefined;
    },
    clusterInfo: (worker, request) => {
      this.clusterInfo(request.query, (answer) => this.workerRequests.reply(worker, request.id, answer, true));
      return undefined;
    },
    // generators
    generatorNext: (worker, request) => {
      this.generatorNext(worker.id, request.generatorId, request.index, (answer) => this.workerRequests.reply(worker, request.id, answer, true), request.peek === true);
      return undefined;
    },
  });

  /**
   * Results must be for seqs the worker was given and has not reported, be cancelled only when the
   * node asked, and have one value per return.
   */
  private checkResults(worker: Worker, results: readonly TaskResult[], attached: readonly SharedArrayBuffer[]): string | undefined {
    for (let i = 0; i < results.length; i++) {
      const result = results[i] as TaskResult;
      const { seq } = result;
      if (seq < 1 || seq >= worker.nextSeq) return `has results[${i}] for seq ${seq}, which it was never given`;
      if (worker.role === 'task') {
        const record = worker.inFlight.get(seq);
        if (record === undefined) return `has results[${i}] for seq ${seq}, which it has reported already`;
        if (result.outcome === 'cancelled' && !record.cancelled) return `has results[${i}] saying seq ${seq} was cancelled, which it was not asked to`;
        if (result.outcome === 'ok' && result.values.length !== record.spec.returnIds.length) {
          return `has results[${i}] with ${result.values.length} value(s) for task ${record.spec.name}, which has ${record.spec.returnIds.length} return(s)`;
        }
      } else if (result.outcome === 'cancelled' && this.actors.awaits(worker, seq) && !this.actors.expectsCancelled(worker, seq)) {
        // A host reports calls cancelled only for actors the manager has let go of (destroyActor),
        // or is killing to restart them (a 'shared' actor drops its queued calls).
        return `has results[${i}] saying seq ${seq} was cancelled, which it was not asked to`;
      }
      // An actor call's values are counted by delivery.storeResult, which knows its returns.
      if (result.outcome === 'ok' && result.parts !== undefined) {
        for (let v = 0; v < result.parts.length; v++) {
          const problem = this.delivery.checkParts(result.parts[v], attached, `has results[${i}] value ${v} whose`);
          if (problem !== undefined) return problem;
        }
      }
    }
    return undefined;
  }

  /** Objects put must be new, named once, with parts the worker may send. */
  private checkPut(objects: readonly NewObject[], attached: readonly SharedArrayBuffer[]): string | undefined {
    const ids = objects.length > 1 ? new Set<string>() : undefined;
    for (let i = 0; i < objects.length; i++) {
      const object = objects[i] as NewObject;
      if (this.objects.get(object.id) !== undefined || this.store.contains(object.id)) return `puts objects[${i}] with ID ${object.id}, which exists already`;
      if (ids !== undefined) {
        if (ids.has(object.id)) return `puts ID ${object.id} twice`;
        ids.add(object.id);
      }
      const problem = this.delivery.checkParts(object.parts, attached, `has objects[${i}] whose`);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }

  /** Tasks a worker submits are its own, and their return IDs are new. */
  private checkSubmit(worker: Worker, tasks: readonly TaskSpec[]): string | undefined {
    const returns = new Set<string>();
    for (let i = 0; i < tasks.length; i++) {
      const spec = tasks[i] as TaskSpec;
      const problem = this.checkOwner(worker, spec.owner);
      if (problem !== undefined) return `has tasks[${i}] that ${problem}`;
      for (const id of spec.returnIds) {
        if (this.objects.get(id) !== undefined || this.store.contains(id) || returns.has(id)) {
          return `has tasks[${i}] (${spec.name}) returning ${id}, which exists already`;
        }
        returns.add(id);
      }
    }
    return undefined;
  }

  /** What a worker creates is owned by that worker (the owner counts as holding a ref to it). */
  private checkOwner(worker: Worker, owner: { readonly nodeId: string; readonly workerId: string }): string | undefined {
    if (owner.workerId === worker.id && owner.nodeId === this.nodeId) return undefined;
    return `names owner { nodeId: ${owner.nodeId.slice(0, 8)}, workerId: ${owner.workerId.slice(0, 8)} }, not itself`;
  }

  /** A function ID is the hash of its definition: a worker may not give a known ID another one. */
  private checkFunctions(functions: readonly FunctionDescriptor[]): string | undefined {
    for (const fn of functions) {
      const known = this.functions.get(fn.id) as Readonly<Record<string, unknown>> | undefined;
      if (known === undefined) continue;
      const given = fn as unknown as Readonly<Record<string, unknown>>;
      const keys = Object.keys(known);
      if (keys.length !== Object.keys(given).length || keys.some((key) => known[key] !== given[key])) {
        return `redefines function ${fn.id} (${fn.name}) with another definition`;
      }
    }
    return undefined;
  }

  private threadName(thread: string): string {
    return thread === this.driverId ? 'the driver' : `worker ${thread.slice(0, 8)}`;
  }

  /**
   * Lines a worker's tasks wrote (it wrote them to this process's stdout itself): kept in the ring,
   * and those of tasks owned on another node sent there, so that they reach the driver that
   * submitted the task (before its result, which goes back over the same connection after them).
   */
  private onLogs(worker: Worker, lines: readonly WorkerLogLine[]): void {
    let elsewhere: Map<string, ForwardedLogLine[]> | undefined;
    for (const line of lines) {
      const { ownerNode, ...rest } = line;
      this.logRing.add({ ...rest, workerId: worker.id });
      if (ownerNode === undefined || ownerNode === this.nodeId) continue;
      elsewhere ??= new Map();
      let batch = elsewhere.get(ownerNode);
      if (batch === undefined) elsewhere.set(ownerNode, (batch = []));
      batch.push({ stream: line.stream, name: line.name, workerId: worker.id, text: line.text });
    }
    if (elsewhere === undefined || this.cluster === undefined) return;
    for (const [ownerNode, batch] of elsewhere) this.cluster.forwardLogs(ownerNode, batch);
  }

  /**
   * The recent output lines of this node's tasks and actors that match `query` (oldest first):
   * what the node answers to the state API's `nodeState` kind 'logs', with the seq of its latest line.
   */
  logLines(query: LogQuery): NodeLogAnswer {
    return { lines: this.logRing.query(query), lastSeq: this.logRing.lastSeq };
  }

  private onResults(worker: Worker, results: readonly TaskResult[], attached: readonly SharedArrayBuffer[]): void {
    for (const result of results) {
      const record = worker.inFlight.get(result.seq);
      if (record === undefined) continue;
      worker.inFlight.delete(result.seq);
      this.scheduler.onTaskDone(worker);
      record.worker = undefined;
      if (record.cancelled) this.stopWatchingForceCancel(record);
      if (result.outcome !== 'cancelled') {
        const previous = this.runTimeUs.get(record.spec.functionId);
        this.runTimeUs.set(record.spec.functionId, previous === undefined ? result.us : 0.8 * previous + 0.2 * result.us);
      }
      if (record.cancelled) continue; // already failed with TaskCancelledError
      if (record.traced) this.taskEvents.result(record.spec, record.firstAttempt + record.retries, worker.id, result);
      if (result.outcome === 'ok') {
        record.state = 'finished';
        this.releaseResources(record);
        if (!record.fromPeer) this.keepLineage(record);
        this.delivery.storeResult(worker, record.spec.returnIds, result, attached);
      } else if (result.outcome === 'error') {
        if (result.userError && record.spec.retryExceptions && this.retriesLeft(record)) {
          record.retries++;
          this.enqueue(record);
        } else {
          this.failTask(record, result.error, false);
        }
      }
    }
    if (worker.inFlight.size === 0) this.pool.setBusy(worker, false);
    this.scheduleDispatch();
    this.actors.onCpusReleased();
  }

  private onWorkerExit(worker: Worker): void {
    this.blockedTasks.delete(worker);
    if (this.stopped) return;
    this.objects.dropThread(worker.id); // its refs and leases die with it
    this.generators?.ownerGone(worker.id);
    this.workerRequests.dropWorker(worker);
    if (worker.role === 'actor') {
      this.actors.onHostExit(worker);
      return;
    }
    this.scheduler.onWorkerLost(worker);
    const lastStarted = Atomics.load(worker.progress, 0);
    const crash = this.crashError(worker);
    const requeue: TaskRecord[] = [];
    for (const [seq, record] of worker.inFlight) {
      record.worker = undefined;
      if (record.cancelled) {
        this.stopWatchingForceCancel(record);
        continue;
      }
      // Tasks the worker had not started, and bystanders of a deliberate kill, go back for free.
      if (seq > lastStarted || worker.terminatedFor === 'cancel') {
        requeue.push(record);
      } else if (this.retriesLeft(record)) {
        if (record.traced) this.taskEvents.failed(record.spec, record.firstAttempt + record.retries, encodeError(crash(record)));
        record.retries++;
        if (record.traced && !record.fromPeer) this.taskEvents.state(record.spec, record.retries, PENDING_NODE_ASSIGNMENT);
        requeue.push(record);
      } else {
        this.failTask(record, encodeError(crash(record)));
      }
    }
    worker.inFlight.clear();
    for (const record of requeue) record.state = 'queued';
    if (this.pool.forgetEnvWorker(worker)) {
      this.onEnvWorkerExit(worker, requeue);
      return;
    }
    this.scheduler.requeue(requeue);

    if (!worker.accepting && worker.terminatedFor === undefined && worker.nextSeq === 1) {
      // It died while starting (e.g. a preload module failed): do not respawn forever.
      if (++this.startupFailures >= this.workerStartupFailureLimit) {
        this.startupError = new WorkerCrashedError(
          `miniray workers fail to start (${this.startupFailures} attempts): ${worker.exitError?.message ?? 'no error given'}`,
        );
        if (this.pool.workers.every((w) => w === worker || !w.alive)) {
          const error = encodeError(this.startupError);
          for (const record of this.scheduler.drain()) this.failTask(record, error);
        }
        return;
      }
    }
    this.pool.replace(worker);
    this.scheduleDispatch();
  }

  private crashError(worker: Worker): (record: TaskRecord) => Error {
    const reason = worker.exitError;
    const oom = (reason as NodeJS.ErrnoException | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
    return (record) => {
      const tries = record.retries + 1;
      const detail = reason ? `: ${reason.message}` : ' (the thread exited)';
      const message =
        `task ${record.spec.name} failed: its worker ${oom ? 'ran out of memory' : 'died'}${detail}. ` +
        `It ran ${tries} time${tries > 1 ? 's' : ''} (maxRetries: ${record.spec.maxRetries}).`;
      return oom ? new OutOfMemoryError(message) : new WorkerCrashedError(message);
    };
  }
}


/** What a borrowed object fails with when its owner's node dies. */
export function ownerDiedError(id: string, ownerNode: string, detail = 'died'): OwnerDiedError {
  return new OwnerDiedError(
    `ObjectRef(${id}) is owned by node ${ownerNode.slice(0, 8)} (where the task or put() that created it ran), which ${detail}. ` +
      'Only an owner can rebuild an object, so it is lost for good, even from put(). To outlive that node, return the value itself ' +
      'from the task (then the caller owns the result, and can rebuild it by lineage) rather than a ref made there.',
  );
}

export { LocalNodeClient } from './local-client.js';
export { demandOf, type ClusterLink, type ForwardedLogLine, type RemoteWork } from './cluster-link.js';
export { PACKAGES, packWorkingDir, packageKey, isPackageUri } from './working-dir.js';
