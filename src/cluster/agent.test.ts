// The cluster agent's placement and its dealings with other nodes, without threads or sockets: a
// real Node (no worker threads) and a real GCS in this process, and other nodes that are fakes
// answering what they are sent.
import type { ActorIdHex, ObjectIdHex, TaskIdHex, WorkerIdHex } from '../ids/index.js';
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { ConnectionError, InvalidOptionError, fromErrorRecord } from '../errors/index.js';
import { GcsClient, GcsPublishes, GcsServer, InMemoryStoreClient, type NodeIdHex } from '../gcs/index.js';
import { Router, localPair, type Peer } from '../net/index.js';
import { Node } from '../node/index.js';
import type { ClusterAnswer, ClusterQuery, FunctionTaskSpec, RemoteValue, TaskSpec } from '../protocol/index.js';
import { decodeErrorRecord } from '../serialization/index.js';
import { ClusterAgent } from './agent.js';

/** A test that goes wrong fails by this time rather than waiting for ever. */
const T = { timeout: 20_000 };
/** Test ID number `n`, of the kind its field takes (`H` from the context: a task's, an object's, ...). */
const hex = <H extends string = string>(n: number): H => n.toString(16).padStart(32, '0') as H;
const FN = { kind: 'source', id: 'f'.repeat(16), name: 'f', source: '() => 1' } as const;

interface Fake {
  readonly nodeId: string;
  /** Tasks it was sent, by name. */
  readonly received: string[];
  /** The attempt each task it was sent came with (the owner's retries so far). */
  readonly attempts: (number | undefined)[];
  /** What it answers: its return values (ok), or a spillback. */
  answer: (spec: TaskSpec) => unknown;
  /** A host that is cut off: connecting to it never completes. */
  unreachable?: boolean;
  /** Killed by the first task it is sent (its connection closes, later connects are refused), before the GCS knows. */
  diesOnTask?: boolean;
  dead?: boolean;
  /** Its connection to the GCS (to unregister it, as the GCS declaring it dead would). */
  gcs?: GcsClient;
}

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

/** A node of 2 CPUs with its agent, joined to an in-process GCS; `addNode` adds fake nodes. */
async function setUp(options: { numCpus?: number; resources?: Record<string, number> } = {}) {
  const server = new GcsServer(new InMemoryStoreClient(), 'test');
  const node = new Node({
    numWorkers: 0,
    numCpus: options.numCpus ?? 2,
    resources: options.resources ?? {},
    objectStoreMemory: 16 << 20,
    workerResourceLimits: undefined,
    spillDirectory: undefined,
  });
  const fakes = new Map<string, Fake>();
  const agent = new ClusterAgent({
    node,
    canGrow: true,
    connect: async (address) => {
      const fake = fakes.get(address) as Fake;
      if (fake.unreachable) return new Promise<Peer>(() => {});
      if (fake.dead) throw new ConnectionError(`cannot connect to ${address}: ECONNREFUSED`);
      const router = new Router().handle(
        'executeTask',
        (body) => body as { spec: TaskSpec; attempt?: number },
        ({ spec, attempt }) => {
          fake.received.push(spec.name);
          fake.attempts.push(attempt);
          if (fake.diesOnTask) {
            fake.dead = true;
            queueMicrotask(() => fakeSide.close('killed'));
            return new Promise(() => {});
          }
          return fake.answer(spec);
        },
      );
      const ours = new Router();
      agent.register(ours);
      const [toFake, fakeSide] = localPair({ hello: { role: 'node', nodeId: node.nodeId }, router: ours }, { hello: { role: 'node', nodeId: fake.nodeId }, router });
      return toFake;
    },
  });
  const publishes = new GcsPublishes();
  const serverRouter = new Router();
  server.register(serverRouter);
  const clientRouter = new Router();
  publishes.register(clientRouter);
  agent.register(clientRouter); // as start.ts's routerFor(true): the GCS's connection has both
  const [toGcs] = localPair({ hello: { role: 'node', nodeId: node.nodeId }, router: clientRouter }, { hello: { role: 'gcs', nodeId: 'gcs' }, router: serverRouter });
  node.attachCluster(agent);
  await agent.join(new GcsClient(toGcs, publishes), 'here:1', false);
  cleanups.push(async () => {
    agent.stop();
    server.close();
    await node.shutdown();
  });
  const peers: Peer[] = [];
  cleanups.push(() => peers.forEach((peer) => peer.close()));

  let nextNode = 100;
  /** Registers a fake node with the GCS (the agent learns of it by pubsub). */
  const addNode = async (resources: Record<string, number>, answer: Fake['answer'] = okAnswer, more: Partial<Fake> = {}): Promise<Fake> => {
    const nodeId = hex(nextNode++);
    const address = `fake:${nodeId}`;
    const [peer] = localPair({ hello: { role: 'node', nodeId }, router: new Router() }, { hello: { role: 'gcs', nodeId: 'gcs' }, router: serverRouter });
    const fake: Fake = { nodeId, received: [], attempts: [], answer, gcs: new GcsClient(peer), ...more };
    fakes.set(address, fake);
    peers.push(peer);
    await (fake.gcs as GcsClient).registerNode({ nodeId: nodeId as NodeIdHex, address, resources, isDriver: false });
    await until(() => agent.otherNodes >= fakes.size);
    return fake;
  };

  let nextTask = 1;
  /** Submits a task as a CoreWorker of this node would; resolves with its first return's value state. */
  const submit = (options: Partial<FunctionTaskSpec> = {}): Promise<RemoteValue> => {
    const n = nextTask++;
    const spec: TaskSpec = {
      taskId: hex(n) as TaskIdHex,
      functionId: FN.id,
      name: `t${n}`,
      args: new Uint8Array([0x90]),
      refArgPositions: [],
      dependencies: [],
      returnIds: [hex(10_000 + n)],
      numCpus: 1,
      maxRetries: 0,
      retryExceptions: false,
      owner: { nodeId: node.nodeId, workerId: 'a'.repeat(32) as WorkerIdHex },
      ...options,
    };
    node.submit([FN], [spec]);
    return new Promise((resolve) => node.remoteObjects.whenExists(spec.returnIds[0] as string, Infinity, resolve));
  };
  return { node, agent, addNode, submit, serverRouter };
}

