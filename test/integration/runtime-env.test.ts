// Runtime environments (envVars, workingDir) at init(), per task and per actor, with Ray's
// inheritance, after python/ray/tests/test_runtime_env_env_vars.py and
// test_runtime_env_working_dir.py.
import assert from 'node:assert/strict';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { InvalidOptionError, get, getRuntimeContext, init, remote, shutdown } from 'miniray';

const readVar = remote((name: string) => process.env[name] ?? null);
const readVars = remote((names: string[]) => names.map((name) => process.env[name] ?? null));
const workerOf = remote(async () => {
  const { getRuntimeContext } = await import('miniray');
  return getRuntimeContext().workerId;
});
/** A child task from inside a task: it inherits the parent's environment. */
const nested = remote(async (name: string, childEnv: Record<string, string> | null) => {
  const { remote, get } = await import('miniray');
  const child = remote((n: string) => process.env[n] ?? null);
  const fn = childEnv === null ? child : child.options({ runtimeEnv: { envVars: childEnv } });
  return get(fn.remote(name));
});
/** Sets a variable in its worker's process.env: it must not be seen by tasks of other environments. */
const pollute = remote((name: string) => {
  process.env[name] = 'polluted';
  return true;
});
class EnvActor {
  read(name: string): string | null {
    return process.env[name] ?? null;
  }
  async child(name: string): Promise<string | null> {
    const { remote, get } = await import('miniray');
    return get(remote((n: string) => process.env[n] ?? null).remote(name));
  }
}
const readFile = remote(async (name: string) => {
  const { readFileSync } = await import('node:fs');
  return { text: readFileSync(name, 'utf8'), cwd: process.cwd() };
});
const contextEnv = remote(async () => {
  const { getRuntimeContext } = await import('miniray');
  return getRuntimeContext().runtimeEnv;
});

describe('runtime environments', () => {
  let dir: string;
  before(async () => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'miniray-env-test-')));
    writeFileSync(join(dir, 'data.txt'), 'hello from the working dir');
    await init({ numCpus: 2, runtimeEnv: { envVars: { JOB_VAR: 'job', SHARED: 'from-job' } } });
  });
  after(async () => {
    await shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  test('test_env_vars_job_level: init({ runtimeEnv }) sets the variables of every task', async () => {
    assert.deepEqual(await get(readVars.remote(['JOB_VAR', 'SHARED'])), ['job', 'from-job']);
    // The driver's own environment is left as it was (as Ray's driver).
    assert.equal(process.env['JOB_VAR'], undefined);
    assert.deepEqual(getRuntimeContext().runtimeEnv, { envVars: { JOB_VAR: 'job', SHARED: 'from-job' } });
  });

  test('test_environment_variables_task: a task sees its envVars, merged over the job\'s', async () => {
    const task = readVars.options({ runtimeEnv: { envVars: { TASK_VAR: 'task', SHARED: 'from-task' } } });
    assert.deepEqual(await get(task.remote(['TASK_VAR', 'SHARED', 'JOB_VAR'])), ['task', 'from-task', 'job']);
    assert.deepEqual(await get(contextEnv.options({ runtimeEnv: { envVars: { TASK_VAR: 'task' } } }).remote()), {
      envVars: { JOB_VAR: 'job', SHARED: 'from-job', TASK_VAR: 'task' },
    });
  });

  test('test_environment_variables_nested_task: children inherit the parent\'s envVars; their own win', async () => {
    const parent = nested.options({ runtimeEnv: { envVars: { PARENT_VAR: 'parent', SHARED: 'from-parent' } } });
    assert.equal(await get(parent.remote('PARENT_VAR', null)), 'parent');
    assert.equal(await get(parent.remote('SHARED', null)), 'from-parent');
    assert.equal(await get(parent.remote('JOB_VAR', null)), 'job');
    assert.equal(await get(parent.remote('SHARED', { SHARED: 'from-child' })), 'from-child');
    assert.equal(await get(parent.remote('PARENT_VAR', { OTHER: 'x' })), 'parent');
  });

  test('test_environment_variables_actor: an actor and the tasks its methods submit see its envVars', async () => {
    const actor = remote(EnvActor).options({ runtimeEnv: { envVars: { ACTOR_VAR: 'actor' } } }).remote();
    assert.equal(await get(actor.read.remote('ACTOR_VAR')), 'actor');
    assert.equal(await get(actor.read.remote('JOB_VAR')), 'job');
    assert.equal(await get(actor.child.remote('ACTOR_VAR')), 'actor');
    const shared = remote(EnvActor).options({ isolation: 'shared', runtimeEnv: { envVars: { ACTOR_VAR: 'shared-actor' } } }).remote();
    const plain = remote(EnvActor).options({ isolation: 'shared' }).remote();
    assert.equal(await get(shared.read.remote('ACTOR_VAR')), 'shared-actor');
    assert.equal(await get(plain.read.remote('ACTOR_VAR')), null);
  });

  test('test_environment_variables_multitenancy: tasks of different environments never share a worker', async () => {
    const a = readVar.options({ runtimeEnv: { envVars: { TENANT: 'a' } } });
    const b = readVar.options({ runtimeEnv: { envVars: { TENANT: 'b' } } });
    const results = await get([...Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? a : b).remote('TENANT')), readVar.remote('TENANT')]);
    assert.deepEqual(results, ['a', 'b', 'a', 'b', 'a', 'b', null]);
    // A task that changes its worker's process.env leaks into nothing of another environment.
    await get(pollute.options({ runtimeEnv: { envVars: { TENANT: 'a' } } }).remote('POLLUTED'));
    assert.deepEqual(await get([b.remote('POLLUTED'), readVar.remote('POLLUTED')]), [null, null]);
    const envWorkers = new Set(await get([1, 2, 3].map(() => workerOf.options({ runtimeEnv: { envVars: { TENANT: 'a' } } }).remote())));
    const defaultWorkers = new Set(await get([1, 2, 3].map(() => workerOf.remote())));
    for (const id of envWorkers) assert.ok(!defaultWorkers.has(id), 'a worker ran tasks of two environments');
  });

  test('test_working_dir_basic: a task with workingDir runs there (relative paths, process.cwd())', async () => {
    const inDir = readFile.options({ runtimeEnv: { workingDir: dir } });
    assert.deepEqual(await get(inDir.remote('data.txt')), { text: 'hello from the working dir', cwd: dir });
    // Its envVars still merge over the job's, in the worker process.
    const both = readVars.options({ runtimeEnv: { workingDir: dir, envVars: { IN_DIR: 'yes' } } });
    assert.deepEqual(await get(both.remote(['IN_DIR', 'JOB_VAR'])), ['yes', 'job']);
  });

  test('test_input_validation: a bad runtimeEnv is an InvalidOptionError naming the field', () => {
    assert.throws(() => readVar.options({ runtimeEnv: { workingDir: join(dir, 'missing') } }), (error: unknown) => error instanceof InvalidOptionError && /workingDir/.test(error.message) && /not a directory/.test(error.message));
    assert.throws(() => readVar.options({ runtimeEnv: { envVars: { N: 1 as unknown as string } } }), (error: unknown) => error instanceof InvalidOptionError && /strings/.test(error.message));
    assert.throws(() => readVar.options({ runtimeEnv: { pip: ['x'] } as never }), (error: unknown) => error instanceof InvalidOptionError && /'pip' is not supported/.test(error.message));
    assert.throws(() => readVar.options({ runtimeEnv: { env_vars: { A: '1' } } as never }), (error: unknown) => error instanceof InvalidOptionError && /did you mean 'envVars'/.test(error.message));
  });
});
