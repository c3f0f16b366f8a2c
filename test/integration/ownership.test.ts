// Objects outlive the thread that created them. A node keeps the object table of all its threads
// (docs/architecture.md, "Ownership"), so a ref that an actor or a task handed out still reads after
// that actor is killed or that worker crashed. Ray, whose owners are worker processes, fails the
// same get with OwnerDiedError (its users' most reported failure; measured with Ray 2.60 in this
// session's note). This pins the choice.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerCrashedError, get, init, kill, shutdown } from 'miniray';
import { Maker, exitWorker, makeInTask } from '../fixtures/ownership-lib.js';

describe('an object outlives its creator', () => {
  before(async () => {
    await init({ numWorkers: 1, numCpus: 1 });
  });
  after(async () => {
    await shutdown();
  });

  for (const isolation of ['thread', 'shared', 'process'] as const) {
    test(`put by a ${isolation} actor that was killed since`, async () => {
      const maker = Maker.options({ isolation }).remote();
      const [inner] = await get(maker.make.remote(`from a ${isolation} actor`));
      assert.ok(inner !== undefined);
      kill(maker);
      // A call after kill() fails once the actor is gone: its thread or process has ended.
      await assert.rejects(get(maker.make.remote('too late')));
      assert.equal(await get(inner), `from a ${isolation} actor`);
    });
  }

  test('put by a task whose worker crashed since', async () => {
    const [inner] = await get(makeInTask.remote('from a task'));
    assert.ok(inner !== undefined);
    // One worker: the crash ends the very thread that put the object.
    await assert.rejects(get(exitWorker.remote()), WorkerCrashedError);
    assert.equal(await get(inner), 'from a task');
  });
});
