/**
 * The head's job manager (Ray's JobManager): a submitted job's entrypoint runs with a shell as a
 * child process of the head, in a process group of its own, with MINIRAY_ADDRESS set to the GCS so
 * that `init()` in it joins the cluster as a driver. Its stdout and stderr go to a log file in the
 * session directory. Its record (JobSubmissionRecord) is kept in the GCS's KV, namespace
 * 'job_submission', where the dashboard, `miniray job` and `state.listJobs` read it.
 *
 *   PENDING (working dir being made) -> RUNNING (process started) -> SUCCEEDED (exit 0)
 *                                                                 -> FAILED (other exit, signal, could not start)
 *                                                                 -> STOPPED (stop() or the head stopping)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { sessionDir } from '../cluster/session.js';
import { setting } from '../config/index.js';
import type { GcsClient } from '../gcs/client.js';
import { JOB_SUBMISSIONS, type JobSubmissionRecord } from '../state/types.js';
import { JobError } from './errors.js';
import { PackageStore, packageHashOf } from './package.js';

/** What the manager needs of the GCS: its KV, and its job table (to learn the driver's job ID). */
export type JobGcs = Pick<GcsClient, 'kvPut' | 'kvGet' | 'kvDel' | 'kvKeys' | 'listJobs'>;

export type JobStatus = JobSubmissionRecord['status'];
export const TERMINAL_STATUSES: readonly JobStatus[] = ['SUCCEEDED', 'FAILED', 'STOPPED'];
export const isTerminal = (status: JobStatus): boolean => TERMINAL_STATUSES.includes(status);

/** POST /api/jobs/'s body (Ray's JobSubmitRequest, in camelCase). */
export interface SubmitRequest {
  readonly entrypoint: string;
  readonly submissionId?: string;
  readonly runtimeEnv?: { readonly envVars?: Readonly<Record<string, string>>; readonly workingDir?: string };
  readonly metadata?: Readonly<Record<string, string>>;
  readonly entrypointNumCpus?: number;
}

/** A slice of a job's log, from byte `offset` on. */
export interface LogChunk {
  readonly logs: string;
  /** Where the next read should start: the end of what `logs` holds. */
  readonly nextOffset: number;
  /** Bytes the log file holds now. */
  readonly size: number;
}

export interface JobManagerOptions {
  readonly gcs: JobGcs;
  /** The GCS's HOST:PORT, given to the entrypoint as MINIRAY_ADDRESS. */
  readonly gcsAddress: string;
  /** The cluster token, given to the entrypoint as MINIRAY_AUTH_TOKEN. */
  readonly token: string;
  /** Where logs, packages and working dirs go: the head's session directory. */
  readonly sessionDir: string;
  /** How long stop() waits after SIGTERM before SIGKILL (setting jobStopGraceMs). */
  readonly stopGraceMs: number;
  /** Largest working-dir package accepted (setting jobMaxPackageBytes). */
  readonly maxPackageBytes: number;
  /** The environment jobs start from (default process.env). */
  readonly baseEnv?: NodeJS.ProcessEnv;
}

/** Names of jobs and files: what `--submission-id` may be. */
export const SUBMISSION_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const MAX_LOG_CHUNK_BYTES = 4 * 1024 * 1024;
const GROUP_POLL_MS = 50;
const JOB_ID_POLL_FIRST_MS = 250;
const JOB_ID_POLL_MAX_MS = 5000;

/** A job this manager runs, while it runs. */
interface Running {
  record: JobSubmissionRecord;
  child?: ChildProcess;
  stopRequested?: string;
  killTimer?: NodeJS.Timeout;
  ending?: boolean;
  /** Resolves once the record is final. */
  readonly done: Promise<void>;
  finish: () => void;
  /** Writes of the record, in order. */
  writes: Promise<void>;
}

export class JobManager {
  readonly packages: PackageStore;
  private readonly running = new Map<string, Running>();
  private closing = false;

