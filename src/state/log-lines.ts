/**
 * Task and actor output as a node keeps it: the prefix every line is shown with (the worker's own
 * stdout, the owner's node's stdout when the line is forwarded there, `miniray logs`), and the
 * bounded ring of recent lines a node serves to the state API's fan-out (`nodeState` kind 'logs').
 *
 * The prefix is Ray's `(name pid=..., ip=...)` in miniray's terms: `(add worker=1a2b3c4d
 * node=5e6f7a8b) text`, the task's function name or the actor's class name, then the first 8 hex
 * characters of the worker's and the node's IDs (enough to tell them apart in `miniray list
 * workers` / `nodes`, which print the same 8).
 */
import { ProtocolError } from '../errors/index.js';
import { isIdHex } from '../ids/index.js';
import type { LogLine, LogQuery } from './types.js';

/** The prefix of a line of task or actor output (with its trailing space). */
export function logPrefix(name: string, workerId: string, nodeId: string): string {
  return `(${name === '' ? '' : `${name} `}worker=${workerId.slice(0, 8)} node=${nodeId.slice(0, 8)}) `;
}

/** A line as shown: `(name worker=... node=...) text`. */
export function formatLogLine(line: Pick<LogLine, 'name' | 'workerId' | 'nodeId' | 'text'>): string {
  return logPrefix(line.name, line.workerId, line.nodeId) + line.text;
}

/** The text of a shown line without its prefix (tests and tools that read a driver's stdout). */
export function withoutLogPrefix(line: string): string {
  return line.replace(/^\((?:.*? )?worker=[0-9a-f]{8} node=[0-9a-f]{8}\) /, '');
}

/** A line as a worker's node gets it, before it is numbered. */
export type NewLogLine = Omit<LogLine, 'nodeId' | 'seq'>;

/** Lines kept by default for one query (as LogQuery's `tail` documents). */
export const DEFAULT_LOG_TAIL = 1000;
/** What one kept line costs besides its text (the record and its fields), for the byte bound. */
const LINE_OVERHEAD_BYTES = 64;
const TRUNCATED = ' [line truncated]';

/**
 * The recent lines of one node's tasks and actors, at most `maxBytes` of them (text plus a fixed
 * overhead per line): the oldest go first. Each line gets the next `seq` of this node, so a
 * follower asks for the lines after the last seq it saw.
 */
export class LogRing {
  private lines: LogLine[] = [];
  private head = 0;
  private bytes = 0;
  private nextSeq = 1;
  /** Lines dropped to stay within the bound. */
  dropped = 0;

  constructor(
    readonly nodeId: string,
    private readonly maxBytes: number,
  ) {}

  /** Bytes the kept lines count for. */
  get size(): number {
    return this.bytes;
  }

  get length(): number {
    return this.lines.length - this.head;
  }

  /** The seq of the latest line numbered (0 before the first): where a follower starts from. */
  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  add(line: NewLogLine): LogLine {
    let text = line.text;
    // A huge line keeps its start (a sixteenth of the ring: 1 MiB by default), so that one line
    // does not push out all the others.
    const room = Math.floor(this.maxBytes / 16);
    if (text.length > room) text = text.slice(0, room) + TRUNCATED;
    const kept: LogLine = { ...line, text, nodeId: this.nodeId, seq: this.nextSeq++ };
    const cost = costOf(kept);
    if (cost > this.maxBytes) {
      this.dropped++;
      return kept;
    }
    this.lines.push(kept);
    this.bytes += cost;
    while (this.bytes > this.maxBytes) {
      this.bytes -= costOf(this.lines[this.head++] as LogLine);
      this.dropped++;
    }
    if (this.head > 1024 && this.head * 2 > this.lines.length) {
      this.lines = this.lines.slice(this.head);
      this.head = 0;
    }
    return kept;
  }

  /** The latest `tail` lines that match (oldest first). */
  query(query: LogQuery): LogLine[] {
    const tail = query.tail ?? DEFAULT_LOG_TAIL;
    const after = query.after?.[this.nodeId] ?? 0;
    const found: LogLine[] = [];
    for (let i = this.lines.length - 1; i >= this.head && found.length < tail; i--) {
      const line = this.lines[i] as LogLine;
      if (line.seq <= after) break;
      if (query.taskId !== undefined && line.taskId !== query.taskId) continue;
      if (query.actorId !== undefined && line.actorId !== query.actorId) continue;
      found.push(line);
    }
    return found.reverse();
  }
}

/** Bytes a line counts for: its UTF-8 text, plus a fixed overhead (ASCII names and IDs). */
function costOf(line: LogLine): number {
  return Buffer.byteLength(line.text) + line.name.length + LINE_OVERHEAD_BYTES;
}

/** The most lines one query may ask for. */
export const MAX_LOG_TAIL = 100_000;

/**
 * A LogQuery from the wire (a node is asked through the GCS; the state API's callers build it):
 * typed, or the ProtocolError that names the wrong field. The one check of a LogQuery: the asker
 * (ClusterLogSource) runs it before asking, so that a wrong query fails there with its reason
 * instead of every node refusing it (which the asker would only see as nodes that did not answer).
 */
export function parseLogQuery(value: unknown): LogQuery | ProtocolError {
  const wrong = (field: string, expected: string, got: unknown) =>
    new ProtocolError(`a log query's ${field} must be ${expected}; got ${describeShort(got)}`, field);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return wrong('body', 'an object', value);
  const o = value as Record<string, unknown>;
  for (const key of ['taskId', 'actorId'] as const) {
    if (o[key] !== undefined && !isIdHex(o[key])) {
      // As the dashboard's /api/logs says it: a name or a short prefix is the usual mistake.
      const got = typeof o[key] === 'string' ? `'${(o[key] as string).slice(0, 80)}'` : describeShort(o[key]);
      return new ProtocolError(`'${key}' must be an ID of 32 lowercase hex characters, not ${got} (as \`miniray list ${key === 'taskId' ? 'tasks' : 'actors'}\` shows it)`, key);
    }
  }
  const tail = o['tail'];
  if (tail !== undefined && (typeof tail !== 'number' || !Number.isSafeInteger(tail) || tail < 0 || tail > MAX_LOG_TAIL)) {
    return wrong('tail', `an integer from 0 to ${MAX_LOG_TAIL} or absent`, tail);
  }
  const after = o['after'];
  if (after !== undefined) {
    if (typeof after !== 'object' || after === null || Array.isArray(after)) return wrong('after', 'an object of node ID -> seq, or absent', after);
    for (const [nodeId, seq] of Object.entries(after)) {
      if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return wrong(`after.${nodeId}`, 'an integer >= 0', seq);
    }
  }
  return o as LogQuery;
}

function describeShort(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : typeof value === 'object' ? 'an object' : String(value);
}
