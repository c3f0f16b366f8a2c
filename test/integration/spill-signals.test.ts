// Spill files and the ways a process ends (issue 8, item 4): SIGINT and SIGTERM used to leave
// every spill file behind (cleanup ran only on 'exit'). Now they remove them at once and the
// process still ends by the signal; after a SIGKILL the next miniray to start removes them; a
// program's own signal handler is left in charge; another live miniray's files are left alone.
// Each child gets a temp directory of its own (TMPDIR), where miniray's default spill folder goes.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { fixture, run, start, type Started } from '../fixtures/processes.js';

let temp: string;
let env: Record<string, string>;
/** Drivers started by a test, killed after it if a failed assertion left them running. */
const children: Started[] = [];
beforeEach(() => {
  temp = mkdtempSync(join(tmpdir(), 'miniray-signals-'));
  env = { TMPDIR: temp };
});
afterEach(async () => {
  for (const { child } of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  rmSync(temp, { recursive: true, force: true });
});

const list = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
/** Every spill file and folder of miniray's in the child's temp directory and in `named`. */
function spillLeft(named?: string): string[] {
  const left: string[] = [];
  for (const name of list(temp)) {
    if (name.startsWith('miniray-spill-')) left.push(name, ...list(join(temp, name)).map((file) => `${name}/${file}`));
  }
  if (named !== undefined) left.push(...list(named).filter((name) => name.endsWith('.spill')).map((name) => `named/${name}`));
  return left;
}

/** Starts a driver that spills (into `where`: a directory, or 'default'), waiting until it has. */
async function spilling(where: string, ...more: string[]) {
  const child = start(fixture('spill-and-wait.ts'), [where, ...more], env);
  children.push(child);
  const line = await child.line(/^spilled /);
  assert.notEqual(line, 'spilled 0 8', 'the driver spilled nothing');
  return child;
}

describe('spill files when the process is ended by a signal', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    for (const where of ['default', 'named'] as const) {
      test(`${signal} (${where} spill directory): no spill file is left, and the process ends by ${signal}`, async () => {
        const named = join(temp, 'spill');
        const child = await spilling(where === 'named' ? named : 'default');
        assert.ok(spillLeft(named).some((name) => name.endsWith('.spill')), 'no spill file before the signal');
        child.child.kill(signal);
        const outcome = await child.ended();
        assert.equal(outcome.signal, signal, `ended with code ${outcome.code}, signal ${outcome.signal}; stderr: ${outcome.stderr}`);
        assert.deepEqual(spillLeft(named), []);
        assert.equal(existsSync(named), false, 'the spill directory miniray made is left');
      });
    }
  }

  test('a program\'s own SIGINT/SIGTERM handler stays in charge, and its exit still removes the files', async () => {
    const named = join(temp, 'spill');
    const child = await spilling(named, 'own-handler');
    child.child.kill('SIGTERM');
    const outcome = await child.ended();
    assert.equal(outcome.code, 3, `code ${outcome.code}, signal ${outcome.signal}; stderr: ${outcome.stderr}`);
    assert.match(outcome.stdout, /^own handler: SIGTERM$/m);
    assert.deepEqual(spillLeft(named), []);
  });

  for (const where of ['default', 'named'] as const) {
    test(`SIGKILL (${where} spill directory): the next start of miniray removes the files left`, async () => {
      const named = join(temp, 'spill');
      const child = await spilling(where === 'named' ? named : 'default');
      child.child.kill('SIGKILL');
      assert.equal((await child.ended()).signal, 'SIGKILL');
      assert.ok(spillLeft(named).some((name) => name.endsWith('.spill')), 'SIGKILL left nothing to sweep (so the test shows nothing)');
      // The next start uses the default directory even where the killed one named its own.
      const next = await run(fixture('exit-with-shutdown.ts'), [], env);
      assert.equal(next.code, 0, next.stderr);
      assert.deepEqual(spillLeft(named), []);
      assert.equal(existsSync(named), false, 'the spill directory the killed process made is left');
    });
  }

  test('a start of miniray leaves the spill files of another live miniray alone', async () => {
    const named = join(temp, 'spill');
    const live = await spilling(named);
    const before = spillLeft(named);
    assert.ok(before.some((name) => name.endsWith('.spill')));
    const other = await spilling(named); // a second live process, same directories
    const next = await run(fixture('exit-with-shutdown.ts'), [], env);
    assert.equal(next.code, 0, next.stderr);
    for (const name of before) assert.ok(spillLeft(named).includes(name), `${name} of a live process was removed`);
    for (const child of [live, other]) child.child.kill('SIGTERM');
    await Promise.all([live.ended(), other.ended()]);
    assert.deepEqual(spillLeft(named), []);
  });
});
