/**
 * The options of every list of the state API, checked and applied in one place: Ray's
 * `[key, op, value]` filters over the returned fields, `limit` and `detail`. The GCS (task events),
 * the client (every other kind), the CLI and the dashboard all go through here, so that one filter
 * means the same thing at every door and a bad one fails the same way, naming what is valid.
 */
import { closest, validateOptions, type OptionRules } from '../config/index.js';
import { InvalidOptionError } from '../errors/index.js';
import { ACTOR_STATE_NAMES, TASK_STATES, TASK_TYPES, type FilterOp, type ListOptions, type StateFilter, type StateKind, type StateRecords } from './types.js';

/** Ray's default limit of a list (python/ray/util/state/common.py: DEFAULT_LIMIT). */
export const DEFAULT_LIMIT = 100;
/** How long a list waits for the GCS and the nodes, unless told. */
export const DEFAULT_TIMEOUT_MS = 30_000;
export const FILTER_OPS: readonly FilterOp[] = ['=', '!='];

/**
 * The fields each kind can be filtered on: every scalar field of its record. (Lists such as an
 * object's referencedBy and a task's detail-only events are shown, not filtered on.)
 */
export const FILTER_KEYS = {
  tasks: ['taskId', 'attempt', 'name', 'type', 'state', 'actorId', 'ownerNodeId', 'nodeId', 'workerId', 'creationTimeMs', 'startTimeMs', 'endTimeMs', 'errorType', 'errorMessage'],
  actors: ['actorId', 'className', 'name', 'namespace', 'state', 'nodeId', 'ownerNodeId', 'numRestarts', 'maxRestarts', 'detached', 'deathCause'],
  objects: ['objectId', 'nodeId', 'state', 'sizeBytes', 'location', 'owner'],
  nodes: ['nodeId', 'state', 'address', 'isHead', 'isDriver', 'deathReason'],
  jobs: ['jobId', 'submissionId', 'status', 'driverNodeId', 'entrypoint', 'startTimeMs', 'endTimeMs'],
  workers: ['workerId', 'nodeId', 'workerType', 'isAlive', 'pid', 'isolation'],
} as const satisfies { readonly [K in StateKind]: readonly (keyof StateRecords[K] & string)[] };

/** Fields whose values are one of a few names: a typo is told the names instead of matching nothing. */
export const FILTER_VALUES: Partial<Record<`${StateKind}.${string}`, readonly string[]>> = {
  'tasks.state': TASK_STATES,
  'tasks.type': TASK_TYPES,
  'actors.state': ACTOR_STATE_NAMES,
  'objects.state': ['pending', 'ready', 'failed'],
  'objects.location': ['memory', 'disk', 'none', 'remote'],
  'nodes.state': ['ALIVE', 'DEAD'],
  'jobs.status': ['PENDING', 'RUNNING', 'STOPPED', 'SUCCEEDED', 'FAILED'],
  'workers.workerType': ['driver', 'task', 'actor'],
  'workers.isolation': ['thread', 'process'],
};

/** The keys `filters` may name for `kind`. */
export type FilterKey<K extends StateKind> = (typeof FILTER_KEYS)[K][number];

/** Fields only `detail: true` gives (the rest of a record is always there). */
const DETAIL_ONLY: { readonly [K in StateKind]: readonly (keyof StateRecords[K] & string)[] } = {
  tasks: ['events', 'profile'],
  actors: [],
  objects: [],
  nodes: [],
  jobs: [],
  workers: [],
};

/** List options once checked: every field filled. */
export interface CheckedListOptions<R> {
  readonly filters: readonly StateFilter<R>[];
  readonly limit: number;
  readonly detail: boolean;
  readonly timeoutMs: number;
}

const LIST_RULES = {
  filters: { type: 'custom', doc: 'filters are [key, op, value] tuples, e.g. [["state", "=", "ALIVE"]]', problem: (value: unknown) => (Array.isArray(value) ? undefined : 'an array of [key, op, value] tuples') },
  limit: { type: 'integer', min: 1, doc: `at most this many records (default ${DEFAULT_LIMIT})` },
  detail: { type: 'boolean', doc: 'include the fields only detail gives (a task\'s events and profile spans)' },
  timeoutMs: { type: 'integer', min: 1, doc: `how long to wait for the GCS and the nodes, in ms (default ${DEFAULT_TIMEOUT_MS})` },
} as const satisfies OptionRules;

/**
 * Checks the options of a list of `kind` (`where` names the call, e.g. "state.listActors()"):
 * unknown options, a filter that is not a [key, op, value] tuple, a key the records do not have,
 * an op other than = and != each throw an InvalidOptionError that names what is valid.
 */
