// `miniray start`, `status` and `stop` with real heads and nodes: the detached form (no --block),
// as a user runs it, in a temp MINIRAY_HOME; a driver joins with address 'auto'. Whatever the test
// leaves running when it fails is killed by process group (harness.ts).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Proc, cliMain, fixture, groupMembers, isAlive, resultsOf, trackGroup, untrackGroup, waitFor, type Outcome } from './harness.js';

describe('miniray start, status and stop with a real head and node', { timeout: 240_000 }, () => {
  let scratch = '';
  let home = '';
  const pids: number[] = [];
  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('MINIRAY_'))),
    MINIRAY_HOME: home,
    ...extra,
  });
  const cli = (...args: string[]): Promise<Outcome> => new Proc(`miniray ${args.join(' ')}`, process.execPath, [cliMain, ...args], env()).ended(90_000);
  const status = async (): Promise<string> => {
    const run = await cli('status');
    assert.equal(run.code, 0, run.stderr);
    return run.stdout;
  };
  const started = (run: Outcome): number => {
    assert.equal(run.code, 0, run.stderr);
    const pid = Number(/\(pid (\d+);/.exec(run.stdout)?.[1]);
    assert.ok(pid > 0, run.stdout);
    pids.push(pid);
    trackGroup(pid); // a daemon leads its own process group
    return pid;
  };

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'miniray-cli-cluster-'));
    home = join(scratch, 'home');
  });
  after(async () => {
    if (pids.some(isAlive)) await cli('stop', '--grace', '2');
    for (const pid of pids) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // Gone, as it should be.
      }
      untrackGroup(pid);
    }
    rmSync(scratch, { recursive: true, force: true });
  });

  test('start a head and a node, see them in status with x/y CPU, stop them all', async () => {
    const head = await cli('start', '--head', '--port', '0', '--num-cpus', '1');
    const headPid = started(head);
    const address = /Started the miniray head at (\S+) /.exec(head.stdout)?.[1] as string;
    assert.match(address, /^127\.0\.0\.1:\d+$/);
    assert.ok(!address.endsWith(':0'), 'the address printed is the port it got, not 0');
    assert.match(head.stdout, new RegExp(`miniray start --address ${address.replace(/\./g, '\\.')}`));

    const node = await cli('start', '--address', address, '--num-cpus', '2', '--resources', '{"disk": 1}');
    const nodePid = started(node);
    const nodeAddress = /Started a miniray node at (\S+) /.exec(node.stdout)?.[1] as string;
    assert.match(node.stdout, new RegExp(`joined to the head at ${address.replace(/\./g, '\\.')}`));

    const idle = await status();
    assert.match(idle, /Nodes: 2 alive, 0 dead/);
    assert.ok(idle.includes(address) && idle.includes(nodeAddress), idle);
    assert.match(idle, /^ {2}0\.0\/3\.0 CPU$/m);
    assert.match(idle, /^ {2}0\.0\/1\.0 disk$/m);

    // A driver on this machine joins with address 'auto'; its actor holds a CPU, which status shows.
    const driver = new Proc('driver namedOwner', process.execPath, [fixture('driver.mjs'), 'namedOwner', JSON.stringify({ name: 'cli', namespace: 'cli' })], env({ DRIVER_ADDRESS: 'auto' }));
    try {
      await driver.match(/READY/, 120_000);
      await waitFor('status to show 1 of 3 CPUs used', async () => /^ {2}1\.0\/3\.0 CPU$/m.test(await status()), 30_000);
      assert.match(await status(), /\(driver\)/, 'the driver is listed while it runs');
      driver.send('go');
      const outcome = await driver.ended();
      assert.equal(outcome.code, 0, driver.describe());
      assert.deepEqual(resultsOf(outcome.stdout)[0], { first: 1 });
    } finally {
      await driver.stop(2_000);
    }
    await waitFor('status to show every CPU free once the driver left', async () => /^ {2}0\.0\/3\.0 CPU$/m.test(await status()), 30_000);

    const stop = await cli('stop');
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /Stopped 2 miniray processes\./);
    for (const pid of [headPid, nodePid]) {
      assert.ok(!isAlive(pid), `process ${pid} is gone`);
      assert.deepEqual(groupMembers(pid), [], `nothing is left of process group ${pid}`);
    }
    assert.deepEqual(existsSync(join(home, 'processes')) ? readdirSync(join(home, 'processes')) : [], [], 'no process records are left');
    assert.ok(!existsSync(join(home, 'latest_address')), 'latest_address is removed with its head');

    const again = await cli('stop');
    assert.equal(again.code, 0);
    assert.match(again.stdout, /No miniray processes were running\./);
    const none = await cli('status');
    assert.equal(none.code, 1, 'status without a running head fails');
  });
});
