// Chaos: the ways a driver process ends. Queued work finishes before a driver that never calls
// shutdown() exits; idle actors do not hold the process; task output is not lost at exit; and
// SIGINT/SIGTERM/SIGKILL leave no spill file once the next miniray has started (issue 8, items
// 4 and 9). Every driver is a child process with a temp directory of its own (TMPDIR).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { withoutLogPrefix } from '../../dist/state/log-lines.js';
import { fixture, run, start } from '../fixtures/processes.js';
import { report, scaled } from './figures.js';

let temp: string;
before(() => {
  temp = mkdtempSync(join(tmpdir(), 'miniray-chaos-exit-'));
});
after(() => rmSync(temp, { recursive: true, force: true }));

const list = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
/** miniray's spill files (paths) under the temp directory: default folders and named directories. */
function spillFiles(dir: string): string[] {
  const files: string[] = [];
  for (const name of list(dir)) {
    const path = join(dir, name);
    if (name.endsWith('.spill')) files.push(path);
    else if (statSync(path).isDirectory()) files.push(...spillFiles(path));
  }
  return files;
}
const bytesOf = (files: readonly string[]) => files.reduce((sum, file) => sum + (existsSync(file) ? statSync(file).size : 0), 0);

describe('chaos: exit and signals', () => {
  test('queued tasks and actor calls all run before a driver without shutdown() exits', async () => {
    const count = scaled(100);
    const outcome = await run(fixture('exit-queued-work.ts'), [String(count)], { TMPDIR: temp }, 120_000);
    assert.equal(outcome.code, 0, outcome.stderr);
    const lines = outcome.stdout.split('\n').map(withoutLogPrefix);
    const tasks = new Set(lines.filter((line) => line.startsWith('done task ')));
    const calls = new Set(lines.filter((line) => line.startsWith('done call ')));
    report('exit-queued-work', { tasks: count, tasksRun: tasks.size, calls: count, callsRun: calls.size, ms: outcome.ms });
    assert.equal(tasks.size, count);
    assert.equal(calls.size, count);
  });

  test('idle actors of every isolation do not keep the process alive', async () => {
    const runs = scaled(2);
    const exitMs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const child = start(fixture('exit-idle-actors.ts'), [], { TMPDIR: temp });
      await child.line(/^result: 1,1,1$/);
      const printed = Date.now();
      const outcome = await child.ended(20_000);
      assert.equal(outcome.code, 0, outcome.stderr);
      exitMs.push(Date.now() - printed);
    }
    report('exit-idle-actors', { runs, maxMsFromResultToExit: Math.max(...exitMs) });
  });

  test('task and actor output at exit: nothing lost, nothing overtaken by its result', async () => {
    const runs = scaled(10);
    let lost = 0;
    let overtaken = 0;
    for (let i = 0; i < runs; i++) {
      const mode = i % 2 === 0 ? 'exit' : 'shutdown';
      const outcome = await run(fixture('exit-task-output.ts'), [mode], { TMPDIR: temp });
      assert.equal(outcome.code, 0, outcome.stderr);
      const lines = outcome.stdout.split('\n').filter((line) => line !== '').map(withoutLogPrefix);
      const taskLines = lines.filter((line) => line.startsWith('task '));
      const stderrLines = outcome.stderr.split('\n').filter((line) => / stderr$/.test(line));
      lost += 24 - taskLines.length + (4 - stderrLines.length);
      if (lines.at(-1) !== 'result: 1,2,3,4') overtaken++;
    }
    report('exit-task-output', { runs, linesLost: lost, runsWithResultBeforeOutput: overtaken });
    assert.equal(lost, 0);
    assert.equal(overtaken, 0);
  });

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGKILL'] as const) {
    test(`${signal}: no spill file is left after the next start of miniray`, async () => {
      const runs = scaled(2);
      let spilled = 0;
      let leftAtExit = 0;
      let leftBytes = 0;
      let leftAfterNextStart = 0;
      for (let i = 0; i < runs; i++) {
        const env = { TMPDIR: mkdtempSync(join(temp, 'run-')) };
        const named = i % 2 === 0 ? 'default' : join(env.TMPDIR, 'spill');
        const child = start(fixture('spill-and-wait.ts'), [named], env);
        await child.line(/^spilled /);
        spilled += spillFiles(env.TMPDIR).length;
        child.child.kill(signal);
        const outcome = await child.ended();
        assert.equal(outcome.signal, signal, `code ${outcome.code}; stderr: ${outcome.stderr}`);
        const left = spillFiles(env.TMPDIR);
        leftAtExit += left.length;
        leftBytes += bytesOf(left);
        const next = await run(fixture('exit-with-shutdown.ts'), [], env);
        assert.equal(next.code, 0, next.stderr);
        leftAfterNextStart += spillFiles(env.TMPDIR).length;
      }
      report(`signal-${signal}`, { runs, spillFiles: spilled, leftAtExit, leftBytesAtExit: leftBytes, leftAfterNextStart });
      assert.ok(spilled > 0, 'nothing spilled');
      if (signal !== 'SIGKILL') assert.equal(leftAtExit, 0, `${signal} left spill files`);
      assert.equal(leftAfterNextStart, 0);
    });
  }
});
