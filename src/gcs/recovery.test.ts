/**
 * A GCS restarted on the store of the one before (GcsServer.start): the same cluster, its tables
 * as they were, nodes from before alive again only when they re-register within the grace
 * period. In one process, over net's in-process pairs; the store is shared as Redis would be.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomHex } from '../ids/index.js';
import { Router, localPair, type Peer } from '../net/index.js';
import { startRedis, type TestRedis } from '../../test/cluster/redis.js';
import { RedisStoreClient } from './redis-store.js';
import { GcsClient, GcsPublishes, GcsServer, InMemoryStoreClient, type ActorIdHex, type NodeEvent, type NodeIdHex, type StoreClient } from './index.js';

const nodeId = () => randomHex() as NodeIdHex;

async function waitFor<T>(what: string, condition: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * The store as one GCS process sees it: once cut (the process was killed), what that GCS would
 * still do (mark the nodes of its closed connections dead) does not reach the store.
 */
class Severable implements StoreClient {
  cut = false;
  constructor(private readonly store: StoreClient) {}
  put: StoreClient['put'] = async (table, key, value) => (this.cut ? undefined : this.store.put(table, key, value));
  get: StoreClient['get'] = (table, key) => this.store.get(table, key);
  getAll: StoreClient['getAll'] = (table) => this.store.getAll(table);
  delete: StoreClient['delete'] = async (table, key) => !this.cut && this.store.delete(table, key);
  nextJobId: StoreClient['nextJobId'] = () => this.store.nextJobId();
  close: StoreClient['close'] = async () => {};
}

/** A GCS on `store` and a way to connect clients to it, each with the node events it is sent. */
async function gcsOn(shared: StoreClient, options: { headNodeId?: string; reconnectGraceMs?: number } = {}) {
  const store = new Severable(shared);
  const server = await GcsServer.start(store, { resourceBatchMs: 1, ...options });
  const routes = new Router();
  server.register(routes);
  const peers: Peer[] = [];
  const connect = (role: 'node' | 'driver' = 'node') => {
    const publishes = new GcsPublishes();
    const router = new Router();
    publishes.register(router);
    const [toGcs, fromClient] = localPair({ hello: { role, nodeId: randomHex() }, router }, { hello: { role: 'gcs', nodeId: randomHex() }, router: routes });
    peers.push(toGcs);
    const events: NodeEvent[] = [];
    const client = new GcsClient(toGcs, publishes);
    client.onPublish('nodes', (event) => events.push(event));
    return { client, peer: toGcs, serverSide: fromClient, events };
  };
  /** As the process dies: every connection gone, the server closed (its store stays). */
  const kill = () => {
    store.cut = true;
    server.close();
    for (const peer of peers) peer.close('the GCS died');
  };
  return { server, connect, kill };
}

const register = (client: GcsClient, id: NodeIdHex, isDriver = false) =>
  client.registerNode({ nodeId: id, address: `h:${id.slice(0, 4)}`, resources: { CPU: 2 }, isDriver });

let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(() => redis?.stop());

const stores: [string, () => Promise<StoreClient>][] = [
  ['in memory', async () => new InMemoryStoreClient()],
  ['on a real Redis', () => RedisStoreClient.connect({ host: '127.0.0.1', port: redis.port, namespace: `recovery-${randomHex().slice(0, 8)}` })],
];

for (const [where, make] of stores) test(`a GCS restarted on the same store keeps its cluster ID, jobs, KV, actors and names (${where})`, async () => {
  const store = await make();
  const first = await gcsOn(store);
  const { client } = first.connect();
  const node = nodeId();
  await register(client, node);
  const jobId = await client.addJob(node);
  await client.kvPut('fun', 'f1', new Uint8Array([1, 2, 3]));
  const actorId = randomHex() as ActorIdHex;
  assert.deepEqual(
    await client.registerActor({ actorId, name: 'keeper', namespace: 'ns', className: 'Keeper', methodNames: ['get'], nodeId: node, ownerNodeId: node }),
    { ok: true },
  );
  await client.updateActor(actorId, 'ALIVE', { nodeId: node });
  const clusterId = first.server.clusterId;
  first.kill();

  const second = await gcsOn(store);
  assert.equal(second.server.clusterId, clusterId);
  const late = second.connect().client;
  assert.deepEqual(await late.kvGet('fun', 'f1'), new Uint8Array([1, 2, 3]));
  assert.equal((await late.getNamedActor('keeper', 'ns'))?.actorId, actorId);
  assert.equal((await late.getActor(actorId))?.state, 'ALIVE');
  // The name is still taken, as before the restart.
  const taken = await late.registerActor({ actorId: randomHex() as ActorIdHex, name: 'keeper', namespace: 'ns', className: 'K', methodNames: [], nodeId: node, ownerNodeId: node });
  assert.deepEqual({ ...taken, holder: taken.ok ? undefined : taken.holder?.actorId }, { ok: false, reason: 'name-taken', holder: actorId });
  const jobs = await late.listJobs();
  assert.deepEqual(jobs.map((job) => job.jobId), [jobId]);
  // Job IDs go on from where they were.
  assert.equal(await late.addJob(node), jobId + 1);
  second.kill();
  await store.close();
});

