/**
 * The state API's one source: `GcsStateSource` answers every list, get and summary from the GCS,
 * over a GcsClient (in a driver, the node's own; in the CLI, one connected to the head; in a task,
 * one whose calls go through the task's node, see api/state.ts). Tasks come from the GCS's task
 * event table (helper events' methods), actors, nodes and jobs from the GCS's tables, and objects,
 * workers and node figures from every alive node through the GCS's fan-out `askNodes`. Every
 * list's options are checked and applied in one place (filter.ts).
 */
import { InvalidArgumentError, ProtocolError } from '../errors/index.js';
import type { ActorEntry, ActorIdHex, GcsClient, JobEntry, NodeIdHex, NodeInfo, NodeStateKind } from '../gcs/index.js';
import { fail, fields, isId, oneOf, optionalStr, str, validate } from '../protocol/check.js';
import { applyListOptions, checkListOptions, pinned, type CheckedListOptions } from './filter.js';
import { NODE_ANSWER_CHECKS } from './node-state.js';
import { summarizeActors, summarizeObjects, summarizeTasks } from './summary.js';
import {
  JOB_SUBMISSIONS,
  type ActorStateEntry,
  type ActorSummary,
  type CoreEvent,
  type JobStateEntry,
  type JobSubmissionRecord,
  type ListOptions,
  type ListResult,
  type NodeStateEntry,
  type NodeStats,
  type ObjectSummary,
  type StateKind,
  type StateRecords,
  type StateSource,
  type TaskEntry,
  type TaskMetrics,
  type TaskSummary,
} from './types.js';


/** The most task attempts a summary reads (the GCS keeps at most maxTaskEventsInGcs, 100000 by default). */
const SUMMARY_TASK_LIMIT = 100_000;
/** The longest a fan-out waits for one node: a node that does not answer is left out (partial), not waited for. */
const NODE_TIMEOUT_MS = 10_000;

export class GcsStateSource implements StateSource {
  constructor(private readonly gcs: GcsClient) {}

  /** `where` names the call in errors (state.listActors() passes its own name). */
  async list<K extends StateKind>(kind: K, options?: ListOptions<StateRecords[K]>, where = `list ${kind}`): Promise<ListResult<StateRecords[K]>> {
    const checked = checkListOptions(where, kind, options);
    // Each branch's records are of its kind; TypeScript cannot follow K through the switch.
    type Result = ListResult<StateRecords[K]>;
    switch (kind) {
      case 'tasks':
        return (await this.tasks(checked as CheckedListOptions<TaskEntry>)) as Result;
      case 'actors':
        return done(kind, (await this.actors(checked.timeoutMs)) as StateRecords[K][], checked);
      case 'nodes':
        return done(kind, (await this.nodes(checked.timeoutMs)) as StateRecords[K][], checked);
      case 'jobs':
        return done(kind, (await this.jobs(checked.timeoutMs)) as StateRecords[K][], checked);
      case 'objects':
      case 'workers': {
        const nodeId = pinned(checked.filters, 'nodeId' as keyof StateRecords[K] & string);
        const { answers, partial } = await this.askNodes(kind, checked.timeoutMs, nodeId);
        return done(kind, answers.flat() as StateRecords[K][], checked, partial);
      }
    }
    throw new InvalidArgumentError(`the state API lists tasks, actors, objects, nodes, jobs and workers; got ${String(kind)}`, 'kind');
  }

  /** Every attempt of the task (a retry is a new attempt), oldest first; empty when the GCS has none. */
  async getTask(taskId: string): Promise<readonly TaskEntry[]> {
    if (typeof taskId !== 'string' || taskId === '') throw new InvalidArgumentError(`getTask() takes a task ID (as listTasks() shows it); got ${JSON.stringify(taskId) ?? String(taskId)}`, 'taskId');
    return this.gcs.getTaskEvents(taskId, { timeoutMs: DEFAULT_CALL_TIMEOUT_MS });
  }

  async getActor(actorId: string): Promise<ActorStateEntry | undefined> {
    if (!isId(actorId)) throw new InvalidArgumentError(`getActor() takes an actor ID (32 hex characters, as listActors() shows it); got ${JSON.stringify(actorId)}`, 'actorId');
    const entry = await this.gcs.call('getActor', { actorId: actorId as ActorIdHex }, { timeoutMs: DEFAULT_CALL_TIMEOUT_MS });
    return entry === null ? undefined : actorState(entry);
  }

  async summarizeTasks(): Promise<TaskSummary> {
    const { records } = await this.tasks({ filters: [], limit: SUMMARY_TASK_LIMIT, detail: false, timeoutMs: DEFAULT_CALL_TIMEOUT_MS });
    return summarizeTasks(records);
  }

  async summarizeActors(): Promise<ActorSummary> {
    return summarizeActors(await this.actors(DEFAULT_CALL_TIMEOUT_MS));
  }

  async summarizeObjects(): Promise<ObjectSummary> {
    return summarizeObjects(await this.nodeStats());
  }

