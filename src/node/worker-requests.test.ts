import type { ObjectIdHex } from '../ids/index.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelNodeClient } from '../core-worker/node-client.js';
import { ConnectionError, ProtocolError, RequestCancelledError, fromErrorRecord } from '../errors/index.js';
import { parseNodeToWorker, parseWorkerToNode, type ActorInfo, type NodeToWorker, type ObjectPayload, type WorkerRequest, type WorkerToNode } from '../protocol/index.js';
import { decodeErrorRecord } from '../serialization/index.js';
import { inMemoryChannelPair, type Channel } from '../transport/index.js';
import { WorkerRequests, type WorkerMethodHandlers } from './worker-requests.js';

// IDs of any kind (`as never`: a test's text goes in task, object, actor, node and worker ID fields alike).
const ID: never = 'a'.repeat(32) as never;
const ID2: never = 'b'.repeat(32) as never;

/** A worker as the router sees it, recording what is sent to it. */
function fakeWorker() {
  const sent: NodeToWorker[] = [];
  const channel = { send: (message: NodeToWorker) => sent.push(message) } as unknown as Channel<NodeToWorker, unknown>;
  return { alive: true, channel, sent };
}
type FakeWorker = ReturnType<typeof fakeWorker>;

const noHandlers: WorkerMethodHandlers<FakeWorker> = {
  get: () => undefined,
  lookupActor: () => undefined,
  clusterInfo: () => undefined,
  generatorNext: () => undefined,
};

const get = (id: number, ids: ObjectIdHex[]): WorkerRequest<'get'> => ({ type: 'request', id, method: 'get', ids, withData: true });
const ready = (id: ObjectIdHex): ObjectPayload => ({ id, state: 'ready', data: new Uint8Array([1]) });

test('a request answered while its handler runs leaves nothing open', () => {
  let router!: WorkerRequests<FakeWorker>;
  router = new WorkerRequests<FakeWorker>({ ...noHandlers, get: (worker, request) => (router.reply(worker, request.id, ready(ID), true), undefined) });
  const worker = fakeWorker();
  assert.equal(router.receive(worker, get(1, [ID])), undefined);
  assert.deepEqual(worker.sent, [{ type: 'response', id: 1, ok: true, value: ready(ID) }]);
  // The same id again is fine: the first has ended.
  assert.equal(router.receive(worker, get(1, [ID])), undefined);
  router.cancel(worker, 1); // ended: a no-op, nothing sent
  assert.equal(worker.sent.length, 2);
});

test('a stream: replies, then the response; a second request with an open id is a protocol problem', () => {
  const answers: ((object: ObjectPayload, done: boolean) => void)[] = [];
  let router!: WorkerRequests<FakeWorker>;
  router = new WorkerRequests<FakeWorker>({
    ...noHandlers,
    get: (worker, request) => {
      answers.push((object, done) => router.reply(worker, request.id, object, done));
      return () => {};
    },
  });
  const worker = fakeWorker();
  router.receive(worker, get(3, [ID, ID2]));
  assert.match(router.receive(worker, get(3, [ID])) ?? '', /reuses request ID 3, whose get is still open/);
  answers[0]?.(ready(ID), false);
  answers[0]?.(ready(ID2), true);
  assert.deepEqual(
    worker.sent.map((m) => m.type),
    ['reply', 'response'],
  );
});

test('cancelRequest withdraws the handler and ends the request with a RequestCancelledError; a late answer is not sent', () => {
  let withdrawn = 0;
  let late: (() => boolean) | undefined;
  let router!: WorkerRequests<FakeWorker>;
  router = new WorkerRequests<FakeWorker>({
    ...noHandlers,
    lookupActor: (worker, request) => {
      late = () => router.reply(worker, request.id, null, true);
      return () => withdrawn++;
    },
  });
  const worker = fakeWorker();
  router.receive(worker, { type: 'request', id: 5, method: 'lookupActor', name: 'n', namespace: '' });
  router.cancel(worker, 5);
  assert.equal(withdrawn, 1);
  const [message] = worker.sent;
  assert.ok(message?.type === 'response' && !message.ok);
  assert.ok(fromErrorRecord(message.error) instanceof RequestCancelledError);
  assert.equal(late?.(), false, 'the answer after the cancel is dropped');
  assert.equal(worker.sent.length, 1);
});

test("a worker's exit withdraws its open requests; answers to a dead worker are not sent", () => {
  let withdrawn = 0;
  const replies: (() => boolean)[] = [];
  let router!: WorkerRequests<FakeWorker>;
  router = new WorkerRequests<FakeWorker>({
    ...noHandlers,
    get: (worker, request) => {
      replies.push(() => router.reply(worker, request.id, ready(ID), true));
      return () => withdrawn++;
    },
  });
  const worker = fakeWorker();
  router.receive(worker, get(1, [ID]));
  router.receive(worker, get(2, [ID]));
  worker.alive = false;
  router.dropWorker(worker);
  assert.equal(withdrawn, 2);
  assert.equal(replies[0]?.(), false);
  assert.equal(worker.sent.length, 0);
});

interface ConnectedWorker {
  alive: boolean;
  readonly channel: Channel<NodeToWorker, WorkerToNode>;
}
const noConnectedHandlers = noHandlers as unknown as WorkerMethodHandlers<ConnectedWorker>;

