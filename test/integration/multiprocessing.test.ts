// util.multiprocessing.Pool, after Ray's python/ray/tests/test_multiprocessing.py. A Queue is the
// signal a blocked call waits on (Ray's SignalActor), so no test sleeps.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ActorDiedError,
  CapturedVariableError,
  GetTimeoutError,
  InvalidOptionError,
  MinirayError,
  Pool,
  Queue,
  TaskError,
  clusterResources,
  init,
  isInitialized,
  shutdown,
  util,
} from 'miniray';
import { rejectsWith } from '../fixtures/assertions.js';
import { poolInside, whereRun } from '../fixtures/pool-functions.js';

const T = { timeout: 60_000 };

after(async () => {
  await shutdown();
});

/** How many distinct processes ran the calls of a map over `size` items. */
async function poolSize(pool: Pool, size: number): Promise<number> {
  const results = await pool.map(whereRun, Array.from({ length: size }, (_, i) => i), { chunksize: 1 });
  return new Set(results.map(([, worker]) => worker)).size;
}

/**
 * Runs `body` with a pool of `processes` on the shared runtime (4 CPUs), then stops the pool. Starting
 * a process is a thread's start-up (about half a second on a loaded machine), so the tests that
 * leave the pool running share one (`shared`), as a pytest fixture of module scope would.
 */
async function withPool(processes: number, body: (pool: Pool) => Promise<void>): Promise<void> {
  const pool = new Pool({ processes });
  try {
    await pool.ready();
    await body(pool);
  } finally {
    pool.terminate();
    await pool.join();
  }
}

let sharedPool: Pool | undefined;
/** The 4-process pool of the tests that do not close it. */
async function shared(body: (pool: Pool) => Promise<void>): Promise<void> {
  sharedPool ??= new Pool({ processes: 4 });
  await sharedPool.ready();
  await body(sharedPool);
}

describe('multiprocessing.Pool', () => {
  test('test_ray_init: a Pool starts miniray with its processes as CPUs; on a running one it needs that many CPUs', T, async () => {
    assert.equal(util.multiprocessing.Pool, Pool);
    assert.equal(isInitialized(), false);
    const pool = new Pool({ processes: 2 });
    await pool.ready();
    assert.equal(isInitialized(), true);
    assert.equal((await clusterResources())['CPU'], 2);
    assert.equal(await poolSize(pool, 8), 2);
    pool.terminate();
    await pool.join();
    await shutdown();

    await init({ numCpus: 3, numWorkers: 1 });
    const two = new Pool({ processes: 2 });
    assert.equal(await poolSize(two, 8), 2);
    assert.equal((await clusterResources())['CPU'], 3);
    two.terminate();
    await two.join();
    await shutdown();

    await init({ numCpus: 1, numWorkers: 1 });
    const tooBig = new Pool({ processes: 2 });
    await rejectsWith(tooBig.ready(), InvalidOptionError, /processes is 2, but the cluster has only 1 CPU/);
    await rejectsWith(tooBig.map((x: number) => x, [1]), InvalidOptionError);
    assert.equal((await clusterResources())['CPU'], 1);
    // The default is the cluster's CPUs.
    const byDefault = new Pool();
    assert.equal(await poolSize(byDefault, 4), 1);
    byDefault.terminate();
    await byDefault.join();
    await shutdown();
  });

  test('bad options fail at once with InvalidOptionError', T, () => {
    assert.throws(() => new Pool({ processes: 0 }), InvalidOptionError);
    assert.throws(() => new Pool({ processes: 1.5 }), InvalidOptionError);
    assert.throws(() => new Pool({ initArgs: 3 as never }), InvalidOptionError);
    assert.throws(() => new Pool({ actorOptions: { numCpus: -1 } }), InvalidOptionError);
  });

});

