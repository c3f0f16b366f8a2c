// Small task options and library utilities of issue 11: retryExceptions by error class (Ray's
// retry_exceptions=[...]), wait(fetchLocal), ActorPool's ignoreIfTimedout, Queue's batch methods
// and actorOptions.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ActorPool,
  GetTimeoutError,
  InvalidArgumentError,
  InvalidOptionError,
  Queue,
  QueueEmptyError,
  QueueFullError,
  TaskError,
  get,
  getActor,
  init,
  put,
  remote,
  shutdown,
  util,
  wait,
} from 'miniray';
import { DailyQuotaError, QuotaError, failFirstRuns, runsRecorded } from '../fixtures/task-options.js';
import { rejectsWith } from '../fixtures/assertions.js';

const T = { timeout: 60_000 };
let dir = '';
let files = 0;
const counterFile = (): string => join(dir, `runs-${files++}`);

before(async () => {
  await init({ numCpus: 2, numWorkers: 2 });
  dir = mkdtempSync(join(tmpdir(), 'miniray-task-options-'));
});

after(async () => {
  await shutdown();
  rmSync(dir, { recursive: true, force: true });
});

describe('retryExceptions with error classes', () => {
  test('test_retry_application_level_error_exception_filter: only errors of the listed classes are retried', T, async () => {
    const path = counterFile();
    const retried = failFirstRuns.options({ retryExceptions: [QuotaError], maxRetries: 3 });
    assert.equal(await get(retried.remote(path, 'quota', 2)), 3, 'succeeded on its third run');
    assert.equal(runsRecorded(path), 3);

    const other = counterFile();
    const error = await rejectsWith(get(retried.remote(other, 'type', 2)), TaskError, /TypeError: run 1 failed on purpose/);
    assert.ok(error.cause instanceof TypeError);
    assert.equal(runsRecorded(other), 1, 'a TypeError is not in the list: no retry');
  });

  test('a subclass of a listed class is retried (its prototype chain is matched), as isinstance in Ray', T, async () => {
    const path = counterFile();
    assert.equal(await get(failFirstRuns.options({ retryExceptions: [QuotaError], maxRetries: 2 }).remote(path, 'daily', 2)), 3);
    // The subclass alone does not cover its parent.
    const parent = counterFile();
    await rejectsWith(get(failFirstRuns.options({ retryExceptions: [DailyQuotaError], maxRetries: 2 }).remote(parent, 'quota', 1)), TaskError, /QuotaError/);
    assert.equal(runsRecorded(parent), 1);
  });

  test('names match built-in classes, and errors by their name', T, async () => {
    const typed = counterFile();
    assert.equal(await get(failFirstRuns.options({ retryExceptions: ['TypeError'], maxRetries: 1 }).remote(typed, 'type', 1)), 2);
    const named = counterFile();
    assert.equal(await get(failFirstRuns.options({ retryExceptions: [TypeError, 'RateLimited'], maxRetries: 2 }).remote(named, 'named', 2)), 3);
    // Error covers every error (all inherit from it).
    const any = counterFile();
    assert.equal(await get(failFirstRuns.options({ retryExceptions: [Error], maxRetries: 1 }).remote(any, 'quota', 1)), 2);
  });

  test('retries stop at maxRetries with the last error', T, async () => {
    const path = counterFile();
    await rejectsWith(get(failFirstRuns.options({ retryExceptions: [QuotaError], maxRetries: 2 }).remote(path, 'quota', 100)), TaskError, /run 3 failed/);
    assert.equal(runsRecorded(path), 3, '1 run + 2 retries');
  });

  test('the list travels with a remote function given to a task', T, async () => {
    const path = counterFile();
    const retried = failFirstRuns.options({ retryExceptions: [QuotaError], maxRetries: 2 });
    const submit = remote((fn: typeof retried, file: string) => fn.remote(file, 'quota', 1));
    const inner = await get(submit.remote(retried, path));
    assert.equal(await get(inner), 2);
  });

  test('bad lists are refused with InvalidOptionError', T, () => {
    assert.throws(() => failFirstRuns.options({ retryExceptions: [] }), InvalidOptionError);
    // @ts-expect-error: a number is not an error class
    assert.throws(() => failFirstRuns.options({ retryExceptions: [5] }), InvalidOptionError);
    class NotAnError {}
    // @ts-expect-error: not a subclass of Error
    assert.throws(() => failFirstRuns.options({ retryExceptions: [NotAnError] }), /item 0/);
    assert.throws(() => failFirstRuns.options({ retryExceptions: [''] }), InvalidOptionError);
  });
});

describe('wait(fetchLocal)', () => {
  test('test_wait_fetch_local: both settings report ready refs; on one node every copy is local', T, async () => {
    const slow = remote((x: number) => x + 1);
    const refs = [slow.remote(1), put(5)];
    const local = await wait(refs, { numReturns: 2, fetchLocal: true });
    assert.deepEqual(local.ready, refs);
    const anywhere = await wait(refs, { numReturns: 2, fetchLocal: false });
    assert.deepEqual(anywhere.ready, refs);
    assert.deepEqual(await get(refs), [2, 5]);
    // From inside a task too (the worker sends fetchLocal to its node).
    const inTask = remote(async (inner: { ref: unknown }, fetchLocal: boolean) => {
      const { wait: waitIn } = await import('miniray');
      return (await waitIn([inner.ref as never], { fetchLocal })).ready.length;
    });
    assert.equal(await get(inTask.remote({ ref: refs[0] }, false)), 1);
    assert.equal(await get(inTask.remote({ ref: refs[0] }, true)), 1);
    // @ts-expect-error: fetchLocal is a boolean
    await assert.rejects(wait(refs, { fetchLocal: 'yes' }), InvalidOptionError);
  });
});