/** A ChannelNodeClient and a WorkerRequests over a real (in-memory) channel pair, no threads. */
function connected(handlers: WorkerMethodHandlers<ConnectedWorker>) {
  const [workerSide, nodeSide] = inMemoryChannelPair<WorkerToNode, NodeToWorker>(parseNodeToWorker, parseWorkerToNode);
  const reports: ProtocolError[] = [];
  const client = new ChannelNodeClient(ID, workerSide, true, (error) => reports.push(error));
  const worker: ConnectedWorker = { alive: true, channel: nodeSide };
  const router = new WorkerRequests<ConnectedWorker>(handlers);
  const problems: string[] = [];
  const seen: WorkerToNode[] = [];
  nodeSide.onMessage((message) => {
    seen.push(message);
    if (message.type === 'request') {
      const problem = router.receive(worker, message);
      if (problem !== undefined) problems.push(problem);
    } else if (message.type === 'cancelRequest') router.cancel(worker, message.id);
  });
  workerSide.onMessage((message) => {
    if (message.type === 'reply' || message.type === 'response') client.receive(message);
  });
  const close = () => (workerSide.close(), nodeSide.close());
  return { client, router, worker, reports, problems, seen, close, nodeSide };
}

const until = async (condition: () => boolean) => {
  for (let i = 0; i < 2000 && !condition(); i++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(condition(), 'condition met');
};

test('end to end: a get streams its objects, a lookup and a cluster query are answered, a withdrawn get is cancelled', async () => {
  const info: ActorInfo = { actorId: ID, className: 'C', methodNames: ['m'] };
  const pendingGets: (() => void)[] = [];
  let withdrawn = 0;
  let router!: WorkerRequests<ConnectedWorker>;
  const side = connected({
    get: (worker, request) => {
      router.reply(worker, request.id, ready(request.ids[0] as ObjectIdHex), request.ids.length === 1);
      if (request.ids.length > 1) pendingGets.push(() => router.reply(worker, request.id, ready(request.ids[1] as ObjectIdHex), true));
      return request.ids.length > 1 ? () => withdrawn++ : undefined;
    },
    lookupActor: (worker, request) => (router.reply(worker, request.id, request.name === 'c' ? info : null, true), undefined),
    clusterInfo: (worker, request) => (router.reply(worker, request.id, { resources: { CPU: 2 } }, true), undefined),
    generatorNext: (worker, request) => (router.reply(worker, request.id, 'end', true), undefined),
  });
  router = side.router;
  try {
    const got: ObjectPayload[] = [];
    side.client.fetch([ID, ID2], true, (object) => got.push(object));
    await until(() => got.length === 1);
    pendingGets.shift()?.();
    await until(() => got.length === 2);
    assert.deepEqual(got.map((o) => o.id), [ID, ID2]);

    const lookups: (ActorInfo | null)[] = [];
    side.client.lookupActor('c', '', (found) => lookups.push(found));
    side.client.lookupActor('none', '', (found) => lookups.push(found));
    const answers: unknown[] = [];
    side.client.clusterInfo('clusterResources', (answer) => answers.push(answer));
    side.client.generatorNext(ID, 0, (answer) => answers.push(answer));
    await until(() => lookups.length === 2 && answers.length === 2);
    assert.deepEqual(lookups, [info, null]);
    assert.deepEqual(answers, [{ resources: { CPU: 2 } }, 'end']);

    // A get that settles early (its caller's timeout): withdrawn at the node, which confirms.
    const early: ObjectPayload[] = [];
    const withdraw = side.client.fetch([ID, ID2], true, (object) => early.push(object));
    await until(() => early.length === 1);
    withdraw();
    await until(() => withdrawn === 1);
    await until(() => side.seen.filter((m) => m.type === 'cancelRequest').length === 1);
    assert.deepEqual(side.problems, []);
    assert.deepEqual(side.reports, []);
  } finally {
    side.close();
  }
});

test('end to end: an answer to no request is reported once by the worker, which carries on', async () => {
  let router!: WorkerRequests<ConnectedWorker>;
  const side = connected({ ...noConnectedHandlers, lookupActor: (worker, request) => (router.reply(worker, request.id, null, true), undefined) });
  router = side.router;
  try {
    side.nodeSide.send({ type: 'response', id: 41, ok: true, value: null });
    side.nodeSide.send({ type: 'reply', id: 42, value: null });
    const lookups: (ActorInfo | null)[] = [];
    side.client.lookupActor('n', '', (info) => lookups.push(info));
    await until(() => lookups.length === 1);
    assert.equal(side.reports.length, 1);
    assert.match(side.reports[0]?.message ?? '', /sent a response to request 41, which was never sent/);
  } finally {
    side.close();
  }
});

test('a closed client fails what waits: a get with failed objects, a lookup with the error, a cluster query with an error answer', () => {
  const side = connected(noConnectedHandlers);
  try {
    const got: ObjectPayload[] = [];
    side.client.fetch([ID, ID2], true, (object) => got.push(object));
    const errors: unknown[] = [];
    side.client.lookupActor('n', '', (_info, error) => errors.push(error));
    const answers: unknown[] = [];
    side.client.clusterInfo('nodes', (answer) => answers.push(answer));
    side.client.generatorNext(ID, 0, (answer) => answers.push(answer));
    side.client.close('the node went away');
    assert.deepEqual(got.map((o) => [o.id, o.state]), [[ID, 'failed'], [ID2, 'failed']]);
    assert.ok(fromErrorRecord(decodeErrorRecord((got[0] as { data: Uint8Array }).data)) instanceof ConnectionError);
    assert.ok(errors[0] instanceof ConnectionError);
    assert.ok('error' in (answers[0] as object));
    assert.equal(answers[1], 'failed');
  } finally {
    side.close();
  }
});
