import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError, RequestTimeoutError } from '../errors/index.js';
import { randomHex } from '../ids/index.js';
import {
  GcsClient,
  GcsPublishes,
  GcsServer,
  InMemoryStoreClient,
  type ActorIdHex,
  type GcsPeer,
  type GcsPeerHello,
  type GcsRequestOptions,
  type GcsRoutes,
  type NodeIdHex,
  type Publish,
  type Registered,
  type RegisterNodeAnswer,
  type StoreValue,
} from './index.js';

// ---- an in-memory pair of peers (not sockets) ---------------------------------------------------

type Handler = { parse: (body: unknown) => unknown; handler: (body: never, peer: GcsPeer, signal: AbortSignal) => unknown };
type NotifyHandler = { parse: (body: unknown) => unknown; handler: (body: never, peer: GcsPeer) => void };

class FakeRoutes implements GcsRoutes {
  readonly handlers = new Map<string, Handler>();
  readonly notifyHandlers = new Map<string, NotifyHandler>();
  /** Notifies whose body failed its parser: a real Router logs and drops them. */
  readonly rejected: ProtocolError[] = [];

  handle<T>(method: string, parse: (body: unknown) => T | ProtocolError, handler: (body: T, peer: GcsPeer, signal: AbortSignal) => unknown): this {
    this.handlers.set(method, { parse, handler: handler as Handler['handler'] });
    return this;
  }

  on<T>(method: string, parse: (body: unknown) => T | ProtocolError, handler: (body: T, peer: GcsPeer) => void): this {
    this.notifyHandlers.set(method, { parse, handler: handler as NotifyHandler['handler'] });
    return this;
  }
}

/** One end: its requests and notifies are answered by the other end's routes, in order, asynchronously. */
class FakePeer implements GcsPeer {
  other!: FakePeer;
  isClosed = false;
  notifiesAfterClose = 0;
  private readonly closeListeners: ((reason: string) => void)[] = [];
  private queue: Promise<void> = Promise.resolve();

  constructor(
    readonly hello: GcsPeerHello,
    private readonly otherRoutes: FakeRoutes,
  ) {}

  request(method: string, body: unknown, _options?: GcsRequestOptions): Promise<unknown> {
    if (this.isClosed) return Promise.reject(new Error(`connection closed (request ${method})`));
    const result = this.queue.then(() => {
      const route = this.otherRoutes.handlers.get(method);
      if (route === undefined) throw new Error(`no method ${method}`);
      const parsed = route.parse(body);
      if (parsed instanceof ProtocolError) throw parsed;
      return route.handler(parsed as never, this.other, new AbortController().signal);
    });
    this.queue = result.then(
      () => undefined,
      () => undefined,
    );
    // Handlers run in order; answers arrive when each is done, as net's would.
    return result;
  }

  notify(method: string, body: unknown): void {
    if (this.isClosed) {
      this.notifiesAfterClose++;
      return;
    }
    this.queue = this.queue.then(() => {
      const route = this.otherRoutes.notifyHandlers.get(method);
      if (route === undefined) return;
      const parsed = route.parse(body);
      if (parsed instanceof ProtocolError) this.otherRoutes.rejected.push(parsed);
      else route.handler(parsed as never, this.other);
    });
  }

  onClose(listener: (reason: string) => void): void {
    this.closeListeners.push(listener);
  }

  close(reason = 'closed'): void {
    for (const end of [this, this.other]) {
      if (end.isClosed) continue;
      end.isClosed = true;
      for (const listener of end.closeListeners) listener(reason);
    }
  }
}

function fakePair(a: { hello: GcsPeerHello; routes: FakeRoutes }, b: { hello: GcsPeerHello; routes: FakeRoutes }): [FakePeer, FakePeer] {
  // Each end's `hello` is what the other side said about itself.
  const aEnd = new FakePeer(b.hello, b.routes);
  const bEnd = new FakePeer(a.hello, a.routes);
  aEnd.other = bEnd;
  bEnd.other = aEnd;
  return [aEnd, bEnd];
}

