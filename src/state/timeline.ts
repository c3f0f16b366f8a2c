/**
 * The timeline: task attempts, their profile spans and the object API's get/put/wait calls as
 * Chrome trace events (the JSON "Trace Event Format" that Perfetto and chrome://tracing open), as
 * Ray's `ray timeline` writes them. Pure: it turns state records into events and reads no clock
 * but the `nowMs` it is given (for a task still running).
 *
 * Lanes: one process per node (pid), one thread per worker (tid), named by metadata events, since
 * the viewers want numbers there and show the names. Submissions go on a lane of their own on the
 * owner's node, because a TaskEntry names the owner's node but not its thread.
 */
import type { CoreEvent, StateSource, TaskEntry } from './types.js';

/** One trace event; times in microseconds, as the format has them. */
export type TraceEvent =
  | {
      /** A span: from ts for dur. */
      readonly ph: 'X';
      readonly name: string;
      readonly cat: string;
      readonly ts: number;
      readonly dur: number;
      readonly pid: number;
      readonly tid: number;
      readonly args: Readonly<Record<string, unknown>>;
      /** A color of the viewers' palette: failed tasks are 'terrible' (red). */
      readonly cname?: string;
    }
  | {
      /** An instant, here thread-scoped. */
      readonly ph: 'i';
      readonly name: string;
      readonly cat: string;
      readonly ts: number;
      readonly pid: number;
      readonly tid: number;
      readonly s: 't';
      readonly args: Readonly<Record<string, unknown>>;
    }
  | {
      /** Metadata: the name of a process (node) or a thread (worker), and their order. */
      readonly ph: 'M';
      readonly name: 'process_name' | 'thread_name' | 'process_sort_index' | 'thread_sort_index';
      readonly ts: 0;
      readonly pid: number;
      readonly tid: number;
      readonly args: { readonly name: string } | { readonly sort_index: number };
    };

export type ChromeTrace = {
  readonly traceEvents: readonly TraceEvent[];
  /** How the viewers show times (the events are in microseconds either way). */
  readonly displayTimeUnit: 'ms';
};

export interface TimelineOptions {
  /** The end of a task still running (epoch ms); default: its last event, else its start. */
  readonly nowMs?: number;
}

/** The submissions lane of a node: tid 0, before its workers (1, 2, ...). */
const SUBMIT_TID = 0;
/** Its key among the workers' (IDs are hex, so no worker has it). */
const SUBMIT_KEY = 'submitted';
const FAILED_COLOR = 'terrible';
const SHORT_ID = 8;

const us = (ms: number): number => Math.round(ms * 1000);

/** Numbers for nodes and their workers, in the order first seen, with the metadata that names them. */
class Lanes {
  private readonly nodes = new Map<string, { pid: number; workers: Map<string, number> }>();
  readonly metadata: TraceEvent[] = [];

  node(nodeId: string): { pid: number; workers: Map<string, number> } {
    let node = this.nodes.get(nodeId);
    if (node === undefined) {
      node = { pid: this.nodes.size + 1, workers: new Map() };
      this.nodes.set(nodeId, node);
      this.metadata.push(
        { ph: 'M', name: 'process_name', ts: 0, pid: node.pid, tid: SUBMIT_TID, args: { name: `node ${nodeId.slice(0, SHORT_ID)}` } },
        { ph: 'M', name: 'process_sort_index', ts: 0, pid: node.pid, tid: SUBMIT_TID, args: { sort_index: node.pid } },
      );
    }
    return node;
  }

  submissions(nodeId: string): { pid: number; tid: number } {
    const node = this.node(nodeId);
    if (!node.workers.has(SUBMIT_KEY)) {
      node.workers.set(SUBMIT_KEY, SUBMIT_TID);
      this.metadata.push({ ph: 'M', name: 'thread_name', ts: 0, pid: node.pid, tid: SUBMIT_TID, args: { name: 'submitted' } });
    }
    return { pid: node.pid, tid: SUBMIT_TID };
  }

  worker(nodeId: string, workerId: string): { pid: number; tid: number } {
    const node = this.node(nodeId);
    let tid = node.workers.get(workerId);
    if (tid === undefined) {
      tid = [...node.workers.values()].filter((t) => t !== SUBMIT_TID).length + 1;
      node.workers.set(workerId, tid);
      const name = workerId === '' ? 'worker (unknown)' : `worker ${workerId.slice(0, SHORT_ID)}`;
      this.metadata.push(
        { ph: 'M', name: 'thread_name', ts: 0, pid: node.pid, tid, args: { name } },
        { ph: 'M', name: 'thread_sort_index', ts: 0, pid: node.pid, tid, args: { sort_index: tid } },
      );
    }
    return { pid: node.pid, tid };
  }
}

