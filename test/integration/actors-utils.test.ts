// The actor utilities (Ray's ray.util): ActorPool over a set of handles, and Queue, an actor-backed
// FIFO usable from the driver, tasks and actors.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ActorDiedError,
  ActorPool,
  GetTimeoutError,
  InvalidArgumentError,
  InvalidOptionError,
  MinirayError,
  Queue,
  QueueEmptyError,
  QueueFullError,
  TaskError,
  get,
  getActor,
  init,
  remote,
  shutdown,
  type ActorHandle,
  type ObjectRef,
} from 'miniray';
import { rejectsWith, until } from '../fixtures/assertions.js';


const T = { timeout: 30_000 };

before(async () => {
  await init({ numWorkers: 1, numCpus: 2 });
});

after(async () => {
  await shutdown();
});

/** A pool member: `work` returns [its id, the value doubled], after waiting on `gate` if given. */
class PoolWorker {
  readonly id: string;
  running = 0;
  constructor(id: string) {
    this.id = id;
  }
  async work(value: number, gate: Queue<string> | null): Promise<[string, number, number]> {
    this.running++;
    const runningAtStart = this.running;
    if (gate !== null) await gate.get();
    if (value < 0) {
      this.running--;
      throw new RangeError(`negative: ${value}`);
    }
    this.running--;
    return [this.id, value * 2, runningAtStart];
  }
}

type Result = [string, number, number];
const work = (actor: ActorHandle<PoolWorker>, value: number) => actor.work.remote(value, null);

function makePool(ids: string[]): { pool: ActorPool<PoolWorker, Result>; actors: ActorHandle<PoolWorker>[] } {
  const Worker = remote(PoolWorker).options({ isolation: 'shared' });
  const actors = ids.map((id) => Worker.remote(id));
  return { pool: new ActorPool<PoolWorker, Result>(actors), actors };
}

async function collect<R>(results: AsyncIterable<R>): Promise<R[]> {
  const all: R[] = [];
  for await (const result of results) all.push(result);
  return all;
}

