/**
 * The cluster's task and actor output, as `miniray logs` and the dashboard read it: each node keeps
 * the recent lines of its own tasks and actors (src/state/log-lines.ts, LogRing), and the GCS asks
 * every alive node for them at once (the state API's fan-out, `askNodes { what: 'logs' }`, answered
 * by each node's `nodeState` handler from `Node.logLines`, with its latest seq). Lines are merged in
 * time order.
 *
 *   const source = new ClusterLogSource(gcs);
 *   const { lines, partial } = await source.logs({ taskId, tail: 100 });
 *   for await (const batch of followLogs(source, { actorId })) for (const l of batch) console.log(formatLogLine(l));
 */
import { InvalidOptionError } from '../errors/index.js';
import { DEFAULT_LOG_TAIL, MAX_LOG_TAIL, parseLogQuery } from './log-lines.js';
import type { LogLine, LogQuery, LogSource, NodeLogAnswer } from './types.js';

/** The part of the GcsClient this source uses: the state API's fan-out to every alive node. */
export interface NodeFanOut {
  askNodes(body: { readonly what: 'logs'; readonly body: LogQuery; readonly timeoutMs?: number }): Promise<{
    readonly answers: readonly { readonly nodeId: string; readonly answer: unknown }[];
    readonly partial: readonly string[];
    readonly errors?: readonly { readonly nodeId: string; readonly message: string }[];
  }>;
}

export interface ClusterLogSourceOptions {
  /** How long the GCS waits for each node (default: the fan-out's own, 10 s). */
  readonly timeoutMs?: number;
}

type LogAnswer = Awaited<ReturnType<LogSource['logs']>>;

export class ClusterLogSource implements LogSource {
  constructor(
    private readonly gcs: NodeFanOut,
    private readonly options: ClusterLogSourceOptions = {},
  ) {}

  /**
   * The latest `tail` lines (default 1000) of the whole cluster that match, oldest first; `partial`
   * names the nodes whose lines are missing, `errors` those of them that answered with an error
   * (or with what is not their log lines) and what, `cursor` each answering node's latest seq.
   * A wrong query (an ID that is not one, a bad tail) is an InvalidOptionError before any node is asked.
   */
  async logs(query: LogQuery): Promise<LogAnswer> {
    const checked = parseLogQuery(query);
    if (checked instanceof Error) throw new InvalidOptionError(`logs(): ${checked.message}`, checked.field, { cause: checked });
    const asked = await this.gcs.askNodes({
      what: 'logs',
      body: checked,
      ...(this.options.timeoutMs === undefined ? {} : { timeoutMs: this.options.timeoutMs }),
    });
    const lines: LogLine[] = [];
    const partial = [...asked.partial];
    const errors = [...(asked.errors ?? [])];
    const cursor: Record<string, number> = {};
    for (const { nodeId, answer } of asked.answers) {
      const nodeLogs = nodeLogsOf(answer, nodeId);
      if (nodeLogs === undefined) {
        partial.push(nodeId);
        errors.push({ nodeId, message: 'it answered with what is not its log lines' });
        continue;
      }
      lines.push(...nodeLogs.lines);
      cursor[nodeId] = nodeLogs.lastSeq;
    }
    lines.sort(byTime);
    const tail = checked.tail ?? DEFAULT_LOG_TAIL;
    return { lines: lines.length > tail ? lines.slice(lines.length - tail) : lines, partial, ...(errors.length === 0 ? {} : { errors }), cursor };
  }
}

/** Time order; lines of one node at the same millisecond keep their seq order. */
function byTime(a: LogLine, b: LogLine): number {
  return a.timeMs - b.timeMs || (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : a.seq - b.seq);
}

/**
 * A node's answer, checked (it is bytes from another process, relayed by the GCS): its lines and
 * latest seq, or undefined when it is not the lines of that node.
 */
export function nodeLogsOf(answer: unknown, nodeId: string): NodeLogAnswer | undefined {
  if (typeof answer !== 'object' || answer === null) return undefined;
  const { lines, lastSeq } = answer as Record<string, unknown>;
  if (!Array.isArray(lines) || !Number.isSafeInteger(lastSeq) || (lastSeq as number) < 0) return undefined;
  for (const item of lines as unknown[]) if (!isLogLine(item, nodeId) || item.seq > (lastSeq as number)) return undefined;
  return answer as NodeLogAnswer;
}

/** The one check of a log line from the wire (of node `nodeId`). */
function isLogLine(value: unknown, nodeId: string): value is LogLine {
  if (typeof value !== 'object' || value === null) return false;
  const o = value as Record<string, unknown>;
  const optionalString = (v: unknown) => v === undefined || typeof v === 'string';
  return (
    o['nodeId'] === nodeId &&
    Number.isSafeInteger(o['seq']) &&
    typeof o['timeMs'] === 'number' &&
    Number.isFinite(o['timeMs']) &&
    (o['stream'] === 'stdout' || o['stream'] === 'stderr') &&
    typeof o['workerId'] === 'string' &&
    typeof o['name'] === 'string' &&
    typeof o['text'] === 'string' &&
    optionalString(o['taskId']) &&
    optionalString(o['actorId'])
  );
}

/** `a` with, per node, the larger seq of `a` and `b`. */
function laterOf(a: Readonly<Record<string, number>> | undefined, b: Readonly<Record<string, number>>): Record<string, number> {
  const next: Record<string, number> = { ...a };
  for (const [nodeId, seq] of Object.entries(b)) if (seq > (next[nodeId] ?? 0)) next[nodeId] = seq;
  return next;
}

/** The `after` of the next query of a follower that has seen `lines` (the last seq seen of each node). */
export function afterLines(after: Readonly<Record<string, number>> | undefined, lines: readonly LogLine[]): Record<string, number> {
  const next: Record<string, number> = { ...after };
  for (const line of lines) if (line.seq > (next[line.nodeId] ?? 0)) next[line.nodeId] = line.seq;
  return next;
}

export interface FollowOptions {
  /** How often the nodes are asked for new lines (default 500 ms). */
  readonly intervalMs?: number;
  /** Ends the following. */
  readonly signal?: AbortSignal;
}

/**
 * `miniray logs --follow`: the latest `tail` lines first, then every new line as it comes, in
 * batches (asked for every `intervalMs`), until `signal` aborts.
 */
export async function* followLogs(source: LogSource, query: LogQuery, options: FollowOptions = {}): AsyncGenerator<readonly LogLine[]> {
  const intervalMs = options.intervalMs ?? 500;
  let after = query.after;
  let first = true;
  while (options.signal?.aborted !== true) {
    // After the first batch every new line is wanted, not only the latest `tail`.
    const { lines, cursor } = await source.logs({ ...query, ...(after === undefined ? {} : { after }), ...(first ? {} : { tail: MAX_LOG_TAIL }) });
    first = false;
    // From each node's latest seq: the lines the merged tail cut are not shown later.
    if (cursor !== undefined) after = laterOf(afterLines(after, lines), cursor);
    else if (lines.length > 0) after = afterLines(after, lines);
    if (lines.length > 0) yield lines;
    await pause(intervalMs, options.signal);
  }
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
