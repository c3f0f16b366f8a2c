import assert from 'node:assert/strict';
import { test } from 'node:test';
import { placeBundles } from './placement.js';
import { bundleResources, groupDemand, groupOf, groupsIn, plainOf } from './resources.js';

const nodes = (...cpus: number[]) => cpus.map((CPU, i) => ({ nodeId: `n${i}`, free: { CPU } }));

test('placeBundles: STRICT_PACK needs one node for all; PACK packs where it can and spills where it must', () => {
  assert.deepEqual(placeBundles([{ CPU: 1 }, { CPU: 1 }], 'STRICT_PACK', nodes(1, 2)), ['n1', 'n1']);
  assert.equal(placeBundles([{ CPU: 1 }, { CPU: 1 }], 'STRICT_PACK', nodes(1, 1)), undefined);
  assert.deepEqual((placeBundles([{ CPU: 1 }, { CPU: 1 }], 'PACK', nodes(1, 1)) ?? []).sort(), ['n0', 'n1']);
  assert.deepEqual(placeBundles([{ CPU: 1 }, { CPU: 1 }], 'PACK', nodes(4, 4)), ['n0', 'n0']);
});

test('placeBundles: STRICT_SPREAD needs a node per bundle; SPREAD spreads where it can and doubles up where it must', () => {
  assert.equal(placeBundles([{ CPU: 1 }, { CPU: 1 }], 'STRICT_SPREAD', nodes(4)), undefined);
  assert.deepEqual((placeBundles([{ CPU: 1 }, { CPU: 1 }], 'STRICT_SPREAD', nodes(1, 1)) ?? []).sort(), ['n0', 'n1']);
  assert.deepEqual(placeBundles([{ CPU: 1 }, { CPU: 1 }], 'SPREAD', nodes(4)), ['n0', 'n0']);
  assert.deepEqual((placeBundles([{ CPU: 1 }, { CPU: 1 }], 'SPREAD', nodes(4, 4)) ?? []).sort(), ['n0', 'n1']);
  assert.equal(placeBundles([{ GPU: 1 }], 'PACK', nodes(4)), undefined, 'a resource no node has');
});

test('resources of a bundle and a demand in a group, as Ray names them', () => {
  const pg = 'a'.repeat(32);
  assert.deepEqual(bundleResources(pg, 1, { CPU: 2, GPU: 0 }), {
    [`CPU_group_1_${pg}`]: 2,
    [`CPU_group_${pg}`]: 2,
    [`bundle_group_1_${pg}`]: 1000,
    [`bundle_group_${pg}`]: 1000,
  });
  assert.deepEqual(groupDemand(pg, 0, 1, { disk: 1 }), { [`CPU_group_0_${pg}`]: 1, [`CPU_group_${pg}`]: 1, [`disk_group_0_${pg}`]: 1, [`disk_group_${pg}`]: 1 });
  assert.deepEqual(groupDemand(pg, -1, 0, { bundle: 0.001 }), { [`bundle_group_${pg}`]: 0.001 });
  assert.equal(groupOf(`my_res_group_3_${pg}`), pg);
  assert.deepEqual(plainOf(`my_res_group_3_${pg}`), { name: 'my_res', bundleIndex: 3 });
  assert.deepEqual(plainOf(`GPU_group_${pg}`), { name: 'GPU', bundleIndex: -1 });
  assert.equal(groupOf('disk'), undefined);
  assert.deepEqual(groupsIn({ disk: 1 }), []);
  assert.deepEqual(groupsIn(undefined), []);
});
