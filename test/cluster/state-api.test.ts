// The state API across processes (loopback): a head, a node and a driver as real processes.
// listNodes shows all three, listObjects includes objects held on the other node, listWorkers the
// workers of both nodes, a task on the other node asks the same tables; and once the node is
// killed (kill -9), lists answer promptly with it DEAD or partial, never hang.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cluster, resultsOf } from './harness.js';

interface NodeRow {
  readonly nodeId: string;
  readonly state: string;
  readonly isHead: boolean;
  readonly isDriver: boolean;
}
interface ObjectRow {
  readonly objectId: string;
  readonly nodeId: string;
  readonly owner: string;
}
interface WorkerRow {
  readonly nodeId: string;
  readonly workerType: string;
}
interface Timed<R> {
  readonly ms: number;
  readonly records: readonly R[];
  readonly partial?: readonly string[];
}

describe('state API on a cluster (loopback)', { timeout: 300_000 }, () => {
  let cluster: Cluster | undefined;
  const c = (): Cluster => {
    if (cluster === undefined) throw new Error('the cluster did not start (see the before hook)');
    return cluster;
  };
  before(async () => {
    cluster = await Cluster.start({ numCpus: 1 }, [{ numCpus: 1 }], { name: 'state' });
  });
  after(async () => {
    await cluster?.stop();
  });

  test('lists show both nodes and the driver, objects and workers on the other node; a killed node is DEAD or partial, not a hang', async () => {
    const head = c().head;
    const other = c().nodes[1];
    assert.ok(other !== undefined);
    const driver = c().driver('state.mjs', [JSON.stringify({ other: other.nodeId })]);
    await driver.match(/READY/, 120_000);
    const [first] = resultsOf(driver.stdout) as [
      { driver: string; nodes: NodeRow[]; held: string; made: string; mine: string; objects: ObjectRow[]; workers: WorkerRow[]; task: { nodeId: string; nodes: string[] } },
    ];
    const byId = new Map(first.nodes.map((n) => [n.nodeId, n]));
    assert.equal(first.nodes.length, 3, JSON.stringify(first.nodes));
    assert.equal(byId.get(head.nodeId)?.isHead, true);
    assert.equal(byId.get(other.nodeId)?.isHead, false);
    assert.equal(byId.get(first.driver)?.isDriver, true);
    assert.ok(first.nodes.every((n) => n.state === 'ALIVE'));

    const objectsOn = (nodeId: string) => first.objects.filter((o) => o.nodeId === nodeId).map((o) => o.objectId);
    assert.ok(objectsOn(other.nodeId).includes(first.held), `the actor's put on the other node: ${JSON.stringify(first.objects)}`);
    assert.ok(objectsOn(first.driver).includes(first.mine), 'the driver\'s put on its own node');
    console.log(`# the large task result made on the other node is listed there: ${objectsOn(other.nodeId).includes(first.made)}; by its owner (the driver's node): ${objectsOn(first.driver).includes(first.made)}`);
    assert.ok(objectsOn(first.driver).includes(first.made) || objectsOn(other.nodeId).includes(first.made), 'the large result is listed');

    const workerNodes = new Set(first.workers.filter((w) => w.workerType !== 'driver').map((w) => w.nodeId));
    assert.ok(workerNodes.has(head.nodeId) && workerNodes.has(other.nodeId), `workers of both nodes: ${JSON.stringify(first.workers)}`);
    assert.ok(first.workers.some((w) => w.workerType === 'driver' && w.nodeId === first.driver));
    assert.ok(first.workers.some((w) => w.workerType === 'actor' && w.nodeId === other.nodeId), 'the actor\'s host');

    assert.equal(first.task.nodeId, other.nodeId, 'the task ran on the other node');
    assert.deepEqual([...first.task.nodes].sort(), first.nodes.map((n) => n.nodeId).sort(), 'a task there sees the same node table');

    process.kill(-other.proc.pid, 'SIGKILL');
    await other.proc.exited;
    driver.send('go');
    const outcome = await driver.ended(120_000);
    assert.equal(outcome.code, 0, driver.describe());
    const [, second] = resultsOf(outcome.stdout) as [unknown, { nodes: Timed<NodeRow>; objects: Timed<ObjectRow>; workers: Timed<WorkerRow> }];
    const killed = second.nodes.records.find((n) => n.nodeId === other.nodeId);
    for (const [what, list] of [['objects', second.objects], ['workers', second.workers]] as const) {
      const fromKilled = list.records.filter((r) => r.nodeId === other.nodeId);
      const dead = killed?.state === 'DEAD';
      const partial = list.partial?.includes(other.nodeId) ?? false;
      assert.ok(fromKilled.length === 0 || (!dead && !partial), `${what}: nothing from the killed node once it is DEAD or partial`);
      assert.ok(dead || partial || fromKilled.length === 0, `${what}: the killed node is DEAD (${killed?.state}) or partial (${JSON.stringify(list.partial)})`);
      assert.ok(list.ms < 20_000, `${what} answered in ${list.ms} ms, not a hang`);
      console.log(`# after kill -9 of a node: list ${what} in ${list.ms} ms, node ${killed?.state}, partial ${JSON.stringify(list.partial)}`);
    }
  });
});
