// Chaos across hosts: nodes that die in the middle of a job. (a) kill -9 a node in the middle of a
// 10,000-task job (loopback): 0 lost, 0 wrong, and what the kill cost against the same job without
// it. (b) netns (root): a node's link cut for 15 s is declared dead within the health checks'
// timeout (default settings), the job completes on the others, and when the link comes back the
// node learns it is dead and exits; it is never listed alive again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cluster, isAlive, netnsUnavailable, resultsOf, waitFor, type ClusterNode, type Proc } from '../cluster/harness.js';
import { report, scaled } from './figures.js';

interface JobResult {
  readonly right: number;
  readonly wrong: number;
  readonly failed: Record<string, number>;
  readonly byNode: Record<string, number>;
  readonly elapsedMs: number;
  readonly nodes: readonly { readonly nodeId: string; readonly alive: boolean }[];
}

const TASKS = scaled(10_000);

/** Waits until the driver has printed `PROGRESS n` with n >= `atLeast`. */
async function progressed(driver: Proc, atLeast: number, timeoutMs = 180_000): Promise<number> {
  return waitFor(`${driver.name} to report ${atLeast} tasks done`, () => {
    const counts = [...driver.stdout.matchAll(/PROGRESS (\d+)/g)].map((m) => Number(m[1]));
    const last = counts.at(-1);
    return last !== undefined && last >= atLeast ? last : undefined;
  }, timeoutMs);
}

async function jobResult(driver: Proc, timeoutMs: number): Promise<JobResult> {
  const outcome = await driver.ended(timeoutMs);
  assert.equal(outcome.code, 0, driver.describe());
  const [result] = resultsOf(outcome.stdout) as [JobResult];
  return result;
}

test(`kill -9 a node in the middle of a ${TASKS}-task job: 0 lost, 0 wrong`, { timeout: 900_000 }, async () => {
  const cluster = await Cluster.start({ numCpus: 0 }, [{ numCpus: 2 }, { numCpus: 2 }], { name: 'chaos-node-kill' });
  try {
    const job = JSON.stringify({ tasks: TASKS, ms: 1 });
    // A short job warms every node up (workers started, the function's definition known) first,
    // then the same job without a kill: what it costs when nothing goes wrong.
    await jobResult(cluster.driver('health.mjs', ['job', JSON.stringify({ tasks: 500, ms: 1 })]), 300_000);
    const baseline = await jobResult(cluster.driver('health.mjs', ['job', job]), 600_000);
    assert.deepEqual({ right: baseline.right, wrong: baseline.wrong, failed: baseline.failed }, { right: TASKS, wrong: 0, failed: {} });

    const victim = cluster.nodes[2] as ClusterNode;
    const survivor = cluster.nodes[1] as ClusterNode;
    const driver = cluster.driver('health.mjs', ['job', job]);
    const doneAtKill = await progressed(driver, Math.floor(TASKS * 0.3));
    const killedAt = performance.now();
    const outputAtKill = driver.stdout.length;
    process.kill(victim.proc.pid, 'SIGKILL');
    // How long the job stalled: until the next batch of results came back.
    const nextProgress = driver.match(/PROGRESS \d+/, 120_000, outputAtKill).then(() => performance.now() - killedAt);
    await waitFor('the killed node to be dead in the node table', async () => (await cluster.nodeTable()).find((n) => n.nodeId === victim.nodeId)?.alive === false, 60_000);
    const detectionMs = performance.now() - killedAt;
    const result = await jobResult(driver, 600_000);
    cluster.nodes.splice(cluster.nodes.indexOf(victim), 1);
    assert.deepEqual({ right: result.right, wrong: result.wrong, failed: result.failed }, { right: TASKS, wrong: 0, failed: {} });
    assert.ok((result.byNode[survivor.nodeId] ?? 0) > 0);
    assert.equal(result.nodes.find((n) => n.nodeId === victim.nodeId)?.alive, false);
    report('cluster node kill -9', {
      tasks: TASKS,
      lost: TASKS - result.right - result.wrong,
      wrong: result.wrong,
      doneAtKill,
      detectionMs: Math.round(detectionMs),
      nextProgressMs: Math.round(await nextProgress),
      baselineMs: baseline.elapsedMs,
      withKillMs: result.elapsedMs,
      costMs: result.elapsedMs - baseline.elapsedMs,
      onVictimBeforeKill: result.byNode[victim.nodeId] ?? 0,
    });
  } finally {
    await cluster.stop();
  }
});

