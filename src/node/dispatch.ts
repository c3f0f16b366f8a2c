/**
 * Local scheduling: a task whose arguments exist goes to another node if the cluster takes it,
 * else to the queue here (after its GPUs and custom resources, and its environment's queue), and
 * is dispatched to workers in batches, once per microtask; what each worker is sent to run a task.
 */
import { setting } from '../config/index.js';
import { InvalidOptionError } from '../errors/index.js';
import { groupsIn } from '../placement-group/resources.js';
import type { ExecuteFunctionTask, ExecuteTask, ResourceMap } from '../protocol/index.js';
import { encodeError, type FunctionDescriptor } from '../serialization/index.js';
import { PENDING_NODE_ASSIGNMENT, SUBMITTED_TO_WORKER } from '../state/events.js';
import { demandOf, type ClusterLink } from './cluster-link.js';
import type { NodeContext } from './context.js';
import type { ObjectDelivery } from './delivery.js';
import { functionIdOf, type TaskRecord, type Worker } from './task-manager.js';

/** How long an extra task worker (see startExtraWorker) stays idle before it ends, as Ray's idle_worker_killing_time_threshold_ms. */
const EXTRA_WORKER_IDLE_MS = 1000;

/** generators: a 'dynamic' attempt whose throw is retried (retryExceptions, retries left) fails rather than keep partial results. */
const RETRY_THROWN = Object.freeze({ kind: 'dynamic', retryThrown: true } as const);

export class LocalDispatch {
  constructor(private readonly context: NodeContext) {}

  private dispatchQueued = false;

  /** What a task that this node can never run fails with (where no other node may take it). */
  infeasibleError(what: string, spec: { readonly numCpus: number; readonly resources?: ResourceMap }): InvalidOptionError {
    const wanted = Object.entries(demandOf(spec)).map(([name, amount]) => `${amount} ${name}`).join(', ');
    const offered = Object.entries({ CPU: this.context.options.numCpus, ...this.context.options.resources }).map(([name, amount]) => `${amount} ${name}`).join(', ');
    return new InvalidOptionError(
      `${what} needs ${wanted} but this node has ${offered}; ` +
        'ask for less in its options (numCpus, numGpus, resources), or start miniray with more (init({ numCpus, numGpus, resources }))',
      spec.resources === undefined || spec.numCpus > this.context.options.numCpus ? 'numCpus' : 'resources',
    );
  }

  /** Whether this node has, in all, the CPUs, GPUs and custom resources a task or actor asks for. */
  canRun(spec: { readonly numCpus: number; readonly resources?: ResourceMap }): boolean {
    return this.context.scheduler.isFeasible(spec) && this.context.resources.offers(spec.resources);
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
    return cluster.takeTask(this.context.tasks.remoteWork(record.spec, record), canRunHere);
  }

  /** A task whose arguments exist: to another node if the cluster takes it, else to the queue here. */
  enqueue(record: TaskRecord): void {
    if (record.traced && !record.fromPeer && (record.retries > 0 || record.spec.dependencies.length > 0)) this.context.taskEvents.state(record.spec, record.retries, PENDING_NODE_ASSIGNMENT);
    const cluster = this.context.cluster;
    if (!record.fromPeer && cluster !== undefined && this.goesElsewhere(cluster, record)) {
      record.state = 'running';
      record.remote = true;
      return;
    }
    // Arguments held on other nodes are read here: copies first.
    const elsewhere = this.context.reads.copiesNeeded(record.spec.dependencies, true);
    if (elsewhere !== undefined) {
      (this.context.cluster as ClusterLink).localize(elsewhere, () => {
        if (record.state !== 'waiting') return;
        // A copy that could not be made leaves its object failed, or pending while lineage rebuilds it.
        if (record.spec.dependencies.some((id) => this.context.objects.get(id)?.state !== 'ready')) this.context.tasks.waitForArguments(record);
        else this.queueHere(record);
      });
      return;
    }
    this.queueHere(record);
  }