const nodeId = (): NodeIdHex => randomHex() as NodeIdHex;
const actorId = (): ActorIdHex => randomHex() as ActorIdHex;

function cluster(options: { resourceBatchMs?: number } = {}) {
  const store = new InMemoryStoreClient();
  const server = new GcsServer(store, 'cluster-1', options);
  const serverRoutes = new FakeRoutes();
  server.register(serverRoutes);
  const gcsHello: GcsPeerHello = { role: 'gcs', nodeId: randomHex() };
  return {
    store,
    server,
    serverRoutes,
    /** A connection to the GCS, with every publish it receives collected. */
    connect(role: GcsPeerHello['role'] = 'node') {
      const routes = new FakeRoutes();
      const publishes = new GcsPublishes();
      publishes.register(routes);
      const received: Publish[] = [];
      for (const channel of ['nodes', 'actors', 'resources'] as const) {
        publishes.on(channel, (message) => received.push({ channel, message } as Publish));
      }
      const [toGcs] = fakePair({ hello: { role, nodeId: randomHex() }, routes }, { hello: gcsHello, routes: serverRoutes });
      return { client: new GcsClient(toGcs, publishes), peer: toGcs, received, routes };
    },
  };
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A registerNode answer that is a registration (not the GCS saying the node is dead). */
function registered(answer: RegisterNodeAnswer): Registered {
  assert.ok(!('dead' in answer), `the GCS said the node is dead: ${JSON.stringify(answer)}`);
  return answer;
}

// ---- nodes --------------------------------------------------------------------------------------

test('registered nodes are listed, alive, with their resources as available', async () => {
  const gcs = cluster();
  const a = gcs.connect();
  const b = gcs.connect();
  const idA = nodeId();
  const idB = nodeId();
  const first = registered(await a.client.registerNode({ nodeId: idA, address: '127.0.0.1:7001', resources: { CPU: 2, GPU: 0 }, isDriver: false }));
  assert.equal(first.clusterId, 'cluster-1');
  assert.deepEqual(first.nodes.map((n) => n.nodeId), [idA]);
  const second = registered(await b.client.registerNode({ nodeId: idB, address: '127.0.0.1:7002', resources: { CPU: 4, disk: 2 }, isDriver: false }));
  assert.deepEqual(new Set(second.nodes.map((n) => n.nodeId)), new Set([idA, idB]));
  const nodes = await a.client.getNodes();
  const infoB = nodes.find((n) => n.nodeId === idB);
  assert.deepEqual(infoB, { nodeId: idB, alive: true, address: '127.0.0.1:7002', resources: { CPU: 4, disk: 2 }, available: { CPU: 4, disk: 2 }, isDriver: false });
});

test("a node whose connection closes is marked dead, and subscribers are told", async () => {
  const gcs = cluster();
  const watcher = gcs.connect('cli');
  await watcher.client.subscribe(['nodes']);
  const node = gcs.connect();
  const id = nodeId();
  await node.client.registerNode({ nodeId: id, address: 'h:1', resources: { CPU: 1 }, isDriver: false });
  await waitFor('the added event', () => watcher.received.some((p) => p.channel === 'nodes' && p.message.event === 'added'));
  node.peer.close('test');
  await waitFor('the dead event', () =>
    watcher.received.some((p) => p.channel === 'nodes' && p.message.event === 'dead' && p.message.node.nodeId === id && !p.message.node.alive),
  );
  const [info] = await watcher.client.getNodes();
  assert.equal(info?.alive, false);
  assert.deepEqual(await watcher.client.clusterResources(), {});
});

test('unregisterNode marks the node dead; a node that re-registers over a new connection is not killed by the old one closing', async () => {
  const gcs = cluster();
  const id = nodeId();
  const old = gcs.connect();
  await old.client.registerNode({ nodeId: id, address: 'h:1', resources: { CPU: 1 }, isDriver: false });
  const again = gcs.connect();
  await again.client.registerNode({ nodeId: id, address: 'h:2', resources: { CPU: 1 }, isDriver: false });
  // The old connection no longer speaks for the node: its report is dropped, its closing kills nothing.
  old.client.reportResources(id, { CPU: 0 });
  old.peer.close();
  assert.deepEqual(await again.client.availableResources(), { CPU: 1 });
  assert.equal((await again.client.getNodes())[0]?.alive, true);
  assert.deepEqual(await again.client.unregisterNode(id), { found: true });
  assert.equal((await again.client.getNodes())[0]?.alive, false);
  assert.deepEqual(await again.client.unregisterNode(nodeId()), { found: false });
});

/** A store whose puts wait while it is gated, to hold a step of the GCS in the middle. */
class GatedStore extends InMemoryStoreClient {
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;
  waiting = 0;

  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.gate = undefined;
    this.open?.();
  }

  override async put(table: string, key: string, value: StoreValue): Promise<void> {
    if (this.gate !== undefined) {
      this.waiting++;
      await this.gate;
    }
    return super.put(table, key, value);
  }
}

