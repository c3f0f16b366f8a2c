// Cluster-wide settings come from the head, as Ray's system config does: a head started with a
// non-default gcsReconnectTimeoutMs and taskEventsFlushMs, nodes and drivers that join without
// them use the head's values (a node's own GCS link gives up after the head's 2 s, not the
// default 60 s), and one that sets them otherwise says so once, naming both values, and uses the
// head's anyway.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Proc, cliMain, fixture, resultsOf } from './harness.js';
import { freePort } from './redis.js';

const HEAD_SETTINGS = { MINIRAY_GCS_RECONNECT_TIMEOUT_MS: '2000', MINIRAY_TASK_EVENTS_FLUSH_MS: '123', MINIRAY_MAX_INLINE_OBJECT_BYTES: '4096' };

describe("cluster-wide settings: the head's hold for every node and driver", { timeout: 180_000 }, () => {
  let scratch = '';
  let home = '';
  const procs: Proc[] = [];
  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('MINIRAY_') && name !== 'NODE_OPTIONS')),
    MINIRAY_HOME: home,
    ...extra,
  });
  const start = (name: string, args: string[], extra: Record<string, string> = {}): Proc => {
    const proc = new Proc(name, process.execPath, [cliMain, 'start', '--num-cpus', '1', ...args, '--block'], env(extra));
    procs.push(proc);
    return proc;
  };

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'miniray-settings-'));
    home = join(scratch, 'home');
    mkdirSync(home, { recursive: true, mode: 0o700 });
  });
  after(async () => {
    await Promise.all(procs.map((proc) => proc.stop(2_000)));
    rmSync(scratch, { recursive: true, force: true });
  });

  test("nodes and drivers that join use the head's values; one that sets them otherwise is warned, and the head wins", async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const head = start('head', ['--head', '--port', String(port), '--dashboard-port', '0'], HEAD_SETTINGS);
    await head.match(/Started the miniray head/);
    const plain = start('node without settings', ['--address', address]);
    const otherwise = start('node with its own timeout', ['--address', address], { MINIRAY_GCS_RECONNECT_TIMEOUT_MS: '600000' });
    await plain.match(/Started a miniray node/);
    await otherwise.match(/Started a miniray node/);
    assert.match(otherwise.stderr, /MINIRAY_GCS_RECONNECT_TIMEOUT_MS=600000 is not used here: gcsReconnectTimeoutMs is a cluster-wide setting, and the head's value, 2000, holds for the whole cluster/);
    assert.equal(otherwise.stderr.match(/is not used here/g)?.length, 1, 'said once');
    assert.doesNotMatch(plain.stderr, /is not used here/);

    const names = ['gcsReconnectTimeoutMs', 'taskEventsFlushMs', 'maxInlineObjectBytes', 'defaultMaxRetries'];
    const driver = new Proc('driver', process.execPath, [fixture('settings.mjs'), ...names], env({ MINIRAY_ADDRESS: address, MINIRAY_TASK_EVENTS_FLUSH_MS: '999', MINIRAY_DEFAULT_MAX_RETRIES: '5' }));
    procs.push(driver);
    const outcome = await driver.ended(60_000);
    assert.equal(outcome.code, 0, driver.describe());
    const [joined, left] = resultsOf(outcome.stdout) as [Record<string, { value: number; scope: string }>, Record<string, number>];
    assert.deepEqual(joined, {
      gcsReconnectTimeoutMs: { value: 2000, scope: 'cluster' },
      taskEventsFlushMs: { value: 123, scope: 'cluster' },
      maxInlineObjectBytes: { value: 4096, scope: 'cluster' },
      defaultMaxRetries: { value: 5, scope: 'process' }, // a program's own default: not the head's
    });
    assert.deepEqual(left, { gcsReconnectTimeoutMs: 60_000, taskEventsFlushMs: 999, maxInlineObjectBytes: 102_400, defaultMaxRetries: 5 }, 'its own again after shutdown()');
    assert.match(outcome.stderr, /MINIRAY_TASK_EVENTS_FLUSH_MS=999 is not used here: taskEventsFlushMs .* the head's value, 123/);

    // The nodes' GCS links give up after the head's 2 s (not 60 s, nor 600 s): they exit.
    head.child.kill('SIGKILL');
    await head.exited;
    for (const node of [plain, otherwise]) {
      const ended = await node.ended(40_000);
      assert.equal(ended.code, 1, node.describe());
      assert.match(ended.stderr, /this node exits: it lost the GCS at 127\.0\.0\.1:\d+ .*did not answer within 2 s/);
    }
  });
});
