// Part 5 of issue 11 across processes: a multiprocessing.Pool's processes on the cluster's nodes,
// its size checked against the cluster's CPUs, and wait(fetchLocal) with the value on another node.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cluster, type ClusterNode } from './harness.js';

describe('pool and wait(fetchLocal) across processes', { timeout: 300_000 }, () => {
  let cluster: Cluster | undefined;
  const c = (): Cluster => {
    if (cluster === undefined) throw new Error('the cluster did not start (see the before hook)');
    return cluster;
  };

  before(async () => {
    cluster = await Cluster.start({ numCpus: 1 }, [{ numCpus: 1 }], { name: 'pool' });
  });
  after(async () => {
    await cluster?.stop();
  });

  test('test_connect_to_ray: a pool of the cluster\'s CPUs runs; one more process is an InvalidOptionError', async () => {
    const [outcome] = (await c().run('pool.mjs', ['pool', JSON.stringify({ processes: 2 })])) as [
      { values: number[]; nodes: string[]; processes: number; tooBig: { error?: { name: string; message: string } } },
    ];
    assert.deepEqual(outcome.values, Array.from({ length: 40 }, (_, i) => i * 3));
    assert.equal(outcome.processes, 2);
    assert.equal(outcome.tooBig.error?.name, 'InvalidOptionError', JSON.stringify(outcome.tooBig));
    assert.match(outcome.tooBig.error?.message ?? '', /processes is 3, but the cluster has only 2 CPUs/);
  });

  test('test_wait_fetch_local: fetchLocal false reports a remote value without a copy; true, once the copy is here', async () => {
    const there = c().nodes[1] as ClusterNode;
    const [outcome] = (await c().run('pool.mjs', ['fetchLocal', JSON.stringify({ there: there.nodeId })])) as [
      { before: number; anywhere: number; afterAnywhere: number; local: number; afterLocal: number; length: number; size: number },
    ];
    assert.equal(outcome.anywhere, 1);
    assert.equal(outcome.local, 1);
    assert.ok(outcome.afterAnywhere - outcome.before < outcome.size / 2, `no copy after fetchLocal: false: ${JSON.stringify(outcome)}`);
    assert.ok(outcome.afterLocal - outcome.before >= outcome.size, `a copy after fetchLocal: true: ${JSON.stringify(outcome)}`);
    assert.equal(outcome.length, 1 << 20);
  });
});
