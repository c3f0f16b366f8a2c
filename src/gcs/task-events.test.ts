// The GCS's task-event table, without nodes: batches merged by (taskId, attempt), states only
// forward, the running node's events, eviction of finished attempts first, metrics, core events,
// filters; and the batch validator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TaskEventTable, RUN_TIME_BOUNDS, TASK_FILTER_KEYS } from './task-events.js';
import { FILTER_KEYS, applyListOptions, checkListOptions } from '../state/filter.js';
import { parseNotify, type TaskEventBatch, type TaskEventInfo } from './messages.js';
import { ProtocolError, InvalidOptionError } from '../errors/index.js';
import { TASK_STATES, type TaskState } from '../state/types.js';

const OWNER = '0'.repeat(31) + '1';
const RUNNER = '0'.repeat(31) + '2';
const idOf = (n: number) => n.toString(16).padStart(32, '0');
const S = (state: TaskState) => TASK_STATES.indexOf(state);

type Event = [taskId: string, attempt: number, state: TaskState, timeMs: number, workerId?: string, startMs?: number];

function batch(nodeId: string, events: Event[], infos: TaskEventInfo[] = [], dropped = 0): TaskEventBatch {
  return {
    nodeId: nodeId as TaskEventBatch['nodeId'],
    dropped,
    taskIds: events.map((e) => e[0]),
    codes: events.map((e) => S(e[2]) + 8 * (e[1] + 1)),
    timesMs: events.map((e) => e[3]),
    startsMs: events.map((e) => e[5] ?? 0),
    workerIds: events.map((e) => e[4] ?? ''),
    infos,
    core: { kinds: [], workerIds: [], startsMs: [], endsMs: [], counts: [] },
  };
}

const submitInfo = (index: number, name = 'f'): TaskEventInfo => ({ index, name, type: 'NORMAL_TASK', ownerNodeId: OWNER, requiredResources: { CPU: 1 } });

test('the owner\'s and the running node\'s events merge into one entry, in either order, and states only go forward', () => {
  const table = new TaskEventTable({ maxTasks: 10 });
  const t = idOf(1);
  // The running node's batch comes first: it does not know the attempt (-1).
  table.add(batch(RUNNER, [[t, -1, 'SUBMITTED_TO_WORKER', 20, 'w1'], [t, -1, 'FINISHED', 30, 'w1', 21]], [{ index: 1, profile: [{ name: 'p', startMs: 22, endMs: 23 }] }]));
  table.add(batch(OWNER, [[t, 0, 'PENDING_ARGS_AVAIL', 10], [t, 0, 'PENDING_NODE_ASSIGNMENT', 11]], [submitInfo(0)]));
  const { records, total, dropped } = table.list({ detail: true });
  assert.equal(total, 1);
  assert.equal(dropped, 0);
  const entry = records[0];
  assert.equal(entry?.state, 'FINISHED');
  assert.equal(entry?.name, 'f');
  assert.equal(entry?.nodeId, RUNNER);
  assert.equal(entry?.workerId, 'w1');
  assert.equal(entry?.ownerNodeId, OWNER);
  assert.equal(entry?.creationTimeMs, 10);
  assert.equal(entry?.startTimeMs, 21);
  assert.equal(entry?.endTimeMs, 30);
  assert.deepEqual(entry?.events?.map((e) => e.state), ['PENDING_ARGS_AVAIL', 'PENDING_NODE_ASSIGNMENT', 'SUBMITTED_TO_WORKER', 'RUNNING', 'FINISHED']);
  assert.deepEqual(entry?.profile, [{ name: 'p', startMs: 22, endMs: 23 }]);
  // Counted under its name once the name came, and its run time observed once.
  const metrics = table.metrics();
  assert.deepEqual(metrics.byState, { '': {}, f: { FINISHED: 1 } });
  assert.equal(metrics.runTime['f']?.count, 1);
  assert.deepEqual(metrics.runTime['f']?.bounds, RUN_TIME_BOUNDS);
  // 9 ms: not <= 5 ms, <= 10 ms and every bound after (cumulative buckets).
  assert.deepEqual(metrics.runTime['f']?.counts.slice(0, 4), [0, 0, 1, 1]);
});

