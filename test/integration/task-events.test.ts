// Task events end to end in the embedded default: real tasks, an actor, a failing task and a
// retried one, as the GCS's task-event table shows them (listTaskEvents through the driver's
// GcsClient), with their states, worker and node IDs, times, errors and profile spans; and the
// get/put/wait core events.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TaskError, get, getRuntimeContext, init, put, shutdown, wait } from 'miniray';
import { driverGcs } from '../../dist/api/index.js';
import type { TaskEntry } from '../../dist/state/types.js';
import { Counter, failing, flaky, traced } from '../fixtures/task-events.js';

const T = { timeout: 60_000 };
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'miniray-task-events-'));
  process.env['MINIRAY_TASK_EVENTS_FLUSH_MS'] = '50';
  await init({ numWorkers: 2, numCpus: 2 });
});

after(async () => {
  await shutdown();
  delete process.env['MINIRAY_TASK_EVENTS_FLUSH_MS'];
  rmSync(dir, { recursive: true, force: true });
});

function gcs(): NonNullable<ReturnType<typeof driverGcs>> {
  const client = driverGcs();
  assert.ok(client, 'the driver has a GCS client after init()');
  return client;
}

/** The entries of `name` once `done` holds for them (the nodes flush every 50 ms here). */
async function entriesOf(name: string, done: (entries: readonly TaskEntry[]) => boolean): Promise<readonly TaskEntry[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { records } = await gcs().listTaskEvents({ filters: [['name', '=', name]], detail: true, limit: 1000 });
    if (done(records)) return records;
    if (Date.now() > deadline) assert.fail(`the GCS never had the expected entries of ${name}: ${JSON.stringify(records, null, 1)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const allIn = (state: TaskEntry['state'], count: number) => (entries: readonly TaskEntry[]) => entries.length === count && entries.every((e) => e.state === state);

test('finished tasks: every state in order, with where and when they ran, and their profile spans', T, async () => {
  const before = Date.now();
  const refs = [traced.remote(1), traced.remote(2), traced.remote(3)];
  assert.deepEqual(await get(refs), [499501, 499502, 499503]);
  const after = Date.now();
  const entries = await entriesOf('traced', allIn('FINISHED', 3));
  const { nodeId, workerId: driverId } = getRuntimeContext();
  for (const entry of entries) {
    assert.equal(entry.type, 'NORMAL_TASK');
    assert.equal(entry.attempt, 0);
    assert.equal(entry.nodeId, nodeId);
    assert.equal(entry.ownerNodeId, nodeId);
    assert.match(entry.workerId ?? '', /^[0-9a-f]{32}$/);
    assert.notEqual(entry.workerId, driverId, 'it ran on a worker thread, not the driver');
    assert.deepEqual(entry.requiredResources, { CPU: 1 });
    const { creationTimeMs, startTimeMs = NaN, endTimeMs = NaN } = entry;
    assert.ok(before <= creationTimeMs && creationTimeMs <= startTimeMs && startTimeMs <= endTimeMs && endTimeMs <= after + 5, JSON.stringify(entry));
    assert.deepEqual(entry.events?.map((e) => e.state), ['PENDING_ARGS_AVAIL', 'PENDING_NODE_ASSIGNMENT', 'SUBMITTED_TO_WORKER', 'RUNNING', 'FINISHED']);
    const [span] = entry.profile ?? [];
    assert.equal(span?.name, 'inner step');
    assert.ok(span !== undefined && startTimeMs - 1 <= span.startMs && span.startMs <= span.endMs && span.endMs <= endTimeMs + 1, JSON.stringify(entry));
  }
  assert.deepEqual(entries.map((e) => e.profile?.[0]?.extraData?.['n']).sort(), ['1', '2', '3']);
  const again = await gcs().getTaskEvents(entries[0]?.taskId as string);
  assert.equal(again.length, 1);
  assert.equal(again[0]?.state, 'FINISHED');
});

test('a failed task carries its error as get() throws it', T, async () => {
  const ref = failing.remote();
  let thrown: unknown;
  try {
    await get(ref);
  } catch (error) {
    thrown = error;
  }
  assert.ok(thrown instanceof TaskError);
  const [entry] = await entriesOf('failing', allIn('FAILED', 1));
  assert.equal(entry?.errorType, 'TaskError');
  assert.equal(entry?.errorMessage, thrown.message);
  assert.match(entry?.errorMessage ?? '', /RangeError: boom on purpose/);
  assert.ok(entry?.startTimeMs !== undefined && entry.endTimeMs !== undefined);
});

test('a retried task: its first attempt FAILED, its second FINISHED', T, async () => {
  assert.equal(await get(flaky.remote(join(dir, 'flaky'))), 2);
  const entries = await entriesOf('flaky', (e) => e.length === 2 && e.some((a) => a.state === 'FINISHED'));
  const byAttempt = [...entries].sort((a, b) => a.attempt - b.attempt);
  assert.deepEqual(byAttempt.map((e) => [e.attempt, e.state]), [[0, 'FAILED'], [1, 'FINISHED']]);
  assert.match(byAttempt[0]?.errorMessage ?? '', /first run fails/);
  assert.equal(byAttempt[0]?.taskId, byAttempt[1]?.taskId);
  assert.ok((byAttempt[0]?.endTimeMs ?? Infinity) <= (byAttempt[1]?.startTimeMs ?? 0));
});

test('an actor: its creation and its calls, on its worker', T, async () => {
  const counter = Counter.remote();
  assert.equal(await get(counter.inc.remote()), 1);
  assert.equal(await get(counter.inc.remote()), 2);
  const [creation] = await entriesOf('Counter.constructor', allIn('FINISHED', 1));
  const calls = await entriesOf('Counter.inc', allIn('FINISHED', 2));
  assert.equal(creation?.type, 'ACTOR_CREATION_TASK');
  assert.equal(creation?.actorId, creation?.taskId);
  for (const call of calls) {
    assert.equal(call.type, 'ACTOR_TASK');
    assert.equal(call.actorId, creation?.actorId);
    assert.equal(call.workerId, creation?.workerId, 'its calls run on the worker that created it');
    assert.deepEqual(call.events?.map((e) => e.state), ['PENDING_ARGS_AVAIL', 'SUBMITTED_TO_WORKER', 'RUNNING', 'FINISHED']);
  }
  const summary = await gcs().taskMetrics();
  assert.equal(summary.byState['Counter.inc']?.FINISHED, 2);
  assert.equal(summary.runTime['traced']?.count, 3);
});

test('get, put and wait calls of the driver are core events', T, async () => {
  const { workerId } = getRuntimeContext();
  const ref = put(42);
  await wait([ref]);
  await get(ref);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const events = (await gcs().listCoreEvents()).filter((e) => e.workerId === workerId);
    const kinds = new Set(events.map((e) => e.kind));
    if (kinds.has('put') && kinds.has('wait') && kinds.has('get')) {
      for (const event of events) assert.ok(event.startMs <= event.endMs && event.count >= 1);
      break;
    }
    if (Date.now() > deadline) assert.fail(`core events: ${JSON.stringify(events)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
});
