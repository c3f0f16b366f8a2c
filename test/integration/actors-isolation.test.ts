// Isolation modes: 'shared' packs many actors into a few worker threads (1,000 here, each with its
// own state); 'process' gives an actor a child process of its own. Also: handles from a session
// that was shut down.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ActorDiedError,
  Queue,
  TaskError,
  get,
  getActor,
  getRuntimeContext,
  init,
  kill,
  remote,
  shutdown,
  type ActorHandle,
} from 'miniray';
import { rejectsWith } from '../fixtures/assertions.js';
import { CounterActor, WhereActor, incViaTask, type Counter } from '../fixtures/actors-lib.js';


const T = { timeout: 30_000 };
const NUM_CPUS = 2;

class Cell {
  value: number;
  readonly id: number;
  constructor(id: number) {
    this.id = id;
    this.value = id;
  }
  add(x: number): number {
    this.value += x;
    return this.value;
  }
  read(): { id: number; value: number } {
    return { id: this.id, value: this.value };
  }
  fail(): never {
    throw new Error(`cell ${this.id} failed`);
  }
}

class Waiter {
  async take(queue: Queue<string>): Promise<string> {
    return queue.get();
  }
  hello(): string {
    return 'hello';
  }
}

class Failing {
  constructor() {
    throw new Error('no process for you');
  }
  hello(): string {
    return 'hello';
  }
}

describe("isolation 'shared'", () => {
  before(async () => {
    await init({ numWorkers: 1, numCpus: NUM_CPUS });
  });
  after(async () => {
    await shutdown();
  });

  test('1,000 actors each keep their own state', T, async () => {
    const SharedCell = remote(Cell).options({ isolation: 'shared' });
    const cells = Array.from({ length: 1000 }, (_, i) => SharedCell.remote(i));
    // Two rounds of calls, interleaved across actors: each actor sees only its own.
    assert.deepEqual(await get(cells.map((cell, i) => cell.add.remote(i))), Array.from({ length: 1000 }, (_, i) => 2 * i));
    assert.deepEqual(await get(cells.map((cell) => cell.add.remote(1))), Array.from({ length: 1000 }, (_, i) => 2 * i + 1));
    const reads = await get(cells.map((cell) => cell.read.remote()));
    reads.forEach((read, i) => assert.deepEqual(read, { id: i, value: 2 * i + 1 }));
    for (const cell of cells) kill(cell);
  });

  test('many actors share a few worker threads', T, async () => {
    const SharedWhere = WhereActor.options({ isolation: 'shared' });
    const actors = Array.from({ length: 200 }, (_, i) => SharedWhere.remote(i));
    assert.deepEqual(await get(actors.map((a) => a.ident.remote())), Array.from({ length: 200 }, (_, i) => i));
    const workers = new Set(await get(actors.map((a) => a.workerId.remote())));
    assert.ok(workers.size >= 1 && workers.size <= NUM_CPUS, `200 'shared' actors on ${workers.size} workers`);
    assert.ok(!workers.has(getRuntimeContext().workerId));
    // 'thread' actors each get a worker of their own.
    const threads = [WhereActor.remote(0), WhereActor.remote(1)];
    const threadWorkers = await get(threads.map((a) => a.workerId.remote()));
    assert.notEqual(threadWorkers[0], threadWorkers[1]);
    for (const id of threadWorkers) assert.ok(!workers.has(id));
    for (const actor of [...actors, ...threads]) kill(actor);
  });

  test('a method that throws in one shared actor leaves its neighbours alone', T, async () => {
    const SharedCell = remote(Cell).options({ isolation: 'shared' });
    const cells = Array.from({ length: 10 }, (_, i) => SharedCell.remote(i));
    await rejectsWith(get(cells[3]!.fail.remote()), TaskError, /cell 3 failed/);
    assert.deepEqual(await get(cells.map((cell) => cell.add.remote(1))), Array.from({ length: 10 }, (_, i) => i + 1));
    for (const cell of cells) kill(cell);
  });

  test('a shared actor waiting in an async method does not hold up its neighbours', T, async () => {
    const SharedWaiter = remote(Waiter).options({ isolation: 'shared' });
    const waiters = Array.from({ length: 2 * NUM_CPUS }, () => SharedWaiter.remote());
    const queue = new Queue<string>();
    // Every waiter is busy waiting for an item; all of them still answer other calls.
    const takes = waiters.map((w) => w.take.remote(queue));
    assert.deepEqual(await get(waiters.map((w) => w.hello.remote())), Array(waiters.length).fill('hello'));
    for (let i = 0; i < waiters.length; i++) await queue.put(`item ${i}`);
    assert.deepEqual([...(await get(takes))].sort(), Array.from({ length: waiters.length }, (_, i) => `item ${i}`));
  });

  test('ordering holds for 1,000 calls to a shared actor', T, async () => {
    const cell = remote(Cell).options({ isolation: 'shared' }).remote(0);
    const refs = Array.from({ length: 1000 }, () => cell.add.remote(1));
    assert.deepEqual(await get(refs), Array.from({ length: 1000 }, (_, i) => i + 1));
  });

  test('killing a shared actor fails its calls and frees its name', T, async () => {
    const cell = remote(Cell).options({ isolation: 'shared', name: 'shared-cell' }).remote(5);
    const neighbour = remote(Cell).options({ isolation: 'shared' }).remote(6);
    assert.equal(await get((await getActor<Cell>('shared-cell')).add.remote(1)), 6);
    kill(cell);
    await rejectsWith(get(cell.read.remote()), ActorDiedError);
    await rejectsWith(getActor('shared-cell'), Error);
    assert.equal(await get(neighbour.add.remote(1)), 7);
  });
});

