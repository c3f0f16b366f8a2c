import type { ObjectIdHex } from '../ids/index.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelNodeClient } from '../core-worker/node-client.js';
import { ConnectionError, GcsUnavailableError, ProtocolError, RequestCancelledError, RequestTimeoutError, fromErrorRecord } from '../errors/index.js';
import { parseNodeToWorker, parseWorkerToNode, type ActorInfo, type NodeToWorker, type ObjectPayload, type WorkerRequest, type WorkerToNode } from '../protocol/index.js';
import { decodeErrorRecord } from '../serialization/index.js';
import { PendingRequest, RequestTable, inMemoryChannelPair, type Channel } from '../transport/index.js';
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
function connected(handlers: WorkerMethodHandlers<ConnectedWorker>, gcsReconnectTimeoutMs?: number) {
  const [workerSide, nodeSide] = inMemoryChannelPair<WorkerToNode, NodeToWorker>(parseNodeToWorker, parseWorkerToNode);
  const reports: ProtocolError[] = [];
  const client = new ChannelNodeClient(ID, workerSide, true, (error) => reports.push(error), gcsReconnectTimeoutMs);
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
  return { client, router, worker, reports, problems, seen, close, nodeSide, workerSide };
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

/** Handlers that take every request and never answer it (a GCS that hangs, a lost answer). */
function silent(withdrawn: string[]): WorkerMethodHandlers<ConnectedWorker> {
  return {
    get: (_worker, request) => () => withdrawn.push(`get ${request.id}`),
    lookupActor: (_worker, request) => () => withdrawn.push(`lookupActor ${request.id}`),
    clusterInfo: (_worker, request) => () => withdrawn.push(`clusterInfo ${request.id}`),
    generatorNext: (_worker, request) => () => withdrawn.push(`generatorNext ${request.id}`),
  };
}

const errorOf = (answer: unknown): Error => fromErrorRecord(decodeErrorRecord((answer as { error: Uint8Array }).error));

test('the channel ending from the node side fails every waiting request at once with a ConnectionError; nothing is left pending', async () => {
  const withdrawn: string[] = [];
  const side = connected(silent(withdrawn));
  try {
    const got: ObjectPayload[] = [];
    side.client.fetch([ID, ID2], true, (object) => got.push(object));
    const lookups: unknown[] = [];
    side.client.lookupActor('n', '', (_info, error) => lookups.push(error));
    const answers: unknown[] = [];
    side.client.clusterInfo('nodes', (answer) => answers.push(answer));
    side.client.generatorNext(ID, 0, (answer) => answers.push(answer));
    const withdrawnGet: ObjectPayload[] = [];
    side.client.fetch([ID], true, (object) => withdrawnGet.push(object))();
    assert.equal(side.client.waitingRequests, 5, 'the withdrawn get waits for its response too');
    await until(() => side.seen.length === 6); // five requests and a cancelRequest reached the node
    // The node ends the worker's channel (it closes its side; a worker process's parent is gone).
    side.nodeSide.close();
    await until(() => side.client.waitingRequests === 0);
    assert.deepEqual(got.map((o) => [o.id, o.state]), [[ID, 'failed'], [ID2, 'failed']]);
    const getError = fromErrorRecord(decodeErrorRecord((got[0] as { data: Uint8Array }).data));
    assert.ok(getError instanceof ConnectionError);
    assert.match(getError.message, /'get' to node aaaaaaaa failed: the channel closed \(the other side closed the channel\)/);
    assert.ok(lookups[0] instanceof ConnectionError);
    assert.ok(errorOf(answers[0]) instanceof ConnectionError);
    assert.equal(answers[1], 'failed');
    assert.deepEqual(withdrawnGet, [], 'a request its caller withdrew is not failed again');
    // What is asked afterwards fails at once, and nothing is sent.
    const after: unknown[] = [];
    side.client.lookupActor('m', '', (_info, error) => after.push(error));
    assert.ok(after[0] instanceof ConnectionError);
    assert.equal(side.client.waitingRequests, 0);
  } finally {
    side.close();
  }
});

test('lookupActor and clusterInfo time out after the node\'s wait for the GCS and a grace, are cancelled at the node, and say what to do; get and generatorNext have no timer', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const withdrawn: string[] = [];
  const side = connected(silent(withdrawn), 50);
  try {
    const lookups: unknown[] = [];
    side.client.lookupActor('c', 'ns', (info, error) => lookups.push(error ?? info));
    const answers: unknown[] = [];
    side.client.clusterInfo({ gcs: 'listActors', body: {}, timeoutMs: 1_000 }, (answer) => answers.push(answer));
    const got: ObjectPayload[] = [];
    side.client.fetch([ID], true, (object) => got.push(object));
    const items: unknown[] = [];
    side.client.generatorNext(ID, 0, (answer) => items.push(answer));
    await until(() => side.seen.length === 4);

    t.mock.timers.tick(50 + 10_000 - 1);
    assert.equal(lookups.length, 0);
    t.mock.timers.tick(1);
    assert.equal(lookups.length, 1);
    const timedOut = lookups[0];
    assert.ok(timedOut instanceof RequestTimeoutError);
    assert.match(timedOut.message, /'lookupActor' to node aaaaaaaa got no answer within 10050 ms; it was cancelled/);
    assert.match(timedOut.message, /getActor\('c'\) in namespace 'ns'.*gcsReconnectTimeoutMs \(50 ms\).*miniray status/);
    assert.equal(answers.length, 0, 'a GCS read waits its own timeoutMs longer');
    t.mock.timers.tick(1_000);
    assert.equal(answers.length, 1);
    const queryError = errorOf(answers[0]);
    assert.ok(queryError instanceof RequestTimeoutError);
    assert.match(queryError.message, /'clusterInfo' to node aaaaaaaa got no answer within 11050 ms.*the GCS read 'listActors'/);

    // Both were cancelled: the node withdrew them, and its responses ended them here.
    await until(() => withdrawn.length === 2 && side.client.waitingRequests === 2);
    assert.deepEqual(withdrawn.sort(), ['clusterInfo 2', 'lookupActor 1']);

    t.mock.timers.tick(2 ** 31 - 1);
    assert.deepEqual(got, [], 'a get waits as long as its caller does (the CoreWorker keeps its timeout)');
    assert.deepEqual(items, [], "a generator's next() waits for its item, as Ray's");
    assert.equal(side.client.waitingRequests, 2);
    assert.deepEqual(side.reports, []);
  } finally {
    side.close();
  }
});