test('a node that re-registers while the GCS is busy is not marked dead when its old connection closes', async () => {
  const store = new GatedStore();
  const server = new GcsServer(store, 'c');
  const routes = new FakeRoutes();
  server.register(routes);
  const connect = () => {
    const [toGcs] = fakePair({ hello: { role: 'node', nodeId: randomHex() }, routes: new FakeRoutes() }, { hello: { role: 'gcs', nodeId: randomHex() }, routes });
    return { client: new GcsClient(toGcs), peer: toGcs };
  };
  const id = nodeId();
  const old = connect();
  await old.client.registerNode({ nodeId: id, address: 'h:1', resources: { CPU: 1 }, isDriver: false });
  store.hold();
  const fresh = connect();
  const registered = fresh.client.registerNode({ nodeId: id, address: 'h:2', resources: { CPU: 1 }, isDriver: false });
  await waitFor('the new registration to be under way', () => store.waiting === 1);
  // The old connection closes while the new registration is in the middle of its step.
  old.peer.close();
  store.release();
  await registered;
  const nodes = await fresh.client.getNodes();
  assert.deepEqual(nodes.map((n) => [n.address, n.alive]), [['h:2', true]]);
});

// ---- resources ----------------------------------------------------------------------------------

test('cluster and available resources sum alive nodes, and drivers only when they offer some', async () => {
  const gcs = cluster();
  const a = gcs.connect();
  const b = gcs.connect();
  const dead = gcs.connect();
  const driver = gcs.connect('driver');
  const cpuDriver = gcs.connect('driver');
  const [idA, idB, idDead, idDriver, idCpuDriver] = [nodeId(), nodeId(), nodeId(), nodeId(), nodeId()] as const;
  await a.client.registerNode({ nodeId: idA, address: 'a:1', resources: { CPU: 2, GPU: 1 }, isDriver: false });
  await b.client.registerNode({ nodeId: idB, address: 'b:1', resources: { CPU: 4, disk: 2 }, isDriver: false });
  await dead.client.registerNode({ nodeId: idDead, address: 'c:1', resources: { CPU: 100 }, isDriver: false });
  await driver.client.registerNode({ nodeId: idDriver, address: 'd:1', resources: { CPU: 0, memory: 0 }, isDriver: true });
  await cpuDriver.client.registerNode({ nodeId: idCpuDriver, address: 'e:1', resources: { CPU: 1 }, isDriver: true });
  dead.peer.close();
  await waitFor('the dead node', async () => (await a.client.getNodes()).some((n) => n.nodeId === idDead && !n.alive));

  assert.deepEqual(await a.client.clusterResources(), { CPU: 7, GPU: 1, disk: 2 });
  a.client.reportResources(idA, { CPU: 0.5, GPU: 0 });
  b.client.reportResources(idB, { CPU: 4, disk: 1 });
  // A report is one-way; the reads queue behind it at the GCS, so each sees its own node's report.
  await waitFor('both reports', async () => {
    const available = await a.client.availableResources();
    return available['disk'] === 1;
  });
  assert.deepEqual(await a.client.availableResources(), { CPU: 5.5, GPU: 0, disk: 1 });
  assert.deepEqual(await a.client.clusterResources(), { CPU: 7, GPU: 1, disk: 2 });
});

