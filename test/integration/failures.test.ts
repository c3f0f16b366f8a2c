// Failures: task exceptions, crashed workers, out of memory, retries, timeouts. After each
// failure the pool must still run tasks on all of its workers.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  GetTimeoutError,
  MinirayError,
  ObjectRef,
  ObjectStoreFullError,
  OutOfMemoryError,
  TaskError,
  WorkerCrashedError,
  cancel,
  get,
  init,
  remote,
  put,
  shutdown,
  state,
} from 'miniray';
import { Gate, meet, waitForGate } from '../fixtures/coordination.js';
import {
  exhaustHeap,
  validateViaChild,
  exitEveryTime,
  exitUntilRun,
  parentAndChildThreads,
  parentOfCrashingChild,
  runsRecorded,
  throwUntilRun,
  validateQuantity,
} from '../fixtures/failing.js';

const add = remote((a: number, b: number) => a + b);

let dir: string;
const counterFile = () => join(dir, `${randomUUID()}.runs`);

/** The pool still runs tasks: a batch of them all complete with the right results. */
async function assertPoolWorks(): Promise<void> {
  const refs = Array.from({ length: 20 }, (_, i) => add.remote(i, 1));
  assert.deepEqual(await get(refs, { timeoutMs: 20_000 }), Array.from({ length: 20 }, (_, i) => i + 1));
}

/**
 * Both workers of the 2-worker pool run tasks at the same time. On failure, the two tasks are
 * force-cancelled so that they do not hold a worker for the tests that follow.
 */
async function assertBothWorkersRunInParallel(): Promise<void> {
  const channel = `meet-${randomUUID()}`;
  const refs = [meet.remote(channel, 2), meet.remote(channel, 2)];
  try {
    const workers = await get(refs, { timeoutMs: 5_000 });
    assert.equal(new Set(workers).size, 2);
  } catch (error) {
    for (const ref of refs) cancel(ref, { force: true });
    throw error;
  }
}

