// Actors whose worker dies: restarts from the constructor up to maxRestarts, retries of calls in
// flight up to maxTaskRetries, ActorDiedError after the last restart, kill({ noRestart: false }),
// and a crash in one actor leaving every other actor (and the driver) alone.
//
// Crashes are real: the actor calls process.exit() (test/fixtures/actors-lib.ts), which ends its
// worker thread, or its child process with isolation 'process'.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ActorDiedError, Queue, get, getActor, init, kill, remote, shutdown } from 'miniray';
import { rejectsWith } from '../fixtures/assertions.js';
import { CounterActor, CrashyActor, type Crashy } from '../fixtures/actors-lib.js';
import { PhoenixActor, type Seen } from '../fixtures/actors-crash.js';
import { crashy } from '../fixtures/actors.js';


const T = { timeout: 30_000 };
let markers: string;

before(async () => {
  markers = mkdtempSync(join(tmpdir(), 'miniray-actors-'));
  await init({ numWorkers: 1, numCpus: 2 });
});

after(async () => {
  await shutdown();
  rmSync(markers, { recursive: true, force: true });
});

describe('restarts', () => {
  test('an actor whose worker dies restarts from its constructor, up to maxRestarts, then is dead', T, async () => {
    const actor = CrashyActor.options({ maxRestarts: 2 }).remote();
    assert.equal(await get(actor.inc.remote()), 1);
    assert.equal(await get(actor.inc.remote()), 2);

    // Restart 1: the call that crashed fails (no task retries); the state starts over.
    await rejectsWith(get(actor.die.remote()), ActorDiedError, /die/);
    assert.equal(await get(actor.inc.remote()), 1);
    assert.equal(await get(actor.inc.remote()), 2);

    // Restart 2.
    await rejectsWith(get(actor.die.remote()), ActorDiedError);
    assert.equal(await get(actor.inc.remote()), 1);

    // No restarts left: dead for good, and every later call says so.
    await rejectsWith(get(actor.die.remote()), ActorDiedError);
    for (let i = 0; i < 3; i++) {
      await rejectsWith(get(actor.inc.remote()), ActorDiedError, /2 restart/);
    }
  });

  test('maxRestarts: 0 (the default) means the first crash is the last', T, async () => {
    const actor = CrashyActor.remote();
    assert.equal(await get(actor.inc.remote()), 1);
    await rejectsWith(get(actor.die.remote()), ActorDiedError);
    await rejectsWith(get(actor.inc.remote()), ActorDiedError, /maxRestarts: 0/);
  });

  test('options given to remote() in a module hold (test/fixtures/actors.ts: maxRestarts 1)', T, async () => {
    const actor = crashy.remote();
    assert.equal(await get(actor.inc.remote()), 1);
    await rejectsWith(get(actor.die.remote()), ActorDiedError);
    assert.equal(await get(actor.inc.remote()), 1);
    await rejectsWith(get(actor.die.remote()), ActorDiedError);
    await rejectsWith(get(actor.inc.remote()), ActorDiedError);
  });

  test('a call queued behind the crash never sees the old state', T, async () => {
    const actor = CrashyActor.options({ maxRestarts: 1 }).remote();
    assert.equal(await get(actor.inc.remote()), 1);
    assert.equal(await get(actor.inc.remote()), 2);
    const crash = actor.die.remote();
    const behind = actor.inc.remote();
    await rejectsWith(get(crash), ActorDiedError);
    // Ray fails calls that were already sent to the dead worker; one that was not runs after the restart.
    try {
      assert.equal(await get(behind), 1);
    } catch (error) {
      assert.ok(error instanceof ActorDiedError, `expected 1 or ActorDiedError, got ${String(error)}`);
    }
    assert.ok((await get(actor.inc.remote())) <= 2);
  });

  test('maxTaskRetries retries the calls in flight after the restart, in order', T, async () => {
    const actor = CrashyActor.options({ maxRestarts: 2, maxTaskRetries: 1 }).remote();
    assert.equal(await get(actor.inc.remote()), 1);
    // crashOnce ends the worker the first time only: its retry, and the calls behind it, run on
    // the restarted actor (fresh state), in submission order.
    const refs = [actor.crashOnce.remote(markers, 'retried'), actor.inc.remote(), actor.inc.remote()] as const;
    assert.equal(await get(refs[0]), 'survived retried with n=0');
    assert.equal(await get(refs[1]), 1);
    assert.equal(await get(refs[2]), 2);

    // A call that crashes on every try uses its one retry (and the last restart), then fails.
    const error = await rejectsWith(get(actor.die.remote()), ActorDiedError, /maxTaskRetries: 1/);
    assert.match(error.message, /2 time/);
    await rejectsWith(get(actor.inc.remote()), ActorDiedError);
  });

  test('without maxTaskRetries the call in flight fails, and the restarted actor carries on', T, async () => {
    const actor = CrashyActor.options({ maxRestarts: 1 }).remote();
    assert.equal(await get(actor.inc.remote()), 1);
    await rejectsWith(get(actor.crashOnce.remote(markers, 'not-retried')), ActorDiedError, /crashOnce/);
    // The marker exists now, so the same call succeeds on the restarted actor.
    assert.equal(await get(actor.crashOnce.remote(markers, 'not-retried')), 'survived not-retried with n=0');
  });

  test('maxRestarts: -1 restarts without limit', T, async () => {
    const actor = CrashyActor.options({ maxRestarts: -1 }).remote();
    for (let i = 0; i < 3; i++) {
      assert.equal(await get(actor.inc.remote()), 1);
      await rejectsWith(get(actor.die.remote()), ActorDiedError);
    }
    assert.equal(await get(actor.inc.remote()), 1);
    kill(actor);
    await rejectsWith(get(actor.inc.remote()), ActorDiedError);
  });

  test('a named actor keeps its name across a restart and loses it when dead', T, async () => {
    const actor = CrashyActor.options({ name: 'phoenix', maxRestarts: 1 }).remote();
    assert.equal(await get(actor.inc.remote()), 1);
    await rejectsWith(get(actor.die.remote()), ActorDiedError);
    const found = await getActor<Crashy>('phoenix');
    assert.equal(await get(found.inc.remote()), 1);
    await rejectsWith(get(found.die.remote()), ActorDiedError);
    await rejectsWith(getActor('phoenix'), Error);
  });
});

