/**
 * Running a node as a daemon: the foreground process (`--block`), the detached launch that waits
 * for it to come up, and `miniray stop`. A foreground process announces that it is up by writing
 * its processes/<pid>.json last; the launcher polls for that file (or the child's exit).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { serveHealthz, type Health, type HealthzServer } from '../cluster/healthz.js';
import { startNode, type RunningNode, type StartNodeOptions } from '../cluster/start.js';
import {
  clearLatestAddress,
  logsDir,
  readProcessRecord,
  readProcessRecords,
  removeProcessRecord,
  writeLatestAddress,
  writeProcessRecord,
  type ProcessRecord,
} from '../cluster/session.js';
import { MinirayError } from '../errors/index.js';

/** A daemon did not come up, or `miniray stop` could not end a process. */
export class DaemonError extends MinirayError {
  static override readonly errorName = 'DaemonError';
}

type Role = ProcessRecord['role'];

const POLL_MS = 50;
const STARTUP_TIMEOUT_MS = 60_000;
const LOG_TAIL_LINES = 20;

/**
 * TEST ONLY. MINIRAY_CLI_TEST_FAKE_NODE replaces startNode in `--block` by a stand-in that holds
 * the process open until stopped, so the daemon and stop machinery is tested across real processes
 * without a cluster: '1' comes up, 'fail' fails to start, 'stubborn' ignores stop().
 */
function testFakeNode(mode: string): (options: StartNodeOptions) => Promise<RunningNode> {
  return async (options) => {
    if (mode === 'fail') throw new Error('fake node failed to start (MINIRAY_CLI_TEST_FAKE_NODE=fail)');
    const keepAlive = setInterval(() => {}, 1 << 30);
    let end = () => {};
    const stopped = new Promise<void>((resolve) => (end = resolve));
    const address = `${options.nodeIpAddress ?? '127.0.0.1'}:${options.port ?? 0}`;
    // A stubborn node has a child process, as a node has for actors, so that the test sees it killed too.
    if (mode === 'stubborn') console.log(`fake node's child process: pid ${spawn('sleep', ['600'], { stdio: 'ignore' }).pid}`);
    const stop = async () => {
      if (mode === 'stubborn') return new Promise<void>(() => {});
      clearInterval(keepAlive);
      end();
    };
    return { nodeId: 'fake', address, gcsAddress: options.address ?? address, health: () => ({ ok: true }), stop, stopped };
  };
}

/** Where to serve GET /healthz (see src/cluster/healthz.ts). */
export interface HealthzPlace {
  readonly host: string;
  /** 0: any free port. */
  readonly port: number;
}

/**
 * Runs a head or node in this process until SIGINT/SIGTERM (then stops it) or until it ends on its
 * own. Returns the exit code: 0 when stopped by a signal, 1 when the node ended by itself. With
 * `healthz`, GET /healthz is served from before the node joins (503 until it is a member) to exit.
 */
