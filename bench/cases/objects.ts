/**
 * Ray's object cases from python/ray/_private/ray_perf.py, with Ray's names and definitions:
 *
 *   single_client_put_calls                       put(0)                                  (calls/s)
 *   single_client_get_calls                       get(ref of put(0))                      (calls/s)
 *   multi_client_put_calls                        10 tasks, each put(0) 100 times (x1000 puts/s)
 *   single_client_put_gigabytes                   put of an int64 array of zeros              (GB/s)
 *   single_client_get_object_containing_10k_refs  get of an object holding 10,000 refs    (gets/s)
 *
 * This module is also imported by miniray's workers (do_put_small and create_object_containing_ref
 * use put from this module's imports). Nothing here may start work at import.
 */
import { get, put, remote, shutdown, type ObjectRef } from 'miniray';
import type { CaseContext, CaseFn, Metric } from '../lib/protocol.js';
import { timeit } from '../lib/timeit.js';
import { startMiniray } from './tasks.js';

export const doPutSmall = remote(function do_put_small() {
  for (let i = 0; i < 100; i++) put(0);
  return null;
});

export const createObjectContainingRef = remote(function create_object_containing_ref() {
  const refs: ObjectRef<number>[] = [];
  for (let i = 0; i < 10_000; i++) refs.push(put(1));
  return refs;
});

async function putCalls({ mode }: CaseContext): Promise<Record<string, Metric>> {
  await startMiniray();
  const m = await timeit(mode, () => put(0));
  await shutdown();
  return { rate: { value: m.rate, unit: '/s', runs: m.runs } };
}

async function getCalls({ mode }: CaseContext): Promise<Record<string, Metric>> {
  await startMiniray();
  const value = put(0);
  const m = await timeit(mode, () => get(value));
  await shutdown();
  return { rate: { value: m.rate, unit: '/s', runs: m.runs } };
}

async function multiClientPutCalls({ mode }: CaseContext): Promise<Record<string, Metric>> {
  await startMiniray();
  const m = await timeit(
    mode,
    () => {
      const submitted: ObjectRef<null>[] = [];
      for (let i = 0; i < 10; i++) submitted.push(doPutSmall.remote());
      return get(submitted);
    },
    { multiplier: 1000 },
  );
  await shutdown();
  return { rate: { value: m.rate, unit: '/s', runs: m.runs, note: '10 tasks x 100 puts' } };
}

/**
 * Ray puts np.zeros(100 * 1024 * 1024, dtype=np.int64), 800 MiB, counted as 0.8 GB. Here: the same
 * kind of array at 1/8 of the size, 100 MiB (104,857,600 bytes, counted as 0.1048576 GB, so GB/s
 * here are 10^9 bytes/s, as in the memcpy limit it is compared with). Why smaller: the object store
 * frees nothing yet (no reference counting), so every put stays in memory; at 800 MiB a few puts
 * would hold gigabytes on this shared 24 GB machine and take seconds each. For the same reason the
 * node is restarted (outside the timing) before the warm-up and each timed run, which frees the
 * objects of the previous run.
 */
async function putGigabytes({ mode }: CaseContext): Promise<Record<string, Metric>> {
  const bytes = 100 * 1024 * 1024;
  const array = new BigInt64Array(bytes / 8);
  let running = false;
  const m = await timeit(mode, () => put(array), {
    multiplier: bytes / 1e9,
    beforeRun: async () => {
      if (running) await shutdown();
      await startMiniray();
      running = true;
    },
  });
  await shutdown();
  return { rate: { value: m.rate, unit: 'GB/s', runs: m.runs, note: `puts of ${bytes / 2 ** 20} MiB` } };
}

async function getObjectContaining10kRefs({ mode }: CaseContext): Promise<Record<string, Metric>> {
  await startMiniray();
  const objContainingRef = createObjectContainingRef.remote();
  await get(objContainingRef);
  const m = await timeit(mode, () => get(objContainingRef));
  await shutdown();
  return { rate: { value: m.rate, unit: '/s', runs: m.runs } };
}

export const cases: Record<string, CaseFn> = {
  single_client_put_calls: putCalls,
  single_client_get_calls: getCalls,
  multi_client_put_calls: multiClientPutCalls,
  single_client_put_gigabytes: putGigabytes,
  single_client_get_object_containing_10k_refs: getObjectContaining10kRefs,
};