describe('ActorPool', () => {
  test('map gives results in input order, spreading the work over the actors, one item per actor at a time', T, async () => {
    const { pool } = makePool(['a', 'b', 'c']);
    const values = Array.from({ length: 20 }, (_, i) => i);
    const results = await collect(pool.map(work, values));
    assert.deepEqual(
      results.map(([, doubled]) => doubled),
      values.map((v) => v * 2),
    );
    assert.deepEqual(new Set(results.map(([id]) => id)), new Set(['a', 'b', 'c']));
    assert.ok(results.every(([, , running]) => running === 1), 'an actor got a second item before finishing the first');
    assert.equal(pool.hasNext(), false);
  });

  test('mapUnordered gives results as they finish', T, async () => {
    const { pool } = makePool(['slow', 'fast']);
    const gate = new Queue<string>();
    // Item 0 goes to 'slow' and waits on the gate; item 1 goes to 'fast' and returns at once.
    const results = pool.mapUnordered((actor, value: number) => actor.work.remote(value, value === 0 ? gate : null), [0, 1]);
    const first = await results.next();
    assert.deepEqual(first.value, ['fast', 2, 1]);
    await gate.put('go');
    const second = await results.next();
    assert.deepEqual(second.value, ['slow', 0, 1]);
    assert.equal((await results.next()).done, true);
  });

  test('mapUnordered over many items returns each result once', T, async () => {
    const { pool } = makePool(['a', 'b']);
    const results = await collect(pool.mapUnordered(work, Array.from({ length: 30 }, (_, i) => i)));
    assert.deepEqual(
      results.map(([, doubled]) => doubled).sort((x, y) => x - y),
      Array.from({ length: 30 }, (_, i) => i * 2),
    );
  });

  test('submit, hasNext and getNext: submission order, with more items than actors', T, async () => {
    const { pool } = makePool(['a', 'b']);
    assert.equal(pool.hasNext(), false);
    await rejectsWith(pool.getNext(), MinirayError, /submit/);
    for (let i = 0; i < 5; i++) pool.submit(work, i);
    assert.equal(pool.hasNext(), true);
    assert.equal(pool.hasFree(), false);
    const got: number[] = [];
    while (pool.hasNext()) got.push((await pool.getNext())[1]);
    assert.deepEqual(got, [0, 2, 4, 6, 8]);
    assert.equal(pool.hasFree(), true);
  });

  test('getNext with timeoutMs leaves the result pending, to get later', T, async () => {
    const { pool } = makePool(['a']);
    const gate = new Queue<string>();
    pool.submit((actor, value: number) => actor.work.remote(value, gate), 21);
    // The message gives the timeout asked for (not "49.86020999999994 ms", what was left of it).
    await rejectsWith(pool.getNext({ timeoutMs: 50 }), GetTimeoutError, /^ActorPool\.getNext\(\): no result within 50 ms$/);
    assert.equal(pool.hasNext(), true);
    await gate.put('go');
    assert.deepEqual(await pool.getNext(), ['a', 42, 1]);
    assert.equal(pool.hasNext(), false);
  });

  test("test_map_gh23107-like: map and mapUnordered stop at the first failed item, as Ray's map (a generator over get_next); submit/getNext go on", T, async () => {
    const { pool } = makePool(['a', 'b']);
    for (const kind of ['map', 'mapUnordered'] as const) {
      const seen: string[] = [];
      const results = kind === 'map' ? pool.map(work, [1, -1, 3, 4]) : pool.mapUnordered(work, [-1]);
      for (;;) {
        try {
          const next = await results.next();
          if (next.done === true) break;
          seen.push(String(next.value[1]));
        } catch (error) {
          seen.push(error instanceof TaskError ? 'TaskError' : String(error));
        }
      }
      assert.deepEqual(seen, kind === 'map' ? ['2', 'TaskError'] : ['TaskError']);
    }
    // The items after the failure ran on: both actors come back to the pool. Two getNext() at
    // once take two items in order (not the first one twice, as before).
    pool.submit(work, 5);
    pool.submit(work, 6);
    assert.deepEqual((await Promise.all([pool.getNext(), pool.getNext()])).map((r) => r[1]), [10, 12]);
    assert.equal(pool.hasNext(), false);
  });

  test('an item that fails rejects getNext once; the pool carries on with the rest', T, async () => {
    const { pool } = makePool(['a']);
    pool.submit(work, 1);
    pool.submit(work, -1);
    pool.submit(work, 3);
    assert.deepEqual(await pool.getNext(), ['a', 2, 1]);
    await rejectsWith(pool.getNext(), TaskError, /negative: -1/);
    assert.deepEqual(await pool.getNext(), ['a', 6, 1]);
    assert.equal(pool.hasNext(), false);
  });

  test('getNextUnordered hands out whichever finishes first', T, async () => {
    const { pool } = makePool(['a', 'b']);
    const gate = new Queue<string>();
    pool.submit((actor, value: number) => actor.work.remote(value, gate), 1);
    pool.submit(work, 2);
    assert.deepEqual(await pool.getNextUnordered(), ['b', 4, 1]);
    await gate.put('go');
    assert.deepEqual(await pool.getNextUnordered(), ['a', 2, 1]);
    assert.equal(pool.hasNext(), false);
  });

  test('an empty pool is refused', () => {
    assert.throws(() => new ActorPool([]), MinirayError);
  });
});

// ---- Queue ---------------------------------------------------------------------------------------

class Consumer {
  async consume(queue: Queue<number>, count: number): Promise<number[]> {
    const items: number[] = [];
    for (let i = 0; i < count; i++) items.push(await queue.get());
    return items;
  }
  async produce(queue: Queue<number>, from: number, count: number): Promise<number> {
    for (let i = 0; i < count; i++) await queue.put(from + i);
    return count;
  }
}

