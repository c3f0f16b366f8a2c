// The node-side task-event buffer, without threads: what a batch holds, the bound (drop and
// count), the attempt of work run for another node, and the flush timer.
import { test } from 'node:test';
import type { TaskIdHex } from '../ids/index.js';
import assert from 'node:assert/strict';
import { TaskEventBuffer, FAILED, FINISHED, PENDING_ARGS_AVAIL, PENDING_NODE_ASSIGNMENT, SUBMITTED_TO_WORKER } from './events.js';
import type { TaskEventBatch } from '../gcs/index.js';
import type { ActorCallSpec, ActorSpec, FunctionTaskSpec, TaskSpec } from '../protocol/index.js';
import { encodeError } from '../serialization/index.js';
import { TaskCancelledError } from '../errors/index.js';

// IDs of any kind (`as never`: a test's text goes in task, object, actor, node and worker ID fields alike).
const NODE: never = 'a'.repeat(32) as never;
const OTHER: never = 'b'.repeat(32) as never;
const TASK: never = 'c'.repeat(32) as never;
const hex32 = (c: string): never => c.repeat(32) as never;

function spec(over: Partial<FunctionTaskSpec> = {}): TaskSpec {
  return {
    taskId: TASK,
    functionId: 'f',
    name: 'f',
    args: new Uint8Array(),
    refArgPositions: [],
    dependencies: [],
    returnIds: [hex32('d')],
    numCpus: 1,
    maxRetries: 3,
    retryExceptions: false,
    owner: { nodeId: NODE, workerId: hex32('e') },
    ...over,
  };
}

const actorSpec = (): ActorSpec => ({
  actorId: hex32('f'),
  classId: 'k',
  className: 'Counter',
  methodNames: ['inc'],
  args: new Uint8Array(),
  refArgPositions: [],
  dependencies: [],
  name: undefined,
  namespace: 'default',
  maxRestarts: 0,
  maxTaskRetries: 0,
  maxConcurrency: 1,
  numCpus: 0,
  isolation: 'thread',
  owner: { nodeId: NODE, workerId: hex32('e') },
});

test('a task\'s life is one batch of columns, with its spec read only when the batch is built', () => {
  const buffer = new TaskEventBuffer(NODE, { enabled: true, maxBuffered: 100, flushMs: 1000 });
  const s = spec({ resources: { GPU: 1 } });
  buffer.submitted(s);
  buffer.state(s, 0, PENDING_NODE_ASSIGNMENT);
  buffer.state(s, 0, SUBMITTED_TO_WORKER, 'w1');
  buffer.result(s, 0, 'w1', { seq: 1, outcome: 'ok', values: [], us: 5000, startMs: 1234, spans: [{ name: 'load', startMs: 1235, endMs: 1236 }] });
  const batch = buffer.takeBatch();
  // state + 8 x (attempt + 1); a result is one event, RUNNING from its startMs.
  assert.deepEqual(batch.codes, [PENDING_ARGS_AVAIL + 8, PENDING_NODE_ASSIGNMENT + 8, SUBMITTED_TO_WORKER + 8, FINISHED + 8]);
  assert.deepEqual(batch.taskIds, [TASK, TASK, TASK, TASK]);
  assert.deepEqual(batch.workerIds, ['', '', 'w1', 'w1']);
  assert.deepEqual(batch.startsMs, [0, 0, 0, 1234]);
  assert.equal(batch.timesMs[3], 1234 + 5, 'its end on the worker\'s clock: start + run time');
  assert.deepEqual(batch.infos, [
    { index: 0, name: 'f', type: 'NORMAL_TASK', ownerNodeId: NODE, requiredResources: { CPU: 1, GPU: 1 } },
    { index: 3, profile: [{ name: 'load', startMs: 1235, endMs: 1236 }] },
  ]);
  buffer.submitted(s, true);
  assert.deepEqual(buffer.takeBatch().codes, [PENDING_NODE_ASSIGNMENT + 8], 'submitted with its arguments ready: one event');
  assert.equal(buffer.buffered, 0, 'the columns start over after a batch');
});

