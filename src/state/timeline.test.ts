import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildTimeline, type TraceEvent } from './timeline.js';
import type { CoreEvent, TaskEntry } from './types.js';

const NODE_A = 'aaaaaaaa' + '0'.repeat(24);
const NODE_B = 'bbbbbbbb' + '0'.repeat(24);
const W1 = '11111111' + '0'.repeat(24);
const W2 = '22222222' + '0'.repeat(24);
const T0 = 1_764_000_000_000; // epoch ms

const task = (fields: Partial<TaskEntry> & Pick<TaskEntry, 'taskId' | 'name'>): TaskEntry => ({
  attempt: 0,
  type: 'NORMAL_TASK',
  state: 'FINISHED',
  ownerNodeId: NODE_A,
  requiredResources: { CPU: 1 },
  creationTimeMs: T0,
  ...fields,
});

/**
 * What Perfetto's and chrome://tracing's JSON importers need of each event: a phase they know,
 * numeric pid and tid, ts in microseconds (here: epoch µs, so 1000 times the ms given), X spans with
 * a non-negative dur, and metadata events with args.name or args.sort_index.
 */
function assertLoadable(events: readonly TraceEvent[]): void {
  for (const event of events) {
    assert.ok(['X', 'i', 'M'].includes(event.ph), `phase ${event.ph}`);
    assert.equal(typeof event.name, 'string');
    assert.ok(Number.isInteger(event.pid) && event.pid > 0, `pid ${event.pid}`);
    assert.ok(Number.isInteger(event.tid) && event.tid >= 0, `tid ${event.tid}`);
    assert.equal(typeof event.ts, 'number');
    if (event.ph === 'M') {
      assert.ok('name' in event.args || 'sort_index' in event.args);
      continue;
    }
    assert.ok(event.ts >= T0 * 1000, `ts ${event.ts} is in microseconds`);
    if (event.ph === 'X') assert.ok(Number.isFinite(event.dur) && event.dur >= 0, `dur ${event.dur}`);
    if (event.ph === 'i') assert.equal(event.s, 't');
  }
  // A JSON round trip keeps it (no undefined, no functions, no cycles).
  assert.deepEqual(JSON.parse(JSON.stringify(events)), events);
}

const named = (events: readonly TraceEvent[], what: 'process_name' | 'thread_name') =>
  new Map(events.filter((e) => e.ph === 'M' && e.name === what).map((e) => [`${e.pid}/${e.tid}`, 'name' in e.args ? e.args.name : '']));

