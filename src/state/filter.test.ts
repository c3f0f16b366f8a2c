// The state API's list options, in the one place every door applies them: filters over the
// returned fields as Ray's ([key, op, value], values compared by their text), limit with the
// total before it, detail-only fields, and errors that name what is valid.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidOptionError } from '../errors/index.js';
import { DEFAULT_LIMIT, FILTER_KEYS, applyListOptions, checkListOptions, matches, pinned } from './filter.js';
import type { ActorStateEntry, TaskEntry } from './types.js';

const actor = (i: number, more: Partial<ActorStateEntry> = {}): ActorStateEntry => ({
  actorId: i.toString(16).padStart(32, '0'),
  className: i % 2 === 0 ? 'Even' : 'Odd',
  namespace: 'default',
  state: 'ALIVE',
  nodeId: 'a'.repeat(32),
  ownerNodeId: 'a'.repeat(32),
  numRestarts: i % 3,
  maxRestarts: 3,
  detached: i === 0,
  ...more,
});

const task = (i: number): TaskEntry => ({
  taskId: i.toString(16).padStart(32, '0'),
  attempt: 0,
  name: 'f',
  type: 'NORMAL_TASK',
  state: 'FINISHED',
  ownerNodeId: 'a'.repeat(32),
  requiredResources: { CPU: 1 },
  creationTimeMs: 1,
  events: [{ state: 'FINISHED', timeMs: 2 }],
  profile: [],
});