  private constructor(private readonly options: JobManagerOptions) {
    this.packages = new PackageStore({ dir: options.sessionDir, maxBytes: options.maxPackageBytes });
  }

  /**
   * A manager for the head. Records in the GCS of jobs that were PENDING or RUNNING belong to a
   * head that is gone (a head restarted on the same Redis): their processes went with it, so they
   * are marked FAILED.
   */
  static async start(options: JobManagerOptions): Promise<JobManager> {
    const manager = new JobManager(options);
    offerOwnPackage(options.sessionDir);
    for (const record of await manager.list()) {
      if (isTerminal(record.status)) continue;
      const stopped = await manager.stopLeftOver(record.submissionId);
      const message = `the head that ran this job stopped before it ended${stopped ? ' (its processes, still running on this machine, were stopped)' : ''}`;
      await manager.write({ ...record, status: 'FAILED', message, endTimeMs: Date.now() });
    }
    return manager;
  }

  private groupFile(submissionId: string): string {
    return join(this.options.sessionDir, 'jobs', submissionId, 'pgid');
  }

  /**
   * Stops what is left of a job whose head was killed (a head cannot stop its jobs when it gets
   * SIGKILL): its process group, as that head noted it, if processes of that group still carry
   * the job's MINIRAY_JOB_SUBMISSION_ID (so that a reused PID is left alone). Linux only.
   */
  private async stopLeftOver(submissionId: string): Promise<boolean> {
    let pgid: number;
    try {
      pgid = Number(readFileSync(this.groupFile(submissionId), 'utf8'));
    } catch {
      return false;
    }
    if (!Number.isSafeInteger(pgid) || pgid <= 1 || !groupRunsJob(pgid, submissionId)) return false;
    const kill = (signal: NodeJS.Signals) => {
      try {
        process.kill(-pgid, signal);
      } catch {
        // gone
      }
    };
    kill('SIGTERM');
    const timer = setTimeout(() => kill('SIGKILL'), this.options.stopGraceMs);
    await groupGone(pgid);
    clearTimeout(timer);
    return true;
  }

  /** The head's manager: its session directory (MINIRAY_HOME), the jobStopGraceMs and jobMaxPackageBytes settings. */
  static forHead(head: { readonly gcs: JobGcs; readonly gcsAddress: string; readonly token: string }): Promise<JobManager> {
    return JobManager.start({ ...head, sessionDir: sessionDir(), stopGraceMs: setting('jobStopGraceMs'), maxPackageBytes: setting('jobMaxPackageBytes') });
  }

  logPath(submissionId: string): string {
    return join(this.options.sessionDir, 'logs', `job-driver-${submissionId}.log`);
  }

  private workingDirFor(submissionId: string): string {
    return join(this.options.sessionDir, 'jobs', submissionId, 'working_dir');
  }

  /**
   * Records the job (PENDING) and starts it in the background; resolves to its submission ID.
   * @throws JobError 400 for a taken or malformed submission ID, a working dir that does not exist,
   *   or once the head is stopping; 404 for a package not uploaded.
   */
  async submit(request: SubmitRequest): Promise<string> {
    if (this.closing) throw new JobError('the head is stopping: it takes no new jobs', 400);
    const submissionId = request.submissionId ?? `mrsubmit_${randomBytes(8).toString('hex')}`;
    if (!SUBMISSION_ID.test(submissionId)) {
      throw new JobError(`submissionId '${submissionId}' is not valid: use 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit`, 400);
    }
    if (request.entrypoint.trim() === '') throw new JobError('entrypoint is empty: give the command to run, e.g. "node script.mjs"', 400);
    const workingDir = request.runtimeEnv?.workingDir;
    if (workingDir !== undefined) await this.checkWorkingDir(workingDir);
    const record: JobSubmissionRecord = {
      submissionId,
      entrypoint: request.entrypoint,
      status: 'PENDING',
      metadata: { ...request.metadata },
      runtimeEnv: {
        ...(request.runtimeEnv?.envVars === undefined ? {} : { envVars: { ...request.runtimeEnv.envVars } }),
        ...(workingDir === undefined ? {} : { workingDir }),
      },
      entrypointNumCpus: request.entrypointNumCpus ?? 0,
      startTimeMs: Date.now(),
    };
    const taken = () => new JobError(`a job with submissionId '${submissionId}' exists already: choose another ID (or leave it out to get a new one)`, 400);
    if (this.running.has(submissionId)) throw taken();
    // Added only if absent: two heads' (or two requests') submissions of one ID cannot both win.
    if (!(await this.options.gcs.kvPut(JOB_SUBMISSIONS, submissionId, encode(record), false))) throw taken();
    let finish = () => {};
    const done = new Promise<void>((resolve) => (finish = resolve));
    const job: Running = { record, done, finish, writes: Promise.resolve() };
    this.running.set(submissionId, job);
    void this.run(job);
    return submissionId;
  }

