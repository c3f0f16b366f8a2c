/**
 * Runs one case in this (fresh) process and reports it to the orchestrator on stdout:
 *
 *   node --import tsx --expose-gc bench/child.ts <case> [--quick]
 *
 * A failure is reported as the case's error and the process exits non-zero; the orchestrator's
 * timeout covers a case that hangs.
 */
import { RESULT_PREFIX, type CaseResult } from './lib/protocol.js';
import { loadCase } from './lib/registry.js';
import { FULL_MODE, QUICK_MODE } from './lib/timeit.js';

const name = process.argv[2] ?? '';
const quick = process.argv.includes('--quick');

function report(result: CaseResult): void {
  process.stdout.write(`\n${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}

try {
  const run = await loadCase(name);
  const metrics = await run({ mode: quick ? QUICK_MODE : FULL_MODE, quick });
  report({ case: name, metrics });
  process.exitCode = 0;
} catch (error) {
  const message = error instanceof Error ? (error.name === 'Error' ? error.message : `${error.name}: ${error.message}`) : String(error);
  if (error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  report({ case: name, metrics: {}, error: message });
  process.exitCode = 1;
}
// Workers or pools a failed case left behind must not keep the child alive.
setImmediate(() => process.exit());
