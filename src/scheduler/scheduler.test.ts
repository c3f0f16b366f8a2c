import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler, type SchedulableTask, type WorkerSlot } from './index.js';

interface Task extends SchedulableTask {
  readonly id: string;
}
interface Slot extends WorkerSlot {
  readonly name: string;
}

const task = (id: string, numCpus = 1): Task => ({ id, numCpus });
const tasks = (count: number, numCpus = 1, prefix = 't'): Task[] =>
  Array.from({ length: count }, (_, i) => task(`${prefix}${i + 1}`, numCpus));
const worker = (name: string): Slot => ({ name, load: 0, reservedCpuUnits: 0, accepting: true });
const workers = (count: number): Slot[] => Array.from({ length: count }, (_, i) => worker(`w${i + 1}`));

/** Runs one dispatch and returns the assignments made, in order, as "worker:task". */
function dispatch(scheduler: Scheduler<Task, Slot>, slots: readonly Slot[]): string[] {
  const assigned: string[] = [];
  scheduler.dispatch(slots, (w, t) => assigned.push(`${w.name}:${t.id}`));
  return assigned;
}

/** Counts assignments per worker. */
function perWorker(assigned: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const entry of assigned) {
    const name = entry.slice(0, entry.indexOf(':'));
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

const taskIds = (assigned: readonly string[]) => assigned.map((a) => a.slice(a.indexOf(':') + 1));

test('a new scheduler has all CPUs available and nothing queued', () => {
  const s = new Scheduler<Task, Slot>(4, 8);
  assert.equal(s.totalCpus, 4);
  assert.equal(s.availableCpus, 4);
  assert.equal(s.queuedCount, 0);
  assert.deepEqual(dispatch(s, workers(2)), []);
});

test('tasks are dispatched in FIFO order', () => {
  const s = new Scheduler<Task, Slot>(1, 64);
  for (const t of tasks(5)) s.enqueue(t);
  assert.equal(s.queuedCount, 5);
  assert.deepEqual(dispatch(s, workers(1)), ['w1:t1', 'w1:t2', 'w1:t3', 'w1:t4', 'w1:t5']);
  assert.equal(s.queuedCount, 0);
});

test('FIFO order holds one task at a time without pipelining', () => {
  const s = new Scheduler<Task, Slot>(1, 1);
  const [w] = workers(1) as [Slot];
  for (const t of tasks(4)) s.enqueue(t);
  const order: string[] = [];
  for (let i = 0; i < 4; i++) {
    const assigned = dispatch(s, [w]);
    assert.equal(assigned.length, 1, `round ${i}`);
    order.push(...taskIds(assigned));
    assert.deepEqual(dispatch(s, [w]), [], 'a busy worker gets nothing more at depth 1');
    s.onTaskDone(w);
  }
  assert.deepEqual(order, ['t1', 't2', 't3', 't4']);
});

test('a dispatched task holds its CPUs until its worker is done', () => {
  const s = new Scheduler<Task, Slot>(4, 1);
  const [w1] = workers(1) as [Slot];
  s.enqueue(task('big', 3));
  assert.deepEqual(dispatch(s, [w1]), ['w1:big']);
  assert.equal(s.availableCpus, 1);
  assert.equal(w1.load, 1);
  assert.equal(w1.reservedCpuUnits, 30000); // units of 1/10,000 CPU
  s.onTaskDone(w1);
  assert.equal(s.availableCpus, 4);
  assert.equal(w1.load, 0);
  assert.equal(w1.reservedCpuUnits, 0);
});

test('a task needing 2 CPUs waits while only 1 is free', () => {
  const s = new Scheduler<Task, Slot>(2, 1);
  const [w1, w2] = workers(2) as [Slot, Slot];
  s.enqueue(task('small', 1));
  assert.deepEqual(dispatch(s, [w1, w2]), ['w1:small']);
  assert.equal(s.availableCpus, 1);
  s.enqueue(task('big', 2));
  assert.deepEqual(dispatch(s, [w1, w2]), [], 'big must wait for 2 free CPUs');
  assert.equal(s.queuedCount, 1);
  s.onTaskDone(w1);
  assert.equal(s.availableCpus, 2);
  const assigned = dispatch(s, [w1, w2]);
  assert.deepEqual(taskIds(assigned), ['big']);
  assert.equal(s.availableCpus, 0);
});

test('FIFO head-of-line: a small task behind a waiting big one also waits', () => {
  const s = new Scheduler<Task, Slot>(2, 64);
  const [w1, w2, w3] = workers(3) as [Slot, Slot, Slot];
  s.enqueue(task('first', 1));
  assert.deepEqual(dispatch(s, [w1, w2, w3]), ['w1:first']);
  s.enqueue(task('big', 2));
  s.enqueue(task('small', 1));
  assert.deepEqual(dispatch(s, [w1, w2, w3]), [], 'small must not overtake big');
  assert.equal(s.queuedCount, 2);
  assert.equal(s.availableCpus, 1);
  s.onTaskDone(w1);
  const assigned = dispatch(s, [w1, w2, w3]);
  assert.deepEqual(taskIds(assigned), ['big'], 'big runs first; small waits for CPUs again');
  s.onTaskDone([w1, w2, w3].find((w) => w.load > 0) as Slot);
  assert.deepEqual(taskIds(dispatch(s, [w1, w2, w3])), ['small']);
});

test('a task is never pipelined onto a worker holding fewer CPUs than it needs', () => {
  const s = new Scheduler<Task, Slot>(4, 64);
  const [w1] = workers(1) as [Slot];
  s.enqueue(task('one', 1));
  s.enqueue(task('two', 2));
  assert.deepEqual(dispatch(s, [w1]), ['w1:one']);
  assert.equal(s.queuedCount, 1);
  s.onTaskDone(w1);
  assert.deepEqual(dispatch(s, [w1]), ['w1:two']);
  assert.equal(w1.reservedCpuUnits, 20000); // units of 1/10,000 CPU
});

test('pipelining: many queued tasks spread evenly over workers, up to the per-worker limit', () => {
  const s = new Scheduler<Task, Slot>(2, 4);
  const slots = workers(2);
  for (const t of tasks(20)) s.enqueue(t);
  const assigned = dispatch(s, slots);
  assert.deepEqual(perWorker(assigned), { w1: 4, w2: 4 });
  assert.equal(s.queuedCount, 12);
  assert.deepEqual(taskIds(assigned), ['t1', 't2', 't3', 't4', 't5', 't6', 't7', 't8']);
  // Pipelined tasks share the CPU their worker holds: 1 each, not 1 per task.
  assert.equal(s.availableCpus, 0);
  assert.deepEqual(dispatch(s, slots), [], 'workers at the limit get no more');
});

test('pipelining: below the limit, the queue is shared evenly', () => {
  const s = new Scheduler<Task, Slot>(4, 64);
  const slots = workers(4);
  for (const t of tasks(12)) s.enqueue(t);
  assert.deepEqual(perWorker(dispatch(s, slots)), { w1: 3, w2: 3, w3: 3, w4: 3 });
  assert.equal(s.queuedCount, 0);
});

test('pipelining: few tasks give one per worker', () => {
  const s = new Scheduler<Task, Slot>(4, 64);
  const slots = workers(4);
  for (const t of tasks(3)) s.enqueue(t);
  assert.deepEqual(dispatch(s, slots), ['w1:t1', 'w2:t2', 'w3:t3']);
  assert.equal(s.availableCpus, 1);
});

test('pipelining: a finished worker is refilled, least-loaded workers first', () => {
  const s = new Scheduler<Task, Slot>(2, 64);
  const [w1, w2] = workers(2) as [Slot, Slot];
  for (const t of tasks(2)) s.enqueue(t);
  assert.deepEqual(dispatch(s, [w1, w2]), ['w1:t1', 'w2:t2']);
  s.onTaskDone(w2);
  s.enqueue(task('t3'));
  assert.deepEqual(dispatch(s, [w1, w2]), ['w2:t3']);
});

test('maxInFlightPerWorker 1 disables pipelining', () => {
  const s = new Scheduler<Task, Slot>(2, 1);
  const slots = workers(2);
  for (const t of tasks(10)) s.enqueue(t);
  assert.deepEqual(perWorker(dispatch(s, slots)), { w1: 1, w2: 1 });
  assert.equal(s.queuedCount, 8);
});

test('workers that are not accepting get nothing', () => {
  const s = new Scheduler<Task, Slot>(4, 64);
  const [w1, w2] = workers(2) as [Slot, Slot];
  w1.accepting = false;
  for (const t of tasks(4)) s.enqueue(t);
  const assigned = dispatch(s, [w1, w2]);
  assert.deepEqual(perWorker(assigned), { w2: 4 });
  w2.accepting = false;
  s.enqueue(task('t5'));
  assert.deepEqual(dispatch(s, [w1, w2]), []);
  assert.equal(s.queuedCount, 1);
});

test('onBlocked frees the CPUs of a worker whose only task waits in get(), so more tasks dispatch', () => {
  const s = new Scheduler<Task, Slot>(1, 1);
  const [w1, w2] = workers(2) as [Slot, Slot];
  s.enqueue(task('parent'));
  s.enqueue(task('child'));
  assert.deepEqual(dispatch(s, [w1, w2]), ['w1:parent']);
  assert.deepEqual(dispatch(s, [w1, w2]), [], 'no CPU for the child yet');
  s.onBlocked(w1);
  assert.equal(s.availableCpus, 1);
  assert.equal(w1.load, 0);
  assert.deepEqual(taskIds(dispatch(s, [w1, w2])), ['child']);
  assert.equal(s.availableCpus, 0);
});

test("a waiting task's child goes to an idle worker rather than the waiting one's thread, when there is one", () => {
  const s = new Scheduler<Task, Slot>(2, 64);
  const [w1, w2] = workers(2) as [Slot, Slot];
  s.enqueue(task('parent'));
  assert.deepEqual(dispatch(s, [w1, w2]), ['w1:parent']);
  s.onBlocked(w1); // both have load 0 now
  s.enqueue(task('child'));
  assert.deepEqual(dispatch(s, [w1, w2]), ['w2:child']);
  // With no idle worker left, the waiting one's freed CPU is used on its own thread (there is no other).
  s.enqueue(task('second child'));
  assert.deepEqual(dispatch(s, [w1, w2]), ['w1:second child']);
  // Once it runs again, it is like any other worker.
  s.onTaskDone(w1);
  s.onUnblocked(w1);
  s.onTaskDone(w1);
  s.onTaskDone(w2);
  s.enqueue(task('later'));
  assert.deepEqual(dispatch(s, [w1, w2]), ['w1:later']);
});

test("avoidWaiting: a waiting task's thread gets no task, and dispatch says a worker is wanted when that kept a runnable head back", () => {
  const s = new Scheduler<Task, Slot>(1, 64);
  const [w1] = workers(1) as [Slot];
  s.enqueue(task('parent'));
  assert.deepEqual(dispatch(s, [w1]), ['w1:parent']);
  s.onBlocked(w1);
  s.enqueue(task('child'));
  const assigned: string[] = [];
  assert.equal(s.dispatch([w1], (w, t) => assigned.push(`${w.name}:${t.id}`), true), 1, 'a worker is wanted');
  assert.equal(assigned.length, 0, 'nothing went to the waiting thread');
  assert.equal(s.hasWaiting(w1), true);
  // A new worker takes it.
  const [, w2] = workers(2) as [Slot, Slot];
  assert.equal(s.dispatch([w1, w2], (w, t) => assigned.push(`${w.name}:${t.id}`), true), 0);
  assert.deepEqual(assigned, ['w2:child']);
  // No CPU free for the head (the child holds the one the parent lent): no worker is wanted.
  s.enqueue(task('third'));
  assert.equal(s.dispatch([w1, w2], () => assert.fail('nothing fits'), true), 0);
});

test('onBlocked keeps the CPUs while the worker has other runnable tasks', () => {
  const s = new Scheduler<Task, Slot>(1, 64);
  const [w1] = workers(1) as [Slot];
  for (const t of tasks(3)) s.enqueue(t);
  assert.equal(dispatch(s, [w1]).length, 3);
  s.onBlocked(w1);
  assert.equal(w1.load, 2);
  assert.equal(s.availableCpus, 0);
});

test('onUnblocked takes a CPU again, possibly oversubscribing', () => {
  const s = new Scheduler<Task, Slot>(1, 1);
  const [w1, w2] = workers(2) as [Slot, Slot];
  s.enqueue(task('parent'));
  s.enqueue(task('child'));
  assert.deepEqual(dispatch(s, [w1, w2]), ['w1:parent']);
  s.onBlocked(w1);
  assert.deepEqual(dispatch(s, [w2]), ['w2:child']);
  assert.equal(s.availableCpus, 0);
  s.onUnblocked(w1);
  assert.equal(w1.load, 1);
  assert.equal(w1.reservedCpuUnits, 10000); // units of 1/10,000 CPU
  assert.equal(s.availableCpus, -1);
  s.onTaskDone(w2);
  s.onTaskDone(w1);
  assert.equal(s.availableCpus, 1, 'every CPU comes back once all tasks are done');
});

test('onUnblocked on a worker that is still running other tasks takes no extra CPU', () => {
  const s = new Scheduler<Task, Slot>(1, 1);
  const [w1] = workers(1) as [Slot];
  s.enqueue(task('parent'));
  s.enqueue(task('child'));
  assert.deepEqual(dispatch(s, [w1]), ['w1:parent']);
  s.onBlocked(w1);
  assert.deepEqual(dispatch(s, [w1]), ['w1:child']);
  s.onUnblocked(w1);
  assert.equal(w1.load, 2);
  assert.equal(s.availableCpus, 0);
  s.onTaskDone(w1);
  s.onTaskDone(w1);
  assert.equal(s.availableCpus, 1);
});

test('onWorkerLost returns its CPUs and stops assigning to it', () => {
  const s = new Scheduler<Task, Slot>(2, 64);
  const [w1, w2] = workers(2) as [Slot, Slot];
  s.enqueue(task('a', 2));
  assert.deepEqual(dispatch(s, [w1, w2]), ['w1:a']);
  assert.equal(s.availableCpus, 0);
  s.onWorkerLost(w1);
  assert.equal(s.availableCpus, 2);
  assert.equal(w1.load, 0);
  assert.equal(w1.reservedCpuUnits, 0);
  assert.equal(w1.accepting, false);
  for (const t of tasks(3)) s.enqueue(t);
  assert.deepEqual(perWorker(dispatch(s, [w1, w2])), { w2: 3 });
});

test('onWorkerLost on a worker with many pipelined tasks frees its CPUs once', () => {
  const s = new Scheduler<Task, Slot>(1, 64);
  const [w1] = workers(1) as [Slot];
  for (const t of tasks(5)) s.enqueue(t);
  assert.equal(dispatch(s, [w1]).length, 5);
  s.onWorkerLost(w1);
  assert.equal(s.availableCpus, 1);
});

test('requeue puts tasks never queued here at the head, in the given order', () => {
  const s = new Scheduler<Task, Slot>(1, 64);
  const [t1, t2, t3, t4] = tasks(4) as [Task, Task, Task, Task];
  s.enqueue(t3);
  s.enqueue(t4);
  s.requeue([t1, t2]);
  assert.equal(s.queuedCount, 4);
  assert.deepEqual(taskIds(dispatch(s, workers(1))), ['t1', 't2', 't3', 't4']);
});

test('requeue after a worker died restores the original order ahead of later tasks', () => {
  const s = new Scheduler<Task, Slot>(1, 2);
  const [w1, w2] = workers(2) as [Slot, Slot];
  const all = tasks(6);
  for (const t of all) s.enqueue(t);
  const first = dispatch(s, [w1]);
  assert.deepEqual(first, ['w1:t1', 'w1:t2']);
  s.onWorkerLost(w1);
  s.requeue([all[1] as Task, all[0] as Task]); // in any order: submission order decides
  assert.equal(s.queuedCount, 6);
  assert.deepEqual(taskIds(dispatch(s, [w2])), ['t1', 't2']);
  s.onTaskDone(w2);
  s.onTaskDone(w2);
  assert.deepEqual(taskIds(dispatch(s, [w2])), ['t3', 't4']);
});

test('requeue: tasks of two lost workers interleave back in submission order', () => {
  const s = new Scheduler<Task, Slot>(2, 64);
  const [w1, w2, w3] = workers(3) as [Slot, Slot, Slot];
  const all = tasks(8);
  for (const t of all) s.enqueue(t);
  // Four each: w1 t1-t4, w2 t5-t8.
  assert.deepEqual(perWorker(dispatch(s, [w1, w2])), { w1: 4, w2: 4 });
  const pick = (ids: string[]) => all.filter((t) => ids.includes(t.id));
  s.onWorkerLost(w2);
  s.requeue(pick(['t5', 't6', 't7', 't8']));
  s.onWorkerLost(w1);
  s.requeue(pick(['t1', 't2', 't3', 't4']));
  assert.deepEqual(taskIds(dispatch(s, [w3])).slice(0, 8), ['t1', 't2', 't3', 't4', 't5', 't6', 't7', 't8']);
});

test('requeue: a task goes back behind queued tasks submitted before it, ahead of later ones', () => {
  const s = new Scheduler<Task, Slot>(1, 64);
  const [w1, w2] = workers(2) as [Slot, Slot];
  const [t1, t2, t3, t4] = tasks(4) as [Task, Task, Task, Task];
  s.enqueue(t2);
  assert.deepEqual(dispatch(s, [w1]), ['w1:t2']);
  s.enqueue(t1); // queued once more, behind (a retry after an exception keeps its first place)
  s.enqueue(t3);
  s.enqueue(t4);
  s.onWorkerLost(w1);
  s.requeue([t2]);
  assert.deepEqual(taskIds(dispatch(s, [w2])), ['t2', 't1', 't3', 't4']);
});

test('requeue with no tasks changes nothing', () => {
  const s = new Scheduler<Task, Slot>(1, 64);
  s.enqueue(task('t1'));
  s.requeue([]);
  assert.equal(s.queuedCount, 1);
});

test('a stopping worker gets no more tasks but keeps its CPUs until it is lost', () => {
  const s = new Scheduler<Task, Slot>(2, 64);
  const [w1, w2] = workers(2) as [Slot, Slot];
  for (const t of tasks(4)) s.enqueue(t);
  s.dispatch([w1], () => {});
  s.onWorkerStopping(w1);
  assert.deepEqual(dispatch(s, [w1]), []);
  assert.equal(s.availableCpus, 1);
  s.onWorkerLost(w1);
  assert.equal(s.availableCpus, 2);
  s.enqueue(task('t5'));
  assert.deepEqual(dispatch(s, [w1, w2]), ['w2:t5']);
});

test('a busy worker is refilled once half its depth has run, not after every result', () => {
  const s = new Scheduler<Task, Slot>(1, 8);
  const [w1] = workers(1) as [Slot];
  for (const t of tasks(40)) s.enqueue(t);
  assert.equal(dispatch(s, [w1]).length, 8);
  s.onTaskDone(w1);
  assert.deepEqual(dispatch(s, [w1]), [], 'seven still at hand: no refill yet');
  for (let i = 0; i < 3; i++) s.onTaskDone(w1);
  assert.equal(dispatch(s, [w1]).length, 4, 'four left: topped up to the depth');
});

test('remove takes a queued task out; false when it is not queued', () => {
  const s = new Scheduler<Task, Slot>(1, 64);
  const [t1, t2, t3] = tasks(3) as [Task, Task, Task];
  s.enqueue(t1);
  s.enqueue(t2);
  s.enqueue(t3);
  assert.equal(s.remove(t2), true);
  assert.equal(s.queuedCount, 2);
  assert.equal(s.remove(t2), false);
  assert.equal(s.remove(task('t2')), false, 'removal is by identity');
  assert.deepEqual(taskIds(dispatch(s, workers(1))), ['t1', 't3']);
});

test('remove returns false for a task that was already dispatched', () => {
  const s = new Scheduler<Task, Slot>(1, 1);
  const [t1, t2] = tasks(2) as [Task, Task];
  s.enqueue(t1);
  s.enqueue(t2);
  assert.deepEqual(dispatch(s, workers(1)), ['w1:t1']);
  assert.equal(s.remove(t1), false);
  assert.equal(s.queuedCount, 1);
  assert.equal(s.remove(t2), true);
  assert.equal(s.queuedCount, 0);
});

test('drain returns every queued task in order and empties the queue', () => {
  const s = new Scheduler<Task, Slot>(1, 1);
  for (const t of tasks(4)) s.enqueue(t);
  assert.deepEqual(dispatch(s, workers(1)), ['w1:t1']);
  assert.deepEqual(s.drain().map((t) => t.id), ['t2', 't3', 't4']);
  assert.equal(s.queuedCount, 0);
  assert.deepEqual(s.drain(), []);
});

test('isFeasible: a task fits when it needs at most the node total', () => {
  const s = new Scheduler<Task, Slot>(4, 64);
  assert.equal(s.isFeasible(task('a', 0)), true);
  assert.equal(s.isFeasible(task('b', 0.5)), true);
  assert.equal(s.isFeasible(task('c', 4)), true);
  assert.equal(s.isFeasible(task('d', 4.5)), false);
  assert.equal(s.isFeasible(task('e', 5)), false);
  // Feasibility is about the total, not what is free right now.
  s.enqueue(task('f', 4));
  dispatch(s, workers(1));
  assert.equal(s.availableCpus, 0);
  assert.equal(s.isFeasible(task('g', 4)), true);
});

test('zero-CPU tasks dispatch even when no CPU is free', () => {
  const s = new Scheduler<Task, Slot>(1, 1);
  const [w1, w2] = workers(2) as [Slot, Slot];
  s.enqueue(task('a', 1));
  s.enqueue(task('free', 0));
  assert.deepEqual(dispatch(s, [w1, w2]), ['w1:a', 'w2:free']);
  assert.equal(s.availableCpus, 0);
});

test('a long queue stays FIFO across many dispatch rounds', () => {
  const s = new Scheduler<Task, Slot>(2, 8);
  const slots = workers(2);
  const all = tasks(5000);
  for (const t of all) s.enqueue(t);
  const order: string[] = [];
  while (s.queuedCount > 0) {
    order.push(...taskIds(dispatch(s, slots)));
    for (const w of slots) while (w.load > 0) s.onTaskDone(w);
  }
  assert.deepEqual(order, all.map((t) => t.id));
  assert.equal(s.availableCpus, 2);
});

// Task options allow fractional CPUs (numCpus is a number >= 0). The module doc says a worker's CPUs
// "come back" when it has nothing runnable, so after every task is done the node must have its full
// total again and a task needing all of it must run. Float accumulation leaves 0.9999999999999999.
test('fractional CPUs all come back: a task needing every CPU runs after fractional tasks finish', () => {
  const s = new Scheduler<Task, Slot>(1, 1);
  const [w1, w2] = workers(2) as [Slot, Slot];
  s.enqueue(task('tenth', 0.1));
  s.enqueue(task('fifth', 0.2));
  s.enqueue(task('whole', 1));
  assert.deepEqual(dispatch(s, [w1, w2]), ['w1:tenth', 'w2:fifth']);
  s.onTaskDone(w2);
  s.onTaskDone(w1);
  assert.equal(s.availableCpus, 1);
  assert.deepEqual(taskIds(dispatch(s, [w1, w2])), ['whole']);
});