  queueHere(record: TaskRecord): void {
    record.state = 'queued';
    if (this.context.resources.removedGroups.size > 0 && record.spec.resources !== undefined) {
      const removed = groupsIn(record.spec.resources).find((group) => this.context.resources.removedGroups.has(group));
      if (removed !== undefined) return this.context.tasks.failTask(record, encodeError(this.context.resources.groupRemovedError(removed)));
    }
    if (!this.context.resources.reserveResources(record)) {
      this.context.resources.waitingForResources.push(record);
      this.keepAliveWhileQueued();
      return;
    }
    this.context.envs.toWorkerQueue(record);
    this.scheduleDispatch();
  }

  /**
   * `record` goes to `worker`: its arguments as the worker reads them, and it is running there
   * under a new seq (record.seq); undefined when an argument cannot be read back (a spilled object
   * the disk lost), and the task has failed with it.
   */
  startOn(worker: Worker, record: TaskRecord): ReturnType<ObjectDelivery<TaskRecord>['argumentsFor']> | undefined {
    const { spec } = record;
    let args: ReturnType<ObjectDelivery<TaskRecord>['argumentsFor']>;
    try {
      args = this.context.delivery.argumentsFor(spec.dependencies, worker);
    } catch (error) {
      this.context.scheduler.onTaskDone(worker);
      this.context.tasks.failTask(record, encodeError(error as Error));
      return undefined;
    }
    const seq = worker.nextSeq++;
    if (record.traced) this.context.taskEvents.state(spec, record.firstAttempt + record.retries, SUBMITTED_TO_WORKER, worker.id);
    record.state = 'running';
    record.worker = worker;
    record.seq = seq;
    worker.inFlight.set(seq, record);
    return args;
  }

  /** What a worker is sent to run `record` as `seq` (a pooled worker's batch, or an environment's worker). */
  executeTaskOf(record: TaskRecord, seq: number, args: ReturnType<ObjectDelivery<TaskRecord>['argumentsFor']>): ExecuteTask {
    const { spec } = record;
    const task: { -readonly [K in keyof ExecuteFunctionTask]: ExecuteFunctionTask[K] } = {
      seq,
      taskId: spec.taskId,
      functionId: functionIdOf(spec),
      name: spec.name,
      args: spec.args,
      refArgPositions: spec.refArgPositions,
      ...args,
      numReturns: spec.returnIds.length,
    };
    // Set, not spread: no throwaway object per task, and a local task's shape is always the same.
    if (spec.owner.nodeId !== this.context.nodeId) task.ownerNode = spec.owner.nodeId;
    // What it holds, for getRuntimeContext().getAssignedResources() (absent: 1 CPU) and its GPU IDs.
    if (spec.resources !== undefined || spec.numCpus !== 1) task.resources = demandOf(spec);
    if (record.gpus !== undefined) task.gpuIds = record.gpus.ids;
    if (spec.captureChildTasks === true) task.captureChildTasks = true;
    if (spec.returns !== undefined) task.returns = spec.returns.kind === 'dynamic' && spec.retryExceptions && this.context.tasks.retriesLeft(record) ? RETRY_THROWN : spec.returns; // generators
    // retryExceptions by class: the worker, which holds the thrown error, decides whether it matches.
    if (spec.retryExceptionNames !== undefined) task.retryExceptionNames = spec.retryExceptionNames;
    // A cluster's tasks name their job (a node runs many jobs'): the worker's runtime context reads it.
    if (spec.job !== undefined) task.job = spec.job;
    return task;
  }

  /** An execute message; the first to a worker that does not know the job's ID carries it. */
  sendExecute(worker: Worker, functions: readonly FunctionDescriptor[], tasks: readonly ExecuteTask[]): void {
    if (worker.knowsJobId === true || this.context.jobId === '') {
      worker.channel.send({ type: 'execute', functions, tasks });
      return;
    }
    worker.knowsJobId = true;
    worker.channel.send({ type: 'execute', functions, tasks, jobId: this.context.jobId, namespace: this.context.namespace });
  }

  removeFromQueue(record: TaskRecord): void {
    const index = this.context.resources.waitingForResources.indexOf(record);
    const envIndex = index >= 0 || this.context.envs.envQueue.length === 0 ? -1 : this.context.envs.envQueue.indexOf(record);
    if (index >= 0) this.context.resources.waitingForResources.splice(index, 1);
    else if (envIndex >= 0) this.context.envs.envQueue.splice(envIndex, 1);
    else this.context.scheduler.remove(record);
  }

