/**
 * `npm run bench -- --cluster [--quick] [--compare=<git-ref>]`: the cluster's figures, each beside
 * the raw limit it is compared with, measured in the same run on this machine.
 *
 * It starts, as real processes with a MINIRAY_HOME of their own in a temp dir and free ports, a
 * head with no CPUs and 2 nodes with 1 CPU each (`miniray start ... --block` from dist/), and the
 * raw TCP echo server (bench/peers/tcp-echo.mjs). Each case then runs in a child process of its
 * own, as the single-node bench's do: the miniray cases are a driver that joins with no CPUs (so
 * every task goes to a node), the raw cases a plain TCP client of the echo server. Figures are
 * medians of repeated runs (bench/lib/timeit.ts). Prints a table, writes
 * bench/results/<time>-cluster.json.
 *
 * --compare=<git-ref> then runs the single-node non-regression check (compare.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { indent, runChild, summary } from '../lib/child-process.js';
import type { CaseResult } from '../lib/protocol.js';
import { CLUSTER_CASES } from '../lib/registry.js';
import { buildRows, metric, renderTable, type RowSpec, type TableRow } from '../lib/table.js';
import { FULL_MODE, QUICK_MODE } from '../lib/timeit.js';
import { compareWith } from './compare.js';
import { startProcess, stopProcess, type Started } from './processes.js';

export interface ClusterBenchOptions {
  readonly root: string;
  readonly quick: boolean;
  /** Run the cluster cases (false: only --compare). */
  readonly cluster: boolean;
  readonly compareRef: string | undefined;
  readonly only: readonly string[] | undefined;
}

const ROWS: readonly RowSpec[] = [
  { name: 'tasks/s, 1 driver -> 2 nodes', miniray: { case: 'cluster_tasks_async', metric: 'rate' } },
  {
    name: 'remote task round trip p50',
    miniray: { case: 'cluster_task_round_trip', metric: 'p50' },
    peer: metric('raw_tcp_round_trip', 'p50', 'raw TCP echo p50'),
  },
  {
    name: 'remote task round trip p99',
    miniray: { case: 'cluster_task_round_trip', metric: 'p99' },
    peer: metric('raw_tcp_round_trip', 'p99', 'raw TCP echo p99'),
  },
  {
    name: 'remote task round trips/s (one at a time)',
    miniray: { case: 'cluster_task_round_trip', metric: 'rate' },
    peer: metric('raw_tcp_round_trip', 'rate', 'raw TCP echo'),
  },
  {
    name: 'object transfer, node A -> node B',
    miniray: { case: 'cluster_object_transfer', metric: 'rate' },
    peer: metric('raw_tcp_stream', 'rate', 'raw TCP stream'),
    // The issue's target: at least half of a raw TCP stream between the same kind of processes.
    target: { op: '>=', value: 0.5 },
  },
];

export async function runClusterBench(options: ClusterBenchOptions): Promise<void> {
  const { root, quick } = options;
  const startedAt = new Date();
  const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
  const loadAtStart = loadavg();
  const mode = quick ? QUICK_MODE : FULL_MODE;
  console.log(
    `miniray bench${options.cluster ? ' --cluster' : ''}${quick ? ' --quick' : ''}${options.compareRef === undefined ? '' : ` --compare=${options.compareRef}`}: per case ${mode.warmupMs} ms warm-up, then the median of ${mode.runs} runs of ${mode.runMs} ms. ` +
      `Node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown'}), load ${load()}.`,
  );
  const results = new Map<string, CaseResult>();
  let rows: TableRow[] = [];
  if (options.cluster) {
    await withCluster(root, async () => {
      for (const entry of CLUSTER_CASES) {
        if (options.only !== undefined && !options.only.some((pattern) => entry.name.includes(pattern))) continue;
        process.stdout.write(`  ${entry.name} ... `);
        const { log, ...result } = await runChild(entry.name, { cwd: root, quick, timeoutMs: quick ? entry.timeoutMs.quick : entry.timeoutMs.full });
        results.set(entry.name, result);
        process.stdout.write(`${summary(result)} [${((result.durationMs ?? 0) / 1000).toFixed(1)} s]\n`);
        if (result.error !== undefined && log) process.stdout.write(indent(log.split('\n').slice(-12).join('\n')));
      }
    });
    rows = buildRows(results, ROWS, []);
    console.log(`\n${renderTable(rows, false)}\n`);
  }
  const comparison = options.compareRef === undefined ? undefined : await compareWith(options.compareRef, { root, quick });
  const finishedAt = new Date();
  console.log(`Load average at the start: ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}; at the end: ${load()}.`);

  const dir = join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${startedAt.toISOString().replace(/[:.]/g, '-')}-cluster${quick ? '-quick' : ''}.json`);
  const json = {
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    quick,
    commit: execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim(),
    timing: mode,
    machine: { node: process.version, cpus: availableParallelism(), cpuModel: cpus()[0]?.model, loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadavg() },
    cases: Object.fromEntries(results),
    table: rows,
    ...(comparison === undefined ? {} : { comparison }),
  };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  console.log(`Wrote ${file.slice(root.length)} (${((finishedAt.getTime() - startedAt.getTime()) / 1000).toFixed(0)} s in all).`);
}

/** Runs `body` with a head, 2 nodes and the echo server up (their addresses in this process's env, for the cases' children). */
async function withCluster(root: string, body: () => Promise<void>): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'miniray-bench-'));
  // The children (nodes and cases) inherit these: the session files and token live in `home`.
  // Restored afterwards: a single-node case's init() would join a cluster named by MINIRAY_ADDRESS.
  const names = ['MINIRAY_HOME', 'MINIRAY_AUTH_TOKEN', 'MINIRAY_AUTH_TOKEN_PATH', 'MINIRAY_ADDRESS', 'MINIRAY_BENCH_ECHO'];
  const saved = names.map((name) => process.env[name]);
  process.env['MINIRAY_HOME'] = home;
  delete process.env['MINIRAY_AUTH_TOKEN'];
  delete process.env['MINIRAY_AUTH_TOKEN_PATH'];
  const cli = join(root, 'dist', 'cli', 'main.js');
  const started: Started[] = [];
  try {
    const head = await startProcess('head', [cli, 'start', '--head', '--port', '0', '--num-cpus', '0', '--block'], /Started the miniray head at (\S+) /, root);
    started.push(head);
    for (const name of ['node A', 'node B']) {
      started.push(await startProcess(name, [cli, 'start', '--address', head.address, '--num-cpus', '1', '--block'], /Started a miniray node at (\S+) /, root));
    }
    const echo = await startProcess('echo server', [join(root, 'bench', 'peers', 'tcp-echo.mjs')], /listening on (\S+)/, root);
    started.push(echo);
    process.env['MINIRAY_ADDRESS'] = head.address;
    process.env['MINIRAY_BENCH_ECHO'] = echo.address;
    console.log(`  (head at ${head.address} with 0 CPUs; ${started.slice(1, 3).map((s) => `${s.name} at ${s.address}`).join(', ')}, 1 CPU each; echo server at ${echo.address})`);
    await body();
  } finally {
    // Nodes before the head, so that they leave rather than see it die.
    for (const one of started.reverse()) await stopProcess(one);
    rmSync(home, { recursive: true, force: true });
    names.forEach((name, i) => (saved[i] === undefined ? delete process.env[name] : (process.env[name] = saved[i])));
  }
}
