/**
 * cancel() of tasks and actor calls, as Ray's: a queued task is dropped, a running one is told
 * (or, with force, its thread is terminated while it runs that task), recursive cancel reaches the
 * tasks it submitted, and force-cancelled tasks not started yet are watched until they start.
 */
import { TaskCancelledError } from '../errors/index.js';
import type { TaskSpec } from '../protocol/index.js';
import { encodeError } from '../serialization/index.js';
import type { NodeContext } from './context.js';
import type { TaskRecord, Worker } from './task-manager.js';

export class Cancellation {
  constructor(private readonly context: NodeContext) {}

  /** Force-cancelled tasks that their worker had not started yet when cancel() came, with their next check (see watchForceCancel). */
  readonly forceCancelWatches = new Map<TaskRecord, NodeJS.Timeout>();

  cancel(objectId: string, force: boolean, recursive = false): void {
    const entry = this.context.objects.get(objectId);
    const record = entry?.producer;
    if (record === undefined) {
      // An actor call's objects have no producer task: its actor's queue has it (env).
      if (entry?.state === 'pending') this.cancelActorCall(objectId, force, recursive);
      return;
    }
    // An actor call being rebuilt is not cancelled (as any actor call: its actor is killed instead).
    if (record.cancelled || record.state === 'finished' || record.spec.actorId !== undefined) return;
    this.stop(record, encodeError(new TaskCancelledError(`task ${record.spec.name} was cancelled`)), force, recursive);
  }

  /**
   * A task whose owner's thread ended (see ObjectDirectory.ownerDied): as in Ray, it is stopped
   * like a cancel without force (dropped from its queue, told if it runs, never retried), and its
   * objects, already failed with `error`, stay so.
   */
  stopForDeadOwner(record: TaskRecord, error: Uint8Array): void {
    if (record.cancelled || record.state === 'finished') return;
    this.stop(record, error, false, false);
  }

  /** Stops a task that is not finished: its objects fail with `error` (see cancel). */
  private stop(record: TaskRecord, error: Uint8Array, force: boolean, recursive: boolean): void {
    record.cancelled = true;
    const { state, worker } = record;
    if (state === 'queued') this.context.dispatcher.removeFromQueue(record);
    if (record.remote) this.context.cluster?.cancelRemote(record.spec, force, recursive);
    this.context.tasks.failTask(record, error);
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
    for (const [, entry] of this.context.objects.all()) {
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
    for (const id of this.context.actors.callsOf(parents)) this.cancel(id, false, false);
  }

  /** A task submitted by a task cancelled with recursive: cancelled before it is queued. */
  cancelledByParent(spec: TaskSpec): boolean {
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
    const spec = this.context.actors.cancelCall(objectId, error);
    // Not an actor of this node's: one on another node, where the cluster sent (or will send) the call.
    if (spec === undefined) return this.context.cluster?.cancelRemoteCall(objectId, recursive, error);
    this.context.tasks.actorCallDone(spec.returnIds[0] as string, false);
    if (recursive) this.cancelDescendants(spec.taskId, false);
  }

  killToCancel(worker: Worker): void {
    this.context.scheduler.onWorkerStopping(worker); // nothing more goes to it; what it holds is requeued at its exit
    this.context.pool.kill(worker, 'cancel');
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
  stopWatchingForceCancel(record: TaskRecord): void {
    const timer = this.forceCancelWatches.get(record);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.forceCancelWatches.delete(record);
  }
}