export function checkListOptions<K extends StateKind>(where: string, kind: K, options: unknown): CheckedListOptions<StateRecords[K]> {
  const valid = validateOptions(where, LIST_RULES, options);
  const filters = (valid.filters as readonly unknown[] | undefined) ?? [];
  const keys: readonly string[] = FILTER_KEYS[kind];
  const checked = Array.from(filters, (filter, i): StateFilter<StateRecords[K]> => {
    const at = `${where}: filters[${i}]`;
    if (!Array.isArray(filter) || filter.length !== 3) {
      throw new InvalidOptionError(`${at} must be a [key, op, value] tuple, e.g. ["${keys[0]}", "=", "..."]; got ${JSON.stringify(filter) ?? String(filter)}`, 'filters');
    }
    const [key, op, value] = filter as [unknown, unknown, unknown];
    if (typeof key !== 'string' || !keys.includes(key)) {
      const near = typeof key === 'string' ? closest(key, keys) : undefined;
      throw new InvalidOptionError(
        `${at}: ${kind} have no field ${JSON.stringify(key)} to filter on.${near === undefined ? '' : ` Did you mean '${near}'?`} Valid keys: ${keys.join(', ')}`,
        'filters',
      );
    }
    if (typeof op !== 'string' || !(FILTER_OPS as readonly string[]).includes(op)) {
      throw new InvalidOptionError(`${at}: unknown predicate ${JSON.stringify(op)}; valid predicates: ${FILTER_OPS.map((o) => `'${o}'`).join(', ')} (as Ray's)`, 'filters');
    }
    if (typeof value !== 'string' && typeof value !== 'boolean' && !(typeof value === 'number' && Number.isFinite(value))) {
      throw new InvalidOptionError(`${at}: the value to compare ${key} with must be a string, a number or a boolean; got ${JSON.stringify(value) ?? String(value)}`, 'filters');
    }
    const names = FILTER_VALUES[`${kind}.${key}`];
    if (names !== undefined && !names.includes(String(value))) {
      const near = closest(String(value), names);
      throw new InvalidOptionError(
        `${at}: ${JSON.stringify(value)} is not a ${kind} ${key}, so it would match nothing.${near === undefined ? '' : ` Did you mean '${near}'?`} Give one of: ${names.join(', ')}`,
        'filters',
      );
    }
    return [key as keyof StateRecords[K] & string, op as FilterOp, value];
  });
  return { filters: checked, limit: valid.limit ?? DEFAULT_LIMIT, detail: valid.detail ?? false, timeoutMs: valid.timeoutMs ?? DEFAULT_TIMEOUT_MS };
}

/** Whether `record` passes every filter. Values compare by their text, as Ray's do; a missing field equals nothing. */
export function matches<R>(record: R, filters: readonly StateFilter<R>[]): boolean {
  for (const [key, op, value] of filters) {
    const field = (record as Record<string, unknown>)[key];
    const equal = field !== undefined && field !== null && String(field) === String(value);
    if (equal !== (op === '=')) return false;
  }
  return true;
}

/**
 * Filters, counts (`total`: matched before the limit) and limits `records`, and strips what only
 * detail shows. Applying it twice gives the same result, so a list already cut by the GCS may be
 * passed through again.
 */
export function applyListOptions<K extends StateKind>(kind: K, records: readonly StateRecords[K][], options: CheckedListOptions<StateRecords[K]>): { records: StateRecords[K][]; total: number } {
  const kept = records.filter((record) => matches(record, options.filters));
  const total = kept.length;
  const page = kept.slice(0, options.limit);
  const strip = DETAIL_ONLY[kind] as readonly string[];
  if (options.detail || strip.length === 0) return { records: page, total };
  return {
    records: page.map((record) => {
      const copy: Record<string, unknown> = { ...record };
      for (const key of strip) delete copy[key];
      return copy as StateRecords[K];
    }),
    total,
  };
}

/** The one value `filters` pins `key` to (`[key, '=', v]`), if any: a source may ask only for that. */
export function pinned<R>(filters: readonly StateFilter<R>[], key: keyof R & string): string | undefined {
  const found = filters.find(([k, op]) => k === key && op === '=');
  return found === undefined ? undefined : String(found[2]);
}

/** `options` as a ListOptions again (for sending to the GCS). */
export function asListOptions<R>(options: CheckedListOptions<R>): ListOptions<R> {
  return { filters: options.filters, limit: options.limit, detail: options.detail, timeoutMs: options.timeoutMs };
}
