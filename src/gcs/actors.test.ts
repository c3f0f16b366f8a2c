// The GCS's actor table as a state machine over node deaths: which rows go RESTARTING (restarts
// left), which DEAD (none left, or their owner died), that detached ones outlive their owner, and
// which updates a row takes (ALIVE only from an alive node; RESTARTING only says where a restart went).
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { randomHex } from '../ids/index.js';
import { Router, localPair, type Peer } from '../net/index.js';
import { GcsClient, GcsPublishes, GcsServer, InMemoryStoreClient, type ActorEntry, type ActorIdHex, type NodeIdHex } from './index.js';

let cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function gcs() {
  const server = new GcsServer(new InMemoryStoreClient(), 'test', { resourceBatchMs: 0 });
  const router = new Router();
  server.register(router);
  cleanups.push(() => server.close());
  /** A node registered over a connection of its own; closing it is the node's death. */
  const node = async (): Promise<{ id: NodeIdHex; client: GcsClient; peer: Peer; events: ActorEntry[] }> => {
    const id = randomHex() as NodeIdHex;
    const publishes = new GcsPublishes();
    const clientRouter = new Router();
    publishes.register(clientRouter);
    const [peer] = localPair({ hello: { role: 'node', nodeId: id }, router: clientRouter }, { hello: { role: 'gcs', nodeId: 'gcs' }, router });
    cleanups.push(() => peer.close());
    const client = new GcsClient(peer, publishes);
    const events: ActorEntry[] = [];
    client.onPublish('actors', ({ actor }) => events.push(actor));
    await client.registerNode({ nodeId: id, address: `${id}:1`, resources: { CPU: 1 }, isDriver: false });
    await client.subscribe(['actors']);
    return { id, client, peer, events };
  };
  return { node };
}

const actor = (host: NodeIdHex, owner: NodeIdHex, more: { detached?: boolean; maxRestarts?: number; name?: string } = {}) => ({
  actorId: randomHex() as ActorIdHex,
  namespace: 'ns',
  className: 'C',
  methodNames: ['m'],
  nodeId: host,
  ownerNodeId: owner,
  ...more,
});

async function until<T>(what: string, read: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const value = await read();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const stateOf = async (client: GcsClient, id: ActorIdHex, state: ActorEntry['state']) =>
  until(`${id.slice(0, 8)} ${state}`, async () => {
    const row = await client.getActor(id);
    return row?.state === state ? row : undefined;
  });

test("a node's death: its actors with restarts left go RESTARTING (counted), the others DEAD with why; actors its owner had elsewhere end too", async () => {
  const { node } = gcs();
  const [owner, host, other] = [await node(), await node(), await node()];
  const restartable = actor(host.id, owner.id, { maxRestarts: 2, name: 'r' });
  const once = actor(host.id, owner.id);
  const unlimited = actor(host.id, owner.id, { maxRestarts: -1 });
  const ownedByHost = actor(other.id, host.id);
  const detachedOfHost = actor(other.id, host.id, { detached: true });
  for (const spec of [restartable, once, unlimited, ownedByHost, detachedOfHost]) assert.deepEqual(await owner.client.registerActor(spec), { ok: true });

  host.peer.close();
  const restarting = await stateOf(owner.client, restartable.actorId, 'RESTARTING');
  assert.equal(restarting.numRestarts, 1);
  assert.equal(restarting.maxRestarts, 2);
  assert.equal((await stateOf(owner.client, unlimited.actorId, 'RESTARTING')).numRestarts, 1);
  assert.match((await stateOf(owner.client, once.actorId, 'DEAD')).reason ?? '', /its node .* died, and it has no restarts left \(maxRestarts: 0\)/);
  assert.match((await stateOf(owner.client, ownedByHost.actorId, 'DEAD')).reason ?? '', /its owner's node .* died/);
  assert.equal((await owner.client.getActor(detachedOfHost.actorId))?.state, 'PENDING_CREATION', 'a detached actor outlives its owner');
  // The name stays taken while it restarts.
  assert.equal((await owner.client.getNamedActor('r', 'ns'))?.actorId, restartable.actorId);
  // Subscribers saw each change.
  assert.ok(owner.events.some((row) => row.actorId === restartable.actorId && row.state === 'RESTARTING'));
});

test('a restart: ALIVE from a dead node is dropped, RESTARTING says where it went, ALIVE from there takes; when that node dies too the count runs out', async () => {
  const { node } = gcs();
  const [owner, first, second] = [await node(), await node(), await node()];
  const spec = actor(first.id, owner.id, { maxRestarts: 1 });
  await owner.client.registerActor(spec);
  assert.equal((await owner.client.updateActor(spec.actorId, 'ALIVE', { nodeId: first.id }))?.state, 'ALIVE');
  // RESTARTING is the GCS's to decide: a row that is ALIVE stays so.
  assert.equal((await owner.client.updateActor(spec.actorId, 'RESTARTING', { nodeId: second.id }))?.state, 'ALIVE');

  first.peer.close();
  await stateOf(owner.client, spec.actorId, 'RESTARTING');
  // A late ALIVE of the lost instance changes nothing.
  assert.equal((await owner.client.updateActor(spec.actorId, 'ALIVE', { nodeId: first.id }))?.state, 'RESTARTING');
  assert.equal((await owner.client.updateActor(spec.actorId, 'RESTARTING', { nodeId: second.id }))?.nodeId, second.id);
  const alive = await second.client.updateActor(spec.actorId, 'ALIVE', { nodeId: second.id, numRestarts: 1 });
  assert.deepEqual([alive?.state, alive?.nodeId, alive?.numRestarts], ['ALIVE', second.id, 1]);

  second.peer.close();
  const dead = await stateOf(owner.client, spec.actorId, 'DEAD');
  assert.match(dead.reason ?? '', /after 1 restart\(s\), and it has no restarts left \(maxRestarts: 1\)/);
});

test("restarts counted by the host (worker deaths) count against node deaths too: one maxRestarts", async () => {
  const { node } = gcs();
  const [owner, host] = [await node(), await node()];
  const spec = actor(host.id, owner.id, { maxRestarts: 2 });
  await owner.client.registerActor(spec);
  // Two local restarts (its worker died twice), reported with ALIVE.
  await host.client.updateActor(spec.actorId, 'ALIVE', { nodeId: host.id, numRestarts: 2 });
  host.peer.close();
  assert.match((await stateOf(owner.client, spec.actorId, 'DEAD')).reason ?? '', /after 2 restart\(s\)/);
});

test('the owner dies: its actors that are not detached end wherever they run; detached ones live on', async () => {
  const { node } = gcs();
  const [driver, host] = [await node(), await node()];
  const plain = actor(host.id, driver.id, { maxRestarts: -1 });
  const detached = actor(host.id, driver.id, { detached: true, name: 'keeper' });
  await driver.client.registerActor(plain);
  await driver.client.registerActor(detached);
  driver.peer.close();
  assert.match((await stateOf(host.client, plain.actorId, 'DEAD')).reason ?? '', /its owner's node .* died \(an actor that is not detached ends with its owner\)/);
  assert.equal((await host.client.getNamedActor('keeper', 'ns'))?.actorId, detached.actorId);
  assert.equal((await host.client.getActor(detached.actorId))?.detached, true);
});
