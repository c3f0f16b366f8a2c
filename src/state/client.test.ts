// GcsStateSource over a real GcsServer in this process, with fake nodes (net's in-process pairs)
// that answer `nodeState` as told, and fakes of helper events' task-event methods on the GCS's
// router: what each list returns, the fan-out's partial answers, and the merge of jobs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomHex } from '../ids/index.js';
import { Router, localPair, type Peer } from '../net/index.js';
import { GcsClient, GcsPublishes, GcsServer, HEALTH_CHECK, InMemoryStoreClient, NODE_STATE, parseNodeStateQuery, type ActorIdHex, type NodeIdHex, type NodeStateQuery } from '../gcs/index.js';
import { InvalidArgumentError, InvalidOptionError, ProtocolError } from '../errors/index.js';
import { WORKER_ANSWER_CHECKS, parseWorkerToNode } from '../protocol/index.js';
import { validate } from '../protocol/check.js';
import { GcsStateSource } from './client.js';
import { JOB_SUBMISSIONS, type JobSubmissionRecord, type NodeStats, type ObjectStateEntry, type TaskEntry, type WorkerStateEntry } from './types.js';

const T = { timeout: 30_000 };

type Answerer = (query: NodeStateQuery) => unknown;

const objectOf = (nodeId: string, i: number): ObjectStateEntry => ({
  objectId: randomHex(),
  nodeId,
  state: 'ready',
  sizeBytes: 100 * (i + 1),
  location: 'memory',
  owner: 'driver',
  referencedBy: ['driver'],
});
const statsOf = (nodeId: string, objects: number): NodeStats => ({
  nodeId,
  storeUsedBytes: objects * 100,
  storeCapacityBytes: 1000,
  spilledBytes: 10,
  spilledObjects: 1,
  objects,
  workers: 2,
  queuedTasks: 0,
});
const taskOf = (i: number, more: Partial<TaskEntry> = {}): TaskEntry => ({
  taskId: i.toString(16).padStart(32, '0'),
  attempt: 0,
  name: i % 2 === 0 ? 'even' : 'odd',
  type: 'NORMAL_TASK',
  state: i % 3 === 0 ? 'FAILED' : 'FINISHED',
  ownerNodeId: 'a'.repeat(32),
  requiredResources: { CPU: 1 },
  creationTimeMs: 1000 + i,
  events: [{ state: 'FINISHED', timeMs: 2000 + i }],
  ...more,
});

/** The fakes of helper events' GCS methods: what they were asked, and the table they answer from. */
function taskEvents(router: Router, tasks: TaskEntry[]) {
  const asked: unknown[] = [];
  router
    .handle('listTaskEvents', (body) => body as { limit: number; detail: boolean }, (body) => {
      asked.push(body);
      const records = tasks.slice(0, body.limit).map((t) => (body.detail ? t : { ...t, events: undefined }));
      return { records: records.map((r) => JSON.parse(JSON.stringify(r))), total: tasks.length, dropped: 7 };
    })
    .handle('getTaskEvents', (body) => body as { taskId: string }, ({ taskId }) => tasks.filter((t) => t.taskId === taskId))
    .handle('taskMetrics', (body) => body, () => ({ byState: { f: { FINISHED: 1 } }, runTime: { f: { bounds: [1], counts: [1], sum: 0.5, count: 1 } }, droppedEvents: 7 }))
    .handle('listCoreEvents', (body) => body, () => [{ kind: 'get', nodeId: 'a'.repeat(32), workerId: 'b'.repeat(32), startMs: 1, endMs: 2, count: 3 }]);
  return asked;
}

