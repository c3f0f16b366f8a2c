// Tasks on real worker threads: arguments, nesting, tasks that submit tasks, multiple returns,
// async functions, and where tasks run.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism, tmpdir } from 'node:os';
import { after, afterEach, before, describe, test } from 'node:test';
import { ObjectRef, TaskError, cancel, get, getRuntimeContext, init, isInitialized, put, remote, shutdown, wait } from 'miniray';
import { meet } from '../fixtures/coordination.js';
import { fib } from '../fixtures/recursive.js';
import { inspectNested, putFromWorker, readText, sumOfSquares, whereAmI } from '../fixtures/tasks.js';

const add = remote((a: number, b: number) => a + b);

describe('tasks', () => {
  let dir: string;
  before(async () => {
    await init({ numWorkers: 2 });
    dir = mkdtempSync(join(tmpdir(), 'miniray-tasks-'));
  });
  after(async () => {
    await shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  test('.remote() returns an ObjectRef at once; get gives the result', async () => {
    const ref = add.remote(2, 40);
    assert.ok(ref instanceof ObjectRef);
    assert.match(String(ref), /^ObjectRef\([0-9a-f]{32}\)$/);
    assert.equal(await get(ref), 42);
  });

  test('refs given as arguments are resolved to their values before the task runs', async () => {
    const describeArg = remote((value: unknown) => ({ type: typeof value, value }));
    const computed = add.remote(1, 2);
    assert.deepEqual(await get(describeArg.remote(computed)), { type: 'number', value: 3 });
    assert.deepEqual(await get(describeArg.remote(put('stored'))), { type: 'string', value: 'stored' });
    // A chain: each task waits for the one before it.
    let ref = add.remote(0, 1);
    for (let i = 0; i < 10; i++) ref = add.remote(ref, 1);
    assert.equal(await get(ref), 11);
    assert.equal(await get(add.remote(add.remote(1, 1), add.remote(2, 2))), 6);
  });

  test('refs nested inside argument values stay ObjectRefs', async () => {
    const inner = add.remote(20, 22);
    const result = await get(inspectNested.remote({ label: 'box', inner }));
    assert.deepEqual(result, { label: 'box', isRef: true, hex: inner.id.toHex(), value: 42 });

    const echo = remote((value: { refs: ObjectRef<number>[] }) => value);
    const echoed = await get(echo.remote({ refs: [inner, put(7)] }));
    assert.ok(echoed.refs.every((ref) => ref instanceof ObjectRef));
    assert.ok(echoed.refs[0]?.id.equals(inner.id));
    assert.deepEqual(await get(echoed.refs), [42, 7]);
  });

  test('a task can submit tasks and get their results', async () => {
    assert.equal(await get(sumOfSquares.remote(10)), 285);
    // The same from a function shipped as source: it imports the API inside its body.
    const nested = remote(async (n: number) => {
      const { remote: remoteInWorker, get: getInWorker } = await import('miniray');
      const double = remoteInWorker((x: number) => x * 2);
      return getInWorker(double.remote(n));
    });
    assert.equal(await get(nested.remote(21)), 42);
  });

  test('recursive fib(12) on 2 workers completes (every worker awaiting a child does not deadlock)', async () => {
    assert.equal(await get(fib.remote(12), { timeoutMs: 30_000 }), 144);
  });

  test('module functions keep their module imports', async () => {
    const path = join(dir, 'text.txt');
    writeFileSync(path, 'from a file');
    assert.equal(await get(readText.remote(path)), 'from a file');
  });

  test('numReturns: n gives n refs, one per returned element', async () => {
    const split = remote((text: string): [string, number] => [text.toUpperCase(), text.length]).options({ numReturns: 2 });
    const refs = split.remote('hello');
    assert.ok(Array.isArray(refs));
    assert.equal(refs.length, 2);
    const [upper, length] = refs;
    assert.ok(upper instanceof ObjectRef && length instanceof ObjectRef);
    assert.equal(await get(upper), 'HELLO');
    assert.equal(await get(length), 5);
    assert.deepEqual(await get(refs), ['HELLO', 5]);

    const three = remote(async (n: number) => [n, n + 1, n + 2]).options({ numReturns: 3 });
    assert.deepEqual(await get(three.remote(1)), [1, 2, 3]);
    // A single return ref can be fed to another task.
    assert.equal(await get(add.remote(length, 1)), 6);
  });

  test('.options() returns a copy and leaves the original alone', async () => {
    const pair = remote(() => [1, 2]);
    const split = pair.options({ numReturns: 2 });
    assert.deepEqual(await get(pair.remote()), [1, 2]);
    assert.deepEqual(await get(split.remote()), [1, 2]);
    assert.ok(pair.remote() instanceof ObjectRef);
    assert.ok(Array.isArray(split.remote()));
    const single = split.options({ numReturns: 1 });
    assert.ok(single.remote() instanceof ObjectRef);
  });

  test('numReturns with a return value of the wrong length fails at get, naming the problem', async () => {
    const wrong = remote(() => [1, 2, 3]).options({ numReturns: 2 });
    const [first] = wrong.remote();
    await assert.rejects(get(first as ObjectRef<number>), (error: Error) => {
      assert.ok(error instanceof TaskError);
      assert.match(error.message, /numReturns: 2[^]*array of 3/);
      return true;
    });
  });

  test('async functions: the promise is unwrapped', async () => {
    const slowDouble = remote(async (x: number) => {
      await new Promise((resolve) => setImmediate(resolve));
      return x * 2;
    });
    const ref = slowDouble.remote(21);
    const value = await get(ref);
    assert.equal(value, 42);
    assert.equal(typeof value, 'number');
  });

  test("await import('node:fs') works inside a shipped function body", async () => {
    const path = join(dir, 'shipped.txt');
    writeFileSync(path, 'read in a worker');
    const read = remote(async (file: string) => {
      const fs = await import('node:fs');
      return fs.readFileSync(file, 'utf8');
    });
    assert.equal(await get(read.remote(path)), 'read in a worker');
  });

  test('globals (Math, JSON, console, setTimeout, structuredClone) are usable in shipped functions', async () => {
    const useGlobals = remote(
      (x: number) =>
        new Promise<string>((resolve) => {
          setTimeout(() => resolve(JSON.stringify({ root: Math.sqrt(x), copy: structuredClone([x]) })), 0);
        }),
    );
    assert.equal(await get(useGlobals.remote(16)), '{"root":4,"copy":[16]}');
  });

  test('many small tasks all complete with the right results', async () => {
    const refs = Array.from({ length: 2000 }, (_, i) => add.remote(i, i));
    const values = await get(refs);
    assert.deepEqual(values, Array.from({ length: 2000 }, (_, i) => 2 * i));
  });

  test('put inside a task returns a ref the driver can get', async () => {
    const inner = await get(putFromWorker.remote('made in a worker'));
    assert.ok(inner instanceof ObjectRef);
    assert.equal(await get(inner), 'made in a worker');
  });
});

describe('getRuntimeContext', () => {
  before(() => init({ numWorkers: 2 }));
  after(() => shutdown());

  test('the driver and the tasks know where they run', async () => {
    const driver = getRuntimeContext();
    assert.equal(driver.isDriver, true);
    const inTask = await get(whereAmI.remote());
    assert.equal(inTask.isDriver, false);
    assert.equal(inTask.nodeId, driver.nodeId);
    assert.notEqual(inTask.workerId, driver.workerId);
    assert.match(inTask.workerId, /^[0-9a-f]{32}$/);
  });

  test('two tasks run at the same time on the two workers', async () => {
    // Each task returns only once both are running, so this completes only if they run in parallel.
    const channel = `meet-${randomUUID()}`;
    const workers = await get([meet.remote(channel, 2), meet.remote(channel, 2)], { timeoutMs: 20_000 });
    assert.equal(new Set(workers).size, 2, `both tasks ran on worker ${workers[0]}`);
    const driver = getRuntimeContext();
    assert.ok(!workers.includes(driver.workerId));
  });
});

describe('the embedded default: .remote() before init()', () => {
  afterEach(() => shutdown());

  test('starts miniray with the defaults and runs the task', async () => {
    assert.equal(isInitialized(), false);
    const ref = add.remote(1, 2);
    assert.equal(isInitialized(), true);
    assert.equal(await get(ref), 3);
  });

  test(
    'tasks submitted while the workers start are spread over all of them',
    { skip: availableParallelism() < 2 ? 'needs at least 2 CPUs (the default starts one worker per CPU)' : false },
    async () => {
      assert.equal(isInitialized(), false);
      const channel = `meet-${randomUUID()}`;
      const refs = [meet.remote(channel, 2), meet.remote(channel, 2)];
      try {
        const workers = await get(refs, { timeoutMs: 10_000 });
        assert.equal(new Set(workers).size, 2);
      } catch (error) {
        for (const ref of refs) cancel(ref, { force: true });
        throw error;
      }
    },
  );
});

/**
 * Spins (synchronously, blocking its thread's event loop) until the file at `path` exists, or
 * returns at once for `null`. Synchronous from its first line: an async function would yield at
 * its first await and let held results go out anyway.
 */
const spinUntilFile = remote((path: string | null): string => {
  if (path === null) return 'quick';
  const { existsSync } = process.getBuiltinModule('node:fs') as typeof import('node:fs');
  const deadline = Date.now() + 60_000; // a safety net, so that a failed test does not spin forever
  while (!existsSync(path) && Date.now() < deadline) {
    // spin
  }
  return 'released';
});

class Spinner {
  quick(): string {
    return 'quick';
  }
  spinUntilFile(path: string): string {
    const { existsSync } = process.getBuiltinModule('node:fs') as typeof import('node:fs');
    const deadline = Date.now() + 60_000;
    while (!existsSync(path) && Date.now() < deadline) {
      // spin
    }
    return 'released';
  }
}

describe('a finished result is not held back behind a long task on the same worker', () => {
  let dir: string;
  before(async () => {
    await init({ numWorkers: 1, numCpus: 1 });
    dir = mkdtempSync(join(tmpdir(), 'miniray-held-'));
  });
  after(async () => {
    await shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a short task pipelined before a long one: its result arrives while the long one runs', async () => {
    // Seen short a few times, the function is pipelined: both tasks below go to the one worker
    // together, and the long one starts right after the short one, in the same synchronous run.
    for (let i = 0; i < 5; i++) assert.equal(await get(spinUntilFile.remote(null)), 'quick');
    const release = join(dir, `release-${randomUUID()}`);
    const [quick, long] = [spinUntilFile.remote(null), spinUntilFile.remote(release)];
    try {
      const { ready } = await wait([quick], { numReturns: 1, timeoutMs: 15_000 });
      assert.equal(ready.length, 1, "the short task's result waited for the long task to end");
      assert.equal(await get(quick), 'quick');
    } finally {
      writeFileSync(release, '');
    }
    assert.equal(await get(long), 'released');
  });

  test("an actor's synchronous call before a long one: its result arrives while the long one runs", async () => {
    const spinner = remote(Spinner).remote();
    assert.equal(await get(spinner.quick.remote()), 'quick');
    const release = join(dir, `release-${randomUUID()}`);
    const quick = spinner.quick.remote();
    const long = spinner.spinUntilFile.remote(release);
    try {
      const { ready } = await wait([quick], { numReturns: 1, timeoutMs: 15_000 });
      assert.equal(ready.length, 1, "the call's result waited for the next call to end");
    } finally {
      writeFileSync(release, '');
    }
    assert.equal(await get(long), 'released');
  });
});