describe('kill and restarts', () => {
  test('kill(handle, { noRestart: false }) restarts the actor from its constructor', T, async () => {
    // maxTaskRetries: a call sent while the old worker is still going away is retried, not lost.
    const actor = CrashyActor.options({ maxRestarts: 1, maxTaskRetries: 1 }).remote();
    assert.equal(await get(actor.inc.remote()), 1);
    assert.equal(await get(actor.inc.remote()), 2);
    kill(actor, { noRestart: false });
    assert.equal(await get(actor.inc.remote()), 1);
    // Out of restarts: the next kill({ noRestart: false }) is final.
    kill(actor, { noRestart: false });
    await rejectsWith(get(actor.inc.remote()), ActorDiedError);
  });

  test('kill(handle, { noRestart: false }) of an actor without restarts kills it', T, async () => {
    const actor = CounterActor.remote(0);
    assert.equal(await get(actor.inc.remote(1)), 1);
    kill(actor, { noRestart: false });
    await rejectsWith(get(actor.inc.remote(1)), ActorDiedError);
  });

  test("kill(handle, { noRestart: false }) restarts a 'shared' actor and spares its neighbours", T, async () => {
    const Shared = CounterActor.options({ isolation: 'shared', maxRestarts: 1 });
    const actors = Array.from({ length: 6 }, (_, i) => Shared.remote(i * 10));
    assert.deepEqual(await get(actors.map((a) => a.inc.remote(1))), [1, 11, 21, 31, 41, 51]);
    const [victim, ...others] = actors as [(typeof actors)[0], ...typeof actors];
    kill(victim, { noRestart: false });
    assert.equal(await get(victim.inc.remote(5)), 5);
    assert.deepEqual(await get(others.map((a) => a.inc.remote(1))), [12, 22, 32, 42, 52]);
    kill(victim);
    await rejectsWith(get(victim.inc.remote(1)), ActorDiedError);
    assert.deepEqual(await get(others.map((a) => a.value.remote())), [12, 22, 32, 42, 52]);
  });
});