async function cluster(tasks: TaskEntry[] = []) {
  const headNodeId = randomHex() as NodeIdHex;
  const server = new GcsServer(new InMemoryStoreClient(), 'c', { headNodeId, healthCheck: { periodMs: 60_000, timeoutMs: 60_000, failureThreshold: 3 } });
  const serverRouter = new Router();
  const askedTasks = taskEvents(serverRouter, tasks);
  // The GCS's own task-event methods give way to the fakes: this tests the client, not the table
  // (src/gcs/task-events.test.ts does).
  const faked = new Set(['listTaskEvents', 'getTaskEvents', 'taskMetrics', 'listCoreEvents']);
  server.register({
    handle: (method, parse, handler) => (faked.has(method) ? serverRouter : serverRouter.handle(method, parse, handler)),
    on: (method, parse, handler) => serverRouter.on(method, parse, handler),
  });
  const peers: Peer[] = [];
  const connect = (role: 'node' | 'driver' | 'cli', nodeId: string, router: Router): GcsClient => {
    const publishes = new GcsPublishes().register(router);
    const [peer] = localPair({ hello: { role, nodeId }, router }, { hello: { role: 'gcs', nodeId: 'gcs' }, router: serverRouter });
    peers.push(peer);
    return new GcsClient(peer, publishes);
  };
  const join = async (answer: Answerer, options: { isDriver?: boolean; nodeId?: NodeIdHex } = {}) => {
    const nodeId = options.nodeId ?? (randomHex() as NodeIdHex);
    const asked: NodeStateQuery[] = [];
    const router = new Router()
      .handle(HEALTH_CHECK, (body) => body, () => null)
      .handle(NODE_STATE, parseNodeStateQuery, (query) => {
        asked.push(query);
        return answer(query);
      });
    const client = connect(options.isDriver ? 'driver' : 'node', nodeId, router);
    await client.registerNode({ nodeId, address: `${nodeId.slice(0, 4)}:1`, resources: { CPU: 2 }, isDriver: options.isDriver ?? false });
    return { nodeId, asked, client, peer: client.peer };
  };
  /** A node answering with its objects, workers and figures. */
  const plainNode = (objects: number, options: { isDriver?: boolean; nodeId?: NodeIdHex } = {}) => {
    const nodeId = options.nodeId ?? (randomHex() as NodeIdHex);
    return join(
      (query) => {
        if (query.what === 'objects') return Array.from({ length: objects }, (_, i) => objectOf(nodeId, i));
        if (query.what === 'workers') return [{ workerId: randomHex(), nodeId, workerType: 'task', isAlive: true, pid: 1, isolation: 'thread' } satisfies WorkerStateEntry];
        if (query.what === 'stats') return statsOf(nodeId, objects);
        return [];
      },
      { ...options, nodeId },
    );
  };
  const client = connect('cli', randomHex(), new Router());
  return {
    server,
    headNodeId,
    askedTasks,
    join,
    plainNode,
    client,
    source: new GcsStateSource(client),
    close() {
      server.close();
      for (const peer of peers) peer.close();
    },
  };
}

test('listNodes: every node the GCS knows, the head marked, a dead one DEAD with its reason', T, async () => {
  const c = await cluster();
  try {
    const head = await c.plainNode(0, { nodeId: c.headNodeId });
    const other = await c.plainNode(0);
    const driver = await c.plainNode(0, { isDriver: true });
    other.peer.close('killed');
    const nodes = await waitForValue(async () => {
      const list = (await c.source.list('nodes')).records;
      return list.find((n) => n.nodeId === other.nodeId)?.state === 'DEAD' ? list : undefined;
    });
    const byId = new Map(nodes.map((n) => [n.nodeId, n]));
    assert.equal(nodes.length, 3);
    assert.deepEqual(byId.get(head.nodeId), { nodeId: head.nodeId, state: 'ALIVE', address: `${head.nodeId.slice(0, 4)}:1`, isHead: true, isDriver: false, resourcesTotal: { CPU: 2 }, resourcesAvailable: { CPU: 2 } });
    assert.equal(byId.get(other.nodeId)?.isHead, false);
    assert.match(byId.get(other.nodeId)?.deathReason ?? '', /connection to the GCS closed/);
    assert.deepEqual(byId.get(other.nodeId)?.resourcesAvailable, {});
    assert.equal(byId.get(driver.nodeId)?.isDriver, true);
    assert.deepEqual((await c.source.list('nodes', { filters: [['isHead', '=', true]] })).records.map((n) => n.nodeId), [head.nodeId]);
  } finally {
    c.close();
  }
});

