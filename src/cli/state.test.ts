import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Command, CommanderError } from 'commander';
import { MinirayError } from '../errors/index.js';
import { GcsServer, InMemoryStoreClient } from '../gcs/index.js';
import { Router, listen } from '../net/index.js';
import type {
  ActorStateEntry,
  ListOptions,
  ListResult,
  LogLine,
  LogQuery,
  LogSource,
  StateKind,
  StateRecords,
  StateSource,
  TaskEntry,
} from '../state/types.js';
import { registerStateCommands, timelineFileName, type StateCommandIO } from './state.js';
import { bytes } from './state-format.js';

const NODE = 'aaaaaaaa' + '1'.repeat(24);
const NODE_B = 'bbbbbbbb' + '2'.repeat(24);
const WORKER = 'cccccccc' + '3'.repeat(24);
const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);

const task = (fields: Partial<TaskEntry> & Pick<TaskEntry, 'taskId' | 'name'>): TaskEntry => ({
  attempt: 0,
  type: 'NORMAL_TASK',
  state: 'FINISHED',
  ownerNodeId: NODE,
  nodeId: NODE,
  workerId: WORKER,
  requiredResources: { CPU: 1 },
  creationTimeMs: T0,
  startTimeMs: T0 + 1,
  endTimeMs: T0 + 3,
  ...fields,
});

const TASKS: TaskEntry[] = [
  task({ taskId: 'task0001', name: 'square', events: [{ state: 'PENDING_ARGS_AVAIL', timeMs: T0 }, { state: 'FINISHED', timeMs: T0 + 3 }], profile: [{ name: 'load', startMs: T0 + 1, endMs: T0 + 2 }] }),
  task({ taskId: 'task0002', name: 'boom', state: 'FAILED', errorType: 'TaskError', errorMessage: 'bad input' }),
];
const ACTOR: ActorStateEntry = { actorId: 'actor001', className: 'Counter', name: 'c', namespace: 'default', state: 'ALIVE', nodeId: NODE, ownerNodeId: NODE, numRestarts: 0, maxRestarts: 0, detached: false };

/** A StateSource that answers fixed records and remembers what it was asked. */
class FakeStateSource implements StateSource {
  readonly asked: { kind: StateKind; options: ListOptions<never> | undefined }[] = [];
  total: number | undefined;
  partial: string[] = [];
  dropped = 0;
  records: { [K in StateKind]: StateRecords[K][] } = {
    tasks: TASKS,
    actors: [ACTOR],
    objects: [
      { objectId: 'obj-small', nodeId: NODE, state: 'ready', sizeBytes: 10, location: 'memory', owner: 'driver', referencedBy: ['driver (local ref)'] },
      { objectId: 'obj-big', nodeId: NODE, state: 'ready', sizeBytes: 3 * 1024 * 1024, location: 'memory', owner: 'driver', referencedBy: ['driver (local ref)', 'actor001 (captured)'] },
      { objectId: 'obj-b', nodeId: NODE_B, state: 'ready', sizeBytes: 2048, location: 'disk', owner: 'worker cccccccc', referencedBy: [] },
    ],
    nodes: [
      { nodeId: NODE, state: 'ALIVE', address: '127.0.0.1:6380', isHead: true, isDriver: false, resourcesTotal: { CPU: 2 }, resourcesAvailable: { CPU: 1 } },
      { nodeId: NODE_B, state: 'ALIVE', address: '127.0.0.1:40001', isHead: false, isDriver: false, resourcesTotal: { CPU: 1 }, resourcesAvailable: { CPU: 1 } },
    ],
    jobs: [{ jobId: '1', status: 'RUNNING', startTimeMs: T0 }],
    workers: [{ workerId: WORKER, nodeId: NODE, workerType: 'task', isAlive: true, pid: 42, isolation: 'thread' }],
  };

