// The actor utilities (Ray's ray.util): ActorPool over a set of handles, and Queue, an actor-backed
// FIFO usable from the driver, tasks and actors.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ActorDiedError,
  ActorPool,
  GetTimeoutError,
  InvalidOptionError,
  MinirayError,
  Queue,
  QueueEmptyError,
  QueueFullError,
  TaskError,
  get,
  init,
  remote,
  shutdown,
  type ActorHandle,
} from 'miniray';
import { rejectsWith } from '../fixtures/assertions.js';


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
    await rejectsWith(pool.getNext({ timeoutMs: 50 }), GetTimeoutError);
    assert.equal(pool.hasNext(), true);
    await gate.put('go');
    assert.deepEqual(await pool.getNext(), ['a', 42, 1]);
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
