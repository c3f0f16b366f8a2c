/**
 * One node (Ray's raylet): the object table and store, the scheduler, the worker pool, and the
 * handling of everything workers say. In the embedded default it lives in the driver's thread and
 * the driver's CoreWorker calls it directly (`LocalNodeClient`); workers talk to it over channels.
 *
 * Task life: submitted -> waiting (for ref arguments) -> queued (scheduler) -> running (sent to a
 * worker) -> finished. A worker's death sends its started tasks back to the queue while retries
 * last (maxRetries), and its not-yet-started ones back without using a retry.
 */
import type { ResourceLimits } from 'node:worker_threads';
import { setting } from '../config/index.js';
import {
  InvalidOptionError,
  ObjectLostError,
  ObjectStoreFullError,
  OutOfMemoryError,
  TaskCancelledError,
  WorkerCrashedError,
  toErrorRecord,
} from '../errors/index.js';
import { NodeID } from '../ids/index.js';
import { ObjectStore } from '../object-store/index.js';
import { ActorManager } from '../actors/manager.js';
import type {
  ActorInfo,
  ActorSpec,
  ExecuteTask,
  NewObject,
  ObjectPayload,
  TaskResult,
  TaskSpec,
  WorkerToNode,
} from '../protocol/index.js';
import { Scheduler } from '../scheduler/index.js';
import { encodeErrorRecord, type FunctionDescriptor } from '../serialization/index.js';
import { WorkerPool, type PooledWorker } from '../worker-pool/index.js';
import type { NodeClient } from '../core-worker/index.js';

export interface NodeOptions {
  readonly numWorkers: number;
  readonly numCpus: number;
  readonly objectStoreMemory: number;
  readonly workerResourceLimits: ResourceLimits | undefined;
}

type TaskState = 'waiting' | 'queued' | 'running' | 'finished';

interface TaskRecord {
  readonly spec: TaskSpec;
  readonly numCpus: number;
  state: TaskState;
  /** Retries used so far. */
  retries: number;
  cancelled: boolean;
  worker: PooledWorker<TaskRecord> | undefined;
  seq: number;
}

interface ObjectEntry {
  state: 'pending' | 'ready' | 'failed';
  /** Called once when the object leaves 'pending'. */
  waiters: Array<() => void> | null;
  /** The task that will create the object, while it is pending. */
  producer: TaskRecord | undefined;
}

type Worker = PooledWorker<TaskRecord>;

const errorBytes = (error: Error): Uint8Array => encodeErrorRecord(toErrorRecord(error));

export class Node {
  readonly nodeId = NodeID.fromRandom().toHex();
  readonly store: ObjectStore;
  private readonly objects = new Map<string, ObjectEntry>();
  private readonly functions = new Map<string, FunctionDescriptor>();
  /** Recent run time of each function's tasks, in microseconds (a moving average). */
  private readonly runTimeUs = new Map<string, number>();
  /** Withdraw functions of workers' get/wait requests still waiting, by "workerId:requestId". */
  private readonly workerFetches = new Map<string, () => void>();
  private readonly scheduler: Scheduler<TaskRecord, Worker>;
  private readonly pool: WorkerPool<TaskRecord>;
  private readonly actors: ActorManager;
  private dispatchQueued = false;
  private startupFailures = 0;
  /** Set when workers keep failing to start: tasks fail with it instead of waiting forever. */
  private startupError: Error | undefined;
  private stopped = false;