  async nodeStats(): Promise<readonly NodeStats[]> {
    return (await this.askNodes('stats', DEFAULT_CALL_TIMEOUT_MS)).answers;
  }

  taskMetrics(): Promise<TaskMetrics> {
    return this.gcs.taskMetrics({ timeoutMs: DEFAULT_CALL_TIMEOUT_MS });
  }

  coreEvents(): Promise<readonly CoreEvent[]> {
    return this.gcs.listCoreEvents({ timeoutMs: DEFAULT_CALL_TIMEOUT_MS });
  }

  /**
   * Asks the alive nodes (or only `nodeId`) for `what`; a node whose answer is malformed counts
   * as one that did not answer. Exposed for the logs part (ClusterLogSource asks for 'logs').
   */
  async askNodes<W extends Exclude<NodeStateKind, 'logs'>>(
    what: W,
    timeoutMs: number,
    nodeId?: string,
  ): Promise<{ answers: ReturnType<(typeof NODE_ANSWER_CHECKS)[W]>[]; partial: string[] }> {
    const nodeTimeoutMs = Math.max(1, Math.min(NODE_TIMEOUT_MS, timeoutMs - Math.min(5_000, timeoutMs / 5)));
    const asked = await this.gcs.call(
      'askNodes',
      { what, timeoutMs: Math.round(nodeTimeoutMs), ...(nodeId === undefined ? {} : { nodeIds: isId(nodeId) ? [nodeId as NodeIdHex] : [] }) },
      { timeoutMs },
    );
    const check = NODE_ANSWER_CHECKS[what] as (value: unknown) => ReturnType<(typeof NODE_ANSWER_CHECKS)[W]>;
    const answers: ReturnType<(typeof NODE_ANSWER_CHECKS)[W]>[] = [];
    const partial: string[] = [...asked.partial];
    for (const { nodeId: from, answer } of asked.answers) {
      const checked = validate(`node ${from}'s answer to '${what}'`, answer, check);
      if (checked instanceof ProtocolError) partial.push(from);
      else answers.push(checked);
    }
    return { answers, partial };
  }

  // ---- each kind ------------------------------------------------------------------------------------

  private async tasks(options: CheckedListOptions<TaskEntry>): Promise<ListResult<TaskEntry>> {
    // The GCS filters and limits (it may hold 100000 attempts); applied here again, which changes
    // nothing when it did, so that every door's result is the same.
    const answer = await this.gcs.listTaskEvents({ filters: options.filters, limit: options.limit, detail: options.detail }, { timeoutMs: options.timeoutMs });
    const { records, total } = applyListOptions('tasks', answer.records, options);
    return { records, total: Math.max(total, answer.total), partial: [], dropped: answer.dropped };
  }

  private async actors(timeoutMs: number): Promise<ActorStateEntry[]> {
    return (await this.gcs.call('listActors', {}, { timeoutMs })).map(actorState);
  }

  private async nodes(timeoutMs: number): Promise<NodeStateEntry[]> {
    const [nodes, info] = await Promise.all([this.gcs.call('getNodes', {}, { timeoutMs }), this.gcs.call('getClusterInfo', {}, { timeoutMs })]);
    return nodes.map((node) => nodeState(node, info.headNodeId));
  }

  private async jobs(timeoutMs: number): Promise<JobStateEntry[]> {
    const [jobs, keys] = await Promise.all([this.gcs.call('listJobs', {}, { timeoutMs }), this.gcs.call('kvKeys', { namespace: JOB_SUBMISSIONS, prefix: '' }, { timeoutMs })]);
    const values = await Promise.all(keys.map((key) => this.gcs.call('kvGet', { namespace: JOB_SUBMISSIONS, key }, { timeoutMs })));
    const records = values.flatMap((value) => {
      const record = value === null ? undefined : decodeSubmission(value);
      return record === undefined ? [] : [record];
    });
    return mergeJobs(jobs, records);
  }
}

const DEFAULT_CALL_TIMEOUT_MS = 30_000;

function done<K extends StateKind>(kind: K, records: StateRecords[K][], options: CheckedListOptions<StateRecords[K]>, partial: readonly string[] = []): ListResult<StateRecords[K]> {
  const { records: page, total } = applyListOptions(kind, records, options);
  return { records: page, total, partial, dropped: 0 };
}

// ---- records from the GCS's tables ----------------------------------------------------------------

/** An actor's row of the GCS table as the state API shows it (the states are Ray's already). */
export function actorState(entry: ActorEntry): ActorStateEntry {
  return {
    actorId: entry.actorId,
    className: entry.className,
    ...(entry.name === undefined ? {} : { name: entry.name }),
    namespace: entry.namespace,
    state: entry.state,
    nodeId: entry.nodeId,
    ownerNodeId: entry.ownerNodeId,
    numRestarts: entry.numRestarts,
    maxRestarts: entry.maxRestarts,
    detached: entry.detached,
    ...(entry.state === 'DEAD' && entry.reason !== undefined ? { deathCause: entry.reason } : {}),
  };
}