test('a retry is a new attempt with its first attempt\'s name; the first error stands', () => {
  const table = new TaskEventTable({ maxTasks: 10 });
  const t = idOf(2);
  table.add(
    batch(OWNER, [[t, 0, 'PENDING_ARGS_AVAIL', 1], [t, 0, 'RUNNING', 2, 'w'], [t, 0, 'FAILED', 3], [t, 0, 'FAILED', 4], [t, 1, 'PENDING_NODE_ASSIGNMENT', 5]], [
      submitInfo(0, 'g'),
      { index: 2, errorType: 'TaskError', errorMessage: 'task g failed: boom' },
      { index: 3, errorType: 'ActorDiedError', errorMessage: 'later' },
    ]),
  );
  const attempts = table.get(t);
  assert.deepEqual(attempts.map((a) => [a.attempt, a.name, a.state]), [[0, 'g', 'FAILED'], [1, 'g', 'PENDING_NODE_ASSIGNMENT']]);
  assert.equal(attempts[0]?.errorType, 'TaskError');
  assert.equal(attempts[0]?.errorMessage, 'task g failed: boom');
  assert.equal(attempts[1]?.creationTimeMs, 1);
});

test('a retry after its node died: the new node\'s batch (attempt 1) first, then the owner\'s (attempt 0 FAILED, attempt 1 queued); each attempt keeps its own end', () => {
  const table = new TaskEventTable({ maxTasks: 10 });
  const t = idOf(3);
  // The new node's events come first, before the table knows of the task at all.
  table.add(batch(RUNNER, [[t, 1, 'SUBMITTED_TO_WORKER', 40, 'w2'], [t, 1, 'FINISHED', 50, 'w2', 41]]));
  table.add(
    batch(OWNER, [[t, 0, 'PENDING_ARGS_AVAIL', 10], [t, 0, 'PENDING_NODE_ASSIGNMENT', 11], [t, 0, 'FAILED', 30], [t, 1, 'PENDING_NODE_ASSIGNMENT', 31]], [
      submitInfo(0, 'h'),
      { index: 2, errorType: 'NodeDiedError', errorMessage: 'node x died' },
    ]),
  );
  // The dead node's result, sent before it died, arriving last: attempt 0 ended already.
  table.add(batch(OWNER.replace(/1$/, '3'), [[t, 0, 'FINISHED', 60, 'w1', 20]]));
  const attempts = table.get(t);
  assert.deepEqual(attempts.map((a) => [a.attempt, a.state]), [[0, 'FAILED'], [1, 'FINISHED']]);
  assert.deepEqual(attempts.map((a) => a.name), ['h', 'h'], 'the retry has its first attempt\'s name, though it came first');
  assert.deepEqual(table.metrics().byState['h'], { FAILED: 1, FINISHED: 1 });
  assert.equal(attempts[0]?.errorType, 'NodeDiedError');
  assert.equal(attempts[0]?.endTimeMs, 30, 'the end that stands is the FAILED one');
  assert.equal(attempts[1]?.nodeId, RUNNER);
  assert.equal(attempts[1]?.endTimeMs, 50);
  assert.equal(table.list().total, 2);
});

test('past maxTasks, finished attempts go first, oldest first; then the oldest of any state; each counts as dropped', () => {
  const table = new TaskEventTable({ maxTasks: 3 });
  table.add(batch(OWNER, [[idOf(1), 0, 'PENDING_ARGS_AVAIL', 1], [idOf(2), 0, 'PENDING_ARGS_AVAIL', 2], [idOf(3), 0, 'PENDING_ARGS_AVAIL', 3], [idOf(2), 0, 'FINISHED', 4]], [], 5));
  table.add(batch(OWNER, [[idOf(4), 0, 'PENDING_ARGS_AVAIL', 5]]));
  assert.deepEqual(table.list().records.map((r) => r.taskId), [idOf(1), idOf(3), idOf(4)]);
  table.add(batch(OWNER, [[idOf(5), 0, 'PENDING_ARGS_AVAIL', 6]]));
  assert.deepEqual(table.list().records.map((r) => r.taskId), [idOf(3), idOf(4), idOf(5)]);
  assert.equal(table.dropped, 5 + 2);
  assert.equal(table.metrics().droppedEvents, 7);
});