test('a failure carries the error class and message as get() throws it', () => {
  const buffer = new TaskEventBuffer(NODE, { enabled: true, maxBuffered: 100, flushMs: 1000 });
  buffer.failed(spec(), 1, encodeError(new TaskCancelledError('task f was cancelled')));
  const batch = buffer.takeBatch();
  assert.deepEqual(batch.codes, [FAILED + 8 * 2]);
  assert.deepEqual(batch.infos, [{ index: 0, errorType: 'TaskCancelledError', errorMessage: 'task f was cancelled' }]);
});

test('work run for another node has the attempt it is given (the owner\'s, plus retries here), not "the latest"; a creation is a task named Class.constructor', () => {
  const buffer = new TaskEventBuffer(NODE, { enabled: true, maxBuffered: 100, flushMs: 1000 });
  const foreign = spec({ owner: { nodeId: OTHER, workerId: hex32('e') } });
  buffer.state(foreign, 1, SUBMITTED_TO_WORKER, 'w');
  buffer.creation(actorSpec(), 2, PENDING_ARGS_AVAIL);
  buffer.failed(foreign, 0, encodeError(new TaskCancelledError('x')));
  const batch = buffer.takeBatch();
  assert.deepEqual(batch.codes.map((code) => (code >> 3) - 1), [1, 2, 0]);
  assert.deepEqual(batch.infos[0], { index: 1, name: 'Counter.constructor', type: 'ACTOR_CREATION_TASK', actorId: 'f'.repeat(32), ownerNodeId: NODE, requiredResources: {} });
});

test('past maxBuffered events are dropped and counted, and the count goes with the next batch', () => {
  const buffer = new TaskEventBuffer(NODE, { enabled: true, maxBuffered: 3, flushMs: 1000 });
  for (let i = 0; i < 5; i++) buffer.state(spec(), 0, PENDING_NODE_ASSIGNMENT);
  buffer.core('get', 'w', Date.now(), 1);
  assert.equal(buffer.buffered, 3);
  assert.equal(buffer.droppedPending, 3);
  const batch = buffer.takeBatch();
  assert.equal(batch.dropped, 3);
  assert.equal(batch.taskIds.length, 3);
  assert.equal(buffer.takeBatch().dropped, 0);
});

test('disabled, nothing is recorded', () => {
  const buffer = new TaskEventBuffer(NODE, { enabled: false, maxBuffered: 3, flushMs: 1000 });
  buffer.submitted(spec());
  buffer.core('put', 'w', Date.now(), 1);
  buffer.result(spec(), 0, 'w', { seq: 1, outcome: 'ok', values: [], us: 1, startMs: 1 });
  assert.equal(buffer.buffered, 0);
});

test('core events are columns too; batches go to the sink on the timer and at stop()', async () => {
  const buffer = new TaskEventBuffer(NODE, { enabled: true, maxBuffered: 100, flushMs: 5 });
  const batches: TaskEventBatch[] = [];
  buffer.core('wait', 'w', 100, 4); // before a sink: kept
  buffer.sendTo((batch) => batches.push(batch));
  await new Promise<void>((resolve) => {
    const check = (): void => (batches.length > 0 ? resolve() : void setTimeout(check, 2));
    check();
  });
  assert.deepEqual(batches[0]?.core.kinds, [2]);
  assert.deepEqual(batches[0]?.core.counts, [4]);
  assert.equal(batches[0]?.core.startsMs[0], 100);
  buffer.submitted(spec());
  buffer.stop();
  assert.equal(batches.at(-1)?.taskIds.length, 1, 'stop() sends what is left');
  buffer.submitted(spec());
  assert.equal(batches.at(-1)?.taskIds.length, 1);
});

