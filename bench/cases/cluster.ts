/**
 * The cluster's cases (npm run bench -- --cluster): this process is a driver that joins the
 * cluster at MINIRAY_ADDRESS with no CPUs of its own, so every task runs on one of the 2 nodes
 * bench/cluster/run.ts started as processes.
 *
 *   cluster_tasks_async        N tiny tasks in flight, then get of all (tasks/s over 2 nodes)
 *   cluster_task_round_trip    get(one.remote()), one at a time, on another node (p50, p99)
 *   cluster_object_transfer    a 256 MiB Float64Array made by a task on node A, consumed by a task
 *                              on node B: B's node pulls it from A's before the task runs; the time
 *                              of B's task, less the time of the same task with a small argument
 *
 * Nothing here may start work at import (miniray's workers import this module).
 */
import { get, init, nodes, remote, shutdown, wait, type ObjectRef } from 'miniray';
import type { CaseContext, CaseFn, Metric } from '../lib/protocol.js';
import { median, timeit } from '../lib/timeit.js';
import { STREAM_BYTES } from '../peers/tcp.js';

const one = remote(() => 1);
const where = remote(() => process.pid);
const make = remote((n: number) => new Float64Array(n).fill(1.5));
const length = remote((array: Float64Array) => array.length);

/** Joins the cluster and waits until both nodes are known; returns their IDs (those with CPUs). */
async function join(): Promise<string[]> {
  await init({ address: process.env['MINIRAY_ADDRESS'] ?? 'auto' });
  const until = Date.now() + 30_000;
  for (;;) {
    const workers = (await nodes()).filter((node) => node.alive && !node.isDriver && (node.resources['CPU'] ?? 0) > 0);
    if (workers.length >= 2) return workers.map((node) => node.nodeId).sort();
    if (Date.now() > until) throw new Error(`the cluster has ${workers.length} node(s) with CPUs after 30 s, not 2`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function tasksAsync({ mode, quick }: CaseContext): Promise<Record<string, Metric>> {
  await join();
  const n = quick ? 5_000 : 10_000;
  const batch = (): ObjectRef<number>[] => Array.from({ length: n }, () => one.remote());
  const m = await timeit(mode, () => get(batch()), { multiplier: n });
  // Both nodes took part (each node's workers share its process, so a pid names a node).
  const pids = new Set(await get(Array.from({ length: 2_000 }, () => where.remote())));
  await shutdown();
  return { rate: { value: m.rate, unit: '/s', runs: m.runs, note: `${n.toLocaleString('en-US')} in flight, on ${pids.size} nodes` } };
}

async function roundTrip({ mode }: CaseContext): Promise<Record<string, Metric>> {
  await join();
  const m = await timeit(mode, () => get(one.remote()), { latencies: true });
  await shutdown();
  return {
    rate: { value: m.rate, unit: '/s', runs: m.runs },
    p50: { value: m.p50Us as number, unit: 'us' },
    p99: { value: m.p99Us as number, unit: 'us' },
  };
}

async function objectTransfer({ mode }: CaseContext): Promise<Record<string, Metric>> {
  const [a, b] = (await join()) as [string, string];
  const onA = make.options({ schedulingStrategy: { nodeId: a } });
  const onB = length.options({ schedulingStrategy: { nodeId: b } });
  const elements = STREAM_BYTES / 8;
  // The same task on B with a small argument: what B's task costs besides the transfer.
  const small = new Float64Array(1024).fill(1.5);
  const baseline: number[] = [];
  for (let i = 0; i < 50; i++) {
    const started = performance.now();
    await get(onB.remote(small));
    baseline.push(performance.now() - started);
  }
  const baseMs = median(baseline.slice(10));
  const runs: number[] = [];
  const totals: number[] = [];
  for (let run = 0; run <= mode.runs; run++) {
    (globalThis as { gc?: () => void }).gc?.(); // the last run's ref is gone: both its copies are freed
    const made = onA.remote(elements);
    await wait([made]); // ready on A; nothing has moved yet
    const started = performance.now();
    const seen = await get(onB.remote(made));
    const ms = performance.now() - started;
    if (seen !== elements) throw new Error(`node B saw ${seen} elements, not ${elements}`);
    if (run === 0) continue; // warm-up: the first pull also makes B's connection to A and its arena
    totals.push(ms);
    runs.push(STREAM_BYTES / 1e9 / ((ms - baseMs) / 1000));
  }
  await shutdown();
  return {
    rate: { value: median(runs), unit: 'GB/s', runs, note: `256 MiB, node A -> node B; task ${median(totals).toFixed(0)} ms less ${baseMs.toFixed(1)} ms` },
  };
}

export const cases: Record<string, CaseFn> = {
  cluster_tasks_async: tasksAsync,
  cluster_task_round_trip: roundTrip,
  cluster_object_transfer: objectTransfer,
};
