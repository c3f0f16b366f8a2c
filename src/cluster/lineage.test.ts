// Lineage reconstruction and owner death, without threads or sockets: a real Node (no worker
// threads) and its agent, an in-process GCS, and fake nodes that answer what they are sent. A fake
// "dies" by closing its connections: the GCS then publishes it dead, as for a SIGKILLed process.
import type { ObjectIdHex, TaskIdHex, WorkerIdHex } from '../ids/index.js';
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { ObjectLostError, ObjectReconstructionFailedError, OwnerDiedError, fromErrorRecord } from '../errors/index.js';
import { GcsClient, GcsPublishes, GcsServer, InMemoryStoreClient, type ActorIdHex, type NodeIdHex } from '../gcs/index.js';
import { Router, localPair, type Peer } from '../net/index.js';
import { Node } from '../node/index.js';
import type { ActorCallSpec, FunctionTaskSpec, RemoteValue, TaskSpec } from '../protocol/index.js';
import { decodeErrorRecord } from '../serialization/index.js';
import { ClusterAgent } from './agent.js';

const T = { timeout: 20_000 };
/** Test ID number `n`, of the kind its field takes (`H` from the context: a task's, an object's, ...). */
const hex = <H extends string = string>(n: number): H => n.toString(16).padStart(32, '0') as H;
const FN = { kind: 'source', id: 'f'.repeat(16), name: 'f', source: '() => 1' } as const;
const OWNER = 'a'.repeat(32) as WorkerIdHex;
const MIB = 1 << 20;

interface Fake {
  readonly nodeId: string;
  /** Tasks it was sent, by name, in order. */
  readonly received: string[];
  /** Its side of its connection to the node under test (once connected), to ask it things. */
  peer: Peer | undefined;
  /** What it answers to getObject (a promise that never settles: the object does not exist yet). */
  getObject: (id: string) => Promise<RemoteValue>;
  /** Closes its connections, as a SIGKILL would. */
  die(): void;
  /** Its own link to the GCS (to report an actor instance up on it, as its agent would). */
  gcs: GcsClient | undefined;
}

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

