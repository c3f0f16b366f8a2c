// Runs the chaos suite (test/chaos/*.test.ts): fault injection against the real runtime.
// `npm run test:chaos` is the bounded run that CI does (a few minutes on 2 cores);
// `npm run test:chaos -- --long` is the soak run: every check with about ten times the load.
// Checks read the mode from MINIRAY_CHAOS_LONG and print their figures as they finish.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const long = process.argv.includes('--long');
const dir = join(root, 'test', 'chaos');
const files = readdirSync(dir)
  .filter((name) => name.endsWith('.test.ts'))
  .sort()
  .map((name) => join('test', 'chaos', name));
if (files.length === 0) {
  console.error('no chaos checks found in test/chaos');
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit', env: { ...process.env, MINIRAY_CHAOS_LONG: long ? '1' : '' } },
);
process.exit(result.status ?? 1);
