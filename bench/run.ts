/**
 * `npm run bench` (add `-- --quick` for a short run): Ray's microbenchmark cases on miniray, side
 * by side with the peers (Piscina, Tinypool) and the machine's limits (postMessage, memcpy), each
 * case in a fresh child process with its own timeout. Prints one table and writes the results to
 * bench/results/<timestamp>.json so that runs can be compared.
 *
 * Options: --quick (shorter runs, 100,000 queued tasks instead of 1,000,000);
 *          --only=<substring>[,<substring>...] (run only the matching cases; the table still lists all);
 *          --cluster (the cluster figures instead: a head and 2 nodes as processes, see bench/cluster/run.ts);
 *          --compare=<git-ref> (single_client_tasks_async and _sync of this checkout against <git-ref>'s
 *          build, alternated in the same run, see bench/cluster/compare.ts; with --cluster, after it);
 *          --ray=<python> (after miniray's cases, Ray's own microbenchmark run by that Python, which
 *          has Ray installed: Ray's column then shows this machine's figures, see bench/peers/ray.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { indent, runChild, summary, type ChildResult } from './lib/child-process.js';
import type { CaseResult } from './lib/protocol.js';
import { CASES, type CaseEntry } from './lib/registry.js';
import { buildRows, renderTable, RAY_MACHINE } from './lib/table.js';
import { runRayMicrobenchmark, type RayFigures } from './peers/ray.js';
import { FULL_MODE, QUICK_MODE } from './lib/timeit.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const quick = process.argv.includes('--quick');
const only = process.argv
  .find((arg) => arg.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',')
  .filter(Boolean);
/** The whole run's bound (the spec's: 10 minutes, 2 with --quick), with a margin for start-up. */
const budgetMs = quick ? 110_000 : 570_000;
const rayPython = process.argv.find((arg) => arg.startsWith('--ray='))?.slice('--ray='.length);
/** Ray's microbenchmark takes about 5 minutes here (its 23 cases of about 10 s each, and Ray's start-ups). */
const RAY_TIMEOUT_MS = 20 * 60_000;
const compareArg = process.argv.findIndex((arg) => arg === '--compare' || arg.startsWith('--compare='));
const compareRef = compareArg < 0 ? undefined : (process.argv[compareArg] as string).split('=')[1] ?? process.argv[compareArg + 1];
if (process.argv.includes('--cluster') || compareRef !== undefined) {
  const { runClusterBench } = await import('./cluster/run.js');
  await runClusterBench({ root, quick, cluster: process.argv.includes('--cluster'), compareRef, only });
  process.exit(0);
}
const startedAt = new Date();
const loadAtStart = loadavg();
const deadline = Date.now() + budgetMs;

function runEntry(entry: CaseEntry): Promise<ChildResult> {
  const timeoutMs = Math.min(quick ? entry.timeoutMs.quick : entry.timeoutMs.full, deadline - Date.now());
  return runChild(entry.name, { cwd: root, quick, timeoutMs });
}

/** The commit measured, and whether the work tree differed from it. */
function gitRevision(): { commit: string; dirty: boolean } | undefined {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: root, encoding: 'utf8' });
    return { commit, dirty: status.trim() !== '' };
  } catch {
    return undefined;
  }
}

const mode = quick ? QUICK_MODE : FULL_MODE;
console.log(
  `miniray bench${quick ? ' --quick' : ''}: ${CASES.length} cases, one child process each; per case ` +
    `${mode.warmupMs} ms warm-up, then the median of ${mode.runs} runs of ${mode.runMs} ms. ` +
    `Node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown'}), load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}.`,
);

const results = new Map<string, CaseResult>();
for (const entry of CASES) {
  if (only !== undefined && !only.some((pattern) => entry.name.includes(pattern))) continue;
  process.stdout.write(`  ${entry.name} ... `);
  const { log, ...result } = await runEntry(entry);
  results.set(entry.name, result);
  process.stdout.write(`${summary(result)} [${((result.durationMs ?? 0) / 1000).toFixed(1)} s]\n`);
  // The end of a failed child's stderr, to show where it failed.
  if (result.error !== undefined && log) process.stdout.write(indent(log.split('\n').slice(-12).join('\n')));
}

let ray: RayFigures | undefined;
if (rayPython !== undefined) {
  console.log(`  Ray's microbenchmark (${rayPython}) ...`);
  const measured = await runRayMicrobenchmark(rayPython, RAY_TIMEOUT_MS, (line) => console.log(`    ${line}`));
  if (measured instanceof Error) console.log(`  Ray's microbenchmark gave no figures: ${measured.message}`);
  else ray = measured;
}
const rayLabel = ray === undefined ? RAY_MACHINE : `Ray ${ray.version}, this machine, this run`;

const rows = buildRows(results, undefined, undefined, ray?.figures);
console.log('');
console.log(renderTable(rows, true, rayLabel));
const missed = rows.filter((row) => row.met === false).map((row) => row.case.trim());
const met = rows.filter((row) => row.met === true).length;
console.log('');
console.log(`Targets: ${met} met, ${missed.length} missed${missed.length ? ` (${missed.join('; ')})` : ''}.`);
console.log(ray === undefined ? `Ray's figures: ${RAY_MACHINE}; the other columns were measured in this run, on this machine.` : `Ray's figures: Ray ${ray.version}'s own microbenchmark, run on this machine after miniray's cases (means of 4 runs of 2 s).`);

const finishedAt = new Date();
const dir = `${root}bench/results`;
mkdirSync(dir, { recursive: true });
const file = `${dir}/${startedAt.toISOString().replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`;
writeFileSync(
  file,
  `${JSON.stringify(
    {
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      quick,
      git: gitRevision(),
      timing: mode,
      machine: {
        node: process.version,
        platform: process.platform,
        cpus: availableParallelism(),
        cpuModel: cpus()[0]?.model,
        totalMemory: totalmem(),
        loadAverageAtStart: loadAtStart,
        loadAverageAtEnd: loadavg(),
      },
      ray: ray === undefined ? RAY_MACHINE : { version: ray.version, figures: Object.fromEntries(ray.figures) },
      cases: Object.fromEntries(results),
      table: rows,
    },
    null,
    2,
  )}\n`,
);
console.log(`Wrote ${file.slice(root.length)} (${((finishedAt.getTime() - startedAt.getTime()) / 1000).toFixed(0)} s in all).`);
