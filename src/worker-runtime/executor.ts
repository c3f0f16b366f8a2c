/**
 * Runs the tasks a worker is given, one at a time in arrival order, with one exception borrowed
 * from Ray: while a running task waits in get(), the next task may start (its CPU is free), which
 * is what lets every worker await child tasks without deadlock.
 *
 * Actors: an actor's calls run in arrival order, up to its maxConcurrency at once (async methods
 * overlap while they await). A worker hosts one actor ('thread', 'process') or many ('shared');
 * actor work never mixes with tasks on the same worker.
 *
 * Results finished in one synchronous stretch are sent together, and never held back behind a
 * task that starts: before starting the next task or actor call, the executor sends the results
 * it holds (sendResultsBefore). Synchronous tasks in a batch run back to back with no promise or
 * timer between them.
 */
import type { ActorIdHex, RefIdHex, TaskIdHex } from '../ids/index.js';
import type { BlockingHooks, CoreWorker, NodeClient } from '../core-worker/index.js';
import { collectGarbage, lookupModuleFunction } from '../core-worker/index.js';
import { SerializationError, TaskCancelledError, isActorExit, toErrorRecord, type ErrorRecord } from '../errors/index.js';
import type { RunningWork, WorkContext } from '../core-worker/current.js';
import { methodNamesOf } from '../actors/handle.js';
import { beginTask, takeSpans } from '../core-worker/profile.js';
import { setAssigned } from '../core-worker/assigned.js';
import type { ExecuteActorCall, ExecuteActorCreation, ExecuteFunctionTask, ExecuteTask, NodeToWorker, Part, ReturnMode, TaskResult, WorkerToNode } from '../protocol/index.js';
import {
  compileSource,
  decodeValue,
  encodeErrorRecord,
  type FunctionDescriptor,
} from '../serialization/index.js';
import type { Channel } from '../transport/index.js';
import type { TaskOutput } from './output.js';
import { driveReturns, type GeneratorHost } from './generator.js';

/**
 * Records that the task or call with this seq is starting, where the node reads it if this worker
 * dies: calls with a higher seq had not started, so they are run again at no cost.
 */
export type ProgressCell = (seq: number) => void;

/** Calls of an actor that run in order, up to maxConcurrency at once: its default group, or a concurrency group. */
interface Lane {
  readonly maxConcurrency: number;
  running: number;
  queue: ExecuteActorCall[];
  head: number;
  /** True while pumpActor's loop runs (a call finishing synchronously must not recurse into it). */
  pumping: boolean;
  /** True while pumpActor waits to go on after a message from the node (see pumpActor). */
  resumeQueued: boolean;
}

interface LiveActor extends Lane {
  /** What it holds, and its GPU IDs (helper pg). */
  readonly resources: ExecuteTask['resources'];
  readonly gpuIds: ExecuteTask['gpuIds'];
  readonly captureChildTasks: ExecuteTask['captureChildTasks'];
  readonly className: string;
  /** Its class, and the restarts before this instance (getRuntimeContext; env). */
  readonly cls: Function;
  readonly numRestarts: number;
  /** Its own cell on a 'shared' worker; else the worker's (one actor per worker). */
  readonly markStarted: ProgressCell;
  readonly instance: Record<string, unknown>;
  /** Concurrency groups (actors part): each its own lane, made at creation (absent: none). */
  readonly groups: Map<string, Lane> | undefined;
}

const newLane = (maxConcurrency: number): Lane => ({ maxConcurrency, running: 0, queue: [], head: 0, pumping: false, resumeQueued: false });

export class TaskExecutor implements BlockingHooks, WorkContext {
  private readonly actors = new Map<string, LiveActor>();
  private queue: ExecuteFunctionTask[] = [];
  private head = 0;
  /** Tasks started and not finished, minus those waiting in get(). */
  private running = 0;
  private pumping = false;
  private readonly descriptors = new Map<string, FunctionDescriptor>();
  private readonly functions = new Map<string, Function>();
  private results: TaskResult[] = [];
  private resultsQueued = false;

