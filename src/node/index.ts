/**
 * One node (Ray's raylet): it wires the object store and directory, the scheduler, the worker pool
 * and the actor manager, and handles everything workers say. What readers are sent of objects is
 * in delivery.ts. In the embedded default the node lives in the driver's thread and the driver's
 * CoreWorker calls it directly (`LocalNodeClient`, local-client.ts); workers talk to it over
 * channels. The node is the one door: what it does beyond workers' messages, it does through its
 * parts, each a module of this folder, which share a NodeContext (context.ts) and not this class:
 *
 *   task-manager.ts   task records and what a task's owner decides: submission, retries, lineage,
 *                     rebuilds when a node dies, the actor calls it owns (through its TaskHost)
 *   dispatch.ts       the queue here (or the cluster), and batched dispatch to workers
 *   resources.ts      GPUs, custom resources, placement groups' bundles
 *   cancellation.ts   cancel, recursive and forced
 *   runtime-envs.ts   workers of other runtime environments, working-dir packages
 *   actor-routing.ts  actor creation, names claimed from the GCS, aliases, where each call goes
 *   reads.ts          get/wait, and the copies from other nodes they wait for
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
  OutOfMemoryError,
  WorkerCrashedError,
} from '../errors/index.js';
import { NodeID, hexOf, type ActorIdHex, type ObjectIdHex } from '../ids/index.js';
import { ObjectStore, type Block } from '../object-store/index.js';
import { ObjectDirectory, unhandledErrorReporter, type ObjectInfo } from '../ownership/index.js';
import type { ClusterLink, ForwardedLogLine } from './cluster-link.js';
import { ObjectDelivery } from './delivery.js';
import { WorkerRequests } from './worker-requests.js';
import { generatorItemId } from '../object-ref/generator.js';
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
import type {
  ActorInfo,
  ActorSpec,
  ClusterAnswer,
  ClusterQuery,
  GeneratorAnswer,
  NewObject,
  ObjectPayload,
  RemoteValue,
  ResourceMap,
  RuntimeEnvSpec,
  TaskResult,
  TaskSpec,
  ActorCallSpec,
  WorkerLogLine,
  WorkerToNode,
} from '../protocol/index.js';
import { Scheduler } from '../scheduler/index.js';
import { encodeError, type FunctionDescriptor } from '../serialization/index.js';
import { WorkerPool } from '../worker-pool/index.js';
import { TaskEventBuffer, PENDING_NODE_ASSIGNMENT } from '../state/events.js';
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

type Building<T> = { -readonly [K in keyof T]: T[K] };

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
  /** Workers that sent something malformed: handled as crashed, nothing more of theirs is read. */
  private readonly badWorkers = new WeakSet<Worker>();
  /** Workers that have said `ready` (once each). */
  private readonly readyWorkers = new WeakSet<Worker>();
  /** Tasks of each worker waiting in get() (`blocked` and not yet `unblocked`). */
  private readonly blockedTasks = new Map<Worker, number>();
  private startupFailures = 0;

  /** Read once, here: a bad value fails init(), not some later message's handling. */
  private readonly workerStartupFailureLimit = setting('workerStartupFailureLimit');
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
   * Item `index` yielded by the streaming task or actor call `spec`, running on `worker` as `seq`:
   * stored here for the stream if this node owns it, else sent to the owner's node. Returns what is
   * wrong with the report instead.
   */
  /**
   * Generator items up to this size go inline to their owner's node, as returns do (the
   * cluster-wide setting maxInlineObjectBytes, read once: a node that joins is built after it
   * adopted the head's settings).
   */
  private readonly inlineItemLimit = setting('maxInlineObjectBytes');

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
    if (spec.owner.nodeId === this.nodeId) return this.context.streams().item(generatorId, message.index, store, `${worker.id}:${seq}`, ack);
    // The task runs here for another node: the item is stored here, then sent to its owner's node.
    const id = generatorItemId(generatorId, message.index);
    if (this.objects.get(id) !== undefined) return undefined; // a retry's repeat, sent already
    this.objects.addPending(id, spec.owner.workerId, undefined);
    store(id);
    const value = this.remoteObjects.valueFor(id, this.inlineItemLimit);
    // Sent inline: the owner has the value, nothing here needs it any more (as runForPeer's returns).
    if (value.state !== 'located') this.objects.removeHandles(spec.owner.workerId, [id]);
    this.context.cluster?.generatorItem(spec, message.index, value, ack);
    return undefined;
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
      (worker, problem) => this.onBadMessage(worker as Worker, problem),
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
      onMessage: (worker, message, attached) => this.onWorkerMessage(worker, message, attached),
      onBadMessage: (worker, error) => this.onBadMessage(worker, error.message),
      onExit: (worker) => this.onWorkerExit(worker),
      runtimeEnv: options.runtimeEnv,
      jobId: () => this.context.jobId,
      namespace: () => this.context.namespace,
      workingDirOf: (dir) => this.envs.workingDirs?.localDir(dir) ?? dir,
    });
    this.actors = new ActorManager({
      functionDescriptor: (id) => this.functions.get(id),
      spawnHost: (isolation, runtimeEnv) => this.pool.spawnActorHost(isolation, this.envs.needsOwnWorkers(runtimeEnv) ? (runtimeEnv ?? {}) : undefined),
      needsOwnHost: (runtimeEnv) => this.envs.needsOwnWorkers(runtimeEnv),
      killHost: (host) => this.pool.kill(host as Worker, 'actor'),
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

  lookupActor(name: string, namespace: string, callback: (info: ActorInfo | null) => void): void {
    this.actorRouting.lookupActor(name, namespace, callback);
  }

  killActor(actorId: ActorIdHex, noRestart: boolean, outOfScope = false): void {
    this.actorRouting.killActor(actorId, noRestart, outOfScope);
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

  // The parts' steps that the handling of workers' messages below takes (kept as they were there).

  private get startupError(): Error | undefined {
    return this.context.startupError;
  }

  private set startupError(error: Error | undefined) {
    this.context.startupError = error;
  }

  private get groupTotals(): ReadonlyMap<string, number> {
    return this.resources.groupTotals;
  }

  private get lentGroupCpus(): ReadonlyMap<TaskRecord, ResourceMap> | undefined {
    return this.resources.lentGroupCpus;
  }

  private lendGroupCpus(worker: Worker): void {
    this.resources.lendGroupCpus(worker);
  }

  private takeBackGroupCpus(worker: Worker): void {
    this.resources.takeBackGroupCpus(worker);
  }

  private scheduleDispatch(): void {
    this.dispatcher.scheduleDispatch();
  }

  private enqueue(record: TaskRecord): void {
    this.dispatcher.enqueue(record);
  }

  private releaseResources(record: TaskRecord): void {
    this.resources.releaseResources(record);
  }

  private stopWatchingForceCancel(record: TaskRecord): void {
    this.cancellation.stopWatchingForceCancel(record);
  }

  private keepLineage(record: TaskRecord): void {
    this.tasks.keepLineage(record);
  }

  private retriesLeft(record: TaskRecord): boolean {
    return this.tasks.retriesLeft(record);
  }

  private failTask(record: TaskRecord, error: Uint8Array, recordEvent = true): void {
    this.tasks.failTask(record, error, recordEvent);
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
    if (this.badWorkers.has(worker) || !worker.alive || this.context.stopped) return;
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
    if (elsewhere === undefined || this.context.cluster === undefined) return;
    for (const [ownerNode, batch] of elsewhere) this.context.cluster.forwardLogs(ownerNode, batch);
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
        const functionId = functionIdOf(record.spec);
        const previous = this.runTimeUs.get(functionId);
        this.runTimeUs.set(functionId, previous === undefined ? result.us : 0.8 * previous + 0.2 * result.us);
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
    if (this.context.stopped) return;
    this.objects.dropThread(worker.id); // its refs and leases die with it
    this.context.generators?.ownerGone(worker.id);
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
        this.cancellation.stopWatchingForceCancel(record);
        continue;
      }
      // Tasks the worker had not started, and bystanders of a deliberate kill, go back for free.
      if (seq > lastStarted || worker.terminatedFor === 'cancel') {
        requeue.push(record);
      } else if (this.tasks.retriesLeft(record)) {
        if (record.traced) this.taskEvents.failed(record.spec, record.firstAttempt + record.retries, encodeError(crash(record)));
        record.retries++;
        if (record.traced && !record.fromPeer) this.taskEvents.state(record.spec, record.retries, PENDING_NODE_ASSIGNMENT);
        requeue.push(record);
      } else {
        this.tasks.failTask(record, encodeError(crash(record)));
      }
    }
    worker.inFlight.clear();
    for (const record of requeue) record.state = 'queued';
    if (this.pool.forgetEnvWorker(worker)) {
      this.envs.onEnvWorkerExit(worker, requeue);
      return;
    }
    this.scheduler.requeue(requeue);

    if (!worker.accepting && worker.terminatedFor === undefined && worker.nextSeq === 1) {
      // It died while starting (e.g. a preload module failed): do not respawn forever.
      if (++this.startupFailures >= this.workerStartupFailureLimit) {
        this.context.startupError = new WorkerCrashedError(
          `miniray workers fail to start (${this.startupFailures} attempts): ${worker.exitError?.message ?? 'no error given'}`,
        );
        if (this.pool.workers.every((w) => w === worker || !w.alive)) {
          const error = encodeError(this.context.startupError);
          for (const record of this.scheduler.drain()) this.tasks.failTask(record, error);
        }
        return;
      }
    }
    this.pool.replace(worker);
    this.dispatcher.scheduleDispatch();
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

export { ownerDiedError } from './task-manager.js';
export { LocalNodeClient } from './local-client.js';
export { demandOf, type ClusterLink, type ForwardedLogLine, type RemoteWork } from './cluster-link.js';
export { PACKAGES, packWorkingDir, packageKey, isPackageUri } from './working-dir.js';
