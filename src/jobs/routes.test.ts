import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import type { JobSubmissionRecord } from '../state/types.js';
import { FakeJobGcs } from './fake-gcs.js';
import { JobManager } from './manager.js';
import { packDirectory } from './package.js';
import { jobRoutes } from './routes.js';

const scratch = mkdtempSync(join(tmpdir(), 'miniray-routes-'));
let app: FastifyInstance;
let jobs: JobManager;

before(async () => {
  jobs = await JobManager.start({
    gcs: new FakeJobGcs(),
    gcsAddress: '127.0.0.1:6999',
    token: 't',
    sessionDir: scratch,
    stopGraceMs: 1000,
    maxPackageBytes: 64 * 1024,
  });
  // A bare app as the dashboard makes one: its default 1 MiB body limit.
  app = Fastify({ bodyLimit: 1024 * 1024 });
  await app.register(jobRoutes(jobs));
  await app.ready();
});
after(async () => {
  await jobs.close();
  await app.close();
  rmSync(scratch, { recursive: true, force: true });
});

type Json = Record<string, unknown>;
const post = (url: string, payload?: unknown) => app.inject({ method: 'POST', url, ...(payload === undefined ? {} : { payload: payload as Json }) });

async function waitStatus(id: string, status: string): Promise<JobSubmissionRecord> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const record = (await app.inject({ method: 'GET', url: `/api/jobs/${id}` })).json<JobSubmissionRecord>();
    if (record.status === status) return record;
    if (Date.now() > deadline) throw new Error(`job ${id} is ${record.status}, not ${status}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('POST /api/jobs/ submits; GET /api/jobs/:id, /logs and the list show it', async () => {
  const answer = await post('/api/jobs/', { entrypoint: 'echo hello from the job', submissionId: 'r1', metadata: { a: 'b' }, entrypointNumCpus: 1 });
  assert.equal(answer.statusCode, 200, answer.body);
  assert.deepEqual(answer.json(), { submissionId: 'r1' });
  const record = await waitStatus('r1', 'SUCCEEDED');
  assert.equal(record.entrypoint, 'echo hello from the job');
  assert.deepEqual(record.metadata, { a: 'b' });
  const logs = (await app.inject({ method: 'GET', url: '/api/jobs/r1/logs' })).json<{ logs: string; nextOffset: number }>();
  assert.equal(logs.logs, 'hello from the job\n');
  const later = (await app.inject({ method: 'GET', url: `/api/jobs/r1/logs?offset=${logs.nextOffset}` })).json<{ logs: string }>();
  assert.equal(later.logs, '');
  for (const url of ['/api/jobs/', '/api/jobs']) {
    const list = (await app.inject({ method: 'GET', url })).json<JobSubmissionRecord[]>();
    assert.ok(list.some((r) => r.submissionId === 'r1'), url);
  }
  assert.equal((await post('/api/jobs', { entrypoint: 'true' })).statusCode, 200, 'without the trailing slash too');
});

test('bad bodies are 400s that say what is wrong', async () => {
  const cases: [unknown, RegExp][] = [
    [{}, /body must have required property 'entrypoint'/],
    [{ entrypoint: '' }, /body.entrypoint must NOT have fewer than 1 characters/],
    [{ entrypoint: 'x', submission_id: 'y' }, /body has an unknown field 'submission_id': the fields are entrypoint, submissionId, runtimeEnv, metadata, entrypointNumCpus/],
    [{ entrypoint: 'x', runtimeEnv: { env_vars: {} } }, /body.runtimeEnv has an unknown field 'env_vars': the fields are envVars, workingDir/],
    [{ entrypoint: 'x', runtimeEnv: { envVars: { A: { nested: 1 } } } }, /body.runtimeEnv.envVars.A must be string/],
    [{ entrypoint: 'x', metadata: { a: { b: 1 } } }, /body.metadata.a must be string/],
    [{ entrypoint: 'x', entrypointNumCpus: -1 }, /body.entrypointNumCpus must be >= 0/],
    [{ entrypoint: 'x', submissionId: 'a/b' }, /body.submissionId must be 1-128 letters/],
    [{ entrypoint: 'x', runtimeEnv: { workingDir: 'rel' } }, /must be an absolute path on the head/],
    [[1, 2], /body must be object/],
  ];
  for (const [body, message] of cases) {
    const answer = await post('/api/jobs/', body);
    assert.equal(answer.statusCode, 400, `${JSON.stringify(body)}: ${answer.body}`);
    assert.match(answer.json<{ message: string }>().message, message, JSON.stringify(body));
  }
  const malformed = await app.inject({ method: 'POST', url: '/api/jobs/', headers: { 'content-type': 'application/json' }, payload: '{"entrypoint": ' });
  assert.equal(malformed.statusCode, 400, malformed.body);
  const huge = await post('/api/jobs/', { entrypoint: 'x', metadata: { big: 'y'.repeat(60_000) }, runtimeEnv: { envVars: Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`V${i}`, 'z'.repeat(60_000)])) } });
  assert.equal(huge.statusCode, 413, huge.body);
  await post('/api/jobs/', { entrypoint: 'true', submissionId: 'dup' });
  const dup = await post('/api/jobs/', { entrypoint: 'true', submissionId: 'dup' });
  assert.equal(dup.statusCode, 400);
  assert.match(dup.json<{ message: string }>().message, /exists already/);
});

test('unknown IDs are 404 on every route', async () => {
  for (const [method, url] of [['GET', '/api/jobs/nope'], ['GET', '/api/jobs/nope/logs'], ['POST', '/api/jobs/nope/stop'], ['DELETE', '/api/jobs/nope'], ['GET', '/api/jobs/..%2F..%2Fetc']] as const) {
    const answer = await app.inject({ method, url });
    assert.equal(answer.statusCode, 404, `${method} ${url}: ${answer.body}`);
    assert.match(answer.json<{ message: string }>().message, /there is no job/);
  }
  assert.equal((await app.inject({ method: 'GET', url: '/api/jobs/r1/logs?offset=-1' })).statusCode, 400);
});

test('stop and delete: a running job is stopped ({stopped: true}), cannot be deleted until it ended ({deleted: true})', async () => {
  assert.equal((await post('/api/jobs/', { entrypoint: 'sleep 30', submissionId: 'long' })).statusCode, 200);
  await waitStatus('long', 'RUNNING');
  const refused = await app.inject({ method: 'DELETE', url: '/api/jobs/long' });
  assert.equal(refused.statusCode, 400);
  assert.match(refused.json<{ message: string }>().message, /only a finished job can be deleted/);
  const stopped = await post('/api/jobs/long/stop');
  assert.deepEqual(stopped.json(), { stopped: true });
  assert.equal((await waitStatus('long', 'STOPPED')).status, 'STOPPED');
  assert.deepEqual((await post('/api/jobs/long/stop')).json(), { stopped: false });
  assert.deepEqual((await app.inject({ method: 'DELETE', url: '/api/jobs/long' })).json(), { deleted: true });
  assert.equal((await app.inject({ method: 'GET', url: '/api/jobs/long' })).statusCode, 404);
});

test('PUT /api/packages/:sha256 takes a tar.gz as bytes, size-limited; a job runs in it', async () => {
  const source = join(scratch, 'src');
  mkdirSync(source);
  writeFileSync(join(source, 'hello.sh'), 'echo packaged');
  const { bytes, sha256 } = await packDirectory(source, 64 * 1024);
  assert.equal((await app.inject({ method: 'GET', url: `/api/packages/${sha256}` })).statusCode, 404);
  const put = await app.inject({ method: 'PUT', url: `/api/packages/${sha256}`, headers: { 'content-type': 'application/octet-stream' }, payload: bytes });
  assert.equal(put.statusCode, 201, put.body);
  assert.deepEqual((await app.inject({ method: 'GET', url: `/api/packages/${sha256}` })).json(), { exists: true });
  const submitted = await post('/api/jobs/', { entrypoint: 'sh hello.sh', runtimeEnv: { workingDir: `pkg://${sha256}` } });
  const { submissionId } = submitted.json<{ submissionId: string }>();
  await waitStatus(submissionId, 'SUCCEEDED');
  assert.equal((await app.inject({ method: 'GET', url: `/api/jobs/${submissionId}/logs` })).json<{ logs: string }>().logs, 'packaged\n');

  const tooBig = Buffer.alloc(100 * 1024, 7);
  const big = await app.inject({ method: 'PUT', url: `/api/packages/${'a'.repeat(64)}`, headers: { 'content-type': 'application/octet-stream' }, payload: tooBig });
  assert.equal(big.statusCode, 413, big.body);
  const wrong = await app.inject({ method: 'PUT', url: `/api/packages/${'b'.repeat(64)}`, headers: { 'content-type': 'application/octet-stream' }, payload: bytes });
  assert.equal(wrong.statusCode, 400);
  assert.match(wrong.json<{ message: string }>().message, /hash to/);
  const json = await app.inject({ method: 'PUT', url: `/api/packages/${sha256}`, payload: { not: 'bytes' } });
  assert.equal(json.statusCode, 415);
  const text = await app.inject({ method: 'PUT', url: `/api/packages/${sha256}`, headers: { 'content-type': 'text/plain' }, payload: 'x' });
  assert.equal(text.statusCode, 415);
  const missing = await post('/api/jobs/', { entrypoint: 'true', runtimeEnv: { workingDir: `pkg://${'c'.repeat(64)}` } });
  assert.equal(missing.statusCode, 404);
  assert.match(missing.json<{ message: string }>().message, /upload it first/);
});