  private async checkWorkingDir(workingDir: string): Promise<void> {
    const hash = packageHashOf(workingDir);
    if (hash !== undefined) {
      if (!(await this.packages.has(hash))) {
        throw new JobError(`runtimeEnv.workingDir ${workingDir}: there is no such package on the head: upload it first (PUT /api/packages/${hash}), as \`miniray job submit --working-dir\` does`, 404);
      }
      return;
    }
    if (!isAbsolute(workingDir)) {
      throw new JobError(`runtimeEnv.workingDir '${workingDir}' must be an absolute path on the head, or pkg://<sha256> of an uploaded package (\`miniray job submit --working-dir DIR\` uploads DIR)`, 400);
    }
    let isDir = false;
    try {
      isDir = statSync(workingDir).isDirectory();
    } catch {
      // reported below
    }
    if (!isDir) throw new JobError(`runtimeEnv.workingDir ${workingDir} is not a directory on the head (to send a local directory, use \`miniray job submit --working-dir DIR\`, which uploads it)`, 400);
  }

  private async run(job: Running): Promise<void> {
    const { submissionId } = job.record;
    let cwd: string | undefined;
    try {
      const workingDir = job.record.runtimeEnv.workingDir;
      const hash = workingDir === undefined ? undefined : packageHashOf(workingDir);
      if (hash !== undefined) {
        cwd = this.workingDirFor(submissionId);
        await this.packages.unpack(hash, cwd);
      } else {
        cwd = workingDir;
      }
    } catch (error) {
      return this.end(job, { status: 'FAILED', message: `its working directory could not be made: ${(error as Error).message}` });
    }
    if (job.stopRequested !== undefined) return this.end(job, { status: 'STOPPED', message: job.stopRequested });
    let fd: number;
    try {
      mkdirSync(join(this.options.sessionDir, 'logs'), { recursive: true, mode: 0o700 });
      fd = openSync(this.logPath(submissionId), 'a', 0o600);
    } catch (error) {
      return this.end(job, { status: 'FAILED', message: `its log file could not be opened: ${(error as Error).message}` });
    }
    // The head's Redis password is the head's business, not its jobs'.
    const { MINIRAY_REDIS_PASSWORD: _password, ...base } = this.options.baseEnv ?? process.env;
    const env: NodeJS.ProcessEnv = {
      ...base,
      // The driver listens where the other nodes reach this machine: the head's advertised host.
      MINIRAY_NODE_IP_ADDRESS: base['MINIRAY_NODE_IP_ADDRESS'] || hostOf(this.options.gcsAddress),
      ...job.record.runtimeEnv.envVars,
      MINIRAY_ADDRESS: this.options.gcsAddress,
      MINIRAY_AUTH_TOKEN: this.options.token,
      MINIRAY_JOB_SUBMISSION_ID: submissionId,
    };
    let child: ChildProcess;
    try {
      // detached: a process group of its own, so that stop() reaches the shell's children too.
      child = spawn(job.record.entrypoint, { shell: true, detached: true, cwd, env, stdio: ['ignore', fd, fd] });
    } catch (error) {
      closeSync(fd);
      return this.end(job, { status: 'FAILED', message: `its entrypoint could not be started: ${(error as Error).message}` });
    }
    closeSync(fd); // the child holds its own copy
    job.child = child;
    if (child.pid !== undefined) {
      try {
        // For a head restarted after a SIGKILL (stopLeftOver): the group it would have to stop.
        mkdirSync(join(this.options.sessionDir, 'jobs', submissionId), { recursive: true, mode: 0o700 });
        writeFileSync(this.groupFile(submissionId), String(child.pid), { mode: 0o600 });
      } catch {
        // Only a restarted head needs it.
      }
    }
    let started = false;
    child.once('spawn', () => {
      started = true;
      if (job.stopRequested !== undefined) this.signal(job);
      void this.update(job, { status: 'RUNNING' });
      this.watchForDriver(job, JOB_ID_POLL_FIRST_MS);
    });
    child.once('error', (error) => {
      if (!started) void this.end(job, { status: 'FAILED', message: `its entrypoint could not be started: ${error.message}` });
    });
    child.once('exit', async (code, signal) => {
      const exit = code === null ? {} : { driverExitCode: code };
      if (job.stopRequested !== undefined) {
        // The shell may go first and leave its children: STOPPED once the whole group is gone.
        if (child.pid !== undefined) await groupGone(child.pid);
        clearTimeout(job.killTimer);
        void this.end(job, { status: 'STOPPED', message: job.stopRequested, ...exit });
      } else if (code === 0) void this.end(job, { status: 'SUCCEEDED', message: 'the entrypoint exited with code 0', ...exit });
      else if (code !== null) void this.end(job, { status: 'FAILED', message: `the entrypoint exited with code ${code}`, ...exit });
      else void this.end(job, { status: 'FAILED', message: `the entrypoint was killed by signal ${signal ?? 'unknown'}` });
    });
  }