/** A node that offers no CPUs (every task goes to a fake), with its agent, joined to an in-process GCS. */
async function setUp() {
  const server = new GcsServer(new InMemoryStoreClient(), 'test');
  const node = new Node({ numWorkers: 0, numCpus: 0, resources: {}, objectStoreMemory: 16 << 20, workerResourceLimits: undefined, spillDirectory: undefined });
  const fakes = new Map<string, Fake>();
  const links = new Map<string, Peer[]>();
  const agent = new ClusterAgent({
    node,
    canGrow: true,
    connect: async (address) => {
      const fake = fakes.get(address) as Fake;
      // Results stay where they are made: each is 'located' on the fake that ran its task.
      const router = new Router()
        .handle('executeTask', (body) => body as { spec: TaskSpec }, ({ spec }) => {
          fake.received.push(spec.name);
          return spec.returnIds.map((id): RemoteValue => ({ id, state: 'located', location: fake.nodeId, size: MIB }));
        })
        .handle('getObject', (body) => body as { id: string }, ({ id }) => fake.getObject(id));
      const ours = new Router();
      agent.register(ours);
      const [toFake, fromFake] = localPair({ hello: { role: 'node', nodeId: node.nodeId }, router: ours }, { hello: { role: 'node', nodeId: fake.nodeId }, router });
      fake.peer = fromFake;
      links.get(fake.nodeId)?.push(toFake, fromFake);
      return toFake;
    },
  });
  const publishes = new GcsPublishes();
  const serverRouter = new Router();
  server.register(serverRouter);
  const clientRouter = new Router();
  publishes.register(clientRouter);
  const [toGcs] = localPair({ hello: { role: 'node', nodeId: node.nodeId }, router: clientRouter }, { hello: { role: 'gcs', nodeId: 'gcs' }, router: serverRouter });
  node.attachCluster(agent);
  await agent.join(new GcsClient(toGcs, publishes), 'here:1', false);
  cleanups.push(async () => {
    agent.stop();
    server.close();
    await node.shutdown();
  });

  let nextNode = 100;
  const addNode = async (): Promise<Fake> => {
    const nodeId = hex(nextNode++);
    const address = `fake:${nodeId}`;
    const peers: Peer[] = [];
    links.set(nodeId, peers);
    const fake: Fake = {
      nodeId,
      received: [],
      peer: undefined,
      getObject: () => new Promise(() => {}),
      gcs: undefined,
      die: () => {
        for (const peer of peers) peer.close('killed');
      },
    };
    fakes.set(address, fake);
    const [toGcsFromFake] = localPair({ hello: { role: 'node', nodeId }, router: new Router() }, { hello: { role: 'gcs', nodeId: 'gcs' }, router: serverRouter });
    peers.push(toGcsFromFake);
    cleanups.push(() => fake.die());
    fake.gcs = new GcsClient(toGcsFromFake);
    await fake.gcs.registerNode({ nodeId: nodeId as NodeIdHex, address, resources: { CPU: 4 }, isDriver: false });
    await until(() => (agent as unknown as { context: { views: Map<string, unknown> } }).context.views.has(nodeId));
    return fake;
  };

  let nextTask = 1;
  /** Submits a task as a CoreWorker of this node would; returns its first return ID. */
  const submit = (options: Partial<FunctionTaskSpec> = {}): ObjectIdHex => {
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
      maxRetries: 1,
      retryExceptions: false,
      owner: { nodeId: node.nodeId, workerId: OWNER },
      ...options,
    };
    node.submit([FN], [spec]);
    return spec.returnIds[0] as ObjectIdHex;
  };
  /** The object's value as a peer would be told it, once it exists. */
  const value = (id: string): Promise<RemoteValue> => new Promise((resolve) => node.remoteObjects.whenExists(id, Infinity, resolve));
  /** Resolves once the agent has heard that `fake` is dead. */
  const kill = async (fake: Fake): Promise<void> => {
    fake.die();
    // Dead to the agent (the GCS's death event), not only out of its views (its connection closed).
    await until(() => agent.isDead(fake.nodeId));
  };
  let nextActor = 1;
  /** An actor on `fake`, as the GCS knows it once its instance is up there; returns its ID. */
  const actorOn = async (fake: Fake, options: { maxRestarts: number; maxTaskRetries: number }): Promise<ActorIdHex> => {
    const actorId = hex(500 + nextActor++) as ActorIdHex;
    const gcs = fake.gcs as GcsClient;
    await gcs.registerActor({ actorId, namespace: 'default', className: 'A', methodNames: ['m'], nodeId: fake.nodeId as NodeIdHex, ownerNodeId: node.nodeId as NodeIdHex, ...options });
    await gcs.updateActor(actorId, 'ALIVE', { nodeId: fake.nodeId as NodeIdHex, numRestarts: 0 });
    return actorId;
  };
  /** Calls method m of an actor as a CoreWorker of this node would; returns its return ID. */
  const call = (actorId: ActorIdHex): ObjectIdHex => {
    const n = nextTask++;
    const spec: ActorCallSpec = {
      taskId: hex(n) as TaskIdHex,
      name: 'A.m',
      args: new Uint8Array([0x90]),
      refArgPositions: [],
      dependencies: [],
      returnIds: [hex(10_000 + n)],
      numCpus: 0,
      maxRetries: 0,
      retryExceptions: false,
      owner: { nodeId: node.nodeId, workerId: OWNER },
      actorId,
      method: 'm',
    };
    node.submit([], [spec]);
    return spec.returnIds[0] as ObjectIdHex;
  };
  return { node, agent, addNode, submit, value, kill, actorOn, call };
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !condition(); i++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(condition(), 'condition not met');
}

function errorOf(value: RemoteValue): Error {
  assert.equal(value.state, 'failed', JSON.stringify(value));
  return fromErrorRecord(decodeErrorRecord((value as { data: Uint8Array }).data));
}

const located = (value: RemoteValue): string | undefined => (value.state === 'located' ? value.location : undefined);

test('a result whose only copy was on a node that died is made again by running its task elsewhere', T, async () => {
  const { addNode, submit, value, kill } = await setUp();
  const a = await addNode();
  const id = submit({ strategy: { nodeId: a.nodeId, soft: true } });
  assert.equal(located(await value(id)), a.nodeId);
  const b = await addNode();
  await kill(a);
  assert.equal(located(await value(id)), b.nodeId, 'rebuilt on the node that is left');
  assert.deepEqual(b.received, ['t1']);
});

