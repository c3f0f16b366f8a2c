// The state API in the embedded default (one node, a GCS in this process): actors, objects,
// nodes, workers and jobs as state.list* gives them, from the driver and from inside a task, and
// bad options failing with errors that say what is valid. (Tasks come from the task-event
// pipeline; their list is tested over a fake in src/state/client.test.ts.)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { InvalidArgumentError, InvalidOptionError, get, getRuntimeContext, init, kill, put, remote, shutdown, state } from 'miniray';

const T = { timeout: 60_000 };

class Counter {
  n = 0;
  inc(): number {
    return ++this.n;
  }
}

describe('state API in the embedded default', () => {
  before(async () => {
    await init({ numWorkers: 2, numCpus: 3 });
  });
  after(async () => {
    await shutdown();
  });

  test('listNodes: this one node, alive, the head', T, async () => {
    const nodes = await state.listNodes();
    assert.equal(nodes.length, 1);
    const [node] = nodes;
    assert.equal(node?.nodeId, getRuntimeContext().nodeId);
    assert.equal(node?.state, 'ALIVE');
    assert.equal(node?.isHead, true);
    assert.equal(node?.isDriver, false);
    assert.equal(node?.resourcesTotal['CPU'], 3);
  });

  test('listActors, getActor and summarizeActors: alive and killed actors, by state and class', T, async () => {
    const named = remote(Counter).options({ name: 'state-counter' }).remote();
    const doomed = remote(Counter).remote();
    assert.equal(await get(named.inc.remote()), 1);
    assert.equal(await get(doomed.inc.remote()), 1);
    kill(doomed);
    const actors = await waitFor('the killed actor DEAD in the table', async () => {
      const list = await state.listActors({ filters: [['className', '=', 'Counter']] });
      return list.length === 2 && list.some((a) => a.state === 'DEAD') ? list : undefined;
    });
    const alive = actors.find((a) => a.state === 'ALIVE');
    assert.equal(alive?.name, 'state-counter');
    assert.equal(alive?.namespace, getRuntimeContext().namespace, "the job's (anonymous) namespace");
    assert.equal(alive?.nodeId, getRuntimeContext().nodeId);
    const dead = actors.find((a) => a.state === 'DEAD');
    assert.ok(dead?.deathCause !== undefined && dead.deathCause.length > 0, JSON.stringify(dead));
    assert.deepEqual(await state.getActor(alive?.actorId ?? ''), alive);
    assert.equal(await state.getActor('0'.repeat(32)), undefined);
    await assert.rejects(state.getActor('not-an-id'), InvalidArgumentError);
    assert.deepEqual((await state.listActors({ filters: [['name', '=', 'state-counter']] })).map((a) => a.actorId), [alive?.actorId]);
    const summary = await state.summarizeActors();
    assert.equal(summary.byClass['Counter']?.ALIVE, 1);
    assert.equal(summary.byClass['Counter']?.DEAD, 1);
  });

  test('listObjects and summarizeObjects: an object put here, with its size and who holds it', T, async () => {
    const ref = put(new Uint8Array(200_000));
    const objects = await state.listObjects({ filters: [['objectId', '=', ref.hex]] });
    assert.equal(objects.length, 1);
    const [object] = objects;
    assert.equal(object?.nodeId, getRuntimeContext().nodeId);
    assert.equal(object?.state, 'ready');
    assert.equal(object?.location, 'memory');
    assert.ok((object?.sizeBytes ?? 0) >= 200_000, JSON.stringify(object));
    assert.deepEqual(object?.referencedBy, ['driver']);
    const summary = await state.summarizeObjects();
    assert.ok(summary.totalObjects >= 1);
    assert.ok(summary.totalBytes >= 200_000);
    assert.ok((summary.byNode[getRuntimeContext().nodeId]?.objects ?? 0) >= 1);
    assert.ok((await state.listObjects({ limit: 1 })).length <= 1);
  });

  test('listWorkers: the driver\'s thread, the task workers and an actor\'s process', T, async () => {
    const inProcess = remote(Counter).options({ isolation: 'process' }).remote();
    await get(inProcess.inc.remote());
    const workers = await state.listWorkers();
    const driver = workers.filter((w) => w.workerType === 'driver');
    assert.equal(driver.length, 1);
    assert.equal(driver[0]?.workerId, getRuntimeContext().workerId);
    assert.equal(driver[0]?.pid, process.pid);
    assert.equal(workers.filter((w) => w.workerType === 'task').length, 2);
    const processes = workers.filter((w) => w.isolation === 'process');
    assert.equal(processes.length, 1, JSON.stringify(workers));
    assert.notEqual(processes[0]?.pid, process.pid, 'a process actor\'s own pid');
    assert.ok(workers.every((w) => w.isAlive && w.nodeId === getRuntimeContext().nodeId));
    kill(inProcess);
  });

  test('listJobs: this driver is a running job', T, async () => {
    const jobs = await state.listJobs();
    assert.equal(jobs.length, 1, JSON.stringify(jobs));
    assert.equal(jobs[0]?.status, 'RUNNING');
    assert.equal(jobs[0]?.driverNodeId, getRuntimeContext().nodeId);
    assert.equal(jobs[0]?.jobId, '1');
  });

  test('inside a task: the same lists, through its node', T, async () => {
    remote(Counter).options({ name: 'seen-from-a-task' }).remote();
    const fromTask = remote(async () => {
      const { state: s, getRuntimeContext: context } = await import('miniray');
      const actors = await s.listActors({ filters: [['name', '=', 'seen-from-a-task']] });
      const nodes = await s.listNodes();
      const workers = await s.listWorkers({ filters: [['workerId', '=', context().workerId]] });
      let badFilter = '';
      try {
        await s.listNodes({ filters: [['nodeid' as 'nodeId', '=', 'x']] });
      } catch (error) {
        badFilter = `${(error as Error).name}: ${(error as Error).message}`;
      }
      return { actors: actors.length, nodes: nodes.map((n) => n.nodeId), workers: workers.map((w) => w.workerType), badFilter };
    });
    const seen = await get(fromTask.remote());
    assert.equal(seen.actors, 1);
    assert.deepEqual(seen.nodes, [getRuntimeContext().nodeId]);
    assert.deepEqual(seen.workers, ['task'], 'the task sees its own worker');
    assert.match(seen.badFilter, /^InvalidOptionError: .*Did you mean 'nodeId'\?/);
  });

  test('bad options: unknown keys and ops, malformed filters and limits fail with InvalidOptionError naming what is valid', T, async () => {
    const fails = (call: Promise<unknown>, pattern: RegExp) =>
      assert.rejects(call, (error: unknown) => {
        assert.ok(error instanceof InvalidOptionError, String(error));
        assert.match((error as Error).message, pattern);
        return true;
      });
    await fails(state.listActors({ filters: [['stat' as 'state', '=', 'ALIVE']] }), /state\.listActors\(\): .*no field "stat".*Did you mean 'state'\? Valid keys: actorId, className/);
    await fails(state.listObjects({ filters: [['state', '~' as '=', 'ready']] }), /unknown predicate "~"; valid predicates: '=', '!='/);
    await fails(state.listNodes({ filters: 'state=ALIVE' as never }), /option 'filters' must be an array/);
    await fails(state.listWorkers({ limit: -1 }), /option 'limit' must be an integer >= 1/);
    await fails(state.listJobs({ detial: true } as never), /unknown option 'detial'\. Did you mean 'detail'\?/);
  });

  test('state.list gives what a list left out: total before the limit, partial nodes, dropped events', T, async () => {
    for (let i = 0; i < 3; i++) put(i);
    const result = await state.list('objects', { limit: 1 });
    assert.equal(result.records.length, 1);
    assert.ok(result.total >= 3, String(result.total));
    assert.deepEqual(result.partial, []);
    assert.equal(result.dropped, 0);
  });
});

async function waitFor<T>(what: string, condition: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
