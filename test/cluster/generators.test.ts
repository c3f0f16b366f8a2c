// Generators on a cluster: a generator task (and an actor's generator method) that runs on another
// node streams its items back to its owner, the driver, as they are yielded: small ones inline,
// large ones pulled from the node that made them; its error arrives at the next item; backpressure
// holds across nodes.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Cluster, resultsOf, type ClusterNode } from './harness.js';

describe('generators on a cluster (loopback)', { timeout: 180_000 }, () => {
  let cluster: Cluster | undefined;
  let dir: string;
  const c = (): Cluster => {
    if (cluster === undefined) throw new Error('the cluster did not start (see the before hook)');
    return cluster;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'miniray-gen-cluster-'));
    cluster = await Cluster.start({ numCpus: 0 }, [{ numCpus: 2 }], { name: 'generators' });
  });
  after(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('test_generator_dist_chain: a generator task on another node streams its items back to the owner', async () => {
    const node = c().nodes[1] as ClusterNode;
    const driver = c().driver('generators.mjs', [JSON.stringify({ nodeId: node.nodeId, dir })]);
    const outcome = await driver.ended(120_000);
    assert.equal(outcome.code, 0, driver.describe());
    const [result] = resultsOf(outcome.stdout) as [
      {
        ranOn: string; beforeGate: boolean; largeLength: number; largeByte: number; error: string; done: boolean; squares: number[]; items: string[]; driver: string;
        waitReady: number; afterWait: number; dynamicItems: string[]; staticItems: string[]; partialLength: number; partialValue: string; partialError: string;
      },
    ];
    assert.equal(result.ranOn, node.nodeId);
    assert.notEqual(result.driver, node.nodeId);
    assert.equal(result.beforeGate, true, 'the first item came while the task still ran');
    assert.equal(result.largeLength, 300 * 1024);
    assert.equal(result.largeByte, 7);
    assert.match(result.error, /^TaskError: .*RangeError: the end/);
    assert.equal(result.done, true);
    assert.deepEqual(result.squares, [0, 1, 4, 9, 16, 25]);
    assert.deepEqual(result.items, ['item 0', 'item 1', 'item 2']);
    // wait([gen]) with the items made on the other node; wait read nothing.
    assert.equal(result.waitReady, 1);
    assert.equal(result.afterWait, 0);
    // An actor generator method there with numReturns 'dynamic' and 2.
    assert.deepEqual(result.dynamicItems, ['item 0', 'item 1']);
    assert.deepEqual(result.staticItems, ['item 0', 'item 1']);
    // A 'dynamic' task there that throws part-way: its value, then a ref that throws.
    assert.equal(result.partialLength, 2);
    assert.equal(result.partialValue, 'kept');
    assert.match(result.partialError, /part-way/);
  });
});
