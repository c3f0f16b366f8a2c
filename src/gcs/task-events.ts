/**
 * The GCS's task-event table (Ray's GcsTaskManager): the batches nodes send (addTaskEvents) merged
 * into one entry per task attempt, (taskId, attempt), answered to the state API as TaskEntry.
 *
 * Bounded: at most `maxTasks` attempts. Past it, finished (FINISHED or FAILED) attempts are
 * evicted oldest first, then, if none is finished, the oldest of any state; each eviction counts
 * as dropped, with the events the nodes dropped before sending. Per-name state counts and run-time
 * histograms (TaskMetrics) are kept as events arrive, over every attempt seen since the GCS
 * started (eviction does not lower them: they are counters for /metrics, not the table's size).
 * get/put/wait calls (CoreEvent) are kept in a ring of the latest `maxCoreEvents`.
 *
 * A state only moves forward (Ray's order: PENDING_ARGS_AVAIL .. RUNNING, then FINISHED or
 * FAILED, whichever comes first): the owner and the node that ran a task both report, and their
 * batches may arrive in either order.
 */
import { InvalidOptionError } from '../errors/index.js';
import { TASK_STATES, type CoreEvent, type ProfileSpan, type StateFilter, type TaskEntry, type TaskMetrics, type TaskState, type TaskType } from '../state/types.js';
// Pure (it imports config, errors and state's types only, never gcs): one filter means the same here as in the state API.
import { FILTER_KEYS, matches } from '../state/filter.js';
import { CORE_EVENT_KINDS, type ListTaskEvents, type TaskEventBatch, type TaskEventInfo, type TaskEventList, type TaskFilter } from './messages.js';

const FINISHED = TASK_STATES.indexOf('FINISHED');
const FAILED = TASK_STATES.indexOf('FAILED');
const SUBMITTED_TO_WORKER = TASK_STATES.indexOf('SUBMITTED_TO_WORKER');
const RUNNING = TASK_STATES.indexOf('RUNNING');

/** Prometheus-style upper bounds of the run-time histograms, in seconds. */
export const RUN_TIME_BOUNDS: readonly number[] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300];

/** The fields a listTaskEvents filter may name (TaskEntry's, but events and profile): the state API's, one list. */
export const TASK_FILTER_KEYS = FILTER_KEYS.tasks;

/** One attempt, as the table keeps it (mutable; TaskEntry is built when asked). */
interface Attempt {
  readonly taskId: string;
  readonly attempt: number;
  name: string;
  type: TaskType;
  state: number;
  actorId: string | undefined;
  ownerNodeId: string;
  nodeId: string | undefined;
  workerId: string | undefined;
  requiredResources: Readonly<Record<string, number>>;
  /**
   * Where its times are in the table's Times: when it first reached each state (TASK_STATES'
   * order), NaN if it did not. Not fields: a double field is a heap number of its own in V8, six
   * more objects per attempt for the collector.
   */
  readonly slot: number;
  errorType: string | undefined;
  errorMessage: string | undefined;
  profile: ProfileSpan[] | undefined;
  /** The task's attempt before this one, if kept (the Map holds the latest). */
  previous: Attempt | undefined;
  /** Counted in the run-time histogram already. */
  observed: boolean;
  evicted: boolean;
  /** The attempt below it was evicted: older attempts than it are not made again by late events. */
  olderEvicted: boolean;
}

const NO_RESOURCES: Readonly<Record<string, number>> = Object.freeze({});

export interface TaskEventTableOptions {
  /** Most attempts kept (maxTaskEventsInGcs). */
  readonly maxTasks: number;
  /** Most get/put/wait events kept (the latest). */
  readonly maxCoreEvents?: number;
}

export class TaskEventTable {
  /** Each task's latest attempt (the others hang from it, newest first); Map order is the order tasks were first seen. */
  private readonly tasks = new Map<string, Attempt>();
  private size = 0;
  /** Attempts in the order they finished (evicted first); some may be gone already. */
  private finishedOrder: Attempt[] = [];
  private finishedHead = 0;
  private droppedByNodes = 0;
  private evictedCount = 0;
  private readonly byState = new Map<string, number[]>();
  private readonly runTime = new Map<string, { counts: number[]; sum: number; count: number }>();
  private readonly times = new Times();
  private readonly core: CoreEvent[] = [];
  private coreNext = 0;
  private readonly maxTasks: number;
  private readonly maxCoreEvents: number;

