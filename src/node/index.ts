/**
 * One node (Ray's raylet): it wires the object store and directory, the scheduler, the worker pool
 * and the actor manager. What readers are sent of objects is in delivery.ts. In the embedded
 * default the node lives in the driver's thread and the driver's CoreWorker calls it directly
 * (`LocalNodeClient`, local-client.ts); workers talk to it over channels. The node is the one
 * door: what it does, it does through its parts, each a module of this folder, which share a
 * NodeContext (context.ts) and not this class:
 *
 *   task-manager.ts   task records and what a task's owner decides: submission, retries, lineage,
 *                     rebuilds when a node dies, the actor calls it owns (through its TaskHost)
 *   dispatch.ts       the queue here (or the cluster), and batched dispatch to workers
 *   resources.ts      GPUs, custom resources, placement groups' bundles
 *   cancellation.ts   cancel, recursive and forced
 *   runtime-envs.ts   workers of other runtime environments, working-dir packages
 *   actor-routing.ts  actor creation, names claimed from the GCS, aliases, where each call goes
 *   reads.ts          get/wait, and the copies from other nodes they wait for
 *   worker-messages.ts  what workers say (checked, then acted on through the node's doors),
 *                       and their exits (their tasks go back, or fail)
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
} from '../errors/index.js';
import { NodeID, hexOf, type ActorIdHex, type ObjectIdHex } from '../ids/index.js';
import { ObjectStore, type Block } from '../object-store/index.js';
import { ObjectDirectory, unhandledErrorReporter, type ObjectInfo } from '../ownership/index.js';
import type { ClusterLink } from './cluster-link.js';
import { ObjectDelivery } from './delivery.js';
import { RemoteObjects } from './remote-objects.js';
import { ActorManager } from '../actors/manager.js';
import { ActorRouting } from './actor-routing.js';
import { Cancellation } from './cancellation.js';
import { NodeContext } from './context.js';
import { LocalDispatch } from './dispatch.js';
import { ObjectReads } from './reads.js';
import { NodeResources } from './resources.js';
import { RuntimeEnvs } from './runtime-envs.js';
import { TaskManager, functionIdOf, type TaskRecord, type Worker } from './task-manager.js';
import { ACTOR_WORKER_ENDED, WorkerMessages } from './worker-messages.js';
import type {
  ActorInfo,
  ActorLookupCallback,
  ActorSpec,
  ClusterAnswer,
  ClusterQuery,
  GeneratorAnswer,
  NewObject,
  ObjectPayload,
  RemoteValue,
  ResourceMap,
  RuntimeEnvSpec,
  TaskSpec,
  ActorCallSpec,
} from '../protocol/index.js';
import { keptBySender } from '../protocol/index.js';
import { Scheduler } from '../scheduler/index.js';
import { encodeError, type FunctionDescriptor } from '../serialization/index.js';
import { WorkerPool } from '../worker-pool/index.js';
import { TaskEventBuffer } from '../state/events.js';
import { LogRing } from '../state/log-lines.js';
import type { LogQuery, NodeLogAnswer } from '../state/types.js';

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

export class Node {
  readonly nodeId = hexOf(NodeID.fromRandom());
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
  /** The recent output lines of this node's tasks and actors (served to the state API's 'logs'). */
  private readonly logRing: LogRing;
  /** What the parts share (see context.ts); the parts below do the node's work. */
  private readonly context: NodeContext;
  private readonly tasks: TaskManager;
  private readonly resources: NodeResources;
  private readonly cancellation: Cancellation;
  private readonly envs: RuntimeEnvs;
  private readonly actorRouting: ActorRouting;
  private readonly dispatcher: LocalDispatch;
  private readonly reads: ObjectReads;
  /** What workers say, and their exits (worker-messages.ts). */
  private readonly workerMessages: WorkerMessages;

  /** next() of an ObjectRefGenerator in `thread` (which owns its task); `peek`: wait([gen]), which reads nothing. */
  generatorNext(thread: string, generatorId: string, index: number, answer: (answer: GeneratorAnswer) => void, peek = false): void {
    if (peek) this.context.streams().peek(thread, generatorId, index, answer);
    else this.context.streams().next(thread, generatorId, index, answer);
  }

  /** `thread` let go of its ObjectRefGenerator: the items it did not read go. */
  generatorDropped(thread: string, generatorId: string): void {
    this.context.generators?.drop(thread, generatorId);
  }

  /**
   * Item `index` of a stream this node owns, from `fromNode`, which runs its task (`value` as
   * RemoteObjects carries it); `ack` tells that node what the reader has read.
   */
  generatorItemFromPeer(generatorId: string, index: number, value: RemoteValue, fromNode: string, ack: (consumed: number) => void): void {
    this.context.generators?.item(generatorId, index, () => this.remoteObjects.storeValues([value], fromNode), `node:${fromNode}`, ack);
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
      if (entry.actorHandle === true) return this.actorRouting.actorOutOfScope(id as ActorIdHex);
      this.tasks.lineage.freed(id);
      this.context.cluster?.freed(id, entry);
    });
    this.delivery = new ObjectDelivery(
      this.store,
      this.objects,
      () => this.driverId,
      () => this.pool.allWorkers().filter((w) => w.alive),
      (worker, problem) => this.workerMessages.onBadMessage(worker as Worker, problem),
    );
    this.remoteObjects = new RemoteObjects(this.nodeId, this.store, this.objects, this.delivery, {
      nodeDied: (nodeId) => this.tasks.nodeDied(nodeId),
      holderLost: (id, nodeId) => this.tasks.holderLost(id, nodeId),
    });
    this.scheduler = new Scheduler<TaskRecord, Worker>(
      options.numCpus,
      maxTasksInFlightPerWorker,
      // Only functions seen to run short may wait behind other tasks; unknown ones count as long.
      (record) => (this.runTimeUs.get(functionIdOf(record.spec)) ?? Infinity) <= pipelineMaxTaskUs,
    );
    this.pool = new WorkerPool<TaskRecord>({
      nodeId: this.nodeId,
      size: options.numWorkers,
      resourceLimits: options.workerResourceLimits,
      onMessage: (worker, message, attached) => this.workerMessages.onWorkerMessage(worker, message, attached),
      onBadMessage: (worker, error) => this.workerMessages.onBadMessage(worker, error.message),
      onExit: (worker) => this.workerMessages.onWorkerExit(worker),
      runtimeEnv: options.runtimeEnv,
      jobId: () => this.context.jobId,
      namespace: () => this.context.namespace,
      workingDirOf: (dir) => this.envs.workingDirs?.localDir(dir) ?? dir,
      objectStoreBytes: this.store.capacityBytes,
    });
    this.actors = new ActorManager({
      functionDescriptor: (id) => this.functions.get(id),
      spawnHost: (isolation, runtimeEnv) => this.pool.spawnActorHost(isolation, this.envs.needsOwnWorkers(runtimeEnv) ? (runtimeEnv ?? {}) : undefined),
      needsOwnHost: (runtimeEnv) => this.envs.needsOwnWorkers(runtimeEnv),
      killHost: (host, actorClass) => {
        this.workerMessages.ownerGone(host as Worker, ACTOR_WORKER_ENDED, [actorClass]); // what it owns is gone from now on, not from its exit
        this.pool.kill(host as Worker, 'actor');
      },
      setBusy: (host, busy) => this.pool.setBusy(host as Worker, busy),
      // An actor here reads its arguments here: copies come first of those held elsewhere.
      waitForObjects: (what, ids, ready, failed) => this.reads.waitForObjects(what, ids, () => this.reads.withCopies(ids, ready), failed),
      argumentsFor: (ids, host) => this.delivery.argumentsFor(ids, host as Worker),
      storeResults: (host, ids, result, attached) => {
        this.tasks.actorCallDone(ids[0] as string, true);
        this.delivery.storeResult(host as Worker, ids, result, attached);
      },
      failObjects: (ids, error) => {
        this.tasks.actorCallDone(ids[0] as string, false);
        for (const id of ids) this.objects.setObject(id, error, true);
      },
      hold: (key, ids, reason) => this.objects.hold(key, ids, reason),
      releaseHolds: (key) => this.objects.releaseHolds(key),
      tryReserveCpus: (amount, resources, actorId) => this.resources.reserveForActor(amount, resources, actorId),
      gpuIdsOf: (actorId) => this.resources.actorGpus.get(actorId)?.ids,
      releaseCpus: (amount, resources, actorId) => this.resources.releaseForActor(amount, resources, actorId),
      onDead: (actorId, reason) => this.context.cluster?.actorDied(actorId, reason),
      onAlive: (actorId, numRestarts) => this.context.cluster?.actorAlive(actorId, numRestarts),
      taskEvents: this.taskEvents,
      totalCpus: options.numCpus,
      nodeId: this.nodeId,
      sharedHostCount: Math.max(1, Math.ceil(options.numCpus)),
    });
    const context = new NodeContext({
      options,
      nodeId: this.nodeId,
      taskEvents: this.taskEvents,
      store: this.store,
      objects: this.objects,
      delivery: this.delivery,
      remoteObjects: this.remoteObjects,
      functions: this.functions,
      scheduler: this.scheduler,
      pool: this.pool,
      actors: this.actors,
    });
    this.context = context;
    this.tasks = context.tasks = new TaskManager(context);
    this.resources = context.resources = new NodeResources(context);
    this.cancellation = context.cancellation = new Cancellation(context);
    this.envs = context.envs = new RuntimeEnvs(context);
    this.actorRouting = context.actorRouting = new ActorRouting(context);
    this.dispatcher = context.dispatcher = new LocalDispatch(context);
    this.reads = context.reads = new ObjectReads(context);
    this.workerMessages = new WorkerMessages(context, this, this.logRing, this.runTimeUs);
    this.pool.start();
  }

  /** Joins this node to its cluster (see cluster-link.ts). */
  attachCluster(link: ClusterLink): void {
    this.context.cluster = link;
  }

  /** Resolves when all workers have started; rejects with the reason if one cannot start. */
  ready(): Promise<void> {
    return this.pool.whenReady();
  }

  async shutdown(): Promise<void> {
    if (this.context.stopped) return;
    this.context.stopped = true;
    this.taskEvents.stop();
    for (const timer of this.cancellation.forceCancelWatches.values()) clearTimeout(timer);
    this.cancellation.forceCancelWatches.clear();
    this.dispatcher.keepAliveWhileQueued();
    await this.pool.shutdown();
    this.envs.workingDirs?.clear();
    this.objects.clear(new ObjectLostError('miniray was shut down before this object was created'));
    this.tasks.lineage.clear();
    this.tasks.actorCallsPending.clear();
    this.store.clear();
  }

  /** Figures for tests and state tools. */
  stats(): { workers: number; queuedTasks: number; availableCpus: number; objects: number } {
    return {
      workers: this.pool.workers.filter((w) => w.alive).length,
      queuedTasks: this.queuedTasks,
      availableCpus: this.scheduler.availableCpus,
      objects: this.objects.size,
    };
  }

  // ---- what CoreWorkers ask of the node ------------------------------------------------------

  submit(functions: readonly FunctionDescriptor[], specs: readonly TaskSpec[]): void {
    for (const fn of functions) this.functions.set(fn.id, fn);
    for (const spec of specs) this.tasks.submitOne(spec);
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

  addRefs(thread: string, ids: readonly string[], owners?: readonly string[]): void {
    this.reads.addRefs(thread, ids, owners);
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
    const driver = this.driverId === '' ? [] : [{ workerId: this.driverId, role: 'driver' as const, isolation: 'thread' as const, alive: !this.context.stopped, pid: process.pid }];
    return [
      ...driver,
      ...this.pool.allWorkers().map((w) => ({ workerId: w.id, role: w.role, isolation: w.isolation, alive: w.alive, pid: w.host.pid ?? process.pid })),
    ];
  }

  fetch(ids: readonly ObjectIdHex[], withData: boolean, onObject: (object: ObjectPayload) => void, reader: Worker | undefined = undefined, fetchLocal = false): () => void {
    return this.reads.fetch(ids, withData, onObject, reader, fetchLocal);
  }

  cancel(objectId: string, force: boolean, recursive = false): void {
    this.cancellation.cancel(objectId, force, recursive);
  }

  // ---- actors (actor-routing.ts) -------------------------------------------------------------

  createActor(functions: readonly FunctionDescriptor[], spec: ActorSpec, throwIfNameTaken = true): ActorInfo | undefined {
    return this.actorRouting.createActor(functions, spec, throwIfNameTaken);
  }

  createActorHere(spec: ActorSpec): void {
    this.actorRouting.createActorHere(spec);
  }

  lookupActor(name: string, namespace: string, callback: ActorLookupCallback): void {
    this.actorRouting.lookupActor(name, namespace, callback);
  }

  /** `ownerDied` (with outOfScope): the worker that owned it ended, on the node that asked. */
  killActor(actorId: ActorIdHex, noRestart: boolean, outOfScope = false, ownerDied?: string): void {
    this.actorRouting.killActor(actorId, noRestart, outOfScope, ownerDied);
  }

  /** Asks the cluster (its head's tables) on behalf of a CoreWorker of this node. */
  clusterInfo(query: ClusterQuery, callback: (answer: ClusterAnswer) => void): void {
    if (this.context.cluster === undefined) callback({ error: encodeError(new MinirayError('this node has not joined a cluster')) });
    else if (typeof query === 'object' && query.gcs === 'createPlacementGroup') this.resources.createPlacementGroup(this.context.cluster, query, callback);
    else this.context.cluster.info(query, callback);
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
    this.tasks.submitOne(spec, true, attempt, !untraced);
    this.remoteObjects.storeValues(args, ownerNode, true);
    const owner = spec.owner.workerId;
    let remaining = spec.returnIds.length;
    this.objects.fetch(
      spec.returnIds,
      () => {
        if (--remaining > 0) return;
        const values = spec.returnIds.map((id) => this.remoteObjects.valueFor(id, inlineLimit));
        // Returned inline: the owner has the value, nothing here needs it any more.
        const sent = values.filter((value) => !keptBySender(value)).map((value) => value.id);
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
  actorDeadInCluster(actorId: ActorIdHex, reason: string): void {
    this.actors.endIfAlive(actorId, reason);
  }

  /** A call of this node's, to an actor that was restarted here (its return objects are registered). */
  callActorHere(spec: ActorCallSpec): void {
    this.actors.submitCall(spec);
  }

  /** Tasks queued here: how loaded this node is (with available()). */
  createActorForPeer(functions: readonly FunctionDescriptor[], spec: ActorSpec, args: readonly RemoteValue[]): void {
    this.actorRouting.createActorForPeer(functions, spec, args);
  }

  // ---- resources and placement groups' bundles (resources.ts) ---------------------------------

  available(): Record<string, number> {
    return this.resources.available();
  }

  totals(): Record<string, number> {
    return this.resources.totals();
  }

  prepareBundles(placementGroupId: string, bundles: readonly { readonly index: number; readonly resources: ResourceMap }[]): boolean {
    return this.resources.prepareBundles(placementGroupId, bundles);
  }

  commitBundles(placementGroupId: string, indices: readonly number[]): void {
    this.resources.commitBundles(placementGroupId, indices);
  }

  cancelBundles(placementGroupId: string, indices?: readonly number[]): void {
    this.resources.cancelBundles(placementGroupId, indices);
  }

  groupRemovedError(placementGroupId: string): MinirayError {
    return this.resources.groupRemovedError(placementGroupId);
  }

  get removedGroups(): Set<string> {
    return this.resources.removedGroups;
  }

  placementGroupRemoved(placementGroupId: string): void {
    this.resources.placementGroupRemoved(placementGroupId);
  }

  // ---- local scheduling (dispatch.ts) ---------------------------------------------------------

  canRun(spec: { readonly numCpus: number; readonly resources?: ResourceMap }): boolean {
    return this.dispatcher.canRun(spec);
  }

  infeasibleError(what: string, spec: { readonly numCpus: number; readonly resources?: ResourceMap }): InvalidOptionError {
    return this.dispatcher.infeasibleError(what, spec);
  }

  /** The job's ID (hex), set by api once the GCS has given it; workers learn it with their next execute message. */
  get jobId(): string {
    return this.context.jobId;
  }

  set jobId(jobId: string) {
    this.context.jobId = jobId;
  }

  /** The job's namespace (init({ namespace }), else an anonymous one, as Ray's), sent to workers with jobId. */
  get namespace(): string {
    return this.context.namespace;
  }

  set namespace(namespace: string) {
    this.context.namespace = namespace;
  }

  /**
   * Tasks here that wait to run (what `miniray status`, the state API and the dashboard show as
   * queued): for their resources, for a worker, or for a worker of their runtimeEnv. Not tasks
   * waiting for their arguments, nor those sent to a worker already.
   */
  get queuedTasks(): number {
    return this.scheduler.queuedCount + this.resources.waitingForResources.length + this.envs.envQueue.length;
  }

  /**
   * The recent output lines of this node's tasks and actors that match `query` (oldest first):
   * what the node answers to the state API's `nodeState` kind 'logs', with the seq of its latest line.
   */
  logLines(query: LogQuery): NodeLogAnswer {
    return { lines: this.logRing.query(query), lastSeq: this.logRing.lastSeq };
  }
}

export { ownerDiedError } from './task-manager.js';
export { LocalNodeClient } from './local-client.js';
export { demandOf, type ClusterLink, type ForwardedLogLine, type RemoteWork } from './cluster-link.js';
export { PACKAGES, packWorkingDir, packageKey, isPackageUri } from './working-dir.js';
