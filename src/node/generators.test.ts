// The node's streams of generator tasks (generators.ts), with a real object directory: items are
// stored once however often a retried task reports them, readers are answered as items come and at
// the end ('failed' once, right after the last item, then 'end'), a reader that lets go frees what
// it did not read, and backpressure acks reach the attempt that runs now.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomHex, type ObjectIdHex } from '../ids/index.js';
import { generatorItemId } from '../object-ref/generator.js';
import { ObjectStore } from '../object-store/index.js';
import { ObjectDirectory } from '../ownership/index.js';
import type { GeneratorAnswer, TaskSpec } from '../protocol/index.js';
import { encodeError, encodeValue } from '../serialization/index.js';
import { GeneratorStreams } from './generators.js';

const OWNER = randomHex();

function setup(backpressure?: number) {
  const store = new ObjectStore(1 << 22);
  const objects = new ObjectDirectory<unknown>(store, () => {});
  const streams = new GeneratorStreams(objects);
  const generatorId = randomHex();
  const spec = {
    returnIds: [generatorId],
    owner: { nodeId: randomHex(), workerId: OWNER },
    returns: backpressure === undefined ? { kind: 'streaming' } : { kind: 'streaming', backpressure },
  } as unknown as TaskSpec;
  objects.addPending(generatorId, OWNER, undefined);
  streams.open(spec);
  let stored = 0;
  const report = (index: number, attempt = 'a', ack: (consumed: number) => void = () => {}) =>
    streams.item(generatorId, index, (id) => {
      stored++;
      objects.setObject(id, encodeValue(index, 'item').data, false);
    }, attempt, ack);
  const next = (index: number): Promise<GeneratorAnswer> => new Promise((resolve) => streams.next(OWNER, generatorId, index, resolve));
  return { store, objects, streams, generatorId, report, next, stored: () => stored };
}

test('items are answered as they come, and a retry reporting them again stores nothing twice', async () => {
  const s = setup();
  const first = s.next(0);
  assert.equal(s.report(0), undefined);
  assert.equal(await first, 'item');
  assert.equal(s.report(1), undefined);
  // The task is retried: its generator runs again from the start.
  assert.equal(s.report(0, 'b'), undefined);
  assert.equal(s.report(1, 'b'), undefined);
  assert.equal(s.report(2, 'b'), undefined);
  assert.equal(s.stored(), 3);
  assert.match(s.report(5, 'b') ?? '', /reports item 5 of a stream that has 3/);
  assert.equal(await s.next(1), 'item');
  assert.equal(await s.next(2), 'item');
  const end = s.next(3);
  s.objects.setObject(s.generatorId, encodeValue(3, 'count').data, false);
  assert.equal(await end, 'end');
});

test("a failed task's stream answers 'failed' right after its last item, then 'end'", async () => {
  const s = setup();
  s.report(0);
  assert.equal(await s.next(0), 'item');
  const waiting = s.next(1);
  s.objects.setObject(s.generatorId, encodeError(new Error('boom')), true);
  assert.equal(await waiting, 'failed');
  assert.equal(await s.next(2), 'end');
});

test('a reader that lets go frees the items it did not read, and later items are not kept', () => {
  const s = setup();
  s.report(0);
  s.report(1);
  s.report(2);
  assert.ok(s.objects.get(generatorItemId(s.generatorId, 2)) !== undefined);
  s.streams.drop(OWNER, s.generatorId);
  for (const index of [0, 1, 2]) assert.equal(s.objects.get(generatorItemId(s.generatorId, index)), undefined, `item ${index} freed`);
  s.report(3);
  assert.equal(s.objects.get(generatorItemId(s.generatorId, 3)), undefined);
});

test('backpressure: acks reach the attempt running now; a new attempt is told at once what was read', async () => {
  const s = setup(2);
  const first: number[] = [];
  s.report(0, 'a', (n) => first.push(n));
  s.report(1, 'a', (n) => first.push(n));
  assert.equal(await s.next(0), 'item');
  assert.deepEqual(first, [1]);
  const second: number[] = [];
  s.report(0, 'b', (n) => second.push(n));
  assert.deepEqual(second, [1]);
  s.streams.drop(OWNER, s.generatorId);
  assert.equal(second.at(-1), Number.MAX_SAFE_INTEGER, 'a stream let go no longer holds its generator back');
});

test('generatorItemId: distinct per index, never the generator ID itself', () => {
  const id = randomHex<ObjectIdHex>();
  const ids = new Set(Array.from({ length: 1000 }, (_, i) => generatorItemId(id, i)));
  assert.equal(ids.size, 1000);
  assert.ok(!ids.has(id));
  assert.equal(generatorItemId(id, 7), generatorItemId(id, 7));
  assert.match(generatorItemId(id, 7), /^[0-9a-f]{32}$/);
});

test('backpressure: a stream that ends while its attempt still runs (a cancel) lets the generator run free', () => {
  const s = setup(1);
  const acks: number[] = [];
  s.report(0, 'a', (n) => acks.push(n));
  s.objects.setObject(s.generatorId, encodeError(new Error('cancelled')), true);
  assert.deepEqual(acks, [Number.MAX_SAFE_INTEGER]);
});

test('peek (wait([gen])): told as next() would be, but nothing counts as read and the stream stays', async () => {
  const s = setup(1);
  const peek = (index: number): Promise<GeneratorAnswer> => new Promise((resolve) => s.streams.peek(OWNER, s.generatorId, index, resolve));
  const acks: number[] = [];
  const waiting = peek(0);
  s.report(0, 'a', (consumed) => acks.push(consumed));
  assert.equal(await waiting, 'item');
  assert.equal(await peek(0), 'item');
  // A peek is no read: the generator is not told to go on.
  assert.deepEqual(acks, []);
  assert.equal(await s.next(0), 'item');
  assert.deepEqual(acks, [1]);
  // At the end, 'failed' right after the last item; the stream stays for next() to say so too.
  const atEnd = peek(1);
  s.objects.setObject(s.generatorId, encodeError(new Error('boom')), true);
  assert.equal(await atEnd, 'failed');
  assert.equal(await peek(1), 'failed');
  assert.equal(await s.next(1), 'failed');
  // A stream let go answers a waiting peek ('end'), rather than leaving the wait() hanging.
  const t = setup();
  const hanging = new Promise<GeneratorAnswer>((resolve) => t.streams.peek(OWNER, t.generatorId, 0, resolve));
  t.streams.drop(OWNER, t.generatorId);
  assert.equal(await hanging, 'end');
});