  constructor(options: TaskEventTableOptions) {
    this.maxTasks = Math.max(1, options.maxTasks);
    this.maxCoreEvents = Math.max(1, options.maxCoreEvents ?? 10_000);
  }

  /** Events lost so far: dropped by nodes' full buffers, and attempts evicted here. */
  get dropped(): number {
    return this.droppedByNodes + this.evictedCount;
  }

  /** Merges one node's batch. */
  add(batch: TaskEventBatch): void {
    this.droppedByNodes += batch.dropped;
    const { taskIds, codes, timesMs, startsMs, workerIds, infos, nodeId } = batch;
    let nextInfo = 0;
    for (let i = 0; i < taskIds.length; i++) {
      const taskId = taskIds[i] as string;
      const code = codes[i] as number;
      const record = this.attemptFor(taskId, (code >> 3) - 1);
      if (record === undefined) {
        while (nextInfo < infos.length && (infos[nextInfo] as TaskEventInfo).index === i) nextInfo++;
        continue;
      }
      const state = code & 7;
      const timeMs = timesMs[i] as number;
      // An attempt that ended keeps its end: a later FINISHED or FAILED (which does not stand) does not move it.
      if (state < FINISHED || (record.state !== FINISHED && record.state !== FAILED)) this.times.set(record.slot, state, timeMs);
      const startMs = startsMs[i] as number;
      if (startMs !== 0) this.times.set(record.slot, RUNNING, startMs);
      if (state === SUBMITTED_TO_WORKER || startMs !== 0) {
        record.nodeId = nodeId;
        const workerId = workerIds[i] as string;
        if (workerId !== '') record.workerId = workerId;
      } else if (state === FINISHED && record.nodeId === undefined) record.nodeId = nodeId;
      // Infos are in event order: the ones for this event, if any, come next.
      while (nextInfo < infos.length && (infos[nextInfo] as TaskEventInfo).index === i) this.applyInfo(record, infos[nextInfo++] as TaskEventInfo);
      this.moveTo(record, state);
    }
    // Infos whose index went past the loop (none if the node built the batch right) are ignored.
    const { kinds, workerIds: coreWorkers, startsMs: coreStarts, endsMs, counts } = batch.core;
    for (let i = 0; i < kinds.length; i++) {
      this.pushCore({
        kind: CORE_EVENT_KINDS[kinds[i] as number] as CoreEvent['kind'],
        nodeId,
        workerId: coreWorkers[i] as string,
        startMs: coreStarts[i] as number,
        endMs: endsMs[i] as number,
        count: counts[i] as number,
      });
    }
    this.evictOverflow();
  }

  list(options: ListTaskEvents = {}): TaskEventList {
    const filters = options.filters ?? [];
    // Checked keys (below): the filters are TaskEntry's.
    for (const filter of filters) checkFilter(filter);
    const limit = options.limit ?? 100;
    const records: TaskEntry[] = [];
    let total = 0;
    for (const latest of this.tasks.values()) {
      for (const record of oldestFirst(latest)) {
        // The entry is made only to be filtered or returned (none for a plain count past the limit).
        const entry = filters.length === 0 ? undefined : entryOf(this.times, record, false);
        if (entry !== undefined && !matches(entry, filters as readonly StateFilter<TaskEntry>[])) continue;
        total++;
        if (records.length < limit) records.push(entry !== undefined && options.detail !== true ? entry : entryOf(this.times, record, options.detail === true));
      }
    }
    return { records, total, dropped: this.dropped };
  }

  /** Every attempt of a task kept here, with detail (events and profile spans), first attempt first. */
  get(taskId: string): TaskEntry[] {
    const latest = this.tasks.get(taskId);
    return latest === undefined ? [] : oldestFirst(latest).map((record) => entryOf(this.times, record, true));
  }

  metrics(): TaskMetrics {
    const byState: Record<string, Partial<Record<TaskState, number>>> = {};
    for (const [name, counts] of this.byState) {
      const states: Partial<Record<TaskState, number>> = {};
      for (let s = 0; s < counts.length; s++) if ((counts[s] as number) > 0) states[TASK_STATES[s] as TaskState] = counts[s] as number;
      byState[name] = states;
    }
    const runTime: Record<string, TaskMetrics['runTime'][string]> = {};
    for (const [name, h] of this.runTime) {
      let cumulative = 0;
      runTime[name] = { bounds: RUN_TIME_BOUNDS, counts: h.counts.map((count) => (cumulative += count)), sum: h.sum, count: h.count };
    }
    return { byState, runTime, droppedEvents: this.dropped };
  }