describe('task errors', () => {
  before(async () => {
    await init({ numWorkers: 2 });
    dir = mkdtempSync(join(tmpdir(), 'miniray-failures-'));
  });
  after(async () => {
    await shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a throwing task fails with TaskError; the original error is its cause', async () => {
    const ref = validateQuantity.remote(-5);
    await assert.rejects(get(ref), (error: unknown) => {
      assert.ok(error instanceof TaskError);
      assert.ok(error instanceof MinirayError);
      assert.ok(error instanceof Error);
      assert.equal(error.name, 'TaskError');
      assert.match(error.message, /quantity must be >= 0, got -5/);
      assert.match(error.message, /validateQuantity/);
      assert.equal(error.functionName, 'validateQuantity');
      const cause = error.cause as Error & { code?: string };
      assert.ok(cause instanceof Error);
      assert.equal(cause.name, 'ValidationError');
      assert.equal(cause.message, 'quantity must be >= 0, got -5');
      assert.equal(cause.code, 'E_NEGATIVE');
      // The remote stack: where it was thrown, in the worker.
      assert.match(cause.stack ?? '', /validateQuantity/);
      assert.match(cause.stack ?? '', /failing\.ts/);
      assert.equal(error.remoteStack, cause.stack);
      assert.match(error.stack ?? '', /^TaskError: /);
      assert.match(error.stack ?? '', /failing\.ts/);
      return true;
    });
  });

  test('built-in error classes are rebuilt as themselves', async () => {
    const parse = remote((text: string) => JSON.parse(text) as unknown);
    const badRange = remote((n: number) => new Array(n));
    await assert.rejects(get(parse.remote('{nope')), (error: unknown) => {
      assert.ok(error instanceof TaskError);
      assert.ok(error.cause instanceof SyntaxError);
      assert.match(error.message, /SyntaxError/);
      return true;
    });
    await assert.rejects(get(badRange.remote(-1)), (error: unknown) => {
      assert.ok(error instanceof TaskError);
      assert.ok(error.cause instanceof RangeError);
      assert.equal((error.cause as Error).message, 'Invalid array length');
      return true;
    });
  });

  test('a rejected promise and a thrown non-Error fail with TaskError too', async () => {
    const rejects = remote(async (): Promise<number> => {
      await Promise.resolve();
      throw new TypeError('async failure');
    });
    const throwsString = remote((): number => {
      throw 'just a string';
    });
    await assert.rejects(get(rejects.remote()), (error: unknown) => {
      assert.ok(error instanceof TaskError);
      assert.ok(error.cause instanceof TypeError);
      assert.match(error.message, /async failure/);
      return true;
    });
    await assert.rejects(get(throwsString.remote()), (error: unknown) => {
      assert.ok(error instanceof TaskError);
      assert.match(error.message, /just a string/);
      return true;
    });
  });

  test('a task whose input failed fails with the same TaskError', async () => {
    const failed = validateQuantity.remote(-1);
    const original = await get(failed).then(
      () => assert.fail('expected a failure'),
      (error: unknown) => error as TaskError,
    );
    // Submitted after the failure, and before it (still waiting on the input).
    const pendingInput = validateQuantity.remote(-1);
    const dependents = [add.remote(failed, 1), add.remote(add.remote(failed, 1), 2)];
    const downstreamOfPending = add.remote(pendingInput, 1);
    for (const ref of dependents) {
      await assert.rejects(get(ref), (error: unknown) => {
        assert.ok(error instanceof TaskError);
        assert.equal(error.message, original.message);
        assert.equal(error.taskId, original.taskId);
        assert.equal(error.functionName, 'validateQuantity');
        assert.equal((error.cause as Error).name, 'ValidationError');
        return true;
      });
    }
    const [direct, downstream] = await Promise.allSettled([get(pendingInput), get(downstreamOfPending)]);
    assert.equal(direct.status, 'rejected');
    assert.equal(downstream.status, 'rejected');
    const directError = (direct as PromiseRejectedResult).reason as TaskError;
    const downstreamError = (downstream as PromiseRejectedResult).reason as TaskError;
    assert.ok(downstreamError instanceof TaskError);
    assert.equal(downstreamError.taskId, directError.taskId);
    assert.equal(downstreamError.message, directError.message);
  });

  test('an error from a nested task arrives as a TaskError caused by the nested TaskError', async () => {
    const ref = validateViaChild.remote(-7);
    await assert.rejects(get(ref), (error: unknown) => {
      assert.ok(error instanceof TaskError);
      assert.equal(error.functionName, 'validateViaChild');
      const inner = error.cause;
      assert.ok(inner instanceof TaskError, `cause is ${String(inner)}`);
      assert.equal(inner.functionName, 'validateQuantity');
      assert.equal((inner.cause as Error).name, 'ValidationError');
      assert.match(error.message, /got -7/);
      return true;
    });
  });

  test('miniray errors thrown inside a task keep their class across threads', async () => {
    const gate = new Gate();
    try {
      const pending = waitForGate.remote(gate.name, 'late');
      const impatient = remote(async (refs: ObjectRef<string>[]) => {
        const { get: getInWorker } = await import('miniray');
        return getInWorker(refs, { timeoutMs: 20 });
      });
      await assert.rejects(get(impatient.remote([pending])), (error: unknown) => {
        assert.ok(error instanceof TaskError);
        assert.ok(error.cause instanceof GetTimeoutError, `cause is ${String(error.cause)}`);
        assert.ok(error.cause instanceof MinirayError);
        return true;
      });
    } finally {
      gate.open();
      gate.close();
    }
  });

  test('get of several refs rejects with the error of a failed one', async () => {
    await assert.rejects(get([add.remote(1, 1), validateQuantity.remote(-3)]), /got -3/);
  });

  test('the pool carries on after task errors, on both workers', async () => {
    await assertPoolWorks();
    await assertBothWorkersRunInParallel();
  });

  test('retryExceptions: true retries a throwing task until it succeeds', async () => {
    const path = counterFile();
    const run = await get(throwUntilRun.options({ retryExceptions: true, maxRetries: 3 }).remote(path, 3));
    assert.equal(run, 3, 'succeeded on its third run');
    assert.equal(runsRecorded(path), 3);
  });

  test('retryExceptions: true gives up after maxRetries retries with the last TaskError', async () => {
    const path = counterFile();
    const ref = throwUntilRun.options({ retryExceptions: true, maxRetries: 2 }).remote(path, 100);
    await assert.rejects(get(ref), (error: unknown) => {
      assert.ok(error instanceof TaskError);
      assert.match(error.message, /run 3 failed on purpose/);
      return true;
    });
    assert.equal(runsRecorded(path), 3, '1 run + 2 retries');
  });

  test('without retryExceptions a throwing task runs once', async () => {
    const path = counterFile();
    await assert.rejects(get(throwUntilRun.remote(path, 2)), TaskError);
    assert.equal(runsRecorded(path), 1);
  });
});

