// Ownership, as in Ray: an object lives only as long as its owner, the worker (driver, task thread,
// actor) that put it or submitted the task that makes it. When that worker ends, whoever still
// holds a ref to one of its objects gets OwnerDiedError at get(), at once; the tasks it submitted
// stop, and the non-detached actors it created end. (Measured against Ray 2.60: see the note of
// this work, and docs/architecture.md, "Ownership".)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ActorDiedError, OwnerDiedError, WorkerCrashedError, get, init, kill, memory, shutdown, wait } from 'miniray';
import { until } from '../fixtures/assertions.js';
import { Gate } from '../fixtures/coordination.js';
import { Maker, echo, exitWorker, makeInTask } from '../fixtures/ownership-lib.js';

describe('an object dies with its owner', () => {
  before(async () => {
    await init({ numWorkers: 1, numCpus: 1 });
  });
  after(async () => {
    await shutdown();
  });

  for (const isolation of ['thread', 'process'] as const) {
    test(`put by a ${isolation} actor that was killed since`, async () => {
      const maker = Maker.options({ isolation }).remote();
      const [inner] = await get(maker.make.remote(`from a ${isolation} actor`));
      assert.ok(inner !== undefined);
      assert.equal(await get(inner), `from a ${isolation} actor`, 'readable while its owner lives');
      kill(maker);
      // A call after kill() fails once the actor is gone: its thread or process has ended.
      await assert.rejects(get(maker.make.remote('too late')), ActorDiedError);
      await assert.rejects(get(inner), (error: unknown) => {
        assert.ok(error instanceof OwnerDiedError, String(error));
        assert.match(error.message, new RegExp(`ObjectRef\\(${inner.id.toHex()}\\) was owned by worker \\w{8} \\(the ${isolation} of actor Maker\\), which ended`));
        assert.match(error.message, /return the value itself/);
        return true;
      });
      // Its value is gone from the store: what is left of it is its error.
      const left = (await memory()).objects.find((o) => o.id === inner.id.toHex());
      assert.equal(left?.state, 'failed');
      // wait() counts it as done (as Ray's), and a task given it fails with the same error.
      const { ready } = await wait([inner], { timeoutMs: 10_000 });
      assert.equal(ready.length, 1);
      await assert.rejects(get(echo.remote(inner)), OwnerDiedError);
    });
  }

  test("a 'shared' actor's objects live while the thread it shares does", async () => {
    // Actors with isolation 'shared' run in one thread, whose CoreWorker owns what each puts:
    // killing one of them does not end that thread.
    const keeper = Maker.options({ isolation: 'shared' }).remote();
    const maker = Maker.options({ isolation: 'shared' }).remote();
    const [inner] = await get(maker.make.remote('from a shared actor'));
    assert.ok(inner !== undefined);
    await get(keeper.make.remote('keeps the thread'));
    kill(maker);
    await assert.rejects(get(maker.make.remote('too late')), ActorDiedError);
    assert.equal(await get(inner), 'from a shared actor');
    kill(keeper);
  });

  test('put by a task whose worker crashed since', async () => {
    const [inner] = await get(makeInTask.remote('from a task'));
    assert.ok(inner !== undefined);
    // One worker: the crash ends the very thread that put the object.
    await assert.rejects(get(exitWorker.remote()), WorkerCrashedError);
    await assert.rejects(get(inner), /was owned by worker \w{8} \(a task thread\), which died/);
    await assert.rejects(get(inner), OwnerDiedError);
  });

  test('the tasks an actor submitted stop when it ends, running or queued', async () => {
    const gate = new Gate();
    const maker = Maker.remote();
    // One task worker: the first child runs (behind the gate), the second waits in the queue.
    const children = await get(maker.submitChildren.remote(gate.name, 2));
    await gate.whenWaiting(1);
    kill(maker);
    for (const child of children) {
      await assert.rejects(get(child, { timeoutMs: 10_000 }), (error: unknown) => {
        assert.ok(error instanceof OwnerDiedError, String(error));
        assert.match(error.message, /Maker/);
        return true;
      });
    }
    gate.open(); // the running one ends; its result has no owner and is dropped
    // The worker is free again: a new task runs.
    const [again] = await get(makeInTask.remote('after'));
    assert.equal(await get(again as never), 'after');
  });

  test('an actor made by an actor ends with it', async () => {
    const maker = Maker.remote();
    const [pinger] = await get(maker.makeActor.remote());
    assert.ok(pinger !== undefined);
    assert.equal(await get(pinger.ping.remote()), 'pong');
    kill(maker);
    await assert.rejects(get(pinger.ping.remote()), (error: unknown) => {
      assert.ok(error instanceof ActorDiedError, String(error));
      assert.match(error.message, /its owner, worker \w{8} \(the thread of actor Maker\), ended/);
      return true;
    });
  });

  test('an owner busy in code that never yields still serves what it owns, and its child is retried meanwhile', async () => {
    // Ray answers for an owner from threads of its own while the owner's Python code runs; a
    // JavaScript thread cannot answer anything while it runs user code. So the owners' tables are
    // kept on their node's thread, which runs no user code: this test fails if they move into the
    // owner's thread (the reads and the retry would wait for the spin, which would give up).
    const dir = mkdtempSync(join(tmpdir(), 'miniray-busy-owner-'));
    const [started, release, marker] = ['started', 'release', 'crashed'].map((name) => join(dir, name)) as [string, string, string];
    try {
      // maxConcurrency 2: a second call would run beside the spin if the thread could run anything.
      const owner = Maker.options({ maxConcurrency: 2 }).remote();
      const [small] = await get(owner.make.remote('small'));
      const [large] = await get(owner.makeLarge.remote());
      const [child] = await get(owner.submitCrashingChild.remote(started, marker));
      assert.ok(small !== undefined && large !== undefined && child !== undefined);
      const spin = owner.spin.remote(started, release, 60_000);
      await until(() => existsSync(started), 'the owner to begin to spin', 10_000);
      const probe = owner.make.remote('probe');
      assert.equal(await get(small), 'small');
      const bytes = await get(large);
      assert.equal(bytes.length, 8 << 20);
      assert.equal(bytes[bytes.length - 1], 7);
      assert.equal(await get(child), 42, 'the child ran again after its first attempt crashed its worker');
      assert.ok(existsSync(marker), 'the first attempt crashed');
      const { ready } = await wait([probe], { timeoutMs: 0 });
      assert.equal(ready.length, 0, "the owner's thread ran nothing else meanwhile");
      writeFileSync(release, '');
      assert.equal(await get(spin), 'released', 'all of the above happened while the owner spun');
      await get(probe);
      kill(owner);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
