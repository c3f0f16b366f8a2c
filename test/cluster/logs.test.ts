// Task and actor output on a cluster (issue 12): a task that runs on another node prints; its lines
// reach the driver that submitted it, prefixed with that node, before the result printed after
// them, and the executing node's own stdout (a `miniray start` node's log) has them too.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LogLine } from '../../src/state/types.js';
import { Cluster, resultsOf, waitFor, type ClusterNode } from './harness.js';

describe('logs on a cluster (loopback)', { timeout: 180_000 }, () => {
  let cluster: Cluster | undefined;
  const c = (): Cluster => {
    if (cluster === undefined) throw new Error('the cluster did not start (see the before hook)');
    return cluster;
  };

  before(async () => {
    cluster = await Cluster.start({ numCpus: 0 }, [{ numCpus: 2 }], { name: 'logs' });
  });
  after(async () => {
    await cluster?.stop();
  });

  test("a task's and an actor's output on another node reach the driver's stdout, prefixed with that node", async () => {
    const node = c().nodes[1] as ClusterNode;
    const short = node.nodeId.slice(0, 8);
    const driver = c().driver('logs.mjs', [JSON.stringify({ nodeId: node.nodeId })]);
    const outcome = await driver.ended(120_000);
    assert.equal(outcome.code, 0, driver.describe());
    const [result, found] = resultsOf(outcome.stdout) as [{ words: string[]; driver: string }, { all: LogLine[]; byTask: LogLine[]; byActor: LogLine[] }];
    assert.deepEqual(result.words, ['a', 'b', 'c']);
    // state.getLog() (ClusterLogSource over the GCS's fan-out) finds them on the node that ran them.
    assert.deepEqual(
      found.byTask.map((line) => [line.nodeId, line.name, line.stream, line.text]),
      [
        [node.nodeId, 'shout', 'stdout', 'hello from a'],
        [node.nodeId, 'shout', 'stderr', 'complaint from a'],
        [node.nodeId, 'shout', 'stdout', 'no newline from a'],
      ],
    );
    assert.deepEqual(found.byActor.map((line) => [line.name, line.text]), [['Speaker', 'actor says c']]);
    assert.ok(found.all.every((line) => line.nodeId === node.nodeId), 'the driver and the head ran nothing');
    const lines = outcome.stdout.split('\n');
    const resultAt = lines.findIndex((line) => line.startsWith('RESULT '));
    for (const [text, name] of [['hello from a', 'shout'], ['hello from b', 'shout'], ['no newline from a', 'shout'], ['actor says c', 'Speaker']]) {
      const pattern = new RegExp(`^\\(${name} worker=[0-9a-f]{8} node=${short}\\) ${text}$`);
      const at = lines.findIndex((line) => pattern.test(line));
      assert.ok(at !== -1, `${pattern} not on the driver's stdout:\n${driver.describe()}`);
      assert.ok(at < resultAt, `'${text}' came after the result:\n${outcome.stdout}`);
    }
    assert.match(outcome.stderr, new RegExp(`^\\(shout worker=[0-9a-f]{8} node=${short}\\) complaint from a$`, 'm'));
    // The executing node's own log has them too (written there by its workers).
    await waitFor("the lines in the node's own stdout", async () => /\(shout worker=[0-9a-f]{8} node=\w{8}\) hello from b/.test(node.proc.stdout) || undefined, 30_000);
    assert.match(node.proc.stdout, new RegExp(`^\\(Speaker worker=[0-9a-f]{8} node=${short}\\) actor says c$`, 'm'));
  });
});
