// A head that hangs with its connections open (SIGSTOP), across real processes: a driver's and a
// task's GCS calls fail after gcsRequestTimeoutMs with RequestTimeoutError, which says what to
// check, instead of waiting forever; once the head runs again, the same calls work.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Cluster } from './harness.js';

let cluster: Cluster | undefined;

before(async () => {
  // The head runs no tasks: the task runs on a node that is not hung, and only its GCS calls wait.
  cluster = await Cluster.start({ numCpus: 0 }, [{ numCpus: 1 }], { name: 'gcs-hang', env: { MINIRAY_GCS_REQUEST_TIMEOUT_MS: '1500' } });
});
after(async () => {
  await cluster?.stop();
});

interface Outcome {
  readonly ok?: true;
  readonly error?: string;
  readonly message?: string;
}

test('GCS calls of a driver and of a task fail with RequestTimeoutError while the head hangs, and work once it runs again', { timeout: 120_000 }, async () => {
  const c = cluster as Cluster;
  const [result] = (await c.run('gcs-hang.mjs', [String(c.head.proc.pid)], { timeoutMs: 90_000 })) as [
    { hung: { driverLookUp: Outcome; driverNodes: Outcome; taskLookUp: Outcome; elapsedMs: number }; after: { lookUp: Outcome; nodes: number } },
  ];
  const { hung } = result;
  for (const [what, outcome] of Object.entries({ 'getActor() in the driver': hung.driverLookUp, 'nodes() in the driver': hung.driverNodes, 'getActor() in a task': hung.taskLookUp })) {
    assert.equal(outcome.error, 'RequestTimeoutError', `${what}: ${JSON.stringify(outcome)}`);
    assert.match(outcome.message ?? '', /got no answer within 1500 ms: the GCS is connected but does not answer.*MINIRAY_GCS_REQUEST_TIMEOUT_MS/, what);
  }
  assert.ok(hung.elapsedMs >= 1_500, `the calls failed after ${hung.elapsedMs} ms, before the timeout`);
  // The head runs again: a lookup is answered (no such actor), and nodes() lists the head and the node.
  assert.equal(result.after.lookUp.error, 'ActorNotFoundError', JSON.stringify(result.after.lookUp));
  assert.ok(result.after.nodes === 2, `nodes() lists ${result.after.nodes}`);
});