test('a resource named __proto__ is summed like any other', async () => {
  const gcs = cluster();
  const a = gcs.connect();
  const resources = JSON.parse('{"__proto__": 2, "CPU": 1}') as Record<string, number>;
  await a.client.registerNode({ nodeId: nodeId(), address: 'a:1', resources, isDriver: false });
  const totals = await a.client.clusterResources();
  assert.equal(Object.getPrototypeOf(totals), Object.prototype);
  assert.equal(Object.getOwnPropertyDescriptor(totals, '__proto__')?.value, 2);
});

// ---- pubsub -------------------------------------------------------------------------------------

test('the resource view is batched: a burst of reports costs a subscriber a few messages, at least 100 ms apart', async () => {
  const gcs = cluster();
  const watcher = gcs.connect('cli');
  await watcher.client.subscribe(['resources']);
  const times: number[] = [];
  watcher.client.onPublish('resources', () => times.push(performance.now()));
  const node = gcs.connect();
  const id = nodeId();
  await node.client.registerNode({ nodeId: id, address: 'a:1', resources: { CPU: 8 }, isDriver: false });
  const reports = 400;
  const start = performance.now();
  for (let i = 1; i <= reports; i++) {
    node.client.reportResources(id, { CPU: 8 - (i % 8) });
    if (i % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  node.client.reportResources(id, { CPU: 3.25 });
  await waitFor('the last view', () =>
    watcher.received.some((p) => p.channel === 'resources' && p.message.nodes.some((n) => n.nodeId === id && n.available['CPU'] === 3.25)),
  );
  const views = watcher.received.filter((p) => p.channel === 'resources');
  console.log(`gcs resource view: ${reports + 1} reports over ${((times.at(-1) ?? start) - start).toFixed(0)} ms: ${views.length} resource views`);
  assert.ok(views.length < reports / 4, `${views.length} views for ${reports} reports`);
  for (let i = 1; i < times.length; i++) {
    const gap = (times[i] ?? 0) - (times[i - 1] ?? 0);
    assert.ok(gap >= 90, `views ${i - 1} and ${i} arrived ${gap.toFixed(1)} ms apart`);
  }
  const last = views.at(-1);
  assert.ok(last !== undefined && last.channel === 'resources');
  assert.deepEqual(last.message.nodes, [{ nodeId: id, resources: { CPU: 8 }, available: { CPU: 3.25 } }]);
});

test('a subscriber gets only its channels, and a closed subscriber is dropped', async () => {
  const gcs = cluster({ resourceBatchMs: 0 });
  const actorsOnly = gcs.connect('cli');
  await actorsOnly.client.subscribe(['actors']);
  const gone = gcs.connect('cli');
  await gone.client.subscribe(['nodes', 'actors', 'resources']);
  gone.peer.close();
  const node = gcs.connect();
  const id = nodeId();
  await node.client.registerNode({ nodeId: id, address: 'a:1', resources: { CPU: 1 }, isDriver: false });
  const aid = actorId();
  await node.client.registerActor({ actorId: aid, namespace: 'ns', className: 'C', methodNames: ['m'], nodeId: id, ownerNodeId: id });
  await node.client.updateActor(aid, 'ALIVE', { nodeId: id });
  await waitFor('the ALIVE update', () => actorsOnly.received.some((p) => p.channel === 'actors' && p.message.actor.state === 'ALIVE'));
  assert.deepEqual(
    actorsOnly.received.map((p) => p.channel),
    ['actors', 'actors'],
  );
  assert.equal(gone.peer.other.notifiesAfterClose, 0);
  assert.deepEqual(gone.received, []);
});

test('a new subscriber to resources gets the current view without waiting for a change', async () => {
  const gcs = cluster();
  const node = gcs.connect();
  const id = nodeId();
  await node.client.registerNode({ nodeId: id, address: 'a:1', resources: { CPU: 2 }, isDriver: false });
  const watcher = gcs.connect('cli');
  await watcher.client.subscribe(['resources']);
  await waitFor('the view', () => watcher.received.some((p) => p.channel === 'resources' && p.message.nodes.some((n) => n.nodeId === id)));
});

test('a malformed publish does not reach the listeners', async () => {
  const routes = new FakeRoutes();
  const publishes = new GcsPublishes().register(routes);
  const seen: unknown[] = [];
  publishes.on('nodes', (message) => seen.push(message));
  const handler = routes.notifyHandlers.get('publish');
  assert.ok(handler !== undefined);
  const bad = handler.parse({ channel: 'nodes', message: { event: 'added', node: { nodeId: 'x' } } });
  assert.ok(bad instanceof ProtocolError);
  assert.equal(bad.field, 'message.node.nodeId');
  assert.ok(handler.parse({ channel: 'gossip', message: {} }) instanceof ProtocolError);
  assert.deepEqual(seen, []);
});

// ---- actors -------------------------------------------------------------------------------------

test('actor names are unique per namespace while the actor is not DEAD', async () => {
  const gcs = cluster();
  const { client } = gcs.connect();
  const id = nodeId();
  const spec = (name?: string, namespace = 'a') => ({
    actorId: actorId(),
    ...(name !== undefined ? { name } : {}),
    namespace,
    className: 'Counter',
    methodNames: ['incr'],
    nodeId: id,
    ownerNodeId: id,
  });
  const first = spec('counter');
  assert.deepEqual(await client.registerActor(first), { ok: true });
  // The answer names the holder (getIfExists: a caller that loses the race reaches it).
  const taken = await client.registerActor(spec('counter'));
  assert.deepEqual({ ...taken, holder: taken.ok ? undefined : taken.holder?.actorId }, { ok: false, reason: 'name-taken', holder: first.actorId });
  assert.deepEqual(await client.registerActor(spec('counter', 'b')), { ok: true });
  assert.deepEqual(await client.registerActor(spec()), { ok: true });
  // A registration sent twice (a retry) is not a second actor taking the name.
  assert.deepEqual(await client.registerActor(first), { ok: true });

  assert.equal((await client.getNamedActor('counter', 'a'))?.actorId, first.actorId);
  assert.equal((await client.getActor(first.actorId))?.state, 'PENDING_CREATION');
  const other = nodeId();
  // ALIVE comes from the instance's node, which must be an alive node.
  assert.equal((await client.updateActor(first.actorId, 'ALIVE', { nodeId: other }))?.state, 'PENDING_CREATION');
  await client.registerNode({ nodeId: other, address: 'b:1', resources: { CPU: 1 }, isDriver: false });
  assert.equal((await client.updateActor(first.actorId, 'ALIVE', { nodeId: other }))?.nodeId, other);
  assert.equal((await client.updateActor(first.actorId, 'DEAD', { reason: 'killed' }))?.reason, 'killed');
  assert.equal(await client.getNamedActor('counter', 'a'), null);
  // DEAD is final.
  assert.equal((await client.updateActor(first.actorId, 'ALIVE'))?.state, 'DEAD');

  const second = spec('counter');
  assert.deepEqual(await client.registerActor(second), { ok: true });
  assert.equal((await client.getNamedActor('counter', 'a'))?.actorId, second.actorId);
  assert.equal((await client.listActors()).length, 4);
  assert.equal((await client.listActors('b')).length, 1);
  assert.equal(await client.getActor(actorId()), null);
  assert.equal(await client.updateActor(actorId(), 'ALIVE'), null);
});

test('two registrations of one name at the same time: exactly one gets it', async () => {
  const gcs = cluster();
  const clients = [gcs.connect().client, gcs.connect().client, gcs.connect().client];
  const id = nodeId();
  const answers = await Promise.all(
    clients.map((client) =>
      client.registerActor({ actorId: actorId(), name: 'x', namespace: '', className: 'C', methodNames: [], nodeId: id, ownerNodeId: id }),
    ),
  );
  assert.equal(answers.filter((a) => a.ok).length, 1);
});

// ---- jobs ---------------------------------------------------------------------------------------

test('job ids increase; a job finishes by finishJob or when its driver disconnects', async () => {
  const gcs = cluster();
  const a = gcs.connect('driver');
  const b = gcs.connect('driver');
  const driver = nodeId();
  const first = await a.client.addJob(driver);
  const second = await b.client.addJob(driver);
  const third = await a.client.addJob(driver);
  assert.ok(first >= 1 && second > first && third > second, `${first}, ${second}, ${third}`);
  assert.equal(await a.client.finishJob(first), true);
  assert.equal(await a.client.finishJob(9999), false);
  b.peer.close();
  await waitFor('the disconnected driver\'s job to finish', async () =>
    (await a.client.listJobs()).some((job) => job.jobId === second && job.endTimeMs !== undefined),
  );
  const jobs = await a.client.listJobs();
  assert.deepEqual(jobs.map((job) => job.jobId), [first, second, third]);
  assert.equal(jobs[2]?.endTimeMs, undefined);
  assert.ok(jobs[0]?.endTimeMs !== undefined);
});

// ---- kv -----------------------------------------------------------------------------------------

test('kv: put with and without overwrite, get, delete, keys by prefix per namespace', async () => {
  const gcs = cluster();
  const { client } = gcs.connect();
  const bytes = (...values: number[]) => new Uint8Array(values);
  assert.equal(await client.kvPut('fun', 'f:1', bytes(1)), true);
  assert.equal(await client.kvPut('fun', 'f:2', bytes(2)), true);
  assert.equal(await client.kvPut('fun', 'g:1', bytes(3)), true);
  assert.equal(await client.kvPut('other', 'f:9', bytes(4)), true);
  assert.equal(await client.kvPut('fun', 'f:1', bytes(9), false), false);
  assert.deepEqual(await client.kvGet('fun', 'f:1'), bytes(1));
  assert.equal(await client.kvPut('fun', 'f:1', bytes(5), true), false);
  assert.deepEqual(await client.kvGet('fun', 'f:1'), bytes(5));
  assert.deepEqual(await client.kvKeys('fun', 'f:'), ['f:1', 'f:2']);
  assert.deepEqual(await client.kvKeys('fun'), ['f:1', 'f:2', 'g:1']);
  assert.deepEqual(await client.kvKeys('other', 'f'), ['f:9']);
  assert.equal(await client.kvDel('fun', 'f:2'), true);
  assert.equal(await client.kvDel('fun', 'f:2'), false);
  assert.equal(await client.kvGet('fun', 'f:2'), null);
  assert.deepEqual(await client.kvKeys('fun', 'f:'), ['f:1']);
});

// ---- validation ---------------------------------------------------------------------------------

async function rejects(promise: Promise<unknown>, field: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ProtocolError, `not a ProtocolError: ${String(error)}`);
    assert.equal(error.field, field, error.message);
    assert.match(error.message, new RegExp(field.replace(/[.[\]]/g, '\\$&')));
    return true;
  });
}