  /** SIGTERM to the job's process group now, SIGKILL after the grace. */
  private signal(job: Running): void {
    const pid = job.child?.pid;
    if (pid === undefined || job.killTimer !== undefined) return;
    const kill = (signal: NodeJS.Signals) => {
      try {
        process.kill(-pid, signal);
      } catch {
        // The group is gone already.
      }
    };
    kill('SIGTERM');
    job.killTimer = setTimeout(() => kill('SIGKILL'), this.options.stopGraceMs);
    job.killTimer.unref();
  }

  private update(job: Running, change: Partial<JobSubmissionRecord>): Promise<void> {
    job.record = { ...job.record, ...change };
    const record = job.record;
    // Queued, so that the KV ends with the latest record whatever order the GCS answers in.
    job.writes = job.writes.then(() => this.write(record)).catch((error: unknown) => {
      console.error(`miniray: the record of job ${record.submissionId} could not be written to the GCS:`, error);
    });
    return job.writes;
  }

  private async end(job: Running, change: Pick<JobSubmissionRecord, 'status'> & Partial<JobSubmissionRecord>): Promise<void> {
    if (job.ending === true) return;
    job.ending = true;
    const jobId = job.record.jobId ?? (await this.driverJobId(job.record.submissionId));
    await this.update(job, { ...change, endTimeMs: Date.now(), ...(jobId === undefined ? {} : { jobId }) });
    this.running.delete(job.record.submissionId);
    job.finish();
  }

  /**
   * Records the GCS job ID of the driver the entrypoint starts, once it has joined (asked with a
   * backoff while the job runs: the state API matches jobs by it).
   */
  private watchForDriver(job: Running, afterMs: number): void {
    const timer = setTimeout(async () => {
      const ended = () => job.ending === true; // read anew after the await
      if (ended() || job.record.jobId !== undefined) return;
      const jobId = await this.driverJobId(job.record.submissionId);
      if (ended()) return;
      if (jobId !== undefined) void this.update(job, { jobId });
      else this.watchForDriver(job, Math.min(afterMs * 2, JOB_ID_POLL_MAX_MS));
    }, afterMs);
    timer.unref();
  }

