// Placement groups and resources on one node (the embedded default, a GCS in this process),
// named after the Ray tests they follow (python/ray/tests/test_placement_group*.py,
// test_resource_*.py).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ActorDiedError,
  InvalidOptionError,
  PlacementGroup,
  PlacementGroupRemovedError,
  availableResources,
  clusterResources,
  get,
  getPlacementGroup,
  getRuntimeContext,
  init,
  placementGroup,
  placementGroupTable,
  remote,
  removePlacementGroup,
  shutdown,
  state,
  wait,
} from 'miniray';
import { rejectsWith } from '../fixtures/assertions.js';
import { Gate, waitForGate } from '../fixtures/coordination.js';
import { OnGpuActor, gpuIdsBehindGate, lookAtResources, parentOfDiskChild, parentWaitsForChild } from '../fixtures/resources.js';

const T = { timeout: 60_000 };

/** Polls `check` until it holds (state that the nodes report every 100 ms). */
async function eventually(check: () => Promise<boolean>, what: string, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('placement groups in the embedded default', () => {
  before(async () => {
    await init({ numWorkers: 4, numCpus: 4, numGpus: 2, resources: { disk: 2 } });
  });
  after(async () => {
    await shutdown();
  });

  test('test_placement_group_ready: ready() is a ref get() and wait() take; wait() is true; the table says CREATED', T, async () => {
    const pg = placementGroup([{ CPU: 1 }, { CPU: 1 }], { strategy: 'PACK' });
    assert.equal(await get(pg.ready()), true);
    const { ready } = await wait([pg.ready()], { timeoutMs: 30_000 });
    assert.equal(ready.length, 1);
    assert.equal(await pg.wait(10_000), true);
    const row = await placementGroupTable(pg);
    assert.equal(row.state, 'CREATED');
    assert.equal(row.strategy, 'PACK');
    assert.deepEqual(row.bundles, { 0: { CPU: 1 }, 1: { CPU: 1 } });
    assert.equal(Object.keys(row.bundlesToNodeId).length, 2);
    await removePlacementGroup(pg);
    assert.equal((await placementGroupTable(pg)).state, 'REMOVED');
  });

  test('test_placement_group_pass_to_task: a PlacementGroup given to a task or an actor is a handle to the same group there (wait, ready, its children in its bundles)', T, async () => {
    const pg = placementGroup([{ CPU: 1 }, { CPU: 1 }], { strategy: 'PACK' });
    const useGroup = remote(
      async (group: PlacementGroup) => {
        const miniray = await import('miniray');
        const child = miniray.remote(async () => (await import('miniray')).getRuntimeContext().getAssignedResources());
        const placed = await group.wait(30_000);
        const resources = await miniray.get(child.options({ numCpus: 1, schedulingStrategy: { placementGroup: group, bundleIndex: 1 } }).remote());
        return { isHandle: group instanceof miniray.PlacementGroup, id: group.id, bundleCount: group.bundleCount, placed, ready: await miniray.get(group.ready()), resources };
      },
      { numCpus: 0 },
    );
    const seen = await get(useGroup.remote(pg));
    assert.deepEqual({ ...seen, resources: undefined }, { isHandle: true, id: pg.id, bundleCount: 2, placed: true, ready: true, resources: undefined });
    // Its child was placed in bundle 1 (a handle the options did not take would have failed it at .remote()).
    assert.deepEqual(seen.resources, { CPU: 1 });
    class Holder {
      constructor(private readonly group: PlacementGroup) {}
      strategy(): string {
        return `${this.group.id}:${this.group.strategy}:${this.group.bundleCount}`;
      }
    }
    const holder = remote(Holder, { numCpus: 0 }).remote(pg);
    assert.equal(await get(holder.strategy.remote()), `${pg.id}:PACK:2`);
    await removePlacementGroup(pg);
  });

  test('test_placement_group_strategies: PACK, SPREAD and STRICT_PACK fit on one node; STRICT_SPREAD of 2 cannot (see the infeasible test)', T, async () => {
    for (const strategy of ['PACK', 'SPREAD', 'STRICT_PACK'] as const) {
      const pg = placementGroup([{ CPU: 1 }, { CPU: 1 }], { strategy });
      assert.equal(await pg.wait(30_000), true, strategy);
      await removePlacementGroup(pg);
    }
  });

  // Ray keeps such a group PENDING with an autoscaler error ("No available node types can fulfill
  // resource request"), since a node may be added; the embedded default can never grow, so it is
  // refused at once, as its infeasible tasks are (waiting would be a hang with no way out).
  test('test_placement_group_infeasible (embedded): a group the node could never hold fails wait() and get(ready()) at once, naming the bundle and the node', T, async () => {
    const cases = [
      { bundles: [{ CPU: 1 }, { CPU: 8 }], strategy: 'PACK', option: 'bundles', message: /bundle 1 needs 8 CPU, but this node has 4 CPU, 2 GPU, 2 disk in all/ },
      { bundles: [{ CPU: 1 }, { CPU: 1 }], strategy: 'STRICT_SPREAD', option: 'strategy', message: /STRICT_SPREAD puts each of its 2 bundles on a different node, but this node has 4 CPU/ },
      { bundles: [{ CPU: 3 }, { CPU: 3 }], strategy: 'STRICT_PACK', option: 'bundles', message: /STRICT_PACK puts all its bundles on one node, and together they need 6 CPU, but this node has 4 CPU/ },
      { bundles: [{ CPU: 1, tpu: 1 }], strategy: 'PACK', option: 'bundles', message: /bundle 0 needs 1 CPU, 1 tpu/ },
    ] as const;
    for (const { bundles, strategy, option, message } of cases) {
      const pg = placementGroup(bundles, { strategy });
      // ready() asked before the refusal is known, and after it: both fail, neither waits.
      const early = pg.ready();
      const error = await rejectsWith(pg.wait(30_000), InvalidOptionError, message);
      assert.equal(error.option, option, strategy);
      await rejectsWith(get(early, { timeoutMs: 30_000 }), InvalidOptionError, message);
      await rejectsWith(get(pg.ready(), { timeoutMs: 30_000 }), InvalidOptionError, message);
      // So does work submitted to it (it would wait for the group for ever).
      await rejectsWith(get(remote(() => 1, { schedulingStrategy: { placementGroup: pg } }).remote(), { timeoutMs: 30_000 }), InvalidOptionError, message);
    }
    // Every CPU is still free: nothing was reserved for the refused groups.
    await eventually(async () => (await availableResources())['CPU'] === 4, 'every CPU free');
  });

  test('test_placement_group_task_resource_ids / test_resource_constraints: a bundle reserves its resources from the node, and tasks run in it', T, async () => {
    const before = await availableResources();
    const pg = placementGroup([{ CPU: 2, disk: 1 }]);
    await get(pg.ready());
    await eventually(async () => (await availableResources())['CPU'] === (before['CPU'] ?? 0) - 2, 'the bundle CPUs are taken');
    const totals = await clusterResources();
    assert.equal(totals[`CPU_group_0_${pg.id}`], 2);
    assert.equal(totals[`CPU_group_${pg.id}`], 2);
    assert.equal(totals[`disk_group_0_${pg.id}`], 1);
    const inGroup = remote(() => 'in the bundle', { numCpus: 1 });
    assert.equal(await get(inGroup.options({ schedulingStrategy: { placementGroup: pg, bundleIndex: 0 } }).remote()), 'in the bundle');
    assert.equal(await get(inGroup.options({ schedulingStrategy: { placementGroup: pg } }).remote()), 'in the bundle');
    await removePlacementGroup(pg);
    await eventually(async () => (await availableResources())['CPU'] === before['CPU'], 'the bundle CPUs are back');
    assert.equal((await clusterResources())[`CPU_group_${pg.id}`], undefined);
  });

  test('test_placement_group_bundle_capacity: a bundle of 1 CPU runs its 1-CPU tasks one at a time', T, async () => {
    const pg = placementGroup([{ CPU: 1 }]);
    await get(pg.ready());
    const gate = new Gate();
    try {
      const inBundle = waitForGate.options({ schedulingStrategy: { placementGroup: pg, bundleIndex: 0 } });
      const [a, b] = [inBundle.remote(gate.name, 'a'), inBundle.remote(gate.name, 'b')];
      await gate.whenWaiting(1);
      await assert.rejects(gate.whenWaiting(2, 500), /only 1 of 2 tasks started/);
      gate.open();
      assert.deepEqual(await get([a, b]), ['a', 'b']);
    } finally {
      gate.close();
      await removePlacementGroup(pg);
    }
  });

  test('test_pending_placement_group: a group that does not fit now is placed when resources free up', T, async () => {
    const gate = new Gate();
    try {
      // All 4 CPUs held by tasks: a bundle of 2 waits for them.
      const held = [0, 1, 2, 3].map((i) => waitForGate.remote(gate.name, `t${i}`));
      await gate.whenWaiting(4);
      const pg = placementGroup([{ CPU: 2 }]);
      assert.equal(await pg.wait(300), false);
      assert.equal((await placementGroupTable(pg)).state, 'PENDING');
      gate.open();
      await get(held);
      assert.equal(await pg.wait(30_000), true);
      await removePlacementGroup(pg);
    } finally {
      gate.close();
    }
  });

  test('test_placement_group_actor: an actor lives in its bundle; removing the group kills it', T, async () => {
    class Counter {
      n = 0;
      inc(): number {
        return ++this.n;
      }
    }
    const pg = placementGroup([{ CPU: 1, GPU: 1 }]);
    const actor = remote(Counter, { numCpus: 1, numGpus: 1, schedulingStrategy: { placementGroup: pg, bundleIndex: 0 } }).remote();
    assert.equal(await get(actor.inc.remote()), 1);
    await removePlacementGroup(pg);
    await rejectsWith(
      (async () => {
        for (;;) await get(actor.inc.remote());
      })(),
      ActorDiedError,
      /placement group .* was removed/,
    );
  });

  test('test_remove_placement_group: queued tasks fail with PlacementGroupRemovedError, a running one is stopped, later ones fail at once', T, async () => {
    const pg = placementGroup([{ CPU: 1 }]);
    await get(pg.ready());
    const gate = new Gate();
    try {
      const inBundle = waitForGate.options({ schedulingStrategy: { placementGroup: pg } });
      const running = inBundle.remote(gate.name, 'running');
      await gate.whenWaiting(1);
      const queued = inBundle.remote(gate.name, 'queued');
      await removePlacementGroup(pg);
      await rejectsWith(get(running), PlacementGroupRemovedError, /was removed/);
      await rejectsWith(get(queued), PlacementGroupRemovedError, /was removed/);
      await rejectsWith(get(inBundle.remote(gate.name, 'late')), PlacementGroupRemovedError, /was removed/);
    } finally {
      gate.close();
    }
  });

  test('test_remove_placement_group with runtimeEnv: tasks of the group waiting for an env worker fail, and those running on env workers are stopped, as plain ones', T, async () => {
    const pg = placementGroup([{ CPU: 2 }]);
    await get(pg.ready());
    const gate = new Gate();
    /** Its get() settles within a bound: a task the removal missed would wait for the gate until the test's timeout. */
    const settled = <V>(value: Promise<V>): Promise<V> =>
      Promise.race([value, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the task was neither failed nor stopped by the removal')), 15_000).unref())]);
    try {
      // Env workers run one task each, up to numWorkers (4) per environment: the fifth waits in the env queue.
      const inBundle = waitForGate.options({ numCpus: 0.25, runtimeEnv: { envVars: { IN_GROUP: '1' } }, schedulingStrategy: { placementGroup: pg } });
      const running = [0, 1, 2, 3].map((i) => inBundle.remote(gate.name, `running ${i}`));
      await gate.whenWaiting(4, 30_000);
      const queued = inBundle.remote(gate.name, 'queued');
      await removePlacementGroup(pg);
      for (const ref of [...running, queued]) await rejectsWith(settled(get(ref)), PlacementGroupRemovedError, /was removed/);
    } finally {
      gate.close();
    }
  });

  test('test_get_placement_group / test_placement_group_table: by name, the whole table and state.listPlacementGroups()', T, async () => {
    const pg = placementGroup([{ CPU: 1 }], { name: 'named-group', strategy: 'STRICT_PACK' });
    await get(pg.ready());
    const found = await getPlacementGroup('named-group');
    assert.equal(found.id, pg.id);
    assert.deepEqual(found.bundleSpecs, [{ CPU: 1 }]);
    const table = await placementGroupTable();
    assert.equal(table[pg.id]?.name, 'named-group');
    const listed = await state.listPlacementGroups();
    assert.ok(listed.some((entry) => entry.placementGroupId === pg.id && entry.state === 'CREATED'));
    const twin = placementGroup([{ CPU: 1 }], { name: 'named-group' });
    await rejectsWith(twin.wait(1000), InvalidOptionError, /exists already/);
    await rejectsWith(get(twin.ready(), { timeoutMs: 30_000 }), InvalidOptionError, /exists already/);
    await removePlacementGroup(pg);
    await assert.rejects(getPlacementGroup('named-group'), /no placement group is named 'named-group'/);
  });

  test('test_advanced.py test_gpu_ids / test_get_assigned_resources: a task holds GPU IDs of its own, in CUDA_VISIBLE_DEVICES too', T, async () => {
    const look = lookAtResources;
    const one = await get(look.options({ numGpus: 1 }).remote());
    assert.equal(one.ids.length, 1);
    assert.ok([0, 1].includes(one.ids[0] as number));
    assert.equal(one.cuda, String(one.ids[0]));
    assert.deepEqual(one.assigned, { CPU: 1, GPU: 1 });
    const two = await get(look.options({ numGpus: 2, numCpus: 0.5 }).remote());
    assert.deepEqual([...two.ids].sort(), [0, 1]);
    assert.equal(two.cuda, '0,1');
    assert.deepEqual(two.assigned, { CPU: 0.5, GPU: 2 });
    const none = await get(look.remote());
    assert.deepEqual(none, { ids: [], cuda: null, assigned: { CPU: 1 } });
    assert.deepEqual(getRuntimeContext().getAssignedResources(), {}, 'the driver holds nothing');
    assert.deepEqual(await get(look.options({ resources: { disk: 1 } }).remote()).then((r) => r.assigned), { CPU: 1, disk: 1 });
  });

  test('test_advanced.py test_multiple_gpus: two tasks running at once on one GPU each get different IDs; halves share one', T, async () => {
    const gate = new Gate();
    try {
      const held = gpuIdsBehindGate;
      const whole = [held.options({ numGpus: 1 }).remote(gate.name), held.options({ numGpus: 1 }).remote(gate.name)];
      await gate.whenWaiting(2);
      gate.open();
      const [a, b] = await get(whole);
      assert.notDeepEqual(a, b);
      const halves = await get([0, 1, 2, 3].map(() => held.options({ numGpus: 0.5, numCpus: 0 }).remote(gate.name)).map((ref) => ref));
      for (const ids of halves) assert.equal(ids.length, 1);
    } finally {
      gate.close();
    }
  });

  test('test_actor_gpus / test_placement_group_gpu_assigned: an actor keeps its GPU IDs; a bundle with a GPU gives its tasks that GPU', T, async () => {
    const actor = OnGpuActor.remote();
    const ids = await get(actor.ids.remote());
    assert.equal(ids.length, 1);
    assert.deepEqual(await get(actor.ids.remote()), ids);
    assert.equal((await get(actor.assigned.remote()))['GPU'], 1);
    const pg = placementGroup([{ CPU: 1, GPU: 1 }]);
    await get(pg.ready());
    const inBundle = await get(lookAtResources.options({ numGpus: 1, schedulingStrategy: { placementGroup: pg, bundleIndex: 0 } }).remote());
    assert.equal(inBundle.ids.length, 1);
    assert.notDeepEqual(inBundle.ids, ids, 'the bundle holds the GPU the actor does not');
    assert.deepEqual(inBundle.assigned, { CPU: 1, GPU: 1 });
    await removePlacementGroup(pg);
  });

  test('test_placement_group_capture_child_tasks: with captureChildTasks, a task\'s children run in its group; without, they do not', T, async () => {
    // The bundle reserves every disk of the node: a child that needs one runs only in the group.
    const pg = placementGroup([{ CPU: 2, disk: 2 }]);
    await get(pg.ready());
    const captured = parentOfDiskChild.options({ schedulingStrategy: { placementGroup: pg, captureChildTasks: true } });
    assert.equal(await get(captured.remote(30_000)), true, 'the captured child ran in the bundle');
    const free = parentOfDiskChild.options({ schedulingStrategy: { placementGroup: pg } });
    assert.equal(await get(free.remote(300)), false, 'an uncaptured child waits for a disk outside the group');
    await removePlacementGroup(pg);
  });

  // Ray raises at placement_group() ("Failed to create placement group ... because name ... already
  // exists"); placementGroup() returns at once here, so the refusal arrives with wait() and ready().
  test('test_placement_group_name_collision: a taken name fails wait() and get(ready()) with InvalidOptionError (ready() asked first: it does not hang)', T, async () => {
    const first = placementGroup([{ CPU: 1 }], { name: 'taken' });
    await get(first.ready());
    const twin = placementGroup([{ CPU: 1 }], { name: 'taken' });
    const ready = twin.ready();
    const error = await rejectsWith(get(ready, { timeoutMs: 30_000 }), InvalidOptionError, /a placement group named 'taken' exists already in namespace 'default'/);
    assert.equal(error.option, 'name');
    await rejectsWith(twin.wait(1000), InvalidOptionError, /exists already/);
    // Its name still belongs to the first, which is placed as before.
    assert.equal((await getPlacementGroup('taken')).id, first.id);
    await removePlacementGroup(first);
    // Once the first is removed, the name is free again.
    const again = placementGroup([{ CPU: 1 }], { name: 'taken' });
    assert.equal(await get(again.ready()), true);
    await removePlacementGroup(again);
  });

  // Ray's _validate_resource_shape: "Cannot schedule f with the placement group because the
  // resource request {'CPU': 2} cannot fit into any bundles for the placement group", a ValueError
  // at .remote(); and "placement group bundle index 5 is invalid".
  test('test_placement_group_bundle_resource_shape: a task or actor asking more than its bundle (or any bundle) holds is refused at submission; so is an index out of range', T, async () => {
    const pg = placementGroup([{ CPU: 1 }, { CPU: 2, disk: 1 }]);
    await get(pg.ready());
    const two = remote(() => 1, { numCpus: 2, name: 'two' });
    assert.throws(
      () => two.options({ schedulingStrategy: { placementGroup: pg, bundleIndex: 0 } }).remote(),
      (e: unknown) => e instanceof InvalidOptionError && e.option === 'numCpus' && /task two asks for 2 CPU, more than bundle 0 of its placement group holds \(1 CPU\)/.test(e.message),
    );
    assert.equal(await get(two.options({ schedulingStrategy: { placementGroup: pg, bundleIndex: 1 } }).remote()), 1);
    assert.equal(await get(two.options({ schedulingStrategy: { placementGroup: pg } }).remote()), 1, 'bundle 1 holds it');
    assert.throws(
      () => remote(() => 1, { numCpus: 3 }).options({ schedulingStrategy: { placementGroup: pg } }).remote(),
      (e: unknown) => e instanceof InvalidOptionError && /asks for 3 CPU, which no bundle of its placement group can hold \(bundle 0: 1 CPU; bundle 1: 2 CPU, 1 disk\)/.test(e.message),
    );
    assert.throws(
      () => remote(() => 1, { numCpus: 0, resources: { disk: 2 } }).options({ schedulingStrategy: { placementGroup: pg } }).remote(),
      (e: unknown) => e instanceof InvalidOptionError && e.option === 'resources' && /2 disk/.test(e.message),
    );
    assert.throws(
      () => remote(() => 1, { numGpus: 1 }).options({ schedulingStrategy: { placementGroup: pg } }).remote(),
      (e: unknown) => e instanceof InvalidOptionError && e.option === 'numGpus',
    );
    class Big {
      ping(): string {
        return 'pong';
      }
    }
    assert.throws(
      () => remote(Big, { numCpus: 2, schedulingStrategy: { placementGroup: pg, bundleIndex: 0 } }).remote(),
      (e: unknown) => e instanceof InvalidOptionError && /actor Big asks for 2 CPU, more than bundle 0/.test(e.message),
    );
    for (const bundleIndex of [2, -2, 0.5]) {
      assert.throws(
        () => remote(() => 1, { schedulingStrategy: { placementGroup: pg, bundleIndex } }),
        (e: unknown) => e instanceof InvalidOptionError && e.option === 'schedulingStrategy' && /bundleIndex -1 \(any bundle\) or an index of one of its 2 bundle\(s\) \(0 to 1\)/.test(e.message),
        String(bundleIndex),
      );
    }
    await removePlacementGroup(pg);
  });

  // Ray releases the CPUs of a worker blocked in ray.get, a bundle's included: a task that waits
  // for its child in the same bundle lets the child run there (checked on Ray 2.60 with two
  // 1-CPU bundles, parent and child in bundle 0).
  test('test_placement_group_blocked_get: a task waiting in get() for its child lends its bundle CPU, so the child runs in the same 1-CPU bundle', T, async () => {
    const pg = placementGroup([{ CPU: 1 }]);
    await get(pg.ready());
    const parent = parentWaitsForChild.options({ schedulingStrategy: { placementGroup: pg, bundleIndex: 0, captureChildTasks: true } });
    assert.equal(await get(parent.remote(), { timeoutMs: 30_000 }), 7);
    // The bundle has its CPU again, once, for the next task (no CPU made or lost by the loan).
    assert.equal(await get(parent.remote(), { timeoutMs: 30_000 }), 7);
    await eventually(async () => (await availableResources())[`CPU_group_${pg.id}`] === 1, "the bundle's CPU free again");
    await removePlacementGroup(pg);
  });

  test('bad placement-group options are refused at once, naming the option', T, async () => {
    assert.throws(() => placementGroup([]), (e: unknown) => e instanceof InvalidOptionError && e.option === 'bundles');
    assert.throws(() => placementGroup([{ CPU: 0 }]), (e: unknown) => e instanceof InvalidOptionError && /reserves nothing/.test(e.message));
    assert.throws(() => placementGroup([{ CPU: 1 }], { strategy: 'NEAR' as 'PACK' }), (e: unknown) => e instanceof InvalidOptionError && e.option === 'strategy');
    // A misspelled option is refused with a did-you-mean (a new user's trial found it ignored).
    assert.throws(() => placementGroup([{ CPU: 1 }], { stratgy: 'SPREAD' } as never), (e: unknown) => e instanceof InvalidOptionError && /strategy/.test(e.message));
    // Ray: "Placement group `lifetime` argument must be either `None` or 'detached'".
    assert.throws(() => placementGroup([{ CPU: 1 }], { lifetime: 'forever' as 'detached' }), (e: unknown) => e instanceof InvalidOptionError && e.option === 'lifetime' && /'detached'/.test(e.message));
    const pg = placementGroup([{ CPU: 1 }]);
    assert.throws(
      () => remote(() => 1, { schedulingStrategy: { placementGroup: pg, bundleIndex: 1 } }),
      (e: unknown) => e instanceof InvalidOptionError && /bundleIndex -1 \(any bundle\) or an index of one of its 1 bundle/.test(e.message),
    );
    await removePlacementGroup(pg);
  });
});
