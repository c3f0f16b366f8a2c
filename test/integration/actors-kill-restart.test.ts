// kill({ noRestart: false }) of an actor whose calls have all finished on its worker, with their
// results still on the way to the node: the calls made after kill() wait for the restart, which
// happens at the worker's exit. The results arriving first left the worker idle, no longer keeping
// the driver's process alive, so the process did not wait for that exit: a get() of a call made
// after kill() never settled, and node's test runner cancelled the test ('Promise resolution is
// still pending but the event loop has already resolved'). That was the intermittent hang of
// test/chaos/actor-kills.test.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ActorDiedError, get, init, kill, shutdown, type ObjectRef } from 'miniray';
import { PhoenixActor } from '../fixtures/actors-crash.js';

const T = { timeout: 120_000 };
// Before the fix, every run tried hung, nearly always in its first round (once in its third).
const ROUNDS = 2;
let markers: string;

before(async () => {
  markers = mkdtempSync(join(tmpdir(), 'miniray-actors-kill-'));
  await init({ numWorkers: 1, numCpus: 2 });
});

after(async () => {
  await shutdown();
  rmSync(markers, { recursive: true, force: true });
});

/** Blocks this thread (and so the node in it) without handling any message. */
function spinUntil(done: () => boolean, limitMs: number): void {
  const deadline = performance.now() + limitMs;
  while (!done()) assert.ok(performance.now() < deadline, 'the worker ran the calls');
}

for (const isolation of ['thread', 'process'] as const) {
  test(`${isolation}: kill({ noRestart: false }) while the results of every call sent are on the way: the calls after it run on the next instance`, T, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const actor = PhoenixActor.options({ isolation, maxRestarts: -1, maxTaskRetries: 0, maxConcurrency: 1 }).remote();
      const [first] = await get(actor.touch.remote());
      const marker = join(markers, `${isolation}-${round}`);
      const sent: ObjectRef<unknown>[] = [actor.touch.remote(), actor.touch.remote(), actor.busy.remote(marker, 0)];
      // One turn, so that the calls go out; then the node is kept from reading the worker's
      // results while the worker runs them all. The results of the first two were sent before
      // busy() started, the last one's right after it returns (the spin's margin).
      await new Promise((resolve) => setImmediate(resolve));
      spinUntil(() => existsSync(marker), 60_000);
      const margin = performance.now() + 50;
      spinUntil(() => performance.now() > margin, 1000);
      kill(actor, { noRestart: false });
      const later = actor.touch.remote();
      for (const ref of sent) {
        try {
          await get(ref);
        } catch (error) {
          // One that had not reported by the worker's end had started: it fails.
          assert.ok(error instanceof ActorDiedError, String(error));
        }
      }
      const [incarnation, n] = await get(later);
      assert.notEqual(incarnation, first, 'the call after kill() ran on the next instance');
      assert.equal(n, 1);
      kill(actor);
    }
  });
}
