// The pool's keep-alive rule against fake workers (no threads): a worker is ref'd while it has work,
// and one the pool ends stays ref'd until its exit, since the node acts on that exit (requeues
// tasks, restarts actors and sends their queued calls on) and a get() may wait for it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fakePooledWorker as fakeWorker, threadlessPool as newPool } from './fakes.js';

test('setBusy: a worker keeps the process alive while it has work, and lets it exit when idle', () => {
  const pool = newPool();
  const worker = fakeWorker();
  pool.setBusy(worker, false);
  assert.equal(worker.host.refd, false);
  pool.setBusy(worker, true);
  assert.equal(worker.host.refd, true);
  pool.setBusy(worker, false);
  assert.equal(worker.host.refd, false);
});

for (const reason of ['cancel', 'shutdown', 'actor'] as const) {
  test(`kill(worker, '${reason}'): the worker stays ref'd until its exit, even when the results of all it had come in first`, () => {
    const pool = newPool();
    const worker = fakeWorker({ role: reason === 'actor' ? 'actor' : 'task' });
    pool.setBusy(worker, false); // idle when it is killed
    pool.kill(worker, reason);
    assert.equal(worker.host.terminated, 1);
    assert.equal(worker.terminatedFor, reason);
    assert.equal(worker.host.refd, true, 'terminating an idle worker waits for its exit');
    pool.setBusy(worker, false); // its last results, before its exit
    assert.equal(worker.host.refd, true);
  });
}

test("endAsCrashed: the worker stays ref'd until its exit, which counts as a crash (no terminatedFor)", () => {
  const pool = newPool();
  const worker = fakeWorker({ role: 'actor' });
  pool.setBusy(worker, false);
  pool.endAsCrashed(worker);
  assert.equal(worker.host.terminated, 1);
  assert.equal(worker.terminatedFor, undefined, 'its tasks are retried and its actors restarted as after a crash');
  assert.equal(worker.host.refd, true);
  pool.setBusy(worker, false);
  assert.equal(worker.host.refd, true);
});

test('a worker being ended that reports ready stays ref\'d (the pool makes a ready worker idle)', () => {
  const pool = newPool();
  const worker = fakeWorker({ role: 'actor' });
  worker.accepting = false;
  pool.kill(worker, 'actor'); // while it starts
  pool.setBusy(worker, worker.inFlight.size > 0); // what the pool does on its 'ready'
  assert.equal(worker.host.refd, true);
});

test('a worker that is gone is neither ref\'d nor unref\'d', () => {
  const pool = newPool();
  const worker = fakeWorker();
  pool.setBusy(worker, false);
  worker.alive = false;
  pool.setBusy(worker, true);
  assert.equal(worker.host.refd, false);
});
