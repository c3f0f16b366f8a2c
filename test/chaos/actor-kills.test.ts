// Chaos: actors killed during a stream of calls, for each isolation mode and for maxTaskRetries 0
// and 2, two ways: the actor's own method calls process.exit() (on the first try of chosen calls),
// and its worker is killed from outside (SIGKILL of a 'process' actor's process; kill({ noRestart:
// false }) of a thread's). Every call must succeed or fail with ActorDiedError, the calls must run
// in submission order on each instance, no call may run on an instance after a later call ran on a
// newer one, and nothing may hang. Only calls that had started when an instance died may fail:
// with process.exit() that is exactly the crashing call (without retries) or none (with them).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ActorDiedError, get, init, kill, shutdown, type ObjectRef } from 'miniray';
import { PhoenixActor } from '../fixtures/actors-crash.js';
import { report, scaled } from './figures.js';

type Step = [incarnation: string, n: number, i: number];

const CALLS = scaled(600);
const DEATHS = scaled(3);
/** Calls submitted per turn of the event loop: the stream arrives in many batches. */
const CHUNK = 25;
/** Calls submitted and not yet read, at most: a kill always finds calls running and queued. */
const WINDOW = 200;

let markers: string;

before(async () => {
  markers = mkdtempSync(join(tmpdir(), 'miniray-chaos-actors-'));
  await init({ numWorkers: 1, numCpus: 2 });
});

after(async () => {
  await shutdown();
  rmSync(markers, { recursive: true, force: true });
});

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('actor kills during a stream of calls', () => {
  for (const isolation of ['thread', 'shared', 'process'] as const) {
    for (const maxTaskRetries of [0, 2]) {
      for (const how of ['exit', 'kill'] as const) {
        test(`${isolation}, maxTaskRetries ${maxTaskRetries}, ${how === 'exit' ? 'process.exit() in a method' : 'worker killed'}`, { timeout: 600_000 }, async () => {
          const started = performance.now();
          const actor = PhoenixActor.options({ isolation, maxRestarts: -1, maxTaskRetries, maxConcurrency: 1 }).remote();
          const every = Math.floor(CALLS / (DEATHS + 1));
          const deathPoints = new Set(Array.from({ length: DEATHS }, (_, k) => (k + 1) * every));
          const dir = mkdtempSync(join(markers, `${isolation}-${maxTaskRetries}-${how}-`));

          // The producer submits the stream a chunk per turn while the consumer reads it.
          const refs: ObjectRef<Step>[] = [];
          let consumed = 0;
          const producing = (async () => {
            for (let i = 0; i < CALLS; i++) {
              while (i - consumed >= WINDOW) await turn();
              refs.push(
                how === 'exit' && deathPoints.has(i) ? actor.stepOrCrashOnce.remote(i, dir) : actor.step.remote(i, 50),
              );
              if (i % CHUNK === CHUNK - 1) await turn();
            }
          })();

          let ok = 0;
          let failed = 0;
          let kills = 0;
          let last: Step | undefined;
          let killedIncarnation: string | undefined;
          const incarnations: string[] = [];
          for (let j = 0; j < CALLS; j++, consumed++) {
            while (refs.length <= j) await turn();
            // A kill must hit a live instance: one that has answered since the last kill. (The
            // producer runs ahead, so the calls up to the next death point may all have been
            // answered by the instance killed last, and a kill then would find it restarting.)
            if (how === 'kill' && deathPoints.has(j) && last !== undefined && last[0] !== killedIncarnation) {
              kills++;
              killedIncarnation = last[0];
              if (isolation === 'process') {
                try {
                  process.kill(Number(last[0].split('-')[0]), 'SIGKILL');
                } catch {
                  // That instance was already gone.
                }
              } else {
                kill(actor, { noRestart: false });
              }
            }
            try {
              const step = await get(refs[j] as ObjectRef<Step>);
              const [incarnation, n, i] = step;
              assert.equal(i, j);
              if (last !== undefined && last[0] === incarnation) {
                assert.equal(n, last[1] + 1, `call ${j} did not run right after call ${last[2]} on its instance`);
              } else {
                assert.ok(!incarnations.includes(incarnation), `call ${j} ran on an older instance than call ${last?.[2]}`);
                assert.equal(n, 1, `call ${j} is the first result of its instance but not the first call it ran`);
                incarnations.push(incarnation);
              }
              last = step;
              ok++;
            } catch (error) {
              assert.ok(error instanceof ActorDiedError, `call ${j} failed with ${String(error)}`);
              failed++;
            }
          }
          await producing;
          if (how === 'kill') {
            // The instance started by the last kill may have had no call left to answer (the
            // killed one answered them all first): one more call shows it.
            const [incarnation] = await get(actor.step.remote(CALLS, 0));
            if (!incarnations.includes(incarnation)) incarnations.push(incarnation);
          }
          kill(actor);
          const figures = {
            isolation,
            maxTaskRetries,
            how,
            calls: CALLS,
            ok,
            failed,
            restarts: incarnations.length - 1,
            seconds: ((performance.now() - started) / 1000).toFixed(1),
          };
          report('actor-kills', how === 'kill' ? { ...figures, kills } : figures);
          if (how === 'exit') {
            // Exactly the calls that crashed fail without retries; with them, none does.
            assert.equal(failed, maxTaskRetries === 0 ? DEATHS : 0);
            assert.equal(incarnations.length, DEATHS + 1);
          } else {
            assert.ok(kills >= 1, 'no kill was made');
            assert.equal(incarnations.length, kills + 1, 'every kill hit a live instance, which restarted');
            // With retries, every call that had started at a kill ran again on the next instance.
            if (maxTaskRetries > 0) assert.equal(failed, 0);
          }
          assert.equal(ok + failed, CALLS);
        });
      }
    }
  }
});