class Sleeper {
  async nap(gate: Queue<string> | null, value: number): Promise<number> {
    if (gate !== null) await gate.get();
    return value;
  }
}

describe('ActorPool timeouts', () => {
  test('test_get_next_timeout / ignore_if_timedout: the timed-out item is dropped and the next one is returned', T, async () => {
    const SleeperActor = remote(Sleeper);
    const pool = new ActorPool([SleeperActor.remote(), SleeperActor.remote()]);
    assert.equal(util.ActorPool, ActorPool);
    const gate = new Queue<string>();
    pool.submit((a, v: number) => a.nap.remote(gate, v), 1);
    pool.submit((a, v: number) => a.nap.remote(null, v), 2);
    await rejectsWith(pool.getNext({ timeoutMs: 50 }), GetTimeoutError);
    assert.equal(pool.hasNext(), true, 'without ignoreIfTimedout the item stays next');
    await rejectsWith(pool.getNext({ timeoutMs: 50, ignoreIfTimedout: true }), GetTimeoutError, /dropped/);
    assert.equal(await pool.getNext(), 2);
    assert.equal(pool.hasNext(), false);
    // The dropped item's actor is busy until it finishes, then free again.
    await gate.put('go');
    pool.submit((a, v: number) => a.nap.remote(null, v), 3);
    pool.submit((a, v: number) => a.nap.remote(null, v), 4);
    assert.deepEqual([await pool.getNext(), await pool.getNext()], [3, 4]);
  });

  test('test_get_next_unordered_timeout: ignoreIfTimedout drops the oldest pending item', T, async () => {
    const SleeperActor = remote(Sleeper);
    const pool = new ActorPool([SleeperActor.remote(), SleeperActor.remote()]);
    const gate = new Queue<string>();
    pool.submit((a, v: number) => a.nap.remote(gate, v), 1);
    pool.submit((a, v: number) => a.nap.remote(gate, v), 2);
    // @ts-expect-error: ignoreIfTimedout is a boolean
    await assert.rejects(pool.getNextUnordered({ ignoreIfTimedout: 1 }), InvalidOptionError);
    await rejectsWith(pool.getNextUnordered({ timeoutMs: 50 }), GetTimeoutError);
    await rejectsWith(pool.getNextUnordered({ timeoutMs: 50, ignoreIfTimedout: true }), GetTimeoutError, /dropped/);
    await gate.putNowaitBatch(['go', 'go']);
    assert.equal(await pool.getNextUnordered(), 2);
    assert.equal(pool.hasNext(), false);
  });
});

describe('Queue batches and actorOptions', () => {
  test('test_batch: putNowaitBatch and getNowaitBatch are all or nothing', T, async () => {
    const queue = new Queue<number>({ maxsize: 3 });
    assert.equal(util.Queue, Queue);
    await queue.putNowaitBatch([1, 2]);
    await rejectsWith(queue.putNowaitBatch([3, 4]), QueueFullError, /cannot add 2 items/);
    assert.equal(await queue.size(), 2, 'nothing of a batch that does not fit is added');
    await rejectsWith(queue.getNowaitBatch(3), QueueEmptyError, /cannot get 3 items/);
    assert.deepEqual(await queue.getNowaitBatch(2), [1, 2]);
    assert.deepEqual(await queue.getNowaitBatch(0), []);
    await assert.rejects(queue.getNowaitBatch(-1), InvalidArgumentError);
    await assert.rejects(queue.putNowaitBatch(5 as never), InvalidArgumentError);
    // A waiting get takes a batch's first item at once.
    const waiting = queue.get();
    await queue.putNowaitBatch([7, 8]);
    assert.equal(await waiting, 7);
    assert.deepEqual(await queue.getNowaitBatch(1), [8]);
    // A getNowaitBatch makes room for a blocked put.
    await queue.putNowaitBatch([1, 2, 3]);
    const blocked = queue.put(4);
    assert.deepEqual(await queue.getNowaitBatch(2), [1, 2]);
    await blocked;
    assert.deepEqual(await queue.getNowaitBatch(2), [3, 4]);
    queue.shutdown();
  });

  test('test_custom_resources / actor_options: the queue actor takes the options given', T, async () => {
    const queue = new Queue<string>({ actorOptions: { name: 'jobs-queue', isolation: 'thread' } });
    await queue.put('a');
    const actor = await getActor('jobs-queue');
    assert.ok(actor);
    assert.equal(await queue.get(), 'a');
    queue.shutdown();
    assert.throws(() => new Queue({ actorOptions: { numCpus: -1 } }), InvalidOptionError);
    assert.throws(() => new Queue({ actorOptions: 5 as never }), InvalidOptionError);
  });
});
