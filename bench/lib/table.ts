/**
 * The rows of the benchmark table: for each case, the miniray figure, the peer or limit it is
 * compared with, the ratio and its target, and Ray's published figure for the same case.
 *
 * Ray's figures are Ray 2.48's `ray microbenchmark` on a 64-vCPU m5.16xlarge (another machine,
 * many more cores): context, not a comparison in the same run. With `--ray=<python>`, they are
 * Ray's microbenchmark run on this machine in the same run instead (bench/peers/ray.ts), each
 * with miniray's figure as a multiple of it.
 */
import type { CaseResult, Metric } from './protocol.js';

export const RAY_MACHINE = 'Ray 2.48, 64 vCPU m5.16xlarge (other machine)';

/** A figure: a metric of a case measured in this run, or a fixed limit from the spec. */
export type Source =
  | { readonly kind: 'metric'; readonly case: string; readonly metric: string; readonly label: string }
  | { readonly kind: 'fixed'; readonly value: number; readonly unit: string; readonly label: string };

export interface RowSpec {
  /** Shown in the case column. */
  readonly name: string;
  /** The miniray figure; undefined for rows that are not implemented yet. */
  readonly miniray?: { readonly case: string; readonly metric: string };
  /** Why there is no miniray figure (e.g. actors not implemented yet). */
  readonly missing?: string;
  readonly peer?: Source;
  /** ratio = miniray / peer; the target is met when it is >= (or <=) the value. */
  readonly target?: { readonly op: '>=' | '<='; readonly value: number };
  readonly ray?: string;
}

export const metric = (caseName: string, name: string, label: string): Source => ({ kind: 'metric', case: caseName, metric: name, label });
const SMALL_OBJECT_LIMIT: Source = { kind: 'fixed', value: 200_000, unit: '/s', label: 'target' };