const rejects = (fn: () => unknown, pattern: RegExp): void => {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof InvalidOptionError, `an InvalidOptionError, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  });
};

test('defaults: no filters, Ray\'s limit of 100, no detail, 30 s', () => {
  assert.deepEqual(checkListOptions('list', 'actors', undefined), { filters: [], limit: DEFAULT_LIMIT, detail: false, timeoutMs: 30_000 });
  assert.equal(DEFAULT_LIMIT, 100);
});

test('= and != compare by text: numbers and booleans match their string form, a missing field equals nothing', () => {
  const a = actor(4, { name: 'x' });
  assert.equal(matches(a, [['numRestarts', '=', 1]]), true);
  assert.equal(matches(a, [['numRestarts', '=', '1']]), true);
  assert.equal(matches(a, [['detached', '=', false]]), true);
  assert.equal(matches(a, [['detached', '=', 'false']]), true);
  assert.equal(matches(a, [['state', '!=', 'ALIVE']]), false);
  assert.equal(matches(actor(1), [['name', '=', 'x']]), false, 'no name: not equal to one');
  assert.equal(matches(actor(1), [['name', '!=', 'x']]), true);
  assert.equal(matches(a, [['className', '=', 'Even'], ['state', '=', 'ALIVE']]), true, 'every filter must hold');
  assert.equal(matches(a, [['className', '=', 'Even'], ['state', '=', 'DEAD']]), false);
});

test('total counts what matched before the limit; the limit keeps the first', () => {
  const all = Array.from({ length: 250 }, (_, i) => actor(i));
  const options = checkListOptions('list', 'actors', { filters: [['className', '=', 'Even']], limit: 10 });
  const { records, total } = applyListOptions('actors', all, options);
  assert.equal(total, 125);
  assert.equal(records.length, 10);
  assert.ok(records.every((r) => r.className === 'Even'));
  assert.deepEqual(applyListOptions('actors', records, options).records, records, 'applied twice: the same');
  assert.equal(applyListOptions('actors', all, checkListOptions('list', 'actors', {})).records.length, 100, 'default limit');
});

test('detail: a task\'s events and profile only with detail: true', () => {
  const tasks = [task(1), task(2)];
  const plain = applyListOptions('tasks', tasks, checkListOptions('list', 'tasks', {})).records;
  assert.ok(plain.every((t) => !('events' in t) && !('profile' in t)));
  assert.equal(tasks[0]?.events?.length, 1, 'the input is not changed');
  const detailed = applyListOptions('tasks', tasks, checkListOptions('list', 'tasks', { detail: true })).records;
  assert.deepEqual(detailed[0]?.events, [{ state: 'FINISHED', timeMs: 2 }]);
});

test('an unknown key names the valid keys and the nearest one', () => {
  rejects(() => checkListOptions('state.listActors()', 'actors', { filters: [['stat', '=', 'ALIVE']] }), /state\.listActors\(\): filters\[0\]: actors have no field "stat" to filter on\. Did you mean 'state'\? Valid keys: actorId, className, .*deathCause/);
  rejects(() => checkListOptions('list', 'tasks', { filters: [['events', '=', 'x']] }), /no field "events".*Valid keys: taskId/);
  rejects(() => checkListOptions('list', 'nodes', { filters: [['zzzzzzzz', '=', 'x']] }), /Valid keys: nodeId, state, address, isHead, isDriver, deathReason$/);
});

test('an unknown op names the valid ones; a malformed filter, value, limit or option is an InvalidOptionError', () => {
  rejects(() => checkListOptions('list', 'actors', { filters: [['state', '==', 'ALIVE']] }), /unknown predicate "==".*'=', '!='/);
  rejects(() => checkListOptions('list', 'actors', { filters: [['state', '=']] }), /filters\[0\] must be a \[key, op, value\] tuple/);
  rejects(() => checkListOptions('list', 'actors', { filters: ['state=ALIVE'] }), /must be a \[key, op, value\] tuple/);
  rejects(() => checkListOptions('list', 'actors', { filters: [['state', '=', { a: 1 }]] }), /must be a string, a number or a boolean/);
  rejects(() => checkListOptions('list', 'actors', { filters: 'state=ALIVE' }), /option 'filters' must be an array/);
  rejects(() => checkListOptions('list', 'actors', { limit: 0 }), /option 'limit' must be an integer >= 1/);
  rejects(() => checkListOptions('list', 'actors', { limt: 5 }), /unknown option 'limt'\. Did you mean 'limit'\?/);
  rejects(() => checkListOptions('list', 'actors', { detail: 'yes' }), /option 'detail' must be true or false/);
});

test('every filter key is a field of its record kind (the table and the types agree)', () => {
  const sample: { [K in keyof typeof FILTER_KEYS]?: object } = { actors: actor(1, { name: 'n', deathCause: 'd' }), tasks: { ...task(1), actorId: 'x', nodeId: 'x', workerId: 'x', startTimeMs: 1, endTimeMs: 2, errorType: 'E', errorMessage: 'm' } };
  for (const [kind, record] of Object.entries(sample)) {
    for (const key of FILTER_KEYS[kind as keyof typeof FILTER_KEYS]) assert.ok(key in record, `${kind}.${key}`);
  }
});

test('pinned: the value a = filter gives a key (a source may ask only that node)', () => {
  assert.equal(pinned<ActorStateEntry>([['nodeId', '=', 'abc'], ['state', '=', 'ALIVE']], 'nodeId'), 'abc');
  assert.equal(pinned<ActorStateEntry>([['nodeId', '!=', 'abc']], 'nodeId'), undefined);
});

test('a filter value that a named field never has (a misspelled state) is refused with the names, not matched against nothing', () => {
  assert.throws(
    () => checkListOptions('state.listTasks()', 'tasks', { filters: [['state', '=', 'RUNING']] }),
    (error: unknown) => error instanceof InvalidOptionError && /"RUNING" is not a tasks state/.test(error.message) && /Did you mean 'RUNNING'/.test(error.message) && /FINISHED/.test(error.message),
  );
  assert.throws(() => checkListOptions('state.listActors()', 'actors', { filters: [['state', '!=', 'alive']] }), /is not a actors state|is not a actors state/);
  assert.equal(checkListOptions('state.listTasks()', 'tasks', { filters: [['state', '=', 'FAILED'], ['name', '=', 'anything']] }).filters.length, 2);
});
