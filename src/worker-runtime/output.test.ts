import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import type { WorkerLogLine } from '../protocol/index.js';
import { PARTIAL_LINE_HOLD_MS, TaskOutput } from './output.js';

const WORKER = '1a2b3c4d'.repeat(4);
const NODE = '5e6f7a8b'.repeat(4);
// IDs of any kind (`as never`: a test's text goes in task, object, actor, node and worker ID fields alike).
const OWNER: never = 'f'.repeat(32) as never;
const TASK1: never = '1'.repeat(32) as never;
const TASK2: never = '2'.repeat(32) as never;
const ACTOR: never = 'c'.repeat(32) as never;

/** A TaskOutput whose descriptors are strings, and whose records are collected as sent. */
function harness() {
  const fds: Record<1 | 2, Buffer[]> = { 1: [], 2: [] };
  const sent: WorkerLogLine[][] = [];
  const output = new TaskOutput({ workerId: WORKER, nodeId: NODE, write: (fd, bytes) => fds[fd].push(Buffer.from(bytes)), now: () => 7 });
  output.connect((lines) => sent.push([...lines]));
  return {
    output,
    text: (fd: 1 | 2) => Buffer.concat(fds[fd]).toString('utf8'),
    writes: (fd: 1 | 2) => fds[fd].length,
    records: () => {
      output.flush();
      return sent.flat();
    },
    sent,
  };
}

const write = (output: TaskOutput, fd: 1 | 2, text: string | Uint8Array) => output.write(fd, typeof text === 'string' ? Buffer.from(text) : text);

test('each line is prefixed with the task, worker and node; one write, one descriptor write', () => {
  const h = harness();
  h.output.started(1, 'add', TASK1);
  write(h.output, 1, 'one\ntwo\n');
  write(h.output, 2, 'oops\n');
  assert.equal(h.text(1), '(add worker=1a2b3c4d node=5e6f7a8b) one\n(add worker=1a2b3c4d node=5e6f7a8b) two\n');
  assert.equal(h.text(2), '(add worker=1a2b3c4d node=5e6f7a8b) oops\n');
  assert.equal(h.writes(1), 1, 'a write stays one write (no interleaving with other threads mid-line)');
  assert.deepEqual(h.records(), [
    { stream: 'stdout', timeMs: 7, name: 'add', text: 'one', taskId: TASK1 },
    { stream: 'stdout', timeMs: 7, name: 'add', text: 'two', taskId: TASK1 },
    { stream: 'stderr', timeMs: 7, name: 'add', text: 'oops', taskId: TASK1 },
  ]);
});

test('partial lines: held back until their newline, then written whole with one prefix', () => {
  const h = harness();
  h.output.started(1, 'f', TASK1);
  write(h.output, 1, 'a');
  write(h.output, 1, 'b');
  assert.equal(h.text(1), '', 'nothing of an unfinished line yet: another worker may write a line meanwhile');
  write(h.output, 1, 'c\nd');
  assert.equal(h.writes(1), 1);
  write(h.output, 1, '\n\n');
  assert.equal(h.text(1), '(f worker=1a2b3c4d node=5e6f7a8b) abc\n(f worker=1a2b3c4d node=5e6f7a8b) d\n(f worker=1a2b3c4d node=5e6f7a8b) \n');
  assert.deepEqual(h.records().map((r) => r.text), ['abc', 'd', '']);
});

test("a partial line of a running task waits for its end; once the task ended it is sent as a line", () => {
  const h = harness();
  h.output.started(1, 'f', TASK1);
  write(h.output, 1, 'progress 50%');
  assert.deepEqual(h.records(), [], 'still running: the line may go on');
  h.output.finished(1);
  assert.deepEqual(h.records().map((r) => r.text), ['progress 50%']);
  assert.equal(h.text(1), '(f worker=1a2b3c4d node=5e6f7a8b) progress 50%\n', 'ended with a newline, before the result');
});

test('a line held back too long is written as it is, and goes on without a second prefix', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const h = harness();
    h.output.started(1, 'f', TASK1);
    write(h.output, 1, 'dots.');
    mock.timers.tick(PARTIAL_LINE_HOLD_MS - 1);
    assert.equal(h.text(1), '');
    mock.timers.tick(1);
    assert.equal(h.text(1), '(f worker=1a2b3c4d node=5e6f7a8b) dots.');
    write(h.output, 1, '..\n');
    assert.equal(h.text(1), '(f worker=1a2b3c4d node=5e6f7a8b) dots...\n');
    assert.deepEqual(h.records().map((r) => r.text), ['dots...']);
  } finally {
    mock.timers.reset();
  }
});

test('end(): open lines of running tasks are written and sent (a task calls process.exit())', () => {
  const h = harness();
  h.output.started(1, 'f', TASK1);
  write(h.output, 2, 'bye');
  h.output.end();
  assert.equal(h.text(2), '(f worker=1a2b3c4d node=5e6f7a8b) bye\n');
  assert.deepEqual(h.sent.flat().map((r) => r.text), ['bye']);
});