  /** The latest get/put/wait events, oldest first. */
  coreEvents(): CoreEvent[] {
    return this.core.length < this.maxCoreEvents ? [...this.core] : [...this.core.slice(this.coreNext), ...this.core.slice(0, this.coreNext)];
  }

  // ---- internals ------------------------------------------------------------------------------

  /** The attempt an event is for, made if new; -1: the latest known (from a node of before attempts were sent to the running node). */
  private attemptFor(taskId: string, attempt: number): Attempt | undefined {
    const latest = this.tasks.get(taskId);
    if (latest !== undefined) {
      if (attempt < 0 || attempt === latest.attempt) return latest;
      let newer = latest;
      for (let older = latest.previous; older !== undefined; newer = older, older = older.previous) {
        if (older.attempt === attempt) return older;
        if (older.attempt < attempt) break;
      }
      // Older than the latest and not kept: an attempt whose events come after its retry's (the
      // running node's batch first), put in its place; or evicted already (the oldest kept is
      // newer), or from before a restart of the GCS.
      if (attempt < latest.attempt) return newer.olderEvicted ? undefined : this.insertBefore(newer, attempt);
    }
    const record: Attempt = {
      taskId,
      attempt: Math.max(0, attempt),
      // A new attempt of a known task has what its first attempt said of it.
      name: latest?.name ?? '',
      type: latest?.type ?? 'NORMAL_TASK',
      state: -1,
      actorId: latest?.actorId,
      ownerNodeId: latest?.ownerNodeId ?? '',
      nodeId: undefined,
      workerId: undefined,
      requiredResources: latest?.requiredResources ?? NO_RESOURCES,
      slot: this.times.take(latest === undefined ? Number.NaN : this.times.get(latest.slot, 0)),
      errorType: undefined,
      errorMessage: undefined,
      profile: undefined,
      previous: latest,
      observed: false,
      evicted: false,
      olderEvicted: false,
    };
    // Set again, a key keeps its place in the Map: the task stays where it was first seen.
    this.tasks.set(taskId, record);
    this.size++;
    return record;
  }

  /** A new attempt older than `newer` (kept already), hung just below it. */
  private insertBefore(newer: Attempt, attempt: number): Attempt {
    const record: Attempt = {
      taskId: newer.taskId,
      attempt,
      name: newer.name,
      type: newer.type,
      state: -1,
      actorId: newer.actorId,
      ownerNodeId: newer.ownerNodeId,
      nodeId: undefined,
      workerId: undefined,
      requiredResources: newer.requiredResources,
      slot: this.times.take(Number.NaN),
      errorType: undefined,
      errorMessage: undefined,
      profile: undefined,
      previous: newer.previous,
      observed: false,
      evicted: false,
      olderEvicted: false,
    };
    newer.previous = record;
    this.size++;
    return record;
  }

  private applyInfo(record: Attempt, info: TaskEventInfo): void {
    if (info.name !== undefined) {
      this.describe(record, info, info.name);
      // Retries seen before their first attempt's submission (the running node's batch first) are what it says too.
      for (let newer = this.tasks.get(record.taskId); newer !== undefined && newer !== record; newer = newer.previous) if (newer.name === '') this.describe(newer, info, info.name);
    }
    // The first error stands (as the first of FINISHED and FAILED): what get() throws.
    if (info.errorType !== undefined && record.errorType === undefined) {
      record.errorType = info.errorType;
      record.errorMessage = info.errorMessage;
    }
    if (info.profile !== undefined) record.profile = record.profile === undefined ? [...info.profile] : [...record.profile, ...info.profile];
    if (record.state === FINISHED || record.state === FAILED) this.observe(record);
  }

