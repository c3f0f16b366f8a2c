// Actors restarted after their node dies, without threads or sockets: a real Node (no workers, no
// CPUs, as a driver) with its agent, a real GCS in this process, and fake nodes that take actor
// creations and calls, report ALIVE as a hosting node does, and die when told (their connection
// to the GCS and to the agent close, as a SIGKILLed process's do).
import type { ObjectIdHex, TaskIdHex, WorkerIdHex } from '../ids/index.js';
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { ActorDiedError, ConnectionError, fromErrorRecord } from '../errors/index.js';
import { GcsClient, GcsPublishes, GcsServer, InMemoryStoreClient, type ActorIdHex, type NodeIdHex } from '../gcs/index.js';
import { Router, localPair, type Peer } from '../net/index.js';
import { Node } from '../node/index.js';
import type { ActorCallSpec, ActorSpec, RemoteValue, TaskSpec } from '../protocol/index.js';
import { decodeErrorRecord } from '../serialization/index.js';
import { ClusterAgent } from './agent.js';

const T = { timeout: 20_000 };
/** Test ID number `n`, of the kind its field takes (`H` from the context: a task's, an object's, ...). */
const hex = <H extends string = string>(n: number): H => n.toString(16).padStart(32, '0') as H;
const CLASS = { kind: 'source', id: 'c'.repeat(16), name: 'C', source: 'class C {}' } as const;

interface FakeNode {
  readonly nodeId: string;
  /** Actor creations it was sent (their specs). */
  readonly created: ActorSpec[];
  /** Calls it was sent, by method name. */
  readonly calls: string[];
  /** Calls it has not answered: answer them (or leave them to the node's death). */
  readonly pending: { spec: TaskSpec; answer: (values: RemoteValue[]) => void }[];
  /** Answer calls at once (true) or hold them (false). */
  answering: boolean;
  die(): void;
}

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function setUp() {
  const server = new GcsServer(new InMemoryStoreClient(), 'test', { resourceBatchMs: 0 });
  const serverRouter = new Router();
  server.register(serverRouter);
  const node = new Node({ numWorkers: 0, numCpus: 0, resources: {}, objectStoreMemory: 16 << 20, workerResourceLimits: undefined, spillDirectory: undefined });
  const fakes = new Map<string, FakeNode & { links: Peer[]; gcs: GcsClient; dead: boolean }>();
  const agent = new ClusterAgent({
    node,
    canGrow: true,
    connect: async (address) => {
      const fake = fakes.get(address);
      // As a TCP connect to a dead process fails.
      if (fake === undefined || fake.dead) throw new ConnectionError(`cannot connect to ${address}: ECONNREFUSED`);
      const router = new Router()
        .handle(
          'executeTask',
          (body) => body as { spec: TaskSpec },
          ({ spec }) => {
            fake.calls.push(spec.method ?? spec.name);
            const ok = spec.returnIds.map((id): RemoteValue => ({ id, state: 'ready', data: new Uint8Array([0xc3]) }));
            if (fake.answering) return ok;
            return new Promise<RemoteValue[]>((answer) => fake.pending.push({ spec, answer }));
          },
        )
        .on(
          'createActor',
          (body) => body as { spec: ActorSpec },
          ({ spec }) => {
            fake.created.push(spec);
            // As a hosting node does once the constructor returned.
            void fake.gcs.updateActor(spec.actorId as ActorIdHex, 'ALIVE', { nodeId: fake.nodeId as NodeIdHex, numRestarts: spec.numRestarts ?? 0 });
          },
        );
      const ours = new Router();
      agent.register(ours);
      const [toFake] = localPair({ hello: { role: 'node', nodeId: node.nodeId }, router: ours }, { hello: { role: 'node', nodeId: fake.nodeId }, router });
      fake.links.push(toFake);
      return toFake;
    },
  });
  const publishes = new GcsPublishes();
  const clientRouter = new Router();
  publishes.register(clientRouter);
  const [toGcs] = localPair({ hello: { role: 'driver', nodeId: node.nodeId }, router: clientRouter }, { hello: { role: 'gcs', nodeId: 'gcs' }, router: serverRouter });
  node.attachCluster(agent);
  await agent.join(new GcsClient(toGcs, publishes), 'driver:1', true);
  cleanups.push(async () => {
    agent.stop();
    server.close();
    await node.shutdown();
  });

  let nextNode = 100;
  const addNode = async (): Promise<FakeNode> => {
    const nodeId = hex(nextNode++);
    const address = `fake:${nodeId}`;
    const [gcsPeer] = localPair({ hello: { role: 'node', nodeId }, router: new Router() }, { hello: { role: 'gcs', nodeId: 'gcs' }, router: serverRouter });
    const gcs = new GcsClient(gcsPeer);
    const fake = {
      nodeId,
      created: [],
      calls: [],
      pending: [],
      answering: true,
      links: [] as Peer[],
      gcs,
      dead: false,
      die: () => {
        fake.dead = true;
        gcsPeer.close('killed');
        for (const link of fake.links) link.close('killed');
      },
    };
    fakes.set(address, fake);
    cleanups.push(() => gcsPeer.close());
    await gcs.registerNode({ nodeId: nodeId as NodeIdHex, address, resources: { CPU: 1 }, isDriver: false });
    await until(() => agent.otherNodes >= [...fakes.values()].filter((f) => !f.dead).length);
    return fake;
  };

  let nextActor = 1;
  const createActor = (on: FakeNode, options: Partial<ActorSpec> = {}): ActorSpec => {
    const spec: ActorSpec = {
      actorId: hex(5000 + nextActor++),
      classId: CLASS.id,
      className: 'C',
      methodNames: ['m'],
      args: new Uint8Array([0x90]),
      refArgPositions: [],
      dependencies: [],
      name: undefined,
      namespace: 'default',
      maxRestarts: 1,
      maxTaskRetries: 0,
      maxConcurrency: 1,
      numCpus: 0,
      strategy: { nodeId: on.nodeId, soft: true },
      isolation: 'thread',
      owner: { nodeId: node.nodeId, workerId: 'a'.repeat(32) as WorkerIdHex },
      ...options,
    };
    node.createActor([CLASS], spec);
    return spec;
  };

  let nextCall = 1;
  /** Calls `method` of an actor, as a CoreWorker here does; resolves with its value as stored. */
  const call = (actor: ActorSpec, method = 'm'): Promise<RemoteValue> => {
    const n = nextCall++;
    const spec: ActorCallSpec = {
      taskId: hex(9000 + n) as TaskIdHex,
      name: `C.${method}`,
      args: new Uint8Array([0x90]),
      refArgPositions: [],
      dependencies: [],
      returnIds: [hex(20_000 + n)],
      numCpus: 0,
      maxRetries: 0,
      retryExceptions: false,
      owner: { nodeId: node.nodeId, workerId: 'a'.repeat(32) as WorkerIdHex },
      actorId: actor.actorId,
      method,
    };
    node.submit([], [spec]);
    return new Promise((resolve) => node.remoteObjects.whenExists(spec.returnIds[0] as string, Infinity, resolve));
  };
  const gcs = new GcsClient(toGcs, publishes);
  return { node, agent, addNode, createActor, call, gcs };
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 1));
  assert.ok(condition(), 'condition not met');
}

