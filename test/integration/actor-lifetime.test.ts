// Actor lifetimes from the installed package, after Ray's python/ray/tests/test_actor_lifetime.py,
// test_actor.py and test_actor_failures.py: a non-detached actor lives while a handle to it exists
// anywhere (handles are counted as refs are; pending calls hold it), a detached one until kill(),
// getIfExists, exitActor() and ActorDiedError.actorId.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ActorDiedError, ActorNotFoundError, InvalidOptionError, TaskError, get, getActor, init, kill, remote, shutdown, type ObjectRef } from 'miniray';
import { gc, collectRounds } from '../fixtures/gc.js';
import { QuitterActor, TallyActor, addToNamedTally, exitInTask } from '../fixtures/actor-lifetime-lib.js';
import { incViaTask, CounterActor } from '../fixtures/actors-lib.js';

const T = { timeout: 60_000 };
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Whether a live actor has this name (the handle getActor gives is dropped at once). */
async function exists(name: string): Promise<boolean> {
  return getActor(name).then(
    () => true,
    (error: unknown) => {
      if (error instanceof ActorNotFoundError) return false;
      throw error;
    },
  );
}

/** GC rounds until no live actor has `name`; fails after the deadline. */
async function collectUntilGone(name: string, deadlineMs = 30_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (await exists(name)) {
    if (Date.now() > deadline) throw new Error(`actor '${name}' still alive after ${deadlineMs} ms of garbage collection`);
    gc();
    await turn();
  }
}

class Pinger {
  ping(): string {
    return 'pong';
  }
}

before(() => init({ numCpus: 2 }));
after(() => shutdown());

describe('test_actor_lifetime', () => {
  test('test_actor_gc: a non-detached actor ends when its last handle is collected (named too, as in Ray)', T, async () => {
    (() => {
      remote(Pinger).options({ name: 'gc-me' }).remote();
    })();
    await collectUntilGone('gc-me');
  });

  test('test_detached_actor: a detached actor outlives its handles, until kill()', T, async () => {
    (() => {
      remote(Pinger).options({ name: 'keep-me', lifetime: 'detached' }).remote();
    })();
    await collectRounds(20);
    const handle = await getActor<Pinger>('keep-me');
    assert.equal(await get(handle.ping.remote()), 'pong');
    kill(handle);
    await collectUntilGone('keep-me');
  });

  test('a handle kept anywhere keeps the actor: while the driver holds one, GC does not end it', T, async () => {
    const handle = remote(Pinger).options({ name: 'held' }).remote();
    await collectRounds(20);
    assert.equal(await get(handle.ping.remote()), 'pong');
    assert.equal(await exists('held'), true);
  });

  test('a pending call holds its actor: get(Actor.remote().method.remote()) works', T, async () => {
    const refs = Array.from({ length: 5 }, () => remote(Pinger).remote().ping.remote());
    gc();
    assert.deepEqual(await get(refs), ['pong', 'pong', 'pong', 'pong', 'pong']);
  });

  test('test_actor_handle_passed_to_task: the task borrows the handle after the driver dropped its own', T, async () => {
    const ref = incViaTask.remote(CounterActor.options({ name: 'borrowed' }).remote(10), 5);
    gc();
    assert.equal(await get(ref), 15);
    await collectUntilGone('borrowed');
  });
});

describe('test_get_actor_if_exists', () => {
  test('getIfExists returns the live actor of that name, else creates it', T, async () => {
    const first = TallyActor.options({ name: 'tally', getIfExists: true }).remote();
    const second = TallyActor.options({ name: 'tally', getIfExists: true }).remote();
    assert.equal(second.actorId.toHex(), first.actorId.toHex());
    assert.equal(await get(first.add.remote(1)), 1);
    assert.equal(await get(second.add.remote(1)), 2);
    // Without a name there is nothing to reach: refused (as Ray's), not a new actor made quietly.
    assert.throws(() => TallyActor.options({ getIfExists: true }).remote(), (error: unknown) => error instanceof InvalidOptionError && /needs a name/.test(error.message));
  });

  test('many callers racing (the driver and 20 tasks) reach one actor', T, async () => {
    const name = 'raced';
    const mine = Array.from({ length: 20 }, () => TallyActor.options({ name, getIfExists: true }).remote());
    const fromTasks = await get(Array.from({ length: 20 }, () => addToNamedTally.remote(name)));
    assert.equal(new Set(mine.map((h) => h.actorId.toHex())).size, 1);
    assert.equal(Math.max(...fromTasks), 20);
    assert.equal(await get((mine[0] as (typeof mine)[number]).add.remote(0)), 20);
  });
});

describe('test_exit_actor (test_actor_failures.py)', () => {
  test('exitActor() ends the actor cleanly: its call and pending ones fail with ActorDiedError saying so; no restart', T, async () => {
    const actor = QuitterActor.options({ maxRestarts: 3 }).remote();
    assert.equal(await get(actor.ping.remote()), 1);
    const quit = actor.quit.remote();
    const after = actor.ping.remote();
    for (const ref of [quit, after] as ObjectRef<unknown>[]) {
      await assert.rejects(get(ref), (error: unknown) => {
        assert.ok(error instanceof ActorDiedError, String(error));
        assert.equal(error.exitedIntentionally, true);
        assert.equal(error.actorId, actor.actorId.toHex());
        assert.match(error.message, /exited intentionally.*exitActor\(\)/);
        return true;
      });
    }
    // Not restarted (maxRestarts: 3 notwithstanding): later calls fail the same way.
    await assert.rejects(get(actor.ping.remote()), (error: unknown) => error instanceof ActorDiedError && error.exitedIntentionally);
  });

  test('exitActor() outside an actor method only throws (a TaskError)', T, async () => {
    await assert.rejects(get(exitInTask.remote()), (error: unknown) => error instanceof TaskError && /exitActor\(\)/.test(error.message));
  });

  test('ActorDiedError carries actorId after kill()', T, async () => {
    const actor = remote(Pinger).remote();
    kill(actor);
    await assert.rejects(get(actor.ping.remote()), (error: unknown) => error instanceof ActorDiedError && error.actorId === actor.actorId.toHex());
  });
});
