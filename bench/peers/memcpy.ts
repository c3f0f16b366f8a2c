/**
 * The machine's memory copy limit: Buffer.copy of 256 MiB into a target whose pages are already
 * touched (a warm copy; the first touch of fresh pages is far slower and is not what a pre-touched
 * store pays). GB/s are 10^9 bytes per second.
 */
import type { CaseContext, CaseFn, Metric } from '../lib/protocol.js';
import { timeit } from '../lib/timeit.js';

async function memcpy({ mode }: CaseContext): Promise<Record<string, Metric>> {
  const bytes = 256 * 1024 * 1024;
  const source = Buffer.allocUnsafeSlow(bytes).fill(1);
  const target = Buffer.allocUnsafeSlow(bytes).fill(0);
  const m = await timeit(mode, () => {
    source.copy(target);
  }, { multiplier: bytes / 1e9 });
  if (target[bytes - 1] !== 1) throw new Error('copy did not happen');
  return { rate: { value: m.rate, unit: 'GB/s', runs: m.runs, note: 'Buffer.copy of 256 MiB, warm target' } };
}

export const cases: Record<string, CaseFn> = { memcpy };