  /** This thread's CoreWorker (set right after construction: each needs the other). */
  coreWorker!: CoreWorker;

  // ---- runtime context and cancel (env) ----
  /**
   * The task or call whose code ran last: set as each starts (one field write per task), so
   * getRuntimeContext() in its synchronous part, or in a task alone on its worker, names it.
   */
  private runningNow: ExecuteTask | undefined;
  /** Signals handed out, by seq: only for tasks that asked for one (getRuntimeContext().signal). */
  private signals: Map<number, AbortController> | undefined;
  /** Running tasks the node cancelled before they asked for their signal: it is made aborted. */
  private cancelledRunning: Set<number> | undefined;
  /** Actors whose constructor runs now (getRuntimeContext().currentActor in a constructor). */
  private readonly constructing = new Map<string, { readonly cls: Function; readonly className: string; readonly numRestarts: number }>();
  /** The job's ID, as the node tells it (boot data, or the first execute message). */
  jobIdHex = '';
  /** The job's namespace, as the node tells it with the job's ID. */
  namespaceName = '';

  current(): RunningWork | undefined {
    return this.runningNow;
  }

  currentTaskId(): TaskIdHex | ActorIdHex | undefined {
    return this.runningNow?.taskId;
  }

  /** A cluster's task names its job (its node runs many jobs'); else the node's job is the one. */
  jobId(): string {
    return this.runningNow?.job?.jobId ?? this.jobIdHex;
  }

  namespace(): string {
    return this.runningNow?.job?.namespace ?? this.namespaceName;
  }

  signalOf(seq: number): AbortSignal {
    const signals = (this.signals ??= new Map());
    let controller = signals.get(seq);
    if (controller === undefined) {
      controller = new AbortController();
      signals.set(seq, controller);
      if (this.cancelledRunning?.delete(seq) === true) controller.abort(this.cancelReason(seq));
    }
    return controller.signal;
  }

  actor(actorId: string): { readonly className: string; readonly methodNames: readonly string[]; readonly numRestarts: number } | undefined {
    const actor = this.actors.get(actorId) ?? this.constructing.get(actorId);
    if (actor === undefined) return undefined;
    return { className: actor.className, methodNames: methodNamesOf(actor.cls), numRestarts: actor.numRestarts };
  }

  /** A running task or call was cancelled (without force): its signal aborts, now or when it is made. */
  private abortRunning(seq: number): void {
    const controller = this.signals?.get(seq);
    if (controller !== undefined) {
      if (!controller.signal.aborted) controller.abort(this.cancelReason(seq));
      return;
    }
    const cancelled = (this.cancelledRunning ??= new Set());
    // Cancels of tasks that finished before the message came are never claimed: keep the set small.
    if (cancelled.size >= 1024) cancelled.clear();
    cancelled.add(seq);
  }

  private cancelReason(seq: number): TaskCancelledError {
    return new TaskCancelledError(`task (seq ${seq}) was cancelled: stop its work, its result is dropped`);
  }

  constructor(
    private readonly channel: Channel<WorkerToNode, NodeToWorker>,
    /** The worker's progress cell: the seq of the last task (or actor call) it started. */
    private readonly progress: ProgressCell,
    private readonly node: NodeClient,
    /** Where this worker's output is prefixed and kept (output.ts): told which task runs. */
    private readonly output?: TaskOutput,
  ) {}

  /** `attached`: the buffers of the frame the tasks came in (progress blocks of 'shared' actors). */
  enqueue(functions: readonly FunctionDescriptor[], tasks: readonly ExecuteTask[], attached: readonly SharedArrayBuffer[] = []): void {
    for (const fn of functions) this.descriptors.set(fn.id, fn);
    for (const task of tasks) {
      if (task.actorId === undefined) this.queue.push(task);
      else if (task.method === undefined) this.createActor(task, attached);
      else this.enqueueActorCall(task);
    }
    this.pump();
  }

