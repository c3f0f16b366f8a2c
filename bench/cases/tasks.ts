/**
 * Ray's task cases from python/ray/_private/ray_perf.py, with Ray's names and definitions:
 *
 *   single_client_tasks_sync           get(small_value.remote()), one at a time; also its p50 latency
 *   single_client_tasks_async          1,000 small_value tasks, then get of all   (x1000 tasks/s)
 *   single_client_tasks_and_get_batch  the same 1,000 and get, counted per batch  (batches/s)
 *   multi_client_tasks_async           4 clients each submit 10,000 and get them (x40000 tasks/s)
 *   single_client_wait_1k_refs         1,000 tasks, then 1,000 wait() calls taking one ready each
 *
 * This module is also imported by miniray's workers: small_value_batch uses names from this module
 * (small_value, get), so miniray ships it by module import. Nothing here may start work at import.
 */
import { get, init, remote, shutdown, wait, type ObjectRef } from 'miniray';
import type { CaseContext, CaseFn, Metric } from '../lib/protocol.js';
import { timeit } from '../lib/timeit.js';

// Ray's small_value returns b"ok": the smallest real value. A self-contained function, so miniray
// ships it as source.
export const smallValue = remote(function small_value() {
  return 'ok';
});

/**
 * Ray's multi_client_tasks_async uses m = 4 actors (Actor, num_cpus=0) as clients, each running
 * small_value_batch(n = 10,000): submit n small_value tasks, then get them all. miniray has no actors
 * yet (issue 4), so the clients are tasks that themselves submit and get: same work, same count of
 * concurrent submitters, each holding no CPU (numCpus: 0, like Ray's num_cpus=0 actor) so that the
 * small_value tasks can use both workers while the clients wait in get().
 */
export const smallValueBatch = remote(
  async function small_value_batch(n: number) {
    const submitted: ObjectRef<string>[] = [];
    for (let i = 0; i < n; i++) submitted.push(smallValue.remote());
    await get(submitted);
    return 0;
  },
  { numCpus: 0 },
);

export async function startMiniray(): Promise<void> {
  // Two workers, as the peers (Piscina, Tinypool) get in the same run.
  await init({ numWorkers: 2, numCpus: 2 });
}

function submitBatch(n: number): ObjectRef<string>[] {
  const submitted: ObjectRef<string>[] = new Array(n);
  for (let i = 0; i < n; i++) submitted[i] = smallValue.remote();
  return submitted;
}

const perSecond = (value: number, runs: readonly number[], note?: string): Metric =>
  note === undefined ? { value, unit: '/s', runs } : { value, unit: '/s', runs, note };

async function tasksSync({ mode }: CaseContext): Promise<Record<string, Metric>> {
  await startMiniray();
  const m = await timeit(mode, () => get(smallValue.remote()), { latencies: true });
  await shutdown();
  return { rate: perSecond(m.rate, m.runs), p50: { value: m.p50Us as number, unit: 'us' } };
}

async function tasksAsync({ mode }: CaseContext): Promise<Record<string, Metric>> {
  await startMiniray();
  const m = await timeit(mode, () => get(submitBatch(1000)), { multiplier: 1000 });
  await shutdown();
  return { rate: perSecond(m.rate, m.runs) };
}

async function tasksAndGetBatch({ mode }: CaseContext): Promise<Record<string, Metric>> {
  await startMiniray();
  const m = await timeit(mode, () => get(submitBatch(1000)));
  await shutdown();
  return { rate: perSecond(m.rate, m.runs, 'batches of 1,000') };
}

async function multiClientTasksAsync({ mode }: CaseContext): Promise<Record<string, Metric>> {
  const n = 10_000;
  const clients = 4;
  await startMiniray();
  const m = await timeit(
    mode,
    () => {
      const submitted: ObjectRef<number>[] = [];
      for (let i = 0; i < clients; i++) submitted.push(smallValueBatch.remote(n));
      return get(submitted);
    },
    { multiplier: n * clients },
  );
  await shutdown();
  return { rate: perSecond(m.rate, m.runs, '4 task clients x 10,000') };
}

async function wait1kRefs({ mode }: CaseContext): Promise<Record<string, Metric>> {
  await startMiniray();
  const m = await timeit(mode, async () => {
    let notReady = submitBatch(1000);
    for (let i = 0; i < 1000; i++) {
      notReady = (await wait(notReady)).pending;
    }
  });
  await shutdown();
  return { rate: perSecond(m.rate, m.runs) };
}

export const cases: Record<string, CaseFn> = {
  single_client_tasks_sync: tasksSync,
  single_client_tasks_async: tasksAsync,
  single_client_tasks_and_get_batch: tasksAndGetBatch,
  multi_client_tasks_async: multiClientTasksAsync,
  single_client_wait_1k_refs: wait1kRefs,
};