test('malformed bodies are rejected with a ProtocolError naming the field', async () => {
  const gcs = cluster();
  const { peer } = gcs.connect();
  const id = randomHex();
  await rejects(peer.request('registerNode', { nodeId: 'short', address: 'a:1', resources: {}, isDriver: false }), 'nodeId');
  await rejects(peer.request('registerNode', { nodeId: id, address: 'a:1', resources: { CPU: -1 }, isDriver: false }), 'resources.CPU');
  await rejects(peer.request('registerNode', { nodeId: id, address: 'a:1', resources: { CPU: Infinity }, isDriver: false }), 'resources.CPU');
  await rejects(peer.request('registerNode', { nodeId: id, address: 'a:1', resources: [], isDriver: false }), 'resources');
  await rejects(peer.request('registerNode', { nodeId: id, address: 7, resources: {}, isDriver: false }), 'address');
  await rejects(peer.request('registerNode', { nodeId: id, address: 'a:1', resources: {}, isDriver: 'no' }), 'isDriver');
  await rejects(peer.request('registerNode', 'hello'), '');
  const actor = { actorId: id, namespace: 'n', className: 'C', methodNames: ['m'], nodeId: id, ownerNodeId: id };
  await rejects(peer.request('registerActor', { ...actor, name: '' }), 'name');
  await rejects(peer.request('registerActor', { ...actor, methodNames: ['m', 3] }), 'methodNames[1]');
  await rejects(peer.request('registerActor', { ...actor, ownerNodeId: undefined }), 'ownerNodeId');
  await rejects(peer.request('updateActor', { actorId: id, state: 'SLEEPING' }), 'state');
  await rejects(peer.request('updateActor', { actorId: id, state: 'ALIVE', nodeId: 5 }), 'nodeId');
  await rejects(peer.request('getNamedActor', { name: 'x' }), 'namespace');
  await rejects(peer.request('addJob', {}), 'driverNodeId');
  await rejects(peer.request('finishJob', { jobId: 0 }), 'jobId');
  await rejects(peer.request('kvPut', { namespace: 'fun', key: 'k', value: 'text', overwrite: true }), 'value');
  await rejects(peer.request('kvPut', { namespace: 'fun', key: 'k', value: new Uint8Array(1) }), 'overwrite');
  await rejects(peer.request('kvKeys', { namespace: 'fun' }), 'prefix');
  await rejects(peer.request('subscribe', { channels: ['nodes', 'gossip'] }), 'channels[1]');
  await rejects(peer.request('getNodes', 5), '');

  peer.notify('reportResources', { nodeId: id, available: { CPU: 'many' } });
  await waitFor('the notify to be checked', () => gcs.serverRoutes.rejected.length === 1);
  assert.equal(gcs.serverRoutes.rejected[0]?.field, 'available.CPU');
  // Nothing malformed reached a table.
  assert.deepEqual(await gcs.store.getAll('nodes'), new Map());
  assert.deepEqual(await gcs.store.getAll('actors'), new Map());
});

