/**
 * `--compare=<git-ref>`: single_client_tasks_async and single_client_tasks_sync of this checkout
 * against another commit's, in the same run. The other commit's files are exported (git archive,
 * so the repository's worktrees are not touched) into a temp dir, with node_modules symlinked and
 * this checkout's bench/ copied over its own (the same case code on both sides), and built with
 * tsc; its cases then import its dist/ ('miniray' resolves to the package around them). Runs
 * alternate between the two sides, in a child process each; a side's figure is the median of its
 * children's medians.
 */
import { execFileSync, execSync } from 'node:child_process';
import { cpSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { indent, runChild, summary } from '../lib/child-process.js';
import type { CaseResult, Metric } from '../lib/protocol.js';
import { buildRows, metric, renderTable, type RowSpec, type TableRow } from '../lib/table.js';
import { median } from '../lib/timeit.js';

const CASES = ['single_client_tasks_async', 'single_client_tasks_sync'] as const;
/** Single-node figures must stay within 10% of the previous commit (issue 9). */
const WITHIN = 0.9;

export interface Comparison {
  readonly ref: string;
  readonly refCommit: string;
  readonly commit: string;
  readonly rounds: number;
  readonly cases: Record<string, CaseResult>;
  readonly table: TableRow[];
}

export async function compareWith(ref: string, { root, quick }: { root: string; quick: boolean }): Promise<Comparison> {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim();
  const refCommit = git('rev-parse', '--verify', `${ref}^{commit}`);
  const commit = git('rev-parse', 'HEAD');
  const other = mkdtempSync(join(tmpdir(), 'miniray-compare-'));
  const rounds = quick ? 2 : 5;
  try {
    console.log(`\nCompare: this checkout (${commit.slice(0, 7)}) against ${ref} (${refCommit.slice(0, 7)}), built in ${other}`);
    execSync(`git archive ${refCommit} | tar -x -C '${other}'`, { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
    symlinkSync(realpathSync(join(root, 'node_modules')), join(other, 'node_modules'));
    rmSync(join(other, 'bench'), { recursive: true, force: true });
    cpSync(join(root, 'bench'), join(other, 'bench'), { recursive: true, filter: (path) => !path.includes(`${join('bench', 'results')}`) });
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: other, stdio: 'inherit' });

    const sides = [
      { label: commit.slice(0, 7), cwd: root },
      { label: `${ref}`, cwd: other },
    ];
    const runs = new Map<string, CaseResult[]>();
    for (let round = 0; round < rounds; round++) {
      for (const name of CASES) {
        // Alternate which side goes first, so that neither always meets the machine warmer.
        for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
          const key = side.cwd === root ? name : `${name}@${ref}`;
          process.stdout.write(`  ${key} (round ${round + 1}/${rounds}) ... `);
          const { log, ...result } = await runChild(name, { cwd: side.cwd, quick, timeoutMs: quick ? 20_000 : 60_000 });
          process.stdout.write(`${summary(result)}\n`);
          if (result.error !== undefined && log) process.stdout.write(indent(log.split('\n').slice(-12).join('\n')));
          runs.set(key, [...(runs.get(key) ?? []), result]);
        }
      }
    }
    const cases = Object.fromEntries([...runs].map(([key, results]) => [key, merged(key, results)]));
    const rows: RowSpec[] = CASES.flatMap((name) => {
      const peer = (m: string) => metric(`${name}@${ref}`, m, `${ref}`);
      return [
        { name, miniray: { case: name, metric: 'rate' }, peer: peer('rate'), target: { op: '>=', value: WITHIN } },
        ...(name === 'single_client_tasks_sync' ? [{ name: `${name} p50`, miniray: { case: name, metric: 'p50' }, peer: peer('p50') }] : []),
      ] satisfies RowSpec[];
    });
    const table = buildRows(new Map(Object.entries(cases)), rows, []);
    console.log(`\n${renderTable(table, false)}\n(${commit.slice(0, 7)}: this checkout; ${ref}: ${refCommit}; medians of ${rounds} child processes each, alternated)\n`);
    return { ref, refCommit, commit, rounds, cases, table };
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
}

/** One figure per metric: the median over the children, each child's figure kept as a run. */
function merged(key: string, results: readonly CaseResult[]): CaseResult {
  const failed = results.find((r) => r.error !== undefined);
  if (failed !== undefined) return { case: key, metrics: {}, error: failed.error as string };
  const metrics: Record<string, Metric> = {};
  for (const name of Object.keys(results[0]?.metrics ?? {})) {
    const values = results.map((r) => (r.metrics[name] as Metric).value);
    metrics[name] = { value: median(values), unit: (results[0]?.metrics[name] as Metric).unit, runs: values };
  }
  return { case: key, metrics };
}