export const ROWS: readonly RowSpec[] = [
  {
    name: 'single_client_tasks_sync',
    miniray: { case: 'single_client_tasks_sync', metric: 'rate' },
    peer: metric('piscina', 'roundTrip', 'Piscina round trip'),
    target: { op: '>=', value: 1 },
    ray: '981/s',
  },
  {
    name: '  vs Tinypool',
    miniray: { case: 'single_client_tasks_sync', metric: 'rate' },
    peer: metric('tinypool', 'roundTrip', 'Tinypool round trip'),
  },
  {
    name: 'single_client_tasks_sync p50',
    miniray: { case: 'single_client_tasks_sync', metric: 'p50' },
    peer: metric('raw_postmessage', 'roundTripP50', 'raw postMessage RT p50'),
    target: { op: '<=', value: 1.3 },
  },
  {
    name: 'single_client_tasks_async',
    miniray: { case: 'single_client_tasks_async', metric: 'rate' },
    peer: metric('piscina', 'batch', 'Piscina batch 10k'),
    target: { op: '>=', value: 5 },
    ray: '8,041/s',
  },
  {
    name: '  vs Tinypool',
    miniray: { case: 'single_client_tasks_async', metric: 'rate' },
    peer: metric('tinypool', 'batch', 'Tinypool batch 10k'),
  },
  {
    name: '  vs pipelined postMessage',
    miniray: { case: 'single_client_tasks_async', metric: 'rate' },
    peer: metric('raw_postmessage', 'stream', 'postMessage stream, 2 workers'),
  },
  {
    // Task events' cost on the hot path (issue 12: under 5%): the same case with them and without,
    // alternated in one run; the ratio shown is on/off of the rounds' medians, the JSON's `ratio`
    // the median of the pairs' ratios (steadier on a shared machine).
    name: '  with task events vs without',
    miniray: { case: 'single_client_tasks_async_events', metric: 'on' },
    peer: metric('single_client_tasks_async_events', 'off', 'same, events off'),
    target: { op: '>=', value: 0.95 },
  },
  {
    name: '  CPU per task, task events on vs off',
    miniray: { case: 'single_client_tasks_async_events', metric: 'cpuOn' },
    peer: metric('single_client_tasks_async_events', 'cpuOff', 'same, events off'),
    target: { op: '<=', value: 1.05 },
  },
  {
    name: 'single_client_tasks_and_get_batch',
    miniray: { case: 'single_client_tasks_and_get_batch', metric: 'rate' },
    ray: '5.8/s',
  },
  {
    name: 'multi_client_tasks_async',
    miniray: { case: 'multi_client_tasks_async', metric: 'rate' },
    peer: metric('piscina', 'batch', 'Piscina batch 10k'),
    ray: '21,230/s',
  },
  {
    name: '1_1_actor_calls_sync',
    miniray: { case: '1_1_actor_calls_sync', metric: 'rate' },
    peer: metric('piscina', 'roundTrip', 'Piscina round trip'),
    ray: '2,012/s',
  },
  {
    name: '1_1_actor_calls_sync p50',
    miniray: { case: '1_1_actor_calls_sync', metric: 'p50' },
    peer: metric('raw_postmessage', 'roundTripP50', 'raw postMessage RT p50'),
  },
  {
    name: '1_1_actor_calls_async',
    miniray: { case: '1_1_actor_calls_async', metric: 'rate' },
    peer: metric('piscina', 'batch', 'Piscina batch 10k'),
    target: { op: '>=', value: 5 },
    ray: '8,664/s',
  },
  {
    name: '1_1_actor_calls_concurrent',
    miniray: { case: '1_1_actor_calls_concurrent', metric: 'rate' },
    peer: metric('piscina', 'batch', 'Piscina batch 10k'),
  },
  { name: '1_n_actor_calls_async', miniray: { case: '1_n_actor_calls_async', metric: 'rate' } },
  { name: 'n_n_actor_calls_async', miniray: { case: 'n_n_actor_calls_async', metric: 'rate' }, ray: '27,376/s' },
  { name: 'n_n_actor_calls_with_arg_async', miniray: { case: 'n_n_actor_calls_with_arg_async', metric: 'rate' } },
  {
    name: '1_1_async_actor_calls_sync',
    miniray: { case: '1_1_async_actor_calls_sync', metric: 'rate' },
    peer: metric('piscina', 'roundTrip', 'Piscina round trip'),
  },
  {
    name: '1_1_async_actor_calls_async',
    miniray: { case: '1_1_async_actor_calls_async', metric: 'rate' },
    peer: metric('piscina', 'batch', 'Piscina batch 10k'),
  },
  {
    name: '1_1_async_actor_calls_with_args_async',
    miniray: { case: '1_1_async_actor_calls_with_args_async', metric: 'rate' },
    peer: metric('piscina', 'batch', 'Piscina batch 10k'),
  },
  { name: '1_n_async_actor_calls_async', miniray: { case: '1_n_async_actor_calls_async', metric: 'rate' } },
  { name: 'n_n_async_actor_calls_async', miniray: { case: 'n_n_async_actor_calls_async', metric: 'rate' } },
  {
    name: 'single_client_put_calls',
    miniray: { case: 'single_client_put_calls', metric: 'rate' },
    peer: SMALL_OBJECT_LIMIT,
    target: { op: '>=', value: 1 },
    ray: '5,173/s',
  },
  {
    name: 'single_client_get_calls',
    miniray: { case: 'single_client_get_calls', metric: 'rate' },
    peer: SMALL_OBJECT_LIMIT,
    target: { op: '>=', value: 1 },
    ray: '10,620/s',
  },
  {
    name: 'multi_client_put_calls',
    miniray: { case: 'multi_client_put_calls', metric: 'rate' },
    peer: { ...SMALL_OBJECT_LIMIT, label: 'small-object target' },
  },
  {
    name: 'single_client_put_gigabytes',
    miniray: { case: 'single_client_put_gigabytes', metric: 'rate' },
    peer: metric('memcpy', 'rate', 'warm memcpy'),
    target: { op: '>=', value: 0.5 },
    ray: '19.9 GB/s',
  },
  {
    name: 'get of a 100 MiB Float64Array',
    miniray: { case: 'get_large_array', metric: 'large' },
    peer: metric('get_large_array', 'small', 'get of an 8 KiB one'),
    target: { op: '>=', value: 0.5 },
  },
  {
    name: 'single_client_get_object_containing_10k_refs',
    miniray: { case: 'single_client_get_object_containing_10k_refs', metric: 'rate' },
    ray: '13.4/s',
  },
  {
    name: 'single_client_wait_1k_refs',
    miniray: { case: 'single_client_wait_1k_refs', metric: 'rate' },
    ray: '5.1/s',
  },
  { name: 'queued no-op tasks: completion', miniray: { case: 'queued_noop_tasks', metric: 'completion' } },
  { name: 'queued no-op tasks: submit', miniray: { case: 'queued_noop_tasks', metric: 'submit' } },
  {
    name: 'queued no-op tasks: driver rss',
    miniray: { case: 'queued_noop_tasks', metric: 'rssPerTask' },
    peer: { kind: 'fixed', value: 1024, unit: 'B/task', label: 'target' },
    target: { op: '<=', value: 1 },
  },
  {
    name: 'queued no-op tasks: driver heap',
    miniray: { case: 'queued_noop_tasks', metric: 'heapPerTask' },
    peer: { kind: 'fixed', value: 1024, unit: 'B/task', label: 'target' },
    target: { op: '<=', value: 1 },
  },
  {
    name: "actor creation: 'thread'",
    miniray: { case: 'actor_creation_thread', metric: 'rate' },
    peer: metric('actor_creation_thread', 'bareWorker', 'bare worker thread start'),
  },
  { name: "actor creation: 'shared'", miniray: { case: 'actor_creation_shared', metric: 'rate' } },
  {
    name: "10,000 'shared' actors, each called once",
    miniray: { case: 'many_shared_actors', metric: 'time' },
    // The case reports the spec's 10 s scaled to its count (2,000 with --quick: 2 s).
    peer: metric('many_shared_actors', 'budget', 'target'),
    target: { op: '<=', value: 1 },
  },
];

