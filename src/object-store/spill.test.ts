import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { PROCESS_TAG, SpillDirectory, isProcessAlive, sweepStaleSpillFiles } from './spill.js';

// Each test gets its own temp directory (os.tmpdir() follows TMPDIR), so sweeps see only its files.
let temp: string;
let saved: string | undefined;
beforeEach(() => {
  temp = mkdtempSync(join(tmpdir(), 'miniray-spill-unit-'));
  saved = process.env.TMPDIR;
  process.env.TMPDIR = temp;
});
afterEach(() => {
  if (saved === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = saved;
  rmSync(temp, { recursive: true, force: true });
});

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString());
}
const startOf = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] as string;
};
const linux = existsSync('/proc/self/stat');

test('the process tag is the pid and, on Linux, the start time', () => {
  assert.match(PROCESS_TAG, new RegExp(`^${process.pid}-\\d+(\\.\\d+)?$`));
  if (linux) assert.ok(PROCESS_TAG.startsWith(`${process.pid}-${startOf(process.pid)}.`), PROCESS_TAG);
});

test('a process is alive only with the start time it had: a reused pid counts as gone', { skip: !linux }, () => {
  assert.equal(isProcessAlive(process.pid, startOf(process.pid)), true);
  assert.equal(isProcessAlive(process.ppid, startOf(process.ppid)), true);
  assert.equal(isProcessAlive(process.ppid, String(Number(startOf(process.ppid)) + 1)), false, 'reused pid');
  assert.equal(isProcessAlive(process.pid, String(Number(startOf(process.pid)) + 1)), false, 'own pid, earlier process');
  assert.equal(isProcessAlive(deadPid(), '1'), false);
  assert.equal(isProcessAlive(process.ppid, '0'), true, 'start unknown: a live pid is kept');
  // Another pid namespace (another container on a shared /tmp): its pids cannot be looked up here.
  const ownNamespace = PROCESS_TAG.split('.')[1];
  if (ownNamespace !== undefined) {
    assert.equal(isProcessAlive(deadPid(), `1.${Number(ownNamespace) + 1}`), true, 'another namespace is kept');
    assert.equal(isProcessAlive(deadPid(), `1.${ownNamespace}`), false, 'this namespace, dead');
  }
});

test('a sweep removes the files and folders of dead processes and of reused pids, and keeps live ones', { skip: !linux }, () => {
  const named = join(temp, 'named');
  mkdirSync(named);
  const dead = `${deadPid()}-1`;
  const reused = `${process.ppid}-${Number(startOf(process.ppid)) + 1}`;
  const alive = `${process.ppid}-${startOf(process.ppid)}`;
  const files = {
    dead: `miniray-${dead}-00aa.spill`,
    reused: `miniray-${reused}-00bb.spill`,
    alive: `miniray-${alive}-00cc.spill`,
    own: `miniray-${PROCESS_TAG}-00dd.spill`,
    user: 'miniray-notes.spill', // no tag: not provably miniray's
  };
  for (const name of Object.values(files)) writeFileSync(join(named, name), 'x');
  for (const tag of [dead, reused, alive, PROCESS_TAG]) {
    mkdirSync(join(temp, `miniray-spill-${tag}-abcd1234`));
    writeFileSync(join(temp, `miniray-spill-${tag}-abcd1234`, `miniray-${tag}-0011.spill`), 'x');
  }
  mkdirSync(join(temp, 'miniray-spill-test-x')); // someone else's folder with a similar name
  sweepStaleSpillFiles(named);
  assert.deepEqual(readdirSync(named).sort(), [files.alive, files.own, files.user].sort());
  assert.deepEqual(
    readdirSync(temp).filter((name) => name !== 'named').sort(),
    [`miniray-spill-${alive}-abcd1234`, `miniray-spill-${PROCESS_TAG}-abcd1234`, 'miniray-spill-test-x'].sort(),
  );
});

test('a dead process\'s files in a directory it named are found through its folder in tmpdir', { skip: !linux }, () => {
  const named = join(temp, 'elsewhere');
  mkdirSync(named);
  const dead = `${deadPid()}-7`;
  writeFileSync(join(named, `miniray-${dead}-00aa.spill`), 'x');
  mkdirSync(join(temp, `miniray-spill-${dead}-abcd1234`));
  writeFileSync(join(temp, `miniray-spill-${dead}-abcd1234`, 'directory.json'), JSON.stringify({ directory: named, created: true }));
  sweepStaleSpillFiles(); // a start that names no directory
  assert.equal(existsSync(named), false, 'the directory the dead process made is left');
  assert.deepEqual(readdirSync(temp), []);
});

test('a named directory: flat tagged files and a marker folder while in use; clear() removes all it made', () => {
  const named = join(temp, 'mine', 'spill');
  const spill = new SpillDirectory(named);
  const file = spill.write('00ff', [new Uint8Array([1, 2]), new Uint8Array([3])]);
  assert.equal(file, join(named, `miniray-${PROCESS_TAG}-00ff.spill`));
  const back = [new Uint8Array(2), new Uint8Array(1)];
  spill.read(file, back);
  assert.deepEqual(back, [new Uint8Array([1, 2]), new Uint8Array([3])]);
  const sessions = readdirSync(temp).filter((name) => name.startsWith('miniray-spill-'));
  assert.equal(sessions.length, 1);
  spill.clear();
  assert.equal(existsSync(named), false);
  assert.deepEqual(readdirSync(temp), ['mine']);
});

test('the default directory is a tagged folder in tmpdir, removed by clear(); no signal handler is left', () => {
  const spill = new SpillDirectory();
  assert.equal(process.listenerCount('SIGINT'), 0);
  spill.write('00ff', [new Uint8Array([1])]);
  assert.ok(spill.path.startsWith(join(temp, `miniray-spill-${PROCESS_TAG}-`)));
  assert.equal(process.listenerCount('SIGINT'), 1, 'no SIGINT handler while files exist');
  assert.equal(process.listenerCount('SIGTERM'), 1);
  spill.clear();
  assert.equal(existsSync(spill.path), false);
  assert.equal(process.listenerCount('SIGINT'), 0);
  assert.equal(process.listenerCount('SIGTERM'), 0);
});

test('no handler is added for a signal the program handles itself', () => {
  const own = () => {};
  process.on('SIGTERM', own);
  try {
    const spill = new SpillDirectory();
    spill.write('00ff', [new Uint8Array([1])]);
    assert.equal(process.listenerCount('SIGTERM'), 1);
    assert.equal(process.listenerCount('SIGINT'), 1);
    spill.clear();
    assert.equal(process.listenerCount('SIGINT'), 0);
  } finally {
    process.off('SIGTERM', own);
  }
});
