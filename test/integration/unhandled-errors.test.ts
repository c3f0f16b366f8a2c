// A failed task whose result nobody reads (issue 8, item 10) used to vanish without a word. Now,
// as Ray's "Unhandled error", its error is logged once to stderr when its last ref goes without a
// get() having read it; MINIRAY_LOG_UNHANDLED_ERRORS=0 (read by init()) turns that off. The node runs in this
// thread, so the test reads what it writes to process.stderr.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { InvalidOptionError, cancel, get, init, isInitialized, memory, remote, shutdown, wait, type ObjectRef } from 'miniray';
import { Gate, waitForGate } from '../fixtures/coordination.js';
import { collectRounds, collectUntil } from '../fixtures/gc.js';

const failing = remote((what: string): number => {
  throw new Error(`boom: ${what}`);
});
const add = remote((a: number, b: number) => a + b);

let logged: string[];
const write = process.stderr.write.bind(process.stderr);
beforeEach(() => {
  logged = [];
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = String(chunk);
    if (text.includes('Unhandled error')) {
      logged.push(text);
      return true;
    }
    return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
});
afterEach(() => {
  process.stderr.write = write;
});

const freed = (hex: string) => memory().objects.every((object) => object.id !== hex);
const about = (what: string) => logged.filter((line) => line.includes(`boom: ${what}`));

/** Runs `make` in a scope of its own, so that the refs it makes can be collected; returns their IDs. */
async function dropped(make: () => Promise<ObjectRef<unknown>[]>): Promise<string[]> {
  return (await make()).map((ref) => ref.hex);
}

describe('unhandled errors', () => {
  before(async () => {
    await init({ numWorkers: 2 });
  });
  after(async () => {
    await shutdown();
  });

  test('a failed result collected without get() is logged once, naming the error and where it was thrown', async () => {
    const [hex] = await dropped(async () => {
      const ref = failing.remote('never read');
      await wait([ref]); // ready (failed); wait does not read the error
      return [ref];
    });
    await collectUntil(() => about('never read').length > 0, 'the unhandled error being logged');
    assert.ok(freed(hex as string));
    await collectRounds();
    assert.equal(about('never read').length, 1, logged.join('\n'));
    const [line] = about('never read');
    assert.match(line as string, /Unhandled error \(suppress with MINIRAY_LOG_UNHANDLED_ERRORS=0\)/);
    assert.match(line as string, new RegExp(`ObjectRef\\(${hex}\\)`));
    assert.match(line as string, /TaskError/);
    assert.match(line as string, /unhandled-errors\.test\.ts/, 'where it was thrown');
  });

  test('an error read by get(), or passed on to a task that fails with it, is not logged', async () => {
    const ids = await dropped(async () => {
      const read = failing.remote('read by get');
      await assert.rejects(get(read));
      const passed = failing.remote('passed on');
      const consumer = add.remote(passed as unknown as number, 1);
      await assert.rejects(get(consumer), /passed on/);
      return [read, passed, consumer];
    });
    await collectUntil(() => ids.every(freed), 'the failed objects being freed');
    await collectRounds();
    assert.deepEqual(about('read by get'), []);
    assert.deepEqual(about('passed on'), []);
  });

  test('a cancelled task is not logged', async () => {
    const gate = new Gate();
    const ids = await dropped(async () => {
      const ref = waitForGate.remote(gate.name, 'cancelled');
      cancel(ref);
      await wait([ref]);
      return [ref];
    });
    gate.open();
    await collectUntil(() => ids.every(freed), 'the cancelled object being freed');
    await collectRounds();
    assert.deepEqual(logged.filter((line) => line.includes('TaskCancelledError')), []);
  });
});

/** Runs `body` with the environment variable `name` set to `value`, then puts it back. */
async function withEnv<T>(name: string, value: string, body: () => Promise<T>): Promise<T> {
  const previous = process.env[name];
  process.env[name] = value;
  try {
    return await body();
  } finally {
    if (previous === undefined) delete process.env[name];
    else process.env[name] = previous;
  }
}

// The setting is read once, by init(): frees happen while the node handles workers' messages, where
// a bad value used to throw on each free of a failed object, and the worker was blamed for it.
describe('MINIRAY_LOG_UNHANDLED_ERRORS, read by init()', () => {
  after(async () => {
    await shutdown();
  });

  test('a bad value fails init() with InvalidOptionError naming the variable; a good one then starts', async () => {
    await withEnv('MINIRAY_LOG_UNHANDLED_ERRORS', '2', () =>
      assert.rejects(init({ numWorkers: 1 }), (error: unknown) => {
        assert.ok(error instanceof InvalidOptionError, `expected InvalidOptionError, got ${String(error)}`);
        assert.match(error.message, /MINIRAY_LOG_UNHANDLED_ERRORS must be an integer >= 0 and <= 1, got "2"/);
        return true;
      }),
    );
    assert.equal(isInitialized(), false);
    await init({ numWorkers: 1 });
    assert.equal(await get(add.remote(1, 2)), 3);
    await shutdown();
  });

  test('0, set before init(), turns the log off', async () => {
    await withEnv('MINIRAY_LOG_UNHANDLED_ERRORS', '0', () => init({ numWorkers: 1 }));
    const ids = await dropped(async () => {
      const ref = failing.remote('turned off');
      await wait([ref]);
      return [ref];
    });
    await collectUntil(() => ids.every(freed), 'the failed object being freed');
    await collectRounds();
    assert.deepEqual(about('turned off'), []);
    await shutdown();
  });
});