/** The peers and limits themselves, listed after the miniray rows. */
export const PEER_ROWS: ReadonlyArray<{ readonly name: string; readonly source: Source }> = [
  { name: 'Piscina 2 workers: round trip', source: metric('piscina', 'roundTrip', '') },
  { name: 'Piscina 2 workers: round trip p50', source: metric('piscina', 'roundTripP50', '') },
  { name: 'Piscina 2 workers: batch of 10,000', source: metric('piscina', 'batch', '') },
  { name: 'Tinypool 2 workers: round trip', source: metric('tinypool', 'roundTrip', '') },
  { name: 'Tinypool 2 workers: round trip p50', source: metric('tinypool', 'roundTripP50', '') },
  { name: 'Tinypool 2 workers: batch of 10,000', source: metric('tinypool', 'batch', '') },
  { name: 'raw postMessage: round trip', source: metric('raw_postmessage', 'roundTrip', '') },
  { name: 'raw postMessage: round trip p50', source: metric('raw_postmessage', 'roundTripP50', '') },
  { name: 'raw postMessage: stream to 2 workers', source: metric('raw_postmessage', 'stream', '') },
  { name: 'warm memcpy (Buffer.copy 256 MiB)', source: metric('memcpy', 'rate', '') },
];

// ---- formatting ----------------------------------------------------------------------------------

export function formatValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return '-';
  switch (unit) {
    case '/s':
      return `${value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1)}/s`;
    case 'us':
      return `${value.toFixed(1)} us`;
    case 'GB/s':
      return `${value.toFixed(2)} GB/s`;
    case 's':
      return `${value.toFixed(2)} s`;
    case 'B/task':
      return `${Math.round(value).toLocaleString('en-US')} B/task`;
    default:
      return `${value} ${unit}`;
  }
}

export interface TableRow {
  readonly case: string;
  readonly miniray: string;
  readonly peer: string;
  readonly ratio: string;
  readonly target: string;
  readonly ray: string;
  /** Machine-readable: the ratio and whether its target was met (undefined: no target or no figure). */
  readonly ratioValue?: number;
  readonly met?: boolean;
}

type Results = ReadonlyMap<string, CaseResult>;

/** A case left out of this run (--only). */
const NOT_RUN = 'not run';

function lookup(results: Results, caseName: string, metricName: string): Metric | { error: string } {
  const result = results.get(caseName);
  if (result === undefined) return { error: NOT_RUN };
  if (result.error !== undefined) return { error: result.error };
  const found = result.metrics[metricName];
  return found ?? { error: `no ${metricName} figure` };
}