  scheduleDispatch(): void {
    if (this.dispatchQueued || this.context.stopped) return;
    this.dispatchQueued = true;
    queueMicrotask(() => {
      this.dispatchQueued = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    if (this.context.envs.envQueue.length > 0) this.context.envs.dispatchEnv();
    const batches = new Map<Worker, { functions: FunctionDescriptor[]; tasks: ExecuteTask[] }>();
    const pool = this.context.pool;
    // With extra workers allowed, a waiting task's thread gets no task while a thread of their own
    // is starting or can be.
    const starting = this.maxExtraWorkers === 0 ? 0 : pool.workers.filter((worker) => worker.alive && !worker.accepting).length;
    const canGrow = pool.extraWorkers < this.maxExtraWorkers;
    const wanted = this.context.scheduler.dispatch(pool.workers, (worker, record) => {
      const { spec } = record;
      const args = this.startOn(worker, record);
      if (args === undefined) return;
      const seq = record.seq;
      let batch = batches.get(worker);
      if (batch === undefined) {
        batch = { functions: [], tasks: [] };
        batches.set(worker, batch);
      }
      const functionId = functionIdOf(spec);
      if (!worker.knownFunctions.has(functionId)) {
        worker.knownFunctions.add(functionId);
        const fn = this.context.functions.get(functionId);
        if (fn !== undefined) batch.functions.push(fn);
      }
      batch.tasks.push(this.executeTaskOf(record, seq, args));
    }, starting > 0 || canGrow);
    for (const [worker, batch] of batches) {
      this.context.pool.setBusy(worker, true);
      this.sendExecute(worker, batch.functions, batch.tasks);
    }
    // As many as the tasks kept back, at once (one at a time, a deep recursion would wait for each).
    const more = Math.min(wanted - starting, this.maxExtraWorkers - pool.extraWorkers);
    for (let i = 0; i < more; i++) this.startExtraWorker();
    this.keepAliveWhileQueued();
  }

  // ---- extra workers, for tasks whose parents wait in get() ----

  private readonly maxExtraWorkers = setting('maxExtraWorkers');
  private retireTimer: NodeJS.Timeout | undefined;

  /**
   * Every thread of the pool is busy or has a task waiting in get(), and a task could run: one
   * more thread is started for it (its 'ready' dispatches again), as Ray's raylet starts a worker
   * when the others are blocked. Idle extra threads end after a second without work, as Ray's
   * idle workers beyond the CPU count do, unless they own objects still in use (their objects
   * would end with them).
   */
  private startExtraWorker(): void {
    this.context.pool.grow();
    if (this.retireTimer !== undefined) return;
    let idleBefore = new Set<Worker>();
    this.retireTimer = setInterval(() => {
      const pool = this.context.pool;
      const idle = new Set(pool.workers.filter((worker) => worker.accepting && worker.load === 0 && worker.inFlight.size === 0 && !this.context.scheduler.hasWaiting(worker)));
      for (const worker of idle) {
        if (pool.extraWorkers === 0) break;
        if (idleBefore.has(worker) && !this.context.objects.ownsAny(worker.id)) pool.retire(worker);
      }
      idleBefore = idle;
      if (pool.extraWorkers === 0 || this.context.stopped) {
        clearInterval(this.retireTimer);
        this.retireTimer = undefined;
      }
    }, EXTRA_WORKER_IDLE_MS);
    this.retireTimer.unref();
  }

  private keepAlive: NodeJS.Timeout | undefined;

  /**
   * Tasks still queued (waiting for CPUs held by actors, or for a worker to start) keep the
   * process alive, as running tasks do through their workers.
   */
  keepAliveWhileQueued(): void {
    const queued = (this.context.scheduler.queuedCount > 0 || this.context.resources.waitingForResources.length > 0 || this.context.envs.envQueue.length > 0) && !this.context.stopped;
    if (queued && this.keepAlive === undefined) this.keepAlive = setInterval(() => {}, 1 << 30);
    else if (!queued && this.keepAlive !== undefined) {
      clearInterval(this.keepAlive);
      this.keepAlive = undefined;
    }
  }
}
