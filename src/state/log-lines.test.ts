import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProtocolError } from '../errors/index.js';
import { LogRing, formatLogLine, logPrefix, parseLogQuery, withoutLogPrefix, type NewLogLine } from './log-lines.js';

const NODE = 'a'.repeat(32);
const WORKER = 'b'.repeat(32);
const TASK1 = '1'.repeat(32);
const TASK2 = '2'.repeat(32);
const ACTOR = 'c'.repeat(32);

const line = (text: string, extra: Partial<NewLogLine> = {}): NewLogLine => ({
  stream: 'stdout',
  timeMs: 1,
  workerId: WORKER,
  name: 'f',
  text,
  ...extra,
});

test('the prefix names the task, the worker and the node by their first 8 hex characters', () => {
  assert.equal(logPrefix('add', '1a2b3c4d'.repeat(4), '5e6f7a8b'.repeat(4)), '(add worker=1a2b3c4d node=5e6f7a8b) ');
  assert.equal(logPrefix('', WORKER, NODE), '(worker=bbbbbbbb node=aaaaaaaa) ');
  const shown = formatLogLine({ name: 'anonymous (main.ts:8)', workerId: WORKER, nodeId: NODE, text: 'hi (there)' });
  assert.equal(shown, '(anonymous (main.ts:8) worker=bbbbbbbb node=aaaaaaaa) hi (there)');
  assert.equal(withoutLogPrefix(shown), 'hi (there)');
  assert.equal(withoutLogPrefix('(worker=bbbbbbbb node=aaaaaaaa) x'), 'x');
  assert.equal(withoutLogPrefix('result: (not a prefix)'), 'result: (not a prefix)');
});

test('the ring numbers lines per node, from 1, and keeps their fields', () => {
  const ring = new LogRing(NODE, 1 << 20);
  assert.equal(ring.lastSeq, 0);
  const first = ring.add(line('one', { taskId: TASK1 }));
  const second = ring.add(line('two', { stream: 'stderr', actorId: ACTOR }));
  assert.deepEqual(first, { ...line('one', { taskId: TASK1 }), nodeId: NODE, seq: 1 });
  assert.equal(second.seq, 2);
  assert.equal(ring.lastSeq, 2);
  assert.deepEqual(ring.query({}).map((l) => [l.seq, l.text, l.stream]), [[1, 'one', 'stdout'], [2, 'two', 'stderr']]);
});

test('the ring stays within its bytes: the oldest lines go first, and seq goes on', () => {
  const ring = new LogRing(NODE, 10_000);
  for (let i = 1; i <= 1000; i++) ring.add(line(`line ${i} ${'x'.repeat(50)}`));
  assert.ok(ring.size <= 10_000, `${ring.size} bytes kept`);
  const kept = ring.query({ tail: 100_000 });
  assert.ok(kept.length > 10 && kept.length < 1000, `${kept.length} kept`);
  assert.equal(kept.at(-1)?.seq, 1000, 'the newest is kept');
  assert.equal(kept[0]?.seq, 1000 - kept.length + 1, 'what is kept is the latest, without gaps');
  assert.equal(ring.dropped, 1000 - kept.length);
  // Many more, past the point where the ring compacts its array: still bounded and in order.
  for (let i = 1001; i <= 5000; i++) ring.add(line(`line ${i}`));
  const later = ring.query({ tail: 100_000 });
  assert.ok(ring.size <= 10_000);
  assert.deepEqual(later.map((l) => l.seq), Array.from({ length: later.length }, (_, i) => 5000 - later.length + 1 + i));
});

test('the ring counts bytes of UTF-8 text, and cuts a line too long to keep whole', () => {
  const ring = new LogRing(NODE, 16_000);
  ring.add(line('é'.repeat(100))); // 200 bytes of text
  assert.equal(ring.size, 200 + 1 + 64);
  const huge = ring.add(line('y'.repeat(50_000)));
  assert.equal(huge.text, `${'y'.repeat(1000)} [line truncated]`);
  assert.equal(ring.query({}).length, 2, 'the huge line did not push out the other');
  const none = new LogRing(NODE, 0);
  none.add(line('gone'));
  assert.deepEqual(none.query({}), []);
  assert.equal(none.dropped, 1);
});

test('queries filter by task and actor, return the latest `tail`, and follow with `after`', () => {
  const ring = new LogRing(NODE, 1 << 20);
  for (let i = 1; i <= 10; i++) ring.add(line(`t${i}`, i % 2 === 0 ? { taskId: TASK1 } : { taskId: TASK2, actorId: ACTOR }));
  assert.deepEqual(ring.query({ taskId: TASK1 }).map((l) => l.text), ['t2', 't4', 't6', 't8', 't10']);
  assert.deepEqual(ring.query({ actorId: ACTOR, tail: 2 }).map((l) => l.text), ['t7', 't9']);
  assert.deepEqual(ring.query({ tail: 3 }).map((l) => l.seq), [8, 9, 10]);
  assert.deepEqual(ring.query({ tail: 0 }), []);
  assert.deepEqual(ring.query({ after: { [NODE]: 7 } }).map((l) => l.seq), [8, 9, 10]);
  assert.deepEqual(ring.query({ after: { [NODE]: 10 } }), []);
  assert.equal(ring.query({ after: { ['d'.repeat(32)]: 9 } }).length, 10, "another node's seq says nothing of this one's");
  assert.deepEqual(ring.query({ taskId: TASK1, after: { [NODE]: 5 } }).map((l) => l.text), ['t6', 't8', 't10']);
});

test('a log query from the wire: each wrong field is named', () => {
  assert.deepEqual(parseLogQuery({ taskId: TASK1, tail: 5, after: { [NODE]: 3 } }), { taskId: TASK1, tail: 5, after: { [NODE]: 3 } });
  assert.deepEqual(parseLogQuery({}), {});
  assert.deepEqual(parseLogQuery({ tail: 0 }), { tail: 0 });
  const cases: [unknown, RegExp][] = [
    [null, /body must be an object; got null/],
    [[1], /body must be an object; got an array/],
    [{ taskId: 5 }, /'taskId' must be an ID of 32 lowercase hex characters, not 5/],
    [{ actorId: {} }, /'actorId' must be an ID of 32 lowercase hex characters, not an object/],
    [{ actorId: 'nope' }, /'actorId' must be an ID of 32 lowercase hex characters, not 'nope'/],
    [{ taskId: 'A'.repeat(32) }, /'taskId' must be an ID of 32 lowercase hex/],
    [{ tail: -1 }, /tail must be an integer from 0 to 100000/],
    [{ tail: 1.5 }, /tail must be an integer/],
    [{ after: 'x' }, /after must be an object of node ID -> seq/],
    [{ after: { [NODE]: 'x' } }, new RegExp(`after\\.${NODE} must be an integer >= 0`)],
  ];
  for (const [value, pattern] of cases) {
    const parsed = parseLogQuery(value);
    assert.ok(parsed instanceof ProtocolError, JSON.stringify(value));
    assert.match(parsed.message, pattern);
  }
});
