// Health checks across real processes on loopback, with short settings: a node whose every worker
// is busy is not declared dead; a hung node (SIGSTOP) is, its tasks are retried elsewhere, and once
// it runs again it learns it is dead and exits instead of coming back as a zombie.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cluster, isAlive, resultsOf, waitFor, type ClusterNode } from './harness.js';

/**
 * Test settings: a silent node is declared dead after about 3 * 600 ms (1.8-2.4 s). Not shorter:
 * on a loaded machine a busy node's main thread may wait a few hundred ms for a core.
 */
const HEALTH = { MINIRAY_HEALTH_CHECK_PERIOD_MS: '300', MINIRAY_HEALTH_CHECK_TIMEOUT_MS: '600', MINIRAY_HEALTH_CHECK_FAILURE_THRESHOLD: '3' };
const DETECTION_MS = 3 * 600;

interface Row {
  readonly nodeId: string;
  readonly alive: boolean;
}

describe('health checks (loopback, short settings)', { timeout: 240_000 }, () => {
  let cluster: Cluster | undefined;
  const c = (): Cluster => {
    if (cluster === undefined) throw new Error('the cluster did not start (see the before hook)');
    return cluster;
  };

  before(async () => {
    // The head runs nothing (its CPUs are 0), so tasks go to the two nodes.
    cluster = await Cluster.start({ numCpus: 0 }, [{ numCpus: 2 }, { numCpus: 2 }], { name: 'health', env: HEALTH });
  });
  after(async () => {
    await cluster?.stop();
  });

  test('a node whose every worker runs a CPU-bound task for longer than the detection time stays alive', async () => {
    const busy = c().nodes[1] as ClusterNode;
    const spinMs = 3 * DETECTION_MS + 1_000;
    const [outcome] = (await c().run('health.mjs', ['busy', JSON.stringify({ nodeId: busy.nodeId, workers: 2, ms: spinMs })])) as [{ ran: string[]; elapsedMs: number; nodes: Row[] }];
    assert.deepEqual(outcome.ran, [busy.nodeId, busy.nodeId]);
    assert.ok(outcome.elapsedMs >= spinMs, `the tasks ran ${outcome.elapsedMs} ms`);
    // Death is final, so alive now means never declared dead while its workers were busy.
    assert.equal(outcome.nodes.find((n) => n.nodeId === busy.nodeId)?.alive, true);
    assert.equal((await c().nodeTable()).find((n) => n.nodeId === busy.nodeId)?.alive, true);
    assert.ok(busy.proc.running);
    // The head's own node (in the GCS's process, checked over an in-process pair) is alive too.
    assert.equal(outcome.nodes.find((n) => n.nodeId === c().head.nodeId)?.alive, true);
  });

  test('a hung node is declared dead, its tasks finish elsewhere, and when it runs again it learns it is dead and exits', async () => {
    const hung = c().nodes[2] as ClusterNode;
    const other = c().nodes[1] as ClusterNode;
    const tasks = 300;
    const driver = c().driver('health.mjs', ['job', JSON.stringify({ tasks, ms: 20 })]);
    await driver.match(/PROGRESS (\d*[1-9]\d*)/);
    process.kill(hung.proc.pid, 'SIGSTOP');
    const stoppedAt = performance.now();
    try {
      await waitFor('the hung node to be dead in the node table', async () => (await c().nodeTable()).find((n) => n.nodeId === hung.nodeId)?.alive === false, 30_000);
      const detectionMs = performance.now() - stoppedAt;
      console.log(`health: a hung node was declared dead after ${Math.round(detectionMs)} ms (settings 300/600/3)`);
      // Not before 3 checks timed out (the first may have been sent up to a period before the stop).
      assert.ok(detectionMs >= DETECTION_MS - 300 - 50, `declared dead after ${detectionMs} ms`);
      const outcome = await driver.ended(120_000);
      assert.equal(outcome.code, 0, driver.describe());
      const [result] = resultsOf(outcome.stdout) as [{ right: number; wrong: number; failed: Record<string, number>; byNode: Record<string, number>; nodes: Row[] }];
      assert.deepEqual({ right: result.right, wrong: result.wrong, failed: result.failed }, { right: tasks, wrong: 0, failed: {} });
      assert.ok((result.byNode[other.nodeId] ?? 0) > 0);
      assert.equal(result.nodes.find((n) => n.nodeId === hung.nodeId)?.alive, false);
    } finally {
      process.kill(hung.proc.pid, 'SIGCONT');
    }
    // Running again, it reads what the GCS sent it before cutting it off, and exits.
    const ended = await hung.proc.ended(60_000);
    assert.equal(ended.code, 1, hung.proc.describe());
    assert.match(ended.stderr, /the GCS declared this node \(\w+\) dead: it missed 3 health checks in a row/);
    assert.ok(!isAlive(hung.proc.pid));
    // No zombie: it is not listed alive again.
    assert.equal((await c().nodeTable()).find((n) => n.nodeId === hung.nodeId)?.alive, false);
    c().nodes.splice(c().nodes.indexOf(hung), 1);
  });
});
