// Runtime environments across processes: a driver's job runtimeEnv (and a task's and an actor's
// own) reach tasks and actors it places on another node, whose workers are started in them.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Cluster } from './harness.js';

let cluster: Cluster | undefined;
before(async () => {
  cluster = await Cluster.start({ numCpus: 1 }, [{ numCpus: 1 }], { name: 'runtime-env' });
});
after(async () => {
  await cluster?.stop();
});

test('test_env_vars_job_level across nodes: tasks and actors on another node see the job\'s and their own envVars', { timeout: 180_000 }, async () => {
  const c = cluster as Cluster;
  const target = c.nodes[1]?.nodeId as string;
  const [outcome] = (await c.run('runtime-env.mjs', [target])) as [{ plain: { vars: unknown[]; nodeId: string }; own: { vars: unknown[]; nodeId: string }; inActor: unknown[] }];
  assert.equal(outcome.plain.nodeId, target);
  assert.deepEqual(outcome.plain.vars, ['job', 'job']);
  assert.deepEqual(outcome.own.vars, ['job', 'task']);
  assert.deepEqual(outcome.inActor, ['job', 'actor']);
});
