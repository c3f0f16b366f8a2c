/**
 * Runs one case in a child process of its own (bench/child.ts) and collects its result line, with
 * a timeout. `cwd` is the checkout whose bench/ and dist/ the case runs from (--compare runs the
 * same cases from another commit's build).
 */
import { spawn } from 'node:child_process';
import { RESULT_PREFIX, type CaseResult } from './protocol.js';

/** A case's result, with the child's stderr when it failed. */
export type ChildResult = CaseResult & { readonly log?: string };

export interface ChildOptions {
  readonly cwd: string;
  readonly quick: boolean;
  readonly timeoutMs: number;
}

export function runChild(name: string, { cwd, quick, timeoutMs }: ChildOptions): Promise<ChildResult> {
  if (timeoutMs < 3000) return Promise.resolve({ case: name, metrics: {}, error: 'skipped: the run is out of time' });
  const args = ['--import', 'tsx', '--expose-gc', 'bench/child.ts', name];
  if (quick) args.push('--quick');
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const durationMs = Date.now() - started;
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (line !== undefined) {
        const result = JSON.parse(line.slice(RESULT_PREFIX.length)) as CaseResult;
        resolve({ ...result, durationMs, ...(result.error !== undefined ? { log: stderr.trim() } : {}) });
        return;
      }
      const why = timedOut ? `timed out after ${(timeoutMs / 1000).toFixed(timeoutMs < 10_000 ? 1 : 0)} s` : `exited with ${signal ?? `code ${code}`} and no result`;
      resolve({ case: name, metrics: {}, error: why, durationMs, log: stderr.trim() });
    });
  });
}

export function indent(text: string): string {
  return `${text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')}\n`;
}

/** One line per case: its metrics, or its error. */
export function summary(result: CaseResult): string {
  if (result.error !== undefined) return `error: ${result.error}`;
  return Object.entries(result.metrics)
    .map(([name, m]) => `${name} ${Number.isInteger(m.value) ? m.value : m.value.toPrecision(4)} ${m.unit}`)
    .join(', ');
}