  constructor(readonly options: NodeOptions) {
    this.store = new ObjectStore(options.objectStoreMemory, { nodeId: this.nodeId, workerId: '' });
    const pipelineMaxTaskUs = setting('pipelineMaxTaskUs');
    this.scheduler = new Scheduler<TaskRecord, Worker>(
      options.numCpus,
      setting('maxTasksInFlightPerWorker'),
      // Only functions seen to run short may wait behind other tasks; unknown ones count as long.
      (record) => (this.runTimeUs.get(record.spec.functionId) ?? Infinity) <= pipelineMaxTaskUs,
    );
    this.pool = new WorkerPool<TaskRecord>({
      nodeId: this.nodeId,
      size: options.numWorkers,
      resourceLimits: options.workerResourceLimits,
      onMessage: (worker, message) => this.onWorkerMessage(worker, message),
      onExit: (worker) => this.onWorkerExit(worker),
    });
    this.actors = new ActorManager({
      functionDescriptor: (id) => this.functions.get(id),
      spawnHost: (isolation) => this.pool.spawnActorHost(isolation),
      killHost: (host) => this.pool.kill(host as Worker, 'actor'),
      setBusy: (host, busy) => this.pool.setBusy(host as Worker, busy),
      waitForObjects: (what, ids, ready, failed) => this.waitForObjects(what, ids, ready, failed),
      objectData: (id) => this.store.get(id) as Uint8Array,
      resolveObjects: (ids, values) => {
        for (let i = 0; i < ids.length; i++) this.setObject(ids[i] as string, values[i] as Uint8Array, false);
      },
      failObjects: (ids, error) => {
        for (const id of ids) this.setObject(id, error, true);
      },
      tryReserveCpus: (amount) => this.scheduler.tryReserve(amount),
      releaseCpus: (amount) => {
        this.scheduler.releaseCpus(amount);
        this.scheduleDispatch();
      },
      sharedHostCount: Math.max(1, Math.ceil(options.numCpus)),
    });
    this.pool.start();
  }

  /** Resolves when all workers have started; rejects with the reason if one cannot start. */
  ready(): Promise<void> {
    return this.pool.whenReady();
  }

  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.pool.shutdown();
    const lost = errorBytes(new ObjectLostError('miniray was shut down before this object was created'));
    for (const [id, entry] of this.objects) {
      if (entry.state === 'pending') this.setObject(id, lost, true);
    }
    this.objects.clear();
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

  /** Stores objects; throws ObjectStoreFullError (storing nothing) when one does not fit. */
  put(objects: readonly NewObject[]): void {
    for (const object of objects) this.setObject(object.id, object.data, false, true);
  }

  /**
   * Calls `onObject` for each ID once its object exists (at once for those that do). Returns a
   * function that withdraws the callbacks still waiting (get/wait that timed out or settled).
   */
  fetch(ids: readonly string[], withData: boolean, onObject: (object: ObjectPayload) => void): () => void {
    let waiting: Array<[ObjectEntry, () => void]> | undefined;
    for (const id of ids) {
      const entry = this.objects.get(id);
      if (entry === undefined) onObject({ id, state: 'lost' });
      else if (entry.state !== 'pending') onObject(this.payload(id, entry, withData));
      else {
        const wake = () => onObject(this.payload(id, entry, withData));
        (entry.waiters ??= []).push(wake);
        (waiting ??= []).push([entry, wake]);
      }
    }
    if (waiting === undefined) return NOTHING_TO_WITHDRAW;
    return () => {
      for (const [entry, wake] of waiting as Array<[ObjectEntry, () => void]>) {
        const index = entry.waiters?.indexOf(wake) ?? -1;
        if (index >= 0) entry.waiters?.splice(index, 1);
      }
    };
  }

  cancel(objectId: string, force: boolean): void {
    const record = this.objects.get(objectId)?.producer;
    if (record === undefined || record.cancelled || record.state === 'finished') return;
    record.cancelled = true;
    const error = errorBytes(new TaskCancelledError(`task ${record.spec.name} was cancelled`));
    const { state, worker } = record;
    if (state === 'queued') this.scheduler.remove(record);
    this.failTask(record, error);
    if (state === 'running' && worker !== undefined) {
      // The record stays in the worker's inFlight until the worker reports or dies, which keeps
      // the worker's accounting right.
      // Only a started task needs its thread terminated; one still queued at the worker is dropped
      // there, sparing the task the worker is running now.
      const started = record.seq <= Atomics.load(worker.progress, 0);
      if (force && started) this.pool.kill(worker, 'cancel');
      else worker.channel.send({ type: 'cancel', seqs: [record.seq] });
    }
  }