export async function runForeground(role: Role, options: StartNodeOptions, onUp: (node: RunningNode) => void, healthz?: HealthzPlace): Promise<number> {
  let node: RunningNode | undefined;
  let signalled = false;
  const health = (): Health => {
    if (signalled) return { ok: false, reason: 'stopping' };
    return node === undefined ? { ok: false, reason: 'starting: not a member of the cluster yet' } : node.health();
  };
  let probes: HealthzServer | undefined;
  if (healthz !== undefined) {
    probes = await serveHealthz({ ...healthz, health });
    console.log(`miniray: serving GET /healthz at ${probes.url}`);
  }
  const fake = process.env.MINIRAY_CLI_TEST_FAKE_NODE;
  try {
    node = await (fake ? testFakeNode(fake) : startNode)(options);
  } catch (error) {
    await probes?.close();
    throw error;
  }
  const up = node;
  let cleaned = false;
  const cleanUp = () => {
    if (cleaned) return;
    cleaned = true;
    removeProcessRecord(process.pid);
    if (role === 'head') clearLatestAddress(up.address);
  };
  process.on('exit', cleanUp);

  // Signal handlers go in before the record is written: `miniray stop` may signal as soon as it is there.
  const ended = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      // A second signal means "now": the first one's stop() is taking too long.
      if (signalled) process.exit(1);
      signalled = true;
      console.log(`miniray: ${signal}: stopping the ${role}`);
      up.stop().then(
        () => resolve(0),
        (error: unknown) => {
          console.error(`miniray: stopping the ${role} failed:`, error);
          resolve(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    void up.stopped.then(() => resolve(signalled ? 0 : 1));
  });
  if (role === 'head') writeLatestAddress(up.address);
  writeProcessRecord({ pid: process.pid, role, address: up.address, startedAt: new Date().toISOString(), ...(up.dashboardUrl === undefined ? {} : { dashboardUrl: up.dashboardUrl }) });
  onUp(up);
  const code = await ended;
  await probes?.close();
  if (code !== 0 && !signalled) console.error(`miniray: the ${role} stopped by itself (see the messages above)`);
  cleanUp();
  return code;
}

function logTail(path: string): string {
  try {
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    return lines.slice(-LOG_TAIL_LINES).map((line) => `  | ${line}`).join('\n');
  } catch {
    return '  | (no log)';
  }
}

/**
 * Launches this same command with `--block`, detached, its output in sessionDir()/logs/, and waits
 * until it is up (its process record appears) or fails (it exits, or STARTUP_TIMEOUT_MS passes).
 */
export async function startDetached(role: Role, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<{ record: ProcessRecord; logPath: string }> {
  const dir = logsDir();
  const tempLog = join(dir, `${role}-${Date.now()}-${process.pid}.log`);
  const fd = openSync(tempLog, 'a', 0o600);
  const script = process.argv[1];
  if (script === undefined) throw new DaemonError('miniray start: cannot tell which script to relaunch (process.argv[1] is unset)');
  const child = spawn(process.execPath, [...process.execArgv, script, ...args, '--block'], {
    detached: true,
    stdio: ['ignore', fd, fd],
    ...(env === undefined ? {} : { env }),
  });
  closeSync(fd);
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ? `was killed by ${signal}` : `exited with code ${code}`));
    child.once('error', (error) => resolve(`could not be started: ${error.message}`));
  });
  const pid = child.pid;
  let logPath = tempLog;
  if (pid !== undefined) {
    logPath = join(dir, `${role}-${pid}.log`);
    renameSync(tempLog, logPath);
  }

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    const record = pid === undefined ? undefined : readProcessRecord(pid);
    if (record !== undefined) {
      child.unref();
      return { record, logPath };
    }
    const outcome = await Promise.race([exited, delay(POLL_MS).then(() => undefined)]);
    if (outcome !== undefined) {
      throw new DaemonError(`miniray start: the ${role} ${outcome} before it came up. The end of its log, ${logPath}:\n${logTail(logPath)}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new DaemonError(
        `miniray start: the ${role} did not come up within ${STARTUP_TIMEOUT_MS / 1000} s, so it was killed. ` +
          `The end of its log, ${logPath}:\n${logTail(logPath)}`,
      );
    }
  }
}

/**
 * Whether `pid` is a live process of the `miniray` command (not a pid reused by another program,
 * nor a zombie, whose cmdline is empty). Where there is no /proc, a live pid is taken as ours.
 */
export function isMinirayProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false; // ESRCH: gone; EPERM: another user's process, so not one we started
  }
  if (process.platform !== 'linux') return true;
  let args: string[];
  try {
    args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return false;
  }
  return args.includes('start') && args.some((arg) => /(^|[\\/])miniray$|[\\/]cli[\\/]main\.[cm]?[jt]s$/.test(arg));
}

/**
 * Whether `pid` leads its own process group, as a daemon `miniray start` launched does (detached):
 * then SIGKILL goes to the group, so the node's child processes (actors) do not outlive it. A
 * `--block` run from a shell may share its group with other programs, so it is signalled alone.
 */
function leadsGroup(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (in parentheses, which may hold spaces): state, ppid, pgrp.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === pid;
  } catch {
    return false;
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await delay(POLL_MS);
  }
  return true;
}

function forget(record: ProcessRecord): void {
  removeProcessRecord(record.pid);
  if (record.role === 'head') clearLatestAddress(record.address);
}

/**
 * Stops every process `miniray start` launched on this machine: SIGTERM, then SIGKILL for those
 * still running after `graceMs`. Records of processes already gone are removed.
 */
export async function stopAll(graceMs: number): Promise<{ stopped: ProcessRecord[]; killed: ProcessRecord[]; malformed: string[] }> {
  const { records, malformed } = readProcessRecords();
  const live: ProcessRecord[] = [];
  for (const record of records) {
    if (isMinirayProcess(record.pid)) live.push(record);
    else forget(record);
  }
  for (const { pid } of live) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // It exited between the check and the signal: what we wanted.
    }
  }
  const running = () => live.filter(({ pid }) => isMinirayProcess(pid));
  await waitUntil(() => running().length === 0, graceMs);
  const killed = running();
  for (const { pid } of killed) {
    try {
      process.kill(leadsGroup(pid) ? -pid : pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  if (!(await waitUntil(() => running().length === 0, 5_000))) {
    const pids = running().map((r) => r.pid).join(', ');
    throw new DaemonError(`miniray stop: process ${pids} still runs after SIGKILL; it may be stuck in the kernel (see \`ps -o pid,stat,cmd -p ${pids}\`)`);
  }
  for (const record of live) forget(record);
  return { stopped: live, killed, malformed };
}
