// Placement groups across real processes (a head and nodes on 127.0.0.1): bundles are reserved on
// several nodes at once by the GCS's prepare and commit, a group that cannot be placed stays
// pending until a node joins, and tasks run where their bundle is. Follows Ray's
// test_placement_group_3.py (test_placement_group_strict_spread / pending until a node is added).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cluster, resultsOf, waitFor } from './harness.js';
import { startRedis, type TestRedis } from './redis.js';

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

  test('test_placement_group_name_collision (cluster): a taken name fails get(ready()) and wait() with InvalidOptionError, and work in the group on another node with PlacementGroupRemovedError; nothing hangs', async () => {
    const [outcome] = (await c().run('placement-groups.mjs', ['nameTaken'])) as [
      { ready: { name: string; option: string; message: string }; waited: { name: string; message: string }; elsewhere: { name: string; message: string } },
    ];
    assert.equal(outcome.ready.name, 'InvalidOptionError', JSON.stringify(outcome));
    assert.equal(outcome.ready.option, 'name');
    assert.match(outcome.ready.message, /a placement group named 'taken' exists already/);
    assert.equal(outcome.waited.name, 'InvalidOptionError', JSON.stringify(outcome));
    assert.equal(outcome.elsewhere.name, 'PlacementGroupRemovedError', JSON.stringify(outcome));
    assert.match(outcome.elsewhere.message, /the GCS has no such group/);
  });

  // Ray: the group stays PENDING and the autoscaler says "No available node types can fulfill
  // resource request"; a node that can may join, so it is not refused in a cluster.
  test('test_placement_group_infeasible (cluster): a group no node can hold stays PENDING, with one warning naming the cluster\'s totals', async () => {
    const driver = c().driver('placement-groups.mjs', ['infeasible']);
    const outcome = await driver.ended(120_000);
    assert.equal(outcome.code, 0, driver.describe());
    const [row] = resultsOf(outcome.stdout) as [{ placed: boolean; state: string }];
    assert.deepEqual(row, { placed: false, state: 'PENDING' });
    const warnings = outcome.stderr.match(/placement group 'too-big' \([0-9a-f]{32}\) cannot be placed: its bundle 0 needs 64 CPU, which the cluster's nodes cannot hold; it stays PENDING[^\n]*The cluster has \d+ CPU in all, over \d+ node\(s\)\./g) ?? [];
    assert.equal(warnings.length, 1, outcome.stderr);
  });

  // Ray's test_placement_group_3.py test_detached_placement_group and test_placement_group_reschedule
  // (a bundle's node dies: RESCHEDULING, then CREATED where it fits again).
  test("test_detached_placement_group / test_placement_group_reschedule: a detached group outlives its driver; another driver uses it by name; its node dies: RESCHEDULING, then CREATED on a new node", async () => {
    const first = await c().addNode({ numCpus: 1, resources: { spot: 1 } });
    const [made] = (await c().run('placement-groups.mjs', ['createDetached', 'keeper', 'spot'])) as [{ id: string; ready: boolean }];
    assert.equal(made.ready, true);
    // Its driver is gone: the group is not (a non-detached one is REMOVED then: see test_placement_group_gc).
    const [used] = (await c().run('placement-groups.mjs', ['useNamed', 'keeper'])) as [{ ranOn: string; state: string; bundlesToNodeId: Record<string, string> }];
    assert.equal(used.state, 'CREATED');
    assert.equal(used.bundlesToNodeId['0'], first.nodeId, 'the only node with spot');
    assert.equal(used.ranOn, first.nodeId);
    await c().stopNode(first);
    const row = async () => ((await c().run('placement-groups.mjs', ['row', 'keeper'])) as [{ state: string; bundlesToNodeId: Record<string, string> } | null])[0];
    await waitFor('the group RESCHEDULING (no node left has spot)', async () => (await row())?.state === 'RESCHEDULING', 90_000);
    const second = await c().addNode({ numCpus: 1, resources: { spot: 1 } });
    const placed = await waitFor('the group CREATED again', async () => {
      const now = await row();
      return now?.state === 'CREATED' ? now : undefined;
    }, 90_000);
    assert.equal(placed.bundlesToNodeId['0'], second.nodeId);
    const [again] = (await c().run('placement-groups.mjs', ['useNamed', 'keeper', 'remove'])) as [{ ranOn: string }];
    assert.equal(again.ranOn, second.nodeId, 'its tasks run where its bundle is now');
    await c().stopNode(second);
  });
});

// Ray: test_gcs_fault_tolerance.py test_placement_group_recover_after_gcs_restart / pending groups
// are scheduled again by the restarted GCS (GcsPlacementGroupManager::Initialize).
describe('placement groups across a GCS restart on Redis', { timeout: 300_000 }, () => {
  let redis: TestRedis | undefined;
  let cluster: Cluster | undefined;
  before(async () => {
    redis = await startRedis();
    cluster = await Cluster.start({ numCpus: 1 }, [], { name: 'pg-redis', headArgs: ['--redis-address', redis.address, '--redis-namespace', 'pg-restart'] });
  });
  after(async () => {
    await cluster?.stop();
    await redis?.stop();
  });

  test('test_placement_group_gcs_restart: a group PENDING when the head is killed -9 is placed by the restarted GCS once a node that can hold it joins', async () => {
    const c = cluster as Cluster;
    const [made] = (await c.run('placement-groups.mjs', ['createDetached', 'later', 'late', 'pending'])) as [{ id: string; ready: boolean }];
    assert.equal(made.ready, false);
    await c.killHead();
    await c.restartHead({ numCpus: 1 });
    const row = async () => ((await c.run('placement-groups.mjs', ['row', 'later'])) as [{ state: string; bundlesToNodeId: Record<string, string> } | null])[0];
    assert.equal((await row())?.state, 'PENDING', 'the restarted GCS has it, from Redis');
    const node = await c.addNode({ numCpus: 1, resources: { late: 1 } });
    const placed = await waitFor('the group CREATED by the restarted GCS', async () => {
      const now = await row();
      return now?.state === 'CREATED' ? now : undefined;
    }, 90_000);
    assert.equal(placed.bundlesToNodeId['0'], node.nodeId);
  });
});