test('a request of a method the node does not answer gets an error response naming it; the channel carries on', async () => {
  const [workerSide, nodeSide] = inMemoryChannelPair<WorkerToNode, NodeToWorker>(parseNodeToWorker, parseWorkerToNode);
  const worker: ConnectedWorker = { alive: true, channel: nodeSide };
  let router!: WorkerRequests<ConnectedWorker>;
  router = new WorkerRequests<ConnectedWorker>({ ...noConnectedHandlers, lookupActor: (w, request) => (router.reply(w, request.id, null, true), undefined) });
  const nodeErrors: ProtocolError[] = [];
  nodeSide.onError((error) => nodeErrors.push(error));
  nodeSide.onMessage((message) => {
    if (message.type === 'request') assert.equal(router.receive(worker, message), undefined);
  });
  // A newer asker's table, which knows a method this node does not.
  interface NewerAnswers {
    readonly [method: string]: unknown;
    readonly drainNode: null;
    readonly lookupActor: null;
  }
  const reports: ProtocolError[] = [];
  const table = new RequestTable<NewerAnswers>({ sendCancel: () => {}, checks: { drainNode: () => null, lookupActor: () => null }, report: (error) => reports.push(error), peer: 'the node' });
  workerSide.onMessage((message) => {
    if (message.type === 'reply' || message.type === 'response') table.receive(message);
  });
  class Outcome extends PendingRequest<null> {
    result: unknown;
    answer(value: null): void {
      this.result = value;
    }
    fail(error: Error): void {
      this.result = error;
    }
  }
  try {
    const drain = new Outcome();
    const id = table.open('drainNode', drain);
    workerSide.send({ type: 'request', id, method: 'drainNode', deadline: 5 } as unknown as WorkerToNode);
    const lookup = new Outcome();
    const lookupId = table.open('lookupActor', lookup);
    workerSide.send({ type: 'request', id: lookupId, method: 'lookupActor', name: 'n', namespace: '' });
    await until(() => drain.result !== undefined && lookup.result !== undefined);
    assert.ok(drain.result instanceof ProtocolError);
    assert.match(drain.result.message, /this node does not answer 'drainNode' \(it answers get, lookupActor, clusterInfo, generatorNext\)/);
    assert.equal(lookup.result, null, 'the request after it was answered as usual');
    assert.deepEqual(nodeErrors, [], 'the channel was not ended');
    assert.deepEqual(reports, []);
    assert.equal(table.size, 0);
  } finally {
    workerSide.close();
    nodeSide.close();
  }
});

test('a request of an unknown method that reuses an open id is a protocol problem, as any reuse', () => {
  let router!: WorkerRequests<FakeWorker>;
  router = new WorkerRequests<FakeWorker>({ ...noHandlers, get: () => () => {} });
  const worker = fakeWorker();
  router.receive(worker, get(4, [ID]));
  assert.match(router.receive(worker, { type: 'request', id: 4, method: 'x', unknownMethod: true }) ?? '', /reuses request ID 4/);
  assert.equal(worker.sent.length, 0);
  worker.alive = false;
  assert.equal(router.receive(worker, { type: 'request', id: 5, method: 'x'.repeat(100), unknownMethod: true }), undefined);
  assert.equal(worker.sent.length, 0, 'nothing is sent to a worker that is gone');
});

test("fail(): a handler that could not answer (the GCS away) ends its request with the typed error, which the worker's caller gets", async () => {
  const failing: (() => boolean)[] = [];
  let router!: WorkerRequests<ConnectedWorker>;
  const side = connected({
    ...noConnectedHandlers,
    lookupActor: (worker, request) => {
      failing.push(() => router.fail(worker, request.id, new GcsUnavailableError('the GCS at 127.0.0.1:6380 did not answer within 60 s')));
      return () => {};
    },
  });
  router = side.router;
  try {
    const results: unknown[] = [];
    side.client.lookupActor('c', '', (info, error) => results.push(error ?? info));
    await until(() => failing.length === 1);
    assert.equal(failing[0]?.(), true);
    assert.equal(failing[0]?.(), false, 'once: it has ended');
    await until(() => results.length === 1);
    assert.ok(results[0] instanceof GcsUnavailableError);
    assert.match((results[0] as Error).message, /did not answer within 60 s/);
    assert.equal(side.client.waitingRequests, 0);
  } finally {
    side.close();
  }
});