test('another task writing while a line is open starts a new, prefixed line', () => {
  const h = harness();
  h.output.started(1, 'f', TASK1);
  write(h.output, 1, 'half');
  h.output.finished(1);
  h.output.started(2, 'g', TASK2);
  write(h.output, 1, 'other\n');
  assert.equal(h.text(1), '(f worker=1a2b3c4d node=5e6f7a8b) half\n(g worker=1a2b3c4d node=5e6f7a8b) other\n');
  assert.deepEqual(h.records().map((r) => [r.name, r.text]), [['f', 'half'], ['g', 'other']]);
});

test('multi-byte characters split across writes come out whole, in the records and on the descriptor', () => {
  const h = harness();
  h.output.started(1, 'f', TASK1);
  const bytes = Buffer.from('héllo wörld 日本 🎉\n');
  for (let i = 0; i < bytes.length; i++) write(h.output, 1, bytes.subarray(i, i + 1)); // one byte per write
  assert.equal(h.text(1), '(f worker=1a2b3c4d node=5e6f7a8b) héllo wörld 日本 🎉\n');
  assert.deepEqual(h.records().map((r) => r.text), ['héllo wörld 日本 🎉']);
});

test('leftover output after its task ended keeps that task; the newest running task wins; none: the worker', () => {
  const h = harness();
  write(h.output, 1, 'boot\n');
  h.output.started(1, 'f', TASK1, undefined, OWNER);
  h.output.finished(1);
  write(h.output, 1, 'late\n'); // a timer of f's, after f returned
  h.output.started(2, 'g', TASK2);
  h.output.started(3, 'C', TASK1, ACTOR);
  write(h.output, 2, 'newest\n');
  h.output.finished(3);
  write(h.output, 2, 'still g\n');
  h.output.finished(2);
  h.output.finished(99); // never started: ignored
  assert.deepEqual(
    h.records().map((r) => [r.name, r.text, r.taskId ?? '-', r.actorId ?? '-', r.ownerNode ?? '-']),
    [
      ['', 'boot', '-', '-', '-'],
      ['f', 'late', TASK1, '-', OWNER],
      ['C', 'newest', TASK1, ACTOR, '-'],
      ['g', 'still g', TASK2, '-', '-'],
    ],
  );
  assert.match(h.text(1), /^\(worker=1a2b3c4d node=5e6f7a8b\) boot\n\(f worker/);
});

test('records are batched: sent in a microtask, or at once past 256 lines; none before connect()', async () => {
  const fds: Buffer[] = [];
  const sent: WorkerLogLine[][] = [];
  const output = new TaskOutput({ workerId: WORKER, nodeId: NODE, write: (_fd, bytes) => fds.push(Buffer.from(bytes)) });
  write(output, 1, 'before\n');
  output.flush();
  assert.equal(sent.length, 0);
  output.connect((lines) => sent.push([...lines]));
  await Promise.resolve();
  assert.deepEqual(sent.map((batch) => batch.length), [1]);
  output.started(1, 'f');
  for (let i = 0; i < 300; i++) write(output, 1, `${i}\n`);
  assert.deepEqual(sent.map((batch) => batch.length), [1, 256], 'a long synchronous task sends as it goes');
  await Promise.resolve();
  assert.deepEqual(sent.map((batch) => batch.length), [1, 256, 44]);
  write(output, 1, 'x\r\n');
  output.flush();
  assert.equal(sent.at(-1)?.[0]?.text, 'x', 'a CRLF ending is not part of the text');
});

test('a line longer than 1 MiB is recorded cut (the descriptor gets it whole); a line that never ends, in pieces', () => {
  const h = harness();
  h.output.started(1, 'f', TASK1);
  write(h.output, 1, `${'x'.repeat(1024 * 1024 + 10)}\n`);
  const [cut] = h.records();
  assert.equal(cut?.text, `${'x'.repeat(1024 * 1024)} [line truncated]`);
  assert.equal(h.text(1).length, '(f worker=1a2b3c4d node=5e6f7a8b) '.length + 1024 * 1024 + 11);
  for (let i = 0; i < 3; i++) write(h.output, 1, 'y'.repeat(512 * 1024));
  assert.deepEqual(h.records().slice(1).map((r) => r.text.length), [1024 * 1024], 'the first MiB is recorded; the rest waits');
});

test('many calls at once (an async actor) ending in any order: the newest still running writes, each open line ends with its own call', () => {
  const h = harness();
  const N = 300;
  for (let seq = 1; seq <= N; seq++) h.output.started(seq, `m${seq}`, TASK1, ACTOR);
  // The newest writes an open line; then every call but the oldest and the newest ends, oldest
  // first (each end is below the top: marked, and the entries compacted along the way).
  write(h.output, 1, 'partial');
  for (let seq = 2; seq < N; seq++) h.output.finished(seq);
  write(h.output, 2, 'top\n');
  h.output.finished(N);
  h.output.flush();
  write(h.output, 2, 'oldest\n');
  h.output.finished(1);
  write(h.output, 2, 'after\n');
  h.output.finished(2); // ended already: ignored
  assert.deepEqual(
    h.records().map((r) => [r.name, r.text]),
    [
      [`m${N}`, 'top'],
      [`m${N}`, 'partial'],
      ['m1', 'oldest'],
      ['m1', 'after'],
    ],
  );
});
