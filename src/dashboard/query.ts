/**
 * Reading the dashboard's query strings: `?filter=state=RUNNING&filter=name!=f&limit=50&detail=true`
 * for lists (the CLI's `--filter key=value` form, one per filter; `!=` for Ray's other predicate),
 * `?taskId=&actorId=&tail=&after=<nodeId>:<seq>` for logs. Anything else is a 400 that says what
 * was wrong; the StateSource then checks the keys (an unknown key is its InvalidOptionError, also
 * a 400).
 */
import { isIdHex } from '../ids/index.js';
import type { FilterOp, ListOptions, LogQuery, StateKind } from '../state/types.js';

export { STATE_KINDS } from '../state/types.js';
export const MAX_LIMIT = 10_000;
export const MAX_FILTERS = 20;
export const MAX_LOG_TAIL = 10_000;

/** A malformed query: the route answers 400 with this message. */
export class QueryError extends Error {
  readonly statusCode = 400;
  readonly code = 'Bad Request';
}

type Query = Readonly<Record<string, unknown>>;

const LIST_PARAMS = new Set(['filter', 'limit', 'detail']);
const LOG_PARAMS = new Set(['taskId', 'actorId', 'tail', 'after']);

function onlyKnown(query: Query, known: ReadonlySet<string>, where: string): void {
  for (const name of Object.keys(query)) {
    if (!known.has(name)) throw new QueryError(`${where}: unknown query parameter '${name}' (known: ${[...known].join(', ')})`);
  }
}

/** One value of a parameter (undefined when absent); a repeated one is an error. */
function single(query: Query, name: string, where: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new QueryError(`${where}: give '${name}' once`);
  return value;
}

function integer(text: string | undefined, name: string, min: number, max: number, where: string): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new QueryError(`${where}: '${name}' must be an integer from ${min} to ${max}, not '${text}'`);
  }
  return value;
}

function boolean(text: string | undefined, name: string, where: string): boolean | undefined {
  if (text === undefined) return undefined;
  if (text === 'true' || text === '1' || text === '') return true;
  if (text === 'false' || text === '0') return false;
  throw new QueryError(`${where}: '${name}' must be true or false, not '${text}'`);
}

const FILTER = /^([A-Za-z][A-Za-z0-9]*)(!=|=)(.*)$/s;

/** ?filter=...&limit=...&detail=... as ListOptions (filter keys are checked by the StateSource). */
export function parseListQuery<R>(query: Query, where: string): ListOptions<R> {
  onlyKnown(query, LIST_PARAMS, where);
  const raw = query['filter'];
  const texts = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  if (texts.length > MAX_FILTERS) throw new QueryError(`${where}: at most ${MAX_FILTERS} filters`);
  const filters = texts.map((text) => {
    const match = typeof text === 'string' ? FILTER.exec(text) : null;
    if (match === null) throw new QueryError(`${where}: a filter is key=value or key!=value (e.g. filter=state=RUNNING), not '${String(text)}'`);
    return [match[1] as keyof R & string, match[2] as FilterOp, match[3] as string] as const;
  });
  const limit = integer(single(query, 'limit', where), 'limit', 1, MAX_LIMIT, where);
  const detail = boolean(single(query, 'detail', where), 'detail', where);
  return {
    ...(filters.length === 0 ? {} : { filters }),
    ...(limit === undefined ? {} : { limit }),
    ...(detail === undefined ? {} : { detail }),
  };
}

/** ?taskId=&actorId=&tail=&after=<nodeId>:<seq>... as a LogQuery. */
export function parseLogQuery(query: Query, where: string): LogQuery {
  onlyKnown(query, LOG_PARAMS, where);
  const id = (name: 'taskId' | 'actorId') => {
    const value = single(query, name, where);
    if (value !== undefined && !isIdHex(value)) throw new QueryError(`${where}: '${name}' must be an ID of 32 lowercase hex characters, not '${value}'`);
    return value;
  };
  const taskId = id('taskId');
  const actorId = id('actorId');
  const tail = integer(single(query, 'tail', where), 'tail', 1, MAX_LOG_TAIL, where);
  const raw = query['after'];
  const texts = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  if (texts.length > 1000) throw new QueryError(`${where}: at most 1000 'after' values`);
  const after: Record<string, number> = {};
  for (const text of texts) {
    const match = typeof text === 'string' ? /^([0-9a-f]{32}):(\d{1,15})$/.exec(text) : null;
    if (match === null) throw new QueryError(`${where}: 'after' is <nodeId>:<seq> (the last line seen of that node), not '${String(text)}'`);
    after[match[1] as string] = Number(match[2]);
  }
  return {
    ...(taskId === undefined ? {} : { taskId }),
    ...(actorId === undefined ? {} : { actorId }),
    ...(tail === undefined ? {} : { tail }),
    ...(texts.length === 0 ? {} : { after }),
  };
}

/** A path's ID parameter, checked. */
export function parseId(value: unknown, name: string, where: string): string {
  if (!isIdHex(value)) throw new QueryError(`${where}: ${name} must be an ID of 32 lowercase hex characters, not '${String(value)}'`);
  return value;
}

export function noQuery(query: Query, where: string): void {
  onlyKnown(query, new Set(), where);
}