test("the client rejects a malformed answer with a ProtocolError naming the field", async () => {
  const liar = new FakeRoutes()
    .handle('getNodes', (body) => body, () => [{ nodeId: 'x'.repeat(32), alive: 'yes' }])
    .handle('getAvailableResources', (body) => body, () => ({ CPU: '3' }))
    .handle('registerActor', (body) => body, () => ({ ok: false, reason: 'busy' }))
    .handle('kvGet', (body) => body, () => 'not bytes');
  const [toLiar] = fakePair({ hello: { role: 'node', nodeId: randomHex() }, routes: new FakeRoutes() }, { hello: { role: 'gcs', nodeId: randomHex() }, routes: liar });
  const client = new GcsClient(toLiar);
  await rejects(client.getNodes(), '[0].alive');
  await rejects(client.availableResources(), 'CPU');
  const id = nodeId();
  await rejects(client.registerActor({ actorId: actorId(), namespace: '', className: 'C', methodNames: [], nodeId: id, ownerNodeId: id }), 'reason');
  await rejects(client.kvGet('fun', 'k'), '');
});

test('the store keeps copies: changing a value after put or get does not change the table', async () => {
  const store = new InMemoryStoreClient();
  const value = { a: [1, 2] };
  await store.put('t', 'k', value);
  value.a.push(3);
  const got = (await store.get('t', 'k')) as { a: number[] };
  assert.deepEqual(got, { a: [1, 2] });
  got.a.push(4);
  assert.deepEqual(await store.get('t', 'k'), { a: [1, 2] });
  assert.equal(await store.delete('t', 'k'), true);
  assert.equal(await store.delete('t', 'k'), false);
  assert.equal(await store.delete('none', 'k'), false);
  const ids = [await store.nextJobId(), await store.nextJobId()];
  assert.deepEqual(ids, [1, 2]);
});