const okAnswer = (spec: TaskSpec): RemoteValue[] => spec.returnIds.map((id) => ({ id, state: 'ready', data: new Uint8Array([0xc3]) }));

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(condition(), 'condition not met');
}

function errorOf(value: RemoteValue): Error {
  assert.equal(value.state, 'failed');
  return fromErrorRecord(decodeErrorRecord((value as { data: Uint8Array }).data));
}

test('a task runs on its own node while that node is less than half busy, then goes to another', T, async () => {
  const { addNode, submit } = await setUp({ numCpus: 4 });
  const other = await addNode({ CPU: 4 });
  // No workers here: tasks kept here stay queued, which is what makes this node busy.
  void submit();
  assert.deepEqual(other.received, []);
  void submit();
  void submit();
  assert.ok((await submit()).state === 'ready');
  assert.ok(other.received.length >= 1, 'some tasks went to the other node');
});

test("SPREAD goes round the nodes; { nodeId } runs there; a hard affinity to a node that cannot run it fails naming the option; soft falls back", T, async () => {
  const { node, addNode, submit } = await setUp();
  const a = await addNode({ CPU: 1 });
  const b = await addNode({ CPU: 1, disk: 1 });
  for (let i = 0; i < 6; i++) void submit({ strategy: 'SPREAD' });
  await until(() => a.received.length + b.received.length >= 4);
  assert.ok(a.received.length >= 1 && b.received.length >= 1);

  await submit({ strategy: { nodeId: b.nodeId, soft: false } });
  assert.ok(b.received.includes('t7'));

  const hard = errorOf(await submit({ strategy: { nodeId: a.nodeId, soft: false }, resources: { disk: 1 } }));
  assert.ok(hard instanceof InvalidOptionError, String(hard));
  assert.equal(hard.option, 'schedulingStrategy');
  assert.match(hard.message, /cannot run it .*needs 1 CPU, 1 disk/);

  assert.equal((await submit({ strategy: { nodeId: a.nodeId, soft: true }, resources: { disk: 1 } })).state, 'ready');
  assert.ok(b.received.includes('t9'));
  void node;
});

test('a task goes to the node that offers the custom resource it asks for', T, async () => {
  const { addNode, submit } = await setUp();
  const plain = await addNode({ CPU: 8 });
  const withDisk = await addNode({ CPU: 1, disk: 2 });
  assert.equal((await submit({ resources: { disk: 1 } })).state, 'ready');
  assert.deepEqual(withDisk.received, ['t1']);
  assert.deepEqual(plain.received, []);
});

test('a node that refuses a task (spillback) has it placed again elsewhere', T, async () => {
  const { addNode, submit } = await setUp({ numCpus: 0 });
  const refuses = await addNode({ CPU: 1 }, () => ({ spillback: 'it has no CPU for it' }));
  const runs = await addNode({ CPU: 1 });
  for (let i = 0; i < 4; i++) assert.equal((await submit()).state, 'ready');
  assert.equal(runs.received.length, 4);
  assert.ok(refuses.received.length <= 1, 'after one refusal it is not asked again');
});