  /**
   * A killed 'shared' actor: forget it; its queued calls are dropped (reported 'cancelled'), then
   * `seq`, if given, is reported 'cancelled' too: everything of the actor not reported by then had
   * started.
   */
  destroyActor(actorId: string, seq?: number): void {
    const actor = this.actors.get(actorId);
    if (actor !== undefined) {
      this.actors.delete(actorId);
      for (const lane of lanesOf(actor)) {
        for (let i = lane.head; i < lane.queue.length; i++) this.drop(lane.queue[i] as ExecuteActorCall);
        lane.queue = [];
        lane.head = 0;
      }
    }
    if (seq !== undefined) this.report({ seq, outcome: 'cancelled' });
  }

  /** Drops tasks that have not started; running ones finish and their results are ignored. */
  cancel(seqs: readonly number[]): void {
    const cancelled = new Set(seqs);
    for (const actor of this.actors.values()) {
      for (const lane of lanesOf(actor)) {
        lane.queue = lane.queue.slice(lane.head).filter((task) => {
          if (!cancelled.has(task.seq)) return true;
          this.drop(task);
          return false;
        });
        lane.head = 0;
      }
    }
    const kept: ExecuteFunctionTask[] = [];
    for (let i = this.head; i < this.queue.length; i++) {
      const task = this.queue[i] as ExecuteFunctionTask;
      if (cancelled.has(task.seq)) this.drop(task);
      else kept.push(task);
    }
    this.queue = kept;
    this.head = 0;
    // The rest run now (or finished already): their signals abort, so a task that watches it stops.
    for (const seq of seqs) if (!this.droppedNow.has(seq)) this.abortRunning(seq);
    this.droppedNow.clear();
  }

  /** Seqs dropped by the cancel being handled (they never started: no signal to abort). */
  private readonly droppedNow = new Set<number>();

  /** A task that will not run: say so, and give back the lease on its arguments. */
  private drop(task: ExecuteTask): void {
    this.droppedNow.add(task.seq);
    this.releaseArguments(task);
    this.report({ seq: task.seq, outcome: 'cancelled' });
  }

  /** Gives back the lease on a task's arguments when they will not be decoded. */
  private releaseArguments(task: ExecuteTask): void {
    if (task.lease !== undefined) this.coreWorker.views.release(task.lease);
  }

  onBlocked(): boolean {
    if (this.running === 0) return false; // get() outside a running task
    this.running--;
    this.node.blocked();
    queueMicrotask(() => this.pump());
    return true;
  }

