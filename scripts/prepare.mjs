// Makes a fresh clone runnable: installs dependencies when node_modules is missing and
// builds dist/ when any source file is newer than the build. Used by `npm start` and `npm test`
// so that a newcomer's first command works without knowing the build steps.
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const run = (command) => {
  console.log(`> ${command}`);
  execSync(command, { cwd: root, stdio: 'inherit' });
};

if (!existsSync(join(root, 'node_modules', '.bin', 'tsc'))) {
  run(existsSync(join(root, 'package-lock.json')) ? 'npm ci' : 'npm install');
}

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

const builtEntry = join(root, 'dist', 'index.js');
const sourceChanged = !existsSync(builtEntry) ||
  newestMtime(join(root, 'src')) > statSync(builtEntry).mtimeMs ||
  statSync(join(root, 'tsconfig.build.json')).mtimeMs > statSync(builtEntry).mtimeMs;
if (sourceChanged) run('npm run build --silent');
