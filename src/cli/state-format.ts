/**
 * What the observability commands (`miniray list`, `summary`, `memory`, `logs`) print: --filter
 * parsed and checked against each kind's fields, and records as tables (cli-table3) for a person.
 * No I/O: state.ts reads the cluster and writes what these return.
 */
import Table from 'cli-table3';
import { closest } from '../config/index.js';
import { InvalidOptionError } from '../errors/index.js';
import { FILTER_KEYS, FILTER_VALUES } from '../state/filter.js';
import {
  ACTOR_STATE_NAMES,
  TASK_STATES,
  type ActorSummary,
  type NodeStats,
  type ObjectStateEntry,
  type ObjectSummary,
  type StateFilter,
  type StateKind,
  type StateRecords,
  type TaskSummary,
} from '../state/types.js';

export { STATE_KINDS } from '../state/types.js';

/** The columns of each kind's table (all fields with --detail). */
const COLUMNS: { readonly [K in StateKind]: readonly (keyof StateRecords[K] & string)[] } = {
  tasks: ['taskId', 'attempt', 'name', 'state', 'type', 'nodeId', 'workerId', 'errorType'],
  actors: ['actorId', 'className', 'name', 'state', 'nodeId', 'numRestarts'],
  objects: ['objectId', 'nodeId', 'state', 'sizeBytes', 'location', 'owner', 'referencedBy'],
  nodes: ['nodeId', 'state', 'address', 'isHead', 'isDriver', 'resourcesTotal'],
  jobs: ['jobId', 'submissionId', 'status', 'driverNodeId', 'entrypoint', 'startTimeMs'],
  workers: ['workerId', 'nodeId', 'workerType', 'isAlive', 'pid', 'isolation'],
};


/** One --filter as the user typed it, before its kind is known (commander parses options first). */
export type RawFilter = { readonly key: string; readonly op: '=' | '!='; readonly value: string };

/** --filter key=value or key!=value; repeated, every one must match (as Ray's --filter). */
export function parseFilter(text: string, previous: readonly RawFilter[] = []): RawFilter[] {
  const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(!=|=)\s*(.*?)\s*$/.exec(text);
  if (match === null) {
    throw new InvalidOptionError(`--filter must be key=value or key!=value (e.g. --filter state=FAILED, --filter name!=f), not '${text}'`, '--filter');
  }
  return [...previous, { key: match[1] as string, op: match[2] as '=' | '!=', value: match[3] as string }];
}

/** The filters of `kind`: each key one of its fields, each value of a named field one of its names. */
export function checkFilters<K extends StateKind>(kind: K, filters: readonly RawFilter[]): StateFilter<StateRecords[K]>[] {
  const keys: readonly string[] = FILTER_KEYS[kind];
  return filters.map(({ key, op, value }) => {
    if (!keys.includes(key)) {
      const near = closest(key, keys);
      throw new InvalidOptionError(
        `--filter ${key}${op}${value}: ${kind} cannot be filtered on '${key}';${near === undefined ? '' : ` did you mean '${near}'?`} filter on one of: ${keys.join(', ')}`,
        '--filter',
      );
    }
    const names = FILTER_VALUES[`${kind}.${key}`];
    if (names !== undefined && !names.includes(value)) {
      throw new InvalidOptionError(`--filter ${key}${op}${value}: '${value}' is not a ${kind} ${key}; give one of: ${names.join(', ')}`, '--filter');
    }
    return [key as keyof StateRecords[K] & string, op, value] as const;
  });
}

/** --limit: how many records at most, a whole number from 1. */
export function parseLimit(text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) throw new InvalidOptionError(`--limit must be a whole number, 1 or more, not '${text}'`, '--limit');
  return Number(text);
}

/** --tail: how many of the latest lines, a whole number from 1. */
export function parseTail(text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) throw new InvalidOptionError(`--tail must be a whole number of lines, 1 or more, not '${text}'`, '--tail');
  return Number(text);
}

// ---- cells and tables ------------------------------------------------------------------------------

/** 1536 -> "1.5 KiB", as `ray memory` shows sizes. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A field's value as a table cell: times as ISO, lists one per line, maps as `key: value`. */
function cell(key: string, value: unknown): string {
  if (value === undefined || value === null) return '';
  if (key.endsWith('TimeMs') && typeof value === 'number') return new Date(value).toISOString();
  if (key === 'sizeBytes' && typeof value === 'number') return bytes(value);
  if (key === 'events' && Array.isArray(value)) {
    return value.map((e: { state: string; timeMs: number }) => `${e.state} ${new Date(e.timeMs).toISOString()}`).join('\n');
  }
  if (key === 'profile' && Array.isArray(value)) {
    return value.map((s: { name: string; startMs: number; endMs: number }) => `${s.name} ${(s.endMs - s.startMs).toFixed(1)} ms`).join('\n');
  }
  if (Array.isArray(value)) return value.map(String).join('\n');
  if (typeof value === 'object') return Object.entries(value).map(([k, v]) => `${k}: ${String(v)}`).join(', ');
  return String(value);
}

/** Plain tables: no colors (they would land in files and pipes), the borders cli-table3 draws. */
function table(head: readonly string[]): Table.Table {
  return new Table({ head: [...head], style: { head: [], border: [], compact: true } });
}