const noNetns = netnsUnavailable();

test(
  'netns: a node cut off for 15 s is declared dead within the timeout, the job completes, and the node exits when the link comes back',
  { timeout: 600_000, skip: noNetns === undefined ? false : `needs network namespaces: ${noNetns}` },
  async () => {
    // Default health-check settings: what a user gets.
    const cluster = await Cluster.start({ numCpus: 0 }, [{ numCpus: 2 }, { numCpus: 2 }], { netns: true, name: 'chaos-node-cut' });
    const CUT_MS = 15_000;
    // Settings' defaults (src/config): 5 missed checks of 1000 ms, one a second.
    const LIMIT_MS = 5 * 1000 + 1000 + 1000;
    try {
      const victim = cluster.nodes[2] as ClusterNode;
      const survivor = cluster.nodes[1] as ClusterNode;
      const tasks = scaled(3_000);
      const driver = cluster.driver('health.mjs', ['job', JSON.stringify({ tasks, ms: 5 })]);
      await progressed(driver, Math.floor(tasks * 0.1));
      cluster.setLink(victim, false);
      const cutAt = performance.now();
      let detectionMs = NaN;
      try {
        await waitFor('the cut-off node to be dead in the node table', async () => (await cluster.nodeTable()).find((n) => n.nodeId === victim.nodeId)?.alive === false, 60_000);
        detectionMs = performance.now() - cutAt;
        const result = await jobResult(driver, 300_000);
        assert.deepEqual({ right: result.right, wrong: result.wrong, failed: result.failed }, { right: tasks, wrong: 0, failed: {} });
        assert.ok((result.byNode[survivor.nodeId] ?? 0) > 0);
        assert.equal(result.nodes.find((n) => n.nodeId === victim.nodeId)?.alive, false);
        assert.ok(victim.proc.running, 'the cut-off node does not know yet: it still runs');
        const left = CUT_MS - (performance.now() - cutAt);
        if (left > 0) await new Promise((resolve) => setTimeout(resolve, left)); // the cut lasts 15 s: a duration, not a wait for a condition
      } finally {
        cluster.setLink(victim, true);
      }
      const restoredAt = performance.now();
      const ended = await victim.proc.ended(120_000);
      const exitMs = performance.now() - restoredAt;
      cluster.nodes.splice(cluster.nodes.indexOf(victim), 1);
      assert.equal(ended.code, 1, victim.proc.describe());
      assert.match(ended.stderr, /the GCS declared this node \(\w+\) dead: it missed 5 health checks in a row/);
      assert.ok(!isAlive(victim.proc.pid));
      // No zombie: not listed alive again, and the cluster goes on with the others.
      assert.equal((await cluster.nodeTable()).find((n) => n.nodeId === victim.nodeId)?.alive, false);
      const after = await cluster.run('health.mjs', ['job', JSON.stringify({ tasks: 50, ms: 1 })]);
      assert.equal((after[0] as JobResult).right, 50);
      assert.ok(detectionMs <= LIMIT_MS, `declared dead after ${detectionMs} ms; the settings allow about ${LIMIT_MS} ms`);
      // How it learned: the GCS's nodeDead got through, or its connection was reset first and it asked.
      const learned = /asked after the connection/.test(ended.stderr) ? 'asked-after-reset' : 'told';
      report('cluster node link cut', { cutMs: CUT_MS, detectionMs: Math.round(detectionMs), tasks, lost: 0, exitAfterRestoreMs: Math.round(exitMs), learned });
    } finally {
      await cluster.stop();
    }
  },
);