test('filters and limit: total counts what matched; an unknown key names the valid ones', () => {
  const table = new TaskEventTable({ maxTasks: 100 });
  const events: Event[] = [];
  for (let i = 1; i <= 5; i++) events.push([idOf(i), 0, i % 2 === 0 ? 'FINISHED' : 'RUNNING', i]);
  table.add(batch(OWNER, events));
  const finished = table.list({ filters: [['state', '=', 'FINISHED']], limit: 1 });
  assert.equal(finished.total, 2);
  assert.equal(finished.records.length, 1);
  assert.equal(table.list({ filters: [['state', '!=', 'FINISHED'], ['attempt', '=', 0]] }).total, 3);
  assert.throws(() => table.list({ filters: [['colour', '=', 'red']] }), (error: unknown) => error instanceof InvalidOptionError && /taskId, attempt, name/.test(error.message));
});

test("the GCS's task filters are the state API's: the same keys (one list), and the same records for the same filter", () => {
  assert.equal(TASK_FILTER_KEYS, FILTER_KEYS.tasks);
  const table = new TaskEventTable({ maxTasks: 100 });
  const events: Event[] = [];
  for (let i = 1; i <= 6; i++) events.push([idOf(i), 0, i % 3 === 0 ? 'FINISHED' : 'RUNNING', i, i % 2 === 0 ? 'w' : '', i]);
  table.add(batch(RUNNER, events));
  const all = table.list({ limit: 1000 }).records;
  for (const filters of [[['state', '=', 'RUNNING']], [['workerId', '!=', 'w']], [['startTimeMs', '=', 3]], [['endTimeMs', '=', 6], ['attempt', '=', '0']], [['actorId', '=', 'x']]] as const) {
    const options = checkListOptions('test', 'tasks', { filters });
    const gcs = table.list({ filters, limit: 2 });
    const state = applyListOptions('tasks', all, options);
    assert.deepEqual([gcs.total, gcs.records.slice(0, 2)], [state.total, state.records.slice(0, 2)], JSON.stringify(filters));
  }
});

test('core events are a ring of the latest', () => {
  const table = new TaskEventTable({ maxTasks: 10, maxCoreEvents: 3 });
  const b = batch(OWNER, []);
  for (let i = 0; i < 5; i++) {
    table.add({ ...b, core: { kinds: [i % 3], workerIds: ['w'], startsMs: [i], endsMs: [i + 1], counts: [1] } });
  }
  assert.deepEqual(table.coreEvents().map((e) => [e.kind, e.startMs]), [['wait', 2], ['get', 3], ['put', 4]]);
  assert.equal(table.coreEvents()[0]?.nodeId, OWNER);
});

test('the addTaskEvents validator checks every column and info', () => {
  const parse = parseNotify('addTaskEvents');
  const good = batch(OWNER, [[idOf(1), 0, 'FINISHED', 2, 'w', 1]], [submitInfo(0)]);
  assert.equal(parse(good), good);
  const bad: [string, unknown, RegExp][] = [
    ['columns of other lengths', { ...good, startsMs: [] }, /startsMs must be an array of 1/],
    ['a state out of range', { ...good, codes: [8 + 6] }, /codes\[0\] must be a state \(< 6\)/],
    ['a huge attempt', { ...good, codes: [8 * 20_000] }, /codes\[0\] must be a state/],
    ['a negative code', { ...good, codes: [-1] }, /codes\[0\] must be a state/],
    ['an info past the events', { ...good, infos: [{ index: 3 }] }, /infos\[0\]\.index must be an event index below 1/],
    ['an unknown task type', { ...good, infos: [{ index: 0, type: 'LAMBDA' }] }, /infos\[0\]\.type must be one of/],
    ['a span without times', { ...good, infos: [{ index: 0, profile: [{ name: 'x' }] }] }, /infos\[0\]\.profile\[0\]\.startMs/],
    ['a core event of no kind', { ...good, core: { ...good.core, kinds: [7], workerIds: [''], startsMs: [0], endsMs: [0], counts: [0] } }, /core\.kinds\[0\]/],
  ];
  for (const [what, body, pattern] of bad) {
    const result = parse(body);
    assert.ok(result instanceof ProtocolError, what);
    assert.match(result.message, pattern, what);
  }
});