const produce = remote(async (queue: Queue<number>, from: number, count: number) => {
  for (let i = 0; i < count; i++) await queue.put(from + i);
  return count;
});

const consume = remote(async (queue: Queue<number>, count: number) => {
  const items: number[] = [];
  for (let i = 0; i < count; i++) items.push(await queue.get());
  return items;
});

describe('Queue', () => {
  test('put, get, size, empty, full: a FIFO', T, async () => {
    const queue = new Queue<string>();
    assert.equal(await queue.empty(), true);
    assert.equal(await queue.size(), 0);
    await queue.put('a');
    await queue.put('b');
    await queue.putNowait('c');
    assert.equal(await queue.size(), 3);
    assert.equal(await queue.empty(), false);
    assert.equal(await queue.full(), false, 'an unbounded queue is never full');
    assert.equal(await queue.get(), 'a');
    assert.equal(await queue.getNowait(), 'b');
    assert.equal(await queue.get({ timeoutMs: 1000 }), 'c');
    assert.equal(await queue.empty(), true);
  });

  test('items of any serializable type travel', T, async () => {
    const queue = new Queue<unknown>();
    const items = [{ a: [1, 2] }, new Map([['k', 1]]), 12n, null, new Uint8Array([1, 2, 3])];
    for (const item of items) await queue.put(item);
    for (const item of items) assert.deepEqual(await queue.get(), item);
  });

  test('a bounded queue: full, QueueFullError without waiting or after timeoutMs, put waits for room', T, async () => {
    const queue = new Queue<number>({ maxsize: 2 });
    assert.equal(queue.maxsize, 2);
    await queue.put(1);
    await queue.put(2);
    assert.equal(await queue.full(), true);
    await rejectsWith(queue.putNowait(3), QueueFullError);
    await rejectsWith(queue.put(3, { block: false }), QueueFullError);
    await rejectsWith(queue.put(3, { timeoutMs: 20 }), QueueFullError);
    assert.equal(await queue.size(), 2, 'a refused put added nothing');

    const waiting = queue.put(3); // blocks until there is room
    assert.equal(await queue.size(), 2, 'a waiting put went over maxsize');
    assert.equal(await queue.get(), 1);
    await waiting;
    assert.equal(await queue.size(), 2);
    assert.equal(await queue.get(), 2);
    assert.equal(await queue.get(), 3);
    assert.equal(await queue.full(), false);
  });

  test('get on an empty queue: QueueEmptyError without waiting or after timeoutMs; a timed-out get takes nothing later', T, async () => {
    const queue = new Queue<string>();
    await rejectsWith(queue.getNowait(), QueueEmptyError);
    await rejectsWith(queue.get({ block: false }), QueueEmptyError);
    await rejectsWith(queue.get({ timeoutMs: 20 }), QueueEmptyError);
    await queue.put('kept');
    assert.equal(await queue.size(), 1, 'the item went to a getter that had timed out');
    assert.equal(await queue.get({ timeoutMs: 1000 }), 'kept');
  });

  test('a blocking get waits for a put', T, async () => {
    const queue = new Queue<string>();
    const waiting = queue.get();
    const second = queue.get();
    await queue.put('first');
    await queue.put('second');
    assert.equal(await waiting, 'first');
    assert.equal(await second, 'second');
  });

  test('a task produces, an actor consumes', T, async () => {
    const queue = new Queue<number>();
    const consumer = remote(Consumer).remote();
    const consumed = consumer.consume.remote(queue, 100);
    assert.equal(await get(produce.remote(queue, 0, 100)), 100);
    assert.deepEqual(await get(consumed), Array.from({ length: 100 }, (_, i) => i));
    assert.equal(await queue.size(), 0);
  });

  test('an actor produces into a bounded queue, a task and the driver consume', T, async () => {
    const queue = new Queue<number>({ maxsize: 3 });
    const producer = remote(Consumer).options({ isolation: 'shared' }).remote();
    const produced = producer.produce.remote(queue, 0, 40);
    const byTask = await get(consume.remote(queue, 20));
    const byDriver: number[] = [];
    for (let i = 0; i < 20; i++) byDriver.push(await queue.get({ timeoutMs: 10_000 }));
    assert.equal(await get(produced), 40);
    assert.deepEqual([...byTask, ...byDriver], Array.from({ length: 40 }, (_, i) => i));
  });

  test('maxsize must be an integer >= 0', () => {
    for (const maxsize of [-1, 1.5, Number.NaN]) {
      assert.throws(() => new Queue({ maxsize }), InvalidOptionError, `maxsize ${maxsize}`);
    }
  });

  test('after shutdown() of a queue, its calls fail with ActorDiedError', T, async () => {
    const queue = new Queue<number>();
    await queue.put(1);
    queue.shutdown();
    await rejectsWith(queue.get(), ActorDiedError);
    await rejectsWith(queue.put(2), ActorDiedError);
  });
});

