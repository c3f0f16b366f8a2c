import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { JobError } from './errors.js';
import { PackageStore, entryProblem, packDirectory, packageHashOf } from './package.js';

const scratch = mkdtempSync(join(tmpdir(), 'miniray-pkg-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => {
  const dir = join(scratch, `d${++dirs}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const status = (code: number, pattern?: RegExp) => (error: unknown) => error instanceof JobError && error.status === code && (pattern === undefined || pattern.test(error.message));

/** A tar.gz with the entries as given, names and all, as a hostile client could send. */
function rawTar(entries: readonly { name: string; type?: '0' | '1' | '2' | '3' | '5'; body?: string; link?: string }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const body = Buffer.from(entry.body ?? '');
    const header = Buffer.alloc(512);
    header.write(entry.name, 0, 100);
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124);
    header.write('00000000000\0', 136);
    header.write('        ', 148); // the checksum counts its own field as spaces
    header.write(entry.type ?? '0', 156);
    if (entry.link !== undefined) header.write(entry.link, 157, 100);
    header.write('ustar\0', 257);
    header.write('00', 263);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

test('a packed directory goes up and unpacks as it was, without .git', async () => {
  const source = freshDir();
  mkdirSync(join(source, 'lib'));
  mkdirSync(join(source, '.git'));
  writeFileSync(join(source, 'main.mjs'), 'console.log(1)');
  writeFileSync(join(source, 'lib', 'util.mjs'), 'export const x = 1');
  writeFileSync(join(source, '.git', 'HEAD'), 'ref');
  symlinkSync('lib/util.mjs', join(source, 'link.mjs'));
  mkdirSync(join(source, 'node_modules'));
  symlinkSync(scratch, join(source, 'node_modules', 'linked')); // as npm link makes them: absolute, outside
  const { bytes, sha256, leftOut } = await packDirectory(source, 1 << 20);
  assert.deepEqual(leftOut, [`node_modules/linked -> ${scratch}`]);
  assert.equal(sha256, sha(bytes));
  const store = new PackageStore({ dir: freshDir(), maxBytes: 1 << 20 });
  assert.equal(await store.has(sha256), false);
  await store.put(sha256, Readable.from([bytes]), bytes.length);
  assert.equal(await store.has(sha256), true);
  const into = join(freshDir(), 'wd');
  await store.unpack(sha256, into);
  assert.deepEqual(readdirSync(into).sort(), ['lib', 'link.mjs', 'main.mjs', 'node_modules']);
  assert.deepEqual(readdirSync(join(into, 'node_modules')), []);
  assert.equal(readFileSync(join(into, 'link.mjs'), 'utf8'), 'export const x = 1');
  // Unpacking again starts from an empty folder.
  writeFileSync(join(into, 'left-over'), '');
  await store.unpack(sha256, into);
  assert.equal(existsSync(join(into, 'left-over')), false);
});

test('uploads are checked: the hash, the size (declared or counted), that it is a tar.gz', async () => {
  const store = new PackageStore({ dir: freshDir(), maxBytes: 1000 });
  const good = rawTar([{ name: 'a.txt', body: 'hi' }]);
  await assert.rejects(store.put('0'.repeat(64), Readable.from([good])), status(400, /hash to/));
  await assert.rejects(store.put('not-a-hash', Readable.from([good])), status(400));
  const big = Buffer.alloc(2000, 1);
  await assert.rejects(store.put(sha(big), Readable.from([big]), 2000), status(413, /limit of 1000/));
  await assert.rejects(store.put(sha(big), Readable.from([big.subarray(0, 500), big.subarray(500)])), status(413));
  const junk = Buffer.from('this is not gzip');
  await assert.rejects(store.put(sha(junk), Readable.from([junk])), status(400, /not a tar.gz/));
  assert.deepEqual(readdirSync(join(store['options'].dir, 'job_packages')), [], 'nothing is left of refused uploads');
  await assert.rejects(store.unpack('1'.repeat(64), join(freshDir(), 'x')), status(404));
});

test('an archive with an entry that would land outside the folder is refused at upload and at unpack', async () => {
  const hostile = [
    [{ name: '../escape.txt', body: 'x' }],
    [{ name: 'ok/../../escape.txt', body: 'x' }],
    [{ name: '/tmp/abs.txt', body: 'x' }],
    [{ name: 'out', type: '2', link: '../../..' }],
    [{ name: 'abs-link', type: '2', link: '/etc' }],
    [{ name: 'hard', type: '1', link: '../x' }],
    [{ name: 'dev', type: '3' }],
  ] as const;
  for (const entries of hostile) {
    const dir = freshDir();
    const store = new PackageStore({ dir, maxBytes: 1 << 20 });
    const bytes = rawTar(entries);
    await assert.rejects(store.put(sha(bytes), Readable.from([bytes])), status(400, /cannot be unpacked/), JSON.stringify(entries));
    // Even if such a package got onto the disk some other way, unpack refuses it and writes nothing outside.
    mkdirSync(join(dir, 'job_packages'), { recursive: true });
    writeFileSync(join(dir, 'job_packages', `${sha(bytes)}.tar.gz`), bytes);
    const into = join(dir, 'a', 'b', 'wd');
    await assert.rejects(store.unpack(sha(bytes), into), (e: unknown) => e instanceof JobError || e instanceof Error, JSON.stringify(entries));
    assert.equal(existsSync(join(dir, 'a', 'b', 'escape.txt')), false);
    assert.equal(existsSync(join(dir, 'a', 'escape.txt')), false);
    assert.equal(existsSync(join(into, 'out')), false);
  }
});

test('a package that unpacks to far more than its size (a gzip bomb) is refused', async () => {
  const store = new PackageStore({ dir: freshDir(), maxBytes: 10_000 });
  const bytes = rawTar([{ name: 'zeros', body: '\0'.repeat(200_000) }]);
  assert.ok(bytes.length < 10_000);
  await assert.rejects(store.put(sha(bytes), Readable.from([bytes])), status(400, /unpacks to more than 100000 bytes/));
});

test('entryProblem allows files, folders and links inside; packageHashOf reads pkg:// names', () => {
  assert.equal(entryProblem('./a/b.txt', 'File', undefined), undefined);
  assert.equal(entryProblem('a/', 'Directory', undefined), undefined);
  assert.equal(entryProblem('a/link', 'SymbolicLink', '../b.txt'), undefined);
  assert.match(entryProblem('a/link', 'SymbolicLink', '../../b.txt') ?? '', /outside/);
  assert.match(entryProblem('fifo', 'FIFO', undefined) ?? '', /not a file/);
  assert.equal(packageHashOf('/abs/dir'), undefined);
  assert.equal(packageHashOf(`pkg://${'f'.repeat(64)}`), 'f'.repeat(64));
  assert.throws(() => packageHashOf('pkg://F00'), JobError);
});

test('packDirectory refuses what is too big or not a directory', async () => {
  const source = freshDir();
  writeFileSync(join(source, 'random.bin'), Buffer.from(Array.from({ length: 50_000 }, () => Math.floor(Math.random() * 256))));
  await assert.rejects(packDirectory(source, 10_000), status(413, /packs to more than 10000 bytes/));
  await assert.rejects(packDirectory(join(source, 'random.bin'), 10_000), status(400, /not a directory/));
  await assert.rejects(packDirectory(join(source, 'missing'), 10_000), status(400));
});
