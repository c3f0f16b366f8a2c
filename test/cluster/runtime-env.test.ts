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

test('test_runtime_env_working_dir across nodes: the driver uploads the job\'s, a task\'s and an actor\'s workingDir, and the node runs them in its own unpacked copy (excludes left out)', { timeout: 180_000 }, async () => {
  const c = cluster as Cluster;
  const target = c.nodes[1]?.nodeId as string;
  type Seen = { cwd: string; data: string; hasLogs?: boolean; nodeId?: string; workingDir?: string };
  const [outcome] = (await c.run('working-dir.mjs', [target])) as [{ job: Seen; again: Seen; own: Seen; inActor: Seen; driverWorkingDir: string }];
  const inCache = (dir: string) => dir.includes('miniray-working-dirs-') && dir.includes(target.slice(0, 16));
  assert.equal(outcome.job.nodeId, target);
  assert.equal(outcome.job.data, 'job data');
  assert.equal(outcome.job.hasLogs, false, 'excludes: logs/ was left out');
  assert.ok(inCache(outcome.job.cwd), `the task ran in the node's cache, not in ${outcome.job.cwd}`);
  assert.match(outcome.job.workingDir as string, /^gcs:\/\/_miniray_pkg_[0-9a-f]{64}\.tar\.gz$/);
  assert.equal(outcome.driverWorkingDir, outcome.job.workingDir, "getRuntimeContext().runtimeEnv names the job's package in the driver too");
  assert.equal(outcome.again.cwd, outcome.job.cwd, 'unpacked once: the second task runs in the same copy');
  assert.equal(outcome.own.data, 'task data');
  assert.ok(inCache(outcome.own.cwd) && outcome.own.cwd !== outcome.job.cwd);
  assert.equal(outcome.inActor.data, 'actor data');
  assert.ok(inCache(outcome.inActor.cwd));
});
