// Chaos: worker kills under load. A seeded stream of tasks, about 0.5% of which end their worker
// with process.exit on their first attempt (the attempt is told by a marker file the task writes
// before it exits). Every task must come back, with the right value, within the time limit: 0 lost,
// 0 wrong, 0 hung.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { get, init, remote, shutdown, type ObjectRef } from 'miniray';
import { report, scaled } from './figures.js';

const TASKS = scaled(20_000);
const EXIT_RATE = 0.005;
/** The whole check must finish within this, or it fails as hung. */
const LIMIT_MS = 240_000;

/** Returns `3 * value + 1`; with a marker path, first writes it and ends its worker, if it is not there yet. */
const compute = remote((value: number, exitMarker: string | null): number => {
  if (exitMarker !== null) {
    const { existsSync, writeFileSync } = process.getBuiltinModule('node:fs') as typeof import('node:fs');
    if (!existsSync(exitMarker)) {
      writeFileSync(exitMarker, '');
      process.exit(1);
    }
  }
  return 3 * value + 1;
});

/** A small linear congruential generator: the same seed gives the same run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

let dir: string;
before(async () => {
  await init({ numWorkers: 2, numCpus: 2 });
  dir = mkdtempSync(join(tmpdir(), 'miniray-chaos-kills-'));
});
after(async () => {
  await shutdown();
  rmSync(dir, { recursive: true, force: true });
});

test(`worker kills under load: ${TASKS} tasks, ~${EXIT_RATE * 100}% exit on their first attempt`, { timeout: LIMIT_MS + 30_000 }, async () => {
  const seed = Number(process.env.MINIRAY_CHAOS_SEED ?? 20_261_201);
  const random = seeded(seed);
  const startedAt = performance.now();
  const values: number[] = [];
  const refs: ObjectRef<number>[] = [];
  let exiting = 0;
  for (let i = 0; i < TASKS; i++) {
    const value = Math.floor(random() * 1_000_000);
    const exits = random() < EXIT_RATE;
    if (exits) exiting++;
    values.push(value);
    refs.push(compute.remote(value, exits ? join(dir, `exit-${i}`) : null));
  }
  let lost = 0;
  let wrong = 0;
  let hung = 0;
  const errors = new Map<string, number>();
  const deadline = Date.now() + LIMIT_MS;
  // In chunks, so that a hang is seen (and counted) per chunk rather than as one opaque timeout.
  const CHUNK = 1000;
  for (let start = 0; start < TASKS; start += CHUNK) {
    const chunk = refs.slice(start, start + CHUNK);
    const settled = await Promise.allSettled(chunk.map((ref) => get(ref, { timeoutMs: Math.max(1000, deadline - Date.now()) })));
    settled.forEach((outcome, j) => {
      const i = start + j;
      if (outcome.status === 'rejected') {
        const name = (outcome.reason as Error)?.name ?? String(outcome.reason);
        errors.set(name, (errors.get(name) ?? 0) + 1);
        if (name === 'GetTimeoutError') hung++;
        else lost++;
      } else if (outcome.value !== 3 * (values[i] as number) + 1) wrong++;
    });
  }
  const kills = readdirSync(dir).length;
  const seconds = (performance.now() - startedAt) / 1000;
  report('worker-kills', {
    seed,
    tasks: TASKS,
    exiting,
    kills,
    retries: kills,
    lost,
    wrong,
    hung,
    seconds: seconds.toFixed(1),
    ...(errors.size > 0 ? { errors: [...errors].map(([name, count]) => `${name}:${count}`).join(',') } : {}),
  });
  assert.equal(lost, 0, `lost: ${lost} (${[...errors].join('; ')})`);
  assert.equal(wrong, 0, `wrong: ${wrong}`);
  assert.equal(hung, 0, `hung: ${hung}`);
  assert.equal(kills, exiting, 'every exiting task ended its worker once, then ran again');
});