  createActor(functions: readonly FunctionDescriptor[], spec: ActorSpec): void {
    for (const fn of functions) this.functions.set(fn.id, fn);
    this.actors.create(spec);
  }

  lookupActor(name: string, namespace: string): ActorInfo | null {
    return this.actors.lookup(name, namespace);
  }

  killActor(actorId: string, noRestart: boolean): void {
    this.actors.kill(actorId, noRestart);
  }

  // ---- tasks ---------------------------------------------------------------------------------

  private submitOne(spec: TaskSpec): void {
    if (spec.actorId !== undefined) {
      for (const id of spec.returnIds) this.objects.set(id, { state: 'pending', waiters: null, producer: undefined });
      this.actors.submitCall(spec);
      return;
    }
    const record: TaskRecord = {
      spec,
      numCpus: spec.numCpus,
      state: 'waiting',
      retries: 0,
      cancelled: false,
      worker: undefined,
      seq: 0,
    };
    for (const id of spec.returnIds) this.objects.set(id, { state: 'pending', waiters: null, producer: record });
    if (!this.scheduler.isFeasible(record)) {
      const error = new InvalidOptionError(
        `task ${spec.name} needs ${spec.numCpus} CPUs but this node has ${this.scheduler.totalCpus}; ` +
          'lower numCpus in its options, or start miniray with more (init({ numCpus }))',
        'numCpus',
      );
      this.failTask(record, errorBytes(error));
      return;
    }
    if (this.startupError !== undefined) {
      this.failTask(record, errorBytes(this.startupError));
      return;
    }
    this.waitForObjects(
      `task ${spec.name}`,
      spec.dependencies,
      () => {
        if (record.state === 'waiting') this.enqueue(record);
      },
      (error) => {
        if (record.state === 'waiting') this.failTask(record, error);
      },
    );
  }

  /**
   * Calls `ready` once every object in `ids` exists, or `failed` with an encoded error: the error
   * of the first input that failed (a consumer of a failed object fails with the same error), or
   * ObjectLostError for an ID this node does not know. `what` names the consumer in that message.
   */
  private waitForObjects(what: string, ids: readonly string[], ready: () => void, failed: (error: Uint8Array) => void): void {
    let pending = 0;
    let settled = false;
    const onDone = (id: string) => {
      if (settled) return;
      if (this.objects.get(id)?.state === 'failed') {
        settled = true;
        failed(this.store.get(id) as Uint8Array);
      } else if (--pending === 0) {
        settled = true;
        ready();
      }
    };
    for (const id of ids) {
      const entry = this.objects.get(id);
      if (entry === undefined) {
        settled = true;
        const error = new ObjectLostError(
          `${what} was given ObjectRef(${id}) as an argument, which is not known to this miniray ` +
            'instance (never created here, or from a session that was shut down)',
        );
        failed(errorBytes(error));
        return;
      }
      if (entry.state === 'failed') {
        settled = true;
        failed(this.store.get(id) as Uint8Array);
        return;
      }
      if (entry.state === 'pending') {
        pending++;
        (entry.waiters ??= []).push(() => onDone(id));
      }
    }
    if (pending === 0) {
      settled = true;
      ready();
    }
  }

  private enqueue(record: TaskRecord): void {
    record.state = 'queued';
    this.scheduler.enqueue(record);
    this.scheduleDispatch();
  }