// ---- the contract's net shapes fit ----------------------------------------------------------------
// Declared as CLUSTER-CONTRACT.md gives them: net's Router and Peer must pass where src/gcs takes
// its own interfaces, with no change (checked by the type checker; nothing runs).
interface ContractPeer {
  readonly hello: { readonly role: 'node' | 'driver' | 'cli' | 'gcs'; readonly nodeId: string; readonly listenAddress?: string };
  request(method: string, body: unknown, options?: { readonly timeoutMs?: number; readonly signal?: AbortSignal }): Promise<unknown>;
  notify(method: string, body: unknown): void;
  onClose(listener: (reason: string) => void): void;
  close(reason?: string): void;
  readonly isClosed: boolean;
}
interface ContractRouter {
  handle<T>(method: string, parse: (body: unknown) => T | ProtocolError, handler: (body: T, peer: ContractPeer, signal: AbortSignal) => unknown | Promise<unknown>): this;
  on<T>(method: string, parse: (body: unknown) => T | ProtocolError, handler: (body: T, peer: ContractPeer) => void): this;
}
export const contractFits = (router: ContractRouter, peer: ContractPeer): [GcsRoutes, GcsPeer] => [router, peer];

// ---- the state API's fan-out ----------------------------------------------------------------------

test("askNodes: a node that answered with an error is in partial and in errors with what it said; one that timed out only in partial", async () => {
  const gcs = cluster();
  const [good, refusing, silent] = [gcs.connect(), gcs.connect(), gcs.connect()];
  const [idGood, idRefusing, idSilent] = [nodeId(), nodeId(), nodeId()];
  good.routes.handle('nodeState', (body) => body, () => ({ lines: [], lastSeq: 0 }));
  refusing.routes.handle('nodeState', (body) => body, () => {
    throw new ProtocolError("'actorId' must be an ID of 32 lowercase hex characters, not 'nope'", 'actorId');
  });
  silent.routes.handle('nodeState', (body) => body, () => {
    throw new RequestTimeoutError("'nodeState' got no answer within 10 ms");
  });
  for (const [node, id] of [[good, idGood], [refusing, idRefusing], [silent, idSilent]] as const) {
    registered(await node.client.registerNode({ nodeId: id, address: `${id}:1`, resources: { CPU: 1 }, isDriver: false }));
  }
  const asked = await good.client.askNodes({ what: 'logs', body: { actorId: 'nope' } });
  assert.deepEqual(asked.answers, [{ nodeId: idGood, answer: { lines: [], lastSeq: 0 } }]);
  assert.deepEqual(new Set(asked.partial), new Set([idRefusing, idSilent]));
  assert.equal(asked.errors?.length, 1);
  assert.equal(asked.errors?.[0]?.nodeId, idRefusing);
  assert.match(asked.errors?.[0]?.message ?? '', /not 'nope'/);
});