test('lost arguments are rebuilt first (recursively), each task once; results not lost are left alone', T, async () => {
  const { addNode, submit, value, kill } = await setUp();
  const a = await addNode();
  const onA = { strategy: { nodeId: a.nodeId, soft: true } } as const;
  const x = submit(onA);
  const y = submit({ ...onA, dependencies: [x], refArgPositions: [0] });
  const z = submit({ ...onA, dependencies: [x, y], refArgPositions: [0, 1] });
  assert.equal(located(await value(z)), a.nodeId);
  const b = await addNode();
  const other = submit({ strategy: { nodeId: b.nodeId, soft: false } });
  assert.equal(located(await value(other)), b.nodeId);
  await kill(a);
  assert.equal(located(await value(z)), b.nodeId);
  assert.equal(located(await value(x)), b.nodeId);
  assert.deepEqual(b.received, ['t4', 't1', 't2', 't3'], 'x, then y, then z; t4 (on b) not again');
});

test('a task with no retries left fails its lost result with ObjectReconstructionFailedError naming maxRetries', T, async () => {
  const { addNode, submit, value, kill } = await setUp();
  const a = await addNode();
  const id = submit({ strategy: { nodeId: a.nodeId, soft: true }, maxRetries: 0 });
  await value(id);
  await addNode();
  await kill(a);
  const error = errorOf(await value(id));
  assert.ok(error instanceof ObjectReconstructionFailedError, String(error));
  assert.ok(error instanceof ObjectLostError);
  assert.match(error.message, /was on node .*which died.*task t1, which made it, cannot run again to rebuild it: it has run 1 time \(maxRetries: 0\)\. Raise maxRetries/);
});

test('each rebuild counts against the task\'s retries', T, async () => {
  const { addNode, submit, value, kill } = await setUp();
  let holder = await addNode();
  const id = submit({ maxRetries: 2, strategy: 'SPREAD' });
  await value(id);
  for (let round = 0; round < 2; round++) {
    const next = await addNode();
    await kill(holder);
    assert.equal(located(await value(id)), next.nodeId, `rebuild ${round + 1}`);
    holder = next;
  }
  await addNode();
  await kill(holder);
  assert.ok(errorOf(await value(id)) instanceof ObjectReconstructionFailedError, 'the third loss finds no retries left');
});

test('an object with no lineage (an actor result, a put() elsewhere) fails with ObjectLostError saying it is not rebuilt', T, async () => {
  const { node, addNode, value, kill } = await setUp();
  const a = await addNode();
  const id = hex(77);
  // As an actor call's result is registered: pending with no task record, then located where the actor ran.
  (node as unknown as { objects: { addPending(id: string, owner: string, producer: undefined): void } }).objects.addPending(id, OWNER, undefined);
  node.remoteObjects.storeValues([{ id, state: 'located', location: a.nodeId, size: MIB }], '');
  await kill(a);
  const error = errorOf(await value(id));
  assert.equal(error.constructor, ObjectLostError);
  assert.match(error.message, /every copy of ObjectRef\(0+4d\) was on node .*Objects from put\(\) are not rebuilt, nor are the results of an actor created with maxTaskRetries 0/);
});

test('a lost actor result is rebuilt by calling the method again on the restarted actor while maxTaskRetries allows', T, async () => {
  const { addNode, value, kill, actorOn, call } = await setUp();
  const a = await addNode();
  const actorId = await actorOn(a, { maxRestarts: 2, maxTaskRetries: 1 });
  const id = call(actorId);
  assert.equal(located(await value(id)), a.nodeId);
  const b = await addNode();
  await kill(a);
  // The GCS moved the actor to RESTARTING; its next instance comes up on b.
  await (b.gcs as GcsClient).updateActor(actorId, 'ALIVE', { nodeId: b.nodeId as NodeIdHex, numRestarts: 1 });
  assert.equal(located(await value(id)), b.nodeId, 'rebuilt by the restarted actor');
  assert.deepEqual(b.received, ['A.m']);
  // Its one retry is spent: the next loss is final.
  const c = await addNode();
  await kill(b);
  await (c.gcs as GcsClient).updateActor(actorId, 'ALIVE', { nodeId: c.nodeId as NodeIdHex, numRestarts: 2 });
  const error = errorOf(await value(id));
  assert.ok(error instanceof ObjectReconstructionFailedError, String(error));
  assert.match(error.message, /actor method A\.m, which made it, cannot run again to rebuild it: it has run 2 times \(maxTaskRetries: 1\)\. Raise maxTaskRetries/);
  assert.deepEqual(c.received, []);
});

