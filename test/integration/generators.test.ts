// Generators, after Ray's python/ray/tests/test_streaming_generator*.py and test_generators.py:
// a generator function streams by default (ObjectRefGenerator, each value as soon as it is
// yielded, an error at the next item, then done), actor generator methods stream too,
// backpressure bounds unread items, numReturns 'dynamic' / n / 0, and a retried generator task
// gives the caller no item twice.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BroadcastChannel } from 'node:worker_threads';
import { InvalidArgumentError, InvalidOptionError, ObjectRef, ObjectRefGenerator, TaskCancelledError, TaskError, cancel, get, init, put, remote, shutdown, wait } from 'miniray';
import { Gate } from '../fixtures/coordination.js';
import { range, sumOf, sumOfRange, sumOfRangeByWait } from '../fixtures/generators.js';

const T = { timeout: 60_000 };

/** Every value of a generator's items, in order. */
async function collect<X>(gen: ObjectRefGenerator<X>): Promise<X[]> {
  const values: X[] = [];
  for await (const ref of gen) values.push(await get(ref));
  return values;
}

/** Resolves with each message said on `name` (a BroadcastChannel), as the count of them reaches `count`. */
function counter(name: string): { reached: (count: number, timeoutMs?: number) => Promise<void>; count: () => number; close: () => void } {
  const channel = new BroadcastChannel(name);
  channel.unref();
  let seen = 0;
  const waiters: { count: number; resolve: () => void }[] = [];
  channel.onmessage = () => {
    seen++;
    for (const waiter of waiters.filter((w) => w.count <= seen)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  };
  return {
    count: () => seen,
    reached: (count, timeoutMs = 20_000) =>
      seen >= count
        ? Promise.resolve()
        : new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`only ${seen} of ${count} messages within ${timeoutMs} ms`)), timeoutMs);
            waiters.push({ count, resolve: () => (clearTimeout(timer), resolve()) });
          }),
    close: () => channel.close(),
  };
}


const failsAt = remote(function* (n: number, at: number) {
  for (let i = 0; i < n; i++) {
    if (i === at) throw new RangeError(`no ${i}`);
    yield i;
  }
});

/** Yields 'first', then waits for its gate to open before yielding 'second'. */
const gated = remote(async function* (gateName: string) {
  yield 'first';
  const channel = new BroadcastChannel(gateName);
  await new Promise<void>((resolve) => {
    channel.onmessage = (event) => {
      if ((event as MessageEvent).data === 'open') resolve();
    };
    channel.postMessage('waiting');
  });
  channel.close();
  yield 'second';
});

/** Says 'yielded' on `channelName` as it yields each of n values. */
const announced = remote(function* (n: number, channelName: string) {
  const channel = new BroadcastChannel(channelName);
  try {
    for (let i = 0; i < n; i++) {
      channel.postMessage('yielded');
      yield i;
    }
  } finally {
    channel.close();
  }
});

class Streamer {
  *f(n: number) {
    for (let i = 0; i < n; i++) yield i;
  }
  async *asyncF(n: number) {
    for (let i = 0; i < n; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      yield i * 10;
    }
  }
  *raises() {
    throw new TypeError('from the actor');
    yield 1; // eslint-disable-line no-unreachable
  }
  g(): number {
    return 3;
  }
}

class StaticStreamer {
  static readonly methodOptions = { all: { numReturns: 'dynamic' }, pair: { numReturns: 2 } } as const;
  *all(n: number) {
    for (let i = 0; i < n; i++) yield i;
  }
  *pair() {
    yield 'x';
    yield 'y';
  }
  *stream() {
    yield 1;
  }
}

