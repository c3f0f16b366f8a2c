// Force-cancel against a fake node and fake workers, with the real pool: a worker terminated to
// cancel a task stays ref'd until its exit, even when the results of everything it had (the
// cancelled task's included: it may finish as it is stopped) reach the node first. The node acts
// on that exit (frees its CPUs, requeues its bystanders, starts its replacement), so the process
// must not be let go before it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TaskSpec } from '../protocol/index.js';
import { fakePooledWorker, threadlessPool } from '../worker-pool/fakes.js';
import { Cancellation } from './cancellation.js';
import type { NodeContext } from './context.js';
import type { TaskRecord, Worker } from './task-manager.js';

function setUp() {
  const pool = threadlessPool<TaskRecord>();
  const worker = fakePooledWorker<TaskRecord>();
  const records = new Map<string, TaskRecord>();
  const context = {
    objects: { get: (id: string) => (records.has(id) ? { producer: records.get(id), state: 'pending' } : undefined), all: () => [] },
    tasks: { failTask: () => {} },
    scheduler: { onWorkerStopping: (w: Worker) => (w.accepting = false) },
    dispatcher: { removeFromQueue: () => {} },
    actors: { callsOf: () => [] },
    cluster: undefined,
    pool,
  } as unknown as NodeContext;
  /** A task sent to the worker (not started until the worker's progress cell says so). */
  const sendTask = (name: string): TaskRecord => {
    const seq = worker.nextSeq++;
    const returnId = `${name}-return`;
    const record = {
      spec: { taskId: `${name}-task`, name, returnIds: [returnId] } as unknown as TaskSpec,
      state: 'running',
      cancelled: false,
      remote: false,
      worker,
      seq,
    } as unknown as TaskRecord;
    records.set(returnId, record);
    worker.inFlight.set(seq, record);
    pool.setBusy(worker, true); // as dispatch does
    return record;
  };
  /** What the node does with a worker's results (Node.onResults): the last one in makes it idle. */
  const resultsCome = (...done: TaskRecord[]): void => {
    for (const record of done) worker.inFlight.delete(record.seq);
    if (worker.inFlight.size === 0) pool.setBusy(worker, false);
  };
  return { cancellation: new Cancellation(context), worker, sendTask, resultsCome };
}

test("a worker terminated to cancel the task it runs stays ref'd until its exit, when that task's result comes in first", () => {
  const { cancellation, worker, sendTask, resultsCome } = setUp();
  const task = sendTask('spin');
  Atomics.store(worker.progress, 0, task.seq); // it runs
  cancellation.cancel(task.spec.returnIds[0] as string, true);
  assert.equal(worker.host.terminated, 1);
  assert.equal(worker.terminatedFor, 'cancel');
  resultsCome(task); // it finished as it was stopped: its result was on its way
  assert.equal(worker.host.refd, true, 'the exit the node acts on keeps the process alive');
});

test("a task force-cancelled before it started, then started: its worker, terminated then, stays ref'd until its exit", async () => {
  const { cancellation, worker, sendTask, resultsCome } = setUp();
  const running = sendTask('first');
  const cancelled = sendTask('second');
  Atomics.store(worker.progress, 0, running.seq);
  cancellation.cancel(cancelled.spec.returnIds[0] as string, true);
  assert.equal(worker.host.terminated, 0, 'not started: the worker is told, and the task watched');
  assert.deepEqual(worker.sent.map(({ message }) => message), [{ type: 'cancel', seqs: [cancelled.seq] }]);
  Atomics.store(worker.progress, 0, cancelled.seq); // it started before the cancel message came
  for (const deadline = Date.now() + 30_000; worker.host.terminated === 0; ) {
    assert.ok(Date.now() < deadline, 'the watch terminates the worker once the task has started');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  cancellation.stopWatchingForceCancel(cancelled);
  resultsCome(running, cancelled);
  assert.equal(worker.host.refd, true);
});