  async list<K extends StateKind>(kind: K, options?: ListOptions<StateRecords[K]>): Promise<ListResult<StateRecords[K]>> {
    this.asked.push({ kind, options: options as ListOptions<never> | undefined });
    const all = this.records[kind] as StateRecords[K][];
    return { records: all.slice(0, options?.limit ?? 100), total: this.total ?? all.length, partial: this.partial, dropped: this.dropped };
  }
  async getTask(taskId: string) { return TASKS.filter((t) => t.taskId === taskId); }
  async getActor(actorId: string) { return actorId === ACTOR.actorId ? ACTOR : undefined; }
  async summarizeTasks() {
    return { total: 5, byName: { square: { type: 'NORMAL_TASK' as const, states: { FINISHED: 3, RUNNING: 1 } }, boom: { type: 'NORMAL_TASK' as const, states: { FAILED: 1 } } } };
  }
  async summarizeActors() { return { total: 2, byClass: { Counter: { ALIVE: 1, DEAD: 1 } } }; }
  async summarizeObjects() {
    return {
      totalObjects: 3,
      totalBytes: 3 * 1024 * 1024 + 2058,
      byNode: {
        [NODE]: { objects: 2, bytes: 3 * 1024 * 1024 + 10, spilledObjects: 0, spilledBytes: 0 },
        [NODE_B]: { objects: 1, bytes: 2048, spilledObjects: 1, spilledBytes: 2048 },
      },
    };
  }
  async nodeStats() {
    return [
      { nodeId: NODE, storeUsedBytes: 3 * 1024 * 1024, storeCapacityBytes: 100 * 1024 * 1024, spilledBytes: 0, spilledObjects: 0, objects: 2, workers: 2, queuedTasks: 0 },
      { nodeId: NODE_B, storeUsedBytes: 0, storeCapacityBytes: 100 * 1024 * 1024, spilledBytes: 2048, spilledObjects: 1, objects: 1, workers: 1, queuedTasks: 0 },
    ];
  }
  async taskMetrics() { return { byState: {}, runTime: {}, droppedEvents: 0 }; }
  async coreEvents() { return [{ kind: 'get' as const, nodeId: NODE, workerId: 'driver', startMs: T0, endMs: T0 + 5, count: 2 }]; }
}

const line = (seq: number, text: string, fields: Partial<LogLine> = {}): LogLine => ({
  nodeId: NODE, seq, timeMs: T0 + seq, stream: 'stdout', workerId: WORKER, name: 'square', taskId: 'task0001', text, ...fields,
});

/** A LogSource over a list of lines that grows as a test appends to it. */
class FakeLogSource implements LogSource {
  readonly queries: LogQuery[] = [];
  lines: LogLine[] = [line(1, 'from b', { nodeId: NODE_B, timeMs: T0 }), line(1, 'hello'), line(2, 'oops', { stream: 'stderr' })];
  partial: string[] = [];
  async logs(query: LogQuery) {
    this.queries.push(query);
    const after = query.after ?? {};
    const lines = this.lines.filter((l) => (query.taskId === undefined || l.taskId === query.taskId) && (query.actorId === undefined || l.actorId === query.actorId) && l.seq > (after[l.nodeId] ?? -1));
    return { lines: query.tail === undefined ? lines : lines.slice(-query.tail), partial: this.partial };
  }
}

type Run = { code: number; out: string; err: string; files: Map<string, string>; opened: { command: string; address: string | undefined }[]; closed: number };

/** Runs `miniray <args>` with the commands over the fakes; returns what it printed and its exit code, as main() would. */
async function run(args: string[], state = new FakeStateSource(), logs = new FakeLogSource(), io: Partial<StateCommandIO> = {}): Promise<Run> {
  const result: Run = { code: 0, out: '', err: '', files: new Map(), opened: [], closed: 0 };
  const program = new Command('miniray').exitOverride().configureOutput({ writeOut: (s) => (result.out += s), writeErr: (s) => (result.err += s) });
  registerStateCommands(program, {
    open: async (command, address) => {
      result.opened.push({ command, address });
      return { state, logs, close: () => result.closed++ };
    },
    out: (s) => (result.out += s),
    err: (s) => (result.err += s),
    writeFile: (path, text) => result.files.set(path, text),
    now: () => new Date(T0),
    followIntervalMs: 1,
    ...io,
  });
  try {
    await program.parseAsync(['node', 'miniray', ...args]);
  } catch (error) {
    if (error instanceof CommanderError) result.code = error.exitCode;
    else if (error instanceof MinirayError) {
      result.err += `miniray: ${error.message}\n`;
      result.code = 1;
    } else throw error;
  }
  return result;
}

