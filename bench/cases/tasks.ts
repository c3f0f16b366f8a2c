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
import { median, timeit } from '../lib/timeit.js';

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

/**
 * single_client_tasks_async with task events recorded and without (MINIRAY_TASK_EVENTS_ENABLED),
 * in pairs of rounds in this one process (a fresh init() each; which goes first alternates), so
 * that both see the same machine. Each round times batches of 1,000 tasks for `measureMs` after a
 * warm-up of `warmupMs`, as single_client_tasks_async is timed (1 s, then 2 s: a round shorter than
 * a few of the event buffer's intervals would time the first interval of a burst, which is
 * recorded more fully than a steady stream, see src/state/events.ts), by the wall clock (tasks/s)
 * and by the CPU time of the whole process, every thread
 * (us/task: steadier than the rate on a loaded machine, where the rate swings with the other
 * processes). Each figure is the median of its rounds; `ratio` and `cpuRatio` are the medians of
 * the pairs' ratios (a pair's rounds are seconds apart, so drift mostly cancels in it).
 */
async function tasksAsyncEvents({ quick }: CaseContext): Promise<Record<string, Metric>> {
  const pairs = quick ? 3 : 8;
  const warmupMs = quick ? 300 : 1000;
  const measureMs = quick ? 700 : 2000;
  const rounds = { on: { rate: [] as number[], cpu: [] as number[] }, off: { rate: [] as number[], cpu: [] as number[] } };
  const ratios: number[] = [];
  const cpuRatios: number[] = [];
  const before = process.env['MINIRAY_TASK_EVENTS_ENABLED'];
  const measure = async (on: boolean): Promise<{ rate: number; cpu: number }> => {
    process.env['MINIRAY_TASK_EVENTS_ENABLED'] = on ? '1' : '0';
    await startMiniray();
    for (const warmupStart = performance.now(); performance.now() - warmupStart < warmupMs; ) await get(submitBatch(1000));
    const cpuAt = process.cpuUsage();
    const startedAt = performance.now();
    let batches = 0;
    for (; performance.now() - startedAt < measureMs; batches++) await get(submitBatch(1000));
    const seconds = (performance.now() - startedAt) / 1000;
    const cpu = process.cpuUsage(cpuAt);
    await shutdown();
    const result = { rate: (batches * 1000) / seconds, cpu: (cpu.user + cpu.system) / (batches * 1000) };
    rounds[on ? 'on' : 'off'].rate.push(result.rate);
    rounds[on ? 'on' : 'off'].cpu.push(result.cpu);
    return result;
  };
  try {
    for (let i = 0; i < pairs; i++) {
      const onFirst = i % 2 === 1;
      const first = await measure(onFirst);
      const second = await measure(!onFirst);
      const [on, off] = onFirst ? [first, second] : [second, first];
      ratios.push(on.rate / off.rate);
      cpuRatios.push(on.cpu / off.cpu);
    }
  } finally {
    if (before === undefined) delete process.env['MINIRAY_TASK_EVENTS_ENABLED'];
    else process.env['MINIRAY_TASK_EVENTS_ENABLED'] = before;
  }
  const us = (value: number, runs: number[]): Metric => ({ value, unit: 'us', runs, note: 'CPU per task, all threads' });
  return {
    on: perSecond(median(rounds.on.rate), rounds.on.rate, `${pairs} rounds`),
    off: perSecond(median(rounds.off.rate), rounds.off.rate, `${pairs} rounds`),
    ratio: { value: median(ratios), unit: 'x', runs: ratios, note: `median of ${pairs} pairs` },
    cpuOn: us(median(rounds.on.cpu), rounds.on.cpu),
    cpuOff: us(median(rounds.off.cpu), rounds.off.cpu),
    cpuRatio: { value: median(cpuRatios), unit: 'x', runs: cpuRatios, note: `median of ${pairs} pairs` },
  };
}

export const cases: Record<string, CaseFn> = {
  single_client_tasks_sync: tasksSync,
  single_client_tasks_async: tasksAsync,
  single_client_tasks_async_events: tasksAsyncEvents,
  single_client_tasks_and_get_batch: tasksAndGetBatch,
  multi_client_tasks_async: multiClientTasksAsync,
  single_client_wait_1k_refs: wait1kRefs,
};