// Issue 8, item 16: map()/mapUnordered() hand out their own items only (Ray issue #23107) and
// submit at the call; pushIdle() refuses an actor the pool already has.
describe('ActorPool: each map has its own items', () => {
  test('map returns only its own results, not those submitted before it; getNext still has those', T, async () => {
    const { pool } = makePool(['a', 'b']);
    pool.submit(work, 100);
    pool.submit(work, 101);
    pool.submit(work, 102);
    const results = await collect(pool.map(work, [1, 2, 3]));
    assert.deepEqual(
      results.map(([, doubled]) => doubled),
      [2, 4, 6],
    );
    assert.equal(pool.hasNext(), true);
    const earlier: number[] = [];
    while (pool.hasNext()) earlier.push((await pool.getNext())[1]);
    assert.deepEqual(earlier, [200, 202, 204]);
  });

  test('mapUnordered returns only its own results, and two maps at once keep theirs apart', T, async () => {
    const { pool } = makePool(['a', 'b', 'c']);
    pool.submit(work, 50);
    const first = pool.mapUnordered(work, [1, 2, 3, 4]);
    const second = pool.map(work, [10, 11]);
    const [a, b] = await Promise.all([collect(first), collect(second)]);
    assert.deepEqual(a.map(([, doubled]) => doubled).sort((x, y) => x - y), [2, 4, 6, 8]);
    assert.deepEqual(
      b.map(([, doubled]) => doubled),
      [20, 22],
    );
    assert.deepEqual((await pool.getNext())[1], 100);
    assert.equal(pool.hasNext(), false);
  });

  test('map submits at the call, before its results are read, one item per actor at a time', T, async () => {
    const { pool } = makePool(['a', 'b']);
    const refs: ObjectRef<Result>[] = [];
    const counted = (actor: ActorHandle<PoolWorker>, value: number) => {
      const ref = work(actor, value);
      refs.push(ref);
      return ref;
    };
    const results = pool.map(counted, [1, 2, 3, 4, 5]);
    assert.equal(refs.length, 2, 'the two actors got an item each at the call');
    // Without reading a result, every item gets its turn as the actors finish.
    await until(() => refs.length === 5, 'all five items to be submitted');
    const done = await get(refs);
    assert.ok(done.every(([, , running]) => running === 1), 'an actor got a second item before finishing the first');
    assert.deepEqual(
      (await collect(results)).map(([, doubled]) => doubled),
      [2, 4, 6, 8, 10],
    );
  });

  test('a map behind work nobody reads still finishes (actors are free once their results exist)', T, async () => {
    const { pool } = makePool(['a']);
    for (let i = 0; i < 3; i++) pool.submit(work, i);
    const results = await collect(pool.map(work, [7, 8]));
    assert.deepEqual(
      results.map(([, doubled]) => doubled),
      [14, 16],
    );
  });

  test('pushIdle refuses an actor that is busy in the pool or already idle in it; a popped one comes back', T, async () => {
    const { pool, actors } = makePool(['a', 'b']);
    const [a, b] = actors as [ActorHandle<PoolWorker>, ActorHandle<PoolWorker>];
    const gate = new Queue<string>();
    // The first idle actor, a, takes the item and stays busy until the gate opens.
    pool.submit((actor, value: number) => actor.work.remote(value, gate), 1);
    const refused = (pattern: RegExp) => (e: unknown) => e instanceof InvalidArgumentError && pattern.test(e.message);
    assert.throws(() => pool.pushIdle(a), refused(/busy with an item of this pool/));
    assert.throws(() => pool.pushIdle(b), refused(/already idle in this pool/));
    // Another handle of the same actor (decoded in a task) is the same actor.
    const sameB = await get(remote((h: ActorHandle<PoolWorker>) => h).remote(b));
    assert.throws(() => pool.pushIdle(sameB), refused(/already idle/));
    assert.throws(() => pool.pushIdle({} as ActorHandle<PoolWorker>), refused(/expected an actor handle/));
    assert.equal(pool.popIdle(), b);
    assert.equal(pool.hasFree(), false);
    pool.pushIdle(sameB);
    assert.equal(pool.hasFree(), true);
    await gate.put('go');
    assert.deepEqual(await pool.getNext(), ['a', 2, 1]);
  });

  test('a submit function that throws or returns no ref fails its item only, even for a long backlog', T, async () => {
    const { pool } = makePool(['a']);
    const gate = new Queue<string>();
    pool.submit((actor, value: number) => actor.work.remote(value, gate), 1);
    const broken = (): never => {
      throw new RangeError('no such item');
    };
    for (let i = 0; i < 5000; i++) pool.submit(broken, i);
    pool.submit(() => 42 as unknown as ObjectRef<Result>, 0);
    pool.submit(work, 3);
    await gate.put('go');
    assert.deepEqual(await pool.getNext(), ['a', 2, 1]);
    for (let i = 0; i < 5000; i++) await rejectsWith(pool.getNext(), RangeError, /no such item/);
    await rejectsWith(pool.getNext(), InvalidArgumentError, /must return the ObjectRef/);
    assert.deepEqual(await pool.getNext(), ['a', 6, 1]);
    assert.equal(pool.hasNext(), false);
  });

  test('items waiting when every actor was popped say so instead of waiting forever', T, async () => {
    const { pool } = makePool(['a']);
    const gate = new Queue<string>();
    pool.submit((actor, value: number) => actor.work.remote(value, gate), 1);
    pool.submit(work, 2);
    await gate.put('go');
    assert.deepEqual(await pool.getNext(), ['a', 2, 1]);
    // The actor took the second item, finished it, and is idle: pop it, and submit more.
    await until(() => pool.hasFree(), 'the actor to be idle');
    const actor = pool.popIdle() as ActorHandle<PoolWorker>;
    assert.deepEqual(await pool.getNext(), ['a', 4, 1]);
    pool.submit(work, 3);
    await rejectsWith(pool.getNext(), MinirayError, /no actor is left.*pushIdle/);
    pool.pushIdle(actor);
    assert.deepEqual(await pool.getNext(), ['a', 6, 1]);
  });

  test('a pool is built from distinct actor handles', () => {
    const { actors } = makePool(['a']);
    assert.throws(() => new ActorPool([actors[0] as ActorHandle<PoolWorker>, actors[0] as ActorHandle<PoolWorker>]), InvalidArgumentError);
    assert.throws(() => new ActorPool([42 as unknown as ActorHandle<PoolWorker>]), InvalidArgumentError);
    // A handle made without its constructor has no actor behind it: refused by name, not a TypeError from inside.
    const forged = Object.create(Object.getPrototypeOf(actors[0]) as object) as ActorHandle<PoolWorker>;
    assert.throws(() => new ActorPool([forged]), (e: unknown) => e instanceof InvalidArgumentError && /expected an actor handle/.test(e.message));
    // Named as the call was made, not "ActorPool.new ActorPool()".
    assert.throws(() => new ActorPool([1, 2] as unknown as ActorHandle<PoolWorker>[]), (e: unknown) => e instanceof InvalidArgumentError && /^new ActorPool\(\): expected an actor handle \(from remote\(Class\)\.remote\(\)\), got /.test(e.message));
    const { pool } = makePool(['b']);
    assert.throws(() => pool.pushIdle(7 as unknown as ActorHandle<PoolWorker>), (e: unknown) => e instanceof InvalidArgumentError && /^ActorPool\.pushIdle\(\): expected an actor handle/.test(e.message));
  });

  test('getNext timeouts are checked as get() checks them: negative ones are InvalidOptionError, Infinity waits', T, async () => {
    const { pool } = makePool(['a']);
    pool.submit(work, 1);
    for (const timeoutMs of [-1, Number.NaN]) {
      await rejectsWith(pool.getNext({ timeoutMs }), InvalidOptionError, /timeoutMs/);
      await rejectsWith(pool.getNextUnordered({ timeoutMs }), InvalidOptionError, /timeoutMs/);
    }
    assert.deepEqual(await pool.getNext({ timeoutMs: Infinity }), ['a', 2, 1]);
  });
});

