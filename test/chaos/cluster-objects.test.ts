/**
 * Lost objects across real processes (loopback): kill -9 the node that holds the only copy of
 * objects the driver still refers to, and check that each is rebuilt by lineage (issue 10); that a
 * ref owned by a node that dies fails with OwnerDiedError at once rather than hanging; and that an
 * actor method's result is rebuilt by its restarted actor when maxTaskRetries allows, and with
 * maxTaskRetries 0 (not rebuilt, as in Ray) fails with an ObjectLostError saying so.
 * Uses the fixture test/cluster/fixtures/objects.mjs; run `npm run build` first.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cluster, resultsOf, waitFor, type ClusterNode, type Proc } from '../cluster/harness.js';
import { report, scaled } from './figures.js';

interface ErrorOutcome {
  readonly value?: unknown;
  readonly error?: { readonly name: string; readonly message: string };
}

describe('lost objects across nodes (loopback)', { timeout: 600_000 }, () => {
  let cluster: Cluster | undefined;
  const c = (): Cluster => {
    if (cluster === undefined) throw new Error('the cluster did not start (see the before hook)');
    return cluster;
  };

  before(async () => {
    // A head and a node that survive; each check adds the node it kills.
    cluster = await Cluster.start({ numCpus: 1 }, [{ numCpus: 2 }], { name: 'objects' });
  });
  after(async () => {
    await cluster?.stop();
  });

  /** Kills a node with SIGKILL and waits until the GCS lists it dead; returns when it was killed. */
  async function kill(node: ClusterNode): Promise<{ killedAt: number; detectedMs: number }> {
    const killedAt = Date.now();
    process.kill(-node.proc.pid, 'SIGKILL');
    await node.proc.ended(30_000);
    c().nodes.splice(c().nodes.indexOf(node), 1);
    await waitFor(`node ${node.nodeId.slice(0, 8)} listed dead`, async () => (await c().nodeTable()).some((n) => n.nodeId === node.nodeId && !n.alive), 30_000);
    return { killedAt, detectedMs: Date.now() - killedAt };
  }

  /** Starts `scenario` with the victim, waits for READY, kills the victim, says go, and returns the driver's results. */
  async function scenarioAcrossKill(
    scenario: string,
    victim: ClusterNode,
    extra: Record<string, unknown> = {},
  ): Promise<{ driver: Proc; results: unknown[]; killedAt: number; detectedMs: number; sinceKillMs: number }> {
    const driver = c().driver('objects.mjs', [scenario, JSON.stringify({ victim: victim.nodeId, ...extra })]);
    await driver.match(/READY/, 180_000);
    const { killedAt, detectedMs } = await kill(victim);
    driver.send('go');
    const outcome = await driver.ended(180_000);
    assert.equal(outcome.code, 0, driver.describe());
    return { driver, results: resultsOf(outcome.stdout), killedAt, detectedMs, sinceKillMs: Date.now() - killedAt };
  }

  test('kill -9 the node holding the primary copy of referenced results: those copied elsewhere are read there, the others rebuilt by lineage, all right', async () => {
    const victim = await c().addNode({ numCpus: 2 });
    const reader = c().nodes[1] as ClusterNode;
    const count = scaled(20);
    const copied = 4;
    const n = 128 * 1024; // 1 MiB each: past the inline limit, so they stay on the victim
    const { results, detectedMs, sinceKillMs } = await scenarioAcrossKill('lineage', victim, { count, n, reader: reader.nodeId, copied });
    const [made, read] = results as [{ ready: number; kept: number }, { ms: number; right: number; chainedRight: boolean; fromCopies: number; rebuiltOn: string[] }];
    assert.deepEqual(made, { ready: count + 1, kept: copied }, 'all made (and some copied) before the kill');
    assert.equal(read.right, count, `every result has its value: ${JSON.stringify(read)}`);
    assert.equal(read.chainedRight, true, 'a result made from a lost result is rebuilt after its argument');
    assert.equal(read.fromCopies, copied, `the copied ones are read from their copies, not made again: ${JSON.stringify(read)}`);
    assert.ok(!read.rebuiltOn.includes(victim.nodeId), `the others were rebuilt elsewhere: ${read.rebuiltOn.join(', ')}`);
    report('lost-objects-rebuilt', {
      objects: count + 1,
      rebuilt: count + 1 - copied,
      fromCopies: copied,
      mibEach: (n * 8) / 2 ** 20,
      detectedMs,
      getAfterKillMs: read.ms,
      killToResultsMs: sinceKillMs,
      wrong: count - read.right,
    });
  });

  test('an actor result whose only copy is lost is rebuilt on the restarted actor when maxTaskRetries allows; with maxTaskRetries 0 it fails with ObjectLostError', async () => {
    const victim = await c().addNode({ numCpus: 1 });
    const { results } = await scenarioAcrossKill('actorResult', victim);
    const [{ outcome, ms, retried, rebuiltMs }] = results as [{ outcome: ErrorOutcome; ms: number; retried: ErrorOutcome & { nodeId?: string; right?: boolean }; rebuiltMs: number }];
    assert.equal(outcome.error?.name, 'ObjectLostError', JSON.stringify(outcome));
    assert.match(outcome.error?.message ?? '', /which died or could not be reached.*nor are the results of an actor created with maxTaskRetries 0/s);
    assert.equal(retried.right, true, `the lost result of the actor with maxTaskRetries is rebuilt, value right: ${JSON.stringify(retried)}`);
    assert.notEqual(retried.nodeId, victim.nodeId, 'by its instance restarted elsewhere');
    report('lost-actor-result', { errorMs: ms, rebuiltMs });
  });

  // Last: the victim's slow task keeps a worker of the surviving node busy (with no CPU) until it ends.
  test('refs owned by a node that dies (a put() there, a task it submitted) fail with OwnerDiedError, promptly', async () => {
    const victim = await c().addNode({ numCpus: 1 });
    const { results, killedAt, detectedMs } = await scenarioAcrossKill('ownerDied', victim);
    const [{ put, putAt, slow, slowAt }] = results as [{ put: ErrorOutcome; putAt: number; slow: ErrorOutcome; slowAt: number }];
    const [putMs, slowMs] = [putAt - killedAt, slowAt - killedAt];
    for (const outcome of [put, slow]) {
      assert.equal(outcome.error?.name, 'OwnerDiedError', JSON.stringify(outcome));
      assert.match(outcome.error?.message ?? '', /is owned by node .* which (died|could not be reached|is not alive).*lost for good, even from put\(\)/s);
    }
    // Promptly, counted from the kill: well under the 60 s get timeout (and the slow task's 120 s).
    assert.ok(putMs < 10_000 && slowMs < 10_000, `OwnerDiedError after ${putMs} ms (put) and ${slowMs} ms (pending)`);
    report('owner-died', { detectedMs, putGetMs: putMs, pendingGetMs: slowMs });
  });
});