test('under load, only an even sample of the next interval\'s tasks is recorded; the rest are counted as dropped, all their events skipped', () => {
  // A budget of 10 tasks per interval (1,000 ms at 10 a second), with no sink: flush() only ends the interval.
  const buffer = new TaskEventBuffer(NODE, { enabled: true, maxBuffered: 100_000, flushMs: 1000, maxTasksPerSecond: 10 });
  // As the node does: a task submitted() says is not traced gets no further calls.
  const life = (taskId: string): void => {
    const s = spec({ taskId: taskId as TaskIdHex });
    if (!buffer.submitted(s, true)) return;
    buffer.state(s, 0, SUBMITTED_TO_WORKER, 'w');
    buffer.result(s, 0, 'w', { seq: 1, outcome: 'ok', values: [], us: 1, startMs: 1 });
  };
  const id = (i: number): string => i.toString(16).padStart(32, '0');
  // Below the budget every task is recorded in full.
  for (let i = 0; i < 10; i++) life(id(i));
  assert.equal(buffer.takeBatch().taskIds.length, 30);
  buffer.flush();
  // 40 submissions in an interval: past its budget of 10, k doubles each time another 10 or so are
  // recorded (10 in full, then 10 of the next 20, then 3 of the last 10); the next interval records one in four.
  for (let i = 10; i < 50; i++) life(id(i));
  buffer.flush();
  const burst = buffer.takeBatch();
  assert.equal(burst.taskIds.length, 23 * 3, 'a burst is not recorded in full: about budget x (1 + log2(count / budget))');
  assert.equal(burst.dropped, 17);
  for (let i = 50; i < 90; i++) life(id(i));
  const sampled = buffer.takeBatch();
  assert.equal(sampled.taskIds.length, 10 * 3, 'one task in four, each with all its events');
  assert.equal(new Set(sampled.taskIds).size, 10);
  assert.equal(sampled.dropped, 30, 'the others are counted');
  assert.equal(sampled.infos.filter((info) => info.name !== undefined).length, 10);
  assert.equal(buffer.skips(id(51)), false, 'a task is not remembered: its caller keeps submitted()\'s answer');
  // An actor call sampled out is remembered by ID (its record is not the node's), until it finishes.
  const calls = [91, 92, 93, 94].map((i): ActorCallSpec => {
    const { functionId: _, ...base } = spec({ taskId: id(i) as TaskIdHex });
    return { ...base, actorId: hex32('a'), method: 'inc' };
  });
  const traced = calls.map((call) => buffer.submitted(call));
  assert.ok(traced.filter(Boolean).length <= 1, 'one in k (k doubled again: the interval went past its budget)');
  const skippedCall = calls[traced.indexOf(false)] as (typeof calls)[number];
  assert.equal(buffer.skips(skippedCall.taskId), true, 'an unfinished skipped actor call is remembered (the agent tells its running node)');
  buffer.failed(skippedCall, 0, encodeError(new TaskCancelledError('x')));
  assert.equal(buffer.takeBatch().taskIds.includes(skippedCall.taskId), false);
  // An idle interval: all are recorded again.
  buffer.flush();
  buffer.flush();
  for (let i = 100; i < 104; i++) life(id(i));
  assert.equal(buffer.takeBatch().taskIds.length, 12);
});

test('a task its owner sampled out (skip()) records nothing on the node that runs it', () => {
  const buffer = new TaskEventBuffer(NODE, { enabled: true, maxBuffered: 100, flushMs: 1000 });
  buffer.skip(TASK);
  buffer.state(spec(), 0, SUBMITTED_TO_WORKER, 'w');
  buffer.result(spec(), 0, 'w', { seq: 1, outcome: 'ok', values: [], us: 1, startMs: 1 });
  assert.equal(buffer.buffered, 0);
  assert.equal(buffer.skips(TASK), false);
});

test('get/put/wait calls are sampled under load as tasks are, counted as dropped', () => {
  const buffer = new TaskEventBuffer(NODE, { enabled: true, maxBuffered: 100_000, flushMs: 1000, maxTasksPerSecond: 10 });
  const call = (): void => {
    if (buffer.coreTraced()) buffer.core('get', 'w', Date.now(), 1);
  };
  for (let i = 0; i < 30; i++) call();
  assert.equal(buffer.takeBatch().core.kinds.length, 20, 'a burst: 10 in full, then one in two');
  buffer.flush(); // 30 calls in that interval, a budget of 10: the next records one in three
  for (let i = 0; i < 30; i++) call();
  const sampled = buffer.takeBatch();
  assert.equal(sampled.core.kinds.length, 10);
  assert.equal(sampled.dropped, 20);
  buffer.flush();
  buffer.flush(); // an idle interval: all again
  for (let i = 0; i < 5; i++) call();
  assert.equal(buffer.takeBatch().core.kinds.length, 5);
});
