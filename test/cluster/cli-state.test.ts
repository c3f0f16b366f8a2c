// The observability commands against a real head: a driver leaves an actor and an object alive,
// then the built `miniray list actors`, `list objects`, `summary tasks`, `memory`, `logs` and
// `timeline --output` (each its own process, as a user runs it) show them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Cluster, resultsOf, waitFor, type Proc } from './harness.js';

describe('miniray list/summary/memory/timeline against a real cluster', { timeout: 240_000 }, () => {
  let cluster: Cluster | undefined;
  let driver: Proc | undefined;
  let objectId = '';
  const c = (): Cluster => {
    if (cluster === undefined) throw new Error('the cluster did not start (see the before hook)');
    return cluster;
  };
  /** `miniray <args> --address <head>`; fails the test on a non-zero exit. */
  const cli = async (...args: string[]): Promise<string> => {
    const run = await c().cli([...args, '--address', c().gcsAddress]);
    assert.equal(run.code, 0, `miniray ${args.join(' ')}: ${run.stderr}`);
    return run.stdout;
  };

  before(async () => {
    cluster = await Cluster.start({ numCpus: 2 }, [], { name: 'cli-state' });
    driver = cluster.driver('cli-state.mjs');
    await driver.match(/READY/, 120_000);
    const [first] = resultsOf(driver.stdout) as [{ squares: number[]; objectId: string }] | [];
    objectId = first?.objectId ?? '';
  });
  after(async () => {
    driver?.send('go');
    await driver?.ended(30_000).catch(() => undefined);
    await cluster?.stop();
  });

  test('list actors shows the driver\'s actor ALIVE; --filter and --format json', async () => {
    const table = await cli('list', 'actors');
    assert.match(table, /className/);
    assert.match(table, /Keeper .*keeper .*ALIVE/);
    const alive = JSON.parse(await cli('list', 'actors', '--filter', 'state=ALIVE', '--format', 'json')) as { className: string }[];
    assert.deepEqual(alive.map((a) => a.className), ['Keeper']);
    const dead = JSON.parse(await cli('list', 'actors', '--filter', 'state=DEAD', '--format', 'json')) as unknown[];
    assert.deepEqual(dead, []);
  });

  test('summary tasks counts the three squares FINISHED (task events arrive in batches: waited for)', async () => {
    const counted = await waitFor('summary tasks to count 3 FINISHED squares', async () => {
      const summary = JSON.parse(await cli('summary', 'tasks', '--format', 'json')) as { byName: Record<string, { states: Record<string, number> }> };
      return summary.byName.square?.states.FINISHED === 3 ? summary : undefined;
    }, 60_000);
    assert.equal(counted.byName.square?.states.FINISHED, 3);
    assert.match(await cli('summary', 'tasks'), /square .*NORMAL_TASK .*3/);
  });

  test('memory and list objects show the object the driver keeps', async () => {
    assert.match(objectId, /^[0-9a-f]{32}$/, 'the driver printed its object ID');
    const memory = await cli('memory');
    assert.match(memory, /Object references status/);
    assert.ok(memory.includes(objectId), memory);
    assert.match(memory, /512\.0 KiB/);
    const objects = JSON.parse(await cli('list', 'objects', '--filter', `objectId=${objectId}`, '--format', 'json')) as { sizeBytes: number }[];
    assert.ok(objects.length >= 1 && (objects[0]?.sizeBytes ?? 0) >= 512 * 1024, JSON.stringify(objects));
  });

  test('logs shows what the tasks and the actor printed, prefixed with where; --actor narrows to the actor', async () => {
    const all = await waitFor('logs to show the three squares', async () => {
      const out = await cli('logs', '--tail', '100');
      return [1, 2, 3].every((x) => out.includes(`squaring ${x}`)) ? out : undefined;
    }, 60_000);
    assert.match(all, /^\(square worker=[0-9a-f]{8} node=[0-9a-f]{8}\) squaring 1$/m);
    const [actor] = JSON.parse(await cli('list', 'actors', '--format', 'json')) as { actorId: string }[];
    assert.ok(actor);
    const actorLines = await cli('logs', '--actor', actor.actorId);
    assert.match(actorLines, /keeping a$/m);
    assert.doesNotMatch(actorLines, /squaring/);
  });

  test('logs --actor/--task with what is not an ID fails saying so, not that nodes did not answer', async () => {
    for (const flag of ['--actor', '--task']) {
      const run = await c().cli(['logs', flag, 'nope', '--address', c().gcsAddress]);
      assert.notEqual(run.code, 0, run.stdout);
      const key = flag === '--actor' ? 'actorId' : 'taskId';
      assert.match(run.stderr, new RegExp(`'${key}' must be an ID of 32 lowercase hex characters, not 'nope'`));
      assert.doesNotMatch(run.stderr, /did not answer/);
    }
  });

  test('timeline --output writes trace events Perfetto loads, a span per square', async () => {
    const file = join(c().scratch, 'trace.json');
    const said = await cli('timeline', '--output', file);
    assert.match(said, /Wrote the timeline of \d+ task attempts/);
    assert.match(said, /chrome:\/\/tracing/);
    const trace = JSON.parse(readFileSync(file, 'utf8')) as { traceEvents: { ph: string; name: string; pid: number; tid: number; ts: number; dur?: number }[] };
    const squares = trace.traceEvents.filter((e) => e.ph === 'X' && e.name === 'square');
    assert.equal(squares.length, 3);
    for (const e of trace.traceEvents) {
      assert.ok(Number.isInteger(e.pid) && Number.isInteger(e.tid) && typeof e.ts === 'number');
      if (e.ph === 'X') assert.ok((e.dur ?? -1) >= 0);
    }
    assert.ok(trace.traceEvents.some((e) => e.ph === 'M' && e.name === 'process_name'));
  });
});