describe('crash isolation', () => {
  test("a crash in one 'thread' actor does not affect other actors", T, async () => {
    const victim = CrashyActor.remote();
    const sibling = CrashyActor.remote(); // same class, own thread
    const counter = CounterActor.remote(100);
    const shared = CounterActor.options({ isolation: 'shared' }).remote(1000);
    assert.equal(await get(victim.inc.remote()), 1);
    assert.equal(await get(sibling.inc.remote()), 1);
    assert.equal(await get(sibling.inc.remote()), 2);
    assert.equal(await get(counter.inc.remote(1)), 101);
    assert.equal(await get(shared.inc.remote(1)), 1001);

    await rejectsWith(get(victim.die.remote()), ActorDiedError);
    await rejectsWith(get(victim.inc.remote()), ActorDiedError);

    assert.equal(await get(sibling.inc.remote()), 3);
    assert.equal(await get(counter.inc.remote(1)), 102);
    assert.equal(await get(shared.inc.remote(1)), 1002);
    // Tasks still run.
    assert.equal(await get(remote((a: number, b: number) => a + b).remote(1, 2)), 3);
  });

  test("a crash in a 'process' actor does not affect the driver; the actor restarts in a new process", T, async () => {
    const actor = CrashyActor.options({ isolation: 'process', maxRestarts: 1 }).remote();
    const counter = CounterActor.remote(0);
    const firstPid = await get(actor.processId.remote());
    assert.notEqual(firstPid, process.pid, "a 'process' actor runs in a process of its own");
    assert.equal(await get(actor.inc.remote()), 1);
    assert.equal(await get(actor.inc.remote()), 2);

    await rejectsWith(get(actor.die.remote()), ActorDiedError);
    // The driver is alive (this code runs), and so are other actors.
    assert.equal(await get(counter.inc.remote(1)), 1);
    assert.equal(await get(actor.inc.remote()), 1);
    const secondPid = await get(actor.processId.remote());
    assert.notEqual(secondPid, firstPid);
    assert.notEqual(secondPid, process.pid);

    await rejectsWith(get(actor.die.remote()), ActorDiedError);
    await rejectsWith(get(actor.inc.remote()), ActorDiedError);
    assert.equal(await get(counter.inc.remote(1)), 2);
  });
});