function show(found: Metric | { error: string }, withNote = true): string {
  if ('error' in found) return found.error === NOT_RUN ? NOT_RUN : `error: ${found.error}`;
  const figure = formatValue(found.value, found.unit);
  return withNote && found.note ? `${figure} (${found.note})` : figure;
}

/** Ray's figure for a row: measured in this run when `measured` has it, with miniray's as a multiple of it; else the published one. */
function rayColumn(spec: RowSpec, mine: Metric | { error: string } | undefined, measured: ReadonlyMap<string, Metric> | undefined): string {
  if (measured === undefined) return spec.ray ?? '-';
  const ray = measured.get(spec.name);
  if (ray === undefined) return '-';
  const times = mine !== undefined && !('error' in mine) && mine.unit === ray.unit && ray.value > 0 ? `; miniray ${(mine.value / ray.value).toFixed(2)}x` : '';
  return `${formatValue(ray.value, ray.unit)} (${ray.note ?? ''}${times})`;
}

/** `rayMeasured`: Ray's figures from this run, by row name (--ray); without it, the published ones. */
export function buildRows(results: Results, specs: readonly RowSpec[] = ROWS, peerRows: typeof PEER_ROWS = PEER_ROWS, rayMeasured?: ReadonlyMap<string, Metric>): TableRow[] {
  const rows: TableRow[] = [];
  for (const spec of specs) {
    let peerFound: Metric | { error: string } | undefined;
    let peerText = '-';
    if (spec.peer !== undefined) {
      peerFound = spec.peer.kind === 'fixed' ? { value: spec.peer.value, unit: spec.peer.unit } : lookup(results, spec.peer.case, spec.peer.metric);
      peerText = `${spec.peer.label}: ${show(peerFound, false)}`;
    }
    const targetText = spec.target ? `${spec.target.op} ${spec.target.value}x` : '';
    if (spec.miniray === undefined) {
      rows.push({ case: spec.name, miniray: spec.missing ?? '-', peer: peerText, ratio: '-', target: targetText ? `${targetText} n/a` : '', ray: rayColumn(spec, undefined, rayMeasured) });
      continue;
    }
    const mine = lookup(results, spec.miniray.case, spec.miniray.metric);
    const ray = rayColumn(spec, mine, rayMeasured);
    let ratio = '-';
    let ratioValue: number | undefined;
    let met: boolean | undefined;
    if (!('error' in mine) && peerFound !== undefined && !('error' in peerFound) && peerFound.value > 0) {
      ratioValue = mine.value / peerFound.value;
      ratio = `${ratioValue.toFixed(2)}x`;
      if (spec.target) met = spec.target.op === '>=' ? ratioValue >= spec.target.value : ratioValue <= spec.target.value;
    }
    const target = spec.target === undefined ? '' : met === undefined ? `${targetText} ?` : `${targetText} ${met ? 'met' : 'MISSED'}`;
    rows.push({ case: spec.name, miniray: show(mine), peer: peerText, ratio, target, ray, ratioValue, met });
  }
  for (const peer of peerRows) {
    if (peer.source.kind !== 'metric') continue;
    const found = lookup(results, peer.source.case, peer.source.metric);
    rows.push({ case: `peer/limit: ${peer.name}`, miniray: '', peer: show(found), ratio: '', target: '', ray: '' });
  }
  return rows;
}

/**
 * `withRay: false` leaves out Ray's column (the cluster and --compare tables have no figures of
 * Ray's); `rayLabel` says whose figures it shows.
 */
export function renderTable(rows: readonly TableRow[], withRay = true, rayLabel = RAY_MACHINE): string {
  const header: TableRow = { case: 'case', miniray: 'miniray', peer: 'peer or limit', ratio: 'ratio', target: 'target', ray: `Ray (${rayLabel})` };
  const columns = withRay ? (['case', 'miniray', 'peer', 'ratio', 'target', 'ray'] as const) : (['case', 'miniray', 'peer', 'ratio', 'target'] as const);
  const all = [header, ...rows];
  const widths = columns.map((column) => Math.max(...all.map((row) => row[column].length)));
  const line = (row: TableRow) =>
    columns
      .map((column, i) => row[column].padEnd(widths[i] as number))
      .join(' | ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('-|-');
  return [line(header), rule, ...rows.map(line)].join('\n');
}
