// The head's GCS connection as `miniray start` nodes live it, with real processes on loopback and
// a short gcsReconnectTimeoutMs: a node started before its head waits for it; a wrong token is
// refused at once; a node whose head does not come back exits with a clear line and code 1; a
// head restarted without Redis is a new cluster, which the node does not take for its own.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fetchNodes } from '../../dist/cli/status.js';
import { Proc, cliMain, fixture, resultsOf, waitFor } from './harness.js';
import { freePort } from './redis.js';

const RECONNECT_MS = 3_000;

describe('a node and its head\'s GCS connection (miniray start)', { timeout: 180_000 }, () => {
  let scratch = '';
  let home = '';
  const procs: Proc[] = [];
  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('MINIRAY_') && name !== 'NODE_OPTIONS')),
    MINIRAY_HOME: home,
    MINIRAY_GCS_RECONNECT_TIMEOUT_MS: String(RECONNECT_MS),
    ...extra,
  });
  const start = (name: string, args: string[], extra: Record<string, string> = {}): Proc => {
    const proc = new Proc(name, process.execPath, [cliMain, 'start', '--num-cpus', '1', ...args, '--block'], env(extra));
    procs.push(proc);
    return proc;
  };
  // gcsReconnectTimeoutMs is cluster-wide: the head's value is every node's and driver's (src/config).
  const startHead = (port: number, extra: Record<string, string> = {}) => start('head', ['--head', '--port', String(port)], extra);
  const token = () => readFileSync(join(home, 'auth_token'), 'utf8').trim();

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'miniray-head-restart-'));
    home = join(scratch, 'home');
    mkdirSync(home, { recursive: true, mode: 0o700 });
  });
  after(async () => {
    await Promise.all(procs.map((proc) => proc.stop(2_000)));
    rmSync(scratch, { recursive: true, force: true });
  });

  test('a node started before its head waits for it (within gcsReconnectTimeoutMs) and joins when it is up', async () => {
    const port = await freePort();
    // The token file must exist for the node to find it: a head started and stopped made it.
    const first = startHead(port);
    await first.match(/Started the miniray head/);
    await first.stop();
    const node = start('early node', ['--address', `127.0.0.1:${port}`], { MINIRAY_GCS_RECONNECT_TIMEOUT_MS: '60000' });
    await waitFor('the node to say it waits for its head', () => /does not answer yet.*trying again/.test(node.stderr), 30_000);
    const head = startHead(port);
    await node.match(/Started a miniray node at (\S+)/, 60_000);
    await head.match(/Started the miniray head/);
    const rows = await waitFor('the head and the node alive', async () => {
      const alive = (await fetchNodes(`127.0.0.1:${port}`, token())).filter((n) => n.alive);
      return alive.length === 2 ? alive : undefined;
    });
    assert.equal(rows.length, 2);
    await node.stop();
    await head.stop();
  });

  test('a wrong token is not retried: the node fails at once with AuthenticationError', async () => {
    const port = await freePort();
    const head = startHead(port);
    await head.match(/Started the miniray head/);
    const startedAt = Date.now();
    const node = start('node with a wrong token', ['--address', `127.0.0.1:${port}`], { MINIRAY_AUTH_TOKEN: 'f'.repeat(64), MINIRAY_GCS_RECONNECT_TIMEOUT_MS: '60000' });
    const outcome = await node.ended(30_000);
    assert.equal(outcome.code, 1);
    assert.ok(Date.now() - startedAt < 20_000, 'it did not wait out the reconnect timeout');
    assert.match(outcome.stderr, /token/i);
    assert.doesNotMatch(outcome.stderr, /trying again/);
    await head.stop();
  });

  test('a head that does not come back: the node exits after gcsReconnectTimeoutMs with a clear line and code 1', async () => {
    const port = await freePort();
    const head = startHead(port);
    await head.match(/Started the miniray head/);
    const node = start('orphan node', ['--address', `127.0.0.1:${port}`]);
    await node.match(/Started a miniray node/);
    const killedAt = Date.now();
    head.child.kill('SIGKILL');
    await head.exited;
    const outcome = await node.ended(60_000);
    const tookMs = Date.now() - killedAt;
    assert.equal(outcome.code, 1, node.describe());
    assert.match(outcome.stderr, /trying to reach it again for up to 3 s \(gcsReconnectTimeoutMs\)/);
    assert.match(outcome.stderr, /this node exits: it lost the GCS at 127\.0\.0\.1:\d+ .*did not answer within 3 s/);
    assert.ok(tookMs >= RECONNECT_MS - 200, `it gave up after ${tookMs} ms, before its ${RECONNECT_MS} ms`);
  });

  test('a head restarted without Redis is a new cluster: the node does not rejoin it as its own, it exits', async () => {
    const port = await freePort();
    const head = startHead(port, { MINIRAY_GCS_RECONNECT_TIMEOUT_MS: '60000' });
    await head.match(/Started the miniray head/);
    const node = start('node of the old cluster', ['--address', `127.0.0.1:${port}`], { MINIRAY_GCS_RECONNECT_TIMEOUT_MS: '60000' });
    await node.match(/Started a miniray node/);
    head.child.kill('SIGKILL');
    await head.exited;
    const again = startHead(port);
    await again.match(/Started the miniray head/);
    const outcome = await node.ended(60_000);
    assert.equal(outcome.code, 1, node.describe());
    assert.match(outcome.stderr, /another cluster .*restarted without --redis-address/);
    await again.stop();
  });

  test("a driver whose head does not come back: its GCS calls fail with GcsUnavailableError after gcsReconnectTimeoutMs", async () => {
    const port = await freePort();
    const head = startHead(port);
    await head.match(/Started the miniray head/);
    const driver = new Proc('orphan driver', process.execPath, [fixture('head-driver.mjs'), 'orphan'], env({ MINIRAY_ADDRESS: `127.0.0.1:${port}` }));
    procs.push(driver);
    await driver.match(/READY/);
    head.child.kill('SIGKILL');
    await head.exited;
    driver.send('go');
    const outcome = await driver.ended(60_000);
    assert.equal(outcome.code, 0, driver.describe());
    const [answer] = resultsOf(outcome.stdout) as [{ error?: { name: string; message: string }; tookMs: number }];
    assert.equal(answer.error?.name, 'GcsUnavailableError', JSON.stringify(answer));
    assert.match(answer.error?.message ?? '', /did not answer within 3 s \(gcsReconnectTimeoutMs\)/);
  });

  test('while the head is down, a driver\'s new tasks, of a function not sent before, run on the node it knows', async () => {
    const port = await freePort();
    const head = startHead(port, { MINIRAY_GCS_RECONNECT_TIMEOUT_MS: '60000' });
    await head.match(/Started the miniray head/);
    const node = start('side node', ['--address', `127.0.0.1:${port}`, '--num-cpus', '2', '--resources', '{"side": 2}'], { MINIRAY_GCS_RECONNECT_TIMEOUT_MS: '60000' });
    await node.match(/Started a miniray node/);
    const driver = new Proc('outage driver', process.execPath, [fixture('head-driver.mjs'), 'outage'], env({ MINIRAY_ADDRESS: `127.0.0.1:${port}`, MINIRAY_GCS_RECONNECT_TIMEOUT_MS: '60000' }));
    procs.push(driver);
    await driver.match(/READY/);
    head.child.kill('SIGKILL');
    await head.exited;
    driver.send('go');
    await driver.match(/RESULT/, 30_000);
    const [answer] = resultsOf(driver.stdout) as [{ value?: number[]; error?: unknown }];
    assert.deepEqual(answer, { value: Array.from({ length: 8 }, (_, i) => 100 + i) }, driver.describe());
    await driver.stop(2_000);
    await node.stop(2_000);
  });
});