  /** What a submission says of an attempt: its name, type, actor, owner and resources. */
  private describe(record: Attempt, info: TaskEventInfo, name: string): void {
    if (name !== record.name) {
      // Counted under '' until its name came (the running node's events arrived first).
      if (record.state >= 0) {
        this.count(record.name, record.state, -1);
        this.count(name, record.state, 1);
      }
      record.name = name;
    }
    if (info.type !== undefined) record.type = info.type;
    if (info.actorId !== undefined) record.actorId = info.actorId;
    if (info.ownerNodeId !== undefined) record.ownerNodeId = info.ownerNodeId;
    if (info.requiredResources !== undefined) record.requiredResources = info.requiredResources;
    if (record.state === FINISHED || record.state === FAILED) this.observe(record);
  }

  /** Forward only; the first of FINISHED and FAILED stands. */
  private moveTo(record: Attempt, state: number): void {
    const current = record.state;
    if (current === FINISHED || current === FAILED || state <= current) return;
    // Its name's counts, looked up once per event rather than once per count.
    const counts = this.countsOf(record.name);
    if (current >= 0) counts[current] = (counts[current] as number) - 1;
    record.state = state;
    counts[state] = (counts[state] as number) + 1;
    if (state === FINISHED || state === FAILED) {
      this.finishedOrder.push(record);
      this.observe(record);
    }
  }

  private count(name: string, state: number, delta: number): void {
    const counts = this.countsOf(name);
    counts[state] = (counts[state] as number) + delta;
  }

  private countsOf(name: string): number[] {
    let counts = this.byState.get(name);
    if (counts === undefined) this.byState.set(name, (counts = new Array<number>(TASK_STATES.length).fill(0)));
    return counts;
  }

  /** A finished attempt with its name and both times goes into its name's histogram, once. */
  private observe(record: Attempt): void {
    if (record.observed || record.name === '' || (record.state !== FINISHED && record.state !== FAILED)) return;
    const end = endOf(this.times, record);
    const start = this.times.get(record.slot, RUNNING);
    if (Number.isNaN(start) || Number.isNaN(end)) return;
    record.observed = true;
    const seconds = Math.max(0, end - start) / 1000;
    let h = this.runTime.get(record.name);
    if (h === undefined) this.runTime.set(record.name, (h = { counts: new Array<number>(RUN_TIME_BOUNDS.length).fill(0), sum: 0, count: 0 }));
    let bucket = 0;
    while (bucket < RUN_TIME_BOUNDS.length && seconds > (RUN_TIME_BOUNDS[bucket] as number)) bucket++;
    if (bucket === RUN_TIME_BOUNDS.length) bucket = -1;
    // Past the last bound: only in +Inf, which is `count`.
    if (bucket >= 0) h.counts[bucket] = (h.counts[bucket] as number) + 1;
    h.sum += seconds;
    h.count++;
  }

  private evictOverflow(): void {
    while (this.size > this.maxTasks) {
      let victim: Attempt | undefined;
      while (this.finishedHead < this.finishedOrder.length) {
        const candidate = this.finishedOrder[this.finishedHead++] as Attempt;
        if (!candidate.evicted) {
          victim = candidate;
          break;
        }
      }
      if (this.finishedHead > 1024 && this.finishedHead * 2 > this.finishedOrder.length) {
        this.finishedOrder = this.finishedOrder.slice(this.finishedHead);
        this.finishedHead = 0;
      }
      if (victim === undefined) {
        // Nothing finished: the oldest task's first attempt kept.
        for (const latest of this.tasks.values()) {
          victim = oldestFirst(latest)[0];
          break;
        }
      }
      if (victim === undefined) return;
      this.remove(victim);
    }
  }

  private remove(record: Attempt): void {
    record.evicted = true;
    this.times.give(record.slot);
    this.size--;
    this.evictedCount++;
    const latest = this.tasks.get(record.taskId);
    if (latest === record) {
      if (record.previous === undefined) this.tasks.delete(record.taskId);
      else this.tasks.set(record.taskId, record.previous);
      return;
    }
    for (let newer = latest; newer !== undefined; newer = newer.previous) {
      if (newer.previous === record) {
        newer.previous = record.previous;
        newer.olderEvicted = true;
        return;
      }
    }
  }

  private pushCore(event: CoreEvent): void {
    if (this.core.length < this.maxCoreEvents) this.core.push(event);
    else {
      this.core[this.coreNext] = event;
      this.coreNext = (this.coreNext + 1) % this.maxCoreEvents;
    }
  }
}

