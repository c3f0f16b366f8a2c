/**
 * A node's task-event buffer (Ray's TaskEventBuffer): the state changes of the tasks, actor
 * creations and actor calls the node sees, and the get/put/wait calls it serves, kept in columns
 * (parallel arrays) and sent to the GCS in one batch every taskEventsFlushMs (notify
 * addTaskEvents, see src/gcs/messages.ts).
 *
 * The hot path pays a few array pushes per event: no object is made per event (what an event
 * says beyond its task, attempt, state, time and worker is a reference to something that exists
 * already: the task's spec, the error's bytes, the spans the worker sent), and the batch hands the
 * arrays over as they are (new ones take their place). Names, types, resources and errors are
 * read from those references only when the batch is built. Bounded: past maxTaskEventsBuffered
 * events between two sends, new events are dropped and counted; the count goes with the next
 * batch. With taskEventsEnabled 0 every method returns at once.
 *
 * Sampled under load: a node records at most about taskEventsMaxTasksPerSecond new tasks (and
 * actor calls) a second in full. When more were submitted in the last interval, only one in k of
 * the next interval's submissions is recorded (k from that interval's count), spread evenly, and
 * k doubles within an interval that goes on past its budget (see Sampler); the others are counted
 * as dropped, and their later events are skipped. submitted() says which: the
 * node keeps that answer on its task's record (`traced`) and makes no later call for a task that
 * is not, so a sampled-out task costs no look-up at all. Actor calls and creations, whose records
 * live elsewhere, are remembered in a Set of IDs instead (empty, and not looked at, while none is
 * sampled out). get/put/wait calls (core events) are sampled the same way, with their own count
 * and the same budget (coreTraced()). Recording costs the node's thread a few
 * microseconds a task, and in the embedded default the GCS's merge runs on that same thread, the
 * driver's: at tens of thousands of tasks a second, recording each would cost the driver about a
 * tenth of its throughput, for a table that keeps the last few seconds of them anyway.
 */
import { setting } from '../config/index.js';
import type { CoreEvent, ProfileSpan, TaskType } from './types.js';
import { TASK_STATES } from './types.js';
import type { TaskEventBatch, TaskEventInfo } from '../gcs/index.js';
import type { ActorSpec, TaskResult, TaskSpec } from '../protocol/index.js';
import { decodeErrorRecord } from '../serialization/index.js';

/** TASK_STATES' indices, as the columns hold them. */
export const PENDING_ARGS_AVAIL = 0;
export const PENDING_NODE_ASSIGNMENT = 1;
export const SUBMITTED_TO_WORKER = 2;
export const RUNNING = 3;
export const FINISHED = 4;
export const FAILED = 5;
/** Sampled-out tasks remembered at most (see TaskEventBuffer.skip). */
const MAX_SKIPPED = 200_000;
const CORE_KIND = { get: 0, put: 1, wait: 2 } as const satisfies Record<CoreEvent['kind'], number>;

/**
 * An attempt the events' node does not know: the GCS takes the latest. Nodes no longer send it
 * (a node running a task for another is told the owner's attempt), but the GCS still reads it.
 */
export const LATEST_ATTEMPT = -1;

export interface TaskEventBufferOptions {
  readonly enabled?: boolean;
  readonly maxBuffered?: number;
  readonly flushMs?: number;
  readonly maxTasksPerSecond?: number;
}

/** What the batch sender is given: the GCS client's addTaskEvents. */
export type TaskEventSink = (batch: TaskEventBatch) => void;

export class TaskEventBuffer {
  /** Recording: taskEventsEnabled, and not stopped. */
  private on: boolean;
  private readonly maxBuffered: number;
  private readonly flushMs: number;
  private sink: TaskEventSink | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  // One entry per event in each column.
  private taskIds: string[] = [];
  /** state + 8 x (attempt + 1) (see TaskEventBatch). */
  private codes: number[] = [];
  private timesMs: number[] = [];
  /** A result's start on its worker (RUNNING from then), else 0. */
  private startsMs: number[] = [];
  private workerIds: string[] = [];
  /** A spec (a submission), error bytes (a failure), spans (a finish), or undefined. */
  private extras: unknown[] = [];
  private dropped = 0;

  /** Which submissions are recorded (see above), and which get/put/wait calls (apart, with the same budget). */
  private readonly submissions: Sampler;
  private readonly coreCalls: Sampler;
  /** Tasks sampled out that may still have events (an entry goes at its FINISHED; see skip()). */
  private readonly skipped = new Set<string>();

