/**
 * The node's scheduler: ready tasks in FIFO order, CPU accounting, and the choice of worker.
 * Tasks reach it only when their ref arguments exist (the node holds them back until then).
 *
 * Resources are counted in integer units of 1/10,000 CPU (as Ray counts in fixed point), so
 * fractional CPUs always add back up to the total.
 *
 * A worker that starts running reserves its first task's CPUs from the node's total;
 * they come back when the worker has nothing runnable (all done, or all waiting in get(), as Ray
 * releases a blocked worker's CPUs so that nested tasks can run).
 *
 * Pipelining: when many short tasks are ready, a worker is given up to `maxInFlightPerWorker` at
 * once (an even share of the queue), so it always has its next task at hand and results come back
 * in batches. Long tasks (as the node's `pipelinable` policy judges) and few tasks go one per
 * worker, so they spread over all workers and none waits behind another.
 */

export interface SchedulableTask {
  readonly numCpus: number;
}

/** The scheduler's view of a worker; fields are maintained by the scheduler's on* methods. */
export interface WorkerSlot {
  /** Tasks assigned and not finished, minus those waiting in get(). */
  load: number;
  /** CPUs held from the node's total while load > 0, in units of 1/10,000 CPU. */
  reservedCpuUnits: number;
  /** False until the worker can take tasks, and after it died. */
  accepting: boolean;
}

const UNITS_PER_CPU = 10_000;
const toUnits = (cpus: number): number => Math.round(cpus * UNITS_PER_CPU);

export class Scheduler<T extends SchedulableTask, W extends WorkerSlot> {
  private queue: T[] = [];
  private head = 0;
  /** Each task's place in submission order, given when it is first queued. */
  private readonly order = new WeakMap<T, number>();
  private nextOrder = 0;
  /** Free CPUs, in units. */
  private available: number;
  /** Tasks of each worker that wait in get() (absent: none). */
  private readonly waiting = new WeakMap<W, number>();
  private readonly waitingIn = (worker: W): number => this.waiting.get(worker) ?? 0;

  /**
   * @param pipelinable whether a task may wait at a worker behind others (short tasks); a task
   *   for which it says false only goes to a worker with nothing else to run.
   */
  constructor(
    readonly totalCpus: number,
    private readonly maxInFlightPerWorker: number,
    private readonly pipelinable: (task: T) => boolean = () => true,
  ) {
    this.available = toUnits(totalCpus);
  }

  get queuedCount(): number {
    return this.queue.length - this.head;
  }

  get availableCpus(): number {
    return this.available / UNITS_PER_CPU;
  }

  /** Whether a task could ever run here. */
  isFeasible(task: SchedulableTask): boolean {
    return toUnits(task.numCpus) <= toUnits(this.totalCpus);
  }

  /** Queues a task at the back (a task queued again, as a retry after an exception, keeps its first place in submission order). */
  enqueue(task: T): void {
    if (!this.order.has(task)) this.order.set(task, this.nextOrder++);
    this.queue.push(task);
  }

  /**
   * Puts back tasks that were handed to a worker and will not finish there (it died, or was
   * killed to force-cancel one of them): each goes back in submission order, ahead of every queued
   * task submitted after it, so that a worker's death never lets later tasks overtake them.
   * Tasks never queued here count as the oldest.
   */
  requeue(tasks: readonly T[]): void {
    if (tasks.length === 0) return;
    const orderOf = (task: T): number => this.order.get(task) ?? -Infinity;
    const back = [...tasks].sort((a, b) => orderOf(a) - orderOf(b));
    const merged: T[] = [];
    let next = 0;
    for (let i = this.head; i < this.queue.length; i++) {
      const queued = this.queue[i] as T;
      while (next < back.length && orderOf(back[next] as T) < orderOf(queued)) merged.push(back[next++] as T);
      merged.push(queued);
    }
    while (next < back.length) merged.push(back[next++] as T);
    this.queue = merged;
    this.head = 0;
  }

  /** Removes a queued task; false if it is not queued. */
  remove(task: T): boolean {
    const index = this.queue.indexOf(task, this.head);
    if (index < 0) return false;
    this.queue.splice(index, 1);
    return true;
  }

  /** Removes and returns the queued tasks `which` picks (a placement group's, when it is removed). */
  removeWhere(which: (task: T) => boolean): T[] {
    const taken: T[] = [];
    const kept: T[] = [];
    for (let i = this.head; i < this.queue.length; i++) {
      const task = this.queue[i] as T;
      (which(task) ? taken : kept).push(task);
    }
    if (taken.length > 0) {
      this.queue = kept;
      this.head = 0;
    }
    return taken;
  }