test('nodes from before are alive until the grace period ends; one that re-registers stays alive, the others are published dead', async () => {
  const store = new InMemoryStoreClient();
  const first = await gcsOn(store);
  const [back, gone] = [nodeId(), nodeId()];
  await register(first.connect().client, back);
  await register(first.connect().client, gone);
  first.kill();

  const second = await gcsOn(store, { reconnectGraceMs: 300 });
  const watcher = second.connect('driver');
  await watcher.client.subscribe(['nodes']);
  // Within the grace period both are listed alive: work on them goes on.
  assert.deepEqual((await watcher.client.getNodes()).map((n) => n.alive), [true, true]);
  const again = second.connect();
  const answer = await register(again.client, back);
  assert.ok(!('dead' in answer), 'the node that came back in time is taken back');
  assert.equal(answer.clusterId, second.server.clusterId);
  await waitFor('the node that did not come back to be published dead', () => watcher.events.find((e) => e.event === 'dead'));
  assert.deepEqual(watcher.events.map((e) => [e.event, e.node.nodeId]), [['added', back], ['dead', gone]]);
  const table = new Map((await watcher.client.getNodes()).map((n) => [n.nodeId, n.alive]));
  assert.deepEqual(table, new Map([[back, true], [gone, false]]));
  // It is alive because its new connection speaks for it: when that closes, it is dead.
  again.peer.close();
  await waitFor('the re-registered node to die with its connection', () => watcher.events.find((e) => e.event === 'dead' && e.node.nodeId === back));
  second.kill();
});

test('the head node from before is dead at once after a restart (it was in the GCS\'s process)', async () => {
  const store = new InMemoryStoreClient();
  const [oldHead, newHead, other] = [nodeId(), nodeId(), nodeId()];
  const first = await gcsOn(store, { headNodeId: oldHead });
  await register(first.connect().client, oldHead);
  await register(first.connect().client, other);
  first.kill();
  const second = await gcsOn(store, { headNodeId: newHead, reconnectGraceMs: 60_000 });
  const { client } = second.connect();
  const table = new Map((await client.getNodes()).map((n) => [n.nodeId, n.alive]));
  assert.deepEqual(table, new Map([[oldHead, false], [other, true]]));
  second.kill();
  // And the head of the second GCS is the one a third one marks dead.
  const third = await gcsOn(store, { headNodeId: nodeId() });
  assert.equal(third.server.clusterId, second.server.clusterId);
  third.kill();
});

test("a driver's running job ends with its new connection if it re-registers, at the end of the grace period if not", async () => {
  const store = new InMemoryStoreClient();
  const first = await gcsOn(store);
  const [stays, leaves] = [nodeId(), nodeId()];
  const a = first.connect('driver');
  const b = first.connect('driver');
  await register(a.client, stays, true);
  await register(b.client, leaves, true);
  const jobA = await a.client.addJob(stays);
  const jobB = await b.client.addJob(leaves);
  first.kill();

  const second = await gcsOn(store, { reconnectGraceMs: 200 });
  const back = second.connect('driver');
  await register(back.client, stays, true);
  const watcher = second.connect().client;
  const ended = async (jobId: number) => (await watcher.listJobs()).find((job) => job.jobId === jobId)?.endTimeMs !== undefined;
  assert.equal(await ended(jobA), false);
  assert.equal(await ended(jobB), false);
  const deadline = Date.now() + 10_000;
  while (!(await ended(jobB))) {
    assert.ok(Date.now() < deadline, 'the job of the driver that did not come back did not end');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(await ended(jobA), false);
  back.peer.close();
  while (!(await ended(jobA))) {
    assert.ok(Date.now() < deadline, "the returned driver's job did not end with its connection");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  second.kill();
});

test('a new store is a new cluster: another cluster ID, no nodes', async () => {
  const a = await gcsOn(new InMemoryStoreClient());
  const b = await gcsOn(new InMemoryStoreClient());
  assert.notEqual(a.server.clusterId, b.server.clusterId);
  assert.deepEqual(await b.connect().client.getNodes(), []);
  a.kill();
  b.kill();
});
