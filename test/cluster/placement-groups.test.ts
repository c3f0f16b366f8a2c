// Placement groups across real processes (a head and nodes on 127.0.0.1): bundles are reserved on
// several nodes at once by the GCS's prepare and commit, a group that cannot be placed stays
// pending until a node joins, and tasks run where their bundle is. Follows Ray's
// test_placement_group_3.py (test_placement_group_strict_spread / pending until a node is added).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cluster, resultsOf, waitFor } from './harness.js';

describe('placement groups across processes', { timeout: 300_000 }, () => {
  let cluster: Cluster | undefined;
  const c = (): Cluster => {
    if (cluster === undefined) throw new Error('the cluster did not start (see the before hook)');
    return cluster;
  };
  before(async () => {
    cluster = await Cluster.start({ numCpus: 2 }, [], { name: 'pg' });
  });
  after(async () => {
    await cluster?.stop();
  });

  test('test_placement_group_strict_spread: pending while one node has CPUs, placed on two nodes once a node joins; its actor waits with it, and dies with it', async () => {
    const driver = c().driver('placement-groups.mjs', ['strictSpread']);
    await driver.match(/WAITING/, 120_000);
    const [early] = resultsOf(driver.stdout) as [{ early: boolean; pending: string }];
    assert.deepEqual(early, { early: false, pending: 'PENDING' });
    const joined = await c().addNode({ numCpus: 1 });
    const outcome = await driver.ended(120_000);
    assert.equal(outcome.code, 0, driver.describe());
    const [, placed, removed] = resultsOf(outcome.stdout) as [
      unknown,
      { state: string; bundlesToNodeId: Record<string, string>; inBundles: string[]; actorNode: string },
      { removed: string; actorAfter: { name: string; message: string } },
    ];
    assert.equal(placed.state, 'CREATED');
    const nodesOfBundles = [placed.bundlesToNodeId['0'], placed.bundlesToNodeId['1']];
    assert.deepEqual([...nodesOfBundles].sort(), [c().head.nodeId, joined.nodeId].sort(), 'one bundle on each node');
    assert.deepEqual(placed.inBundles, nodesOfBundles, 'each task ran where its bundle is');
    assert.equal(placed.actorNode, placed.bundlesToNodeId['1'], 'the actor made while the group was pending lives in bundle 1');
    assert.equal(removed.removed, 'REMOVED');
    assert.equal(removed.actorAfter.name, 'ActorDiedError', JSON.stringify(removed.actorAfter));
    assert.match(removed.actorAfter.message, /placement group .* was removed/);
    // Removing the group gave its CPUs back on both nodes.
    await waitFor('every CPU free again', async () => {
      const alive = (await c().nodeTable()).filter((n) => n.alive);
      return alive.every((n) => n.available['CPU'] === n.resources['CPU']);
    }, 30_000);
  });

  test('test_placement_group_gc (test_placement_group_4.py): a group ends with the driver that made it, and its CPUs come back', async () => {
    const [left] = (await c().run('placement-groups.mjs', ['leave'])) as [{ id: string; ready: boolean }];
    assert.equal(left.ready, true);
    await waitFor('the group of the driver that left is REMOVED', async () => {
      const [states] = (await c().run('placement-groups.mjs', ['table'])) as [Record<string, string>];
      return states[left.id] === 'REMOVED';
    }, 60_000);
    await waitFor('every CPU free again', async () => {
      const alive = (await c().nodeTable()).filter((n) => n.alive);
      return alive.every((n) => n.available['CPU'] === n.resources['CPU']);
    }, 30_000);
  });

  test('test_placement_group_strict_pack: both bundles on one node, their tasks there', async () => {
    const [outcome] = (await c().run('placement-groups.mjs', ['strictPack'])) as [{ ready: boolean; bundlesToNodeId: Record<string, string>; ran: string[] }];
    assert.equal(outcome.ready, true);
    const node = outcome.bundlesToNodeId['0'];
    assert.equal(outcome.bundlesToNodeId['1'], node);
    assert.equal(node, c().head.nodeId, 'only the head has 2 CPUs');
    assert.deepEqual(outcome.ran, [node, node, node, node]);
  });
});