/** Where a task attempt ended: its end, else (running) `nowMs`, else its latest event. */
function endOf(task: TaskEntry, startMs: number, nowMs: number | undefined): number {
  if (task.endTimeMs !== undefined) return task.endTimeMs;
  if (nowMs !== undefined) return nowMs;
  const latest = Math.max(startMs, ...(task.events ?? []).map((e) => e.timeMs), ...(task.profile ?? []).map((s) => s.endMs));
  return latest;
}

/**
 * The trace of `tasks` (as listed with detail: their events and profile spans) and `coreEvents`:
 * a submit instant per attempt on its owner's node, a span per attempt that started on a worker
 * (failed ones red, with their error in args), each profile span nested in its task's lane, and a
 * span per get/put/wait on the lane of the thread that made it.
 */
export function buildTimeline(tasks: readonly TaskEntry[], coreEvents: readonly CoreEvent[], options: TimelineOptions = {}): ChromeTrace {
  const lanes = new Lanes();
  const events: TraceEvent[] = [];
  for (const task of tasks) {
    const submit = lanes.submissions(task.ownerNodeId);
    events.push({
      ph: 'i',
      name: `submit ${task.name}`,
      cat: 'submit',
      ts: us(task.creationTimeMs),
      ...submit,
      s: 't',
      args: { taskId: task.taskId, attempt: task.attempt },
    });
    if (task.startTimeMs === undefined) continue;
    const lane = lanes.worker(task.nodeId ?? task.ownerNodeId, task.workerId ?? '');
    const startMs = task.startTimeMs;
    const endMs = Math.max(startMs, endOf(task, startMs, options.nowMs));
    const failed = task.state === 'FAILED';
    events.push({
      ph: 'X',
      name: task.name,
      cat: task.type === 'NORMAL_TASK' ? 'task' : 'actor',
      ts: us(startMs),
      dur: us(endMs) - us(startMs),
      ...lane,
      args: {
        taskId: task.taskId,
        attempt: task.attempt,
        state: task.state,
        type: task.type,
        ...(task.actorId === undefined ? {} : { actorId: task.actorId }),
        ...(task.nodeId === undefined ? {} : { nodeId: task.nodeId }),
        ...(task.workerId === undefined ? {} : { workerId: task.workerId }),
        ...(failed ? { error: `${task.errorType ?? 'Error'}: ${task.errorMessage ?? ''}` } : {}),
        ...(task.events === undefined ? {} : { events: task.events.map((e) => `${e.state} @ ${new Date(e.timeMs).toISOString()}`) }),
      },
      ...(failed ? { cname: FAILED_COLOR } : {}),
    });
    for (const span of task.profile ?? []) {
      events.push({
        ph: 'X',
        name: span.name,
        cat: 'profile',
        ts: us(span.startMs),
        dur: Math.max(0, us(span.endMs) - us(span.startMs)),
        ...lane,
        args: { taskId: task.taskId, attempt: task.attempt, ...(span.extraData ?? {}) },
      });
    }
  }
  for (const call of coreEvents) {
    events.push({
      ph: 'X',
      name: call.kind,
      cat: 'object',
      ts: us(call.startMs),
      dur: Math.max(0, us(call.endMs) - us(call.startMs)),
      ...lanes.worker(call.nodeId, call.workerId),
      args: { count: call.count },
    });
  }
  // In time order, and a span before the spans it encloses (longer first at the same start), so
  // that a viewer that reads them in order nests them right.
  events.sort((a, b) => a.ts - b.ts || ('dur' in b ? b.dur : 0) - ('dur' in a ? a.dur : 0));
  return { traceEvents: [...lanes.metadata, ...events], displayTimeUnit: 'ms' };
}

/** How many task attempts a timeline asks for: as many as the GCS keeps by default (maxTaskEventsInGcs). */
export const TIMELINE_TASK_LIMIT = 100_000;

/** A timeline read from a cluster, and what it may lack. */
export type ReadTimeline = {
  readonly trace: ChromeTrace;
  /** Task attempts in it, of `total` the GCS has (more than the limit are left out). */
  readonly tasks: number;
  readonly total: number;
  /** Task events the cluster dropped under load: about that many attempts are missing. */
  readonly dropped: number;
};

/** The timeline of what `source` knows now: every task attempt with detail, and the latest core events. */
export async function readTimeline(source: StateSource, nowMs: number): Promise<ReadTimeline> {
  const [tasks, core] = await Promise.all([source.list('tasks', { detail: true, limit: TIMELINE_TASK_LIMIT }), source.coreEvents()]);
  return { trace: buildTimeline(tasks.records, core, { nowMs }), tasks: tasks.records.length, total: tasks.total, dropped: tasks.dropped };
}
