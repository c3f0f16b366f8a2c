// The `miniray` command across real processes, with a temp MINIRAY_HOME. The node itself is the
// CLI's test-only stand-in (MINIRAY_CLI_TEST_FAKE_NODE, see src/cli/daemon.ts), so what is tested
// here is the command: flags, the detached launch, the session files and `miniray stop`. Starting
// real heads and nodes is the cluster harness's part (test/cluster/).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped by whoever adopted it) has an empty cmdline.
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8') !== '';
  } catch {
    return process.platform !== 'linux';
  }
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}

describe('the miniray command', () => {
  let scratch = '';
  let home = '';
  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('MINIRAY_')));
    return { ...clean, MINIRAY_HOME: home, MINIRAY_CLI_TEST_FAKE_NODE: '1', ...extra };
  };
  const launch = (args: readonly string[], extra?: Record<string, string>) =>
    spawn(process.execPath, ['--import', 'tsx', main, ...args], { env: env(extra), stdio: ['ignore', 'pipe', 'pipe'] });
  const cli = (args: readonly string[], extra?: Record<string, string>): Promise<Run> =>
    new Promise((resolve, reject) => {
      const child = launch(args, extra);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`miniray ${args.join(' ')} did not finish in 120 s:\n${stdout}\n${stderr}`));
      }, 120_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  const record = (pid: number) => join(home, 'processes', `${pid}.json`);
  const pidIn = (output: string) => Number(/\(pid (\d+);/.exec(output)?.[1]);

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'miniray-cli-'));
    home = join(scratch, 'home');
  });
  after(async () => {
    await cli(['stop', '--grace', '0']);
    rmSync(scratch, { recursive: true, force: true });
  });

  test('--help of the program and of each command', { timeout: 120_000 }, async () => {
    const top = await cli(['--help']);
    assert.equal(top.code, 0);
    for (const command of ['start', 'status', 'stop']) assert.match(top.stdout, new RegExp(`^\\s+${command} `, 'm'));
    const start = await cli(['start', '--help']);
    assert.equal(start.code, 0);
    for (const flag of ['--head', '--address', '--port', '--num-cpus', '--num-gpus', '--resources', '--node-ip-address', '--advertise-address', '--healthz-port', '--healthz-host', '--tls-cert', '--tls-key', '--dashboard-port', '--dashboard-host', '--block']) {
      assert.ok(start.stdout.includes(flag), `start --help lacks ${flag}`);
    }
    assert.match((await cli(['status', '--help'])).stdout, /--address/);
    assert.match((await cli(['stop', '--help'])).stdout, /--grace/);
  });

  test('usage errors exit 1 with a message that says what to give', { timeout: 240_000 }, async () => {
    const cases: [readonly string[], RegExp][] = [
      [['start'], /needs --head .* or --address HOST:PORT/],
      [['start', '--head', '--address', '127.0.0.1:6380'], /--head.*cannot be used with.*--address/],
      [['start', '--head', '--resources', '{"CPU": 2}'], /cannot set CPU: use --num-cpus/],
      [['start', '--head', '--resources', '[2]'], /must be a JSON object/],
      [['start', '--head', '--resources', '{"disk": -2}'], /"disk" must be a number, 0 or more/],
      [['start', '--head', '--num-cpus', 'many'], /--num-cpus must be a whole number/],
      [['start', '--address', 'nowhere'], /--address must be the head's HOST:PORT/],
      [['start', '--head', '--tls-cert', 'cert.pem'], /--tls-cert and --tls-key go together/],
      [['start', '--head', '--bogus'], /unknown option '--bogus'/],
      [['start', '--head', '--healthz-port', '80000'], /--healthz-port must be a port number from 0 to 65535, not '80000'/],
      [['start', '--head', '--node-ip-address', '0.0.0.0'], /--node-ip-address 0\.0\.0\.0 listens on every interface.*--advertise-address/],
      [['start', '--address', '10.0.0.1:6380', '--node-ip-address', '::', '--advertise-address', '0.0.0.0'], /--advertise-address must be an address the other nodes can reach/],
      [['start', '--head', '--dashboard-port', '80000'], /--dashboard-port must be a port number from 0 to 65535, not '80000'/],
      [['start', '--address', '127.0.0.1:6380', '--dashboard-port', '8265'], /--dashboard-port is for the head .*a node serves no dashboard/],
      [['launch'], /unknown command 'launch'/],
      [['status'], /address 'auto' .*`miniray start --head`/],
    ];
    for (const [args, message] of cases) {
      const run = await cli(args);
      assert.equal(run.code, 1, `miniray ${args.join(' ')} exited ${run.code}`);
      assert.match(run.stderr, message, `miniray ${args.join(' ')}`);
    }
    const fromEnv = await cli(['start', '--head'], { MINIRAY_HEALTHZ_PORT: 'eighty' });
    assert.equal(fromEnv.code, 1);
    assert.match(fromEnv.stderr, /from env 'MINIRAY_HEALTHZ_PORT' is invalid.*--healthz-port must be a port number/);
    assert.ok(!existsSync(join(home, 'processes')) || !statSync(join(home, 'processes')).isFile());
  });

  test('start --head returns once the head is up; stop ends it and removes its files', { timeout: 240_000 }, async () => {
    const started = await cli(['start', '--head', '--port', '6399']);
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, /Started the miniray head at 127\.0\.0\.1:6399/);
    assert.match(started.stdout, /miniray start --address 127\.0\.0\.1:6399/);
    assert.match(started.stdout, /await init\(\{ address: '127\.0\.0\.1:6399' \}\)/);
    assert.ok(started.stdout.includes(join(home, 'auth_token')), 'says where the token is');
    assert.match(started.stdout, /MINIRAY_AUTH_TOKEN/);
    const pid = pidIn(started.stdout);
    assert.ok(alive(pid), 'the head runs on after `miniray start` returned');
    assert.equal(JSON.parse(readFileSync(record(pid), 'utf8')).address, '127.0.0.1:6399');
    assert.equal(readFileSync(join(home, 'latest_address'), 'utf8').trim(), '127.0.0.1:6399');
    assert.equal(statSync(join(home, 'auth_token')).mode & 0o777, 0o600);
    assert.match(readFileSync(join(home, 'logs', `head-${pid}.log`), 'utf8'), /Started the miniray head/);

    // A node on the same machine finds the token the head made.
    const node = await cli(['start', '--address', '127.0.0.1:6399', '--num-cpus', '1', '--resources', '{"disk": 2}']);
    assert.equal(node.code, 0, node.stderr);
    const nodePid = pidIn(node.stdout);
    assert.ok(alive(nodePid));

    const stopped = await cli(['stop']);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, /Stopped 2 miniray processes\./);
    await waitFor('the head and node to exit', () => !alive(pid) && !alive(nodePid), 30_000);
    assert.ok(!existsSync(record(pid)) && !existsSync(record(nodePid)));
    assert.ok(!existsSync(join(home, 'latest_address')));
    assert.match((await cli(['stop'])).stdout, /No miniray processes were running/);
  });

  test('a node with no token anywhere is refused before it starts; MINIRAY_AUTH_TOKEN lets it join', { timeout: 240_000 }, async () => {
    rmSync(join(home, 'auth_token'), { force: true });
    const refused = await cli(['start', '--address', '127.0.0.1:6399']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /no cluster token: set MINIRAY_AUTH_TOKEN to the head's token/);
    const joined = await cli(['start', '--address', '127.0.0.1:6399'], { MINIRAY_AUTH_TOKEN: 'shared-secret' });
    assert.equal(joined.code, 0, joined.stderr);
    assert.match((await cli(['stop'])).stdout, /Stopped 1 miniray process\./);
  });

  test('a node that fails to start: `miniray start` exits 1 with the end of its log', { timeout: 120_000 }, async () => {
    const run = await cli(['start', '--head'], { MINIRAY_CLI_TEST_FAKE_NODE: 'fail' });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /the head exited with code 1 before it came up/);
    assert.match(run.stderr, /\| .*fake node failed to start/);
    assert.match(run.stderr, /logs[\\/]head-\d+\.log/);
  });

  test('stop kills what ignores SIGTERM after --grace, with its child processes', { timeout: 120_000 }, async () => {
    const started = await cli(['start', '--head', '--port', '0'], { MINIRAY_CLI_TEST_FAKE_NODE: 'stubborn' });
    assert.equal(started.code, 0, started.stderr);
    const pid = pidIn(started.stdout);
    const log = readFileSync(join(home, 'logs', `head-${pid}.log`), 'utf8');
    const grandchild = Number(/child process: pid (\d+)/.exec(log)?.[1]);
    assert.ok(alive(grandchild), log);
    const stopped = await cli(['stop', '--grace', '1']);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, new RegExp(`Stopped 1 miniray process \\(1 killed after 1 s of grace: ${pid}\\)`));
    await waitFor('the stubborn head and its child to die', () => !alive(pid) && !alive(grandchild), 30_000);
    assert.ok(!existsSync(record(pid)));
  });

  test('stop leaves a live process that is not miniray alone, and forgets records of processes gone', { timeout: 120_000 }, async () => {
    mkdirSync(join(home, 'processes'), { recursive: true });
    const impostor = { pid: process.pid, role: 'node', address: '127.0.0.1:1', startedAt: new Date().toISOString() };
    writeFileSync(record(process.pid), JSON.stringify(impostor));
    const stopped = await cli(['stop', '--grace', '0']);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, /No miniray processes were running/);
    assert.ok(!existsSync(record(process.pid)), 'the stale record is removed');
  });

  test('MINIRAY_HEALTHZ_PORT: the daemon serves GET /healthz while it runs, and stop closes it', { timeout: 120_000 }, async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const started = await cli(['start', '--head', '--port', '0'], { MINIRAY_HEALTHZ_PORT: String(port) });
    assert.equal(started.code, 0, started.stderr);
    assert.ok(started.stdout.includes(`GET /healthz is served at http://127.0.0.1:${port}/healthz`), started.stdout);
    const answer = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.deepEqual([answer.status, await answer.text()], [200, 'ok\n']);
    assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 404);
    assert.match((await cli(['stop'])).stdout, /Stopped 1 miniray process\./);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'nothing listens once it stopped');
  });

  test('start --block runs in the foreground and stops on SIGINT, removing its files', { timeout: 120_000 }, async () => {
    const child = launch(['start', '--head', '--port', '6398', '--block']);
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const pid = child.pid ?? 0;
    await waitFor('the foreground head to write its record', () => existsSync(record(pid)));
    assert.equal(readFileSync(join(home, 'latest_address'), 'utf8').trim(), '127.0.0.1:6398');
    child.kill('SIGINT');
    assert.equal(await exited, 0);
    assert.match(stdout, /Started the miniray head at 127\.0\.0\.1:6398 .*in the foreground/);
    assert.ok(!existsSync(record(pid)));
    assert.ok(!existsSync(join(home, 'latest_address')));
  });
});
