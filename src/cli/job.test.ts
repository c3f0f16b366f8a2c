// `miniray job ...` in this process against the dashboard server with the Jobs API mounted (the
// head's, without a cluster: a fake GCS KV and state), so that the commands, their output, their
// exit codes and the token's 401/403 are checked without starting a head.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDashboard, type RunningDashboard } from '../dashboard/index.js';
import { FakeStateSource } from '../dashboard/fake-state.js';
import { FakeJobGcs } from '../jobs/fake-gcs.js';
import { JobManager } from '../jobs/manager.js';
import { jobRoutes } from '../jobs/routes.js';
import type { JobSubmissionRecord } from '../state/types.js';
import { main } from './index.js';
import { entrypointOf, jobOutput, jobsAddress } from './job.js';

const TOKEN = 'cli-test-token';
const scratch = mkdtempSync(join(tmpdir(), 'miniray-jobcli-'));
let dashboard: RunningDashboard;
let jobs: JobManager;

before(async () => {
  jobs = await JobManager.start({ gcs: new FakeJobGcs(), gcsAddress: '127.0.0.1:1', token: TOKEN, sessionDir: join(scratch, 'head'), stopGraceMs: 1000, maxPackageBytes: 1 << 20 });
  dashboard = await startDashboard({ port: 0, token: TOKEN, state: new FakeStateSource(), plugins: [jobRoutes(jobs)] });
});
after(async () => {
  await jobs.close();
  await dashboard.close();
  rmSync(scratch, { recursive: true, force: true });
});

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `miniray ...args` in this process with `env` set, its output captured. */
async function miniray(args: readonly string[], env: Record<string, string | undefined> = { MINIRAY_AUTH_TOKEN: TOKEN }): Promise<Run> {
  const saved = { ...process.env };
  const writes = { ...jobOutput };
  let stdout = '';
  let stderr = '';
  const origError = console.error;
  process.env.MINIRAY_HOME = join(scratch, 'client-home');
  delete process.env.MINIRAY_AUTH_TOKEN;
  delete process.env.MINIRAY_ADDRESS;
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  jobOutput.stdout = (text) => void (stdout += text);
  jobOutput.stderr = (text) => void (stderr += text);
  console.error = (...parts: unknown[]) => void (stderr += `${parts.map(String).join(' ')}\n`);
  try {
    const code = await main(['node', 'miniray', ...args]);
    return { code, stdout, stderr };
  } finally {
    Object.assign(jobOutput, writes);
    console.error = origError;
    for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
    Object.assign(process.env, saved);
  }
}

/** A port nothing listens on (one just freed). */
async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const at = () => ['--address', dashboard.url];

