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

function tableOf(nodes: FakeNode[]): PlacementGroupTable {
  return new PlacementGroupTable(new InMemoryStoreClient(), {
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
