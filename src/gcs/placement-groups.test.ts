// The GCS's placement-group table with fake nodes: the two phases, all or none, and removal.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { PlacementGroupTable } from './placement-groups.js';
import { InMemoryStoreClient } from './store.js';
import type { GcsPeer } from './rpc.js';
import type { NodeIdHex, NodeInfo } from './types.js';

interface FakeNode {
  readonly info: NodeInfo;
  readonly peer: GcsPeer;
  readonly calls: string[];
  accept: boolean;
}

function fakeNode(id: string, cpus: number): FakeNode {
  const calls: string[] = [];
  const node: FakeNode = {
    info: { nodeId: id.repeat(32).slice(0, 32) as NodeIdHex, alive: true, address: `${id}:1`, resources: { CPU: cpus }, available: { CPU: cpus }, isDriver: false },
    calls,
    accept: true,
    peer: {
      hello: { role: 'node', nodeId: id },
      isClosed: false,
      request: async (method: string, body: unknown) => {
        const { indices, bundles } = body as { indices?: number[]; bundles?: { index: number }[] };
        calls.push(`${method} ${JSON.stringify(indices ?? bundles?.map((b) => b.index))}`);
        return method === 'prepareBundles' ? { ok: node.accept } : null;
      },
      notify: (method: string) => void calls.push(method),
      onClose: () => {},
      close: () => {},
    },
  };
  return node;
}

function tableOf(nodes: FakeNode[], store = new InMemoryStoreClient()): PlacementGroupTable {
  return new PlacementGroupTable(store, {
    nodes: async () => nodes.map((n) => n.info),
    peerOf: (nodeId) => nodes.find((n) => n.info.nodeId === nodeId)?.peer,
    peers: () => nodes.map((n) => n.peer),
    onError: (error) => assert.fail(String(error)),
  });
}

const pgId = 'a'.repeat(32);
const create = (table: PlacementGroupTable, strategy: 'STRICT_SPREAD' | 'PACK') =>
  table.create({ placementGroupId: pgId, namespace: 'default', strategy, bundles: [{ CPU: 1 }, { CPU: 1 }] });
const signal = new AbortController().signal;
// The table's wait timers do not keep a process alive (a GCS's must not): these tests do.
const keepAlive = setInterval(() => {}, 1000);
after(() => clearInterval(keepAlive));

test('placed: every chosen node prepares, then the group is CREATED, then every node commits', async () => {
  const nodes = [fakeNode('1', 1), fakeNode('2', 1)];
  const table = tableOf(nodes);
  await create(table, 'STRICT_SPREAD');
  const entry = await table.wait(pgId, 5000, signal);
  assert.equal(entry?.state, 'CREATED');
  assert.deepEqual([...(entry?.bundleNodes ?? [])].sort(), nodes.map((n) => n.info.nodeId).sort());
  for (const node of nodes) assert.deepEqual(node.calls.map((c) => c.split(' ')[0]), ['prepareBundles', 'commitBundles']);
});

test('all or none: a node that refuses its prepare makes the others give theirs back, and the group waits', async () => {
  const nodes = [fakeNode('1', 1), fakeNode('2', 1)];
  (nodes[1] as FakeNode).accept = false;
  const table = tableOf(nodes);
  await create(table, 'STRICT_SPREAD');
  const entry = await table.wait(pgId, 200, signal);
  assert.equal(entry?.state, 'PENDING');
  assert.deepEqual((nodes[0] as FakeNode).calls, ['prepareBundles [0]', 'cancelBundles']);
  assert.deepEqual((nodes[1] as FakeNode).calls, ['prepareBundles [1]']);
  // The node has room again (its report came): the next change places the group.
  (nodes[1] as FakeNode).accept = true;
  table.resourcesChanged();
  assert.equal((await table.wait(pgId, 5000, signal))?.state, 'CREATED');
});

test('removed: every node is told, the state is REMOVED for good, and the name is free', async () => {
  const nodes = [fakeNode('1', 2)];
  const table = tableOf(nodes);
  await table.create({ placementGroupId: pgId, name: 'g', namespace: 'default', strategy: 'PACK', bundles: [{ CPU: 1 }] });
  await table.wait(pgId, 5000, signal);
  assert.deepEqual(await table.remove(pgId), { found: true });
  assert.equal((await table.find(pgId))?.state, 'REMOVED');
  assert.equal((nodes[0] as FakeNode).calls.at(-1), 'placementGroupRemoved');
  assert.equal(await table.findNamed('g', 'default'), null);
  assert.deepEqual(await table.create({ placementGroupId: 'b'.repeat(32), name: 'g', namespace: 'default', strategy: 'PACK', bundles: [{ CPU: 1 }] }), { ok: true });
});