/** Records of `kind` as one table (its columns), or with `detail` one two-column table per record (every field). */
export function formatRecords<K extends StateKind>(kind: K, records: readonly StateRecords[K][], detail: boolean): string {
  if (detail) {
    if (records.length === 0) return `No ${kind}.\n`;
    return records.map((record) => {
      const t = table([]);
      for (const [key, value] of Object.entries(record)) if (value !== undefined) t.push({ [key]: cell(key, value) });
      return `${t.toString()}\n`;
    }).join('');
  }
  const columns = COLUMNS[kind] as readonly string[];
  const t = table(columns);
  for (const record of records) {
    const values = record as Readonly<Record<string, unknown>>;
    t.push(columns.map((key) => cell(key, values[key])));
  }
  return `${t.toString()}\n`;
}

/** `summary tasks`: a row per function (or Class.method) with its count in each state that occurs. */
export function formatTaskSummary(summary: TaskSummary): string {
  const rows = Object.entries(summary.byName).sort(([a], [b]) => a.localeCompare(b));
  const states = TASK_STATES.filter((state) => rows.some(([, row]) => (row.states[state] ?? 0) > 0));
  const t = table(['name', 'type', 'total', ...states]);
  for (const [name, row] of rows) {
    const total = Object.values(row.states).reduce((sum, n) => sum + (n ?? 0), 0);
    t.push([name, row.type, total, ...states.map((state) => row.states[state] ?? 0)]);
  }
  return `Tasks: ${summary.total} attempts of ${rows.length} functions\n${t.toString()}\n`;
}

/** `summary actors`: a row per class with its count in each state that occurs. */
export function formatActorSummary(summary: ActorSummary): string {
  const rows = Object.entries(summary.byClass).sort(([a], [b]) => a.localeCompare(b));
  const states = ACTOR_STATE_NAMES.filter((state) => rows.some(([, row]) => (row[state] ?? 0) > 0));
  const t = table(['className', 'total', ...states]);
  for (const [name, row] of rows) {
    const total = Object.values(row).reduce((sum, n) => sum + (n ?? 0), 0);
    t.push([name, total, ...states.map((state) => row[state] ?? 0)]);
  }
  return `Actors: ${summary.total} of ${rows.length} classes\n${t.toString()}\n`;
}

/** `summary objects`: a row per node, then the totals. */
export function formatObjectSummary(summary: ObjectSummary): string {
  const t = table(['nodeId', 'objects', 'bytes', 'spilledObjects', 'spilledBytes']);
  for (const [nodeId, row] of Object.entries(summary.byNode).sort(([a], [b]) => a.localeCompare(b))) {
    t.push([nodeId, row.objects, bytes(row.bytes), row.spilledObjects, bytes(row.spilledBytes)]);
  }
  return `Objects: ${summary.totalObjects}, ${bytes(summary.totalBytes)}\n${t.toString()}\n`;
}

/** What `miniray memory` shows of one node. */
export type MemoryGroup = {
  readonly nodeId: string;
  readonly address?: string;
  readonly stats?: NodeStats;
  readonly objects: readonly ObjectStateEntry[];
};

/**
 * `miniray memory`, as Ray's `ray memory`: per node (by address), its store's figures, then its
 * objects, largest first, with what keeps each alive; then the totals over every node.
 */
export function formatMemory(groups: readonly MemoryGroup[], summary: ObjectSummary, at: Date): string {
  const out: string[] = [`======== Object references status: ${at.toISOString()} ========`];
  for (const group of groups) {
    const where = group.address === undefined ? group.nodeId : `${group.nodeId} (${group.address})`;
    const size = group.objects.reduce((sum, o) => sum + o.sizeBytes, 0);
    out.push('', `--- Node ${where}: ${group.objects.length} objects, ${bytes(size)} ---`);
    const stats = group.stats;
    if (stats !== undefined) {
      const full = stats.storeCapacityBytes > 0 ? ` (${((100 * stats.storeUsedBytes) / stats.storeCapacityBytes).toFixed(1)}% full)` : '';
      out.push(`Object store: ${bytes(stats.storeUsedBytes)} of ${bytes(stats.storeCapacityBytes)} used${full}; spilled: ${stats.spilledObjects} objects, ${bytes(stats.spilledBytes)}`);
    }
    if (group.objects.length === 0) continue;
    const t = table(['objectId', 'state', 'size', 'location', 'owner', 'referencedBy']);
    for (const o of [...group.objects].sort((a, b) => b.sizeBytes - a.sizeBytes || a.objectId.localeCompare(b.objectId))) {
      t.push([o.objectId, o.state, bytes(o.sizeBytes), o.location, o.owner, o.referencedBy.join('\n')]);
    }
    out.push(t.toString());
  }
  const spilled = Object.values(summary.byNode).reduce((sum, n) => ({ objects: sum.objects + n.spilledObjects, bytes: sum.bytes + n.spilledBytes }), { objects: 0, bytes: 0 });
  out.push('', '--- Across all nodes ---', `${summary.totalObjects} objects, ${bytes(summary.totalBytes)}; spilled: ${spilled.objects} objects, ${bytes(spilled.bytes)}`, '');
  return out.join('\n');
}
