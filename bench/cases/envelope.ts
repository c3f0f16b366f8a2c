/**
 * From Ray's scalability envelope: 1,000,000 queued tasks (100,000 with --quick). The driver submits
 * every no-op task in one synchronous loop (so all of them are queued before the first dispatch),
 * keeps the refs, then gets them all. Reported: the time to complete them all, and the driver's
 * memory per queued task (process.memoryUsage() after a full GC, before and right after the loop:
 * rss, and V8 heap used plus external/array buffers). The child runs with --expose-gc.
 */
import { get, shutdown, type ObjectRef } from 'miniray';
import type { CaseContext, CaseFn, Metric } from '../lib/protocol.js';
import { smallValue, startMiniray } from './tasks.js';

function collect(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return 0;
  const start = performance.now();
  gc();
  gc();
  return performance.now() - start;
}

async function queuedNoopTasks({ quick }: CaseContext): Promise<Record<string, Metric>> {
  const count = quick ? 100_000 : 1_000_000;
  await startMiniray();
  // Warm the path (function compiled in both workers) so the measurement is of queued tasks only.
  await get(Array.from({ length: 1000 }, () => smallValue.remote()));

  collect();
  const before = process.memoryUsage();
  const start = performance.now();
  const refs: ObjectRef<string>[] = new Array(count);
  for (let i = 0; i < count; i++) refs[i] = smallValue.remote();
  const submitted = performance.now();
  // Still synchronous: nothing has been dispatched yet, every task is queued in the node.
  const gcMs = collect();
  const after = process.memoryUsage();

  const values = await get(refs);
  const end = performance.now();
  if (values.length !== count || values[count - 1] !== 'ok') throw new Error('queued tasks returned wrong values');
  await shutdown();

  const seconds = (end - start - gcMs) / 1000;
  const rss = (after.rss - before.rss) / count;
  const heap = (after.heapUsed + after.external - before.heapUsed - before.external) / count;
  const n = count.toLocaleString('en-US');
  return {
    completion: { value: seconds, unit: 's', note: `${n} tasks, ${Math.round(count / seconds).toLocaleString('en-US')}/s` },
    submit: { value: (submitted - start) / 1000, unit: 's', note: `submitting ${n}` },
    rssPerTask: { value: rss, unit: 'B/task' },
    heapPerTask: { value: heap, unit: 'B/task' },
  };
}

export const cases: Record<string, CaseFn> = {
  queued_noop_tasks: queuedNoopTasks,
};
