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
 * Ray puts np.zeros(100 * 1024 * 1024, dtype=np.int64), 800 MiB, counted as 0.8 GB, in a loop and
 * drops each ref at once (Python frees it then). Here: the same kind of array at 1/8 of the size,
 * 100 MiB (104,857,600 bytes, counted as 0.1048576 GB, so GB/s here are 10^9 bytes/s, as in the
 * memcpy limit it is compared with), to keep memory moderate on this shared machine. The refs are
 * dropped too; JavaScript frees them only when the garbage collector runs, so every 8 puts the case
 * collects (gc() and one event-loop turn, timed with the puts), and the store reuses the freed,
 * already-touched memory for the next puts, as a long-running program's store would.
 */
async function putGigabytes({ mode }: CaseContext): Promise<Record<string, Metric>> {
  const bytes = 100 * 1024 * 1024;
  const array = new BigInt64Array(bytes / 8);
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect === undefined) throw new Error('single_client_put_gigabytes needs node --expose-gc');
  await startMiniray();
  let puts = 0;
  const m = await timeit(
    mode,
    async () => {
      put(array);
      if (++puts % 8 === 0) {
        collect();
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    },
    { multiplier: bytes / 1e9 },
  );
  await shutdown();
  return { rate: { value: m.rate, unit: 'GB/s', runs: m.runs, note: `puts of ${bytes / 2 ** 20} MiB` } };
}

/**
 * Issue 3's zero-copy check as a figure: get of a 100 MiB Float64Array (a view of shared memory)
 * against get of an 8 KiB one (copied out of the object's bytes). Equal rates mean the large get
 * does not depend on the size.
 */
async function getLargeArray({ mode }: CaseContext): Promise<Record<string, Metric>> {
  await startMiniray();
  const large = put(new Float64Array((100 * 1024 * 1024) / 8));
  const small = put(new Float64Array(1024));
  const mLarge = await timeit(mode, () => get(large));
  const mSmall = await timeit(mode, () => get(small));
  await shutdown();
  return {
    large: { value: mLarge.rate, unit: '/s', runs: mLarge.runs, note: 'gets of a 100 MiB Float64Array' },
    small: { value: mSmall.rate, unit: '/s', runs: mSmall.runs, note: 'gets of an 8 KiB Float64Array' },
  };
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
  get_large_array: getLargeArray,
  single_client_get_object_containing_10k_refs: getObjectContaining10kRefs,
};