/** Every attempt's six state times, in one Float64Array (grown as needed), by slot. */
class Times {
  private data = new Float64Array(6 * 1024);
  private next = 0;
  private readonly free: number[] = [];

  /** A slot with every time NaN but the first (`t0`: a retry's creation time is its task's). */
  take(t0: number): number {
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.next++;
      if (6 * this.next > this.data.length) {
        const bigger = new Float64Array(2 * this.data.length);
        bigger.set(this.data);
        this.data = bigger;
      }
    }
    const at = 6 * slot;
    this.data.fill(Number.NaN, at, at + 6);
    this.data[at] = t0;
    return slot;
  }

  give(slot: number): void {
    this.free.push(slot);
  }

  get(slot: number, state: number): number {
    return this.data[6 * slot + state] as number;
  }

  /** A state's first time; the first time stands. A submission with its arguments ready (PENDING_NODE_ASSIGNMENT first) is PENDING_ARGS_AVAIL then too. */
  set(slot: number, state: number, timeMs: number): void {
    const at = 6 * slot;
    if (Number.isNaN(this.data[at + state] as number)) this.data[at + state] = timeMs;
    if (state === 1 && Number.isNaN(this.data[at] as number)) this.data[at] = timeMs;
  }

  all(slot: number): number[] {
    return Array.from(this.data.subarray(6 * slot, 6 * slot + 6));
  }
}

/** When it finished or failed (the first of the two), NaN if neither. */
function endOf(times: Times, record: Attempt): number {
  const finished = times.get(record.slot, FINISHED);
  const failed = times.get(record.slot, FAILED);
  if (Number.isNaN(finished)) return failed;
  if (Number.isNaN(failed)) return finished;
  return Math.min(finished, failed);
}

function oldestFirst(latest: Attempt): Attempt[] {
  if (latest.previous === undefined) return [latest];
  const all: Attempt[] = [];
  for (let record: Attempt | undefined = latest; record !== undefined; record = record.previous) all.unshift(record);
  return all;
}

function entryOf(timeTable: Times, record: Attempt, detail: boolean): TaskEntry {
  const state = (TASK_STATES[record.state] ?? 'PENDING_ARGS_AVAIL') as TaskState;
  const times = timeTable.all(record.slot);
  const end = endOf(timeTable, record);
  const entry: { -readonly [K in keyof TaskEntry]: TaskEntry[K] } = {
    taskId: record.taskId,
    attempt: record.attempt,
    name: record.name,
    type: record.type,
    state,
    ownerNodeId: record.ownerNodeId,
    requiredResources: record.requiredResources,
    // Without its owner's submission (dropped, or not arrived yet): its earliest known time.
    creationTimeMs: Number.isNaN(times[0] as number) ? Math.min(...times.filter((t) => !Number.isNaN(t)), Infinity) : (times[0] as number),
  };
  if (entry.creationTimeMs === Infinity) entry.creationTimeMs = 0;
  if (record.actorId !== undefined) entry.actorId = record.actorId;
  if (record.nodeId !== undefined) entry.nodeId = record.nodeId;
  if (record.workerId !== undefined) entry.workerId = record.workerId;
  if (!Number.isNaN(times[RUNNING] as number)) entry.startTimeMs = times[RUNNING] as number;
  if (!Number.isNaN(end)) entry.endTimeMs = end;
  if (record.errorType !== undefined) entry.errorType = record.errorType;
  if (record.errorMessage !== undefined) entry.errorMessage = record.errorMessage;
  if (detail) {
    const events: { state: TaskState; timeMs: number }[] = [];
    for (let s = 0; s < times.length; s++) if (!Number.isNaN(times[s])) events.push({ state: TASK_STATES[s] as TaskState, timeMs: times[s] as number });
    // In time order; a state's order breaks ties (a submission and its queueing in the same ms).
    events.sort((a, b) => a.timeMs - b.timeMs || TASK_STATES.indexOf(a.state) - TASK_STATES.indexOf(b.state));
    entry.events = events;
    entry.profile = record.profile ?? [];
  }
  return entry;
}

function checkFilter(filter: TaskFilter): void {
  if (!(TASK_FILTER_KEYS as readonly string[]).includes(filter[0])) {
    throw new InvalidOptionError(`listTaskEvents: a task filter cannot use key '${filter[0]}'; the keys are ${TASK_FILTER_KEYS.join(', ')}`, 'filters');
  }
}