test('listObjects and listWorkers: every alive node\'s, drivers included; a nodeId filter asks only that node', T, async () => {
  const c = await cluster();
  try {
    const a = await c.plainNode(2);
    const b = await c.plainNode(3);
    const driver = await c.plainNode(1, { isDriver: true });
    const all = await c.source.list('objects');
    assert.equal(all.records.length, 6);
    assert.deepEqual(all.partial, []);
    assert.deepEqual(new Set(all.records.map((o) => o.nodeId)), new Set([a.nodeId, b.nodeId, driver.nodeId]));
    const before = a.asked.length;
    const onB = await c.source.list('objects', { filters: [['nodeId', '=', b.nodeId]] });
    assert.equal(onB.records.length, 3);
    assert.equal(a.asked.length, before, 'node a was not asked');
    const limited = await c.source.list('objects', { limit: 2, filters: [['sizeBytes', '=', 100]] });
    assert.equal(limited.total, 3, 'one object of 100 bytes per node');
    assert.equal(limited.records.length, 2);
    const workers = await c.source.list('workers');
    assert.equal(workers.records.length, 3);
  } finally {
    c.close();
  }
});

test('a node that does not answer in time, or answers with an error or nonsense, is partial; the others are listed', T, async () => {
  const c = await cluster();
  try {
    const good = await c.plainNode(2);
    const silent = await c.join(() => new Promise(() => {}));
    const failing = await c.join(() => {
      throw new Error('no');
    });
    const garbled = await c.join(() => [{ objectId: 5 }]);
    const started = performance.now();
    const result = await c.source.list('objects', { timeoutMs: 1_000 });
    const tookMs = performance.now() - started;
    assert.equal(result.records.length, 2);
    assert.ok(result.records.every((o) => o.nodeId === good.nodeId));
    assert.deepEqual(new Set(result.partial), new Set([silent.nodeId, failing.nodeId, garbled.nodeId]));
    assert.ok(tookMs < 5_000, `answered within the timeout, not hung (${Math.round(tookMs)} ms)`);
    // A node asked for by ID that is not alive is partial too.
    const ghost = randomHex();
    assert.deepEqual((await c.source.list('objects', { filters: [['nodeId', '=', ghost]] })).partial, [ghost]);
  } finally {
    c.close();
  }
});

test('listActors and getActor: the GCS table as ActorStateEntry, a dead one with its cause', T, async () => {
  const c = await cluster();
  try {
    const node = await c.plainNode(0);
    const actorId = randomHex() as ActorIdHex;
    const other = randomHex() as ActorIdHex;
    for (const [id, name] of [[actorId, 'a1'], [other, undefined]] as const) {
      await node.client.registerActor({ actorId: id, ...(name === undefined ? {} : { name }), namespace: 'ns', className: 'Counter', methodNames: ['inc'], nodeId: node.nodeId, ownerNodeId: node.nodeId, maxRestarts: 2 });
    }
    await node.client.updateActor(actorId, 'ALIVE', { nodeId: node.nodeId });
    await node.client.updateActor(other, 'DEAD', { reason: 'killed by kill()' });
    const actors = (await c.source.list('actors')).records;
    assert.equal(actors.length, 2);
    assert.deepEqual(await c.source.getActor(actorId), {
      actorId,
      className: 'Counter',
      name: 'a1',
      namespace: 'ns',
      state: 'ALIVE',
      nodeId: node.nodeId,
      ownerNodeId: node.nodeId,
      numRestarts: 0,
      maxRestarts: 2,
      detached: false,
    });
    assert.equal((await c.source.getActor(other))?.deathCause, 'killed by kill()');
    assert.equal(await c.source.getActor(randomHex()), undefined);
    await assert.rejects(c.source.getActor('nope'), InvalidArgumentError);
    assert.deepEqual((await c.source.list('actors', { filters: [['state', '=', 'DEAD']] })).records.map((a) => a.actorId), [other]);
    assert.deepEqual(await c.source.summarizeActors(), { byClass: { Counter: { ALIVE: 1, DEAD: 1 } }, total: 2 });
  } finally {
    c.close();
  }
});

