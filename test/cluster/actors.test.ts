// Actors across drivers (actors part), on a cluster of real processes: getIfExists from two
// drivers at once reaches one actor, as Ray's get_if_exists does through its GCS
// (python/ray/tests/test_actor.py: test_get_actor_if_exists / test_actor_get_if_exists_race).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cluster, resultsOf } from './harness.js';

describe('actors across drivers', { timeout: 300_000 }, () => {
  let cluster: Cluster | undefined;
  before(async () => {
    cluster = await Cluster.start({ numCpus: 1 }, [{ numCpus: 1 }]);
  });
  after(async () => {
    await cluster?.stop();
  });

  test('test_get_actor_if_exists_race: two drivers racing with getIfExists reach one actor', async () => {
    const c = cluster as Cluster;
    const name = 'raced-across-drivers';
    const drivers = [0, 1].map(() => c.driver('actors-driver.mjs', ['getIfExists', JSON.stringify({ name })]));
    await Promise.all(drivers.map((d) => d.match(/READY/, 120_000)));
    for (const d of drivers) d.send('go');
    const outcomes = await Promise.all(drivers.map((d) => d.ended()));
    for (const [i, outcome] of outcomes.entries()) assert.equal(outcome.code, 0, `driver ${i}: ${drivers[i]?.describe()}`);
    const [a, b] = drivers.map((d) => resultsOf(d.stdout)[0] as { id: string; totals: number[] });
    assert.equal(a?.id, b?.id, 'both reached the same instance (one constructor ran)');
    assert.deepEqual([...(a?.totals ?? []), ...(b?.totals ?? [])].sort((x, y) => x - y), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const reader = c.driver('actors-driver.mjs', ['total', JSON.stringify({ name })]);
    await reader.match(/READY/, 120_000);
    reader.send('go');
    await reader.ended();
    assert.deepEqual(resultsOf(reader.stdout)[0], { id: a?.id, total: 10, streamed: [0, 1, 2] });
  });

  // ray.kill of a get_if_exists handle ends the actor that holds the name (the handle is the
  // holder's). Here the handle's ID is the claimant's until the GCS answers, and the kill waits for
  // that answer: once with a holder (the detached actor of the test above), once without.
  test('kill() right after a getIfExists creation ends the actor that ends up with the name, held before or not', async () => {
    const c = cluster as Cluster;
    const holder = c.driver('actors-driver.mjs', ['getIfExists', JSON.stringify({ name: 'killed-at-once' })]);
    await holder.match(/READY/, 120_000);
    holder.send('go');
    assert.equal((await holder.ended()).code, 0, holder.describe());
    for (const name of ['killed-at-once', 'killed-at-once-unheld']) {
      const driver = c.driver('actors-driver.mjs', ['killAtOnce', JSON.stringify({ name })]);
      await driver.match(/READY/, 120_000);
      driver.send('go');
      assert.equal((await driver.ended()).code, 0, driver.describe());
      const seen = resultsOf(driver.stdout)[0] as { free: boolean; tries: number; after: string };
      assert.equal(seen.free, true, `${name}: the name is free again (after ${seen.tries} lookups)`);
      assert.equal(seen.after, 'ActorDiedError', `${name}: a call after its death fails`);
    }
  });

  test('test_actor_gc across nodes: an actor on another node ends when the driver\'s handles are collected', async () => {
    const c = cluster as Cluster;
    const driver = c.driver('actors-driver.mjs', ['outOfScope', JSON.stringify({ name: 'gc-across' })], { nodeArgs: ['--expose-gc'] });
    await driver.match(/READY/, 120_000);
    driver.send('go');
    const outcome = await driver.ended();
    assert.equal(outcome.code, 0, driver.describe());
    // (Whether it was still alive just after the call depends on when V8 collected the handle.)
    const seen = resultsOf(driver.stdout)[0] as { first: number; gone: boolean; rounds: number; deathCause: string };
    assert.equal(seen.first, 1, 'the call through a dropped handle was answered');
    assert.equal(seen.gone, true, `the actor ended (after ${seen.rounds} GC rounds)`);
    // The reason callers see is the true one, on the actor's node too (it said "was killed with kill()").
    assert.match(seen.deathCause, /every handle to it went out of scope/);
    assert.doesNotMatch(seen.deathCause, /was killed with kill/);
  });
});