function errorOf(value: RemoteValue): Error {
  assert.equal(value.state, 'failed', JSON.stringify(value));
  return fromErrorRecord(decodeErrorRecord((value as { data: Uint8Array }).data));
}

test("an actor whose node dies is restarted by its owner on another node (fresh instance, restarts counted); calls in flight fail or are sent again per maxTaskRetries", T, async () => {
  const { addNode, createActor, call, gcs } = await setUp();
  const first = await addNode();
  const noRetry = createActor(first);
  const retried = createActor(first, { maxTaskRetries: 1 });
  await until(() => first.created.length === 2);
  assert.equal((await call(noRetry)).state, 'ready');
  const second = await addNode();
  first.answering = false;
  const inFlight = [call(noRetry), call(retried)];
  await until(() => first.pending.length === 2);
  first.die();
  await until(() => second.created.length === 2);
  assert.deepEqual(second.created.map((spec) => spec.numRestarts), [1, 1], 'the new instances count the restart');
  const [lost, resent] = await Promise.all(inFlight);
  const error = errorOf(lost as RemoteValue);
  assert.ok(error instanceof ActorDiedError, error.message);
  assert.match(error.message, /died while running or queued to run C\.m: its node .* died\. The call was tried 1 time\(s\) \(maxTaskRetries: 0\)/);
  assert.equal((resent as RemoteValue).state, 'ready', 'the call with a retry ran on the new instance');
  assert.deepEqual(second.calls, ['m']);
  // Later calls go to the new instance.
  assert.equal((await call(noRetry)).state, 'ready');
  assert.equal(second.calls.length, 2);
  const row = await gcs.getActor(noRetry.actorId as ActorIdHex);
  assert.deepEqual([row?.state, row?.nodeId, row?.numRestarts], ['ALIVE', second.nodeId, 1]);

  // Out of restarts: the next death is the end, and calls fail with why.
  second.die();
  const dead = errorOf(await call(noRetry));
  assert.ok(dead instanceof ActorDiedError, dead.message);
  assert.match(dead.message, /no restarts left \(maxRestarts: 1\)/);
});

test('calls made while the actor restarts wait for the new instance and cost no retry; an actor without restarts is DEAD at once', T, async () => {
  const { addNode, createActor, call, gcs } = await setUp();
  const first = await addNode();
  const restartable = createActor(first);
  const once = createActor(first, { maxRestarts: 0 });
  await until(() => first.created.length === 2);
  assert.equal((await call(restartable)).state, 'ready');
  assert.equal((await call(once)).state, 'ready');
  first.die();
  // No node to restart on yet: the call waits (it was never sent, so maxTaskRetries 0 is no matter).
  const waiting = call(restartable);
  const second = await addNode();
  assert.equal((await waiting).state, 'ready');
  assert.equal(second.created.length, 1);
  const error = errorOf(await call(once));
  assert.ok(error instanceof ActorDiedError, error.message);
  assert.match(error.message, /its node .* died, and it has no restarts left \(maxRestarts: 0\)/);
  assert.equal((await gcs.getActor(once.actorId as ActorIdHex))?.state, 'DEAD');
});