test('listJobs: drivers\' jobs merged with the Jobs API\'s records by jobId or submissionId; a submission without a driver yet', T, async () => {
  const c = await cluster();
  try {
    const driver = await c.plainNode(0, { isDriver: true });
    const plainJob = await driver.client.addJob(driver.nodeId);
    const submittedJob = await driver.client.addJob(driver.nodeId, 'raysubmit_1');
    const record = (submissionId: string, more: Partial<JobSubmissionRecord>): JobSubmissionRecord => ({
      submissionId,
      entrypoint: `node ${submissionId}.mjs`,
      status: 'RUNNING',
      metadata: {},
      runtimeEnv: {},
      entrypointNumCpus: 0,
      startTimeMs: 5,
      ...more,
    });
    const put = (r: JobSubmissionRecord) => driver.client.kvPut(JOB_SUBMISSIONS, r.submissionId, Buffer.from(JSON.stringify(r)));
    await put(record('raysubmit_1', { status: 'FAILED' }));
    await put(record('pending_one', { status: 'PENDING' }));
    await driver.client.kvPut(JOB_SUBMISSIONS, 'broken', Buffer.from('{not json'));
    await driver.client.finishJob(plainJob);
    const jobs = (await c.source.list('jobs')).records;
    assert.equal(jobs.length, 3, JSON.stringify(jobs));
    const [first, second, third] = jobs;
    assert.equal(first?.jobId, String(plainJob));
    assert.equal(first?.status, 'SUCCEEDED', 'a finished driver job');
    assert.equal(first?.submissionId, undefined);
    assert.equal(second?.jobId, String(submittedJob));
    assert.equal(second?.submissionId, 'raysubmit_1');
    assert.equal(second?.status, 'FAILED', 'the Jobs API\'s status');
    assert.equal(second?.entrypoint, 'node raysubmit_1.mjs');
    assert.equal(second?.driverNodeId, driver.nodeId);
    assert.deepEqual(third, { jobId: '', submissionId: 'pending_one', status: 'PENDING', entrypoint: 'node pending_one.mjs', startTimeMs: 5 });
    assert.deepEqual((await c.source.list('jobs', { filters: [['status', '=', 'PENDING']] })).records.map((j) => j.submissionId), ['pending_one']);
  } finally {
    c.close();
  }
});

test('listTasks and getTask through the task event methods: options sent to the GCS, applied again, total and dropped kept', T, async () => {
  const tasks = Array.from({ length: 12 }, (_, i) => taskOf(i));
  const c = await cluster(tasks);
  try {
    const listed = await c.source.list('tasks', { limit: 5, filters: [['name', '=', 'even']] });
    assert.deepEqual(c.askedTasks.at(-1), { filters: [['name', '=', 'even']], limit: 5, detail: false });
    // The fake does not filter: the client's pass does, and never keeps more than the limit.
    assert.ok(listed.records.every((t) => t.name === 'even'));
    assert.ok(listed.records.length <= 5);
    assert.equal(listed.total, 12, 'the GCS\'s total');
    assert.equal(listed.dropped, 7);
    assert.ok(listed.records.every((t) => t.events === undefined));
    const detailed = await c.source.list('tasks', { detail: true, limit: 1 });
    assert.deepEqual(detailed.records[0]?.events, [{ state: 'FINISHED', timeMs: 2000 }]);
    assert.deepEqual(await c.source.getTask(taskOf(3).taskId), [JSON.parse(JSON.stringify(taskOf(3)))]);
    await assert.rejects(c.source.getTask(''), InvalidArgumentError);
    assert.deepEqual(await c.source.getTask('x'), []);
    const asked = c.askedTasks.length;
    await assert.rejects(c.source.list('tasks', { filters: [['funcName' as 'name', '=', 'f']] }), InvalidOptionError);
    assert.equal(c.askedTasks.length, asked, 'a bad filter fails before the GCS is asked');
    const summary = await c.source.summarizeTasks();
    assert.equal(summary.total, 12);
    assert.deepEqual(summary.byName['even'], { type: 'NORMAL_TASK', states: { FAILED: 2, FINISHED: 4 } });
    assert.equal((await c.source.taskMetrics()).droppedEvents, 7);
    assert.equal((await c.source.coreEvents())[0]?.count, 3);
  } finally {
    c.close();
  }
});