describe('generators', () => {
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'miniray-gen-'));
    await init({ numCpus: 2 });
  });
  after(async () => {
    await shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  test('test_generator_basic: a generator function streams: for await gives a ref per value, in order', T, async () => {
    const gen = range.remote(5);
    assert.ok(gen instanceof ObjectRefGenerator);
    assert.deepEqual(await collect(gen), [0, 1, 2, 3, 4]);
    // An async generator function too, and an empty one.
    const words = remote(async function* (text: string) {
      for (const word of text.split(' ')) yield word;
    });
    assert.deepEqual(await collect(words.remote('to be or not')), ['to', 'be', 'or', 'not']);
    assert.deepEqual(await collect(range.remote(0)), []);
    // next() by hand, and done for ever after.
    const two = range.remote(2);
    const a = await two.next();
    const b = await two.next();
    assert.equal(a.done, false);
    assert.equal(await get(a.value as ObjectRef<number>), 0);
    assert.equal(await get(b.value as ObjectRef<number>), 1);
    assert.deepEqual(await two.next(), { done: true, value: undefined });
    assert.deepEqual(await two.next(), { done: true, value: undefined });
    // completed(): the number of values, once the task is done.
    assert.equal(await get(two.completed()), 2);
  });

  test('test_generator_basic (exceptions): the error arrives as a TaskError at the next item, then done', T, async () => {
    const gen = failsAt.options({ maxRetries: 0 }).remote(5, 2);
    assert.equal(await get((await gen.next()).value as ObjectRef<number>), 0);
    assert.equal(await get((await gen.next()).value as ObjectRef<number>), 1);
    const third = await gen.next();
    assert.equal(third.done, false);
    await assert.rejects(get(third.value as ObjectRef<number>), (error: unknown) => error instanceof TaskError && /no 2/.test(error.message) && (error.cause as Error).name === 'RangeError');
    assert.deepEqual(await gen.next(), { done: true, value: undefined });
    assert.deepEqual(await gen.next(), { done: true, value: undefined });
  });

  test('test_generator_streaming: each value is available as soon as it is yielded', T, async () => {
    const gate = new Gate();
    try {
      const gen = gated.remote(gate.name);
      const first = await gen.next();
      // The generator is still waiting at its gate: 'first' came before it finished.
      assert.equal(await get(first.value as ObjectRef<string>), 'first');
      await gate.whenWaiting(1);
      gate.open();
      assert.equal(await get((await gen.next()).value as ObjectRef<string>), 'second');
      assert.equal((await gen.next()).done, true);
    } finally {
      gate.close();
    }
  });

  test('test_streaming_generator wait: wait([gen]) is ready once its next item is available or it is finished, and reads nothing', T, async () => {
    const gate = new Gate();
    try {
      const gen = gated.remote(gate.name);
      const first = await wait([gen], { timeoutMs: 30_000 });
      assert.deepEqual(first, { ready: [gen], pending: [] });
      // wait() took nothing: next() gives that first item.
      assert.equal(await get((await gen.next()).value as ObjectRef<string>), 'first');
      await gate.whenWaiting(1);
      // Its next item does not exist while it waits at its gate (a poll, and a wait that times out).
      assert.deepEqual(await wait([gen], { timeoutMs: 0 }), { ready: [], pending: [gen] });
      assert.deepEqual(await wait([gen], { timeoutMs: 20 }), { ready: [], pending: [gen] });
      gate.open();
      assert.deepEqual((await wait([gen], { timeoutMs: 30_000 })).ready, [gen]);
      assert.equal(await get((await gen.next()).value as ObjectRef<string>), 'second');
      // Every item read: ready once the task has finished, as Ray's, before and after next() says done.
      assert.deepEqual((await wait([gen], { timeoutMs: 30_000 })).ready, [gen]);
      assert.equal((await gen.next()).done, true);
      assert.deepEqual((await wait([gen], { timeoutMs: 0 })).ready, [gen]);
    } finally {
      gate.close();
    }
    // With refs, in their order; numReturns counts both.
    const gen = range.remote(1);
    const value = put(1);
    const both = await wait([gen, value], { numReturns: 2, timeoutMs: 30_000 });
    assert.deepEqual(both, { ready: [gen, value], pending: [] });
    await assert.rejects(wait([gen, gen]), (error: unknown) => error instanceof InvalidArgumentError && /unique/.test(error.message));
    // A failed generator is ready with its error as the next item.
    const failed = failsAt.options({ maxRetries: 0 }).remote(1, 0);
    assert.deepEqual((await wait([failed], { timeoutMs: 30_000 })).ready, [failed]);
    await assert.rejects(get((await failed.next()).value as ObjectRef<number>), TaskError);
    // In a task (its wait goes over the worker's channel).
    assert.equal(await get(sumOfRangeByWait.remote(10)), 45);
  });

  test('test_actor_streaming_generator: sync and async generator methods of actors stream', T, async () => {
    const actor = remote(Streamer).remote();
    const gen = actor.f.remote(3);
    assert.ok(gen instanceof ObjectRefGenerator);
    assert.deepEqual(await collect(gen), [0, 1, 2]);
    assert.deepEqual(await collect(actor.asyncF.remote(3)), [0, 10, 20]);
    assert.equal(await get(actor.g.remote()), 3);
  });

  test("test_actor_streaming_generator (numReturns): an actor generator method with 'dynamic' or n, per call or in static methodOptions, as Ray's", T, async () => {
    const actor = remote(Streamer).remote();
    // 'dynamic': a ref to the array of refs (Ray's DynamicObjectRefGenerator).
    const refs = await get(actor.f.options({ numReturns: 'dynamic' }).remote(3));
    assert.deepEqual(await get(refs), [0, 1, 2]);
    assert.deepEqual(await get(await get(actor.asyncF.options({ numReturns: 'dynamic' }).remote(2))), [0, 10]);
    // n: exactly n values, one ref each; a wrong count fails each ref, saying how many it yielded.
    const [a, b, c] = actor.f.options({ numReturns: 3 }).remote(3);
    assert.deepEqual(await get([a, b, c]), [0, 1, 2]);
    const [short] = actor.f.options({ numReturns: 3 }).remote(2);
    await assert.rejects(get(short), /numReturns: 3 and must yield exactly that many values; it yielded 2/);
    assert.equal(await get(actor.f.options({ numReturns: 1 }).remote(1)), 0);
    assert.equal(actor.f.options({ numReturns: 0 }).remote(0), undefined);
    // 'streaming' said outright is the default.
    assert.deepEqual(await collect(actor.f.options({ numReturns: 'streaming' }).remote(2)), [0, 1]);
    // A 'dynamic' generator method that throws keeps what it yielded, as a task's.
    const failing = await get(actor.raises.options({ numReturns: 'dynamic' }).remote());
    assert.equal(failing.length, 1);
    await assert.rejects(get(failing[0] as ObjectRef<number>), /from the actor/);
    // In the class's static methodOptions.
    const bySpec = remote(StaticStreamer).remote();
    assert.deepEqual(await get(await get(bySpec.all.remote(4))), [0, 1, 2, 3]);
    const [x, y] = bySpec.pair.remote();
    assert.deepEqual(await get([x, y]), ['x', 'y']);
    assert.deepEqual(await collect(bySpec.stream.remote()), [1]);
    // 'dynamic' on a plain method fails its call, as a task's does.
    await assert.rejects(get((actor.g.options as (o: object) => { remote(): ObjectRef<unknown> })({ numReturns: 'dynamic' }).remote()), /numReturns: 'dynamic', which is for generator functions/);
    assert.throws(() => actor.f.options({ numReturns: 'lazy' as 'dynamic' }), (error: unknown) => error instanceof InvalidOptionError && /'streaming' \/ 'dynamic'/.test(error.message));
  });

  test('test_streaming_generator_exception: an actor generator that throws before yielding', T, async () => {
    const actor = remote(Streamer).remote();
    const gen = actor.raises.remote();
    const first = await gen.next();
    assert.equal(first.done, false);
    await assert.rejects(get(first.value as ObjectRef<number>), (error: unknown) => error instanceof TaskError && /from the actor/.test(error.message));
    assert.equal((await gen.next()).done, true);
  });

  test('test_streaming_generator_backpressure: generatorBackpressureNumObjects bounds the unread items', T, async () => {
    const name = `gen-bp-${process.pid}-${Date.now()}`;
    const yields = counter(name);
    try {
      const gen = announced.options({ generatorBackpressureNumObjects: 2 }).remote(6, name);
      await yields.reached(2);
      // Nothing read: it waits after its second item (it has not resumed to yield a third).
      const first = await gen.next();
      await yields.reached(3);
      assert.ok(yields.count() <= 4, `read 1 item with a limit of 2 unread: at most 3 yielded, saw ${yields.count()}`);
      assert.equal(await get(first.value as ObjectRef<number>), 0);
      const rest: number[] = [];
      for await (const ref of gen) rest.push(await get(ref));
      assert.deepEqual(rest, [1, 2, 3, 4, 5]);
      await yields.reached(6); // its announcements travel apart from its items
    } finally {
      yields.close();
    }
  });

  test('test_dynamic_generator: numReturns dynamic gives a ref to an array of refs', T, async () => {
    const dynamic = range.options({ numReturns: 'dynamic' });
    const refs = await get(dynamic.remote(4));
    assert.equal(refs.length, 4);
    assert.ok(refs.every((ref) => ref instanceof ObjectRef));
    assert.deepEqual(await get(refs), [0, 1, 2, 3]);
    assert.deepEqual(await get(dynamic.remote(0)), []);
    // A task given the array reads it (the refs travel inside the value).
    assert.equal(await get(sumOf.remote(dynamic.remote(5))), 10);
    // A plain function with numReturns 'dynamic' fails (as Ray's).
    const options = { numReturns: 'dynamic' } as const;
    // @ts-expect-error numReturns 'dynamic' is for generator functions (checked at compile time too)
    remote((n: number) => [n], options);
    const plain = remote((n: number) => [n], options as unknown as { numReturns: 1 });
    await assert.rejects(get(plain.remote(1)), /numReturns: 'dynamic', which is for generator functions/);
  });

  test('test_dynamic_generator (exceptions): a dynamic generator that throws keeps the values before the error, and a last ref throws it', T, async () => {
    const dynamic = failsAt.options({ numReturns: 'dynamic', maxRetries: 0 });
    const refs = await get(dynamic.remote(5, 2));
    assert.equal(refs.length, 3);
    assert.deepEqual(await get(refs.slice(0, 2)), [0, 1]);
    await assert.rejects(get(refs[2] as ObjectRef<number>), (error: unknown) => error instanceof TaskError && /no 2/.test(error.message) && error.cause instanceof RangeError);
    // Thrown before any value: one ref, which throws (as Ray's).
    const [only, ...none] = await get(dynamic.remote(5, 0));
    assert.equal(none.length, 0);
    await assert.rejects(get(only as ObjectRef<number>), /no 0/);
    // With retryExceptions and a retry left, the throw is retried (the attempt fails, not its values kept)...
    const marker = join(dir, 'dynamic-threw-once');
    const throwsOnce = remote(
      async function* (path: string) {
        const fs = await import('node:fs');
        for (let i = 0; i < 3; i++) {
          if (i === 1 && !fs.existsSync(path)) {
            fs.writeFileSync(path, 'x');
            throw new Error('first attempt');
          }
          yield i;
        }
      },
      { numReturns: 'dynamic', maxRetries: 1, retryExceptions: true },
    );
    assert.deepEqual(await get(await get(throwsOnce.remote(marker))), [0, 1, 2]);
    // ...and the last attempt keeps its values as any that is not retried.
    const last = await get(failsAt.options({ numReturns: 'dynamic', maxRetries: 1, retryExceptions: true }).remote(3, 1));
    assert.equal(last.length, 2);
    assert.equal(await get(last[0] as ObjectRef<number>), 0);
    await assert.rejects(get(last[1] as ObjectRef<number>), /no 1/);
  });

  test('test_generator_returns: numReturns n with a generator: exactly n values', T, async () => {
    const [a, b, c] = range.options({ numReturns: 3, maxRetries: 0 }).remote(3);
    assert.deepEqual(await get([a, b, c]), [0, 1, 2]);
    const [short] = range.options({ numReturns: 3, maxRetries: 0 }).remote(2);
    await assert.rejects(get(short), /numReturns: 3 and must yield exactly that many values; it yielded 2/);
    const [long] = range.options({ numReturns: 3, maxRetries: 0 }).remote(4);
    await assert.rejects(get(long), /it yielded 4/);
    assert.equal(await get(range.options({ numReturns: 1 }).remote(1)), 0);
  });

  test('numReturns 0: the task runs for its effects and .remote() gives undefined', T, async () => {
    const name = `gen-zero-${process.pid}-${Date.now()}`;
    const ran = counter(name);
    try {
      const effect = remote(
        (channelName: string) => {
          const channel = new BroadcastChannel(channelName);
          channel.postMessage('ran');
          channel.close();
          return 'ignored';
        },
        { numReturns: 0 },
      );
      assert.equal(effect.remote(name), undefined);
      await ran.reached(1);
      assert.equal(announced.options({ numReturns: 0 }).remote(0, name), undefined);
    } finally {
      ran.close();
    }
  });

  test('test_generator_basic (retry): a generator task retried after its worker died yields no item twice', T, async () => {
    const marker = join(dir, 'crashed-once');
    const crashy = remote(async function* (path: string) {
      const fs = await import('node:fs');
      for (let i = 0; i < 5; i++) {
        if (i === 3 && !fs.existsSync(path)) {
          fs.writeFileSync(path, 'x');
          process.exit(1); // the worker dies after items 0, 1 and 2 were reported
        }
        yield i;
      }
    });
    const gen = crashy.options({ maxRetries: 2 }).remote(marker);
    assert.deepEqual(await collect(gen), [0, 1, 2, 3, 4]);
  });

  test('test_generator_basic (retry exceptions): with retryExceptions a throwing generator runs again, skipping seen items', T, async () => {
    const marker = join(dir, 'threw-once');
    const flaky = remote(async function* (path: string) {
      const fs = await import('node:fs');
      for (let i = 0; i < 5; i++) {
        if (i === 3 && !fs.existsSync(path)) {
          fs.writeFileSync(path, 'x');
          throw new Error('once');
        }
        yield i;
      }
    });
    const gen = flaky.options({ maxRetries: 1, retryExceptions: true }).remote(marker);
    assert.deepEqual(await collect(gen), [0, 1, 2, 3, 4]);
  });

  test('test_generator_basic (cancel): a cancelled generator\'s next item throws TaskCancelledError', T, async () => {
    const gate = new Gate();
    try {
      const gen = gated.remote(gate.name);
      assert.equal(await get((await gen.next()).value as ObjectRef<string>), 'first');
      cancel(gen);
      const next = await gen.next();
      await assert.rejects(get(next.value as ObjectRef<string>), TaskCancelledError);
      assert.equal((await gen.next()).done, true);
    } finally {
      gate.open();
      gate.close();
    }
  });

  test('a generator consumed inside a task streams there too', T, async () => {
    assert.equal(await get(sumOfRange.remote(10)), 45);
  });
});