  /** Removes and returns every queued task. */
  drain(): T[] {
    const tasks = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    return tasks;
  }

  /**
   * Hands ready tasks to workers, in FIFO order, as far as resources allow. `avoidWaiting`: a
   * worker with a task waiting in get() gets none (a thread of their own is starting or can be
   * started for them). Returns how many queued tasks were kept from such workers only, with their
   * CPUs free (at most as many as the free CPUs hold): the caller starts workers for them.
   */
  dispatch(workers: readonly W[], assign: (worker: W, task: T) => void, avoidWaiting = false): number {
    if (this.queuedCount === 0) return 0;
    const accepting = workers.filter((w) => w.accepting);
    if (accepting.length === 0) return 0;
    let wantsWorker = false;
    const share = Math.ceil(this.queuedCount / accepting.length);
    const depth = Math.max(1, Math.min(this.maxInFlightPerWorker, share));
    // Least-loaded first, so idle workers get work before busy ones get more. Of equal load, one
    // with no task waiting in get() first: a waiting task's children then run in another thread
    // when one is free, so that a child that crashes its thread, is force-cancelled or never
    // yields does not take its waiting parent down with it or hold it up.
    accepting.sort((a, b) => a.load - b.load || this.waitingIn(a) - this.waitingIn(b));
    for (const worker of accepting) {
      if (avoidWaiting && this.waitingIn(worker) > 0) {
        const head = this.queue[this.head];
        if (worker.load === 0 && head !== undefined && this.available >= toUnits(head.numCpus)) wantsWorker = true;
        continue;
      }
      // A busy worker is refilled once half its depth has run, not after every result: it still
      // has its next tasks at hand, and a stream of results costs one execute message per batch.
      if (worker.load > 0 && worker.load * 2 > depth) continue;
      while (this.head < this.queue.length && worker.load < depth) {
        const task = this.queue[this.head] as T;
        const units = toUnits(task.numCpus);
        if (worker.load === 0) {
          if (this.available < units) return 0; // FIFO: the head waits for CPUs
          worker.reservedCpuUnits = units;
          this.available -= units;
        } else if (units > worker.reservedCpuUnits || !this.pipelinable(task)) {
          break; // runs after this worker's current tasks only if it is short and fits what it holds
        }
        this.head++;
        worker.load++;
        assign(worker, task);
      }
    }
    this.compact();
    const head = this.queue[this.head];
    if (!wantsWorker || head === undefined) return 0;
    return Math.min(this.queuedCount, Math.floor(this.available / Math.max(1, toUnits(head.numCpus))));
  }

  /** A task assigned to `worker` finished (or will never run there). */
  onTaskDone(worker: W): void {
    worker.load--;
    if (worker.load === 0) this.releaseWorker(worker);
  }

  /** Whether a task on `worker` waits in get(). */
  hasWaiting(worker: W): boolean {
    return this.waitingIn(worker) > 0;
  }

  /** A running task on `worker` now waits in get(): its CPUs are free for other tasks. */
  onBlocked(worker: W): void {
    this.waiting.set(worker, this.waitingIn(worker) + 1);
    this.onTaskDone(worker); // the same accounting: one runnable task fewer
  }

  /** A task that waited in get() runs again (possibly oversubscribing, as Ray does). */
  onUnblocked(worker: W): void {
    const waiting = this.waitingIn(worker) - 1;
    if (waiting > 0) this.waiting.set(worker, waiting);
    else this.waiting.delete(worker);
    if (worker.load === 0) {
      worker.reservedCpuUnits = UNITS_PER_CPU;
      this.available -= UNITS_PER_CPU;
    }
    worker.load++;
  }

  /**
   * A worker is being stopped (terminated to force-cancel a task): it gets no more tasks, and
   * keeps its CPUs until it is gone (onWorkerLost).
   */
  onWorkerStopping(worker: W): void {
    worker.accepting = false;
  }

  /** A worker died: its CPUs return; its tasks are handled by the caller. */
  onWorkerLost(worker: W): void {
    this.waiting.delete(worker);
    worker.load = 0;
    this.releaseWorker(worker);
    worker.accepting = false;
  }

  /** Takes CPUs for something outside the queue (an actor, for its lifetime); false if not free. */
  tryReserve(cpus: number): boolean {
    const units = toUnits(cpus);
    if (units > this.available) return false;
    this.available -= units;
    return true;
  }

  releaseCpus(cpus: number): void {
    this.available += toUnits(cpus);
  }

  private releaseWorker(worker: W): void {
    this.available += worker.reservedCpuUnits;
    worker.reservedCpuUnits = 0;
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}