test('a malformed task answer is a ProtocolError naming the field', T, async () => {
  const c = await cluster([{ ...taskOf(1), state: 'DONE' as 'FINISHED' }]);
  try {
    await assert.rejects(c.source.list('tasks'), (error: unknown) => error instanceof ProtocolError && /state/.test(error.message));
  } finally {
    c.close();
  }
});

test('summarizeObjects and nodeStats: each alive node\'s figures', T, async () => {
  const c = await cluster();
  try {
    const a = await c.plainNode(2);
    const b = await c.plainNode(3);
    const stats = await c.source.nodeStats();
    assert.equal(stats.length, 2);
    const summary = await c.source.summarizeObjects();
    assert.equal(summary.totalObjects, 5);
    assert.equal(summary.totalBytes, 500 + 20);
    assert.deepEqual(summary.byNode[a.nodeId], { objects: 2, bytes: 200, spilledObjects: 1, spilledBytes: 10 });
    assert.equal(summary.byNode[b.nodeId]?.objects, 3);
  } finally {
    c.close();
  }
});

test('a task\'s state query through its node: only the state API\'s reads of the GCS pass the worker channel\'s check', () => {
  const query = (q: unknown) => parseWorkerToNode({ type: 'request', id: 1, method: 'clusterInfo', query: q });
  assert.ok(!(query({ gcs: 'listActors', body: {} }) instanceof ProtocolError));
  assert.ok(!(query({ gcs: 'askNodes', body: { what: 'objects' }, timeoutMs: 100 }) instanceof ProtocolError));
  assert.ok(!(query('nodes') instanceof ProtocolError), 'the older queries still pass');
  assert.match(String(query({ gcs: 'kvPut', body: {} })), /query\.gcs/);
  assert.match(String(query({ gcs: 'registerNode', body: {} })), /query\.gcs/);
  assert.match(String(query({ gcs: 'listActors', body: {}, timeoutMs: 0 })), /timeoutMs/);
  assert.ok(!(validate('an answer', { gcs: null }, WORKER_ANSWER_CHECKS.clusterInfo) instanceof ProtocolError), 'an answer of null (no such actor)');
});

test('a node answers nodeState only to the GCS', T, async () => {
  const { ClusterAgent } = await import('../cluster/agent.js');
  const { Node } = await import('../node/index.js');
  const node = new Node({ numWorkers: 1, numCpus: 1, resources: {}, objectStoreMemory: 1 << 20, workerResourceLimits: undefined, spillDirectory: undefined });
  try {
    const agent = new ClusterAgent({ node, connect: () => Promise.reject(new Error('no')), canGrow: false, restartsDetached: false });
    const nodeRouter = new Router();
    agent.register(nodeRouter);
    for (const role of ['gcs', 'node'] as const) {
      const [asker] = localPair({ hello: { role, nodeId: randomHex() }, router: new Router() }, { hello: { role: 'node', nodeId: node.nodeId }, router: nodeRouter });
      const answer = asker.request(NODE_STATE, { what: 'stats' }, { timeoutMs: 5_000 });
      if (role === 'gcs') assert.equal(((await answer) as NodeStats).nodeId, node.nodeId);
      else await assert.rejects(answer, /is the GCS's to ask/);
      asker.close();
    }
    agent.stop();
  } finally {
    await node.shutdown();
  }
});

async function waitForValue<T>(get: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await get();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