describe('multiprocessing.Pool on a running miniray', () => {
  before(async () => {
    await init({ numCpus: 4, numWorkers: 1 });
  });

  test('test_initializer: it runs once in each process, and its state lives on for the calls', T, async () => {
    const pool = new Pool({
      processes: 4,
      initializer: async (prefix: string) => {
        const state = globalThis as { poolInits?: number; poolPrefix?: string };
        state.poolInits = (state.poolInits ?? 0) + 1;
        state.poolPrefix = prefix;
      },
      initArgs: ['p'],
    });
    const seen = await pool.map(
      (x: number) => {
        const state = globalThis as { poolInits?: number; poolPrefix?: string; poolId?: string };
        state.poolId ??= `${state.poolPrefix}-${Math.random()}`;
        return [x, state.poolInits, state.poolId] as const;
      },
      Array.from({ length: 40 }, (_, i) => i),
      { chunksize: 1 },
    );
    assert.deepEqual(seen.map(([x]) => x), Array.from({ length: 40 }, (_, i) => i));
    assert.ok(seen.every(([, inits, id]) => inits === 1 && id.startsWith('p-')));
    assert.equal(new Set(seen.map(([, , id]) => id)).size, 4);
    pool.terminate();
    await pool.join();

    // An initializer that throws fails the pool's start, with the error it threw as the cause.
    // The message names the initializer and its error, not the actor method that waited for it.
    const failing = new Pool({ processes: 1, initializer: function setup() { throw new RangeError('no setup'); } });
    try {
      const error = await rejectsWith(failing.ready(), TaskError, /^new Pool\(\): the initializer setup threw in a process: RangeError: no setup; the pool did not start/);
      assert.ok(error.cause instanceof RangeError);
      assert.equal(error.functionName, 'setup');
      assert.doesNotMatch(error.message, /PoolActor/);
    } finally {
      failing.terminate();
    }
  });

  test('test_close: close() lets submitted work finish, join() waits for it', T, async () => {
    await withPool(4, async (pool) => {
      const gate = new Queue<string>();
      const result = pool.mapAsync(async (signal: Queue<string>) => {
        await signal.get();
        return 'hello';
      }, [gate, gate, gate, gate]);
      assert.equal(result.ready(), false);
      pool.close();
      assert.equal(result.ready(), false);
      await assert.rejects(pool.map((x: number) => x, [1]), /the pool is closed/);
      assert.throws(() => pool.applyAsync((x: number) => x, [1]), /the pool is closed/);
      await gate.putNowaitBatch(['go', 'go', 'go', 'go']);
      await pool.join();
      await result.wait(10_000);
      assert.equal(result.ready(), true);
      assert.equal(result.successful(), true);
      assert.deepEqual(await result.get(), ['hello', 'hello', 'hello', 'hello']);
    });
  });

  test('test_terminate: terminate() stops running work, which fails', T, async () => {
    await withPool(4, async (pool) => {
      const gate = new Queue<string>();
      const result = pool.mapAsync((signal: Queue<string>) => signal.get(), [gate, gate, gate, gate]);
      assert.equal(result.ready(), false);
      pool.terminate();
      await pool.join();
      await result.wait(10_000);
      assert.equal(result.ready(), true);
      assert.equal(result.successful(), false);
      await rejectsWith(result.get(), ActorDiedError);
    });
  });

  test('test_apply: apply runs one call and gives its result or its error', T, async () => {
    await shared(async (pool) => {
      const f = (a: number, b: number, c?: number) => {
        if (a !== 1 || b !== 2) throw new RangeError(`bad arguments ${a}, ${b}`);
        return c ?? 1;
      };
      assert.equal(await pool.apply(f, [1, 2]), 1);
      assert.equal(await pool.apply(f, [1, 2, 3]), 3);
      const error = await rejectsWith(pool.apply(f, [2, 2]), TaskError, /RangeError: bad arguments 2, 2/);
      assert.ok(error.cause instanceof RangeError);
      assert.equal(await pool.apply(() => 'no arguments'), 'no arguments');
    });
  });

  test('test_apply_async: an AsyncResult is ready, successful and got as Ray\'s', T, async () => {
    await shared(async (pool) => {
      assert.equal(await pool.applyAsync((a: number, b: number) => a + b, [1, 2]).get(), 3);
      const tenOver = async (signal: Queue<string>, value: number) => {
        await signal.get();
        if (value === 0) throw new RangeError('division by zero');
        return 10 / value;
      };
      const gate = new Queue<string>();
      const result = pool.applyAsync(tenOver, [gate, 10]);
      await result.wait(10);
      assert.equal(result.ready(), false);
      await rejectsWith(result.get(10), GetTimeoutError);
      assert.throws(() => result.successful(), /not ready/);
      await gate.put('go');
      await result.wait(10_000);
      assert.equal(result.ready(), true);
      assert.equal(result.successful(), true);
      assert.equal(await result.get(), 1);

      const failing = pool.applyAsync(tenOver, [gate, 0]);
      assert.throws(() => failing.successful(), MinirayError);
      await gate.put('go');
      await failing.wait(10_000);
      assert.equal(failing.successful(), false);
      const error = await rejectsWith(failing.get(), TaskError, /division by zero/);
      assert.ok(error.cause instanceof RangeError);
    });
  });

  test('test_map: results in order, spread over the processes, the first error rejects', T, async () => {
    await shared(async (pool) => {
      const results = await pool.map(whereRun, Array.from({ length: 1000 }, (_, i) => i));
      assert.equal(results.length, 1000);
      const perProcess = new Map<string, number>();
      results.forEach(([index, worker], i) => {
        assert.equal(index, i);
        perProcess.set(worker, (perProcess.get(worker) ?? 0) + 1);
      });
      assert.equal(perProcess.size, 4);
      for (const count of perProcess.values()) assert.ok(count > 100, `uneven: ${[...perProcess.values()]}`);
      await rejectsWith(
        pool.map((x: number) => {
          throw new Error(`test_map failure ${x}`);
        }, Array.from({ length: 100 }, (_, i) => i)),
        TaskError,
        /test_map failure 0/,
      );
    });
  });

  test('test_map_async: not ready until released; a failed item makes it unsuccessful', T, async () => {
    await shared(async (pool) => {
      const gate = new Queue<string>();
      const key = `released-${Math.random()}`;
      const items = Array.from({ length: 100 }, (_, i) => [i, gate, key] as [number, Queue<string>, string]);
      // Each process's first call waits for the signal (one 'go' per process).
      const result = pool.mapAsync(async ([index, signal, released]: [number, Queue<string>, string]) => {
        const state = globalThis as Record<string, unknown>;
        if (state[released] !== true) {
          await signal.get();
          state[released] = true;
        }
        return index;
      }, items);
      assert.equal(result.ready(), false);
      await rejectsWith(result.get(10), GetTimeoutError);
      await result.wait(10);
      await gate.putNowaitBatch(['go', 'go', 'go', 'go']);
      await result.wait(10_000);
      assert.equal(result.ready(), true);
      assert.equal(result.successful(), true);
      assert.deepEqual(await result.get(), Array.from({ length: 100 }, (_, i) => i));

      const failing = pool.mapAsync((index: number) => {
        if (index === 50) throw new Error('test_map_async failure');
        return index;
      }, Array.from({ length: 100 }, (_, i) => i));
      await failing.wait(10_000);
      assert.equal(failing.ready(), true);
      assert.equal(failing.successful(), false);
      await rejectsWith(failing.get(), TaskError, /test_map_async failure/);
    });
  });

  test('test_starmap: each item is the argument list', T, async () => {
    await shared(async (pool) => {
      const lists = Array.from({ length: 100 }, (_, i) => Array.from({ length: i }, (_, j) => j));
      assert.deepEqual(await pool.starmap((...args: number[]) => args, lists), lists);
      assert.deepEqual(await pool.starmap((x: number, y: number) => x + y, [[1, 3], [2, 4]]), [4, 6]);
      assert.deepEqual(await pool.starmapAsync((x: number, y: number) => x * y, [[2, 3]]).get(), [6]);
    });
  });

  test('test_callbacks: callback once with all results, or errorCallback once with the first error', T, async () => {
    await shared(async (pool) => {
      const helper = ([index, errorIndices]: [number, number[]]) => {
        if (errorIndices.includes(index)) throw new Error('intentional failure');
        return index;
      };
      const calls: unknown[] = [];
      const ok = pool.applyAsync(helper, [[0, [1]]], { callback: (value) => calls.push(value) });
      assert.equal(await ok.get(), 0);
      await waitFor(() => calls.length === 1);
      assert.deepEqual(calls, [0]);

      const errors: Error[] = [];
      const bad = pool.applyAsync(helper, [[0, [0]]], { errorCallback: (error) => errors.push(error) });
      await rejectsWith(bad.get(), TaskError, /intentional failure/);
      assert.equal(errors.length, 1);

      for (const errorIndices of [[], [2, 50, 98]]) {
        const results: number[][] = [];
        const failures: Error[] = [];
        const indices = Array.from({ length: 100 }, (_, i) => i);
        const result = pool.mapAsync(helper, indices.map((i) => [i, errorIndices] as [number, number[]]), {
          callback: (values) => results.push(values),
          errorCallback: (error) => failures.push(error),
        });
        await result.wait();
        await waitFor(() => results.length + failures.length > 0);
        if (errorIndices.length === 0) {
          assert.equal(result.successful(), true);
          assert.deepEqual(results, [indices]);
          assert.equal(failures.length, 0);
        } else {
          assert.equal(result.successful(), false);
          assert.equal(results.length, 0);
          assert.equal(failures.length, 1);
          assert.ok(failures[0] instanceof TaskError);
        }
      }
    });
  });

  for (const useIter of [true, false]) {
    test(`test_imap[use_iter=${useIter}]: results in order, a failed call's error in its place`, T, async () => {
      await shared(async (pool) => {
        const errorIndices = [2, 50, 98];
        const items = Array.from({ length: 100 }, (_, i) => [i, errorIndices] as [number, number[]]);
        const input: Iterable<[number, number[]]> = useIter ? items.values() : items;
        const results = pool.imap(([index, errors]: [number, number[]]) => {
          if (errors.includes(index)) throw new Error('intentional failure');
          return index;
        }, input, { chunksize: 11 });
        for (let i = 0; i < 100; i++) {
          const step = await results.next();
          assert.equal(step.done, false);
          if (errorIndices.includes(i)) {
            assert.ok(step.value instanceof TaskError);
            assert.match((step.value as Error).message, /intentional failure/);
          } else assert.equal(step.value, i);
        }
        assert.equal((await results.next()).done, true);
      });
    });

    test(`test_imap_unordered[use_iter=${useIter}]: every result, in the order they finish`, T, async () => {
      await shared(async (pool) => {
        const errorIndices = [2, 50, 98];
        const items = Array.from({ length: 100 }, (_, i) => [i, errorIndices] as [number, number[]]);
        const input: Iterable<[number, number[]]> = useIter ? items.values() : items;
        const seen: number[] = [];
        let errors = 0;
        // Chunk 0 (items 0-10) waits until chunk 1 has been read: it must come out later.
        const gate = new Queue<string>();
        const results = pool.imapUnordered(async ([index, errorList, signal]: [number, number[], Queue<string>]) => {
          if (index === 0) await signal.get();
          if (errorList.includes(index)) throw new Error('intentional failure');
          return index;
        }, [...input].map(([i, e]) => [i, e, gate] as [number, number[], Queue<string>]), { chunksize: 11 });
        for await (const value of results) {
          if (value instanceof Error) errors++;
          else seen.push(value);
          if (seen.length + errors === 11) await gate.put('go');
        }
        assert.equal(errors, errorIndices.length);
        assert.deepEqual([...seen].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i).filter((i) => !errorIndices.includes(i)));
        assert.notDeepEqual(seen, [...seen].sort((a, b) => a - b));
      });
    });
  }

  test('test_imap_timeout: next({ timeoutMs }) rejects with GetTimeoutError, and the result comes later', T, async () => {
    await shared(async (pool) => {
      const gate = new Queue<string>();
      const f = async ([index, waitIndex, signal]: [number, number, Queue<string>]) => {
        if (index === waitIndex) await signal.get();
        return index;
      };
      const items = Array.from({ length: 100 }, (_, i) => [i, 23, gate] as [number, number, Queue<string>]);
      const results = pool.imap(f, items.values());
      for (let i = 0; i < 100; i++) {
        if (i === 23) {
          await rejectsWith(results.next({ timeoutMs: 100 }), GetTimeoutError);
          await gate.put('go');
        }
        assert.deepEqual(await results.next(), { done: false, value: i });
      }
      assert.equal((await results.next()).done, true);
    });
  });

  test('test_maxtasksperchild: a process is replaced after maxTasksPerChild chunks', T, async () => {
    const pool = new Pool({ processes: 2, maxTasksPerChild: 1 });
    try {
      const results = await pool.map(whereRun, Array.from({ length: 6 }, (_, i) => i), { chunksize: 1 });
      assert.deepEqual(results.map(([i]) => i), [0, 1, 2, 3, 4, 5]);
      assert.equal(new Set(results.map(([, worker]) => worker)).size, 6, 'each chunk in a process of its own');
      pool.close();
      await pool.join();
    } finally {
      pool.terminate();
    }
  });

  test('several next() calls may wait at once, each gets its own result', T, async () => {
    await shared(async (pool) => {
      const gate = new Queue<string>();
      const results = pool.imap(async ([x, signal]: [number, Queue<string>]) => {
        await signal.get();
        return x;
      }, [1, 2, 3].map((x) => [x, gate] as [number, Queue<string>]));
      const waiting = [results.next(), results.next(), results.next()];
      await gate.putNowaitBatch(['go', 'go', 'go']);
      assert.deepEqual(await Promise.all(waiting), [1, 2, 3].map((value) => ({ done: false, value })));
      assert.equal((await results.next()).done, true);
    });
  });

  test('test_deadlock_avoidance_in_recursive_tasks: a pool inside a pool\'s call', T, async () => {
    await shared(async (pool) => {
      assert.deepEqual(await pool.map(poolInside, [2, 3]), [[0, 1, 2], [0, 1, 3]]);
    });
  });

  test('a function that uses its scope is refused with CapturedVariableError; a module remote function is not', T, async () => {
    await shared(async (pool) => {
      const factor = 3;
      await assert.rejects(pool.map((x: number) => x * factor, [1]), CapturedVariableError);
      assert.throws(() => pool.imap((x: number) => x * factor, [1]), CapturedVariableError);
      assert.deepEqual(await pool.map(whereRun, [7]).then((r) => r.map(([i]) => i)), [7]);
    });
  });
});

async function waitFor(condition: () => boolean, limitMs = 10_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((resolve) => setImmediate(resolve));
  }
}
