// Installing as the README says, from what a fresh clone holds: `npm pack` in a copy of the work
// tree with no node_modules and no dist/ (so the pack step must install and build by itself), then
// the tarball installed in a new app that imports miniray and runs a task. Also what a CommonJS
// user is told. The copy is of the files git tracks or would track (uncommitted changes included),
// so the test checks the tree as it is, not the last commit.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';

const root = fileURLToPath(new URL('../..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

describe('installing from a fresh clone', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'miniray-install-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  test('npm pack builds dist/ by itself, and the tarball installs and runs in a new app', { timeout: 240_000 }, () => {
    const clone = join(scratch, 'clone');
    const tracked = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
      .split('\n')
      .filter((file) => file !== '');
    for (const file of tracked) {
      mkdirSync(dirname(join(clone, file)), { recursive: true });
      try {
        cpSync(join(root, file), join(clone, file));
      } catch (error) {
        // A file deleted in the work tree but still in the index is not part of the tree as it is.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }

    const pack = spawnSync(npm, ['pack', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: clone, encoding: 'utf8' });
    assert.equal(pack.status, 0, `npm pack failed:\n${pack.stdout}\n${pack.stderr}`);
    const tarball = readdirSync(clone).find((name) => name.endsWith('.tgz'));
    assert.ok(tarball, 'npm pack wrote no tarball');
    const listing = spawnSync('tar', ['-tzf', join(clone, tarball)], { encoding: 'utf8' }).stdout;
    for (const file of ['package/LICENSE', 'package/README.md', 'package/dist/index.js', 'package/dist/index.d.ts', 'package/dist/cli/main.js', 'package/cjs/index.cjs']) {
      assert.ok(listing.includes(file), `${file} is missing from the tarball`);
    }
    assert.ok(!listing.includes('.test.'), 'test files were packed');

    const app = join(scratch, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    const install = spawnSync(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', join(clone, tarball)], { cwd: app, encoding: 'utf8' });
    assert.equal(install.status, 0, `npm install of the tarball failed:\n${install.stdout}\n${install.stderr}`);

    writeFileSync(
      join(app, 'app.mjs'),
      [
        "import { describeSettings, get, init, remote, shutdown } from 'miniray';",
        'await init({ numWorkers: 1 });',
        'console.log(await get(remote((a, b) => a + b).remote(1, 2)));',
        "if (!describeSettings().some((s) => s.env === 'MINIRAY_DEFAULT_MAX_RETRIES')) throw new Error('describeSettings');",
        'await shutdown();',
      ].join('\n'),
    );
    const run = spawnSync(process.execPath, ['app.mjs'], { cwd: app, encoding: 'utf8', timeout: 60_000 });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), '3');

    // The package's `miniray` command is installed where npm puts bins.
    const bin = spawnSync(join(app, 'node_modules', '.bin', 'miniray'), ['start', '--help'], { cwd: app, encoding: 'utf8', timeout: 60_000 });
    assert.equal(bin.status, 0, `miniray start --help failed:\n${bin.stdout}\n${bin.stderr}`);
    assert.match(bin.stdout, /--head/);

    // Where Node can require() ES modules (20.19+), require('miniray') is the package itself;
    // elsewhere it is an error that says how to load it (the file the "require" condition names).
    const cjs = [
      "const { get, init, remote, shutdown } = require('miniray');",
      '(async () => { await init({ numWorkers: 1 }); console.log(await get(remote((a, b) => a * b).remote(6, 7))); await shutdown(); })();',
    ].join('\n');
    writeFileSync(join(app, 'app.cjs'), cjs);
    const required = spawnSync(process.execPath, ['app.cjs'], { cwd: app, encoding: 'utf8', timeout: 60_000 });
    if (process.features.require_module === true) {
      assert.equal(required.status, 0, required.stderr);
      assert.equal(required.stdout.trim(), '42');
    } else {
      assert.notEqual(required.status, 0);
      assert.match(required.stderr, /miniray is an ES module package/);
    }
    const stub = spawnSync(process.execPath, ['-e', "require('miniray/package.json'); require('./node_modules/miniray/cjs/index.cjs')"], { cwd: app, encoding: 'utf8' });
    assert.match(stub.stderr, /cannot require\(\) ES modules.*await import\('miniray'\)/);
  });
});
