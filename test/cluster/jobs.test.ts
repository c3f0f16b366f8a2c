// The Jobs API end to end: a real head (`miniray start --head`, its dashboard on a free port),
// `miniray job submit --working-dir` of a script that joins the cluster through MINIRAY_ADDRESS and
// runs a task; its logs, its status; a long job stopped; the head stopping stops its jobs; no token
// is 401, a wrong one 403. Job processes run in process groups of their own (as on a real head):
// each is tracked by the harness, so that a failed test leaves none behind.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Cluster, Proc, cliMain, isAlive, resultsOf, trackGroup, waitFor, type Outcome } from './harness.js';

/** A job's script: joins the cluster, runs a task, prints RESULT, and with `hold`, waits to be stopped. */
const script = (hold: boolean) => `
import { readFileSync } from 'node:fs';
import { get, init, remote, shutdown } from 'miniray'; // the head's own miniray (docs/jobs.md)
const pgid = Number(readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[2]);
console.log('PID ' + process.pid + ' ' + pgid);
const { address } = await init();
const square = remote((x) => x * x);
const value = await get(square.remote(7));
console.log('RESULT ' + JSON.stringify({ value, address, submissionId: process.env.MINIRAY_JOB_SUBMISSION_ID, data: readFileSync('data.txt', 'utf8') }));
${hold ? "console.log('HOLDING'); setInterval(() => {}, 1000); setTimeout(() => process.exit(3), 120_000);" : 'await shutdown();'}
`;

describe('miniray job against a real head', { timeout: 240_000 }, () => {
  let cluster: Cluster | undefined;
  let url = '';
  let workDir = '';
  const c = (): Cluster => {
    if (cluster === undefined) throw new Error('the cluster did not start (see the before hook)');
    return cluster;
  };
  const job = (args: readonly string[], env: Record<string, string> = {}): Promise<Outcome> =>
    new Proc(`miniray job ${args.join(' ')}`, process.execPath, [cliMain, 'job', ...args], c().env(c().home, env)).ended(120_000);
  const api = (path: string, headers: Record<string, string> = { authorization: `Bearer ${c().token}` }, init: RequestInit = {}) => fetch(`${url}${path}`, { ...init, headers });
  /** The job's processes (from its `PID <pid> <pgid>` line), tracked so that they die with the test at the latest. */
  const jobPid = async (id: string): Promise<number> => {
    const logs = await waitFor(`job ${id}'s PID line`, async () => {
      const answer = (await (await api(`/api/jobs/${id}/logs`)).json()) as { logs: string };
      return /PID (\d+) (\d+)/.exec(answer.logs) ?? undefined;
    });
    trackGroup(Number(logs[2]));
    return Number(logs[1]);
  };

  before(async () => {
    cluster = await Cluster.start({ numCpus: 2 }, [], { name: 'jobs', env: { MINIRAY_JOB_STOP_GRACE_MS: '2000' } });
    url = (/Dashboard: +(http:\/\/\S+?)\/\?token=/.exec(c().head.proc.stdout) ?? [])[1] ?? '';
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/, `the head printed its dashboard\n${c().head.proc.describe()}`);
    workDir = join(c().scratch, 'job-dir');
    mkdirSync(workDir, { recursive: true });
    writeFileSync(join(workDir, 'script.mjs'), script(false));
    writeFileSync(join(workDir, 'hold.mjs'), script(true));
    writeFileSync(join(workDir, 'data.txt'), 'shipped with the working dir');
  });
  after(async () => {
    await cluster?.stop();
  });

  test('submit --working-dir: the script joins through MINIRAY_ADDRESS, runs a task, its logs show it, SUCCEEDED', async () => {
    const run = await job(['submit', '--address', url, '--working-dir', workDir, '--submission-id', 'e2e-square', '--', 'node', 'script.mjs']);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.equal(run.stdout.split('\n')[0], 'e2e-square', 'the submission ID first');
    const [result] = resultsOf(run.stdout) as { value: number; address: string; submissionId: string; data: string }[];
    assert.deepEqual(result, { value: 49, address: c().gcsAddress, submissionId: 'e2e-square', data: 'shipped with the working dir' });
    assert.match(run.stderr, /Job 'e2e-square' SUCCEEDED/);
    const status = await job(['status', 'e2e-square', '--address', url]);
    assert.match(status.stdout, /Job 'e2e-square' SUCCEEDED: the entrypoint exited with code 0/);
    const logs = await job(['logs', 'e2e-square', '--address', url]);
    assert.match(logs.stdout, /RESULT \{"value":49/);
    const list = await job(['list', '--address', url]);
    assert.match(list.stdout, /e2e-square +SUCCEEDED/);
  });

  test('a long job is stopped: STOPPED, and its processes are gone', async () => {
    const run = await job(['submit', '--address', url, '--working-dir', workDir, '--no-wait', '--', 'node hold.mjs']);
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    const pid = await jobPid(id);
    await waitFor('the long job to have run its task', async () => ((await (await api(`/api/jobs/${id}/logs`)).json()) as { logs: string }).logs.includes('HOLDING'));
    const stop = await job(['stop', id, '--address', url]);
    assert.equal(stop.stdout, `Job '${id}' STOPPED\n`, stop.stderr);
    const record = (await (await api(`/api/jobs/${id}`)).json()) as { status: string; message: string };
    assert.equal(record.status, 'STOPPED');
    assert.equal(isAlive(pid), false, 'its driver process is gone');
    // Its driver left the cluster with it.
    await waitFor('no driver alive', async () => (await c().nodeTable()).every((n) => !n.isDriver || !n.alive));
  });

  test('no token is 401, a wrong one 403, on every Jobs API route; the CLI says how to fix it', async () => {
    const routes: [string, string][] = [['GET', '/api/jobs/'], ['POST', '/api/jobs/'], ['GET', '/api/jobs/e2e-square'], ['GET', '/api/jobs/e2e-square/logs'], ['POST', '/api/jobs/e2e-square/stop'], ['DELETE', '/api/jobs/e2e-square'], ['PUT', `/api/packages/${'a'.repeat(64)}`], ['GET', `/api/packages/${'a'.repeat(64)}`]];
    for (const [method, path] of routes) {
      assert.equal((await api(path, {}, { method })).status, 401, `${method} ${path} without a token`);
      assert.equal((await api(path, { authorization: 'Bearer wrong' }, { method })).status, 403, `${method} ${path} with a wrong token`);
    }
    assert.equal((await api('/api/jobs/e2e-square')).status, 200, 'and with the right one, it answers');
    const wrong = await job(['list', '--address', url], { MINIRAY_AUTH_TOKEN: 'wrong' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /refused the cluster token sent .*set MINIRAY_AUTH_TOKEN to the head's token/);
    const none = await job(['list', '--address', url], { MINIRAY_HOME: join(c().scratch, 'empty-home') });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /wants the cluster token, and none was sent/);
  });

  test('the head stopping stops its jobs', async () => {
    const run = await job(['submit', '--address', url, '--working-dir', workDir, '--no-wait', '--', 'node hold.mjs']);
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    const pid = await jobPid(id);
    await waitFor('the job to have run its task', async () => ((await (await api(`/api/jobs/${id}/logs`)).json()) as { logs: string }).logs.includes('HOLDING'));
    await c().head.proc.stop(20_000);
    await waitFor('the job\'s process gone with its head', () => !isAlive(pid), 20_000);
    assert.match(readFileSync(join(c().home, 'logs', `job-driver-${id}.log`), 'utf8'), /HOLDING/);
  });
});