describe('timeline: tasks and core events as Chrome trace events', () => {
  const tasks: TaskEntry[] = [
    task({ taskId: 't1', name: 'square', nodeId: NODE_A, workerId: W1, startTimeMs: T0 + 10, endTimeMs: T0 + 30.5, events: [
      { state: 'PENDING_ARGS_AVAIL', timeMs: T0 },
      { state: 'RUNNING', timeMs: T0 + 10 },
      { state: 'FINISHED', timeMs: T0 + 30.5 },
    ], profile: [
      { name: 'load', startMs: T0 + 12, endMs: T0 + 20, extraData: { rows: '10' } },
      { name: 'save', startMs: T0 + 21, endMs: T0 + 29 },
    ] }),
    task({ taskId: 't2', name: 'boom', state: 'FAILED', nodeId: NODE_B, workerId: W2, startTimeMs: T0 + 5, endTimeMs: T0 + 6, errorType: 'TaskError', errorMessage: 'bad input' }),
    task({ taskId: 't2', attempt: 1, name: 'boom', nodeId: NODE_B, workerId: W1, creationTimeMs: T0 + 7, startTimeMs: T0 + 8, endTimeMs: T0 + 9 }),
    task({ taskId: 't3', name: 'waiting', state: 'PENDING_NODE_ASSIGNMENT', creationTimeMs: T0 + 40 }),
    task({ taskId: 't4', name: 'Counter.incr', type: 'ACTOR_TASK', actorId: 'act1', state: 'RUNNING', nodeId: NODE_A, workerId: W2, startTimeMs: T0 + 50 }),
  ];
  const core: CoreEvent[] = [
    { kind: 'get', nodeId: NODE_A, workerId: 'driver0', startMs: T0 + 1, endMs: T0 + 31, count: 2 },
    { kind: 'put', nodeId: NODE_A, workerId: W1, startMs: T0 + 13, endMs: T0 + 13, count: 1 },
  ];
  const trace = buildTimeline(tasks, core, { nowMs: T0 + 60 });
  const events = trace.traceEvents;
  const spans = events.filter((e): e is Extract<TraceEvent, { ph: 'X' }> => e.ph === 'X');

  test('the schema Perfetto and chrome://tracing load', () => {
    assert.equal(trace.displayTimeUnit, 'ms');
    assertLoadable(events);
    assertLoadable(buildTimeline([], []).traceEvents);
  });

  test('one span per attempt that ran, on its node (pid) and worker (tid) lanes, in microseconds', () => {
    const runs = spans.filter((e) => e.cat === 'task' || e.cat === 'actor');
    assert.deepEqual(runs.map((e) => `${e.name}#${String(e.args.attempt)}`).sort(), ['Counter.incr#0', 'boom#0', 'boom#1', 'square#0']);
    const square = runs.find((e) => e.name === 'square');
    assert.ok(square);
    assert.equal(square.ts, (T0 + 10) * 1000);
    assert.equal(square.dur, 20_500);
    assert.deepEqual(square.args.events, [
      `PENDING_ARGS_AVAIL @ ${new Date(T0).toISOString()}`,
      `RUNNING @ ${new Date(T0 + 10).toISOString()}`,
      `FINISHED @ ${new Date(T0 + 30.5).toISOString()}`,
    ]);
    const processes = named(events, 'process_name');
    const threads = named(events, 'thread_name');
    assert.equal(processes.get(`${square.pid}/0`), 'node aaaaaaaa');
    assert.equal(threads.get(`${square.pid}/${square.tid}`), 'worker 11111111');
    const [first, retry] = runs.filter((e) => e.name === 'boom').sort((a, b) => a.ts - b.ts);
    assert.ok(first && retry);
    assert.equal(processes.get(`${first.pid}/0`), 'node bbbbbbbb');
    assert.equal(first.pid, retry.pid, 'both attempts ran on node B');
    assert.notEqual(first.tid, retry.tid, 'on two workers, so two lanes');
    assert.notEqual(first.pid, square.pid);
    // A task still running ends at nowMs; an actor call is in category 'actor' with its actor.
    const running = runs.find((e) => e.name === 'Counter.incr');
    assert.ok(running);
    assert.equal(running.dur, 10_000);
    assert.equal(running.cat, 'actor');
    assert.equal(running.args.actorId, 'act1');
  });

  test('a failed attempt is red and carries its error; the others have no color', () => {
    const failed = spans.find((e) => e.name === 'boom' && e.args.attempt === 0);
    assert.ok(failed);
    assert.equal(failed.cname, 'terrible');
    assert.equal(failed.args.state, 'FAILED');
    assert.equal(failed.args.error, 'TaskError: bad input');
    const retry = spans.find((e) => e.name === 'boom' && e.args.attempt === 1);
    assert.equal(retry?.cname, undefined);
    assert.equal(retry?.args.error, undefined);
  });

  test('profile spans nest in their task: same lane, inside its span', () => {
    const square = spans.find((e) => e.name === 'square');
    const profile = spans.filter((e) => e.cat === 'profile');
    assert.ok(square);
    assert.deepEqual(profile.map((e) => e.name), ['load', 'save']);
    for (const span of profile) {
      assert.equal(span.pid, square.pid);
      assert.equal(span.tid, square.tid);
      assert.ok(span.ts >= square.ts && span.ts + span.dur <= square.ts + square.dur);
      assert.equal(span.args.taskId, 't1');
    }
    assert.equal(profile[0]?.args.rows, '10');
    // The enclosing span comes first in the file.
    assert.ok(events.indexOf(square) < events.indexOf(profile[0] as TraceEvent));
  });

  test('a submit instant per attempt on the owner node, also for tasks that never ran', () => {
    const submits = events.filter((e) => e.ph === 'i');
    assert.equal(submits.length, tasks.length);
    const waiting = submits.find((e) => e.name === 'submit waiting');
    assert.ok(waiting);
    assert.equal(waiting.ts, (T0 + 40) * 1000);
    assert.equal(waiting.tid, 0);
    assert.equal(named(events, 'thread_name').get(`${waiting.pid}/0`), 'submitted');
    assert.equal(named(events, 'process_name').get(`${waiting.pid}/0`), 'node aaaaaaaa', 'the owner is node A');
    assert.equal(spans.filter((e) => e.name === 'waiting').length, 0, 'no span for a task that did not start');
  });

  test('get/put/wait are spans on the lane of the thread that made them', () => {
    const calls = spans.filter((e) => e.cat === 'object');
    assert.deepEqual(calls.map((e) => e.name), ['get', 'put']);
    const square = spans.find((e) => e.name === 'square');
    const put = calls.find((e) => e.name === 'put');
    assert.ok(square && put);
    assert.equal(put.tid, square.tid, 'the put was made by worker 1, which ran square');
    assert.equal(put.dur, 0);
    const get = calls.find((e) => e.name === 'get');
    assert.equal(get?.args.count, 2);
    assert.equal(named(events, 'thread_name').get(`${get?.pid}/${get?.tid}`), 'worker driver0');
  });

  test('lanes are numbered per node from 1 (0 is the submissions lane) and named once each', () => {
    const threadNames = events.filter((e) => e.ph === 'M' && e.name === 'thread_name');
    const keys = threadNames.map((e) => `${e.pid}/${e.tid}`);
    assert.equal(new Set(keys).size, keys.length);
    const processNames = events.filter((e) => e.ph === 'M' && e.name === 'process_name');
    assert.deepEqual(processNames.map((e) => e.pid), [1, 2]);
  });
});