describe('miniray list', () => {
  test('a table of the records, asked with the limit (default 100), no detail; the sources are closed after', async () => {
    const state = new FakeStateSource();
    const r = await run(['list', 'tasks', '--address', '10.0.0.1:6380'], state);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(r.opened, [{ command: 'miniray list', address: '10.0.0.1:6380' }]);
    assert.equal(r.closed, 1);
    assert.deepEqual(state.asked, [{ kind: 'tasks', options: { filters: [], limit: 100, detail: false } }]);
    const header = r.out.split('\n')[1] ?? '';
    for (const column of ['taskId', 'attempt', 'name', 'state', 'type', 'nodeId', 'workerId', 'errorType']) assert.ok(header.includes(column), header);
    assert.match(r.out, /task0001 .*square .*FINISHED .*NORMAL_TASK/);
    assert.match(r.out, /task0002 .*boom .*FAILED .*TaskError/);
    assert.ok(r.out.includes(NODE), 'IDs in full, to be given to --filter and --task');
    assert.doesNotMatch(r.out, /\u001b\[/, 'no colors');
    assert.equal(r.err, '');
  });

  test('--filter key=value and key!=value, repeated; --limit; --detail', async () => {
    const state = new FakeStateSource();
    const r = await run(['list', 'tasks', '--filter', 'state=FAILED', '--filter', 'name != square', '--limit', '5', '--detail'], state);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(state.asked[0]?.options, { filters: [['state', '=', 'FAILED'], ['name', '!=', 'square']], limit: 5, detail: true });
    // --detail: every field of each record, a task's state changes and profile spans too.
    assert.match(r.out, /errorMessage .*bad input/);
    assert.match(r.out, /events .*PENDING_ARGS_AVAIL 2026-12-01T12:00:00\.000Z/);
    assert.match(r.out, /profile .*load 1\.0 ms/);
    assert.match(r.out, /requiredResources .*CPU: 1/);
  });

  test('--format json: the records as one JSON array on stdout, notes on stderr', async () => {
    const state = new FakeStateSource();
    state.total = 7;
    state.partial = [NODE_B];
    state.dropped = 12;
    const r = await run(['list', 'tasks', '--format', 'json', '--limit', '2'], state);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out), TASKS);
    assert.match(r.err, /Showing 2 of 7 tasks: --limit 7 shows them all/);
    assert.match(r.err, new RegExp(`1 node\\(s\\) did not answer \\(${NODE_B}\\)`));
    assert.match(r.err, /dropped 12 task events or sampled-out tasks/);
  });

  test('every kind has a table', async () => {
    for (const [kind, expected] of [['actors', /actor001 .*Counter .*ALIVE/], ['objects', /obj-big .*3\.0 MiB/], ['nodes', /127\.0\.0\.1:6380 .*true .*false .*CPU: 2/], ['jobs', /1 .*RUNNING .*2026-12-01T12:00:00\.000Z/], ['workers', /task .*true .*42 .*thread/]] as const) {
      const r = await run(['list', kind]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, expected, kind);
    }
  });

  test('a kind that is not one is refused, naming the valid ones', async () => {
    const r = await run(['list', 'task']);
    assert.equal(r.code, 1);
    assert.match(r.err, /'task' is invalid .*Allowed choices are tasks, actors, objects, nodes, jobs, workers/);
    assert.deepEqual(r.opened, [], 'no connection is made');
  });

  test('a bad --filter is refused before connecting: its form, an unknown field (naming the valid ones), a state that is not one', async () => {
    const form = await run(['list', 'tasks', '--filter', 'state']);
    assert.equal(form.code, 1);
    assert.match(form.err, /--filter must be key=value or key!=value \(e\.g\. --filter state=FAILED/);
    const key = await run(['list', 'actors', '--filter', 'colour=red']);
    assert.equal(key.code, 1);
    assert.match(key.err, /actors cannot be filtered on 'colour'; filter on one of: actorId, className, name, namespace, state, nodeId, ownerNodeId, numRestarts, maxRestarts, detached, deathCause/);
    const compound = await run(['list', 'tasks', '--filter', 'events=x']);
    assert.match(compound.err, /tasks cannot be filtered on 'events'; did you mean 'state'\?|tasks cannot be filtered on 'events'; filter on one of/);
    const near = await run(['list', 'tasks', '--filter', 'stat=RUNNING']);
    assert.match(near.err, /tasks cannot be filtered on 'stat'; did you mean 'state'\? filter on one of: taskId, attempt, name/);
    const state = await run(['list', 'tasks', '--filter', 'state=FAILD']);
    assert.equal(state.code, 1);
    assert.match(state.err, /'FAILD' is not a tasks state; give one of: PENDING_ARGS_AVAIL, PENDING_NODE_ASSIGNMENT, SUBMITTED_TO_WORKER, RUNNING, FINISHED, FAILED/);
    for (const bad of [form, key, compound, state]) assert.deepEqual(bad.opened, []);
    const limit = await run(['list', 'tasks', '--limit', '0']);
    assert.equal(limit.code, 1);
    assert.match(limit.err, /--limit must be a whole number, 1 or more, not '0'/);
    const format = await run(['list', 'tasks', '--format', 'yaml']);
    assert.equal(format.code, 1);
    assert.match(format.err, /Allowed choices are table, json/);
  });
});