  /**
   * The GCS job ID of the driver the entrypoint started, once the GCS's job table says which
   * (a driver's job carries MINIRAY_JOB_SUBMISSION_ID as its `submissionId`, where the GCS keeps it).
   */
  private async driverJobId(submissionId: string): Promise<string | undefined> {
    try {
      const jobs = await this.options.gcs.listJobs();
      const entry = jobs.find((j) => (j as { readonly submissionId?: unknown }).submissionId === submissionId);
      return entry === undefined ? undefined : String(entry.jobId);
    } catch {
      return undefined;
    }
  }

  private async write(record: JobSubmissionRecord): Promise<void> {
    await this.options.gcs.kvPut(JOB_SUBMISSIONS, record.submissionId, encode(record), true);
  }

  /** The job's record, or undefined when there is none. */
  async get(submissionId: string): Promise<JobSubmissionRecord | undefined> {
    const own = this.running.get(submissionId);
    if (own !== undefined) {
      return own.record;
    }
    if (!SUBMISSION_ID.test(submissionId)) return undefined;
    const bytes = await this.options.gcs.kvGet(JOB_SUBMISSIONS, submissionId);
    return bytes === null ? undefined : decode(bytes);
  }

  /** Every job's record, oldest first. */
  async list(): Promise<JobSubmissionRecord[]> {
    const keys = await this.options.gcs.kvKeys(JOB_SUBMISSIONS);
    const records = await Promise.all(keys.map((key) => this.get(key)));
    return records.filter((r): r is JobSubmissionRecord => r !== undefined).sort((a, b) => a.startTimeMs - b.startTimeMs);
  }

  private async mustGet(submissionId: string): Promise<JobSubmissionRecord> {
    const record = await this.get(submissionId);
    if (record === undefined) throw new JobError(`there is no job '${submissionId}' (\`miniray job list\` lists them)`, 404);
    return record;
  }

  /**
   * Up to 4 MiB of the job's log from byte `offset` on, cut at a whole UTF-8 character.
   * @throws JobError 404 for an unknown job.
   */
  async logs(submissionId: string, offset = 0): Promise<LogChunk> {
    await this.mustGet(submissionId);
    let file;
    try {
      file = await open(this.logPath(submissionId), 'r');
    } catch {
      return { logs: '', nextOffset: offset, size: 0 }; // not started yet, or it never was
    }
    try {
      const size = (await file.stat()).size;
      const length = Math.max(0, Math.min(MAX_LOG_CHUNK_BYTES, size - offset));
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await file.read(buffer, 0, length, offset);
      const whole = wholeUtf8(buffer.subarray(0, bytesRead));
      return { logs: whole.toString('utf8'), nextOffset: offset + whole.length, size };
    } finally {
      await file.close();
    }
  }

  /**
   * Stops a job: SIGTERM to its process group, SIGKILL after the grace. Resolves to false when it
   * had ended already, true once it is STOPPED.
   * @throws JobError 404 for an unknown job.
   */
  async stop(submissionId: string, why = 'stopped by a request (miniray job stop)'): Promise<boolean> {
    const job = this.running.get(submissionId);
    if (job === undefined) {
      const record = await this.mustGet(submissionId);
      // A record this head does not run (its head is gone): nothing to signal.
      if (!isTerminal(record.status)) await this.write({ ...record, status: 'STOPPED', message: why, endTimeMs: Date.now() });
      return !isTerminal(record.status);
    }
    job.stopRequested ??= why;
    this.signal(job);
    await job.done;
    return true;
  }

  /**
   * Deletes a finished job's record, log and working directory.
   * @throws JobError 404 for an unknown job, 400 for one that has not finished.
   */
  async delete(submissionId: string): Promise<boolean> {
    const record = await this.mustGet(submissionId);
    if (!isTerminal(record.status)) {
      throw new JobError(`job '${submissionId}' is ${record.status}: only a finished job can be deleted (stop it first: miniray job stop ${submissionId})`, 400);
    }
    const deleted = await this.options.gcs.kvDel(JOB_SUBMISSIONS, submissionId);
    await rm(this.logPath(submissionId), { force: true });
    await rm(join(this.options.sessionDir, 'jobs', submissionId), { recursive: true, force: true });
    return deleted;
  }

