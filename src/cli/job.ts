/**
 * `miniray job ...`: Ray's job CLI over the head's Jobs API (src/jobs/routes.ts), on its dashboard
 * port. Every request carries the cluster token (Authorization: Bearer) from MINIRAY_AUTH_TOKEN or
 * the session directory; a 401 or 403 says how to give the right one. `--working-dir` is packed
 * here and uploaded, so that it works with a head on another machine.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { Command, Option } from 'commander';
import { readLatestAddress, readProcessRecords, resolveToken, sessionDir } from '../cluster/session.js';
import { setting } from '../config/index.js';
import { InvalidOptionError, MinirayError } from '../errors/index.js';
import type { JobSubmissionRecord } from '../state/types.js';
import { asArgParser } from './flags.js';

export const DEFAULT_JOBS_ADDRESS = 'http://127.0.0.1:8265';
const FOLLOW_POLL_MS = 500;
const TERMINAL = new Set<JobSubmissionRecord['status']>(['SUCCEEDED', 'FAILED', 'STOPPED']);

/** A Jobs API request the head refused or could not be sent; `status` is the HTTP status (0: no answer). */
export class JobRequestError extends MinirayError {
  static override readonly errorName = 'JobRequestError';
  constructor(
    message: string,
    readonly status: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A job `submit` or `logs --follow` waited for ended otherwise than SUCCEEDED (the command exits 1). */
export class JobFailedError extends MinirayError {
  static override readonly errorName = 'JobFailedError';
}

/** The dashboard of the latest head started on this machine, when its process record names one. */
export function latestHeadDashboard(): string | undefined {
  const latest = readLatestAddress();
  if (latest === undefined) return undefined;
  return readProcessRecords().records.find((r) => r.role === 'head' && r.address === latest && r.dashboardUrl !== undefined)?.dashboardUrl;
}

/**
 * The dashboard's URL: --address, else MINIRAY_ADDRESS when it is an http(s) URL, else the latest
 * head's on this machine (it may serve on another port than 8265), else 127.0.0.1:8265.
 */
export function jobsAddress(flag: string | undefined, env = process.env.MINIRAY_ADDRESS, latest: () => string | undefined = latestHeadDashboard): string {
  const fromEnv = env?.trim();
  const given = flag ?? (fromEnv !== undefined && /^https?:\/\//i.test(fromEnv) ? fromEnv : latest() ?? DEFAULT_JOBS_ADDRESS);
  let url: URL;
  try {
    url = new URL(given);
  } catch {
    url = new URL('invalid:');
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.host === '') {
    throw new InvalidOptionError(
      `--address must be the head's dashboard URL, http://HOST:PORT (default ${DEFAULT_JOBS_ADDRESS}, as \`miniray start --head\` printed it), not '${given}'` +
        (/^[^/]+:\d+$/.test(given) ? ` (give it with http://: http://${given}, if that is the dashboard's port; the GCS's port, 6380 by default, does not serve the Jobs API)` : ''),
      '--address',
    );
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** The entrypoint from the words after `--`: one word is a shell command line as is; more are quoted each. */
export function entrypointOf(words: readonly string[]): string {
  if (words.length === 1) return words[0] as string;
  return words.map((w) => (/^[A-Za-z0-9_\-.,/:=@%+]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** A client of one head's Jobs API. */
export class JobsClient {
  constructor(
    readonly address: string,
    private readonly token: string | undefined,
  ) {}

  async request<T>(method: string, path: string, body?: { json: unknown } | { bytes: Uint8Array }): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.token !== undefined) headers['authorization'] = `Bearer ${this.token}`;
    let payload: string | Uint8Array | undefined;
    if (body !== undefined && 'json' in body) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body.json);
    } else if (body !== undefined) {
      headers['content-type'] = 'application/octet-stream';
      payload = body.bytes;
    }
    let response: Response;
    try {
      response = await fetch(`${this.address}${path}`, { method, headers, ...(payload === undefined ? {} : { body: payload }) });
    } catch (error) {
      const why = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new JobRequestError(
        `cannot reach the Jobs API at ${this.address} (${why?.code ?? why?.message ?? (error as Error).message}): is the head up with its dashboard ` +
          `(\`miniray start --head\` serves it on ${DEFAULT_JOBS_ADDRESS}; --dashboard-port changes the port)? Give its URL with --address http://HOST:PORT`,
        0,
        { cause: error },
      );
    }
    const text = await response.text();
    let answer: unknown;
    try {
      answer = text === '' ? undefined : JSON.parse(text);
    } catch {
      answer = undefined;
    }
    if (response.ok) return answer as T;
    const message = typeof answer === 'object' && answer !== null && typeof (answer as { message?: unknown }).message === 'string' ? (answer as { message: string }).message : text.slice(0, 500);
    throw new JobRequestError(this.explain(response.status, message), response.status);
  }

  private explain(status: number, message: string): string {
    const where = `${sessionDir()}/auth_token`;
    if (status === 401) {
      return `the head at ${this.address} wants the cluster token, and none was sent: set MINIRAY_AUTH_TOKEN to the head's token ` +
        `(on the head's machine it is in ${where}, or the MINIRAY_AUTH_TOKEN it was started with), or MINIRAY_AUTH_TOKEN_PATH to a file that holds it`;
    }
    if (status === 403) {
      return `the head at ${this.address} refused the cluster token sent (it is not this cluster's): set MINIRAY_AUTH_TOKEN to the head's token ` +
        `(on the head's machine it is in ${where}); the token used here came from ${process.env.MINIRAY_AUTH_TOKEN?.trim() ? 'MINIRAY_AUTH_TOKEN' : process.env.MINIRAY_AUTH_TOKEN_PATH?.trim() ? 'MINIRAY_AUTH_TOKEN_PATH' : where}`;
    }
    return `${message} (HTTP ${status})`;
  }

  get(id: string): Promise<JobSubmissionRecord> {
    return this.request('GET', `/api/jobs/${encodeURIComponent(id)}`);
  }

  logs(id: string, offset: number): Promise<{ logs: string; nextOffset: number; size: number }> {
    return this.request('GET', `/api/jobs/${encodeURIComponent(id)}/logs?offset=${offset}`);
  }

  /**
   * Writes the job's log from `offset` to `out` until it has all of it; with `follow`, until the job
   * has ended and its log is all written. Resolves to the job's last record.
   */
  async tail(id: string, follow: boolean, out: (text: string) => void, offset = 0): Promise<JobSubmissionRecord> {
    for (;;) {
      // The status first: once a job has ended, its log is complete, so what is read next is all of it.
      const record = await this.get(id);
      const ended = TERMINAL.has(record.status);
      for (;;) {
        const chunk = await this.logs(id, offset);
        if (chunk.logs !== '') out(chunk.logs);
        const progressed = chunk.nextOffset > offset;
        offset = chunk.nextOffset;
        if (!progressed || offset >= chunk.size) break;
      }
      if (!follow || ended) return record;
      await delay(FOLLOW_POLL_MS);
    }
  }
}

function parseJsonObject(flag: string): (text: string) => Record<string, unknown> {
  return asArgParser((text) => {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new InvalidOptionError(`${flag} must be a JSON object, e.g. '{"envVars": {"A": "1"}}': ${(error as Error).message}`, flag);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidOptionError(`${flag} must be a JSON object, not ${text}`, flag);
    return value as Record<string, unknown>;
  });
}

const addressOption = () =>
  new Option('--address <url>', `the head's dashboard, http://HOST:PORT (default: MINIRAY_ADDRESS when it is an http(s) URL, else the dashboard of the latest head started on this machine, else ${DEFAULT_JOBS_ADDRESS})`);

function clientFor(flags: { address?: string }): JobsClient {
  return new JobsClient(jobsAddress(flags.address), resolveToken());
}

/** Where the commands write: logs and results to stdout, progress to stderr (tests swap them). */
export const jobOutput = {
  stdout: (text: string): void => void process.stdout.write(text),
  stderr: (text: string): void => void process.stderr.write(text),
};
const write = (text: string) => jobOutput.stdout(text);
const note = (text: string) => jobOutput.stderr(`${text}\n`);

function ending(record: JobSubmissionRecord): string {
  return `Job '${record.submissionId}' ${record.status}${record.message === undefined ? '' : `: ${record.message}`}`;
}

interface SubmitFlags {
  readonly address?: string;
  readonly workingDir?: string;
  readonly submissionId?: string;
  readonly runtimeEnvJson?: Record<string, unknown>;
  readonly entrypointNumCpus?: number;
  readonly metadataJson?: Record<string, unknown>;
  readonly wait: boolean;
}

async function submit(words: string[], flags: SubmitFlags): Promise<void> {
  const client = clientFor(flags);
  const runtimeEnv: Record<string, unknown> = { ...flags.runtimeEnvJson };
  if (flags.workingDir !== undefined) {
    const { packDirectory } = await import('../jobs/package.js');
    const { bytes, sha256, leftOut } = await packDirectory(flags.workingDir, setting('jobMaxPackageBytes')).catch((error: unknown) => {
      throw new InvalidOptionError((error as Error).message, '--working-dir', { cause: error });
    });
    if (leftOut.length > 0) {
      const shown = leftOut.slice(0, 5).join(', ') + (leftOut.length > 5 ? `, and ${leftOut.length - 5} more` : '');
      note(`Left out of the upload: links that point outside ${flags.workingDir} (${shown}); the head has its own miniray for 'import "miniray"'.`);
    }
    const known = await client.request('GET', `/api/packages/${sha256}`).then(
      () => true,
      (error: unknown) => {
        if (error instanceof JobRequestError && error.status === 404) return false;
        throw error;
      },
    );
    if (!known) {
      note(`Uploading ${flags.workingDir} (${bytes.length} bytes packed) to ${client.address}...`);
      await client.request('PUT', `/api/packages/${sha256}`, { bytes });
    }
    runtimeEnv['workingDir'] = `pkg://${sha256}`;
  }
  const body = {
    entrypoint: entrypointOf(words),
    ...(flags.submissionId === undefined ? {} : { submissionId: flags.submissionId }),
    ...(Object.keys(runtimeEnv).length === 0 ? {} : { runtimeEnv }),
    ...(flags.metadataJson === undefined ? {} : { metadata: flags.metadataJson }),
    ...(flags.entrypointNumCpus === undefined ? {} : { entrypointNumCpus: flags.entrypointNumCpus }),
  };
  const { submissionId } = await client.request<{ submissionId: string }>('POST', '/api/jobs/', { json: body });
  write(`${submissionId}\n`);
  note(`Job '${submissionId}' submitted to ${client.address}.`);
  const addressFlag = flags.address === undefined ? '' : ` --address ${client.address}`;
  if (!flags.wait) {
    note(`  Status: miniray job status ${submissionId}${addressFlag}\n  Logs:   miniray job logs ${submissionId} --follow${addressFlag}\n  Stop:   miniray job stop ${submissionId}${addressFlag}`);
    return;
  }
  note(`Following its logs until it ends (Ctrl-C stops following, not the job; --no-wait returns at once):`);
  const record = await client.tail(submissionId, true, write);
  if (record.status !== 'SUCCEEDED') throw new JobFailedError(ending(record));
  note(ending(record));
}

function formatList(records: readonly JobSubmissionRecord[]): string {
  if (records.length === 0) return 'No jobs.\n';
  const rows = [
    ['SUBMISSION ID', 'STATUS', 'START', 'END', 'ENTRYPOINT', 'MESSAGE'],
    ...records.map((r) => [
      r.submissionId,
      r.status,
      new Date(r.startTimeMs).toISOString(),
      r.endTimeMs === undefined ? '-' : new Date(r.endTimeMs).toISOString(),
      r.entrypoint.length > 60 ? `${r.entrypoint.slice(0, 57)}...` : r.entrypoint,
      r.message ?? '',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] as string).length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] as number))).join('  ').trimEnd()).join('\n') + '\n';
}