  onUnblocked(): void {
    this.running++;
    this.node.unblocked();
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.running === 0 && this.head < this.queue.length) {
        const task = this.queue[this.head++] as ExecuteFunctionTask;
        this.sendResultsBefore();
        this.start(task);
      }
      if (this.head === this.queue.length) {
        this.queue = [];
        this.head = 0;
      }
    } finally {
      this.pumping = false;
    }
    if (this.running === 0 && this.head === this.queue.length) this.collectWhenIdle();
  }

  private collectQueued = false;
  /**
   * Idle with views of shared memory perhaps still alive (task arguments): collect garbage, so the
   * leases of dead views go back and the node may spill or reuse that memory. JavaScript frees
   * only by garbage collection, and an idle worker would otherwise not collect for a long time.
   */
  private collectWhenIdle(): void {
    // Actor lifetimes: handles a task was given keep their actor alive until this thread collects them.
    if (this.collectQueued || !(this.coreWorker?.views.holdingViews || this.coreWorker?.takeHandlesArrived())) return;
    this.collectQueued = true;
    setTimeout(() => {
      this.collectQueued = false;
      if (this.running === 0 && this.head === this.queue.length) collectGarbage();
    }, 10).unref();
  }

  private start(task: ExecuteFunctionTask): void {
    this.progress(task.seq);
    this.running++;
    setAssigned(task.resources, task.gpuIds, task.captureChildTasks);
    this.output?.started(task.seq, task.name, task.taskId, undefined, task.ownerNode);
    this.withFunction(task, (fn) => this.invoke(task, (args) => fn(...args), this.taskDone));
  }

  private readonly taskDone = (): void => {
    this.running--;
    this.pump();
  };

  /** Runs `use` with the task's function, loading it first if this worker has not yet. */
  private withFunction(task: ExecuteFunctionTask | ExecuteActorCreation, use: (fn: Function) => void, onLoadFailure?: () => void): void {
    const fn = this.functions.get(task.functionId);
    if (fn !== undefined) {
      use(fn);
      return;
    }
    this.load(task.functionId).then(use, (error: unknown) => {
      this.releaseArguments(task);
      this.fail(task, error, false);
      if (onLoadFailure) onLoadFailure();
      else this.taskDone();
    });
  }

  /**
   * Decodes the arguments, calls `call` with them, and reports the result (waiting for it if it
   * is a promise). `done` runs after the report, in every case.
   */
  private invoke(task: ExecuteTask, call: (args: unknown[]) => unknown, done: () => void): void {
    let args: unknown[];
    try {
      try {
        args = decodeValue(task.args) as unknown[];
      } catch (error) {
        this.releaseArguments(task);
        throw error;
      }
      const positions = task.refArgPositions;
      if (positions.length > 0) {
        const values = this.coreWorker.decodeValues(task.refArgValues, task.refArgParts, task.lease);
        for (let i = 0; i < positions.length; i++) args[positions[i] as number] = values[i];
      }
    } catch (error) {
      this.fail(task, new SerializationError(`arguments of ${task.name} could not be decoded: ${(error as Error).message}`), false);
      done();
      return;
    }
    let result: unknown;
    const startedAt = performance.now();
    beginTask(task.seq); // profile() spans from here on are this task's
    this.runningNow = task;
    // The tasks it submits belong to its job too (a cluster's tasks carry it).
    if (task.job !== undefined) this.coreWorker.job = task.job;
    try {
      result = call(args);
    } catch (error) {
      this.fail(task, error, true, this.elapsedUs(startedAt), startedAt);
      done();
      return;
    }
    if (task.returns !== undefined) {
      this.invokeGenerator(task, task.returns, result, startedAt, done); // generators
      return;
    }
    if (result !== null && typeof (result as PromiseLike<unknown>)?.then === 'function') {
      (result as PromiseLike<unknown>).then(
        (value) => {
          this.succeed(task, value, this.elapsedUs(startedAt), startedAt);
          done();
        },
        (error: unknown) => {
          this.fail(task, error, true, this.elapsedUs(startedAt), startedAt);
          done();
        },
      );
      return;
    }
    this.succeed(task, result, this.elapsedUs(startedAt), startedAt);
    done();
  }

  // generators
  /** Runs what a generator task's function returned (see generator.ts), awaiting it first if it is a promise. */
  private invokeGenerator(task: ExecuteTask, mode: ReturnMode, result: unknown, startedAt: number, done: () => void): void {
    const host: GeneratorHost = {
      coreWorker: this.coreWorker,
      channel: this.channel,
      succeed: (t, value) => this.succeed(t, value, this.elapsedUs(startedAt), startedAt),
      fail: (t, error, userError) => this.fail(t, error, userError, this.elapsedUs(startedAt), startedAt),
      keepThrown: (t, error) => {
        // A throw that will be retried fails the attempt instead (the node said so: retryThrown).
        const retried = mode.kind === 'dynamic' && mode.retryThrown === true && (t.retryExceptionNames === undefined || isErrorOf(error, t.retryExceptionNames));
        return retried ? undefined : this.coreWorker.putError(taskErrorBytes(t, error));
      },
    };
    if (result instanceof Promise) {
      result.then(
        (value: unknown) => driveReturns(host, task, mode, value, done),
        (error: unknown) => {
          host.fail(task, error, true);
          done();
        },
      );
    } else driveReturns(host, task, mode, result, done);
  }

  /** Microseconds since `startedAt`. */
  private elapsedUs(startedAt: number): number {
    return Math.round((performance.now() - startedAt) * 1000);
  }

  // ---- actors --------------------------------------------------------------------------------

  private createActor(task: ExecuteActorCreation, attached: readonly SharedArrayBuffer[]): void {
    const actorId = task.actorId;
    const markStarted = this.progressCellOf(task, attached);
    // An actor's creation has the actor's ID as its taskId: its lines are the actor's, of no task.
    this.output?.started(task.seq, task.name, undefined, actorId, task.ownerNode);
    this.withFunction(
      task,
      (cls) =>
        this.invoke(
          task,
          (args) => {
            const numRestarts = task.numRestarts ?? 0;
            this.constructing.set(actorId, { cls, className: task.name, numRestarts });
            let instance: Record<string, unknown>;
            try {
              instance = Reflect.construct(cls, args) as Record<string, unknown>;
            } finally {
              this.constructing.delete(actorId);
            }
            this.actors.set(actorId, {
              resources: task.resources,
              gpuIds: task.gpuIds,
              captureChildTasks: task.captureChildTasks,
              className: task.name,
              cls,
              numRestarts,
              markStarted,
              instance,
              maxConcurrency: task.maxConcurrency ?? 1,
              running: 0,
              queue: [],
              head: 0,
              pumping: false,
              resumeQueued: false,
              groups: task.concurrencyGroups === undefined ? undefined : new Map(Object.entries(task.concurrencyGroups).map(([name, limit]) => [name, newLane(limit)])),
            });
            return undefined;
          },
          () => {},
        ),
      () => {},
    );
  }

  /** Progress blocks of 'shared' actors, by block number (each arrives once, attached to a frame). */
  private readonly progressBlocks = new Map<number, Int32Array>();

  private progressCellOf(task: ExecuteActorCreation, attached: readonly SharedArrayBuffer[]): ProgressCell {
    const cell = task.progressCell;
    if (cell === undefined) return this.progress;
    const buffer = cell.attached === undefined ? undefined : attached[cell.attached];
    if (buffer !== undefined) this.progressBlocks.set(cell.block, new Int32Array(buffer));
    const block = this.progressBlocks.get(cell.block);
    if (block === undefined) return this.progress; // cannot happen: the node sends a block before its first use
    const index = cell.index;
    return (seq) => Atomics.store(block, index, seq);
  }

  private enqueueActorCall(task: ExecuteActorCall): void {
    const actor = this.actors.get(task.actorId);
    if (actor === undefined) {
      this.releaseArguments(task);
      this.fail(task, new Error(`actor ${task.actorId} does not live on this worker`), false);
      return;
    }
    // Concurrency groups: a call in a group waits only for that group's slots.
    const lane = task.concurrencyGroup === undefined ? actor : (actor.groups?.get(task.concurrencyGroup) ?? actor);
    lane.queue.push(task);
    this.pumpActor(actor, lane);
  }

  private pumpActor(actor: LiveActor, lane: Lane = actor): void {
    if (lane.pumping) return;
    lane.pumping = true;
    while (lane.running < lane.maxConcurrency && lane.head < lane.queue.length) {
      // Synchronous calls run back to back and would keep the node's messages out until the
      // queue is empty: a destroyActor (a 'shared' actor killed to restart) or a cancel must reach
      // the calls that have not started. A waiting message goes first; the calls go on after it.
      if (this.channel.inputWaiting?.() === true) {
        if (!lane.resumeQueued) {
          lane.resumeQueued = true;
          setImmediate(() => {
            lane.resumeQueued = false;
            this.pumpActor(actor, lane);
          });
        }
        break;
      }
      const task = lane.queue[lane.head++] as ExecuteActorCall;
      actor.markStarted(task.seq);
      lane.running++;
      const done = () => {
        lane.running--;
        this.pumpActor(actor, lane);
      };
      const method = actor.instance[task.method];
      if (typeof method !== 'function') {
        this.releaseArguments(task);
        this.fail(task, new TypeError(`${actor.className} has no method ${task.method}`), false);
        lane.running--;
        continue;
      }
      this.sendResultsBefore();
      setAssigned(actor.resources, actor.gpuIds, actor.captureChildTasks);
      this.output?.started(task.seq, actor.className, task.taskId, task.actorId, task.ownerNode);
      this.invoke(task, (args) => method.apply(actor.instance, args), done);
    }
    lane.pumping = false;
    if (lane.head === lane.queue.length) {
      lane.queue = [];
      lane.head = 0;
    }
  }

  /** `startedAt`: performance.now() when the call started (absent when it never did). */
  private succeed(task: ExecuteTask, value: unknown, us = 0, startedAt?: number): void {
    const values: Uint8Array[] = [];
    let parts: (readonly Part[])[] | undefined;
    let nested: (readonly RefIdHex[])[] | undefined;
    try {
      let items: readonly unknown[];
      if (task.numReturns === 0) items = []; // an actor's creation
      else if (task.numReturns === 1) items = [value];
      else {
        if (!Array.isArray(value) || value.length !== task.numReturns) {
          const got = Array.isArray(value) ? `an array of ${value.length}` : typeof value;
          throw new TypeError(`${task.name} has numReturns: ${task.numReturns} and must return an array of that length; it returned ${got}`);
        }
        items = value;
      }
      for (let i = 0; i < items.length; i++) {
        const what = task.numReturns === 1 ? `the return value of ${task.name}` : `return value ${i + 1} of ${task.name}`;
        const object = this.coreWorker.encodeObject('', items[i], what);
        values.push(object.data);
        if (object.parts) (parts ??= Array.from({ length: items.length }, () => []))[i] = object.parts;
        if (object.nested) (nested ??= Array.from({ length: items.length }, () => []))[i] = object.nested;
      }
    } catch (error) {
      this.fail(task, error, false, us, startedAt);
      return;
    }
    const result: Building<Extract<TaskResult, { outcome: 'ok' }>> = { seq: task.seq, outcome: 'ok', values, us };
    // Optional fields set, not spread in: no throwaway objects per result.
    if (parts) result.parts = parts;
    if (nested) result.nested = nested;
    this.report(withRun(result, task.seq, startedAt));
  }

  /** `userError`: thrown by the task's own code (may be retried with retryExceptions). */
  private fail(task: ExecuteTask, thrown: unknown, userError: boolean, us = 0, startedAt?: number): void {
    const error = taskErrorBytes(task, thrown);
    // exitActor() (actors part): the actor ends on purpose; the node fails this call and the rest.
    if (task.actorId !== undefined && task.method !== undefined && isActorExit(thrown)) {
      this.report(withRun({ seq: task.seq, outcome: 'error', error, userError: false, exitActor: true, us }, task.seq, startedAt));
      return;
    }
    const retryable = userError && (task.retryExceptionNames === undefined || isErrorOf(thrown, task.retryExceptionNames));
    this.report(withRun({ seq: task.seq, outcome: 'error', error, userError: retryable, us }, task.seq, startedAt));
  }

  private report(result: TaskResult): void {
    this.output?.finished(result.seq);
    if (this.signals !== undefined) this.signals.delete(result.seq);
    this.results.push(result);
    // Parts attached to the channel travel with its next frame: the result must be in that frame.
    if (result.outcome === 'ok' && result.parts !== undefined) {
      this.sendResults();
      return;
    }
    if (!this.resultsQueued) {
      this.resultsQueued = true;
      queueMicrotask(this.sendResults);
    }
  }

  /**
   * Sends the results gathered so far. The refs this thread began to hold go first, so the node
   * never releases a task's arguments before it knows this thread holds refs it decoded from them.
   */
  readonly sendResults = (): void => {
    this.resultsQueued = false;
    // The lines the tasks wrote go first: they reach the node, and the owner, before the results.
    this.output?.flush();
    if (this.results.length === 0) return;
    this.coreWorker.flushRefs();
    const results = this.results;
    this.results = [];
    this.channel.send({ type: 'results', results });
  };

  /**
   * Results finished so far go out now, before the next task or call starts. Whether that one
   * will run long cannot be known (the same function may take 1 µs or 3 s, depending on its
   * arguments), and a synchronous task blocks this thread's event loop, so a result left for a
   * microtask would wait for the whole of it. The cost, one message per task in a stream of
   * tiny tasks, is kept down on the node's side (the scheduler refills a busy worker in batches).
   */
  private sendResultsBefore(): void {
    if (this.results.length === 0) return;
    this.sendResults();
    this.channel.flush();
  }

  private async load(functionId: string): Promise<Function> {
    const descriptor = this.descriptors.get(functionId);
    if (descriptor === undefined) throw new Error(`worker has no definition for function ${functionId}`);
    let fn: Function | undefined;
    if (descriptor.kind === 'source') {
      fn = compileSource(descriptor.source, descriptor.name);
    } else {
      await import(descriptor.moduleUrl);
      fn = lookupModuleFunction(descriptor.moduleUrl, descriptor.callsite);
      if (fn === undefined) {
        throw new Error(
          `${descriptor.name}: importing ${descriptor.moduleUrl} in a worker did not create the function ` +
            `(remote() call at ${descriptor.where}). Call remote() at the top level ` +
            'of the module, not inside a function or a condition, so that importing the module creates it.',
        );
      }
    }
    this.functions.set(functionId, fn);
    return fn;
  }
}