test('a task no node can run waits, with a warning, and runs when a node that can joins', T, async (t) => {
  const warnings: string[] = [];
  t.mock.method(console, 'warn', (line: string) => warnings.push(line));
  const { addNode, submit } = await setUp({ numCpus: 1 });
  let settled = false;
  const result = submit({ resources: { GPU: 1 } }).then((value) => ((settled = true), value));
  await until(() => warnings.length === 1);
  assert.match(warnings[0] as string, /needs 1 CPU, 1 GPU, which no node of the cluster has; it waits/);
  // The request and what the cluster has, side by side (helper pg).
  assert.match(warnings[0] as string, /The cluster has 1 CPU in all, over 1 node\(s\)\./);
  assert.equal(settled, false);
  const gpu = await addNode({ CPU: 1, GPU: 1 });
  assert.equal((await result).state, 'ready');
  assert.deepEqual(gpu.received, ['t1']);
});

test('a task sent to a node whose connection breaks is retried elsewhere while maxRetries allow', T, async () => {
  const { addNode, submit } = await setUp({ numCpus: 0 });
  let first = true;
  const flaky = await addNode({ CPU: 1 }, (spec) => {
    if (first) {
      first = false;
      throw new Error('connection reset');
    }
    return okAnswer(spec);
  });
  assert.equal((await submit({ maxRetries: 1 })).state, 'ready');
  assert.equal(flaky.received.length, 2);
  assert.deepEqual(flaky.attempts, [0, 1], 'each try is sent with its attempt, which the running node records its events under');
});

test('a node whose connection closes is placed on no more until the GCS says what became of it: the retry goes elsewhere, not to it again (each try a retry)', T, async () => {
  const { addNode, submit } = await setUp({ numCpus: 0 });
  const victim = await addNode({ CPU: 1 }, okAnswer, { diesOnTask: true });
  const healthy = await addNode({ CPU: 1 });
  const value = await submit({ maxRetries: 1, strategy: { nodeId: victim.nodeId, soft: true } });
  assert.equal(value.state, 'ready', value.state === 'failed' ? errorOf(value).message : '');
  assert.deepEqual([victim.received.length, healthy.received.length], [1, 1]);
});

test("function definitions go to the GCS's function table, where a node that was not sent one reads it", T, async () => {
  const { agent, addNode, submit } = await setUp({ numCpus: 0 });
  await addNode({ CPU: 1 });
  assert.equal((await submit()).state, 'ready');
  // Another node's agent that was never sent the definition finds it in the table.
  const internals = (agent as unknown as { context: { functions: { withDefinition(functions: readonly unknown[], id: string): Promise<readonly { id: string }[]> }; node: { knowsFunction(id: string): boolean } } }).context;
  internals.node.knowsFunction = () => false;
  // (The put went to the GCS before the task was sent, on the connection this read uses: it is there.)
  const found = await internals.functions.withDefinition([], FN.id);
  assert.deepEqual(found.map((fn) => fn.id), [FN.id]);
  assert.deepEqual(await internals.functions.withDefinition([], 'e'.repeat(16)), []);
});

test("a task on a node the GCS declares dead is retried elsewhere at once, though its connection never answers; it counts against maxRetries", T, async () => {
  const { addNode, submit, agent } = await setUp({ numCpus: 0 });
  const cutOff = await addNode({ CPU: 1 }, okAnswer, { unreachable: true });
  const alive = await addNode({ CPU: 1 });
  const onCutOff = { strategy: { nodeId: cutOff.nodeId, soft: true } } as const;
  const retried = submit({ maxRetries: 1, ...onCutOff });
  const failed = submit({ maxRetries: 0, ...onCutOff });
  const internals = (agent as unknown as { tasks: { inFlight: Map<string, Set<unknown>> } }).tasks;
  await until(() => internals.inFlight.get(cutOff.nodeId)?.size === 2);
  // The GCS declares it dead (here by unregistering it; missed health checks publish the same event).
  await (cutOff.gcs as GcsClient).unregisterNode(cutOff.nodeId as NodeIdHex);
  assert.equal((await retried).state, 'ready');
  assert.deepEqual(alive.received, ['t1']);
  const error = errorOf(await failed);
  assert.equal(error.name, 'NodeDiedError');
  assert.match(error.message, /died \(the GCS declared it dead\) while it ran this task/);
});

test('a node the GCS declares dead fails its work sent elsewhere with NodeDiedError, sends no more, and says so', T, async () => {
  const { addNode, submit, agent, node } = await setUp({ numCpus: 0 });
  await addNode({ CPU: 1 }, () => new Promise(() => {})); // runs it for ever
  const pending = submit({ maxRetries: 3 });
  const internals = agent as unknown as { tasks: { inFlight: Map<string, Set<unknown>> }; context: { gcsClient: GcsClient } };
  await until(() => [...internals.tasks.inFlight.values()].some((set) => set.size === 1));
  await internals.context.gcsClient.unregisterNode(node.nodeId as NodeIdHex);
  assert.match(await agent.declaredDead, /it unregistered/);
  const error = errorOf(await pending);
  assert.equal(error.name, 'NodeDiedError');
  assert.match(error.message, /was declared dead by the GCS/);
  // New work is not sent to any node.
  const later = errorOf(await submit({ maxRetries: 3 }));
  assert.equal(later.name, 'NodeDiedError');
});

