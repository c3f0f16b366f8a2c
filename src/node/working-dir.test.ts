import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { InvalidOptionError, RuntimeEnvSetupError } from '../errors/index.js';
import { excludeMatcher, isPackageUri, packageKey, packWorkingDir, WorkingDirCache } from './working-dir.js';

const scratch = mkdtempSync(join(tmpdir(), 'miniray-wd-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function project(name: string): string {
  const dir = join(scratch, name);
  mkdirSync(join(dir, 'src'), { recursive: true });
  mkdirSync(join(dir, 'data', 'big'), { recursive: true });
  mkdirSync(join(dir, '.git'), { recursive: true });
  writeFileSync(join(dir, 'README'), 'hello');
  writeFileSync(join(dir, 'src', 'main.txt'), 'main');
  writeFileSync(join(dir, 'src', 'run.log'), 'log');
  writeFileSync(join(dir, 'data', 'big', 'blob.bin'), 'blob');
  writeFileSync(join(dir, '.git', 'HEAD'), 'ref');
  symlinkSync('/etc/passwd', join(dir, 'outside'));
  symlinkSync('README', join(dir, 'inside'));
  return dir;
}

test('excludeMatcher follows Ray\'s gitignore-style excludes', () => {
  const match = excludeMatcher(['*.log', 'data/', '/build', 'a/**/z.txt']);
  assert.equal(match('run.log', false), true);
  assert.equal(match('src/deep/run.log', false), true);
  assert.equal(match('data', true), true);
  assert.equal(match('src/data', true), true);
  assert.equal(match('data', false), false, 'a trailing / matches folders only');
  assert.equal(match('build', true), true);
  assert.equal(match('src/build', true), false, 'a leading / anchors at the root');
  assert.equal(match('a/z.txt', false), true);
  assert.equal(match('a/b/c/z.txt', false), true);
  assert.equal(match('main.txt', false), false);
});

test('a package is named by its content hash and unpacks, excludes, version control and outside links left out, into the node\'s cache', async () => {
  const dir = project('p1');
  const { uri, bytes } = packWorkingDir(dir, ['*.log', 'data/'], 10 * 1024 * 1024);
  assert.ok(isPackageUri(uri), uri);
  assert.equal(packWorkingDir(dir, ['*.log', 'data/'], 10 * 1024 * 1024).uri, uri, 'the same content, the same package');
  assert.notEqual(packWorkingDir(dir, [], 10 * 1024 * 1024).uri, uri, 'other excludes, another package');
  let fetches = 0;
  const cache = new WorkingDirCache(join(scratch, 'cache1'), async (key) => {
    fetches++;
    assert.equal(key, packageKey(uri));
    return bytes;
  });
  assert.equal(cache.isReady(uri), false);
  assert.equal(cache.isReady('/a/path'), true, 'a path needs nothing');
  const [a, b] = await Promise.all([cache.prepare(uri), cache.prepare(uri)]);
  assert.equal(a, b);
  assert.equal(fetches, 1, 'fetched once');
  assert.equal(cache.localDir(uri), a);
  assert.ok(a.startsWith(join(scratch, 'cache1')));
  assert.equal(readFileSync(join(a, 'README'), 'utf8'), 'hello');
  assert.equal(readFileSync(join(a, 'src', 'main.txt'), 'utf8'), 'main');
  assert.equal(readFileSync(join(a, 'inside'), 'utf8'), 'hello');
  for (const gone of ['src/run.log', 'data', '.git', 'outside']) assert.equal(existsSync(join(a, gone)), false, `${gone} is left out`);
  cache.clear();
  assert.equal(existsSync(join(scratch, 'cache1')), false);
});

test('a package over the limit is refused at packing, saying what to do', () => {
  const dir = project('p2');
  writeFileSync(join(dir, 'noise.bin'), Buffer.from(Array.from({ length: 64 * 1024 }, () => Math.floor(Math.random() * 256))));
  assert.throws(() => packWorkingDir(dir, [], 16 * 1024), (error: unknown) => error instanceof InvalidOptionError && /over the limit of 16384/.test(error.message) && /excludes/.test(error.message));
  assert.doesNotThrow(() => packWorkingDir(dir, ['*.bin'], 16 * 1024), 'excluded, it fits');
});

test('a package the GCS does not have, or whose bytes do not hash to its name, fails with RuntimeEnvSetupError (once)', async () => {
  const dir = project('p3');
  const { uri, bytes } = packWorkingDir(dir, [], 10 * 1024 * 1024);
  const tampered = new WorkingDirCache(join(scratch, 'cache2'), async () => Buffer.concat([bytes, Buffer.from('x')]));
  await assert.rejects(tampered.prepare(uri), (error: unknown) => error instanceof RuntimeEnvSetupError && /hashes to/.test(error.message));
  assert.ok(tampered.failure(uri) instanceof RuntimeEnvSetupError, 'the failure is kept');
  tampered.clear();
});