test('a lost result of an actor with maxTaskRetries 0 fails with ObjectLostError naming maxTaskRetries; the method is not called again', T, async () => {
  const { addNode, value, kill, actorOn, call } = await setUp();
  const a = await addNode();
  const actorId = await actorOn(a, { maxRestarts: 1, maxTaskRetries: 0 });
  const id = call(actorId);
  assert.equal(located(await value(id)), a.nodeId);
  const b = await addNode();
  await kill(a);
  const error = errorOf(await value(id));
  assert.equal(error.constructor, ObjectLostError);
  assert.match(error.message, /not rebuilt, nor are the results of an actor created with maxTaskRetries 0/);
  await (b.gcs as GcsClient).updateActor(actorId, 'ALIVE', { nodeId: b.nodeId as NodeIdHex, numRestarts: 1 });
  assert.deepEqual(b.received, []);
});

test('a borrower that could not read the copy it was told of asks the owner again, which rebuilds it before answering', T, async () => {
  const { addNode, submit, value } = await setUp();
  const a = await addNode();
  const id = submit({ strategy: { nodeId: a.nodeId, soft: true } });
  await value(id);
  const b = await addNode();
  await value(submit({ strategy: { nodeId: b.nodeId, soft: false } })); // b and this node are connected
  assert.ok(b.peer !== undefined);
  // b could not read a's copy, though the GCS has not said that a died (a takes the re-run, then).
  const answer = await b.peer.request('getObject', { id, lostAt: a.nodeId });
  assert.equal(located(answer as RemoteValue), a.nodeId);
  assert.deepEqual(a.received, ['t1', 't1'], 'run again before the answer');
  // Told of a copy that is not the one it was told of before, the owner just answers.
  assert.equal(located((await b.peer.request('getObject', { id, lostAt: b.nodeId })) as RemoteValue), a.nodeId);
  assert.deepEqual(a.received, ['t1', 't1']);
});

test('a borrowed object whose owner dies fails with OwnerDiedError at once, whether it was being fetched or not', T, async () => {
  const { node, addNode, kill } = await setUp();
  const owner = await addNode();
  const [waiting, idle] = [hex<ObjectIdHex>(501), hex<ObjectIdHex>(502)];
  node.addRefs(OWNER, [waiting, idle], [owner.nodeId, owner.nodeId]);
  // A get of `waiting` asks the owner, which never answers (its task is still running there).
  const got = new Promise<string>((resolve) => node.fetch([waiting], true, (object) => resolve(object.state)));
  await until(() => owner.peer !== undefined);
  await kill(owner);
  assert.equal(await got, 'failed');
  for (const id of [waiting, idle]) {
    const error = errorOf(node.remoteObjects.valueFor(id, Infinity));
    assert.ok(error instanceof OwnerDiedError, String(error));
    assert.match(error.message, /ObjectRef\(.*\) is owned by node 0{8} \(where the task or put\(\) that created it ran\), which (died|could not be reached).*lost for good, even from put\(\)/);
  }
});

test('a lost primary copy is replaced by a copy another node said it holds; the task is not run again', T, async () => {
  const { node, addNode, submit, value, kill } = await setUp();
  const a = await addNode();
  const id = submit({ strategy: { nodeId: a.nodeId, soft: true } });
  await value(id);
  const b = await addNode();
  await value(submit({ strategy: { nodeId: b.nodeId, soft: false } })); // b and this node are connected
  assert.ok(b.peer !== undefined);
  b.peer.notify('addCopies', { ids: [id] }); // b pulled a copy to read it
  const c = await addNode();
  await value(submit({ strategy: { nodeId: c.nodeId, soft: false } }));
  assert.ok(c.peer !== undefined);
  c.peer.notify('addCopies', { ids: [id] });
  c.peer.notify('dropCopies', { ids: [id] }); // and let it go
  const copies = () => [...(node.remoteObjects.entryOf(id)?.copies ?? [])];
  await until(() => copies().length === 1 && copies()[0] === b.nodeId);
  await kill(a);
  assert.equal(located(await value(id)), b.nodeId);
  assert.deepEqual(a.received, ['t1']);
  assert.deepEqual(b.received, ['t2'], 'not run again');
  // b dies too: no copy is left, so lineage makes it again.
  await kill(b);
  assert.equal(located(await value(id)), c.nodeId);
  assert.deepEqual(c.received, ['t3', 't1']);
});