describe('miniray summary and memory', () => {
  test('summary tasks: per function, a column per state that occurs; json as the source gave it', async () => {
    const r = await run(['summary', 'tasks']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^Tasks: 5 attempts of 2 functions/);
    assert.match(r.out, /name .*type .*total .*RUNNING .*FINISHED .*FAILED/);
    assert.doesNotMatch(r.out, /PENDING_ARGS_AVAIL/);
    assert.match(r.out, /square .*NORMAL_TASK .*4 .*1 .*3 .*0/);
    assert.match(r.out, /boom .*NORMAL_TASK .*1 .*0 .*0 .*1/);
    const j = await run(['summary', 'tasks', '--format', 'json']);
    assert.deepEqual(JSON.parse(j.out), await new FakeStateSource().summarizeTasks());
  });

  test('summary actors and objects', async () => {
    const actors = await run(['summary', 'actors']);
    assert.match(actors.out, /Counter .*2 .*1 .*1/);
    const objects = await run(['summary', 'objects']);
    assert.match(objects.out, /^Objects: 3, 3\.0 MiB/);
    assert.match(objects.out, new RegExp(`${NODE_B} .*1 .*2\\.0 KiB .*1 .*2\\.0 KiB`));
    const bad = await run(['summary', 'nodes']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /Allowed choices are tasks, actors, objects/);
  });

  test('memory: per node with its address and store, its objects largest first with what keeps them alive, then the totals', async () => {
    const r = await run(['memory']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^======== Object references status: 2026-12-01T12:00:00\.000Z ========/);
    const a = r.out.indexOf(`--- Node ${NODE} (127.0.0.1:6380): 2 objects, 3.0 MiB ---`);
    const b = r.out.indexOf(`--- Node ${NODE_B} (127.0.0.1:40001): 1 objects, 2.0 KiB ---`);
    assert.ok(a >= 0 && b > a, r.out);
    assert.ok(r.out.indexOf('obj-big') < r.out.indexOf('obj-small'), 'largest first');
    assert.ok(r.out.indexOf('obj-small') < b && r.out.indexOf('obj-b ') > b, 'each object under its node');
    assert.match(r.out, /Object store: 3\.0 MiB of 100\.0 MiB used \(3\.0% full\); spilled: 0 objects, 0 B/);
    assert.match(r.out, /actor001 \(captured\)/);
    assert.match(r.out, /--- Across all nodes ---\n3 objects, 3\.0 MiB; spilled: 1 objects, 2\.0 KiB/);
    const empty = new FakeStateSource();
    empty.records.objects = [];
    const none = await run(['memory'], empty);
    assert.match(none.out, new RegExp(`--- Node ${NODE} \\(127\\.0\\.0\\.1:6380\\): 0 objects, 0 B ---\nObject store: 3\\.0 MiB`));
    assert.doesNotMatch(none.out, /objectId/, 'no empty tables');
    const j = JSON.parse((await run(['memory', '--format', 'json'])).out) as { nodes: { nodeId: string; objects: unknown[] }[] };
    assert.deepEqual(j.nodes.map((n) => [n.nodeId, n.objects.length]), [[NODE, 2], [NODE_B, 1]]);
  });

  test('sizes as ray memory shows them', () => {
    assert.equal(bytes(0), '0 B');
    assert.equal(bytes(1023), '1023 B');
    assert.equal(bytes(1536), '1.5 KiB');
    assert.equal(bytes(5 * 1024 ** 3), '5.0 GiB');
  });
});