describe('crashed workers', () => {
  before(async () => {
    await init({ numWorkers: 2 });
    dir = mkdtempSync(join(tmpdir(), 'miniray-crashes-'));
  });
  after(async () => {
    await shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  test('process.exit in a task: retried up to maxRetries, then WorkerCrashedError', async () => {
    const path = counterFile();
    const ref = exitEveryTime.options({ maxRetries: 2 }).remote(path);
    await assert.rejects(get(ref, { timeoutMs: 30_000 }), (error: unknown) => {
      assert.ok(error instanceof WorkerCrashedError, `got ${String(error)}`);
      assert.ok(!(error instanceof OutOfMemoryError));
      assert.match(error.message, /exitEveryTime|anonymous/);
      assert.match(error.message, /ran 3 times/);
      return true;
    });
    assert.equal(runsRecorded(path), 3, '1 run + 2 retries');
    await assertPoolWorks();
  });

  test('after a crash the replacement worker takes tasks: two tasks run at the same time again', async () => {
    const path = counterFile();
    await assert.rejects(get(exitEveryTime.options({ maxRetries: 0 }).remote(path), { timeoutMs: 30_000 }), WorkerCrashedError);
    await assertBothWorkersRunInParallel();
  });

  test('maxRetries defaults to 3, as in Ray', async () => {
    const path = counterFile();
    await assert.rejects(get(exitEveryTime.remote(path), { timeoutMs: 30_000 }), WorkerCrashedError);
    assert.equal(runsRecorded(path), 4, '1 run + 3 retries');
  });

  test('maxRetries: 0 fails on the first crash', async () => {
    const path = counterFile();
    await assert.rejects(get(exitEveryTime.options({ maxRetries: 0 }).remote(path), { timeoutMs: 30_000 }), WorkerCrashedError);
    assert.equal(runsRecorded(path), 1);
  });

  test('a crashed task that succeeds on a retry gives its result', async () => {
    const path = counterFile();
    assert.equal(await get(exitUntilRun.remote(path, 2), { timeoutMs: 30_000 }), 2);
    assert.equal(runsRecorded(path), 2);
  });

  test("a child that crashes its worker does not take its waiting parent down: with a worker free, it runs in that one's thread", async () => {
    await assertBothWorkersRunInParallel(); // both threads are up (earlier tests crashed some)
    assert.equal(await get(parentOfCrashingChild.remote(counterFile()), { timeoutMs: 30_000 }), 'WorkerCrashedError');
  });

  test('other tasks are not lost when a worker crashes', async () => {
    const path = counterFile();
    const crash = exitEveryTime.options({ maxRetries: 0 }).remote(path);
    const others = Array.from({ length: 50 }, (_, i) => add.remote(i, 1));
    await assert.rejects(get(crash, { timeoutMs: 30_000 }), WorkerCrashedError);
    assert.deepEqual(await get(others, { timeoutMs: 30_000 }), Array.from({ length: 50 }, (_, i) => i + 1));
    await assertPoolWorks();
  });
});

describe('a task whose parent waits in get(), with no other thread free, and MINIRAY_MAX_EXTRA_WORKERS set', () => {
  before(async () => {
    process.env['MINIRAY_MAX_EXTRA_WORKERS'] = '4'; // read by init()
    await init({ numWorkers: 1 });
    delete process.env['MINIRAY_MAX_EXTRA_WORKERS'];
    dir = mkdtempSync(join(tmpdir(), 'miniray-extra-workers-'));
  });
  after(async () => {
    await shutdown();
    rmSync(dir, { recursive: true, force: true });
  });
  const taskThreads = async (): Promise<number> => (await state.listWorkers()).filter((w) => w.workerType === 'task' && w.isAlive).length;

  test("runs in a thread started for it, not in its parent's, and that thread ends once idle", async () => {
    assert.equal(await taskThreads(), 1);
    const { parent, child } = await get(parentAndChildThreads.remote(), { timeoutMs: 30_000 });
    assert.notEqual(child, parent, "the child ran in its waiting parent's thread");
    assert.equal(await taskThreads(), 2, 'one thread was started for the child');
    const deadline = Date.now() + 20_000;
    while ((await taskThreads()) > 1) {
      assert.ok(Date.now() < deadline, 'the extra thread was still there 20 s after its task');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(await get(add.remote(1, 2)), 3, 'the pool works on');
  });

  test('a child that crashes its thread leaves its waiting parent alive', async () => {
    assert.equal(await get(parentOfCrashingChild.remote(counterFile()), { timeoutMs: 30_000 }), 'WorkerCrashedError');
    assert.equal(await get(add.remote(2, 3)), 5);
  });
});

describe('out of memory', () => {
  before(async () => {
    await init({ numWorkers: 2, workerHeapLimitMb: 64 });
    dir = mkdtempSync(join(tmpdir(), 'miniray-oom-'));
  });
  after(async () => {
    await shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a task that exceeds the worker heap limit fails with OutOfMemoryError', async () => {
    const path = counterFile();
    await assert.rejects(get(exhaustHeap.options({ maxRetries: 1 }).remote(path), { timeoutMs: 30_000 }), (error: unknown) => {
      assert.ok(error instanceof OutOfMemoryError, `got ${String(error)}`);
      assert.ok(error instanceof WorkerCrashedError);
      assert.match(error.message, /out of memory/);
      return true;
    });
    assert.equal(runsRecorded(path), 2, '1 run + 1 retry');
    await assertPoolWorks();
  });
});

describe('a full object store', () => {
  before(() => init({ numWorkers: 2, objectStoreMemory: 100_000 }));
  after(() => shutdown());

  test('put() of a value that does not fit throws ObjectStoreFullError', () => {
    assert.throws(() => put(new Uint8Array(200_000)), (error: unknown) => {
      assert.ok(error instanceof ObjectStoreFullError);
      assert.match(error.message, /objectStoreMemory/);
      return true;
    });
  });

  test('a task result that does not fit fails at get with ObjectStoreFullError; the pool carries on', async () => {
    const makeBig = remote((n: number) => new Uint8Array(n));
    await assert.rejects(get(makeBig.remote(200_000)), ObjectStoreFullError);
    assert.equal((await get(makeBig.remote(10))).length, 10);
  });
});
