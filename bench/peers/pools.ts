/**
 * The peers: Piscina and Tinypool, 2 worker threads each, running a no-op task (noop-worker.mjs)
 * as their users would (`pool.run(...)`). Figures: the round trip (one task at a time: rate and
 * p50 latency) and a batch of 10,000 tasks submitted at once, then awaited (tasks/s).
 */
import { Piscina } from 'piscina';
import Tinypool from 'tinypool';
import type { CaseContext, CaseFn, Metric } from '../lib/protocol.js';
import { timeit } from '../lib/timeit.js';

const filename = new URL('./noop-worker.mjs', import.meta.url).href;
const BATCH = 10_000;

interface Pool {
  run(task: unknown): Promise<unknown>;
  destroy(): Promise<unknown>;
}

async function measurePool(pool: Pool, { mode }: CaseContext): Promise<Record<string, Metric>> {
  // Both pools start their threads lazily or in the background: let them come up first.
  await Promise.all([pool.run(null), pool.run(null)]);
  const roundTrip = await timeit(mode, () => pool.run(null), { latencies: true });
  const batch = await timeit(
    mode,
    () => {
      const tasks: Promise<unknown>[] = new Array(BATCH);
      for (let i = 0; i < BATCH; i++) tasks[i] = pool.run(null);
      return Promise.all(tasks);
    },
    { multiplier: BATCH },
  );
  await pool.destroy();
  return {
    roundTrip: { value: roundTrip.rate, unit: '/s', runs: roundTrip.runs },
    roundTripP50: { value: roundTrip.p50Us as number, unit: 'us' },
    batch: { value: batch.rate, unit: '/s', runs: batch.runs, note: 'batches of 10,000' },
  };
}

export const cases: Record<string, CaseFn> = {
  piscina: (context) => measurePool(new Piscina({ filename, minThreads: 2, maxThreads: 2 }), context),
  tinypool: (context) => measurePool(new Tinypool({ filename, minThreads: 2, maxThreads: 2 }), context),
};