  /** Stores `error` (an encoded ErrorRecord) as every return value of the task. */
  private failTask(record: TaskRecord, error: Uint8Array): void {
    record.state = 'finished';
    for (const id of record.spec.returnIds) this.setObject(id, error, true);
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
    const batches = new Map<Worker, { functions: FunctionDescriptor[]; tasks: ExecuteTask[] }>();
    this.scheduler.dispatch(this.pool.workers, (worker, record) => {
      const seq = worker.nextSeq++;
      record.state = 'running';
      record.worker = worker;
      record.seq = seq;
      worker.inFlight.set(seq, record);
      let batch = batches.get(worker);
      if (batch === undefined) {
        batch = { functions: [], tasks: [] };
        batches.set(worker, batch);
      }
      const { spec } = record;
      if (!worker.knownFunctions.has(spec.functionId)) {
        worker.knownFunctions.add(spec.functionId);
        const fn = this.functions.get(spec.functionId);
        if (fn !== undefined) batch.functions.push(fn);
      }
      batch.tasks.push({
        seq,
        taskId: spec.taskId,
        functionId: spec.functionId,
        name: spec.name,
        args: spec.args,
        refArgPositions: spec.refArgPositions,
        refArgValues: spec.dependencies.map((id) => this.store.get(id) as Uint8Array),
        numReturns: spec.returnIds.length,
      });
    });
    for (const [worker, batch] of batches) {
      this.pool.setBusy(worker, true);
      worker.channel.send({ type: 'execute', functions: batch.functions, tasks: batch.tasks });
    }
  }

  // ---- objects -------------------------------------------------------------------------------

  /**
   * Stores an object's bytes (or, with `failed`, its encoded error) and wakes its waiters. When
   * the store is full the object gets the ObjectStoreFullError as its error, or, with
   * `throwIfFull`, the error is thrown and nothing changes.
   */
  private setObject(id: string, data: Uint8Array, failed: boolean, throwIfFull = false): void {
    try {
      this.store.putWithId(id, data, { evenIfFull: failed });
    } catch (error) {
      if (!(error instanceof ObjectStoreFullError) || throwIfFull) throw error;
      // The object's error must be recorded even in a full store, or its readers would wait forever.
      this.store.putWithId(id, errorBytes(error), { evenIfFull: true });
      failed = true;
    }
    let entry = this.objects.get(id);
    if (entry === undefined) {
      entry = { state: 'pending', waiters: null, producer: undefined };
      this.objects.set(id, entry);
    }
    entry.state = failed ? 'failed' : 'ready';
    entry.producer = undefined;
    const waiters = entry.waiters;
    entry.waiters = null;
    if (waiters !== null) for (const wake of waiters) wake();
  }

  private payload(id: string, entry: ObjectEntry, withData: boolean): ObjectPayload {
    if (entry.state === 'failed') return { id, state: 'failed', data: this.store.get(id) as Uint8Array };
    return { id, state: 'ready', data: withData ? (this.store.get(id) as Uint8Array) : EMPTY };
  }

  // ---- workers -------------------------------------------------------------------------------

  private onWorkerMessage(worker: Worker, message: WorkerToNode): void {
    switch (message.type) {
      case 'ready':
        this.startupFailures = 0;
        if (worker.role === 'actor') this.actors.onHostReady(worker);
        else this.scheduleDispatch();
        return;
      case 'results':
        if (worker.role === 'actor') this.actors.onResults(worker, message.results);
        else this.onResults(worker, message.results);
        return;
      case 'createActor':
        for (const fn of message.functions) this.functions.set(fn.id, fn);
        // A worker cannot be told at once that the name is taken: the actor is created dead instead.
        this.actors.create(message.spec, { throwIfNameTaken: false });
        return;
      case 'lookupActor':
        worker.channel.send({ type: 'actorInfo', requestId: message.requestId, info: this.lookupActor(message.name, message.namespace) });
        return;
      case 'killActor':
        this.killActor(message.actorId, message.noRestart);
        return;
      case 'submit':
        this.submit(message.functions, message.tasks);
        return;
      case 'put':
        // A worker's put() has returned already: an object that does not fit becomes its error.
        for (const object of message.objects) this.setObject(object.id, object.data, false);
        return;
      case 'get': {
        const key = `${worker.id}:${message.requestId}`;
        let remaining = message.ids.length;
        const withdraw = this.fetch(message.ids, message.withData, (object) => {
          if (--remaining === 0) this.workerFetches.delete(key);
          if (worker.alive) worker.channel.send({ type: 'objects', requestId: message.requestId, objects: [object] });
        });
        if (remaining > 0) this.workerFetches.set(key, withdraw);
        return;
      }
      case 'cancelGet': {
        const key = `${worker.id}:${message.requestId}`;
        this.workerFetches.get(key)?.();
        this.workerFetches.delete(key);
        return;
      }
      case 'blocked':
        this.scheduler.onBlocked(worker);
        this.scheduleDispatch();
        return;
      case 'unblocked':
        this.scheduler.onUnblocked(worker);
        return;
      case 'cancel':
        this.cancel(message.objectId, message.force);
        return;
    }
  }