describe("isolation 'process'", () => {
  before(async () => {
    await init({ numWorkers: 1, numCpus: NUM_CPUS });
  });
  after(async () => {
    await shutdown();
  });

  test('an actor in its own process keeps state, runs calls in order, and takes handles and refs', T, async () => {
    const counter = CounterActor.options({ isolation: 'process' }).remote(10);
    assert.equal(await get(counter.inc.remote(1)), 11);
    const refs = Array.from({ length: 1000 }, () => counter.inc.remote(1));
    assert.deepEqual(await get(refs), Array.from({ length: 1000 }, (_, i) => 12 + i));
    // Its handle works from a task, and a ref works as an argument.
    assert.equal(await get(incViaTask.remote(counter, 5)), 1016);
    assert.equal(await get(counter.inc.remote(remote(() => 4).remote())), 1020);
  });

  test('a class from the test file (shipped as source) runs in a process too', T, async () => {
    const cell = remote(Cell).options({ isolation: 'process', name: 'process-cell' }).remote(1);
    assert.equal(await get(cell.add.remote(1)), 2);
    await rejectsWith(get(cell.fail.remote()), TaskError, /cell 1 failed/);
    const found = await getActor<Cell>('process-cell');
    assert.deepEqual(await get(found.read.remote()), { id: 1, value: 2 });
    kill(cell);
    await rejectsWith(get(found.read.remote()), ActorDiedError);
  });

  test('a constructor that throws in a process makes the actor dead with the TaskError as cause', T, async () => {
    const broken = remote(Failing).options({ isolation: 'process' }).remote();
    const error = await rejectsWith(get(broken.hello.remote()), ActorDiedError, /no process for you/);
    assert.ok(error.cause instanceof TaskError);
  });
});

describe('handles across sessions', () => {
  test('a handle from before shutdown() fails with ActorDiedError after init() again', T, async () => {
    await init({ numWorkers: 1, numCpus: NUM_CPUS });
    let old: ActorHandle<Counter>;
    try {
      old = CounterActor.options({ isolation: 'shared' }).remote(1);
      assert.equal(await get(old.inc.remote(1)), 2);
    } finally {
      await shutdown();
    }
    await init({ numWorkers: 1, numCpus: NUM_CPUS });
    try {
      await rejectsWith(get(old.inc.remote(1)), ActorDiedError);
    } finally {
      await shutdown();
    }
  });
});
