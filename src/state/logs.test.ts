import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidOptionError } from '../errors/index.js';
import { LogRing } from './log-lines.js';
import { ClusterLogSource, afterLines, followLogs, type NodeFanOut } from './logs.js';
import type { LogQuery } from './types.js';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const C = 'c'.repeat(32);
const WORKER = 'e'.repeat(32);
const TASK = '1'.repeat(32);

/** A fake GCS fan-out over rings, one per node (as the nodes' `nodeState` 'logs' answers). */
function fanOut(rings: LogRing[], extra: { answers?: { nodeId: string; answer: unknown }[]; partial?: string[]; errors?: { nodeId: string; message: string }[] } = {}) {
  const asked: LogQuery[] = [];
  const gcs: NodeFanOut = {
    askNodes: async ({ what, body }) => {
      assert.equal(what, 'logs');
      asked.push(body);
      return {
        answers: [
          ...rings.map((ring) => ({ nodeId: ring.nodeId, answer: JSON.parse(JSON.stringify({ lines: ring.query(body), lastSeq: ring.lastSeq })) as unknown })),
          ...(extra.answers ?? []),
        ],
        partial: extra.partial ?? [],
        ...(extra.errors === undefined ? {} : { errors: extra.errors }),
      };
    },
  };
  return { gcs, asked };
}

const add = (ring: LogRing, text: string, timeMs: number, taskId?: string) =>
  ring.add({ stream: 'stdout', timeMs, workerId: WORKER, name: 'f', text, ...(taskId === undefined ? {} : { taskId }) });

test('lines of all nodes, merged in time order; tail across the cluster; filters reach the nodes', async () => {
  const a = new LogRing(A, 1 << 20);
  const b = new LogRing(B, 1 << 20);
  add(a, 'a1', 10);
  add(b, 'b1', 11, TASK);
  add(a, 'a2', 12, TASK);
  add(b, 'b2', 12);
  const { gcs, asked } = fanOut([a, b]);
  const source = new ClusterLogSource(gcs);
  assert.deepEqual((await source.logs({})).lines.map((l) => l.text), ['a1', 'b1', 'a2', 'b2']);
  assert.deepEqual((await source.logs({ tail: 2 })).lines.map((l) => l.text), ['a2', 'b2']);
  const byTask = await source.logs({ taskId: TASK });
  assert.deepEqual(byTask.lines.map((l) => [l.text, l.nodeId]), [['b1', B], ['a2', A]]);
  assert.deepEqual(byTask.partial, []);
  assert.equal(asked.at(-1)?.taskId, TASK);
});

test('nodes that did not answer, or answered what is not their log lines, are partial', async () => {
  const a = new LogRing(A, 1 << 20);
  add(a, 'a1', 10);
  const forged = { lines: [{ nodeId: A, seq: 1, timeMs: 1, stream: 'stdout', workerId: WORKER, name: 'f', text: 'not B' }], lastSeq: 1 };
  const D = 'd'.repeat(32);
  const E = 'e'.repeat(32);
  const F = 'f'.repeat(32);
  const { gcs } = fanOut([a], {
    answers: [{ nodeId: B, answer: forged }, { nodeId: D, answer: 'nonsense' }, { nodeId: F, answer: [] }],
    partial: [C, E],
    errors: [{ nodeId: E, message: "a log query's tail must be ..." }],
  });
  const { lines, partial, errors, cursor } = await new ClusterLogSource(gcs).logs({});
  assert.deepEqual(lines.map((l) => l.text), ['a1']);
  assert.deepEqual(partial, [C, E, B, D, F]);
  // C timed out; E answered with an error, and B, D and F with what is not their lines: said so.
  assert.deepEqual(errors?.map((e) => [e.nodeId, e.message]), [
    [E, "a log query's tail must be ..."],
    [B, 'it answered with what is not its log lines'],
    [D, 'it answered with what is not its log lines'],
    [F, 'it answered with what is not its log lines'],
  ]);
  assert.deepEqual(cursor, { [A]: 1 });
});

test("an actorId or taskId that is not an ID fails before any node is asked, as the dashboard's /api/logs says it", async () => {
  const { gcs, asked } = fanOut([new LogRing(A, 1 << 20)]);
  for (const key of ['actorId', 'taskId'] as const) {
    await assert.rejects(new ClusterLogSource(gcs).logs({ [key]: 'nope' }), (error: unknown) => {
      assert.ok(error instanceof InvalidOptionError);
      assert.equal(error.option, key);
      assert.match(error.message, new RegExp(`'${key}' must be an ID of 32 lowercase hex characters, not 'nope'`));
      return true;
    });
  }
  assert.equal(asked.length, 0);
});

test('a wrong query is an InvalidOptionError naming the field', async () => {
  const { gcs } = fanOut([]);
  await assert.rejects(new ClusterLogSource(gcs).logs({ tail: -3 }), (error: unknown) => {
    assert.ok(error instanceof InvalidOptionError);
    assert.equal(error.option, 'tail');
    assert.match(error.message, /logs\(\): a log query's tail must be an integer from 0 to 100000/);
    return true;
  });
});

test('follow: the latest lines first, then only new ones, per node by seq', async () => {
  const a = new LogRing(A, 1 << 20);
  const b = new LogRing(B, 1 << 20);
  add(a, 'a1', 1);
  add(a, 'a2', 2);
  add(b, 'b1', 3);
  const { gcs, asked } = fanOut([a, b]);
  const controller = new AbortController();
  const batches: string[][] = [];
  for await (const batch of followLogs(new ClusterLogSource(gcs), { tail: 2 }, { intervalMs: 1, signal: controller.signal })) {
    batches.push(batch.map((l) => l.text));
    if (batches.length === 1) {
      add(b, 'b2', 4);
      add(a, 'a3', 5);
    } else controller.abort();
  }
  assert.deepEqual(batches, [['a2', 'b1'], ['b2', 'a3']]);
  assert.deepEqual(asked[1]?.after, { [A]: 2, [B]: 1 });
  assert.deepEqual(afterLines({ [A]: 5 }, []), { [A]: 5 });
});

test('follow: a node whose lines the first tail cut all is followed from its latest line, not its whole ring', async () => {
  const a = new LogRing(A, 1 << 20);
  const b = new LogRing(B, 1 << 20);
  add(b, 'b old 1', 1);
  add(b, 'b old 2', 2);
  add(a, 'a1', 3);
  add(a, 'a2', 4);
  const { gcs, asked } = fanOut([a, b]);
  const controller = new AbortController();
  const batches: string[][] = [];
  for await (const batch of followLogs(new ClusterLogSource(gcs), { tail: 2 }, { intervalMs: 1, signal: controller.signal })) {
    batches.push(batch.map((l) => l.text));
    if (batches.length === 1) add(b, 'b new', 5);
    else controller.abort();
  }
  assert.deepEqual(batches, [['a1', 'a2'], ['b new']]);
  assert.deepEqual(asked[1]?.after, { [A]: 2, [B]: 2 });
});