  private onResults(worker: Worker, results: readonly TaskResult[]): void {
    for (const result of results) {
      const record = worker.inFlight.get(result.seq);
      if (record === undefined) continue;
      worker.inFlight.delete(result.seq);
      this.scheduler.onTaskDone(worker);
      record.worker = undefined;
      if (result.outcome !== 'cancelled') {
        const previous = this.runTimeUs.get(record.spec.functionId);
        this.runTimeUs.set(record.spec.functionId, previous === undefined ? result.us : 0.8 * previous + 0.2 * result.us);
      }
      if (record.cancelled) continue; // already failed with TaskCancelledError
      if (result.outcome === 'ok') {
        record.state = 'finished';
        const ids = record.spec.returnIds;
        for (let i = 0; i < ids.length; i++) this.setObject(ids[i] as string, result.values[i] as Uint8Array, false);
      } else if (result.outcome === 'error') {
        if (result.userError && record.spec.retryExceptions && this.retriesLeft(record)) {
          record.retries++;
          this.enqueue(record);
        } else {
          this.failTask(record, result.error);
        }
      }
    }
    if (worker.inFlight.size === 0) this.pool.setBusy(worker, false);
    this.scheduleDispatch();
    this.actors.onCpusReleased();
  }

  private onWorkerExit(worker: Worker): void {
    if (this.stopped) return;
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
      if (record.cancelled) continue;
      // Tasks the worker had not started, and bystanders of a deliberate kill, go back for free.
      if (seq > lastStarted || worker.terminatedFor === 'cancel') {
        requeue.push(record);
      } else if (this.retriesLeft(record)) {
        record.retries++;
        requeue.push(record);
      } else {
        this.failTask(record, errorBytes(crash(record)));
      }
    }
    worker.inFlight.clear();
    for (const record of requeue) record.state = 'queued';
    this.scheduler.requeueFront(requeue);

    if (!worker.accepting && worker.terminatedFor === undefined && worker.nextSeq === 1) {
      // It died while starting (e.g. a preload module failed): do not respawn forever.
      if (++this.startupFailures >= setting('workerStartupFailureLimit')) {
        this.startupError = new WorkerCrashedError(
          `miniray workers fail to start (${this.startupFailures} attempts): ${worker.exitError?.message ?? 'no error given'}`,
        );
        if (this.pool.workers.every((w) => w === worker || !w.alive)) {
          const error = errorBytes(this.startupError);
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

const EMPTY = new Uint8Array(0);
const NOTHING_TO_WITHDRAW = (): void => {};

/** The driver's NodeClient: direct calls into the node in the same thread. */
export class LocalNodeClient implements NodeClient {
  constructor(private readonly node: Node) {}

  get nodeId(): string {
    return this.node.nodeId;
  }

  submit(functions: readonly FunctionDescriptor[], tasks: readonly TaskSpec[]): void {
    this.node.submit(functions, tasks);
  }

  put(objects: readonly NewObject[]): void {
    this.node.put(objects);
  }

  fetch(ids: readonly string[], withData: boolean, onObject: (object: ObjectPayload) => void): () => void {
    return this.node.fetch(ids, withData, onObject);
  }

  cancel(objectId: string, force: boolean): void {
    this.node.cancel(objectId, force);
  }

  blocked(): void {}

  unblocked(): void {}

  createActor(functions: readonly FunctionDescriptor[], spec: ActorSpec): void {
    this.node.createActor(functions, spec);
  }

  lookupActor(name: string, namespace: string, callback: (info: ActorInfo | null) => void): void {
    callback(this.node.lookupActor(name, namespace));
  }

  killActor(actorId: string, noRestart: boolean): void {
    this.node.killActor(actorId, noRestart);
  }
}
