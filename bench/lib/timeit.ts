/**
 * The timing harness, after Ray's `timeit` (python/ray/_private/ray_microbenchmark_helpers.py):
 * warm up for a while counting calls, set `step = warmupCalls / 10 + 1`, then do a number of timed
 * runs, each calling `fn` in steps of `step` until the run's time is up, and rate = multiplier *
 * calls / seconds. Ray reports the mean of its runs; we report the median (the machine is shared,
 * and a median shrugs off a run that met a noisy neighbour) and keep every run in the JSON.
 *
 * A call that returns a promise is awaited; one that does not is not (so put() is timed as the
 * synchronous call it is, with no await per call).
 */

export interface TimingMode {
  /** Warm-up time before the timed runs (ms). */
  readonly warmupMs: number;
  /** Number of timed runs; the figure is their median. */
  readonly runs: number;
  /** Length of each timed run (ms). A run always makes at least one step. */
  readonly runMs: number;
}

export const FULL_MODE: TimingMode = { warmupMs: 1000, runs: 5, runMs: 2000 };
/**
 * With the actor cases, --quick runs 29 cases, each in a child that spends 1 to 2 s starting (tsx,
 * workers, actors) before any timing, and the whole must finish within 2 minutes: runs of 250 ms
 * (they were 500). The warm-up is longer instead (400 ms, was 250): cases with 4 to 6 threads on 2
 * cores take about a second to reach their speed (JIT in every thread), and a cold first run then
 * drags the median down. Quick figures of those cases still read low; the full run's are the ones.
 */
export const QUICK_MODE: TimingMode = { warmupMs: 400, runs: 3, runMs: 250 };

export interface TimeitOptions {
  /** Units of work per call (e.g. 1000 for a call that runs 1,000 tasks). Default 1. */
  readonly multiplier?: number;
  /** Record each call's latency and report its median (p50) in microseconds. */
  readonly latencies?: boolean;
  /** Called before the warm-up and before each timed run, outside the timing (e.g. to start fresh). */
  readonly beforeRun?: () => unknown;
}

export interface Measurement {
  /** Median of the runs' rates, in units of work per second. */
  readonly rate: number;
  /** Each timed run's rate. */
  readonly runs: number[];
  /** Calls made in the timed runs. */
  readonly calls: number;
  /** Median latency of one call over all timed runs (us), when asked for. */
  readonly p50Us?: number;
  /** 99th percentile of the same latencies (us). */
  readonly p99Us?: number;
}

type Fn = () => unknown;

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as PromiseLike<unknown>).then === 'function';
}

export async function timeit(mode: TimingMode, fn: Fn, options: TimeitOptions = {}): Promise<Measurement> {
  const multiplier = options.multiplier ?? 1;

  await options.beforeRun?.();
  let warmupCalls = 0;
  const warmupStart = performance.now();
  do {
    const result = fn();
    if (isThenable(result)) await result;
    warmupCalls++;
  } while (performance.now() - warmupStart < mode.warmupMs);

  const step = Math.floor(warmupCalls / 10) + 1;
  const runs: number[] = [];
  const latencies: number[] = [];
  let calls = 0;
  for (let run = 0; run < mode.runs; run++) {
    await options.beforeRun?.();
    let count = 0;
    const start = performance.now();
    let now = start;
    do {
      for (let i = 0; i < step; i++) {
        if (options.latencies) {
          const t0 = performance.now();
          const result = fn();
          if (isThenable(result)) await result;
          latencies.push(performance.now() - t0);
        } else {
          const result = fn();
          if (isThenable(result)) await result;
        }
      }
      count += step;
      now = performance.now();
    } while (now - start < mode.runMs);
    runs.push((multiplier * count) / ((now - start) / 1000));
    calls += count;
  }
  const measurement: Measurement = { rate: median(runs), runs, calls };
  return options.latencies ? { ...measurement, p50Us: median(latencies) * 1000, p99Us: percentile(latencies, 0.99) * 1000 } : measurement;
}