// Ray's GCS reloads its placement groups from Redis on restart (GcsPlacementGroupManager::Initialize)
// and schedules the pending ones again.
test('test_placement_group_gcs_restart (test_gcs_fault_tolerance.py): a GCS restarted on the same store places the groups still PENDING', async () => {
  const store = new InMemoryStoreClient();
  const none: FakeNode[] = [];
  const before = new PlacementGroupTable(store, {
    nodes: async () => none.map((n) => n.info),
    peerOf: () => undefined,
    peers: () => [],
    onError: (error) => assert.fail(String(error)),
  });
  await before.create({ placementGroupId: pgId, namespace: 'default', strategy: 'PACK', bundles: [{ CPU: 1 }], detached: true });
  assert.equal((await before.wait(pgId, 50, signal))?.state, 'PENDING');
  // The restarted GCS: a new table on the same store, and a node that came back with room.
  const nodes = [fakeNode('1', 2)];
  const after = tableOf(nodes, store);
  await after.recover();
  const entry = await after.wait(pgId, 5000, signal);
  assert.equal(entry?.state, 'CREATED');
  assert.deepEqual(entry?.bundleNodes, [(nodes[0] as FakeNode).info.nodeId]);
});

test("lifetime 'detached' (Ray's lifetime=\"detached\"): the group outlives its creator's node, while a group of that node ends with it", async () => {
  const nodes = [fakeNode('1', 4)];
  const table = tableOf(nodes);
  const creator = '9'.repeat(32) as NodeIdHex;
  await table.create({ placementGroupId: pgId, namespace: 'default', strategy: 'PACK', bundles: [{ CPU: 1 }], creatorNodeId: creator, detached: true });
  const owned = 'b'.repeat(32);
  await table.create({ placementGroupId: owned, namespace: 'default', strategy: 'PACK', bundles: [{ CPU: 1 }], creatorNodeId: creator });
  assert.equal((await table.wait(pgId, 5000, signal))?.detached, true);
  assert.equal((await table.find(pgId))?.creatorNodeId, undefined, 'no creator to end with');
  await table.wait(owned, 5000, signal);
  table.nodeDied(creator);
  await waitUntil(async () => (await table.find(owned))?.state === 'REMOVED');
  assert.equal((await table.find(pgId))?.state, 'CREATED');
});

test('a group no node could ever hold stays PENDING, and the answer to its creation warns once, naming the cluster', async () => {
  const nodes = [fakeNode('1', 2), fakeNode('2', 2)];
  const table = tableOf(nodes);
  const big = await table.create({ placementGroupId: pgId, name: 'big', namespace: 'default', strategy: 'PACK', bundles: [{ CPU: 4 }] });
  assert.ok(big.ok && big.warning !== undefined);
  assert.match(big.ok ? (big.warning ?? '') : '', /placement group 'big' \(a+\) cannot be placed: its bundle 0 needs 4 CPU, which the cluster's nodes cannot hold; it stays PENDING .* The cluster has 4 CPU in all, over 2 node\(s\)\./);
  const spread = await table.create({ placementGroupId: 'b'.repeat(32), namespace: 'default', strategy: 'STRICT_SPREAD', bundles: [{ CPU: 1 }, { CPU: 1 }, { CPU: 1 }] });
  assert.match(spread.ok ? (spread.warning ?? '') : '', /STRICT_SPREAD puts each of its 3 bundles on a different node/);
  const pack = await table.create({ placementGroupId: 'c'.repeat(32), namespace: 'default', strategy: 'STRICT_PACK', bundles: [{ CPU: 2 }, { CPU: 1 }] });
  assert.match(pack.ok ? (pack.warning ?? '') : '', /STRICT_PACK puts all its bundles on one node, and together they need 3 CPU/);
  const fits = await table.create({ placementGroupId: 'd'.repeat(32), namespace: 'default', strategy: 'SPREAD', bundles: [{ CPU: 2 }, { CPU: 2 }] });
  assert.deepEqual(fits, { ok: true });
  assert.equal((await table.wait(pgId, 100, signal))?.state, 'PENDING');
});

async function waitUntil(check: () => Promise<boolean>, limitMs = 5000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