/** A node's row; the head is the node in the GCS's process. */
export function nodeState(node: NodeInfo, headNodeId: string | undefined): NodeStateEntry {
  return {
    nodeId: node.nodeId,
    state: node.alive ? 'ALIVE' : 'DEAD',
    address: node.address,
    isHead: node.nodeId === headNodeId,
    isDriver: node.isDriver,
    resourcesTotal: { ...node.resources },
    resourcesAvailable: node.alive ? { ...node.available } : {},
    ...(node.deathReason === undefined ? {} : { deathReason: node.deathReason }),
  };
}

/**
 * The GCS's jobs (one per driver that joined) with the Jobs API's records: a driver started as a
 * submitted job's entrypoint is one entry with both (linked by the record's jobId or the job's
 * submissionId), its status the record's (the Jobs API knows FAILED and STOPPED); a driver of its
 * own is RUNNING until it ends, then SUCCEEDED (as Ray shows driver jobs); a submission whose
 * driver has not joined (PENDING, or failed before init()) has jobId ''.
 */
export function mergeJobs(jobs: readonly JobEntry[], records: readonly JobSubmissionRecord[]): JobStateEntry[] {
  const bySubmission = new Map(records.map((record) => [record.submissionId, record]));
  const byJob = new Map(records.filter((record) => record.jobId !== undefined).map((record) => [record.jobId as string, record]));
  const linked = new Set<string>();
  const merged: JobStateEntry[] = [...jobs]
    .sort((a, b) => a.jobId - b.jobId)
    .map((job) => {
      const jobId = String(job.jobId);
      const record = byJob.get(jobId) ?? (job.submissionId === undefined ? undefined : bySubmission.get(job.submissionId));
      if (record !== undefined) linked.add(record.submissionId);
      const submissionId = record?.submissionId ?? job.submissionId;
      return {
        jobId,
        ...(submissionId === undefined ? {} : { submissionId }),
        status: record?.status ?? (job.endTimeMs === undefined ? 'RUNNING' : 'SUCCEEDED'),
        driverNodeId: job.driverNodeId,
        ...(record === undefined ? {} : { entrypoint: record.entrypoint }),
        startTimeMs: job.startTimeMs,
        ...(job.endTimeMs === undefined ? {} : { endTimeMs: job.endTimeMs }),
      };
    });
  const unlinked = records.filter((record) => !linked.has(record.submissionId)).sort((a, b) => a.startTimeMs - b.startTimeMs);
  for (const record of unlinked) {
    merged.push({
      jobId: record.jobId ?? '',
      submissionId: record.submissionId,
      status: record.status,
      entrypoint: record.entrypoint,
      startTimeMs: record.startTimeMs,
      ...(record.endTimeMs === undefined ? {} : { endTimeMs: record.endTimeMs }),
    });
  }
  return merged;
}

/**
 * A Jobs API record's KV value as the state path passes it to a task: without
 * `runtimeEnv.envVars` (users put secrets there, and any task may read any job's record this
 * way). The dashboard's Jobs API, behind the cluster token, still shows them. A value that is not
 * a record's JSON is passed on as it is (the reader leaves it out).
 */
export function withoutEnvVars(value: Uint8Array): Uint8Array {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8'));
  } catch {
    return value;
  }
  if (typeof parsed !== 'object' || parsed === null) return value;
  const runtimeEnv = (parsed as { runtimeEnv?: unknown }).runtimeEnv;
  if (typeof runtimeEnv !== 'object' || runtimeEnv === null || !('envVars' in runtimeEnv)) return value;
  const { envVars: _dropped, ...kept } = runtimeEnv as Record<string, unknown>;
  return Buffer.from(JSON.stringify({ ...parsed, runtimeEnv: kept }), 'utf8');
}

const JOB_STATUSES = ['PENDING', 'RUNNING', 'STOPPED', 'SUCCEEDED', 'FAILED'] as const;

/** A JobSubmissionRecord from its KV value (JSON); undefined when it is not one (it is left out). */
export function decodeSubmission(value: Uint8Array): JobSubmissionRecord | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8'));
  } catch {
    return undefined;
  }
  const record = validate('a job submission record', parsed, (v) => {
    const o = fields(v);
    str(o['submissionId'], 'submissionId');
    str(o['entrypoint'], 'entrypoint');
    oneOf(o['status'], 'status', JOB_STATUSES);
    number(o['startTimeMs'], 'startTimeMs');
    if (o['endTimeMs'] !== undefined) number(o['endTimeMs'], 'endTimeMs');
    optionalStr(o['jobId'], 'jobId');
    return o as unknown as JobSubmissionRecord;
  });
  return record instanceof ProtocolError ? undefined : record;
}

const number = (value: unknown, path: string): number => {
  if (typeof value !== 'number' || !Number.isFinite(value)) fail(path, 'a finite number', value);
  return value;
};