  /** Resolves once the job's record is final (for the jobs this manager runs; at once for others). */
  async waitUntilDone(submissionId: string): Promise<void> {
    await this.running.get(submissionId)?.done;
  }

  /** The head is stopping: stops every job it runs (STOPPED) and takes no more. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.running.keys()].map((id) => this.stop(id, 'the head stopped')));
  }
}

/**
 * Makes `import 'miniray'` in a job resolve to the head's own miniray, as Ray's jobs use the
 * cluster's ray: Node looks for node_modules in every folder up from the script, and
 * <session>/jobs/node_modules/miniray (a link to the package this head runs) is on that way from
 * every unpacked working dir. A working dir that brings its own node_modules/miniray uses that.
 */
function offerOwnPackage(session: string): void {
  const root = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
  try {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name?: unknown };
    if (pkg.name !== 'miniray') return; // bundled into something else: nothing to offer
    const dir = join(session, 'jobs', 'node_modules');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const link = join(dir, 'miniray');
    try {
      if (readlinkSync(link) === root) return;
    } catch {
      // absent (or not a link: rename below says so)
    }
    const temp = `${link}.${process.pid}.tmp`;
    rmSync(temp, { force: true });
    symlinkSync(root, temp, 'dir');
    renameSync(temp, link); // atomic: a job starting meanwhile sees the old link or the new one
  } catch (error) {
    console.error(`miniray: jobs on this head cannot import 'miniray' unless their working dir has it: ${(error as Error).message}`);
  }
}

/** The host of HOST:PORT (an IPv6 host without its brackets). */
function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '');
}

/** Whether a live process of group `pgid` runs job `submissionId` (has its ID in its environment). */
function groupRunsJob(pgid: number, submissionId: string): boolean {
  if (process.platform !== 'linux') return false;
  const mark = Buffer.from(`\0MINIRAY_JOB_SUBMISSION_ID=${submissionId}\0`);
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return false;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) !== pgid || state === 'Z') continue;
      const environ = Buffer.concat([Buffer.from([0]), readFileSync(`/proc/${entry}/environ`)]);
      if (environ.includes(mark)) return true;
    } catch {
      // It exited while we looked, or is not ours to read.
    }
  }
  return false;
}

/** Resolves once no process is left in group `pgid` (stop()'s SIGKILL after the grace sees to it). */
async function groupGone(pgid: number): Promise<void> {
  for (;;) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return;
    }
    await delay(GROUP_POLL_MS);
  }
}

function encode(record: JobSubmissionRecord): Uint8Array {
  return Buffer.from(JSON.stringify(record), 'utf8');
}

function decode(bytes: Uint8Array): JobSubmissionRecord | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
    if (typeof value !== 'object' || value === null) return undefined;
    const r = value as Record<string, unknown>;
    if (typeof r['submissionId'] !== 'string' || typeof r['entrypoint'] !== 'string' || typeof r['status'] !== 'string') return undefined;
    return value as JobSubmissionRecord;
  } catch {
    return undefined; // not ours to interpret
  }
}

/** `bytes` without a UTF-8 character cut off at its end (the rest comes with the next read). */
export function wholeUtf8(bytes: Buffer): Buffer {
  let start = bytes.length - 1;
  // Back over continuation bytes (10xxxxxx) to the last lead byte, at most 3.
  while (start >= 0 && bytes.length - start <= 4 && ((bytes[start] as number) & 0xc0) === 0x80) start--;
  if (start < 0) return bytes;
  const lead = bytes[start] as number;
  const needed = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return bytes.length - start < needed ? bytes.subarray(0, start) : bytes;
}