describe('miniray timeline', () => {
  test('--output: writes the trace (tasks with detail, core events) and says how to open it', async () => {
    const state = new FakeStateSource();
    const r = await run(['timeline', '--output', '/tmp/x/trace.json'], state);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(state.asked, [{ kind: 'tasks', options: { detail: true, limit: 100_000 } }]);
    const trace = JSON.parse(r.files.get('/tmp/x/trace.json') ?? 'null') as { traceEvents: { ph: string; name: string; cat?: string }[] };
    assert.ok(trace.traceEvents.some((e) => e.ph === 'X' && e.name === 'square'));
    assert.ok(trace.traceEvents.some((e) => e.ph === 'X' && e.name === 'load' && e.cat === 'profile'));
    assert.ok(trace.traceEvents.some((e) => e.ph === 'X' && e.name === 'get'));
    assert.match(r.out, /Wrote the timeline of 2 task attempts \(\d+ trace events\) to \/tmp\/x\/trace\.json/);
    assert.match(r.out, /ui\.perfetto\.dev.*chrome:\/\/tracing/);
  });

  test('without --output: a file named by the local time in the current directory, as Ray names it', async () => {
    const r = await run(['timeline']);
    assert.equal(r.code, 0, r.err);
    const [path] = [...r.files.keys()];
    assert.equal(path, `${process.cwd()}/${timelineFileName(new Date(T0))}`);
    assert.match(timelineFileName(new Date(2026, 0, 2, 3, 4, 5)), /^miniray-timeline-2026-01-02_03-04-05\.json$/);
  });

  test('a file that cannot be written is an error naming it and --output', async () => {
    const r = await run(['timeline', '--output', '/nonexistent/t.json'], undefined, undefined, {
      writeFile: () => { throw new Error('ENOENT: no such file or directory'); },
    });
    assert.equal(r.code, 1);
    assert.match(r.err, /miniray timeline: cannot write \/nonexistent\/t\.json: ENOENT.*Give another file with --output/);
  });
});

describe('miniray logs', () => {
  test('every line with where it came from, as the source orders them; stderr lines on stderr; --tail passed', async () => {
    const logs = new FakeLogSource();
    const r = await run(['logs', '--tail', '50'], undefined, logs);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(logs.queries, [{ tail: 50 }]);
    assert.equal(r.out, '(square worker=cccccccc node=bbbbbbbb) from b\n(square worker=cccccccc node=aaaaaaaa) hello\n');
    assert.equal(r.err, '(square worker=cccccccc node=aaaaaaaa) oops\n');
  });

  test('--task and --actor narrow the query, and cannot go together', async () => {
    const logs = new FakeLogSource();
    await run(['logs', '--task', 'task0001'], undefined, logs);
    await run(['logs', '--actor', 'actor001'], undefined, logs);
    assert.deepEqual(logs.queries, [{ taskId: 'task0001', tail: 1000 }, { actorId: 'actor001', tail: 1000 }]);
    const both = await run(['logs', '--task', 'a', '--actor', 'b']);
    assert.equal(both.code, 1);
    assert.match(both.err, /option '--task <id>' cannot be used with option '--actor <id>'/);
  });

  test('--follow asks for what came after the last line seen of each node, until stopped; a silent node is told once', async () => {
    const logs = new FakeLogSource();
    logs.partial = [NODE_B];
    const controller = new AbortController();
    let polls = 0;
    const original = logs.logs.bind(logs);
    logs.logs = async (query) => {
      polls++;
      if (polls === 2) logs.lines.push(line(3, 'later'));
      if (polls === 4) controller.abort();
      return original(query);
    };
    const r = await run(['logs', '--follow'], undefined, logs, { followUntil: () => controller.signal });
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(logs.queries[1], { after: { [NODE]: 2, [NODE_B]: 1 } });
    assert.deepEqual(logs.queries[2], { after: { [NODE]: 3, [NODE_B]: 1 }, tail: 100_000 });
    assert.equal(r.out.split('\n').filter((l) => l.endsWith(' later')).length, 1, 'a line once, however many polls');
    assert.equal(r.err.split('\n').filter((l) => l.startsWith('Warning')).length, 1);
  });

  test("--follow goes on from each node's latest seq (the source's cursor), past the lines the tail cut", async () => {
    const logs = new FakeLogSource();
    const controller = new AbortController();
    const original = logs.logs.bind(logs);
    logs.logs = async (query) => {
      const answer = await original(query);
      if (logs.queries.length === 2) controller.abort();
      // Node B's only line was cut by --tail 2; its latest seq is 1 all the same.
      return { ...answer, cursor: { [NODE]: 2, [NODE_B]: 1 } };
    };
    const r = await run(['logs', '--follow', '--tail', '2'], undefined, logs, { followUntil: () => controller.signal });
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(logs.queries[1], { after: { [NODE]: 2, [NODE_B]: 1 } });
    assert.doesNotMatch(r.out, /from b/, "node B's old line is not shown later");
  });

  test('a node that answered with an error is said so with what it said, not that it did not answer', async () => {
    const logs = new FakeLogSource();
    logs.partial = [NODE_B];
    const original = logs.logs.bind(logs);
    logs.logs = async (query) => ({ ...(await original(query)), errors: [{ nodeId: NODE_B, message: 'it refused the query' }] });
    const r = await run(['logs'], undefined, logs);
    assert.equal(r.code, 0, r.err);
    assert.doesNotMatch(r.err, /did not answer/);
    assert.match(r.err, new RegExp(`Warning: node ${NODE_B} answered with an error, its lines are missing: it refused the query`));
  });
});