  private coreKinds: number[] = [];
  private coreWorkers: string[] = [];
  private coreStarts: number[] = [];
  private coreEnds: number[] = [];
  private coreCounts: number[] = [];

  /** Settings are read once, here: a bad value fails the node's start, not a later event. */
  constructor(
    readonly nodeId: string,
    options: TaskEventBufferOptions = {},
  ) {
    this.on = options.enabled ?? setting('taskEventsEnabled') === 1;
    this.maxBuffered = options.maxBuffered ?? setting('maxTaskEventsBuffered');
    this.flushMs = options.flushMs ?? setting('taskEventsFlushMs');
    const perSecond = options.maxTasksPerSecond ?? setting('taskEventsMaxTasksPerSecond');
    const budget = Math.max(1, Math.round((perSecond * this.flushMs) / 1000));
    this.submissions = new Sampler(budget);
    this.coreCalls = new Sampler(budget);
  }

  /** Where batches go (the node's GCS connection); events recorded before wait for it. */
  sendTo(sink: TaskEventSink): void {
    this.sink = sink;
    if (this.taskIds.length > 0 || this.coreKinds.length > 0) this.startTimer();
  }

  /** Whether events are recorded (callers skip work that only an event needs). */
  get enabled(): boolean {
    return this.on;
  }

  /** Events dropped so far and not yet reported to the GCS (for tests and stats). */
  get droppedPending(): number {
    return this.dropped;
  }

  get buffered(): number {
    return this.taskIds.length + this.coreKinds.length;
  }

  // ---- recording (the hot path) ------------------------------------------------------------------

  /**
   * A task or actor call was submitted (PENDING_ARGS_AVAIL; `queued`: its arguments are ready,
   * and it is PENDING_NODE_ASSIGNMENT at once, one event for both): its spec says what it is.
   * Returns whether it is traced. A task that is not (sampled out, or recording is off) must get no
   * further calls: the caller keeps the answer (the node's TaskRecord.traced). An actor call
   * sampled out is remembered here instead (skip()), and its later events are skipped by ID.
   */
  submitted(spec: TaskSpec, queued = false): boolean {
    if (!this.on) return false;
    if (!this.submissions.take()) {
      if (spec.actorId !== undefined) this.skip(spec.taskId);
      this.dropped++;
      return false;
    }
    this.push(spec.taskId, 0, queued ? PENDING_NODE_ASSIGNMENT : PENDING_ARGS_AVAIL, Date.now(), '', spec, 0);
    return true;
  }

  /**
   * Whether the events of `taskId`, an actor call, are skipped here (sampled out): the agent tells
   * the node that runs the call for this one, so that it skips them too. (A task's record says it.)
   */
  skips(taskId: string): boolean {
    return this.skipped.size !== 0 && this.skipped.has(taskId);
  }

  /**
   * The events of `taskId`, an actor call, are not recorded from now on: sampled out here, or by
   * the owner of a call this node runs for it. Bounded: a task that never finishes (it failed for good) leaves its entry,
   * so past MAX_SKIPPED the set starts again (the few of its tasks still running then are recorded
   * from their next event, under an attempt the GCS makes without a name).
   */
  skip(taskId: string): void {
    if (this.skipped.size >= MAX_SKIPPED) this.skipped.clear();
    this.skipped.add(taskId);
  }

  // `attempt`, below: the owner's retries so far, plus, on a node that runs a task (or actor call)
  // for another node, the retries made here (the owner sends its count with the task).

  /** A state change that says nothing more (PENDING_NODE_ASSIGNMENT; SUBMITTED_TO_WORKER with its worker). */
  state(spec: TaskSpec, attempt: number, state: number, workerId = ''): void {
    this.push(spec.taskId, attempt, state, Date.now(), workerId, undefined, 0);
  }

  /** A worker's result: RUNNING at the worker's start time, then FINISHED, or FAILED with its error. */
  result(spec: TaskSpec, attempt: number, workerId: string, result: TaskResult): void {
    if (this.on) this.resultOf(spec.taskId, attempt, workerId, result);
  }

  /** A task or call failed without a result of its worker (cancelled, its worker or node died, an input failed). */
  failed(spec: TaskSpec, attempt: number, error: Uint8Array): void {
    this.push(spec.taskId, attempt, FAILED, Date.now(), '', error, 0);
  }

  /** An actor's creation, as a task: its ID is the actor's, its attempt the restarts so far. */
  creation(spec: ActorSpec, restarts: number, state: number, workerId = ''): void {
    this.push(spec.actorId, restarts, state, Date.now(), workerId, state === PENDING_ARGS_AVAIL ? spec : undefined, 0);
  }

