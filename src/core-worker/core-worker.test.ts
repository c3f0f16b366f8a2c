// The CoreWorker against a fake node: what it submits, how get() and its timeout settle, and what
// it reports of the refs in its thread. No threads, no node.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { GetTimeoutError, ObjectLostError } from '../errors/index.js';
import { ObjectID, type NodeIdHex, type WorkerIdHex } from '../ids/index.js';
import { ObjectRef } from '../object-ref/index.js';
import type { ObjectPayload, TaskSpec } from '../protocol/index.js';
import { encodeError, encodeValue, type FunctionDescriptor } from '../serialization/index.js';
import { CoreWorker, type NodeClient } from './index.js';

const NODE = 'a'.repeat(32);
const OTHER_NODE = 'b'.repeat(32);
const FN: FunctionDescriptor = { kind: 'source', id: 'f'.repeat(16), name: 'add', source: '(a, b) => a + b' };

/** A node that records what it is asked and answers fetches when the test says. */
function fakeNode() {
  const submitted: TaskSpec[] = [];
  const functionsSent: string[] = [];
  const waiting = new Map<string, (object: ObjectPayload) => void>();
  const withdrawn: string[][] = [];
  const added: { ids: readonly string[]; owners: readonly string[] | undefined }[] = [];
  const node: NodeClient = {
    nodeId: NODE,
    submit: (functions, tasks) => {
      functionsSent.push(...functions.map((fn) => fn.id));
      submitted.push(...tasks);
    },
    put: () => {},
    fetch: (ids, _withData, onObject, _fetchLocal, polled) => {
      for (const id of ids) waiting.set(id, onObject);
      polled?.(); // a poll: nothing is answered before the test delivers it
      return () => withdrawn.push([...ids]);
    },
    cancel: () => {},
    blocked: () => {},
    unblocked: () => {},
    createActor: () => {},
    lookupActor: (_name, _namespace, callback) => callback(null),
    killActor: () => {},
    clusterInfo: (_query, callback) => callback({ resources: { CPU: 1 } }),
    addRefs: (ids, owners) => added.push({ ids, owners }),
    removeRefs: () => {},
    releaseLeases: () => {},
    storeParts: () => [],
    partView: () => new Uint8Array(0),
    generatorNext: (_id, _index, callback) => callback('end'),
    generatorDropped: () => {},
  };
  /** The node answers the fetch of `id`. */
  const deliver = (id: string, object: { state: 'ready' | 'failed'; data: Uint8Array }): void => (waiting.get(id) as (object: ObjectPayload) => void)({ id, ...object } as ObjectPayload);
  return { node, submitted, functionsSent, withdrawn, added, deliver };
}

let workers: CoreWorker[] = [];
afterEach(() => {
  for (const worker of workers) worker.detach();
  workers = [];
});

function coreWorker(node: NodeClient): CoreWorker {
  const worker = new CoreWorker({ nodeId: NODE as NodeIdHex, workerId: 'c'.repeat(32) as WorkerIdHex }, node);
  workers.push(worker);
  return worker;
}

const OPTIONS = { numCpus: 1, resources: { GPU: 1 }, strategy: 'SPREAD', numReturns: 2, maxRetries: 3, retryExceptions: false, name: undefined } as const;

test('a task is submitted once with its options, its definition only the first time, and its return IDs', () => {
  const fake = fakeNode();
  const worker = coreWorker(fake.node);
  const ids = worker.submitTask(FN, [1, 2], OPTIONS);
  worker.submitTask(FN, [3, 4], OPTIONS);
  assert.equal(fake.submitted.length, 2);
  const spec = fake.submitted[0] as TaskSpec;
  assert.deepEqual(spec.returnIds, ids);
  assert.equal(ids.length, 2);
  assert.deepEqual(spec.resources, { GPU: 1 });
  assert.equal(spec.strategy, 'SPREAD');
  assert.deepEqual(spec.owner, { nodeId: NODE, workerId: 'c'.repeat(32) });
  assert.deepEqual(fake.functionsSent, [FN.id]);
});

test('get() settles when the node delivers, with the value, or with the typed error of a failed object', async () => {
  const fake = fakeNode();
  const worker = coreWorker(fake.node);
  const [a, b] = worker.submitTask(FN, [1, 2], OPTIONS).map((id) => worker.refFor(id));
  const values = worker.get([a as ObjectRef, b as ObjectRef], undefined);
  fake.deliver((a as ObjectRef).hex, { state: 'ready', data: encodeValue(3, 'test').data });
  fake.deliver((b as ObjectRef).hex, { state: 'ready', data: encodeValue('x', 'test').data });
  assert.deepEqual(await values, [3, 'x']);

  const [c] = worker.submitTask(FN, [1, 2], OPTIONS).map((id) => worker.refFor(id));
  const failing = worker.get([c as ObjectRef], undefined);
  fake.deliver((c as ObjectRef).hex, { state: 'failed', data: encodeError(new ObjectLostError('gone with its node')) });
  await assert.rejects(failing, (error: unknown) => error instanceof ObjectLostError && /gone with its node/.test(error.message));
});

test('a get() that times out rejects with GetTimeoutError and withdraws its fetch from the node', async () => {
  const fake = fakeNode();
  const worker = coreWorker(fake.node);
  const [a] = worker.submitTask(FN, [1, 2], OPTIONS).map((id) => worker.refFor(id));
  await assert.rejects(worker.get([a as ObjectRef], 1), GetTimeoutError);
  assert.deepEqual(fake.withdrawn, [[(a as ObjectRef).hex]]);
});

test("refs to objects owned on another node are reported with that node, so that this node borrows them from their owner", async () => {
  const fake = fakeNode();
  coreWorker(fake.node);
  const mine = new ObjectRef(ObjectID.fromRandom(), { nodeId: NODE, workerId: 'd'.repeat(32) });
  const theirs = new ObjectRef(ObjectID.fromRandom(), { nodeId: OTHER_NODE, workerId: 'e'.repeat(32) });
  await new Promise((resolve) => queueMicrotask(() => resolve(undefined)));
  assert.deepEqual(fake.added, [{ ids: [mine.hex, theirs.hex], owners: [NODE, OTHER_NODE] }]);
  const alone = new ObjectRef(ObjectID.fromRandom(), { nodeId: NODE, workerId: 'd'.repeat(32) });
  await new Promise((resolve) => queueMicrotask(() => resolve(undefined)));
  // Only local refs in a turn: no owners list (the common case costs nothing more).
  assert.deepEqual(fake.added[1], { ids: [alone.hex], owners: undefined });
});

test('a ref made by hand with an owner that is not a node ID is reported as this node\'s, never as a malformed owner', async () => {
  const fake = fakeNode();
  coreWorker(fake.node);
  const odd = new ObjectRef(ObjectID.fromRandom(), { nodeId: '', workerId: '' });
  const foreign = new ObjectRef(ObjectID.fromRandom(), { nodeId: OTHER_NODE, workerId: '' });
  await new Promise((resolve) => queueMicrotask(() => resolve(undefined)));
  assert.deepEqual(fake.added, [{ ids: [odd.hex, foreign.hex], owners: [NODE, OTHER_NODE] }]);
});