describe('miniray list/summary/memory/timeline/logs: help and the cluster', () => {
  test('--help of each names its options, --address among them', async () => {
    for (const command of ['list', 'summary', 'memory', 'timeline', 'logs']) {
      const r = await run([command, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.out, /--address <host:port>/, command);
    }
    assert.match((await run(['list', '--help'])).out, /--filter <key=value>[\s\S]*--limit <n>[\s\S]*--detail[\s\S]*--format <format>/);
    assert.match((await run(['logs', '--help'])).out, /--task <id>[\s\S]*--actor <id>[\s\S]*--follow[\s\S]*--tail <n>/);
  });

  /** Runs a command with the real connection (what `miniray` does), MINIRAY_* env as given. */
  async function real(args: string[], env: Record<string, string | undefined>): Promise<Run> {
    const saved = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('MINIRAY_')).map((k) => [k, process.env[k]]));
    for (const k of Object.keys(saved)) delete process.env[k];
    Object.assign(process.env, env);
    try {
      const result: Run = { code: 0, out: '', err: '', files: new Map(), opened: [], closed: 0 };
      const program = new Command('miniray').exitOverride().configureOutput({ writeOut: (s) => (result.out += s), writeErr: (s) => (result.err += s) });
      registerStateCommands(program, { out: (s) => (result.out += s), err: (s) => (result.err += s) });
      try {
        await program.parseAsync(['node', 'miniray', ...args]);
      } catch (error) {
        if (!(error instanceof MinirayError)) throw error;
        result.err += error.message;
        result.code = 1;
      }
      return result;
    } finally {
      for (const k of Object.keys(process.env).filter((k) => k.startsWith('MINIRAY_'))) delete process.env[k];
      Object.assign(process.env, saved);
    }
  }

  test('no cluster there: says so and how to start one or point --address at it', async () => {
    const r = await real(['list', 'tasks', '--address', '127.0.0.1:1'], { MINIRAY_AUTH_TOKEN: 'x', MINIRAY_HOME: '/nonexistent-miniray-home' });
    assert.equal(r.code, 1);
    assert.match(r.err, /miniray list: no cluster answered at 127\.0\.0\.1:1 \(cannot connect.*\)\. Start one with `miniray start --head`, or give the head's HOST:PORT with --address/);
  });

  test('no token, and a wrong one: says where the head\'s token is', async () => {
    const router = new Router();
    const gcs = new GcsServer(new InMemoryStoreClient(), 'test-cluster');
    gcs.register(router);
    const listener = await listen({ token: 'secret', hello: { role: 'gcs', nodeId: 'head' }, router, log: () => {} });
    try {
      const address = `127.0.0.1:${listener.port}`;
      const none = await real(['summary', 'tasks', '--address', address], { MINIRAY_HOME: '/nonexistent-miniray-home' });
      assert.equal(none.code, 1);
      assert.match(none.err, /miniray summary: no cluster token: set MINIRAY_AUTH_TOKEN to the head's token/);
      const wrong = await real(['memory', '--address', address], { MINIRAY_AUTH_TOKEN: 'wrong', MINIRAY_HOME: '/nonexistent-miniray-home' });
      assert.equal(wrong.code, 1);
      assert.match(wrong.err, /refused this connection's token: set MINIRAY_AUTH_TOKEN to the head's token/);
      const badAddress = await real(['timeline', '--address', 'nowhere'], { MINIRAY_AUTH_TOKEN: 'secret' });
      assert.match(badAddress.err, /--address must be the head's HOST:PORT/);
    } finally {
      gcs.close();
      await listener.close();
    }
  });
});