  creationResult(spec: ActorSpec, restarts: number, workerId: string, result: TaskResult): void {
    if (this.on) this.resultOf(spec.actorId, restarts, workerId, result);
  }

  creationFailed(spec: ActorSpec, restarts: number, error: Uint8Array): void {
    this.push(spec.actorId, restarts, FAILED, Date.now(), '', error, 0);
  }

  private resultOf(taskId: string, attempt: number, workerId: string, result: TaskResult): void {
    if (result.outcome === 'cancelled') return; // failed already, when it was cancelled
    const startMs = result.startMs ?? 0;
    // Its end on the worker's clock, as its start: the span is the run itself, not its way back.
    // One event: RUNNING from startMs, then FINISHED or FAILED.
    const endMs = startMs === 0 ? Date.now() : startMs + result.us / 1000;
    if (result.outcome === 'ok') this.push(taskId, attempt, FINISHED, endMs, workerId, result.spans, startMs);
    else {
      this.push(taskId, attempt, FAILED, endMs, workerId, result.error, startMs);
      if (result.spans !== undefined) this.push(taskId, attempt, FAILED, endMs, workerId, result.spans, startMs);
    }
  }

  /**
   * Whether the get, put or wait call starting now is to be recorded (then by core()): sampled as
   * submissions are, with the same budget, so that a stream of single-object gets (a synchronous
   * loop of get(f.remote())) costs what its tasks do. Asked before the call is served, so that a
   * call that is not recorded makes no closure to time it.
   */
  coreTraced(): boolean {
    if (!this.on) return false;
    if (!this.coreCalls.take()) {
      this.dropped++;
      return false;
    }
    return true;
  }

  /** A get, put or wait the node served for `workerId`, from `startMs` until now (coreTraced() said so). */
  core(kind: CoreEvent['kind'], workerId: string, startMs: number, count: number): void {
    if (!this.on) return;
    if (this.coreKinds.length + this.taskIds.length >= this.maxBuffered) {
      this.dropped++;
      return;
    }
    this.coreKinds.push(CORE_KIND[kind]);
    this.coreWorkers.push(workerId);
    this.coreStarts.push(startMs);
    this.coreEnds.push(Date.now());
    this.coreCounts.push(count);
    if (this.timer === undefined) this.startTimer();
  }

  private push(taskId: string, attempt: number, state: number, timeMs: number, workerId: string, extra: unknown, startMs: number): void {
    if (!this.on) return;
    if (this.skipped.size !== 0 && this.skipped.has(taskId)) {
      if (state === FINISHED) this.skipped.delete(taskId);
      return;
    }
    if (this.taskIds.length + this.coreKinds.length >= this.maxBuffered) {
      this.dropped++;
      return;
    }
    this.taskIds.push(taskId);
    this.codes.push(state + 8 * (attempt + 1));
    this.timesMs.push(timeMs);
    this.startsMs.push(startMs);
    this.workerIds.push(workerId);
    this.extras.push(extra);
    if (this.timer === undefined) this.startTimer();
  }

  // ---- sending ---------------------------------------------------------------------------------

  private startTimer(): void {
    if (this.stopped || this.sink === undefined || this.timer !== undefined) return;
    this.timer = setInterval(() => this.flush(), this.flushMs);
    // Events never keep a program alive; shutdown() sends what is left.
    this.timer.unref();
  }