test('a node declared dead runs the work it can run itself, rather than send it to nodes that refuse it (each refusal a retry)', T, async () => {
  const { addNode, agent, node } = await setUp({ numCpus: 0 });
  const other = await addNode({ CPU: 4 }, okAnswer);
  await (agent as unknown as { context: { gcsClient: GcsClient } }).context.gcsClient.unregisterNode(node.nodeId as NodeIdHex);
  await agent.declaredDead;
  const spec: TaskSpec = {
    taskId: hex(900) as TaskIdHex, functionId: FN.id, name: 'mine', args: new Uint8Array([0x90]), refArgPositions: [], dependencies: [],
    returnIds: [hex(901)], numCpus: 1, maxRetries: -1, retryExceptions: false, owner: { nodeId: node.nodeId, workerId: 'a'.repeat(32) as WorkerIdHex },
  };
  const work = { spec, attempt: 0, traced: true, function: FN, done: () => assert.fail('not failed: it can run here'), lost: () => assert.fail('not lost: it can run here') };
  assert.equal(agent.takeTask(work, true), false, 'it runs on this node');
  assert.equal(other.received.length, 0, 'nothing was sent to the other node');
});

test('a node the GCS declared dead is no link, and work it sends is refused with NodeDiedError', T, async () => {
  const { addNode, agent, node } = await setUp({ numCpus: 1 });
  const zombie = await addNode({ CPU: 1 });
  await (zombie.gcs as GcsClient).unregisterNode(zombie.nodeId as NodeIdHex);
  await until(() => agent.otherNodes === 0);
  // It connects again, as a node back from a partition would, and sends a task.
  const ours = new Router();
  agent.register(ours);
  const [fromZombie, atAgent] = localPair({ hello: { role: 'node', nodeId: zombie.nodeId }, router: new Router() }, { hello: { role: 'node', nodeId: node.nodeId }, router: ours });
  agent.adopt(atAgent);
  const internals = (agent as unknown as { context: { links: { has(nodeId: string): boolean } } }).context;
  assert.equal(internals.links.has(zombie.nodeId), false);
  const spec: TaskSpec = {
    taskId: hex(7) as TaskIdHex,
    functionId: FN.id,
    name: 'from-a-zombie',
    args: new Uint8Array([0x90]),
    refArgPositions: [],
    dependencies: [],
    returnIds: [hex(70_000)],
    numCpus: 1,
    maxRetries: 0,
    retryExceptions: false,
    owner: { nodeId: zombie.nodeId as NodeIdHex, workerId: 'a'.repeat(32) as WorkerIdHex },
  };
  await assert.rejects(fromZombie.request('executeTask', { functions: [FN], spec, args: [] }), (error: Error) => error.name === 'NodeDiedError' && /takes no work from it/.test(error.message));
  fromZombie.close();
});

test("a task's state query: only the state API's GCS methods, and a job's record without its envVars", T, async () => {
  const { agent, addNode } = await setUp();
  const other = await addNode({ CPU: 1 });
  const record = { submissionId: 'secret-job', entrypoint: 'x', status: 'RUNNING', metadata: {}, runtimeEnv: { envVars: { TOKEN: 'hunter2' }, workingDir: '/w' }, entrypointNumCpus: 0, startTimeMs: 1 };
  await (other.gcs as GcsClient).kvPut('job_submission', 'secret-job', Buffer.from(JSON.stringify(record)));
  const ask = (query: unknown) => new Promise<ClusterAnswer>((resolve) => agent.info(query as ClusterQuery, resolve));
  const got = await ask({ gcs: 'kvGet', body: { namespace: 'job_submission', key: 'secret-job' } });
  assert.ok('gcs' in got, JSON.stringify(got));
  const text = Buffer.from(got.gcs as Uint8Array).toString('utf8');
  assert.doesNotMatch(text, /hunter2/);
  assert.deepEqual(JSON.parse(text).runtimeEnv, { workingDir: '/w' });
  const refused = await ask({ gcs: 'kvPut', body: { namespace: 'job_submission', key: 'secret-job', value: new Uint8Array([1]), overwrite: true } });
  assert.ok('error' in refused);
  assert.match(fromErrorRecord(decodeErrorRecord(refused.error)).message, /does not call the GCS's 'kvPut'/);
});