// Issue 8, item 1: a death may fail (or use a retry of) only the calls that had started on the
// instance that died; the calls queued behind them run on the restarted instance, in order.
describe('calls that had not started when the actor died', () => {
  const ISOLATIONS = ['thread', 'shared', 'process'] as const;

  for (const isolation of ISOLATIONS) {
    test(`${isolation}: crash() then three touch(): the crash fails, the touches run on the restarted instance`, T, async () => {
      const actor = PhoenixActor.options({ isolation, maxRestarts: 1, maxConcurrency: 1 }).remote();
      const [before] = await get(actor.touch.remote());
      const crash = actor.crash.remote();
      const touches = [actor.touch.remote(), actor.touch.remote(), actor.touch.remote()];
      await rejectsWith(get(crash), ActorDiedError, /died while running crash/);
      const seen: Seen[] = await get(touches);
      const [after] = seen[0] as Seen;
      assert.notEqual(after, before, 'the touches ran on the restarted instance');
      assert.deepEqual(seen, [[after, 1], [after, 2], [after, 3]]);
    });

    test(`${isolation}: maxTaskRetries 1, five calls behind one that always crashes: the five succeed, free`, T, async () => {
      const actor = PhoenixActor.options({ isolation, maxRestarts: 10, maxTaskRetries: 1, maxConcurrency: 1 }).remote();
      const crash = actor.crash.remote();
      const touches = Array.from({ length: 5 }, () => actor.touch.remote());
      // The crash runs twice (its one retry), and fails; nothing behind it used a retry.
      await rejectsWith(get(crash), ActorDiedError, /tried 2 time/);
      const seen: Seen[] = await get(touches);
      assert.deepEqual(
        seen.map(([, n]) => n),
        [1, 2, 3, 4, 5],
      );
      assert.equal(new Set(seen.map(([incarnation]) => incarnation)).size, 1);
      // Two deaths used two of the ten restarts: the actor lives on.
      assert.equal((await get(actor.touch.remote()))[1], 6);
    });
  }

  test('an async actor: the calls running at the crash fail, the ones waiting for a slot run after the restart', T, async () => {
    const actor = PhoenixActor.options({ maxRestarts: 1, maxConcurrency: 2 }).remote();
    const [before] = await get(actor.touch.remote());
    // hold() and crash() fill the two slots: both have started when the worker dies.
    const held = actor.hold.remote();
    const crash = actor.crash.remote();
    const touches = [actor.touch.remote(), actor.touch.remote()];
    await rejectsWith(get(crash), ActorDiedError, /crash/);
    await rejectsWith(get(held), ActorDiedError, /died while running hold/);
    const seen: Seen[] = await get(touches);
    assert.notEqual((seen[0] as Seen)[0], before);
    assert.deepEqual(
      seen.map(([, n]) => n),
      [1, 2],
    );
  });

  for (const isolation of ISOLATIONS) {
    test(`${isolation}: kill({ noRestart: false }) fails the call running; the calls queued behind it run on the next instance`, T, async () => {
      const actor = PhoenixActor.options({ isolation, maxRestarts: 1, maxConcurrency: 1 }).remote();
      const started = new Queue<string>();
      const held = actor.hold.remote(started);
      // Queued at the worker behind hold(), which holds the only slot: they never start there.
      const queued = [actor.touch.remote(), actor.touch.remote()];
      const before = await started.get();
      kill(actor, { noRestart: false });
      const after = [actor.touch.remote()];
      await rejectsWith(get(held), ActorDiedError, /died while running hold: it was killed with kill/);
      const seen: Seen[] = await get([...queued, ...after]);
      const [incarnation] = seen[0] as Seen;
      assert.notEqual(incarnation, before);
      assert.deepEqual(seen, [[incarnation, 1], [incarnation, 2], [incarnation, 3]]);
    });
  }

  // A 'shared' worker runs an actor's synchronous calls back to back: the destroy of a kill must
  // still reach the calls queued behind the running one, or they all run on the instance killed
  // (and it goes on being 'killed' long after, ignoring the next kill).
  test("'shared': kill({ noRestart: false }) during a synchronous call: the calls queued behind it run on the next instance", T, async () => {
    const actor = PhoenixActor.options({ isolation: 'shared', maxRestarts: 1, maxConcurrency: 1 }).remote();
    const [first] = await get(actor.touch.remote());
    const marker = join(markers, 'shared-busy');
    const busy = actor.busy.remote(marker, 2000);
    const queued = Array.from({ length: 20 }, () => actor.touch.remote());
    for (const deadline = Date.now() + 20_000; !existsSync(marker); ) {
      assert.ok(Date.now() < deadline, 'busy() started');
      await new Promise((resolve) => setImmediate(resolve));
    }
    kill(actor, { noRestart: false });
    // busy() returns before its worker can read the destroy: it had started, and it succeeded.
    assert.deepEqual(await get(busy), [first, 2]);
    const seen: Seen[] = await get(queued);
    const [incarnation] = seen[0] as Seen;
    assert.notEqual(incarnation, first);
    assert.deepEqual(seen, Array.from({ length: 20 }, (_, k) => [incarnation, k + 1]));
  });

  test('at scale: 10,000 calls with 50 that crash; only the crashing ones fail, the rest run in order', { timeout: 300_000 }, async () => {
    const actor = PhoenixActor.options({ maxRestarts: -1, maxConcurrency: 1 }).remote();
    const crashes = new Set(Array.from({ length: 50 }, (_, k) => 100 + k * 199));
    const refs = Array.from({ length: 10_000 }, (_, i) => actor.stepOrCrash.remote(i, crashes.has(i)));
    let ok = 0;
    let failed = 0;
    let last: [string, number, number] | undefined;
    for (let i = 0; i < refs.length; i++) {
      try {
        const seen = await get(refs[i] as (typeof refs)[0]);
        assert.ok(!crashes.has(i), `call ${i} should have crashed`);
        if (last !== undefined && last[0] === seen[0]) assert.equal(seen[1], last[1] + 1, `call ${i} ran out of order`);
        else assert.equal(seen[1], 1, `call ${i} is not the first on its instance`);
        last = seen;
        ok++;
      } catch (error) {
        assert.ok(error instanceof ActorDiedError, `call ${i}: ${String(error)}`);
        assert.ok(crashes.has(i), `call ${i} failed but did not crash: ${error.message}`);
        failed++;
      }
    }
    assert.deepEqual({ ok, failed }, { ok: 10_000 - 50, failed: 50 });
  });
});