// Issue 8, item 11 (Queue): long timeouts wait long (setTimeout fires at once past 2**31 - 1 ms);
// negative ones are refused. Item 16: Queue options and actor namespace '' refused as in Ray.
describe('Queue timeouts and refused input', () => {
  for (const timeoutMs of [2 ** 31, 1e12, Infinity]) {
    test(`get({ timeoutMs: ${timeoutMs} }) waits, it does not time out at once`, T, async () => {
      const queue = new Queue<string>();
      const long = queue.get({ timeoutMs });
      // A second getter that times out after 50 ms: a timer that had overflowed to 1 ms fires first.
      await rejectsWith(queue.get({ timeoutMs: 50 }), QueueEmptyError);
      await queue.put('x');
      assert.equal(await long, 'x');
    });

    test(`put({ timeoutMs: ${timeoutMs} }) on a full queue waits for room`, T, async () => {
      const queue = new Queue<number>({ maxsize: 1 });
      await queue.put(1);
      const long = queue.put(2, { timeoutMs });
      await rejectsWith(queue.put(3, { timeoutMs: 50 }), QueueFullError);
      assert.equal(await queue.get(), 1);
      await long;
      assert.equal(await queue.get(), 2);
    });
  }

  test('negative, NaN or non-number timeouts and unknown options are InvalidOptionError', async () => {
    const queue = new Queue<number>();
    for (const timeoutMs of [-1, -0.5, Number.NaN, '5' as unknown as number]) {
      await rejectsWith(queue.get({ timeoutMs }), InvalidOptionError, /timeoutMs/);
      await rejectsWith(queue.put(1, { timeoutMs }), InvalidOptionError, /timeoutMs/);
    }
    await rejectsWith(queue.get({ timout: 5 } as unknown as { timeoutMs: number }), InvalidOptionError, /unknown option 'timout'/);
    await rejectsWith(queue.put(1, { block: 'yes' as unknown as boolean }), InvalidOptionError, /block/);
    assert.throws(() => new Queue({ maxsiz: 2 } as unknown as { maxsize: number }), InvalidOptionError);
    assert.equal(await queue.size(), 0, 'nothing refused reached the queue');
  });

  test("actor namespace '' is refused, at creation and at getActor(), as in Ray", async () => {
    assert.throws(() => remote(PoolWorker).options({ namespace: '' }), (e: unknown) => e instanceof InvalidOptionError && /namespace/.test(e.message));
    assert.throws(() => remote(PoolWorker, { namespace: '' }), InvalidOptionError);
    await rejectsWith(getActor('anything', { namespace: '' }), InvalidOptionError, /namespace/);
  });
});