test('a GCS that is connected but never answers fails the call after gcsRequestTimeoutMs, with what to do; a call with its own timeout keeps it', async () => {
  const asked: (number | undefined)[] = [];
  // A peer over which nothing ever answers: it only times out, as net's Peer does.
  const silent: GcsPeer = {
    hello: { role: 'gcs', nodeId: randomHex() },
    isClosed: false,
    request: (method, _body, options) => {
      asked.push(options?.timeoutMs);
      return new Promise((_resolve, reject) => setTimeout(() => reject(new RequestTimeoutError(`'${method}' got no answer within ${options?.timeoutMs} ms`)), options?.timeoutMs));
    },
    notify: () => {},
    onClose: () => {},
    close: () => {},
  };
  const saved = process.env.MINIRAY_GCS_REQUEST_TIMEOUT_MS;
  process.env.MINIRAY_GCS_REQUEST_TIMEOUT_MS = '20';
  let client: GcsClient;
  try {
    client = new GcsClient(silent);
  } finally {
    if (saved === undefined) delete process.env.MINIRAY_GCS_REQUEST_TIMEOUT_MS;
    else process.env.MINIRAY_GCS_REQUEST_TIMEOUT_MS = saved;
  }
  await assert.rejects(client.getNodes(), (error: unknown) => error instanceof RequestTimeoutError && /'getNodes' got no answer within 20 ms: the GCS is connected but does not answer.*MINIRAY_GCS_REQUEST_TIMEOUT_MS/.test(error.message));
  await assert.rejects(client.call('getNodes', {}, { timeoutMs: 5 }), (error: unknown) => error instanceof RequestTimeoutError && /within 5 ms$/.test(error.message));
  assert.deepEqual(asked, [20, 5]);
});
