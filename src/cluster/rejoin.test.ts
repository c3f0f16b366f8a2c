// ClusterAgent.rejoin after the GCS restarted on its store: the node registers again under its ID,
// keeps the nodes it knew, drops the head node from before (which the new GCS says is dead), and
// refuses a GCS of another cluster. A real Node (no worker threads) and real GCSs in this process.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { GcsClient, GcsPublishes, GcsServer, InMemoryStoreClient, type NodeIdHex, type StoreClient } from '../gcs/index.js';
import { Router, localPair, type Peer } from '../net/index.js';
import { Node } from '../node/index.js';
import { ClusterAgent } from './agent.js';

const hex = (n: number): NodeIdHex => n.toString(16).padStart(32, '0') as NodeIdHex;
let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

/** A connection to `server`, whose publishes reach `publishes`. */
function connectTo(server: GcsServer, nodeId: string, publishes = new GcsPublishes()): { client: GcsClient; peer: Peer } {
  const serverRouter = new Router();
  server.register(serverRouter);
  const router = new Router();
  publishes.register(router);
  const [peer] = localPair({ hello: { role: 'node', nodeId }, router }, { hello: { role: 'gcs', nodeId: 'gcs' }, router: serverRouter });
  cleanups.push(() => peer.close());
  return { client: new GcsClient(peer, publishes), peer };
}

async function gcs(store: StoreClient, headNodeId: NodeIdHex): Promise<GcsServer> {
  const server = await GcsServer.start(store, { headNodeId, reconnectGraceMs: 60_000 });
  cleanups.push(() => server.close());
  return server;
}

test('rejoin: same node ID, the nodes it knew kept, the head node from before gone; another cluster is refused', { timeout: 20_000 }, async () => {
  const store = new InMemoryStoreClient();
  const [oldHead, other, newHead] = [hex(1), hex(2), hex(3)];
  const first = await gcs(store, oldHead);
  for (const id of [oldHead, other]) await connectTo(first, id).client.registerNode({ nodeId: id, address: `h:${id.slice(-1)}`, resources: { CPU: 1 }, isDriver: false });

  const node = new Node({ numWorkers: 0, numCpus: 1, resources: {}, objectStoreMemory: 16 << 20, workerResourceLimits: undefined, spillDirectory: undefined });
  const agent = new ClusterAgent({ node, canGrow: true, connect: () => Promise.reject(new Error('no links in this test')) });
  cleanups.push(async () => {
    agent.stop();
    await node.shutdown();
  });
  node.attachCluster(agent);
  const publishes = new GcsPublishes();
  await agent.join(connectTo(first, node.nodeId, publishes).client, 'here:1', false);
  assert.equal(agent.otherNodes, 2);

  // The head dies (its GCS with it); this node's GCS connection closes, and it stops placing work there.
  first.close();
  agent.nodeUnreachable(oldHead);
  assert.equal(agent.otherNodes, 1);

  const second = await gcs(store, newHead);
  await agent.rejoin(connectTo(second, node.nodeId, publishes).client);
  const table = new Map((await connectTo(second, 'watcher').client.getNodes()).map((n) => [n.nodeId, n.alive]));
  assert.equal(table.get(node.nodeId as NodeIdHex), true, 'registered again under its ID');
  assert.equal(table.get(oldHead), false);
  assert.equal(agent.otherNodes, 1, 'the other node is still known; the old head is not');

  const stranger = await gcs(new InMemoryStoreClient(), newHead);
  await assert.rejects(agent.rejoin(connectTo(stranger, node.nodeId, publishes).client), /another cluster .*restarted without --redis-address/);
});