describe('generators (values)', () => {
  before(async () => {
    await init({ numCpus: 1, ignoreReinitError: true });
  });
  after(async () => {
    await shutdown();
  });

  test('test_generator_streaming_no_leak_upon_failures: read items are freed once their refs go, unread ones at break', async () => {
    const { memory } = await import('miniray');
    const { collectUntil } = await import('../fixtures/gc.js');
    const baseline = memory().objects.length;
    // Every item read, and the refs dropped: all of the stream's objects go with the refs.
    let read = await collect(range.remote(20));
    assert.equal(read.length, 20);
    read = [];
    await collectUntil(() => memory().objects.length <= baseline, () => `${memory().objects.length - baseline} objects of the stream left`);
    // One item read of 30 stored, then break: the 29 unread go at once, without waiting for a collection.
    const gen = range.remote(30);
    await get(gen.completed());
    const before = memory().objects.length;
    for await (const ref of gen) {
      assert.equal(await get(ref), 0);
      break;
    }
    assert.ok(before - memory().objects.length >= 29, `${before - memory().objects.length} of 29 unread items freed at break`);
    // And a failed generator's items and error go too.
    const failed = failsAt.options({ maxRetries: 0 }).remote(5, 3);
    const seen: string[] = [];
    for await (const ref of failed) seen.push(await get(ref).then(String, (error: Error) => error.name));
    assert.deepEqual(seen, ['0', '1', '2', 'TaskError']);
  });

  test('an ObjectRefGenerator cannot travel: the error says what to pass instead', async () => {
    const { SerializationError, put } = await import('miniray');
    const gen = range.remote(1);
    assert.throws(() => put({ gen }), (error: unknown) => error instanceof SerializationError && /an ObjectRefGenerator cannot travel/.test(error.message));
    // As Ray's ("You cannot return or pass a generator to other task"): not to a task, nor to an actor, not even nested.
    const sum = remote(async (items: unknown) => String(items));
    assert.throws(() => sum.remote(gen), (error: unknown) => error instanceof SerializationError && /argument 1 .*an ObjectRefGenerator cannot travel/.test(error.message));
    assert.throws(() => sum.remote([gen]), (error: unknown) => error instanceof SerializationError && /an ObjectRefGenerator cannot travel/.test(error.message));
    const actor = remote(Streamer).remote();
    assert.throws(() => (actor.f.remote as (x: unknown) => unknown)(gen), (error: unknown) => error instanceof SerializationError && /an ObjectRefGenerator cannot travel/.test(error.message));
    assert.deepEqual(await collect(gen), [0]);
  });
});