describe('miniray job', () => {
  test('submit prints the ID, follows the logs to the end, exits 0 on SUCCEEDED and 1 otherwise', async () => {
    const ok = await miniray(['job', 'submit', ...at(), '--submission-id', 'cli-ok', '--', 'echo', 'hello world', "it's"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, "cli-ok\nhello world it's\n");
    assert.match(ok.stderr, /Job 'cli-ok' SUCCEEDED/);
    const bad = await miniray(['job', 'submit', ...at(), '--', 'echo failing; exit 4']);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /failing/);
    assert.match(bad.stderr, /miniray: Job '.*' FAILED: the entrypoint exited with code 4/);
  });

  test('--working-dir is uploaded and is the job\'s cwd; --runtime-env-json, --metadata-json and --entrypoint-num-cpus reach the record', async () => {
    const dir = join(scratch, 'wd');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'job.sh'), 'echo "in the package: $GREETING"');
    const args = ['job', 'submit', ...at(), '--working-dir', dir, '--runtime-env-json', '{"envVars": {"GREETING": "hi"}}', '--metadata-json', '{"team": "a"}', '--entrypoint-num-cpus', '2', '--submission-id', 'cli-wd', '--', 'sh job.sh'];
    const run = await miniray(args);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'cli-wd\nin the package: hi\n');
    assert.match(run.stderr, /Uploading/);
    const record = (await jobs.get('cli-wd')) as JobSubmissionRecord;
    assert.match(record.runtimeEnv.workingDir ?? '', /^pkg:\/\/[0-9a-f]{64}$/);
    assert.deepEqual(record.metadata, { team: 'a' });
    assert.equal(record.entrypointNumCpus, 2);
    // The same directory again: the head has the package, so it is not sent again.
    const again = await miniray([...args.slice(0, -4), '--', 'sh job.sh']);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /Uploading/);
  });

  test('--no-wait, status, logs, stop, list, delete', async () => {
    const started = await miniray(['job', 'submit', ...at(), '--no-wait', '--submission-id', 'cli-long', '--', 'echo started; sleep 30']);
    assert.equal(started.code, 0, started.stderr);
    assert.equal(started.stdout, 'cli-long\n');
    const deadline = Date.now() + 30_000;
    while ((await jobs.logs('cli-long')).logs === '' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const status = await miniray(['job', 'status', 'cli-long', ...at()]);
    assert.match(status.stdout, /Job 'cli-long' RUNNING/);
    assert.equal((await miniray(['job', 'logs', 'cli-long', ...at()])).stdout, 'started\n');
    const list = await miniray(['job', 'list', ...at()]);
    assert.match(list.stdout, /^SUBMISSION ID +STATUS/);
    assert.match(list.stdout, /cli-long +RUNNING/);
    const refused = await miniray(['job', 'delete', 'cli-long', ...at()]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /only a finished job can be deleted .*\(HTTP 400\)/);
    const stop = await miniray(['job', 'stop', 'cli-long', ...at()]);
    assert.equal(stop.stdout, "Job 'cli-long' STOPPED\n");
    assert.match((await miniray(['job', 'stop', 'cli-long', ...at()])).stdout, /had ended already: Job 'cli-long' STOPPED/);
    const follow = await miniray(['job', 'logs', 'cli-long', '--follow', ...at()]);
    assert.equal(follow.code, 1, 'following a job that did not succeed exits 1');
    assert.equal(follow.stdout, 'started\n');
    const json = JSON.parse((await miniray(['job', 'status', 'cli-long', '--json', ...at()])).stdout) as JobSubmissionRecord;
    assert.equal(json.status, 'STOPPED');
    assert.equal((await miniray(['job', 'delete', 'cli-long', ...at()])).code, 0);
    const gone = await miniray(['job', 'status', 'cli-long', ...at()]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /there is no job 'cli-long'.*\(HTTP 404\)/);
  });

  test('no token is a 401 and a wrong one a 403, each saying how to fix it; an unreachable head says where it looked', async () => {
    const none = await miniray(['job', 'list', ...at()], { MINIRAY_AUTH_TOKEN: undefined });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /wants the cluster token, and none was sent: set MINIRAY_AUTH_TOKEN/);
    const wrong = await miniray(['job', 'list', ...at()], { MINIRAY_AUTH_TOKEN: 'wrong' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /refused the cluster token sent .*set MINIRAY_AUTH_TOKEN to the head's token.*came from MINIRAY_AUTH_TOKEN/);
    const port = await freePort();
    const far = await miniray(['job', 'list', '--address', `http://127.0.0.1:${port}`]);
    assert.equal(far.code, 1);
    assert.match(far.stderr, new RegExp(`cannot reach the Jobs API at http://127.0.0.1:${port} \\(ECONNREFUSED\\): is the head up`));
    // MINIRAY_ADDRESS is used when it is a URL.
    const viaEnv = await miniray(['job', 'list'], { MINIRAY_AUTH_TOKEN: TOKEN, MINIRAY_ADDRESS: dashboard.url });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
  });

  test('address and entrypoint rules', () => {
    const noHead = () => undefined;
    assert.equal(jobsAddress(undefined, undefined, noHead), 'http://127.0.0.1:8265');
    assert.equal(jobsAddress(undefined, '10.0.0.1:6380', noHead), 'http://127.0.0.1:8265', 'a GCS address is not the dashboard');
    // The latest head started here serves its dashboard elsewhere (--dashboard-port 0): that one.
    assert.equal(jobsAddress(undefined, undefined, () => 'http://127.0.0.1:40123'), 'http://127.0.0.1:40123');
    assert.equal(jobsAddress(undefined, 'https://head:8265/', () => 'http://127.0.0.1:40123'), 'https://head:8265');
    assert.equal(jobsAddress('http://h:1', 'http://other:2'), 'http://h:1');
    assert.throws(() => jobsAddress('127.0.0.1:33601'), /give it with http:\/\/: http:\/\/127\.0\.0\.1:33601/);
    assert.throws(() => jobsAddress('ftp://x'), /dashboard URL/);
    assert.equal(entrypointOf(['node script.mjs && echo done']), 'node script.mjs && echo done');
    assert.equal(entrypointOf(['node', 'a b.mjs', "it's", '--x=1']), "node 'a b.mjs' 'it'\\''s' --x=1");
  });

  test('every job command has --help', async () => {
    for (const command of ['submit', 'status', 'logs', 'stop', 'list', 'delete']) {
      const { createProgram } = await import('./index.js');
      const job = createProgram().commands.find((c) => c.name() === 'job');
      const help = job?.commands.find((c) => c.name() === command)?.helpInformation() ?? '';
      assert.match(help, /--address <url>/, command);
    }
  });
});