  /** Sends what is buffered as one batch (nothing if empty or if there is no sink yet). */
  flush(): void {
    // The next interval samples as this one's submissions say (an idle interval records all).
    this.submissions.nextInterval();
    this.coreCalls.nextInterval();
    const sink = this.sink;
    if (sink === undefined) return;
    if (this.taskIds.length === 0 && this.coreKinds.length === 0 && this.dropped === 0) {
      // Idle: the timer stops until the next event.
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    const batch = this.takeBatch();
    try {
      sink(batch);
    } catch {
      // The GCS connection is closed or closing: the batch is lost, as Ray's are.
    }
  }

  /** Builds the batch from the columns and starts new ones. */
  takeBatch(): TaskEventBatch {
    const extras = this.extras;
    const infos: TaskEventInfo[] = [];
    for (let i = 0; i < extras.length; i++) {
      const extra = extras[i];
      if (extra !== undefined) infos.push(infoOf(i, extra));
    }
    const batch: TaskEventBatch = {
      nodeId: this.nodeId as TaskEventBatch['nodeId'],
      dropped: this.dropped,
      taskIds: this.taskIds,
      codes: this.codes,
      timesMs: this.timesMs,
      startsMs: this.startsMs,
      workerIds: this.workerIds,
      infos,
      core: { kinds: this.coreKinds, workerIds: this.coreWorkers, startsMs: this.coreStarts, endsMs: this.coreEnds, counts: this.coreCounts },
    };
    this.taskIds = [];
    this.codes = [];
    this.timesMs = [];
    this.startsMs = [];
    this.workerIds = [];
    this.extras = [];
    this.coreKinds = [];
    this.coreWorkers = [];
    this.coreStarts = [];
    this.coreEnds = [];
    this.coreCounts = [];
    this.dropped = 0;
    return batch;
  }

  /** Sends what is left and records nothing more. */
  stop(): void {
    if (this.stopped) return;
    this.flush();
    this.stopped = true;
    this.on = false;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * One-in-k sampling of a stream of calls, so that about `budget` of them are recorded an interval.
 * Each interval starts with k from the last one's count (1 after a quiet one), spread evenly. Within
 * an interval, each time about another `budget` have been recorded, k doubles: the first interval
 * of a burst records about budget x (1 + log2(its count / budget)), not all of it, so that a short
 * burst of tiny tasks (a benchmark, a program that runs a second) is not recorded in full either.
 */
class Sampler {
  private every = 1;
  /** Calls seen in this interval (recorded or not), and in all (which ones are recorded). */
  private seenNow = 0;
  private seenEver = 0;
  /** This interval's count at which k next doubles. */
  private raiseAt: number;

  constructor(private readonly budget: number) {
    this.raiseAt = budget;
  }

  /** Whether the call seen now is recorded. */
  take(): boolean {
    if (++this.seenNow > this.raiseAt) {
      this.every *= 2;
      this.raiseAt += this.budget * this.every;
    }
    return this.every === 1 || this.seenEver++ % this.every === 0;
  }

  /** An interval ended: the next samples as its count says. */
  nextInterval(): void {
    this.every = Math.max(1, Math.ceil(this.seenNow / this.budget));
    this.seenNow = 0;
    this.raiseAt = this.budget * this.every;
  }
}

/** What an event's extra says, as the GCS reads it. */
function infoOf(index: number, extra: unknown): TaskEventInfo {
  if (extra instanceof Uint8Array) {
    let errorType = 'Error';
    let errorMessage = '';
    try {
      const record = decodeErrorRecord(extra);
      // As get() throws it: miniray's class by its name, else the error's own.
      errorType = record.minirayClass ?? record.name;
      errorMessage = record.message;
    } catch (error) {
      errorMessage = `(its error could not be read: ${(error as Error).message})`;
    }
    return { index, errorType, errorMessage };
  }
  if (Array.isArray(extra)) return { index, profile: extra as ProfileSpan[] };
  const spec = extra as TaskSpec | ActorSpec;
  if ('classId' in spec) {
    return {
      index,
      name: `${spec.className}.constructor`,
      type: 'ACTOR_CREATION_TASK',
      actorId: spec.actorId,
      ownerNodeId: spec.owner.nodeId,
      requiredResources: resourcesOf(spec),
    };
  }
  const type: TaskType = spec.actorId === undefined ? 'NORMAL_TASK' : 'ACTOR_TASK';
  return {
    index,
    name: spec.name,
    type,
    ...(spec.actorId === undefined ? {} : { actorId: spec.actorId }),
    ownerNodeId: spec.owner.nodeId,
    requiredResources: type === 'ACTOR_TASK' ? NO_RESOURCES : resourcesOf(spec),
  };
}

const NO_RESOURCES: Readonly<Record<string, number>> = Object.freeze({});

/** CPU-only demands, one frozen object per amount: the GCS keeps one per attempt, and most are { CPU: 1 }. */
const cpuOnly = new Map<number, Readonly<Record<string, number>>>();

function resourcesOf(spec: { readonly numCpus: number; readonly resources?: Readonly<Record<string, number>> }): Readonly<Record<string, number>> {
  if (spec.resources === undefined) {
    let shared = cpuOnly.get(spec.numCpus);
    if (shared === undefined && cpuOnly.size < 64) cpuOnly.set(spec.numCpus, (shared = Object.freeze<Record<string, number>>(spec.numCpus > 0 ? { CPU: spec.numCpus } : {})));
    if (shared !== undefined) return shared;
  }
  return spec.numCpus > 0 ? { CPU: spec.numCpus, ...spec.resources } : { ...spec.resources };
}

export { TASK_STATES };
