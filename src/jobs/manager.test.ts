import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { JOB_SUBMISSIONS, type JobSubmissionRecord } from '../state/types.js';
import { JobError } from './errors.js';
import { FakeJobGcs } from './fake-gcs.js';
import { JobManager, wholeUtf8, type JobManagerOptions } from './manager.js';
import { packDirectory } from './package.js';

const scratch = mkdtempSync(join(tmpdir(), 'miniray-jobs-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => {
  const dir = join(scratch, `d${++dirs}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};

async function manager(options: Partial<JobManagerOptions> = {}): Promise<{ jobs: JobManager; gcs: FakeJobGcs; session: string }> {
  const gcs = options.gcs instanceof FakeJobGcs ? options.gcs : new FakeJobGcs();
  const session = options.sessionDir ?? freshDir();
  const jobs = await JobManager.start({
    gcs,
    gcsAddress: '127.0.0.1:6999',
    token: 'the-token',
    sessionDir: session,
    stopGraceMs: 2000,
    maxPackageBytes: 10 * 1024 * 1024,
    ...options,
  });
  return { jobs, gcs, session };
}

async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}

async function finished(jobs: JobManager, id: string): Promise<JobSubmissionRecord> {
  await jobs.waitUntilDone(id);
  const record = await jobs.get(id);
  assert.ok(record !== undefined);
  return record;
}

const node = JSON.stringify(process.execPath);

test('a job runs its entrypoint with a shell, in its working dir, with the cluster in its environment, and SUCCEEDED is recorded in the KV', async () => {
  const { MINIRAY_NODE_IP_ADDRESS: _ip, ...headEnv } = process.env;
  const { jobs, gcs } = await manager({ baseEnv: { ...headEnv, MINIRAY_REDIS_PASSWORD: 'secret', FROM_HEAD: 'kept' } });
  const cwd = freshDir();
  const id = await jobs.submit({
    entrypoint: `echo "addr=$MINIRAY_ADDRESS token=$MINIRAY_AUTH_TOKEN id=$MINIRAY_JOB_SUBMISSION_ID color=$COLOR head=$FROM_HEAD redis=$MINIRAY_REDIS_PASSWORD ip=$MINIRAY_NODE_IP_ADDRESS" && pwd && echo oops >&2`,
    runtimeEnv: { envVars: { COLOR: 'blue' }, workingDir: cwd },
    metadata: { owner: 'me' },
    entrypointNumCpus: 1.5,
  });
  assert.match(id, /^mrsubmit_[0-9a-f]{16}$/);
  const record = await finished(jobs, id);
  assert.equal(record.status, 'SUCCEEDED');
  assert.equal(record.driverExitCode, 0);
  assert.equal(record.entrypointNumCpus, 1.5);
  assert.deepEqual(record.metadata, { owner: 'me' });
  assert.ok(record.endTimeMs !== undefined && record.endTimeMs >= record.startTimeMs);
  assert.deepEqual(gcs.record(id), record, 'the KV holds the final record');
  const { logs } = await jobs.logs(id);
  assert.equal(logs, `addr=127.0.0.1:6999 token=the-token id=${id} color=blue head=kept redis= ip=127.0.0.1\n${cwd}\noops\n`);
});

test('statuses go PENDING -> RUNNING -> FAILED, with the exit code in the message', async () => {
  const { jobs, gcs } = await manager();
  const seen: string[] = [];
  const original = gcs.kvPut.bind(gcs);
  gcs.kvPut = async (namespace, key, value, overwrite) => {
    seen.push((JSON.parse(Buffer.from(value).toString()) as JobSubmissionRecord).status);
    return original(namespace, key, value, overwrite);
  };
  const id = await jobs.submit({ entrypoint: 'exit 3' });
  const record = await finished(jobs, id);
  assert.equal(record.status, 'FAILED');
  assert.equal(record.driverExitCode, 3);
  assert.equal(record.message, 'the entrypoint exited with code 3');
  assert.deepEqual(seen, ['PENDING', 'RUNNING', 'FAILED']);
});

test('a job killed by a signal from elsewhere is FAILED, naming the signal', async () => {
  const { jobs } = await manager();
  const id = await jobs.submit({ entrypoint: 'kill -KILL $$' });
  const record = await finished(jobs, id);
  assert.equal(record.status, 'FAILED');
  assert.match(record.message ?? '', /killed by signal SIGKILL/);
});

test('stop: SIGTERM to the whole process group (the shell\'s children too) -> STOPPED; stopping a finished job says false', async () => {
  const { jobs, session } = await manager();
  const pidFile = join(session, 'grandchild.pid');
  // The shell starts a grandchild and waits: stopping the shell alone would leave it running.
  const id = await jobs.submit({ entrypoint: `${node} -e "require('fs').writeFileSync('${pidFile}', String(process.pid)); setInterval(() => {}, 1000)" & wait` });
  await until('the job RUNNING with its grandchild', async () => (await jobs.get(id))?.status === 'RUNNING' && existsSync(pidFile) && readFileSync(pidFile, 'utf8') !== '');
  const grandchild = Number(readFileSync(pidFile, 'utf8'));
  assert.equal(await jobs.stop(id), true);
  const record = await jobs.get(id);
  assert.equal(record?.status, 'STOPPED');
  assert.match(record?.message ?? '', /stopped by a request/);
  await until('the grandchild gone', () => {
    try {
      process.kill(grandchild, 0);
      return false;
    } catch {
      return true;
    }
  });
  assert.equal(await jobs.stop(id), false, 'a finished job is not stopped again');
});

test('stop: a job that ignores SIGTERM is killed after the grace', async () => {
  const { jobs } = await manager({ stopGraceMs: 300 });
  const id = await jobs.submit({ entrypoint: `${node} -e "process.on('SIGTERM', () => console.log('ignored')); console.log('up', process.pid); setInterval(() => {}, 1000)"` });
  const up = await until('the job up', async () => /up (\d+)/.exec((await jobs.logs(id)).logs) ?? undefined);
  const pid = Number(up[1]);
  const started = Date.now();
  assert.equal(await jobs.stop(id), true);
  assert.ok(Date.now() - started >= 250, 'it waited for the grace');
  assert.equal((await jobs.get(id))?.status, 'STOPPED');
  assert.match((await jobs.logs(id)).logs, /ignored/);
  assert.throws(() => process.kill(pid, 0), 'STOPPED only once it is gone');
});

test('a taken or malformed submissionId, an empty entrypoint and a bad working dir are JobErrors 400/404', async () => {
  const { jobs } = await manager();
  const id = await jobs.submit({ entrypoint: 'true', submissionId: 'my-job.1' });
  assert.equal(id, 'my-job.1');
  const status = (code: number) => (error: unknown) => error instanceof JobError && error.status === code;
  await assert.rejects(jobs.submit({ entrypoint: 'true', submissionId: 'my-job.1' }), (e: unknown) => status(400)(e) && /exists already/.test((e as Error).message));
  await jobs.waitUntilDone(id);
  await assert.rejects(jobs.submit({ entrypoint: 'true', submissionId: 'my-job.1' }), status(400), 'a finished one is taken too');
  await assert.rejects(jobs.submit({ entrypoint: 'true', submissionId: '../etc' }), status(400));
  await assert.rejects(jobs.submit({ entrypoint: '  ' }), status(400));
  await assert.rejects(jobs.submit({ entrypoint: 'true', runtimeEnv: { workingDir: 'relative/dir' } }), (e: unknown) => status(400)(e) && /absolute path/.test((e as Error).message));
  await assert.rejects(jobs.submit({ entrypoint: 'true', runtimeEnv: { workingDir: join(scratch, 'missing') } }), (e: unknown) => status(400)(e) && /not a directory/.test((e as Error).message));
  await assert.rejects(jobs.submit({ entrypoint: 'true', runtimeEnv: { workingDir: `pkg://${'a'.repeat(64)}` } }), status(404));
  await assert.rejects(jobs.submit({ entrypoint: 'true', runtimeEnv: { workingDir: 'pkg://nothex' } }), status(400));
});

test('delete: a running job is refused (400), a finished one goes with its log; unknown ones are 404', async () => {
  const { jobs, gcs } = await manager();
  const id = await jobs.submit({ entrypoint: 'echo hi; sleep 30' });
  await until('running', async () => (await jobs.get(id))?.status === 'RUNNING');
  await assert.rejects(jobs.delete(id), (e: unknown) => e instanceof JobError && e.status === 400 && /only a finished job/.test(e.message));
  await jobs.stop(id);
  assert.ok(existsSync(jobs.logPath(id)));
  assert.equal(await jobs.delete(id), true);
  assert.equal(gcs.record(id), undefined);
  assert.equal(existsSync(jobs.logPath(id)), false);
  await assert.rejects(jobs.delete(id), (e: unknown) => e instanceof JobError && e.status === 404);
  await assert.rejects(jobs.stop('nope'), (e: unknown) => e instanceof JobError && e.status === 404);
  await assert.rejects(jobs.logs('nope'), (e: unknown) => e instanceof JobError && e.status === 404);
  assert.equal(await jobs.get('nope'), undefined);
});

test('close (the head stopping) stops every job it runs and takes no more', async () => {
  const { jobs } = await manager();
  const ids = [await jobs.submit({ entrypoint: 'sleep 30' }), await jobs.submit({ entrypoint: 'sleep 30' })];
  await until('both running', async () => (await jobs.list()).every((r) => r.status === 'RUNNING'));
  await jobs.close();
  for (const id of ids) {
    const record = await jobs.get(id);
    assert.equal(record?.status, 'STOPPED');
    assert.equal(record?.message, 'the head stopped');
  }
  await assert.rejects(jobs.submit({ entrypoint: 'true' }), (e: unknown) => e instanceof JobError && /stopping/.test(e.message));
});

test('a manager started on records of a head that is gone marks its unfinished jobs FAILED', async () => {
  const gcs = new FakeJobGcs();
  const stale = { submissionId: 'old', entrypoint: 'x', status: 'RUNNING', metadata: {}, runtimeEnv: {}, entrypointNumCpus: 0, startTimeMs: 1 };
  const done = { ...stale, submissionId: 'done', status: 'SUCCEEDED', endTimeMs: 2 };
  await gcs.kvPut(JOB_SUBMISSIONS, 'old', Buffer.from(JSON.stringify(stale)));
  await gcs.kvPut(JOB_SUBMISSIONS, 'done', Buffer.from(JSON.stringify(done)));
  await gcs.kvPut(JOB_SUBMISSIONS, 'junk', Buffer.from('not json'));
  const { jobs } = await manager({ gcs });
  const list = await jobs.list();
  assert.deepEqual(list.map((r) => [r.submissionId, r.status]), [['old', 'FAILED'], ['done', 'SUCCEEDED']]);
  assert.match(list[0]?.message ?? '', /head that ran this job stopped/);
});

test('the driver\'s GCS job ID is recorded once the job table has its submissionId', async () => {
  const { jobs, gcs } = await manager();
  const id = await jobs.submit({ entrypoint: 'sleep 30' });
  await until('running', async () => (await jobs.get(id))?.status === 'RUNNING');
  assert.equal((await jobs.get(id))?.jobId, undefined);
  gcs.jobs = [{ jobId: 7, driverNodeId: 'ab'.repeat(16) as never, startTimeMs: 1, submissionId: id }];
  await until('the job ID recorded in the KV', () => (gcs.record(id) as JobSubmissionRecord).jobId === '7');
  assert.equal((await jobs.get(id))?.jobId, '7');
  await jobs.stop(id);
  assert.equal((gcs.record(id) as JobSubmissionRecord).jobId, '7');
});

test('a package working dir is unpacked for the job and used as its cwd; a failed unpack is FAILED', async () => {
  const { jobs, session } = await manager();
  const source = freshDir();
  writeFileSync(join(source, 'script.sh'), 'echo "from the package: $(cat data.txt)"\n');
  writeFileSync(join(source, 'data.txt'), 'forty-two');
  const { bytes, sha256 } = await packDirectory(source, 1 << 20);
  const { Readable } = await import('node:stream');
  await jobs.packages.put(sha256, Readable.from([bytes]));
  const id = await jobs.submit({ entrypoint: 'sh script.sh && pwd', runtimeEnv: { workingDir: `pkg://${sha256}` } });
  const record = await finished(jobs, id);
  assert.equal(record.status, 'SUCCEEDED', record.message);
  assert.equal((await jobs.logs(id)).logs, `from the package: forty-two\n${join(session, 'jobs', id, 'working_dir')}\n`);
  // The package goes between submit and unpack: the job fails, saying why.
  const id2 = await jobs.submit({ entrypoint: 'true', runtimeEnv: { workingDir: `pkg://${sha256}` } });
  rmSync(join(session, 'job_packages'), { recursive: true, force: true });
  const failed = await finished(jobs, id2);
  if (failed.status === 'FAILED') assert.match(failed.message ?? '', /working directory could not be made/);
  else assert.equal(failed.status, 'SUCCEEDED'); // it was unpacked before the package went
});

test('logs: read from an offset, never cutting a UTF-8 character', async () => {
  const { jobs } = await manager();
  const id = await jobs.submit({ entrypoint: 'printf "héllo wörld"' });
  await finished(jobs, id);
  const all = await jobs.logs(id);
  assert.equal(all.logs, 'héllo wörld');
  assert.equal(all.nextOffset, Buffer.byteLength('héllo wörld'));
  assert.equal(all.size, all.nextOffset);
  const rest = await jobs.logs(id, Buffer.byteLength('héllo '));
  assert.equal(rest.logs, 'wörld');
  assert.equal((await jobs.logs(id, all.nextOffset)).logs, '');
  const bytes = Buffer.from('aé€😀');
  for (let cut = 0; cut <= bytes.length; cut++) {
    const whole = wholeUtf8(bytes.subarray(0, cut));
    assert.equal(Buffer.from(whole.toString('utf8')).equals(whole), true, `cut at ${cut}`);
    assert.ok(whole.length >= cut - 3);
  }
  assert.equal(wholeUtf8(bytes).length, bytes.length);
});

test("a job's driver listens on the head's advertised host (MINIRAY_NODE_IP_ADDRESS), unless told otherwise", async () => {
  const { MINIRAY_NODE_IP_ADDRESS: _ip, ...headEnv } = process.env;
  const { jobs } = await manager({ gcsAddress: '[fd00::7]:6380', baseEnv: headEnv });
  const id = await jobs.submit({ entrypoint: 'echo "$MINIRAY_NODE_IP_ADDRESS $MINIRAY_ADDRESS"' });
  await finished(jobs, id);
  assert.equal((await jobs.logs(id)).logs, 'fd00::7 [fd00::7]:6380\n');
  const told = await jobs.submit({ entrypoint: 'echo "$MINIRAY_NODE_IP_ADDRESS"', runtimeEnv: { envVars: { MINIRAY_NODE_IP_ADDRESS: '10.1.2.3' } } });
  await finished(jobs, told);
  assert.equal((await jobs.logs(told)).logs, '10.1.2.3\n');
});

test("jobs find the head's own miniray: <session>/jobs/node_modules/miniray links to it", async () => {
  const { session } = await manager();
  const link = join(session, 'jobs', 'node_modules', 'miniray');
  const pkg = JSON.parse(readFileSync(join(link, 'package.json'), 'utf8')) as { name: string };
  assert.equal(pkg.name, 'miniray');
  assert.equal(realpathSync(link), realpathSync(new URL('../..', import.meta.url)));
  await manager({ sessionDir: session }); // a second head on the same session dir keeps it
  assert.equal(realpathSync(link), realpathSync(new URL('../..', import.meta.url)));
});

test("a head restarted after a SIGKILL stops what is left of its jobs (their group, if it still runs that job), and marks them FAILED", async () => {
  const gcs = new FakeJobGcs();
  const first = await manager({ gcs });
  const id = await first.jobs.submit({ entrypoint: `echo up; ${node} -e "setInterval(() => {}, 1000)"` });
  await until('the job up', async () => (await first.jobs.logs(id)).logs.includes('up') && (await first.jobs.get(id))?.status === 'RUNNING');
  const pgid = Number(readFileSync(join(first.session, 'jobs', id, 'pgid'), 'utf8'));
  assert.doesNotThrow(() => process.kill(-pgid, 0));
  // The first head "dies" (its manager is left as it is, as a killed process leaves its jobs); a new one starts on the same session and GCS.
  const second = await manager({ gcs, sessionDir: first.session });
  assert.throws(() => process.kill(-pgid, 0), 'the left-over group is gone');
  const record = await second.jobs.get(id);
  assert.equal(record?.status, 'FAILED');
  await first.jobs.waitUntilDone(id);
});

test('a left-over group is stopped only if it still runs that job (a reused PID is left alone)', async () => {
  const gcs = new FakeJobGcs();
  const session = freshDir();
  const stale = { submissionId: 'stale', entrypoint: 'x', status: 'RUNNING', metadata: {}, runtimeEnv: {}, entrypointNumCpus: 0, startTimeMs: 1 };
  await gcs.kvPut(JOB_SUBMISSIONS, 'stale', Buffer.from(JSON.stringify(stale)));
  const { spawn } = await import('node:child_process');
  const bystander = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' });
  try {
    mkdirSync(join(session, 'jobs', 'stale'), { recursive: true });
    writeFileSync(join(session, 'jobs', 'stale', 'pgid'), String(bystander.pid));
    const { jobs } = await manager({ gcs, sessionDir: session });
    assert.doesNotThrow(() => process.kill(bystander.pid as number, 0), 'not a process of that job: left running');
    const record = await jobs.get('stale');
    assert.equal(record?.status, 'FAILED');
    assert.equal(record?.message, 'the head that ran this job stopped before it ended');
  } finally {
    bystander.kill('SIGKILL');
  }
});