/** The TaskError record of what the task threw, encoded; never throws. */
function taskErrorBytes(task: ExecuteTask, thrown: unknown): Uint8Array {
  try {
    return encodeErrorRecord(taskErrorRecord(task, thrown));
  } catch (encodeError) {
    // Never let an odd error object take the worker down: send what can be said.
    const message = `task ${task.name} failed, and its error could not be encoded (${(encodeError as Error).message}): ${String(thrown)}`;
    return encodeErrorRecord({ name: 'TaskError', minirayClass: 'TaskError', message, props: { functionName: task.name, taskId: task.taskId } });
  }
}

/** A TaskError record whose stack is the original error's, as seen in the worker. */
function taskErrorRecord(task: ExecuteTask, thrown: unknown): ErrorRecord {
  const cause = toErrorRecord(thrown);
  const what = cause.name && cause.name !== 'Error' ? `${cause.name}: ${cause.message}` : cause.message;
  const message = `task ${task.name} failed: ${what}`;
  const frames = (cause.stack ?? '')
    .split('\n')
    .filter((line) => line.startsWith('    at ') && !line.includes('/worker-runtime/'));
  return {
    name: 'TaskError',
    minirayClass: 'TaskError',
    message,
    stack: [`TaskError: ${message}`, ...frames].join('\n'),
    cause,
    props: { functionName: task.name, taskId: task.taskId },
  };
}

