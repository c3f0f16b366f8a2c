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

test('test_runtime_context across nodes: a task on a `miniray start` node, its child there, and an actor there see their job\'s ID and namespace', { timeout: 180_000 }, async () => {
  const c = cluster as Cluster;
  const target = c.nodes[1]?.nodeId as string;
  const [outcome] = (await c.run('env-context.mjs', [target, 'context', JSON.stringify({ namespace: 'ctx-ns' })])) as [
    {
      driver: { jobId: string; namespace: string };
      task: { jobId: string; namespace: string; nodeId: string; child: { jobId: string; namespace: string; nodeId: string } };
      actor: { jobId: string; namespace: string; nodeId: string };
    },
  ];
  assert.match(outcome.driver.jobId, /^[0-9a-f]{8}$/);
  assert.equal(outcome.driver.namespace, 'ctx-ns');
  assert.equal(outcome.task.nodeId, target);
  assert.equal(outcome.task.jobId, outcome.driver.jobId, 'the job ID reaches the node that runs the task');
  assert.equal(outcome.task.namespace, 'ctx-ns');
  assert.deepEqual(outcome.task.child, { jobId: outcome.driver.jobId, namespace: 'ctx-ns', nodeId: target }, 'and the tasks it submits');
  assert.deepEqual(outcome.actor, { jobId: outcome.driver.jobId, namespace: 'ctx-ns', nodeId: target }, 'an actor\'s methods run as the job that created it');
});

test('test_namespace across drivers: a named actor is found by a driver of another namespace only when it names the namespace', { timeout: 180_000 }, async () => {
  const c = cluster as Cluster;
  const target = c.nodes[1]?.nodeId as string;
  const [made] = (await c.run('env-context.mjs', [target, 'makeNamed', JSON.stringify({ name: 'ns-keeper', namespace: 'team-a' })])) as [{ made: number; namespace: string }];
  assert.deepEqual(made, { made: 1, namespace: 'team-a' });
  // The second driver has its own (anonymous) namespace.
  const [seen] = (await c.run('env-context.mjs', [target, 'lookUp', JSON.stringify({ name: 'ns-keeper', namespace: 'team-a' })])) as [{ plain: string; marks: number }];
  assert.deepEqual(seen, { plain: 'ActorNotFoundError', marks: 2 });
});

test('test_cancel actor tasks across nodes: a queued call to an actor on another node is removed, a running async one has its signal aborted', { timeout: 180_000 }, async () => {
  const c = cluster as Cluster;
  const target = c.nodes[1]?.nodeId as string;
  const [outcome] = (await c.run('env-context.mjs', [target, 'cancelCalls'])) as [{ nodeId: string; queued: { error?: string }; running: { error?: string }; counts: { marks: number; aborted: number } }];
  assert.equal(outcome.nodeId, target);
  assert.equal(outcome.queued.error, 'TaskCancelledError');
  assert.equal(outcome.running.error, 'TaskCancelledError');
  assert.deepEqual(outcome.counts, { marks: 0, aborted: 1 }, 'the queued call never ran; the running one saw its signal abort');
});
