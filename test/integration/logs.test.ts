// Task and actor output in the embedded default (issue 12): each line on the driver's stdout (or
// stderr) says where it came from, before the result printed after it, and the driver's node keeps
// the lines, found by task and by actor. The driver runs as a child process (test/fixtures/logs-driver.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LogLine } from '../../src/state/types.js';
import { fixture, run } from '../fixtures/processes.js';

const PREFIX = /^\((greet|lingers|Counter) worker=([0-9a-f]{8}) node=([0-9a-f]{8})\) (.*)$/;

describe('logs: task and actor output', () => {
  test("prefixed on the driver's stdout and stderr, kept by the node, found by task and actor", async () => {
    const outcome = await run(fixture('logs-driver.ts'), [], {}, 60_000);
    assert.equal(outcome.code, 0, outcome.stderr);
    const lines = outcome.stdout.split('\n').filter((line) => line !== '');
    // The driver's own lines are not prefixed; every other line is.
    assert.equal(lines[0], 'driver line');
    const resultAt = lines.indexOf('result: a,b,1,2,1');
    assert.ok(resultAt > 0, outcome.stdout);
    const shown = lines.filter((line) => !line.startsWith('RESULT ') && line !== 'driver line' && !line.startsWith('result: '));
    for (const line of shown) assert.match(line, PREFIX);
    const texts = shown.map((line) => (PREFIX.exec(line) as RegExpExecArray)[4]);
    for (const expected of ['hello a', 'hello b', 'partial a', 'partial b', 'count 1', 'count 2', 'late line']) assert.ok(texts.includes(expected), `${expected} missing:\n${outcome.stdout}`);
    // Before the result printed after them (the late line may come after it: its task had ended).
    for (const expected of ['hello a', 'hello b', 'partial a', 'count 2']) {
      assert.ok(lines.findIndex((line) => line.endsWith(`) ${expected}`)) < resultAt, `${expected} after the result:\n${outcome.stdout}`);
    }
    // One node; each task's lines from one worker; a line written without its newline is whole.
    const nodes = new Set(shown.map((line) => (PREFIX.exec(line) as RegExpExecArray)[3]));
    assert.equal(nodes.size, 1);
    assert.match(outcome.stderr, /^\(greet worker=[0-9a-f]{8} node=[0-9a-f]{8}\) warn a é$/m);
    assert.match(outcome.stderr, /^\(greet worker=[0-9a-f]{8} node=[0-9a-f]{8}\) warn b é$/m);

    const resultLine = lines.find((line) => line.startsWith('RESULT ')) as string;
    const ring = JSON.parse(resultLine.slice('RESULT '.length)) as { all: LogLine[]; byTask: LogLine[]; byActor: LogLine[]; tail: LogLine[] };
    // Numbered from 1 on the node as they arrived; shown in time order (the workers' clocks).
    assert.deepEqual(
      ring.all.map((line) => line.seq).sort((a, b) => a - b),
      ring.all.map((_, i) => i + 1),
    );
    assert.ok(ring.all.every((line, i) => i === 0 || line.timeMs >= (ring.all[i - 1] as LogLine).timeMs), 'in time order');
    const [node] = nodes;
    for (const line of ring.all) {
      assert.equal(line.nodeId.slice(0, 8), node);
      assert.equal(line.workerId.length, 32);
    }
    assert.deepEqual(
      ring.byTask.map((line) => [line.name, line.stream, line.text]),
      [
        ['greet', 'stdout', 'hello a'],
        ['greet', 'stderr', 'warn a é'],
        ['greet', 'stdout', 'partial a'],
      ],
    );
    assert.ok(ring.byTask.every((line) => line.actorId === undefined));
    assert.deepEqual(ring.byActor.map((line) => [line.name, line.text]), [['Counter', 'count 1'], ['Counter', 'count 2']]);
    assert.notEqual(ring.byActor[0]?.taskId, ring.byActor[1]?.taskId, 'each call has its own task ID');
    assert.ok(ring.all.some((line) => line.name === 'lingers' && line.text === 'late line' && line.taskId !== undefined), 'a line after its task ended keeps that task');
    // tail: the node's latest lines (by seq, as they arrived).
    assert.deepEqual(ring.tail.map((line) => line.seq).sort((a, b) => a - b), [ring.all.length - 1, ring.all.length]);
  });
});