type Building<T> = { -readonly [K in keyof T]: T[K] };

/** A result with when its task started on this worker (`startedAt`, if it did) and its profile() spans. */
function withRun<T extends Building<Extract<TaskResult, { outcome: 'ok' | 'error' }>>>(result: T, seq: number, startedAt: number | undefined): T {
  if (startedAt === undefined) return result;
  result.startMs = performance.timeOrigin + startedAt;
  const spans = takeSpans(seq);
  if (spans !== undefined) result.spans = spans;
  return result;
}

/** The default lane of an actor and its concurrency groups' (actors part). */
function lanesOf(actor: LiveActor): Lane[] {
  return actor.groups === undefined ? [actor] : [actor, ...actor.groups.values()];
}

/**
 * Whether `thrown` is an instance of a class named in `names` (retryExceptions by class): the names
 * of its prototype chain's constructors, and its own `name`, as Ray's isinstance check. Classes
 * are matched by name because the class objects of the caller do not exist in this thread.
 */
export function isErrorOf(thrown: unknown, names: readonly string[]): boolean {
  try {
    if (typeof thrown !== 'object' || thrown === null) return false;
    if (names.includes(String((thrown as { name?: unknown }).name))) return true;
    for (let proto: unknown = Object.getPrototypeOf(thrown); proto !== null && proto !== undefined; proto = Object.getPrototypeOf(proto)) {
      const ctor = Object.getOwnPropertyDescriptor(proto, 'constructor')?.value as { name?: unknown } | undefined;
      if (typeof ctor?.name === 'string' && names.includes(ctor.name)) return true;
    }
  } catch {
    // a proxy whose traps throw: not a class we can recognise
  }
  return false;
}