/** Adds `miniray job submit|status|logs|stop|list|delete` to the program. */
export function registerJobCommands(program: Command): void {
  const job = program
    .command('job')
    .description("Submit a job to a cluster and follow it: its entrypoint runs on the head, with MINIRAY_ADDRESS set so that init() joins the cluster (Ray's `ray job`).");

  job
    .command('submit')
    .description('Submit a job: prints its submission ID, then follows its logs until it ends (exit 0 if it SUCCEEDED, 1 otherwise), unless --no-wait.')
    .argument('<entrypoint...>', 'the command to run on the head, after -- (e.g. -- node script.mjs); one quoted word is a shell command line as is')
    .addOption(addressOption())
    .option('--working-dir <dir>', 'a local directory to upload (a tar.gz, at most 100 MiB packed by default: setting jobMaxPackageBytes; .git left out): the job runs in its copy on the head')
    .option('--submission-id <id>', 'the job\'s ID (default: a new one); 1-128 letters, digits, _ . -')
    .option('--runtime-env-json <json>', 'the runtime environment, JSON: {"envVars": {...}, "workingDir": "/abs/path/on/the/head"}', parseJsonObject('--runtime-env-json'))
    .option('--entrypoint-num-cpus <n>', 'CPUs the entrypoint needs (recorded with the job)', asArgParser((text) => {
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidOptionError(`--entrypoint-num-cpus must be a number, 0 or more, not '${text}'`, '--entrypoint-num-cpus');
      return n;
    }))
    .option('--metadata-json <json>', 'metadata to keep with the job, a JSON object of strings', parseJsonObject('--metadata-json'))
    .option('--no-wait', 'return once submitted, without following the logs')
    .action(submit);

  job
    .command('status')
    .description("Print a job's status (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED) and why it ended.")
    .argument('<id>', 'the submission ID')
    .addOption(addressOption())
    .option('--json', 'print the whole record as JSON')
    .action(async (id: string, flags: { address?: string; json?: boolean }) => {
      const record = await clientFor(flags).get(id);
      if (flags.json) return void write(`${JSON.stringify(record, null, 2)}\n`);
      write(`${ending(record)}\n`);
      write(`  Entrypoint: ${record.entrypoint}\n  Started:    ${new Date(record.startTimeMs).toISOString()}\n`);
      if (record.endTimeMs !== undefined) write(`  Ended:      ${new Date(record.endTimeMs).toISOString()}\n`);
      if (record.jobId !== undefined) write(`  Job ID:     ${record.jobId} (its driver's, in the GCS)\n`);
    });

  job
    .command('logs')
    .description("Print a job's logs (its stdout and stderr); --follow prints them as they come until it ends.")
    .argument('<id>', 'the submission ID')
    .addOption(addressOption())
    .option('-f, --follow', 'keep printing until the job ends')
    .action(async (id: string, flags: { address?: string; follow?: boolean }) => {
      const record = await clientFor(flags).tail(id, flags.follow === true, write);
      if (flags.follow === true) {
        if (record.status !== 'SUCCEEDED') throw new JobFailedError(ending(record));
        note(ending(record));
      }
    });

  job
    .command('stop')
    .description('Stop a job: SIGTERM to its processes, SIGKILL after a grace (setting jobStopGraceMs on the head); returns once it is STOPPED.')
    .argument('<id>', 'the submission ID')
    .addOption(addressOption())
    .action(async (id: string, flags: { address?: string }) => {
      const client = clientFor(flags);
      const { stopped } = await client.request<{ stopped: boolean }>('POST', `/api/jobs/${encodeURIComponent(id)}/stop`);
      write(stopped ? `Job '${id}' STOPPED\n` : `Job '${id}' had ended already: ${ending(await client.get(id))}\n`);
    });

  job
    .command('list')
    .description('List the jobs submitted to the cluster, oldest first.')
    .addOption(addressOption())
    .option('--json', 'print the records as JSON')
    .action(async (flags: { address?: string; json?: boolean }) => {
      const records = await clientFor(flags).request<JobSubmissionRecord[]>('GET', '/api/jobs/');
      write(flags.json ? `${JSON.stringify(records, null, 2)}\n` : formatList(records));
    });

  job
    .command('delete')
    .description("Delete a finished job's record and log (a job still running must be stopped first).")
    .argument('<id>', 'the submission ID')
    .addOption(addressOption())
    .action(async (id: string, flags: { address?: string }) => {
      await clientFor(flags).request('DELETE', `/api/jobs/${encodeURIComponent(id)}`);
      write(`Job '${id}' deleted\n`);
    });
}
